/*
 * hooks_consent.c: hook_consent.lua run for an inbound message's senders (stage:
 * http), one call per shard of their ids (keys.h), the calls one after the other and
 * their counts taken together for the webhook's answer.
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
	const char *args[11 + 11 + HOOKS_IDS_MAX];
	size_t lens[11 + 11 + HOOKS_IDS_MAX];
	char last[KEYS_SHARD_MAX + MODEL_ID_MAX + 16];
	char how[64], now[24], rfc[32], ttl[16], seen[HOOKS_SID_MAX + 32];
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
	snprintf(seen, sizeof(seen), "inbound:seen:%s", sid);
	/* ORDER HOOK_CONSENT_KEYS: the header of hook_consent.lua. The number's keys
	 * (suppression, sids, ack) stay global until the phone shards (step 5). */
	args[n++] = sk[0];
	args[n++] = sk[1];
	args[n++] = sk[4 + ch];
	args[n++] = sk[2];
	args[n++] = c->ack[0] != '\0' ? c->ack : "optout_ack:";
	args[n++] = "inbound:sids";
	args[n++] = "suppressed:sms";
	args[n++] = "replies";
	args[n++] = seen;
	args[n++] = sk[3];
	/* A reply: the deal of its subscriber's last push on the channel (the first
	 * subscriber of the number, or none), in its shard's behaviour hash. */
	last[0] = '\0';
	if (op->kw == KW_NONE && c->nids > 0 && keys_shard_key(keys_shard_of(c->ids[0]),
	    KEYS_BEHAVIOUR, last, sizeof(last)) < 0)
		last[0] = '\0';
	args[n++] = last;
	nkeys = n;
	args[n++] = op->kw == KW_OPT_OUT ? "out" : op->kw == KW_OPT_IN ? "in" : "reply";
	args[n++] = c->ch;
	args[n++] = how;
	args[n++] = c->label;
	args[n++] = now;
	args[n++] = rfc;
	args[n++] = c->match;
	args[n++] = c->value;
	args[n++] = c->ack[0] != '\0' ? ttl : "";
	args[n++] = sid;
	args[n++] = c->text;
	for (i = 0; i < n; i++)
		lens[i] = strlen(args[i]);
	lens[n - 1] = c->text_len;
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
	if (chain_send(c, on_step) == 0)
		return 0;
fail:
	chain_free(c);
	return -1;
}
