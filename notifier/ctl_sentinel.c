/*
 * ctl_sentinel.c: dealpushctl finds the Redis primary through Redis Sentinel (stage:
 * outside the pipeline, the operator's CLI), as the daemon does with redis.sentinels
 * and redis.master_name: any sentinel that answers, the address confirmed with ROLE.
 * Blocking, with the CLI's timeouts; it must never hand back a replica's address.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "sentinel.h"

#include "ctl_int.h"

/* The port of a sentinel's answer, or -1. */
static int
ctl_port(const char *s)
{
	char *end;
	long p;

	errno = 0;
	p = strtol(s, &end, 10);
	return errno != 0 || end == s || *end != '\0' || p < 1 || p > 65535 ? -1 : (int)p;
}

/* 1 when the Redis at host:port says ROLE master (after the CLI's login), else 0. */
static int
ctl_is_primary(const char *host, int port)
{
	struct timeval tv = { CTL_CONNECT_TIMEOUT_S, 0 };
	const char *user = getenv("DEALPUSH_REDIS_USER");
	const char *password = getenv("DEALPUSH_REDIS_PASSWORD");
	redisContext *c = redisConnectWithTimeout(host, port, tv);
	redisReply *r = NULL;
	int yes = 0;

	if (c == NULL || c->err)
		goto out;
	if (password != NULL && *password != '\0') {
		r = user != NULL && *user != '\0' ? redisCommand(c, "AUTH %s %s", user,
		    password) : redisCommand(c, "AUTH %s", password);
		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			goto out;
		freeReplyObject(r);
	}
	r = redisCommand(c, "ROLE");
	yes = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "master") == 0;
out:
	freeReplyObject(r);
	redisFree(c);
	return yes;
}

int
ctl_sentinel_primary(const char *list, const char *master, char *addr, size_t size)
{
	struct sentinel_addr s[SENTINEL_MAX];
	struct timeval tv = { CTL_CONNECT_TIMEOUT_S, 0 };
	char err[300];
	int n, i;

	if (master == NULL || *master == '\0') {
		fprintf(stderr, "dealpushctl: --sentinel needs --master NAME (or "
		    "$DEALPUSH_MASTER)\n");
		return -1;
	}
	if ((n = sentinel_parse(list, s, SENTINEL_MAX, err, sizeof(err))) < 0) {
		fprintf(stderr, "dealpushctl: bad sentinel list \"%s\": %s\n", list, err);
		return -1;
	}
	for (i = 0; i < n; i++) {
		redisContext *c = redisConnectWithTimeout(s[i].host, s[i].port, tv);
		redisReply *r = NULL;
		int ok = 0;

		if (c == NULL || c->err) {
			fprintf(stderr, "dealpushctl: sentinel %s:%d: %s\n", s[i].host,
			    s[i].port, c != NULL ? c->errstr : "out of memory");
			redisFree(c);
			continue;
		}
		r = redisCommand(c, "SENTINEL GET-MASTER-ADDR-BY-NAME %s", master);
		if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
		    r->element[0]->type == REDIS_REPLY_STRING &&
		    r->element[1]->type == REDIS_REPLY_STRING) {
			int port = ctl_port(r->element[1]->str);

			if (port > 0 && ctl_is_primary(r->element[0]->str, port)) {
				snprintf(addr, size, strchr(r->element[0]->str, ':') ? "[%s]:%d" :
				    "%s:%d", r->element[0]->str, port);
				ok = 1;
			} else {
				fprintf(stderr, "dealpushctl: sentinel %s:%d names %s:%d, which is "
				    "not a primary (ROLE)\n", s[i].host, s[i].port,
				    r->element[0]->str, port);
			}
		} else {
			fprintf(stderr, "dealpushctl: sentinel %s:%d: %s\n", s[i].host,
			    s[i].port, r == NULL ? c->errstr : r->type == REDIS_REPLY_ERROR ?
			    r->str : "it monitors no master of that name (--master)");
		}
		freeReplyObject(r);
		redisFree(c);
		if (ok)
			return 0;
	}
	fprintf(stderr, "dealpushctl: no sentinel of \"%s\" named the primary of \"%s\"\n",
	    list, master);
	return -1;
}
