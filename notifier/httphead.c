/*
 * httphead.c: strict reading of a raw HTTP/1.x request head (stage: http).
 *
 * Runs on the bytes as received, before libevent's lenient parser sees them, and
 * refuses whatever two readers of the same bytes could disagree about (RFC 9112
 * sections 2.2, 5, 6.3): bare LF, obsolete folding, whitespace before the colon,
 * a malformed or repeated Content-Length, Transfer-Encoding together with
 * Content-Length, and a repeated credential header. Pure: no I/O, no allocation,
 * no logging; it must never echo a header value in what it returns.
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "httphead.h"

#define HEAD_CL_DIGITS_MAX 18   /* fits a long long with room */

/* Leading empty lines (RFC 9112 section 2.2: a server should ignore at least one). */
static size_t head_skip_empty(const char *buf, size_t len)
{
	size_t i = 0;

	for (;;) {
		if (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n')
			i += 2;
		else if (i < len && buf[i] == '\n')
			i++;
		else
			return i;
	}
}

size_t http_head_end(const char *buf, size_t len)
{
	size_t i = head_skip_empty(buf, len);
	const char *nl;

	while (i < len && (nl = memchr(buf + i, '\n', len - i)) != NULL) {
		i = (size_t)(nl - buf) + 1;
		if (i < len && buf[i] == '\n')
			return i + 1;
		if (i + 1 < len && buf[i] == '\r' && buf[i + 1] == '\n')
			return i + 2;
	}
	return 0;
}

/* tchar of RFC 9110 section 5.6.2. */
static int head_is_tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* 1 when the name of n bytes is want, case-insensitively. */
static int head_name_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

/* Content-Length = 1*DIGIT (RFC 9110 section 8.6); OWS around was trimmed. */
static int head_parse_length(const char *v, size_t n, long long *out)
{
	long long x = 0;
	size_t i;

	if (n == 0)
		return -1;
	for (i = 0; i < n; i++)
		if (v[i] < '0' || v[i] > '9')
			return -1;
	while (n > 1 && *v == '0') {
		v++;
		n--;
	}
	if (n > HEAD_CL_DIGITS_MAX) {
		*out = HTTP_HEAD_CL_HUGE;
		return 0;
	}
	for (i = 0; i < n; i++)
		x = x * 10 + (v[i] - '0');
	*out = x;
	return 0;
}

/*
 * One header line (without its CRLF): field-name ":" OWS field-value OWS, the name a
 * token, no whitespace before the colon, no control characters but HTAB in the value.
 * Counts what must appear once. 0, or -1 with *why.
 */
static int head_field(const char *line, size_t n, struct http_head_info *info,
    int *seen_cl, int *seen_auth, int *seen_sig, const char **why)
{
	const char *colon = memchr(line, ':', n), *v, *end = line + n;
	size_t nlen, i;

	if (colon == NULL || colon == line) {
		*why = "header line without a name and colon";
		return -1;
	}
	nlen = (size_t)(colon - line);
	for (i = 0; i < nlen; i++)
		if (!head_is_tchar((unsigned char)line[i])) {
			*why = line[i] == ' ' || line[i] == '\t' ?
			    "whitespace before the colon of a header" :
			    "invalid character in a header name";
			return -1;
		}
	for (v = colon + 1; v < end; v++)
		if (((unsigned char)*v < 0x20 && *v != '\t') || *v == 0x7f) {
			*why = "control character in a header value";
			return -1;
		}
	v = colon + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if (head_name_is(line, nlen, "Content-Length")) {
		if ((*seen_cl)++) {
			*why = "Content-Length given more than once";
			return -1;
		}
		if (head_parse_length(v, (size_t)(end - v), &info->content_length) < 0) {
			*why = "Content-Length is not a number of bytes";
			return -1;
		}
	} else if (head_name_is(line, nlen, "Transfer-Encoding")) {
		info->chunked = 1;
	} else if (head_name_is(line, nlen, "Authorization")) {
		if ((*seen_auth)++) {
			*why = "Authorization given more than once";
			return -1;
		}
	} else if (head_name_is(line, nlen, "X-Twilio-Signature")) {
		if ((*seen_sig)++) {
			*why = "X-Twilio-Signature given more than once";
			return -1;
		}
	}
	return 0;
}

int http_head_check(const char *buf, size_t len, struct http_head_info *info,
    const char **why)
{
	size_t i = head_skip_empty(buf, len), n;
	int seen_cl = 0, seen_auth = 0, seen_sig = 0, first = 1, ended = 0;
	const char *line, *nl;

	info->content_length = -1;
	info->chunked = 0;
	*why = NULL;
	while (i < len) {
		line = buf + i;
		if ((nl = memchr(line, '\n', len - i)) == NULL) {
			*why = "request head does not end with an empty line";
			return -1;
		}
		n = (size_t)(nl - line);
		if (n == 0 || line[n - 1] != '\r') {
			*why = "line ends in a bare LF";
			return -1;
		}
		n--;
		if (memchr(line, '\r', n) != NULL) {
			*why = "CR inside a line";
			return -1;
		}
		i += n + 2;
		if (n == 0) {
			ended = 1;      /* the empty line: end of the head */
			break;
		}
		if (first) {
			/* The request line is libevent's to read; it may not hold controls. */
			first = 0;
			if (memchr(line, '\0', n) != NULL) {
				*why = "NUL in the request line";
				return -1;
			}
			continue;
		}
		if (line[0] == ' ' || line[0] == '\t') {
			*why = "obsolete line folding";
			return -1;
		}
		if (head_field(line, n, info, &seen_cl, &seen_auth, &seen_sig, why) < 0)
			return -1;
	}
	if (!ended) {
		*why = "request head does not end with an empty line";
		return -1;
	}
	if (seen_cl && info->chunked) {
		*why = "both Transfer-Encoding and Content-Length";
		return -1;
	}
	return 0;
}
