/*
 * hooks_consent.c: an inbound opt-out or opt-in applied to its sender's subscribers
 * (stage: http; docs/sharding.md 4f, "Inbound STOP / START"), in three steps, one
 * after the other on the connection of the hooks:
 *
 *   1. hook_phone.lua "begin" on the slot of the number (or DM sender): a replay is
 *      answered at once; otherwise the MessageSid is recorded pending, and an SMS
 *      opt-out puts the number on the suppression list;
 *   2. hook_consent.lua on each shard of the ids (keys.h), each applying the message
 *      at most once (its marker inbound:done:<sid>);
 *   3. hook_phone.lua "done": the sid applied, an opt-in takes the number off the
 *      suppression list, the confirmation decided.
 *
 * Each step is made durable on the replicas (durable.h, [redis] wait_replicas)
 * before the next, so that a failover cannot take back a step the next one counts
 * on. It never answers before step 3 has succeeded: an opt-out is acknowledged (and
 * Twilio stops retrying) only once it is in force everywhere. A failure or a crash in
 * between leaves the sid pending; Twilio's retry resumes at step 2. A message with
 * neither a MessageSid nor a number to suppress (a DM) has nothing for steps 1 and 3.
 *
 * A reply kept for review is hook_reply.lua on the slot of replies, after the deal it
 * answers is read from its subscriber's shard.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "app.h"
#include "channel.h"
#include "clock.h"
#include "config.h"
#include "durable.h"
#include "fault.h"
#include "hooks.h"
#include "hooks_int.h"
#include "keys.h"
#include "log.h"
#include "model.h"
#include "phoneix.h"
#include "scripts.h"
#include "timefmt.h"

/* How long a shard remembers it applied a message (inbound:done:<sid>). */
#define HOOKS_DONE_TTL_S (30 * 86400)

enum chain_step {
	CHAIN_BEGIN = 0,
	CHAIN_LOOKUP,
	CHAIN_SHARDS,
	CHAIN_DONE
};

static const char *const chain_step_name[] = { "begin", "lookup", "shards", "done" };

/* The ids one message reaches, at most: the phone index's and the mirror's. */
#define CHAIN_IDS_MAX (PHONEIX_MAX + HOOKS_IDS_MAX)

struct consent_chain {
	struct hooks_op *op;            /* op->h is NULL once the hooks are freed */
	rconn_reply_fn *cb;
	char *ch, *label, *match, *value, *ack, *sid, *text;
	size_t text_len;
	char ids[CHAIN_IDS_MAX][MODEL_ID_MAX + 1];
	uint32_t shard[CHAIN_IDS_MAX];
	size_t nids;
	uint32_t groups[CHAIN_IDS_MAX];   /* the distinct shards, ascending */
	size_t ngroups, at;
	enum chain_step step;
	int phone_steps;                /* 1: steps 1 and 3 run */
	int lookup;                     /* 1: the index is read after step 1 */
	long long now;                  /* one time for every step of the message */
	char began[24];                 /* when the message began (step 1's answer) */
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

static void on_step(struct rconn *rc, struct redisReply *reply, int durable, void *arg);

/* The how of the consent record: "sms:STOP", "dm:START". */
static void
chain_how(const struct consent_chain *c, char *how, size_t size)
{
	snprintf(how, size, "%s:%s", c->op->kind == HOOKS_OP_SMS ? "sms" : "dm",
	    c->op->kw == KW_OPT_OUT ? "STOP" : "START");
}

int
hooks_script_durable(struct hooks *h, const char *name, int nkeys, int nargs,
    const char **args, durable_fn *cb, void *arg)
{
	struct durable_config wait;

	wait.replicas = h->app->cfg->wait_replicas;
	wait.timeout_ms = h->app->cfg->wait_timeout_ms;
	return durable_script_call(h->app->cmd, &wait, name, nkeys, nargs, args, NULL, cb,
	    arg);
}

/* Sends c's current step durably. Returns 0, or -1 (nothing sent). */
static int
chain_call(struct consent_chain *c, const char *name, int nkeys, int n,
    const char **args)
{
	return hooks_script_durable(c->op->h, name, nkeys, n, args, on_step, c);
}

/* Step 1 or 3: hook_phone.lua. Returns 0, or -1 (nothing sent). */
static int
phone_send(struct consent_chain *c)
{
	char sids[KEYS_SHARD_MAX], supp[KEYS_SHARD_MAX], pend[KEYS_SHARD_MAX], how[64],
	    now[24], ttl[16], found[24];
	const char *args[15];
	int n = 0;

	if (keys_phone(c->value, KEYS_PH_SIDS, sids, sizeof(sids)) < 0 ||
	    keys_phone(c->value, KEYS_PH_SUPPRESSED, supp, sizeof(supp)) < 0 ||
	    keys_phone(c->value, KEYS_PH_PENDING, pend, sizeof(pend)) < 0)
		return -1;
	chain_how(c, how, sizeof(how));
	snprintf(now, sizeof(now), "%lld", c->now);
	snprintf(ttl, sizeof(ttl), "%d", HOOKS_CONFIRM_DEDUPE_S);
	snprintf(found, sizeof(found), "%lld", c->sum[0]);
	/* ORDER HOOK_PHONE_KEYS, then its arguments */
	args[n++] = sids;
	args[n++] = supp;
	args[n++] = c->ack;
	args[n++] = pend;
	args[n++] = c->step == CHAIN_BEGIN ? "begin" : "done";
	args[n++] = c->op->kw == KW_OPT_OUT ? "out" : "in";
	args[n++] = c->ch;
	args[n++] = how;
	args[n++] = c->label;
	args[n++] = now;
	args[n++] = c->match;
	args[n++] = c->value;
	args[n++] = c->sid;
	args[n++] = c->ack[0] != '\0' ? ttl : "";
	args[n++] = found;
	return chain_call(c, "hook_phone", 4, n, args);
}

/* Step 2 for the shard of group c->at: hook_consent.lua. Returns 0, or -1 (nothing
 * sent). */
static int
shard_send(struct consent_chain *c)
{
	const char *args[7 + 10 + CHAIN_IDS_MAX];
	char how[64], now[24], rfc[32], ttl[16], done[KEYS_SHARD_MAX + HOOKS_SID_MAX];
	char stops[KEYS_SHARD_MAX];
	char sk[KEYS_SUB_NKEYS][KEYS_SHARD_MAX];
	uint32_t shard = c->groups[c->at];
	int named = channel_from_name(c->ch);
	enum channel ch = named >= 0 ? (enum channel)named : CH_SMS;
	size_t i;
	int n = 0, nkeys;

	if (keys_sub_keys(shard, sk) < 0 ||
	    keys_shard_key(shard, KEYS_STOPS, stops, sizeof(stops)) < 0)
		return -1;
	if (c->sid[0] == '\0')
		done[0] = '\0';
	else if (keys_inbound_done(shard, c->sid, done, sizeof(done)) < 0)
		return -1;
	chain_how(c, how, sizeof(how));
	snprintf(now, sizeof(now), "%lld", c->now);
	time_format_rfc3339(c->now, rfc, sizeof(rfc));
	snprintf(ttl, sizeof(ttl), "%d", HOOKS_DONE_TTL_S);
	/* ORDER HOOK_CONSENT_KEYS, then its arguments */
	args[n++] = sk[0];
	args[n++] = sk[1];
	args[n++] = sk[4 + ch];
	args[n++] = sk[2];
	args[n++] = sk[3];
	args[n++] = done;
	args[n++] = stops;
	nkeys = n;
	args[n++] = c->op->kw == KW_OPT_OUT ? "out" : "in";
	args[n++] = c->ch;
	args[n++] = how;
	args[n++] = c->label;
	args[n++] = now;
	args[n++] = rfc;
	args[n++] = c->match;
	args[n++] = c->value;
	args[n++] = ttl;
	args[n++] = c->began;
	for (i = 0; i < c->nids; i++)
		if (c->shard[i] == shard)
			args[n++] = c->ids[i];
	return chain_call(c, "hook_consent", nkeys, n, args);
}

/* Adds id to c's ids unless there (or c is full). */
static void
chain_add_id(struct consent_chain *c, const char *id)
{
	size_t i;

	for (i = 0; i < c->nids; i++)
		if (strcmp(c->ids[i], id) == 0)
			return;
	if (c->nids == CHAIN_IDS_MAX || strlen(id) > MODEL_ID_MAX)
		return;
	snprintf(c->ids[c->nids], sizeof(c->ids[0]), "%s", id);
	c->shard[c->nids] = keys_shard_of(id);
	c->nids++;
}

/* The distinct shards of c's ids, ascending. */
static void
chain_group(struct consent_chain *c)
{
	size_t i, j;

	c->ngroups = 0;
	for (i = 0; i < c->nids; i++) {
		for (j = 0; j < c->ngroups && c->groups[j] < c->shard[i]; j++)
			;
		if (j < c->ngroups && c->groups[j] == c->shard[i])
			continue;
		memmove(c->groups + j + 1, c->groups + j, (c->ngroups - j) *
		    sizeof(c->groups[0]));
		c->groups[j] = c->shard[i];
		c->ngroups++;
	}
}

static void on_lookup(struct rconn *rc, struct redisReply *reply, void *arg);

/* Step 1b: the ids the phone index has for the number (or X id), read after step 1
 * recorded the message: a write that added its id before then is found here
 * (phoneix.h). Returns 0, or -1 (nothing sent). */
static int
lookup_send(struct consent_chain *c)
{
	char ix[KEYS_SHARD_MAX], sup[KEYS_SHARD_MAX];
	const char *argv[3] = { "HGET", ix, c->value };

	if (phoneix_keys(strcmp(c->match, "dm") == 0 ? PHONEIX_DM : PHONEIX_PHONE,
	    c->value, ix, sup) < 0)
		return -1;
	return rconn_argv(c->op->h->app->cmd, on_lookup, c, 0, 3, argv, NULL);
}

/* Sends the step c is at (a shard step for group c->at). 0, or -1 (nothing sent). */
static int
chain_send(struct consent_chain *c)
{
	switch (c->step) {
	case CHAIN_LOOKUP:
		return lookup_send(c);
	case CHAIN_SHARDS:
		return shard_send(c);
	default:
		return phone_send(c);
	}
}

/* Moves c past a step done: the next step that has work. 1 when there is one, 0
 * when the message is done. */
static int
chain_next(struct consent_chain *c)
{
	if (c->step == CHAIN_BEGIN && c->lookup) {
		c->step = CHAIN_LOOKUP;
		return 1;
	}
	if (c->step == CHAIN_BEGIN || c->step == CHAIN_LOOKUP) {
		chain_group(c);
		c->step = CHAIN_SHARDS;
		c->at = 0;
	} else if (c->step == CHAIN_SHARDS) {
		c->at++;
	} else {
		return 0;
	}
	if (c->step == CHAIN_SHARDS && c->at < c->ngroups)
		return 1;
	if (c->step == CHAIN_SHARDS && c->phone_steps) {
		c->step = CHAIN_DONE;
		return 1;
	}
	return 0;
}

/* The answer the caller gets: { found, changed, confirm, duplicate } of the whole
 * message, in a reply of our own. */
static void
chain_answer(struct consent_chain *c, struct rconn *rc, long long confirm)
{
	redisReply e[4], *ev[4], top;
	size_t i;

	memset(e, 0, sizeof(e));
	memset(&top, 0, sizeof(top));
	for (i = 0; i < 4; i++) {
		e[i].type = REDIS_REPLY_INTEGER;
		ev[i] = &e[i];
	}
	e[0].integer = c->sum[0];
	e[1].integer = c->sum[1];
	e[2].integer = confirm;
	e[3].integer = c->all_duplicate;
	top.type = REDIS_REPLY_ARRAY;
	top.elements = 4;
	top.element = ev;
	c->cb(rc, &top, c->op);
}

/* A step answered: the next, or the caller's callback. */
static void
on_step(struct rconn *rc, struct redisReply *reply, int durable, void *arg)
{
	struct consent_chain *c = arg;
	char fault[48];
	long long confirm = 0;
	size_t i;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || !durable)
		goto fail;
	/* Tests: the process dies as under kill -9 right after a step's answer
	 * (DP_FAULTS=hooks.<step>.kill@n). */
	snprintf(fault, sizeof(fault), "hooks.%s.kill", chain_step_name[c->step]);
	if (fault_hit(fault))
		_exit(137);
	if (c->step == CHAIN_BEGIN) {
		if (reply->elements < 1 || reply->element[0]->type != REDIS_REPLY_STRING)
			goto fail;
		if (strcmp(reply->element[0]->str, "dup") == 0) {
			chain_answer(c, rc, 0);
			chain_free(c);
			return;
		}
		if (reply->elements != 2 || reply->element[1]->type != REDIS_REPLY_STRING ||
		    reply->element[1]->len >= sizeof(c->began))
			goto fail;
		memcpy(c->began, reply->element[1]->str, reply->element[1]->len + 1);
		/* "go": new here; "resume": the shards say what they had done. */
		if (strcmp(reply->element[0]->str, "go") == 0)
			c->all_duplicate = 0;
	} else if (c->step == CHAIN_SHARDS) {
		if (reply->elements != 4)
			goto fail;
		for (i = 0; i < 4; i++)
			if (reply->element[i]->type != REDIS_REPLY_INTEGER)
				goto fail;
		for (i = 0; i < 2; i++)
			c->sum[i] += reply->element[i]->integer;
		c->all_duplicate = c->all_duplicate && reply->element[3]->integer == 1;
	} else {
		if (reply->elements != 1 || reply->element[0]->type != REDIS_REPLY_INTEGER)
			goto fail;
		confirm = reply->element[0]->integer;
	}
	if (chain_next(c)) {
		/* Shutting down (the hooks freed): no next call; Twilio tries again. */
		if (c->op->h != NULL && chain_send(c) == 0)
			return;
		reply = NULL;          /* the next could not be sent: a failure */
		goto fail;
	}
	chain_answer(c, rc, confirm);
	chain_free(c);
	return;
fail:
	if (reply != NULL && reply->type != REDIS_REPLY_ERROR)
		reply = NULL;          /* a bad answer or one not durable: a failure */
	c->cb(rc, reply, c->op);
	chain_free(c);
}

/* The index's ids for the number were read: the shards next. */
static void
on_lookup(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct consent_chain *c = arg;
	char ids[PHONEIX_MAX][MODEL_ID_MAX + 1];
	size_t i, n;

	if (reply == NULL || (reply->type != REDIS_REPLY_STRING &&
	    reply->type != REDIS_REPLY_NIL)) {
		c->cb(rc, reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply : NULL,
		    c->op);
		chain_free(c);
		return;
	}
	n = reply->type == REDIS_REPLY_STRING ? phoneix_split(reply->str, reply->len, ids,
	    PHONEIX_MAX) : 0;
	for (i = 0; i < n; i++)
		chain_add_id(c, ids[i]);
	if (fault_hit("hooks.lookup.kill"))
		_exit(137);
	if (chain_next(c)) {
		if (c->op->h != NULL && chain_send(c) == 0)
			return;
		c->cb(rc, NULL, c->op);
		chain_free(c);
		return;
	}
	chain_answer(c, rc, 0);
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
	size_t i;

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
	for (i = 0; i < nids && i < HOOKS_IDS_MAX; i++)
		chain_add_id(c, ids[i]);
	c->now = (long long)clock_now();
	snprintf(c->began, sizeof(c->began), "%lld", c->now);   /* no step 1: now */
	c->phone_steps = c->sid[0] != '\0' || (strcmp(c->ch, "sms") == 0 &&
	    strcmp(c->match, "phone") == 0);
	/* A number or X id is looked up in the phone index too: the mirror may not
	 * have a subscriber written a moment ago, nor one of another notifier's
	 * shards. */
	c->lookup = strcmp(c->match, "phone") == 0 || strcmp(c->match, "dm") == 0;
	if (op->kw == KW_NONE) {
		if (reply_start(c) == 0)
			return 0;
		goto fail;
	}
	c->step = CHAIN_BEGIN;
	if (!c->phone_steps && !chain_next(c)) {
		/* Nothing to do anywhere (a DM from no subscriber): answered now. */
		c->all_duplicate = 0;
		chain_answer(c, NULL, 0);
		chain_free(c);
		return 0;
	}
	if (chain_send(c) == 0)
		return 0;
fail:
	chain_free(c);
	return -1;
}
