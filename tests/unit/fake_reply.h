/*
 * fake_reply.h: hiredis replies built by hand, for unit tests of code that reads
 * replies (a CLUSTER SHARDS map, an XINFO STREAM). Each builder aborts the test on
 * out of memory; free a tree with freeReplyObject() as hiredis' own.
 * Include after <cmocka.h> and <hiredis/hiredis.h>.
 */
#ifndef DEALPUSH_TEST_FAKE_REPLY_H
#define DEALPUSH_TEST_FAKE_REPLY_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static inline redisReply *
rep(int type)
{
	redisReply *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->type = type;
	return r;
}

static inline redisReply *
str(const char *s)
{
	redisReply *r = rep(REDIS_REPLY_STRING);

	assert_non_null(r->str = strdup(s));
	r->len = strlen(s);
	return r;
}

static inline redisReply *
num(long long v)
{
	redisReply *r = rep(REDIS_REPLY_INTEGER);

	r->integer = v;
	return r;
}

/* An array of n replies given as arguments (taken over). */
static inline redisReply *
arr(size_t n, ...)
{
	redisReply *r = rep(REDIS_REPLY_ARRAY);
	va_list ap;
	size_t i;

	r->elements = n;
	r->element = calloc(n ? n : 1, sizeof(*r->element));
	assert_non_null(r->element);
	va_start(ap, n);
	for (i = 0; i < n; i++)
		r->element[i] = va_arg(ap, redisReply *);
	va_end(ap);
	return r;
}

#endif
