/*
 * streampos.c: stream entry ids and the fields of an XINFO STREAM reply (stage:
 * match: the subscriber mirror's position in its change stream).
 *
 * Pure functions over strings and borrowed replies; no I/O. A reply from Redis is
 * input like any other: a field that is missing or of another type is reported as
 * absent, never read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "streampos.h"

/* Parses a stream id "<ms>-<seq>"; -1 when it is not one. */
int
streampos_parse(const char *s, unsigned long long *ms, unsigned long long *seq)
{
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*ms = strtoull(s, &end, 10);
	if (errno != 0 || *end != '-' || end[1] < '0' || end[1] > '9')
		return -1;
	*seq = strtoull(end + 1, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	return 0;
}

/* Compares two stream ids: <0, 0, >0; -2 when either is not an id. */
int
streampos_cmp(const char *a, const char *b)
{
	unsigned long long ams, aseq, bms, bseq;

	if (streampos_parse(a, &ams, &aseq) < 0 || streampos_parse(b, &bms, &bseq) < 0)
		return -2;
	if (ams != bms)
		return ams < bms ? -1 : 1;
	if (aseq != bseq)
		return aseq < bseq ? -1 : 1;
	return 0;
}

/* The string value of field name in an XINFO STREAM reply (flat pairs), or NULL.
 * *entry gets the value when it is an entry ([id, fields]) instead. */
const char *
streampos_xinfo_str(const struct redisReply *r, const char *name, const struct redisReply **entry)
{
	size_t i;

	if (entry != NULL)
		*entry = NULL;
	for (i = 0; i + 1 < r->elements; i += 2) {
		const struct redisReply *k = r->element[i], *v = r->element[i + 1];

		if (k->type != REDIS_REPLY_STRING && k->type != REDIS_REPLY_STATUS)
			continue;
		if (strcmp(k->str, name) != 0)
			continue;
		if (v->type == REDIS_REPLY_STRING || v->type == REDIS_REPLY_STATUS)
			return v->str;
		if (entry != NULL && v->type == REDIS_REPLY_ARRAY)
			*entry = v;
		return NULL;
	}
	return NULL;
}

/* The integer value of field name in an XINFO STREAM reply; -1 when absent. */
int
streampos_xinfo_int(const struct redisReply *r, const char *name, long long *out)
{
	size_t i;

	for (i = 0; i + 1 < r->elements; i += 2) {
		const struct redisReply *k = r->element[i], *v = r->element[i + 1];

		if ((k->type == REDIS_REPLY_STRING || k->type == REDIS_REPLY_STATUS) &&
		    strcmp(k->str, name) == 0 && v->type == REDIS_REPLY_INTEGER) {
			*out = v->integer;
			return 0;
		}
	}
	return -1;
}

int
streampos_no_such_key(const struct redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR && strstr(r->str, "no such key") != NULL;
}

