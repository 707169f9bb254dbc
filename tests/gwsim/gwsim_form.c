/*
 * gwsim_form.c: application/x-www-form-urlencoded decoding for the simulator.
 *
 * Splits a body on '&' and '=', percent-decodes keys and values ('+' is a space) and
 * keeps them in order. It must never read past the given length, never accept a
 * malformed or NUL escape, and never grow without bound (FORM_FIELDS_MAX fields).
 */
#include <stdlib.h>
#include <string.h>

#include "gwsim.h"

static int form_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int form_decode(const char *in, size_t len, char **out)
{
	char *buf;
	size_t i, o = 0;

	*out = NULL;
	buf = malloc(len + 1);
	if (buf == NULL)
		return -2;
	for (i = 0; i < len; i++) {
		char ch = in[i];

		if (ch == '%') {
			int hi, lo;

			if (len - i < 3)
				goto bad;
			hi = form_hexval(in[i + 1]);
			lo = form_hexval(in[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			buf[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else if (ch == '+') {
			buf[o++] = ' ';
		} else if (ch == '\0') {
			goto bad;
		} else {
			buf[o++] = ch;
		}
	}
	buf[o] = '\0';
	*out = buf;
	return 0;
bad:
	free(buf);
	return -1;
}

/* form_grow: make room for one more field. */
static int form_grow(struct form *f)
{
	struct form_field *nf;
	size_t ncap;

	if (f->n < f->cap)
		return 0;
	if (f->cap >= FORM_FIELDS_MAX)
		return -1;
	ncap = f->cap ? f->cap * 2 : 16;
	if (ncap > FORM_FIELDS_MAX)
		ncap = FORM_FIELDS_MAX;
	nf = realloc(f->fields, ncap * sizeof(*nf));
	if (nf == NULL)
		return -2;
	f->fields = nf;
	f->cap = ncap;
	return 0;
}

/* pair = key [ "=" value ]; an empty pair (as in "a=1&&b=2") is skipped. */
static int form_add_pair(struct form *f, const char *p, size_t len)
{
	const char *eq = memchr(p, '=', len);
	size_t klen = eq ? (size_t)(eq - p) : len;
	char *key = NULL, *val = NULL;
	int rc;

	if (len == 0)
		return 0;
	if ((rc = form_grow(f)) != 0)
		return rc;
	if ((rc = form_decode(p, klen, &key)) != 0)
		return rc;
	if (eq != NULL)
		rc = form_decode(eq + 1, len - klen - 1, &val);
	else
		rc = form_decode("", 0, &val);
	if (rc != 0) {
		free(key);
		return rc;
	}
	f->fields[f->n].key = key;
	f->fields[f->n].val = val;
	f->n++;
	return 0;
}

int form_parse(struct form *f, const char *body, size_t len)
{
	size_t start = 0, i;
	int rc;

	for (i = 0; i <= len; i++) {
		if (i < len && body[i] != '&')
			continue;
		rc = form_add_pair(f, body + start, i - start);
		if (rc != 0)
			return rc;
		start = i + 1;
	}
	return 0;
}

const char *form_get(const struct form *f, const char *key)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->fields[i].key, key) == 0)
			return f->fields[i].val;
	return NULL;
}

void form_free(struct form *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->n; i++) {
		free(f->fields[i].key);
		free(f->fields[i].val);
	}
	free(f->fields);
	memset(f, 0, sizeof(*f));
}
