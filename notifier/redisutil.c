/*
 * redisutil.c: checked access to stream replies (stage: all Redis I/O).
 * Never dereferences an element before checking its type and count.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "redisutil.h"

const struct redisReply *
ru_stream_entries(const struct redisReply *r)
{
	const struct redisReply *s;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1)
		return NULL;
	s = r->element[0];
	if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
	    s->element[1]->type != REDIS_REPLY_ARRAY)
		return NULL;
	return s->element[1];
}

int
ru_entry(const struct redisReply *entries, size_t i, const char **id,
    const struct redisReply **fields)
{
	const struct redisReply *e;

	if (i >= entries->elements)
		return -1;
	e = entries->element[i];
	if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
	    e->element[0]->type != REDIS_REPLY_STRING)
		return -1;
	*id = e->element[0]->str;
	if (e->element[1]->type == REDIS_REPLY_ARRAY)
		*fields = e->element[1];
	else if (e->element[1]->type == REDIS_REPLY_NIL)
		*fields = NULL;
	else
		return -1;
	return 0;
}

const char *
ru_field(const struct redisReply *fields, const char *name, size_t *len)
{
	size_t i;

	if (fields == NULL)
		return NULL;
	for (i = 0; i + 1 < fields->elements; i += 2) {
		const struct redisReply *k = fields->element[i], *v = fields->element[i + 1];

		if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING &&
		    strcmp(k->str, name) == 0) {
			if (len != NULL)
				*len = v->len;
			return v->str;
		}
	}
	return NULL;
}

int
ru_is_error(const struct redisReply *r, const char *prefix)
{
	return r != NULL && r->type == REDIS_REPLY_ERROR &&
	    strncmp(r->str, prefix, strlen(prefix)) == 0;
}

int
ru_key(char *buf, size_t size, const char *prefix, const char *v, size_t n)
{
	size_t p = strlen(prefix);

	if (size == 0)
		return -1;
	buf[0] = '\0';
	if (v == NULL || n == 0)
		return 0;
	if (p + n >= size)
		return -1;
	memcpy(buf, prefix, p);
	memcpy(buf + p, v, n);
	buf[p + n] = '\0';
	return 0;
}

int
ru_copy(const struct redisReply *r, size_t max, char **out)
{
	free(*out);
	*out = NULL;
	if (r->type == REDIS_REPLY_NIL)
		return 0;
	if (r->type != REDIS_REPLY_STRING || r->len > max)
		return -1;
	return (*out = strndup(r->str, r->len)) != NULL ? 0 : -1;
}
