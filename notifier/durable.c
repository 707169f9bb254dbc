/*
 * durable.c: a script, then WAIT, then the caller (stage: plan, send).
 *
 * With a WAIT behind it, the script's reply is copied (hiredis frees it when its
 * callback returns) and handed over with WAIT's verdict once WAIT answers; without
 * one (redis.wait_replicas = 0, a single Redis) it is handed over at once, uncopied. Both commands go out in the
 * same loop turn on the same connection, so Redis answers them in that order and no
 * round trip of our own is added. Must never report durable for a WAIT that counted
 * fewer replicas than configured, or that did not answer.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "durable.h"
#include "log.h"
#include "scripts.h"

static struct durable_stats durable_st;

struct durable_call {
	durable_fn *cb;
	void *arg;
	long replicas;
	long timeout_ms;           /* WAIT's */
	int waiting;               /* WAIT was sent: it delivers the result */
	int slot;                  /* on a cluster (>= 0): WAIT goes once the script
	                            * answered, to the node that answered; -1 otherwise */
	struct redisReply *reply;  /* the script's, copied; NULL: no reply */
};

struct redisReply *
durable_reply_dup(const struct redisReply *r)
{
	struct redisReply *c;
	size_t i;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->type = r->type;
	c->integer = r->integer;
	if (r->str != NULL) {
		if ((c->str = malloc(r->len + 1)) == NULL)
			goto err;
		memcpy(c->str, r->str, r->len);
		c->str[r->len] = '\0';
		c->len = r->len;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
		if ((c->element = calloc(r->elements, sizeof(*c->element))) == NULL)
			goto err;
		c->elements = r->elements;
		for (i = 0; i < r->elements; i++)
			if ((c->element[i] = durable_reply_dup(r->element[i])) == NULL)
				goto err;
	}
	return c;
err:
	freeReplyObject(c);
	return NULL;
}

void
durable_stats(struct durable_stats *st)
{
	*st = durable_st;
}

int
durable_lagging(const struct durable_stats *st, int64_t now_ms, long window_ms)
{
	return st->last_short_ms > st->last_ok_ms && now_ms - st->last_short_ms <= window_ms;
}

/* One WAIT verdict, counted. */
static void
durable_count(int ok)
{
	durable_st.waits++;
	if (ok) {
		durable_st.last_ok_ms = clock_mono_ms();
	} else {
		durable_st.short_waits++;
		durable_st.last_short_ms = clock_mono_ms();
	}
}

static void
durable_finish(struct rconn *rc, struct durable_call *dc, int durable)
{
	dc->cb(rc, dc->reply, dc->reply != NULL && durable, dc->arg);
	if (dc->reply != NULL)
		freeReplyObject(dc->reply);
	free(dc);
}

static void
durable_on_wait(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct durable_call *dc = arg;
	int ok = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= dc->replicas;

	if (!ok)
		log_warnx("event=wait_short replicas_wanted=%ld replicas=%lld err=\"%s\"",
		    dc->replicas, r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer :
		    -1LL, r == NULL ? "no reply" : r->type == REDIS_REPLY_ERROR ? r->str :
		    "too few replicas acknowledged within the timeout");
	/* Only WAIT's own answer says how the replicas do; no reply (a dropped
	 * connection, a timeout, a shutdown) is Redis', and /healthz says so apart. */
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		durable_count(ok);
	durable_finish(rc, dc, ok);
}

static void durable_on_wait(struct rconn *rc, struct redisReply *r, void *arg);

/* On a cluster: the script answered; WAIT goes now to the node that answered it, on
 * the same connection (rconn_argv_here): WAIT counts the replicas of that
 * connection's writes only, so on another node, or after a reconnect, it would
 * confirm nothing and could still answer "enough". A WAIT pipelined behind the
 * script might reach another node than a redirected script, and answer first. When
 * that connection is gone, the write is not confirmed. */
static void
durable_wait_after(struct rconn *rc, struct redisReply *r, struct durable_call *dc)
{
	char n[24], t[24];
	const char *argv[3] = { "WAIT", n, t };

	if (r == NULL || r->type == REDIS_REPLY_ERROR ||
	    (dc->reply = durable_reply_dup(r)) == NULL) {
		dc->cb(rc, r, 0, dc->arg);
		free(dc);
		return;
	}
	snprintf(n, sizeof(n), "%ld", dc->replicas);
	snprintf(t, sizeof(t), "%ld", dc->timeout_ms);
	if (rconn_argv_here(rc, durable_on_wait, dc, dc->timeout_ms +
	    rconn_timeout_ms(rc), 3, argv, NULL) < 0) {
		log_warnx("event=wait_short replicas_wanted=%ld err=\"the connection that "
		    "ran the script is gone\"", dc->replicas);
		durable_finish(rc, dc, 0);
	}
}

static void
durable_on_script(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct durable_call *dc = arg;

	if (dc->slot >= 0) {
		durable_wait_after(rc, r, dc);
		return;
	}
	if (!dc->waiting) {   /* no WAIT behind it: the reply as it is, not a copy */
		dc->cb(rc, r, r != NULL && dc->replicas == 0, dc->arg);
		free(dc);
		return;
	}
	if (r != NULL && (dc->reply = durable_reply_dup(r)) == NULL)
		log_errorx("event=durable_failed err=\"out of memory copying a reply\"");
}

/* A new call for cb, or NULL on OOM. */
static struct durable_call *
durable_new(const struct durable_config *cfg, durable_fn *cb, void *arg)
{
	struct durable_call *dc = calloc(1, sizeof(*dc));

	if (dc != NULL) {
		dc->cb = cb;
		dc->arg = arg;
		dc->replicas = cfg != NULL ? cfg->replicas : 0;
		dc->timeout_ms = cfg != NULL ? cfg->timeout_ms : 0;
		dc->slot = -1;
	}
	return dc;
}

/* The script of dc was sent on rc: WAIT right behind it, when replicas are wanted. */
static void
durable_wait(struct rconn *rc, const struct durable_config *cfg, struct durable_call *dc)
{
	char n[24], t[24];

	if (dc->replicas == 0)
		return;
	if (rconn_last_slot(rc) >= 0) {
		/* A cluster: after the script's answer, to its slot (durable_wait_after). */
		dc->slot = rconn_last_slot(rc);
		return;
	}
	snprintf(n, sizeof(n), "%ld", dc->replicas);
	snprintf(t, sizeof(t), "%ld", cfg->timeout_ms);
	/* Its deadline: WAIT's own timeout, plus the connection's usual margin. */
	if (rconn_cmd(rc, durable_on_wait, dc, cfg->timeout_ms + rconn_timeout_ms(rc),
	    "WAIT %s %s", n, t) == 0)
		dc->waiting = 1;
	/* Not sent (the connection dropped in between): the script's callback reports
	 * "not durable" when it runs. */
}

int
durable_script_call(struct rconn *rc, const struct durable_config *cfg,
    const char *name, int nkeys, int nargs, const char **args, const size_t *lens,
    durable_fn *cb, void *arg)
{
	struct durable_call *dc = durable_new(cfg, cb, arg);

	if (dc == NULL)
		return -1;
	if (script_call_named(rc, name, nkeys, nargs, args, lens, durable_on_script,
	    dc) < 0) {
		free(dc);
		return -1;
	}
	durable_wait(rc, cfg, dc);
	return 0;
}

int
durable_script_call_args(struct rconn *rc, const struct durable_config *cfg,
    enum script_id id, struct script_args *sa, durable_fn *cb, void *arg)
{
	struct durable_call *dc = durable_new(cfg, cb, arg);

	if (dc == NULL) {
		script_args_release(sa);
		return -1;
	}
	if (script_call_args(rc, id, sa, durable_on_script, dc) < 0) {
		free(dc);
		return -1;
	}
	durable_wait(rc, cfg, dc);
	return 0;
}
