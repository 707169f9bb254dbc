/*
 * hooks_pending.c: the inbound opt-outs and opt-ins whose steps were cut short,
 * finished by the notifier itself (stage: http; docs/sharding.md 4f).
 *
 * hook_phone.lua keeps every message it began and has not done in the number's
 * inbound:pending (MessageSid -> when, op, channel, match, keyword label, number or
 * X id). A crash or a failed step between its begin and its done leaves it there,
 * the number already suppressed for an opt-out but some shards maybe not reached.
 * Twilio retries a webhook that was not answered 2xx only when told to, so this walk
 * does not wait for it: every tick it reads each phone shard's inbound:pending and
 * runs the steps again for every message older than [inbound] finish_after_s, as a
 * retry would (hooks_consent_call: each shard applies it once, the number's done
 * closes it once). A try dates the record anew (hook_phone.lua's resume), so a
 * message that keeps failing is tried once every finish_after_s. Several notifiers
 * may walk at once: the steps are idempotent. A finished opt-out gets its
 * confirmation text as an answered one does. The walk waits for the mirror, as the
 * webhook does. Only the first page of each shard's hash is read: it holds a
 * handful of messages (those whose steps run, or were cut short).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "app.h"
#include "clock.h"
#include "config.h"
#include "hooks.h"
#include "hooks_int.h"
#include "keys.h"
#include "log.h"
#include "substore.h"

#define PENDING_SCAN "100"            /* messages read per phone shard and tick */
#define PENDING_FIELDS 6              /* when, op, channel, match, label, value */

/* A message finished: its counts logged, an opt-out's confirmation sent. */
static void
on_finished(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct hooks_op *op = arg;
	struct hooks *h = op->h;
	char masked[32], from[sizeof(op->from)];
	enum kw_kind kw = op->kw;
	int sms = op->kind == HOOKS_OP_SMS;

	(void)rc;
	memcpy(from, op->from, sizeof(from));
	hooks_op_free(op);
	if (h == NULL)
		return;
	log_mask_phone(from, masked, sizeof(masked));
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
		log_warnx("event=inbound_finish_failed channel=%s from=%s err=\"%s\"",
		    sms ? "sms" : "dm", masked, reply != NULL &&
		    reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply");
		return;
	}
	log_info("event=inbound_finished channel=%s from=%s kind=%s found=%lld "
	    "changed=%lld", sms ? "sms" : "dm", masked, kw_kind_name(kw),
	    reply->element[0]->integer, reply->element[1]->integer);
	hooks_count(h, "inbound:finished");
	if (sms && reply->element[2]->integer == 1)
		hooks_confirm_send(h, from, -1);
}

/* Runs the steps of the message sid (its pending record rec) again. */
static void
finish(struct hooks *h, const char *sid, char *rec)
{
	char *f[PENDING_FIELDS], *save, ack[KEYS_SHARD_MAX];
	const char *ids[HOOKS_IDS_MAX];
	struct hooks_msg m;
	struct hooks_op *op;
	int i, n = 0, sms;

	save = rec;
	for (i = 0; i < PENDING_FIELDS; i++)
		if ((f[i] = strsep(&save, "\t")) == NULL)
			return;                 /* not a record of ours: left alone */
	if ((strcmp(f[1], "out") != 0 && strcmp(f[1], "in") != 0) ||
	    (strcmp(f[2], "sms") != 0 && strcmp(f[2], "dm") != 0))
		return;
	sms = strcmp(f[2], "sms") == 0;
	memset(&m, 0, sizeof(m));
	m.ch = f[2];
	m.label = f[4];
	m.match = f[3];
	m.value = f[5];
	m.sid = sid;
	m.ack = "";
	if (sms && strcmp(m.match, "phone") == 0) {
		if (keys_phone(m.value, KEYS_PH_ACK, ack, sizeof(ack)) < 0)
			return;
		m.ack = ack;
	}
	if ((op = hooks_op_new(h, NULL, sms ? HOOKS_OP_SMS : HOOKS_OP_DM)) == NULL)
		return;
	op->kw = strcmp(f[1], "out") == 0 ? KW_OPT_OUT : KW_OPT_IN;
	op->locale = -1;
	snprintf(op->from, sizeof(op->from), "%s", sms ? m.value : "");
	/* The mirror's ids with the index's (read by the steps); none is no error. */
	if (strcmp(m.match, "id") == 0) {
		ids[0] = m.value;
		n = 1;
	} else if (h->app->ss != NULL && substore_ready(h->app->ss) &&
	    (n = hooks_ix_lookup(h, sms ? HOOKS_IX_PHONE : HOOKS_IX_DM, m.value, ids,
	    HOOKS_IDS_MAX)) < 0) {
		n = 0;
	}
	log_info("event=inbound_finish channel=%s sid=%s kind=%s", f[2], sid,
	    kw_kind_name(op->kw));
	if (hooks_consent_call(op, &m, ids, (size_t)n, on_finished) < 0)
		hooks_op_free(op);
}

/* One phone shard's pending messages were read (HSCAN): the old ones finished. */
static void
on_pending(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct hooks_op *scan = arg;
	struct hooks *h = scan->h;       /* NULL once the hooks are freed */
	const redisReply *e;
	long long now = (long long)clock_now(), after;
	size_t i;

	(void)rc;
	hooks_op_free(scan);
	if (h == NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != 2 || reply->element[1]->type != REDIS_REPLY_ARRAY)
		return;                 /* the next tick reads again */
	after = h->app->cfg->inbound_finish_after_s;
	e = reply->element[1];
	for (i = 0; i + 1 < e->elements; i += 2) {
		char rec[1024];

		if (e->element[i]->type != REDIS_REPLY_STRING ||
		    e->element[i + 1]->type != REDIS_REPLY_STRING ||
		    e->element[i + 1]->len >= sizeof(rec))
			continue;
		memcpy(rec, e->element[i + 1]->str, e->element[i + 1]->len + 1);
		if (now - strtoll(rec, NULL, 10) < after)
			continue;
		finish(h, e->element[i]->str, rec);
	}
}

/* Every tick: the first page of each phone shard's pending messages (a handful: a
 * message is there only while its steps run, or after they were cut short). */
static void
pending_tick(evutil_socket_t fd, short what, void *arg)
{
	struct hooks *h = arg;
	char key[KEYS_SHARD_MAX];
	uint32_t p;

	(void)fd;
	(void)what;
	/* Not before the mirror is loaded: the live webhook waits for it too, since a
	 * subscriber stored before the phone index existed is found only there. */
	if (h->app->ss == NULL || !substore_ready(h->app->ss))
		return;
	for (p = 0; p < keys_shards(); p++) {
		const char *argv[5] = { "HSCAN", key, "0", "COUNT", PENDING_SCAN };
		struct hooks_op *scan;

		if (keys_phone_at(p, KEYS_PH_PENDING, key, sizeof(key)) < 0 ||
		    (scan = hooks_op_new(h, NULL, HOOKS_OP_STATUS)) == NULL)
			break;
		if (rconn_argv(h->app->cmd, on_pending, scan, 0, 5, argv, NULL) < 0) {
			hooks_op_free(scan);
			break;          /* not connected: the next tick */
		}
	}
}

int
hooks_pending_start(struct hooks *h)
{
	long every = h->app->cfg->inbound_finish_after_s / 4;
	struct timeval tv;

	if (every < 1)
		every = 1;
	if (every > 15)
		every = 15;
	tv.tv_sec = every;
	tv.tv_usec = 0;
	if ((h->pending_tick = event_new(h->app->base, -1, EV_PERSIST, pending_tick,
	    h)) == NULL || event_add(h->pending_tick, &tv) < 0)
		return -1;
	return 0;
}

void
hooks_pending_stop(struct hooks *h)
{
	if (h->pending_tick != NULL) {
		event_free(h->pending_tick);
		h->pending_tick = NULL;
	}
}
