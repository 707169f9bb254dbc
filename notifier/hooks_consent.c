/*
 * hooks_consent.c: hook_consent.lua run for an inbound message's senders (stage:
 * http), one call per shard of their ids (keys.h), the calls one after the other and
 * their counts taken together for the webhook's answer. A reply kept for review is
 * hook_reply.lua on the slot of replies, after the deal it answers is read from its
 * subscriber's shard.
 *
 * In the single-instance layout this is one call, as before sharding. In the sharded
 * layout each call names one shard's subscriber keys and carries the MessageSid as
 * "<sid>:<shard>", so that a replayed message is recognised shard by shard (the
 * sid's record stays per shard, docs/sharding.md section 4f), and a START replayed
 * after a STOP changes nothing in any shard. It must never answer before every call
 * has succeeded: an opt-out is acknowledged only once it is in force everywhere.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "app.h"
#include "channel.h"
#include "clock.h"
#include "hooks.h"
#include "hooks_int.h"
#include "keys.h"
#include "log.h"
#include "model.h"
#include "scripts.h"
#include "timefmt.h"

struct consent_chain {
	struct hooks_op *op;            /* op->h is NULL once the hooks are freed */
	rconn_reply_fn *cb;
	char *ch, *label, *match, *value, *ack, *sid, *text;
	size_t text_len;
	char ids[HOOKS_IDS_MAX][MODEL_ID_MAX + 1];
	uint32_t shard[HOOKS_IDS_MAX];
	size_t nids;
	uint32_t groups[HOOKS_IDS_MAX];   /* the distinct shards, ascending */
	size_t ngroups, at;
	long long sum[3];
	int all_duplicate;
};

static void
chain_free(struct consent_chain *c)
{
	free(c->ch);
	free(c->label);
	free(c->match);
	free(c->value);
	free(c->ack);
	free(c->sid);
	free(c->text);
	free(c);
}

/* Sends the call of group c->at. Returns 0, or -1 (nothing sent). */
static int
chain_send(struct consent_chain *c, rconn_reply_fn *step)
{
	const char *args[8 + 11 + HOOKS_IDS_MAX];
	size_t lens[8 + 11 + HOOKS_IDS_MAX];
	char how[64], now[24], rfc[32], ttl[16];
	char sid[HOOKS_SID_MAX + 16];
	char sk[KEYS_SUB_NKEYS][KEYS_SHARD_MAX];
	struct hooks_op *op = c->op;
	uint32_t shard = c->ngroups > 0 ? c->groups[c->at] : 0;
	int named = channel_from_name(c->ch);
	enum channel ch = named >= 0 ? (enum channel)named : CH_SMS;
	int64_t t = clock_now();
	size_t i, n = 0, nkeys;

	if (keys_sub_keys(shard, sk) < 0)
		return -1;
	if (keys_shards() > 1 && c->sid[0] != '\0' && op->kw != KW_NONE)
		snprintf(sid, sizeof(sid), "%s:%u", c->sid, shard);
	else
		snprintf(sid, sizeof(sid), "%s", c->sid);
	snprintf(how, sizeof(how), "%s:%s", op->kind == HOOKS_OP_SMS ? "sms" : "dm",
	    op->kw == KW_OPT_OUT ? "STOP" : "START");
	snprintf(now, sizeof(now), "%lld", (long long)t);
	time_format_rfc3339(t, rfc, sizeof(rfc));
	snprintf(ttl, sizeof(ttl), "%d", HOOKS_CONFIRM_DEDUPE_S);
	/* ORDER HOOK_CONSENT_KEYS: the header of hook_consent.lua. The number's keys
	 * (suppression, sids, ack) stay global until the phone shards (step 5). */
	args[n++] = sk[0];
	args[n++] = sk[1];
	args[n++] = sk[4 + ch];
	args[n++] = sk[2];
	args[n++] = c->ack[0] != '\0' ? c->ack : "optout_ack:";
	args[n++] = "inbound:sids";
	args[n++] = "suppressed:sms";
	args[n++] = sk[3];
	nkeys = n;
	args[n++] = op->kw == KW_OPT_OUT ? "out" : "in";
	args[n++] = c->ch;
	args[n++] = how;
	args[n++] = c->label;
	args[n++] = now;
	args[n++] = rfc;
	args[n++] = c->match;
	args[n++] = c->value;
	args[n++] = c->ack[0] != '\0' ? ttl : "";
	args[n++] = sid;
	args[n++] = "";
	for (i = 0; i < n; i++)
		lens[i] = strlen(args[i]);
	for (i = 0; i < c->nids; i++) {
		if (c->ngroups > 0 && c->shard[i] != shard)
			continue;
		lens[n] = strlen(c->ids[i]);
		args[n++] = c->ids[i];
	}
	return script_call_named(op->h->app->cmd, "hook_consent", (int)nkeys, (int)n, args,
	    lens, step, c);
}

/* One call answered: the next, or the caller's callback with the counts of all. */
static void
on_step(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct consent_chain *c = arg;
	size_t i;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4)
		goto done;
	for (i = 0; i < 4; i++)
		if (reply->element[i]->type != REDIS_REPLY_INTEGER)
			goto done;
	for (i = 0; i < 3; i++)
		c->sum[i] += reply->element[i]->integer;
	c->all_duplicate = c->all_duplicate && reply->element[3]->integer == 1;
	if (++c->at < c->ngroups) {
		/* Shutting down (the hooks freed): no next call; Twilio tries again. */
		if (c->op->h != NULL && chain_send(c, on_step) == 0)
			return;
		reply = NULL;          /* the next could not be sent: a failure */
		goto done;
	}
	for (i = 0; i < 3; i++)
		reply->element[i]->integer = i == 2 ? (c->sum[i] > 0) : c->sum[i];
	reply->element[3]->integer = c->all_duplicate;
done:
	c->cb(rc, reply, c->op);
	chain_free(c);
}

/* hook_reply.lua for c's message, deal: the one its first subscriber was last texted
 * on the channel ("" = none). Returns 0, or -1 (nothing sent). */
static int
reply_send(struct consent_chain *c, const char *deal, rconn_reply_fn *step)
{
	char seen[HOOKS_SID_MAX + 32], now[24];
	const char *args[10];
	size_t lens[10], i;

	if (c->sid[0] == '\0')
		seen[0] = '\0';
	else if (keys_reply_seen(c->sid, seen, sizeof(seen)) < 0)
		return -1;
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	/* ORDER HOOK_REPLY_KEYS, then its arguments */
	args[0] = "replies";
	args[1] = seen;
	args[2] = c->ch;
	args[3] = c->label;
	args[4] = now;
	args[5] = c->value;
	args[6] = c->sid;
	args[7] = c->text;
	args[8] = c->nids > 0 ? c->ids[0] : "";
	args[9] = deal;
	for (i = 0; i < 10; i++)
		lens[i] = strlen(args[i]);
	lens[7] = c->text_len;
	return script_call_named(c->op->h->app->cmd, "hook_reply", 2, 10, args, lens, step,
	    c);
}

/* hook_reply.lua answered: the caller's callback. */
static void
on_reply_kept(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct consent_chain *c = arg;

	c->cb(rc, reply, c->op);
	chain_free(c);
}

/* The deal the reply answers was read (HGET of the behaviour hash): the reply next. */
static void
on_reply_deal(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct consent_chain *c = arg;
	const char *deal = reply != NULL && reply->type == REDIS_REPLY_STRING ? reply->str :
	    "";

	if (reply == NULL || reply->type == REDIS_REPLY_ERROR || c->op->h == NULL ||
	    reply_send(c, deal, on_reply_kept) < 0) {
		c->cb(rc, reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply : NULL,
		    c->op);
		chain_free(c);
	}
}

/* A reply kept for review: the deal its first subscriber was last texted on the
 * channel (its shard's behaviour hash, field "<sub>\t<channel>"), then hook_reply.lua.
 * Returns 0, or -1 (nothing sent). */
static int
reply_start(struct consent_chain *c)
{
	char key[KEYS_SHARD_MAX], field[MODEL_ID_MAX + 16];
	const char *argv[3] = { "HGET", key, field };

	if (c->nids == 0)
		return reply_send(c, "", on_reply_kept);
	if (keys_shard_key(keys_shard_of(c->ids[0]), KEYS_BEHAVIOUR, key, sizeof(key)) < 0)
		return -1;
	snprintf(field, sizeof(field), "%s\t%s", c->ids[0], c->ch);
	return rconn_argv(c->op->h->app->cmd, on_reply_deal, c, 0, 3, argv, NULL);
}

/* A copy of s (NULL: ""), or NULL when out of memory. */
static char *
dup_or_empty(const char *s, size_t n)
{
	char *d = malloc(n + 1);

	if (d != NULL) {
		memcpy(d, s != NULL ? s : "", n);
		d[n] = '\0';
	}
	return d;
}

int
hooks_consent_call(struct hooks_op *op, const struct hooks_msg *m, const char **ids,
    size_t nids, rconn_reply_fn *cb)
{
	struct consent_chain *c = calloc(1, sizeof(*c));
	size_t i, j;

	if (c == NULL)
		return -1;
	c->op = op;
	c->cb = cb;
	c->all_duplicate = 1;
	c->text_len = m->text != NULL ? m->text_len : 0;
	if ((c->ch = dup_or_empty(m->ch, strlen(m->ch))) == NULL ||
	    (c->label = dup_or_empty(m->label, strlen(m->label))) == NULL ||
	    (c->match = dup_or_empty(m->match, strlen(m->match))) == NULL ||
	    (c->value = dup_or_empty(m->value, strlen(m->value))) == NULL ||
	    (c->ack = dup_or_empty(m->ack, strlen(m->ack))) == NULL ||
	    (c->sid = dup_or_empty(m->sid, strlen(m->sid))) == NULL ||
	    (c->text = dup_or_empty(m->text, c->text_len)) == NULL)
		goto fail;
	c->nids = nids > HOOKS_IDS_MAX ? HOOKS_IDS_MAX : nids;
	for (i = 0; i < c->nids; i++) {
		snprintf(c->ids[i], sizeof(c->ids[i]), "%s", ids[i]);
		c->shard[i] = keys_shard_of(ids[i]);
	}
	/* The distinct shards, ascending; a reply for review is one call. */
	for (i = 0; i < c->nids && op->kw != KW_NONE; i++) {
		for (j = 0; j < c->ngroups && c->groups[j] < c->shard[i]; j++)
			;
		if (j < c->ngroups && c->groups[j] == c->shard[i])
			continue;
		memmove(c->groups + j + 1, c->groups + j, (c->ngroups - j) *
		    sizeof(c->groups[0]));
		c->groups[j] = c->shard[i];
		c->ngroups++;
	}
	if (op->kw == KW_NONE ? reply_start(c) == 0 : chain_send(c, on_step) == 0)
		return 0;
fail:
	chain_free(c);
	return -1;
}
