/*
 * uri.c: check that a configured URL is an http(s) URI (RFC 3986) (stage: start-up).
 *
 * A small recursive-descent reading of the grammar below; every rule is one helper.
 * It never allocates, never resolves a name and never echoes the value it checks
 * (a misplaced secret could be in it): a reason names a position and a character.
 *
 *   URI       = scheme "://" authority path-abempty [ "?" query ]
 *   scheme    = "http" / "https"                       (case-insensitive)
 *   authority = host [ ":" port ]                      (no userinfo here)
 *   host      = "[" IPv6address "]" / reg-name         (letters, digits, '-', '.')
 *   path      = *( "/" *pchar )
 *   pchar     = unreserved / pct-encoded / sub-delims / ":" / "@"
 *   query     = *( pchar / "/" / "?" )
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "uri.h"

#define URI_HOST_MAX 253

struct uri_lex {
	const char *s;     /* the whole value */
	size_t i;          /* the position being read */
	char *why;
	size_t size;
};

static int
uri_fail(struct uri_lex *l, const char *what)
{
	unsigned char c = (unsigned char)l->s[l->i];

	if (c == '\0')
		snprintf(l->why, l->size, "%s (at the end)", what);
	else if (c == ' ')
		snprintf(l->why, l->size, "%s: a space at position %zu", what, l->i + 1);
	else if (c < 0x20 || c >= 0x7f)
		snprintf(l->why, l->size, "%s: byte 0x%02x at position %zu (percent-encode "
		    "it)", what, c, l->i + 1);
	else
		snprintf(l->why, l->size, "%s: '%c' at position %zu", what, c, l->i + 1);
	return -1;
}

static int
uri_is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~" */
static int
uri_is_unreserved(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	    c == '-' || c == '.' || c == '_' || c == '~';
}

/* sub-delims = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "=" */
static int
uri_is_sub_delim(unsigned char c)
{
	return c != '\0' && strchr("!$&'()*+,;=", c) != NULL;
}

/* pchar (one, or a pct-encoded triple); extra: more allowed characters. 1 when one
 * was read, 0 when the next character is not one, -1 on a bad '%'. */
static int
uri_pchar(struct uri_lex *l, const char *extra)
{
	unsigned char c = (unsigned char)l->s[l->i];

	if (c == '%') {
		if (!uri_is_hex((unsigned char)l->s[l->i + 1]) ||
		    !uri_is_hex((unsigned char)l->s[l->i + 2]))
			return uri_fail(l, "'%' must be followed by two hex digits");
		l->i += 3;
		return 1;
	}
	if (uri_is_unreserved(c) || uri_is_sub_delim(c) || c == ':' || c == '@' ||
	    (c != '\0' && strchr(extra, c) != NULL)) {
		l->i++;
		return 1;
	}
	return 0;
}

/* scheme "://" */
static int
uri_scheme(struct uri_lex *l)
{
	if (strncasecmp(l->s, "https://", 8) == 0)
		l->i = 8;
	else if (strncasecmp(l->s, "http://", 7) == 0)
		l->i = 7;
	else {
		snprintf(l->why, l->size, "must start with http:// or https://");
		return -1;
	}
	return 0;
}

/* host [ ":" port ] */
static int
uri_authority(struct uri_lex *l)
{
	char v6[64];
	unsigned char addr[16];
	const char *close;
	size_t start = l->i, n;
	unsigned long port = 0;
	int labellen = 0;

	if (l->s[l->i] == '[') {
		/* "[" IPv6address "]" */
		close = strchr(l->s + l->i, ']');
		n = close != NULL ? (size_t)(close - (l->s + l->i + 1)) : 0;
		if (close == NULL || n == 0 || n >= sizeof(v6)) {
			snprintf(l->why, l->size, "an IPv6 host must be written [address]");
			return -1;
		}
		memcpy(v6, l->s + l->i + 1, n);
		v6[n] = '\0';
		if (inet_pton(AF_INET6, v6, addr) != 1) {
			snprintf(l->why, l->size, "[%s] is not an IPv6 address", v6);
			return -1;
		}
		l->i += n + 2;
	} else {
		/* reg-name, narrowed to what a DNS name or an IPv4 address can be */
		for (;; l->i++) {
			unsigned char c = (unsigned char)l->s[l->i];

			if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-') {
				labellen++;
				continue;
			}
			if (c == '.' && labellen > 0) {
				labellen = 0;
				continue;
			}
			break;
		}
		if (l->i == start)
			return uri_fail(l, "no host");
		if (l->s[l->i] == '@')
			return uri_fail(l, "no user:password in a URL (secrets go in a "
			    "*_file or *_env key)");
		if (l->i - start > URI_HOST_MAX) {
			snprintf(l->why, l->size, "the host is longer than %d characters",
			    URI_HOST_MAX);
			return -1;
		}
	}
	if (l->s[l->i] == ':') {
		/* port = 1*5DIGIT, 1..65535 */
		l->i++;
		start = l->i;
		while (l->s[l->i] >= '0' && l->s[l->i] <= '9' && l->i - start < 6)
			port = port * 10 + (unsigned long)(l->s[l->i++] - '0');
		if (l->i == start || port == 0 || port > 65535) {
			snprintf(l->why, l->size, "the port must be 1..65535");
			return -1;
		}
	}
	if (l->s[l->i] != '\0' && l->s[l->i] != '/' && l->s[l->i] != '?' &&
	    l->s[l->i] != '#')
		return uri_fail(l, "not allowed in the host");
	return 0;
}

/* path-abempty = *( "/" segment ) */
static int
uri_path(struct uri_lex *l)
{
	int r;

	while (l->s[l->i] == '/') {
		l->i++;
		while ((r = uri_pchar(l, "")) == 1)
			;
		if (r < 0)
			return -1;
	}
	return 0;
}

/* [ "?" query ], then nothing */
static int
uri_rest(struct uri_lex *l, int flags)
{
	int r;

	if (l->s[l->i] == '?') {
		if (flags & URI_BASE)
			return uri_fail(l, "a base URL takes no query");
		l->i++;
		while ((r = uri_pchar(l, "/?")) == 1)
			;
		if (r < 0)
			return -1;
	}
	if (l->s[l->i] == '#')
		return uri_fail(l, "no fragment in a URL that is requested");
	if (l->s[l->i] != '\0')
		return uri_fail(l, "not allowed in a URI");
	return 0;
}

int
uri_check_http(const char *s, int flags, char *why, size_t size)
{
	struct uri_lex l = { s, 0, why, size };

	if (size > 0)
		why[0] = '\0';
	if (s == NULL || *s == '\0') {
		snprintf(why, size, "empty");
		return -1;
	}
	if (uri_scheme(&l) < 0 || uri_authority(&l) < 0 || uri_path(&l) < 0 ||
	    uri_rest(&l, flags) < 0)
		return -1;
	return 0;
}

/* 1 when host is an IPv4 or IPv6 address or a host name (RFC 1123: labels of 1 to 63
 * letters, digits and '-', not beginning or ending with '-', 253 bytes at most). */
int
uri_host_ok(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];
	size_t label = 0, n = strlen(host), i;

	if (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1)
		return 1;
	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i <= n; i++) {
		char ch = host[i];

		if (ch == '.' || ch == '\0') {
			if (label == 0 || label > 63 || host[i - 1] == '-')
				return 0;
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || (ch == '-' && label > 0)) {
			label++;
		} else {
			return 0;
		}
	}
	return 1;
}
