/*
 * ctl_conn.c: what dealpushctl's Redis commands are sent through (stage: outside the
 * pipeline, the operator's CLI): one blocking connection to one Redis, or a Redis
 * Cluster behind the small router of ctl_cluster.c. A command is exactly
 * redisCommand / redisCommandArgv on one Redis; on a cluster the same bytes are
 * split into their arguments and routed by their key.
 *
 * It must never print a password, and never send a command on a cluster that the
 * router cannot place (the router refuses it, naming the command).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "scripts.h"

#include "ctl_int.h"

/* Splits "host:port" or "[v6]:port". Returns 0, or -1 on a malformed address. */
static int
ctl_parse_addr(const char *addr, char *host, size_t hostsz, int *port)
{
	const char *colon = strrchr(addr, ':'), *h = addr;
	size_t hlen;
	char *end = NULL;
	long p;

	if (colon == NULL)
		return -1;
	hlen = (size_t)(colon - addr);
	if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= hostsz)
		return -1;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || p < 1 || p > 65535)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (int)p;
	return 0;
}

/* AUTH with $DEALPUSH_REDIS_PASSWORD (and $DEALPUSH_REDIS_USER), as the notifier's
 * redis.password and redis.username. Returns 0 (also when no password is set), or
 * -1 with why in err (the password is never in it). */
static int
ctl_redis_auth(redisContext *c, const char *addr, char *err, size_t errsz)
{
	const char *user = getenv("DEALPUSH_REDIS_USER");
	const char *password = getenv("DEALPUSH_REDIS_PASSWORD");
	redisReply *r;
	int rc = -1;

	if (password == NULL || *password == '\0') {
		if (user != NULL && *user != '\0') {
			snprintf(err, errsz, "DEALPUSH_REDIS_USER needs DEALPUSH_REDIS_PASSWORD");
			return -1;
		}
		return 0;
	}
	if (user != NULL && *user != '\0')
		r = redisCommand(c, "AUTH %s %s", user, password);
	else
		r = redisCommand(c, "AUTH %s", password);
	if (r == NULL)
		snprintf(err, errsz, "redis at %s: AUTH: %s", addr, c->errstr);
	else if (r->type == REDIS_REPLY_ERROR)
		snprintf(err, errsz, "redis at %s: login refused: %.200s", addr, r->str);
	else
		rc = 0;
	freeReplyObject(r);
	return rc;
}

redisContext *
ctl_redis_connect(const char *addr, char *err, size_t errsz)
{
	struct timeval ctv = { CTL_CONNECT_TIMEOUT_S, 0 }, ttv = { CTL_COMMAND_TIMEOUT_S, 0 };
	redisContext *c;
	char host[256];
	int port;

	if (ctl_parse_addr(addr, host, sizeof(host), &port) < 0) {
		snprintf(err, errsz, "bad Redis address \"%.300s\" (want HOST:PORT)", addr);
		return NULL;
	}
	c = redisConnectWithTimeout(host, port, ctv);
	if (c == NULL || c->err) {
		snprintf(err, errsz, "cannot connect to Redis at %s: %s", addr,
		    c != NULL ? c->errstr : "out of memory");
		redisFree(c);
		return NULL;
	}
	if (redisSetTimeout(c, ttv) != REDIS_OK) {
		snprintf(err, errsz, "cannot set the Redis timeout: %s", c->errstr);
		redisFree(c);
		return NULL;
	}
	if (ctl_redis_auth(c, addr, err, errsz) < 0) {
		redisFree(c);
		return NULL;
	}
	return c;
}

redisContext *
ctl_redis_open(const char *addr)
{
	char err[CTL_ERR_MAX];
	redisContext *c = ctl_redis_connect(addr, err, sizeof(err));

	if (c == NULL)
		fprintf(stderr, "dealpushctl: %s\n", err);
	return c;
}

int
ctl_conn_open(struct ctl_conn *k, const char *addr, const char *seeds)
{
	memset(k, 0, sizeof(*k));
	if (seeds != NULL) {
		k->cl = ctl_cluster_open(seeds, k->err, sizeof(k->err));
		if (k->cl == NULL) {
			fprintf(stderr, "dealpushctl: %s\n", k->err);
			return -1;
		}
		return 0;
	}
	return (k->c = ctl_redis_open(addr)) != NULL ? 0 : -1;
}

void
ctl_conn_close(struct ctl_conn *k)
{
	redisFree(k->c);
	ctl_cluster_free(k->cl);
	k->c = NULL;
	k->cl = NULL;
}

const char *
ctl_errstr(const struct ctl_conn *k)
{
	if (k->c != NULL && k->c->errstr[0] != '\0')
		return k->c->errstr;
	return k->err[0] != '\0' ? k->err : "no reply";
}

/* A decimal of the RESP header at *p (up to "\r\n" before end), *p moved past it.
 * -1 when malformed. */
static long long
ctl_resp_num(const char **p, const char *end)
{
	long long v = 0;
	const char *s = *p;

	if (s >= end || *s < '0' || *s > '9')
		return -1;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > 100000000000LL)
			return -1;
		v = v * 10 + (*s - '0');
	}
	if (end - s < 2 || s[0] != '\r' || s[1] != '\n')
		return -1;
	*p = s + 2;
	return v;
}

int
ctl_resp_split(const char *buf, size_t len, int max, const char **argv, size_t *lens)
{
	const char *p = buf, *end = buf + len;
	long long n, i, l;

	if (len == 0 || *p++ != '*' || (n = ctl_resp_num(&p, end)) < 1 || n > max)
		return -1;
	for (i = 0; i < n; i++) {
		if (p >= end || *p++ != '$' || (l = ctl_resp_num(&p, end)) < 0 ||
		    end - p < l + 2 || p[l] != '\r' || p[l + 1] != '\n')
			return -1;
		argv[i] = p;
		lens[i] = (size_t)l;
		p += l + 2;
	}
	return p == end ? (int)n : -1;
}

/* The command formatted by hiredis (its own bytes) routed on the cluster. */
static redisReply *
ctl_cluster_formatted(struct ctl_conn *k, const char *cmd, int len)
{
	const char **argv = NULL;
	size_t *lens = NULL;
	redisReply *r = NULL;
	int argc, max = 0;
	const char *p;

	/* The count of arguments is the header's: at most one per "$". */
	for (p = cmd; p < cmd + len; p++)
		max += *p == '$';
	if (max == 0 || (argv = calloc((size_t)max, sizeof(*argv))) == NULL ||
	    (lens = calloc((size_t)max, sizeof(*lens))) == NULL) {
		snprintf(k->err, sizeof(k->err), max == 0 ? "an empty command" :
		    "out of memory");
		goto out;
	}
	if ((argc = ctl_resp_split(cmd, (size_t)len, max, argv, lens)) < 0) {
		snprintf(k->err, sizeof(k->err), "a command hiredis formatted cannot be read "
		    "back");
		goto out;
	}
	r = ctl_cluster_argv(k->cl, argc, argv, lens, k->err, sizeof(k->err));
out:
	free(argv);
	free(lens);
	return r;
}

redisReply *
ctl_command(struct ctl_conn *k, const char *fmt, ...)
{
	redisReply *r = NULL;
	char *cmd = NULL;
	va_list ap;
	int len;

	k->err[0] = '\0';
	va_start(ap, fmt);
	if (k->cl == NULL) {
		r = redisvCommand(k->c, fmt, ap);
		va_end(ap);
		return r;
	}
	len = redisvFormatCommand(&cmd, fmt, ap);
	va_end(ap);
	if (len < 0) {
		snprintf(k->err, sizeof(k->err), "cannot format the command \"%.40s\"", fmt);
		return NULL;
	}
	r = ctl_cluster_formatted(k, cmd, len);
	redisFreeCommand(cmd);
	return r;
}

redisReply *
ctl_command_argv(struct ctl_conn *k, int argc, const char **argv, const size_t *lens)
{
	k->err[0] = '\0';
	if (k->cl == NULL)
		return redisCommandArgv(k->c, argc, argv, lens);
	return ctl_cluster_argv(k->cl, argc, argv, lens, k->err, sizeof(k->err));
}

redisReply *
ctl_command_expect(struct ctl_conn *k, redisReply *r, int type, const char *what)
{
	if (r == NULL) {
		fprintf(stderr, "dealpushctl: redis: %s: %s\n", what, ctl_errstr(k));
	} else if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "dealpushctl: redis: %s: %s\n", what, r->str);
	} else if (r->type != type) {
		fprintf(stderr, "dealpushctl: redis: %s: unexpected reply type %d\n", what,
		    r->type);
	} else {
		return r;
	}
	freeReplyObject(r);
	return NULL;
}

int
ctl_conn_load_script(struct ctl_conn *k, const char *name, char *sha)
{
	const char *src = script_source(name);
	redisReply *r;
	int rc = -1;

	if (src == NULL) {
		fprintf(stderr, "dealpushctl: %s.lua is not built in\n", name);
		return -1;
	}
	/* On a cluster: every primary, the same SHA1 from each (ctl_cluster.c). */
	if ((r = ctl_command_expect(k, ctl_command(k, "SCRIPT LOAD %s", src),
	    REDIS_REPLY_STRING, "SCRIPT LOAD")) == NULL)
		return -1;
	if (r->len == 40) {
		memcpy(sha, r->str, 41);
		rc = 0;
	} else {
		fprintf(stderr, "dealpushctl: redis: SCRIPT LOAD: unexpected reply\n");
	}
	freeReplyObject(r);
	return rc;
}

int
ctl_load_script(redisContext *c, const char *name, char *sha)
{
	struct ctl_conn k;

	memset(&k, 0, sizeof(k));
	k.c = c;
	return ctl_conn_load_script(&k, name, sha);
}
