/*
 * gwsim_check.c: the simulator's validators and text helpers (E.164, SIDs, URLs,
 * UTF-8 counting and cleaning, SMS segments, phone masking, the push id's landing ms).
 *
 * Pure functions over NUL-terminated strings: no I/O, no libevent, no state. They must
 * never read past a terminator, whatever bytes they are given.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gwsim.h"

int gwsim_is_e164(const char *s)
{
	size_t n;

	if (s == NULL || s[0] != '+' || s[1] < '1' || s[1] > '9')
		return 0;
	for (n = 1; s[n] != '\0'; n++)
		if (s[n] < '0' || s[n] > '9')
			return 0;
	/* '+' then 2..15 digits */
	return n >= 3 && n <= 16;
}

int gwsim_is_sid(const char *s, const char *prefix)
{
	size_t i;

	if (s == NULL || strncmp(s, prefix, 2) != 0)
		return 0;
	for (i = 2; i < 34; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return s[34] == '\0';
}

int gwsim_is_digits(const char *s, size_t minlen, size_t maxlen)
{
	size_t n;

	if (s == NULL)
		return 0;
	for (n = 0; s[n] != '\0'; n++)
		if (s[n] < '0' || s[n] > '9')
			return 0;
	return n >= minlen && n <= maxlen;
}

int gwsim_is_http_url(const char *s)
{
	const char *p;
	size_t i;

	if (s == NULL)
		return 0;
	if (strncasecmp(s, "http://", 7) == 0)
		p = s + 7;
	else if (strncasecmp(s, "https://", 8) == 0)
		p = s + 8;
	else
		return 0;
	if (*p == '\0' || *p == '/' || *p == '?' || *p == '#')
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] == 0x7f)
			return 0;
	return 1;
}

/* Decodes one code point at s (len bytes left, len >= 1) into *cp. Returns the bytes
 * used; an invalid, overlong or surrogate sequence uses 1 byte and gives 0xFFFD. */
static size_t gwsim_utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t c = s[0], min;
	size_t need, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xE0) == 0xC0) {
		need = 1; c &= 0x1F; min = 0x80;
	} else if ((c & 0xF0) == 0xE0) {
		need = 2; c &= 0x0F; min = 0x800;
	} else if ((c & 0xF8) == 0xF0) {
		need = 3; c &= 0x07; min = 0x10000;
	} else {
		goto bad;
	}
	if (len < need + 1)
		goto bad;
	for (i = 1; i <= need; i++) {
		if ((s[i] & 0xC0) != 0x80)
			goto bad;
		c = (c << 6) | (s[i] & 0x3F);
	}
	if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		goto bad;
	*cp = c;
	return need + 1;
bad:
	*cp = 0xFFFD;
	return 1;
}

size_t gwsim_utf8_len(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len = strlen(s), n = 0, i = 0;
	uint32_t cp;

	while (i < len) {
		i += gwsim_utf8_next(p + i, len - i, &cp);
		n++;
	}
	return n;
}

char *gwsim_utf8_clean(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	char *out;
	size_t i = 0, o = 0;

	if (len > (SIZE_MAX - 1) / 3)
		return NULL;
	out = malloc(len * 3 + 1);   /* a bad byte (1) becomes U+FFFD (3) */
	if (out == NULL)
		return NULL;
	while (i < len) {
		uint32_t cp;
		size_t used = gwsim_utf8_next(p + i, len - i, &cp);

		if (cp == 0xFFFD || cp == 0) {
			memcpy(out + o, "\xEF\xBF\xBD", 3);
			o += 3;
		} else {
			memcpy(out + o, s + i, used);
			o += used;
		}
		i += used;
	}
	out[o] = '\0';
	return out;
}

/* 1 when cp is in the GSM-7 basic set, 2 when in its extension table, 0 when not. */
static int gwsim_gsm_width(uint32_t cp)
{
	static const uint32_t basic[] = {
		0xA3, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0xD8, 0xF8, 0xC5, 0xE5,
		0x394, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E,
		0xC6, 0xE6, 0xDF, 0xC9, 0xA4, 0xA1, 0xC4, 0xD6, 0xD1, 0xDC, 0xA7, 0xBF,
		0xE4, 0xF6, 0xF1, 0xFC, 0xE0
	};
	size_t i;

	if (cp == '\n' || cp == '\r')
		return 1;
	if (cp == 0x20AC || cp == '\f' || (cp < 0x80 && strchr("^{}\\[~]|", (int)cp)))
		return cp == 0 ? 0 : 2;
	if (cp >= 0x20 && cp < 0x7F && cp != '`')
		return 1;
	for (i = 0; i < sizeof(basic) / sizeof(basic[0]); i++)
		if (basic[i] == cp)
			return 1;
	return 0;
}

int gwsim_segments(const char *body)
{
	const unsigned char *p = (const unsigned char *)body;
	size_t len = strlen(body), i = 0, septets = 0, units = 0;
	int gsm = 1;

	while (i < len) {
		uint32_t cp;
		int w;

		i += gwsim_utf8_next(p + i, len - i, &cp);
		w = gwsim_gsm_width(cp);
		if (w == 0)
			gsm = 0;
		septets += (size_t)w;
		units += cp > 0xFFFF ? 2 : 1;
	}
	if (gsm)
		return septets <= 160 ? 1 : (int)((septets + 152) / 153);
	return units <= 70 ? 1 : (int)((units + 66) / 67);
}

void gwsim_mask(const char *s, char *out, size_t outlen)
{
	size_t len = strlen(s), keep = len > 9 ? 5 : 3;
	const char *tail = len > 9 ? s + len - 4 : "";

	if (outlen == 0)
		return;
	if (keep > len)
		keep = len;
	/* "•••" is E2 80 A2 three times */
	snprintf(out, outlen, "%.*s\xE2\x80\xA2\xE2\x80\xA2\xE2\x80\xA2%s",
	    (int)keep, s, tail);
}

int64_t gwsim_leading_ms(const char *s)
{
	int64_t v = 0;
	size_t i;

	if (s == NULL)
		return -1;
	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
		if (i >= 18)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return i == 0 ? -1 : v;
}

/* Looks for push=<value> in the query part q (up to '#'). */
static int gwsim_query_push(const char *q, char **push)
{
	size_t qlen = strcspn(q, "#"), start = 0, i;

	for (i = 0; i <= qlen; i++) {
		const char *pair = q + start, *eq;
		size_t plen = i - start;
		int rc;

		if (i < qlen && q[i] != '&')
			continue;
		start = i + 1;
		eq = memchr(pair, '=', plen);
		if (eq == NULL || eq - pair != 4 || strncmp(pair, "push", 4) != 0)
			continue;
		rc = form_decode(eq + 1, plen - 5, push);
		if (rc == -2)
			return -1;
		return 0;   /* -1 (malformed) leaves *push NULL: unknown */
	}
	return 0;
}

int gwsim_push_from_url(const char *url, char **push, int64_t *landed_ms)
{
	const char *q, *hash;

	*push = NULL;
	*landed_ms = -1;
	if (url == NULL)
		return 0;
	q = strchr(url, '?');
	hash = strchr(url, '#');
	if (q == NULL || (hash != NULL && hash < q))
		return 0;
	if (gwsim_query_push(q + 1, push) != 0)
		return -1;
	*landed_ms = gwsim_leading_ms(*push);
	return 0;
}

int gwsim_parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	if (s == NULL || !(isdigit((unsigned char)s[0]) || s[0] == '-'))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}
