/*
 * httphead.h: strict reading of a raw HTTP/1.x request head, before libevent parses
 * it (stage: http).
 *
 * libevent 2.1 reads request heads leniently (the first of two Content-Length headers
 * wins, "+5" is a length, folded lines and bare LF are accepted). A proxy in front
 * that reads the same bytes differently would see another request: request
 * smuggling. These functions take the bytes as the client sent them and say whether
 * they are one unambiguous request head, and how long its declared body is.
 */
#ifndef DEALPUSH_HTTPHEAD_H
#define DEALPUSH_HTTPHEAD_H

#include <stddef.h>

/* What http_head_check found in an acceptable head. */
struct http_head_info {
	long long content_length;       /* -1: none declared; HTTP_HEAD_CL_HUGE: more
	                                 * digits than fit (over any cap) */
	int chunked;                    /* Transfer-Encoding present */
};

#define HTTP_HEAD_CL_HUGE (-2)

/* Where the head in buf[0..len) ends: the offset just past its empty line ("\r\n" or
 * a bare "\n", so that a bare-LF head is found and then refused), leading empty
 * lines before the request line skipped; 0 when the head is not complete yet. */
size_t http_head_end(const char *buf, size_t len);

/* Checks the complete head buf[0..len) (as found by http_head_end): every line ends
 * in CRLF, no obsolete line folding, header names are tokens directly followed by
 * ':', no control characters in values, Content-Length at most once and all digits,
 * not both Transfer-Encoding and Content-Length, Authorization and
 * X-Twilio-Signature at most once each. Returns 0 and fills *info, or -1 with what is
 * wrong in why (a fixed message: never a header value). */
int http_head_check(const char *buf, size_t len, struct http_head_info *info,
    const char **why);

#endif
