/*
 * rconn_cluster.c: an rconn on a Redis Cluster (stage: all Redis I/O; docs/
 * architecture.md, "The cluster client").
 *
 * With rconn_config.cluster set, an rconn is not one connection but an rcluster of
 * its own (one connection per primary; a module that blocks in XREADGROUP blocks only
 * its own), and every command is routed by rroute.h: to the primary of its keys'
 * slot, to any primary, to every primary (SCRIPT LOAD: one callback, with the first
 * error any node gave or else the last reply), or to the node of the command before
 * (WAIT: the slot of the last keyed command sent on this rconn, or the slot named by
 * rconn_argv_slot). A command that cannot be routed (keys in two slots, a walk of one
 * node's keyspace, a command not in the table) is refused with a log line: the caller
 * splits it. The rest of rconn's face holds: every callback exactly once, never from
 * inside the call that sent the command; ready once the slot map is read (and again
 * after a failover brings a new primary: the moment to load scripts there).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "durable.h"
#include "log.h"
#include "rcluster.h"
#include "rconn_int.h"
#include "rroute.h"

#define RCL_ARGS_MAX 1048576       /* arguments of one formatted command, at most */

/* One command in flight: the rconn callback it answers. */
struct rcl_tramp {
	struct rconn *rc;
	rconn_reply_fn *cb;
	void *arg;
	struct redisReply *first_err;  /* every-node command: the first failure */
	struct redisReply *last;       /* and the last good reply */
};

/* A command's callback has run. The ready callback promises that every reply of
 * before has run (the mirror and the stream readers start over from it): one
 * asked for while commands were out runs now that the last has answered. */
static void
rcl_done(struct rconn *rc)
{
	if (rc->cl_inflight > 0)
		rc->cl_inflight--;
	if (rc->cl_inflight == 0 && rc->cl_ready_due) {
		rc->cl_ready_due = 0;
		rc->generation++;
		if (rc->on_ready != NULL)
			rc->on_ready(rc, rc->arg);
	}
}

static void
rcl_on_reply(struct rcluster *rcl, struct redisReply *r, void *arg)
{
	struct rcl_tramp *t = arg;
	struct rconn *rc = t->rc;

	(void)rcl;
	if (t->cb != NULL)
		t->cb(rc, r, t->arg);
	free(t);
	rcl_done(rc);
}

static void
rcl_on_node(struct rcluster *rcl, const char *addr, struct redisReply *r, void *arg)
{
	struct rcl_tramp *t = arg;

	(void)rcl;
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		if (t->first_err == NULL && r != NULL)
			t->first_err = durable_reply_dup(r);
		if (r == NULL)
			log_warnx("event=cluster_node_failed conn=%s node=%s err=\"no reply\"",
			    t->rc->name, addr);
		return;
	}
	if (t->last != NULL)
		freeReplyObject(t->last);
	t->last = durable_reply_dup(r);
}

static void
rcl_on_every(struct rcluster *rcl, int nodes, int failed, void *arg)
{
	struct rcl_tramp *t = arg;
	struct rconn *rc = t->rc;
	struct redisReply *r = t->first_err != NULL ? t->first_err : t->last;

	(void)rcl;
	/* A node that gave no reply at all and no error: NULL, as a timeout is. */
	if (failed > 0 && t->first_err == NULL)
		r = NULL;
	if (nodes == 0)
		r = NULL;
	if (t->cb != NULL)
		t->cb(rc, r, t->arg);
	if (t->first_err != NULL)
		freeReplyObject(t->first_err);
	if (t->last != NULL)
		freeReplyObject(t->last);
	free(t);
	rcl_done(rc);
}

static void
rcl_on_ready(struct rcluster *rcl, void *arg)
{
	struct rconn *rc = arg;

	(void)rcl;
	if (rc->cl_inflight > 0) {
		/* A new primary (a failover) while commands are out: ready once they
		 * have answered (rcl_done). */
		rc->cl_ready_due = 1;
		return;
	}
	rc->generation++;
	if (rc->on_ready != NULL)
		rc->on_ready(rc, rc->arg);
}

int
rconn_cluster_new(struct rconn *rc, const struct rconn_config *cfg)
{
	struct rcluster_config cc;

	memset(&cc, 0, sizeof(cc));
	cc.seeds = cfg->cluster;
	cc.password = cfg->password;
	cc.connect_timeout_ms = cfg->connect_timeout_ms;
	cc.command_timeout_ms = cfg->command_timeout_ms;
	cc.reconnect_max_ms = cfg->reconnect_max_ms;
	rc->last_slot = -1;
	return (rc->cl = rcluster_new(rc->base, &cc, rc->name, rcl_on_ready, rc)) != NULL ?
	    0 : -1;
}

/* Sends argv to where rr says (slot: the node for RROUTE_SAME). 0 or -1. */
static int
rcl_send(struct rconn *rc, const struct rroute *rr, int slot, rconn_reply_fn *cb,
    void *arg, long timeout_ms, int argc, const char **argv, const size_t *lens)
{
	struct rcl_tramp *t = calloc(1, sizeof(*t));
	int rv = -1;

	if (t == NULL)
		return -1;
	t->rc = rc;
	t->cb = cb;
	t->arg = arg;
	switch (rr->kind) {
	case RROUTE_KEY:
		rc->last_slot = rr->slot;
		rv = rcluster_argv(rc->cl, rr->key, rcl_on_reply, t, timeout_ms, argc, argv,
		    lens);
		break;
	case RROUTE_ANY:
		rv = rcluster_argv(rc->cl, RCLUSTER_NOKEY, rcl_on_reply, t, timeout_ms, argc,
		    argv, lens);
		break;
	case RROUTE_SAME:
		rv = slot < 0 ? rcluster_argv(rc->cl, RCLUSTER_NOKEY, rcl_on_reply, t,
		    timeout_ms, argc, argv, lens) : rcluster_argv_slot(rc->cl, slot,
		    rcl_on_reply, t, timeout_ms, argc, argv, lens);
		break;
	case RROUTE_EVERY:
		rv = rcluster_each(rc->cl, rcl_on_node, rcl_on_every, t, timeout_ms, argc,
		    argv, lens);
		break;
	default:
		log_warnx("event=cluster_unroutable conn=%s cmd=%.*s route=%s", rc->name,
		    argc > 0 ? (int)(lens != NULL ? lens[0] : strlen(argv[0])) : 0,
		    argc > 0 ? argv[0] : "", rroute_kind_name(rr->kind));
		break;
	}
	if (rv < 0)
		free(t);
	else
		rc->cl_inflight++;
	return rv;
}

int
rconn_cluster_argv_here(struct rconn *rc, rconn_reply_fn *cb, void *arg,
    long timeout_ms, int argc, const char **argv, const size_t *lens)
{
	struct rcl_tramp *t;
	char addr[64];
	unsigned long gen;

	if (rcluster_reply_node(rc->cl, addr, sizeof(addr), &gen) < 0 ||
	    (t = calloc(1, sizeof(*t))) == NULL)
		return -1;
	t->rc = rc;
	t->cb = cb;
	t->arg = arg;
	if (rcluster_argv_node(rc->cl, addr, gen, rcl_on_reply, t, timeout_ms, argc, argv,
	    lens) < 0) {
		free(t);
		return -1;
	}
	rc->cl_inflight++;
	return 0;
}

int
rconn_cluster_argv(struct rconn *rc, int slot, rconn_reply_fn *cb, void *arg,
    long timeout_ms, int argc, const char **argv, const size_t *lens)
{
	struct rroute rr;

	if (rroute_of(argc, (const char *const *)argv, lens, &rr) == RROUTE_SAME &&
	    slot < 0)
		slot = rc->last_slot;
	if (slot >= 0 && rr.kind != RROUTE_SAME) {
		/* rconn_argv_slot of a keyed command: its keys decide, not the caller */
		slot = -1;
	}
	return rcl_send(rc, &rr, slot, cb, arg, timeout_ms, argc, argv, lens);
}

/* Reads "$<len>\r\n<bytes>\r\n" at *p (end: the buffer's end) into *s, *n. 0 or -1. */
static int
rcl_bulk(const char **p, const char *end, const char **s, size_t *n)
{
	const char *q = *p;
	size_t len = 0;

	if (q >= end || *q++ != '$')
		return -1;
	while (q < end && *q >= '0' && *q <= '9') {
		len = len * 10 + (size_t)(*q++ - '0');
		if (len > (size_t)1 << 31)
			return -1;
	}
	if (end - q < 2 || q[0] != '\r' || q[1] != '\n' || (size_t)(end - q - 2) < len + 2)
		return -1;
	q += 2;
	*s = q;
	*n = len;
	q += len;
	if (q[0] != '\r' || q[1] != '\n')
		return -1;
	*p = q + 2;
	return 0;
}

int
rconn_cluster_formatted(struct rconn *rc, rconn_reply_fn *cb, void *arg,
    long timeout_ms, const char *cmd, size_t len)
{
	const char *p = cmd, *end = cmd + len, **argv = NULL;
	size_t *lens = NULL, argc = 0, i;
	int rv = -1;

	if (p >= end || *p++ != '*')
		return -1;
	while (p < end && *p >= '0' && *p <= '9') {
		argc = argc * 10 + (size_t)(*p++ - '0');
		if (argc > RCL_ARGS_MAX)
			return -1;
	}
	if (argc == 0 || end - p < 2 || p[0] != '\r' || p[1] != '\n')
		return -1;
	p += 2;
	if ((argv = calloc(argc, sizeof(*argv))) == NULL ||
	    (lens = calloc(argc, sizeof(*lens))) == NULL)
		goto out;
	for (i = 0; i < argc; i++)
		if (rcl_bulk(&p, end, &argv[i], &lens[i]) < 0)
			goto out;
	rv = rconn_cluster_argv(rc, -1, cb, arg, timeout_ms, (int)argc, argv, lens);
out:
	free(argv);
	free(lens);
	return rv;
}

int
rconn_cluster_ready(const struct rconn *rc)
{
	return rcluster_is_ready(rc->cl);
}

void
rconn_cluster_stats(const struct rconn *rc, struct rconn_stat *st)
{
	struct rcluster_stat cs;

	rcluster_stats(rc->cl, &cs);
	st->ready = rcluster_is_ready(rc->cl);
	st->generation = rc->generation;
	st->timeouts = cs.expired;
	st->drops = cs.gave_up;
	st->waiting = cs.waiting;
	snprintf(st->addr, sizeof(st->addr), "cluster");
}

void
rconn_cluster_free(struct rconn *rc)
{
	/* The callbacks freeing runs (each with NULL) must not call ready. */
	rc->cl_ready_due = 0;
	rc->on_ready = NULL;
	rcluster_free(rc->cl);
	rc->cl = NULL;
}

void
rconn_cluster_reset(struct rconn *rc)
{
	rcluster_refresh(rc->cl);
}
