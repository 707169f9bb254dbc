/*
 * pushline.c: the recipient line of a job and the text a recipient gets (stages:
 * admit, send, record). Pure: no I/O. Must never write past what it allocated,
 * whatever the line or the code holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"
#include "pushline.h"
#include "subscriber.h"

#define PUSHLINE_NFIELDS 5

int
pushline_parse(char *line, struct pushline *pl)
{
	char *f[PUSHLINE_NFIELDS], *s = line;
	int i, ch;

	pl->variant = "";
	for (i = 0; i < PUSHLINE_NFIELDS - 1; i++) {
		f[i] = s;
		if ((s = strchr(s, '\t')) == NULL)
			return -1;
		*s++ = '\0';
	}
	f[PUSHLINE_NFIELDS - 1] = s;
	for (i = 0; i < PUSHLINE_NFIELDS; i++)
		if (*f[i] == '\0')
			return -1;
	if ((ch = channel_from_name(f[0])) < 0)
		return -1;
	pl->ch = (enum channel)ch;
	pl->sub = f[1];
	pl->to = f[2];
	pl->rule = f[3];
	pl->text = f[4];
	if ((s = strchr(f[3], '/')) != NULL) {
		*s++ = '\0';
		if (*f[3] == '\0' || *s == '\0')
			return -1;
		pl->variant = s;
	}
	return 0;
}

char *
pushline_format(const struct pushline *pl)
{
	const char *v = pl->variant != NULL ? pl->variant : "";
	size_t len = strlen(channel_name(pl->ch)) + strlen(pl->sub) + strlen(pl->to) +
	    strlen(pl->rule) + strlen(v) + strlen(pl->text) + PUSHLINE_NFIELDS + 1;
	char *s = malloc(len);

	if (s != NULL)
		snprintf(s, len, "%s\t%s\t%s\t%s%s%s\t%s", channel_name(pl->ch), pl->sub,
		    pl->to, pl->rule, v[0] != '\0' ? "/" : "", v, pl->text);
	return s;
}

char *
pushline_render(const char *text, const char *code)
{
	size_t runs = 0, cl = strlen(code), n, i, o = 0;
	char *t;

	for (i = 0; text[i] != '\0'; i++)
		if (text[i] == MATCH_CODE_MARK && (i == 0 || text[i - 1] != MATCH_CODE_MARK))
			runs++;
	n = i + runs * cl + 1;   /* a run is at least one byte: never shorter than this */
	if ((t = malloc(n)) == NULL)
		return NULL;
	for (i = 0; text[i] != '\0'; ) {
		if (text[i] != MATCH_CODE_MARK) {
			t[o++] = text[i++];
			continue;
		}
		while (text[i] == MATCH_CODE_MARK)
			i++;
		memcpy(t + o, code, cl);
		o += cl;
	}
	t[o] = '\0';
	return t;
}

int
pushline_code_ok(const char *code)
{
	size_t i;

	for (i = 0; code[i] != '\0'; i++)
		if (i >= PUSHLINE_CODE_MAX || code[i] <= ' ' || code[i] > '~')
			return 0;
	return i > 0;
}
