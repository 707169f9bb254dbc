/*
 * ithttp.h: a raw HTTP/1.0 client for the integration tests, so that a test can send
 * exactly the bytes it means (hostile paths, forged headers, odd bodies) to the
 * notifier on 127.0.0.1, and read the whole answer back.
 */
#ifndef DEALPUSH_ITHTTP_H
#define DEALPUSH_ITHTTP_H

#include <stddef.h>

/* One answer: the status line's code, the raw head and the body (NUL-terminated,
 * cut to the buffer). */
struct it_resp {
	int status;                    /* -1: no answer */
	char raw[1 << 17];
	const char *body;              /* into raw; "" when there is none */
};

/*
 * Sends "METHOD path HTTP/1.0" to 127.0.0.1:port with hdrs (each line ending
 * "\r\n", may be NULL), a Content-Length and body (len bytes, may be NULL), and reads
 * the answer until the server closes. Returns resp->status.
 */
int it_http(int port, const char *method, const char *path, const char *hdrs,
    const char *body, size_t len, struct it_resp *resp);

/* One request for it_http_together(). */
struct it_req {
	const char *method, *path, *hdrs, *body;
	size_t len;
};

#define IT_TOGETHER_MAX 8

/*
 * Sends the n requests (at most IT_TOGETHER_MAX, each under 8 KiB) on n connections
 * so that they arrive together: every one but its last byte first, then the last
 * bytes one after the other; the server reads them in one turn of its loop and
 * handles them side by side. Then reads each answer into resps[i]. Returns how many
 * answered (-1 for a bad n). For races a test must not leave to chance.
 */
int it_http_together(int port, size_t n, const struct it_req *reqs,
    struct it_resp *resps);

/* The value of header name in resp (copied into out, "" when absent). */
const char *it_http_header(const struct it_resp *resp, const char *name, char *out,
    size_t size);

/* Appends s to the NUL-terminated out (size bytes in all) percent-encoded as a form
 * value: letters and digits as they are, every other byte %XX; cut when out is full. */
void it_pct_append(char *out, size_t size, const char *s);

/* A TCP port free on 127.0.0.1 right now (for a server the test must name in its
 * config before it starts), or -1. */
int it_free_port(void);

#endif
