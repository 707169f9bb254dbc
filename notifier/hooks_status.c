/*
 * hooks_status.c: POST /hooks/twilio/status (stage: http). A Twilio status callback,
 * once its signature verified, updates the push's delivery record and acts on its error
 * code through hook_status.lua; what the script's keys name that only Redis knows (the
 * push's deal, its rule and campaign) is read first and re-checked by the script. Each
 * (MessageSid, MessageStatus) is counted once. It must never change anything for a
 * request whose signature did not verify.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "app.h"
#include "clock.h"
#include "deal.h"
#include "hooks_int.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "model.h"
#include "rconn.h"
#include "redisutil.h"
#include "scripts.h"
#include "subscriber.h"

/* ---- POST /hooks/twilio/status ------------------------------------------------- */

static int
status_known(const char *s)
{
	static const char *const known[] = { "queued", "accepted", "sending", "sent",
	    "delivered", "undelivered", "failed", NULL };
	size_t i;

	for (i = 0; known[i] != NULL; i++)
		if (strcmp(s, known[i]) == 0)
			return 1;
	return 0;
}

/* Splits "<ms>-<seq>:<sub>:<channel>" into buf; returns 0 or -1 when malformed. */
static int
push_split(const char *push, char *buf, size_t size, const char **entry,
    const char **sub, const char **ch)
{
	char *c1, *c2, *dash;
	size_t len = strlen(push);

	if (len == 0 || len >= size || len > HOOKS_PUSH_MAX)
		return -1;
	memcpy(buf, push, len + 1);
	if ((c1 = strchr(buf, ':')) == NULL || (c2 = strrchr(buf, ':')) == c1)
		return -1;
	*c1 = *c2 = '\0';
	if ((dash = strchr(buf, '-')) == NULL)
		return -1;
	*dash = '\0';
	if (!hooks_all_digits(buf, 1, 20) || !hooks_all_digits(dash + 1, 1, 20))
		return -1;
	*dash = '-';
	*entry = buf;
	*sub = c1 + 1;
	*ch = c2 + 1;
	if (**sub == '\0' || strlen(*sub) > MODEL_ID_MAX || channel_from_name(*ch) < 0)
		return -1;
	return 0;
}

/*
 * A status callback in flight: hook_status.lua may only touch the keys it is given,
 * and some name what only Redis knows (the deal of the push's entry; the rule and
 * campaign its reports go to), so those are read first, on the same connection and
 * with the same deadlines, then the script runs with every key and re-checks what was
 * read: "retry" when it no longer holds, and the reads start again, at most
 * HOOKS_STATUS_TRIES times. Owns op (and through it the request) until it answers.
 */
#define HOOKS_STATUS_TRIES 3
#define HOOKS_STATUS_NKEYS 24           /* ORDER HOOK_STATUS_KEYS */
#define HOOKS_STATUS_ARGS 11

enum hooks_status_step {
	HOOKS_ST_SEEN,                  /* hook_status_seen.lua claim: a replay? */
	HOOKS_ST_DEAL,                  /* GET dealentry:<entry> */
	HOOKS_ST_RINFO,                 /* HGET resolve:info <push id> */
	HOOKS_ST_PINFO,                 /* HGET pushinfo:<deal> <sub>:<ch> */
	HOOKS_ST_SCRIPT,                /* hook_status.lua */
	HOOKS_ST_PAUSE                  /* HSET paused_templates <rule> <now>: a 30007
	                                   (global, so not in the script's slot) */
};

struct hooks_status {
	struct hooks_op *op;
	enum hooks_status_step step;
	int tries;
	char push[HOOKS_PUSH_MAX + 1];  /* the push id as given */
	char pbuf[HOOKS_PUSH_MAX + 1];  /* entry, sub, ch split (push_split) */
	const char *entry, *sub, *ch;
	char status[16], code[8], to[24], now[24], sid[MODEL_ID_MAX + 1], sidq[80];
	char deal[MODEL_ID_MAX + 1];    /* "" = the entry names no deal */
	char *rinfo, *pinfo;            /* what was read; NULL = nothing */
	char *pause;                    /* the rule a 30007 pauses (HOOKS_ST_PAUSE) */
	int claimed;                    /* (sid, status) claimed: done or release it */
};

/* (MessageSid, MessageStatus) is counted once: a claim is held this long while
 * hook_status.lua runs, and a counted pair is remembered as long as delivery:<deal>. */
#define HOOKS_SEEN_CLAIM_S 60
#define HOOKS_SEEN_DONE_S (30 * 86400)

static void
on_seen_mark(struct rconn *rc, struct redisReply *reply, void *arg)
{
	(void)rc;
	(void)arg;
	/* Best effort: a lost "done" leaves a claim that expires, a lost "release" a
	 * claim that answers 503 to Twilio's retries until it expires. */
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		log_warnx("event=hook_status_seen_failed err=\"%s\"", reply == NULL ?
		    "no reply" : reply->str);
}

/* Runs hook_status_seen.lua op ("claim", "done", "release") for st's (sid, status);
 * cb NULL: nobody waits. Returns 0, 1 when the key would not fit, -1 when Redis is not
 * connected. */
static int
status_seen(struct hooks_status *st, const char *op, rconn_reply_fn *cb)
{
	char key[MODEL_ID_MAX + 64 + KEYS_SHARD_MAX], claim[16], done[16];
	const char *args[4];
	int n;

	/* The push's shard (its subscriber's, from the push id of the callback URL). */
	n = keys_status_seen(keys_shard_of(st->sub), st->sid, st->status, key, sizeof(key));
	if (n < 0)
		return 1;
	snprintf(claim, sizeof(claim), "%d", HOOKS_SEEN_CLAIM_S);
	snprintf(done, sizeof(done), "%d", HOOKS_SEEN_DONE_S);
	args[0] = key;
	args[1] = op;
	args[2] = claim;
	args[3] = done;
	return script_call_named(st->op->h->app->cmd, "hook_status_seen", 1, 4, args, NULL,
	    cb != NULL ? cb : on_seen_mark, st);
}

static void
status_free(struct hooks_status *st)
{
	if (st == NULL)
		return;
	if (st->claimed && st->op != NULL && st->op->h != NULL)
		(void)status_seen(st, "release", NULL);
	if (st->op != NULL)
		hooks_op_free(st->op);
	free(st->rinfo);
	free(st->pinfo);
	free(st->pause);
	free(st);
}

/* Answers the request 503 (try again later) and frees st. */
static void
status_fail(struct hooks_status *st, const char *err)
{
	log_warnx("event=hook_status_failed err=\"%s\"", err);
	if (st->op->r != NULL)
		http_error(st->op->r, 503, NULL, "try again later");
	status_free(st);
}

static void on_status_step(struct rconn *rc, struct redisReply *reply, void *arg);

/* A rule and a campaign from "<rule>\t<campaign>" (pushinfo: the campaign is the
 * rest) or, when resolve is set, from fields 7 and 8 of a resolve:info value
 * (ORDER RESOLVE_INFO); as hook_status.lua matches them. Returns 0, or -1 when v is
 * not in that form (no report keys then). The pointers are into v, lengths apart. */
static int
status_rule_camp(const char *v, int resolve, const char **rule, size_t *rlen,
    const char **camp, size_t *clen)
{
	const char *f[8], *t;
	int i;

	if (v == NULL)
		return -1;
	if (!resolve) {
		if ((t = strchr(v, '\t')) == NULL)
			return -1;
		*rule = v;
		*rlen = (size_t)(t - v);
		*camp = t + 1;
		*clen = strlen(t + 1);
		return 0;
	}
	f[0] = v;
	for (i = 1; i < 8; i++) {
		if ((t = strchr(f[i - 1], '\t')) == NULL)
			return -1;
		f[i] = t + 1;
	}
	*rule = f[6];
	*rlen = (size_t)(f[7] - 1 - f[6]);
	*camp = f[7];
	*clen = strcspn(f[7], "\t");
	return 0;
}

#define HOOKS_KEY_MAX 512               /* a key named from a push's data */

/* ru_key into a buffer of HOOKS_KEY_MAX bytes. */
static int
status_key(char *buf, const char *prefix, const char *v, size_t n)
{
	return ru_key(buf, HOOKS_KEY_MAX, prefix, v, n);
}

/* Sends the current step's command: a read, or hook_status.lua with every key.
 * Returns 0, 1 when a key would not fit (nothing sent), or -1 when Redis is not
 * connected. */
static int
status_send(struct hooks_status *st)
{
	/* ORDER HOOK_STATUS_KEYS: the per-deal keys, KEYS[7..12]. */
	static const enum keys_per deal_key[6] = { KEYS_DELIVERY, KEYS_PUSH,
	    KEYS_PUSHINFO, KEYS_PUSHLINE, KEYS_REDELIVERED, KEYS_REPORT_DEAL };
	struct rconn *rc = st->op->h->app->cmd;
	char k[14][HOOKS_KEY_MAX], field[MODEL_ID_MAX + 32];
	char sk[KEYS_SUB_NKEYS][KEYS_SHARD_MAX], sh[7][KEYS_SHARD_MAX];
	const char *args[HOOKS_STATUS_NKEYS + HOOKS_STATUS_ARGS], *rule, *camp;
	size_t rlen = 0, clen = 0, dlen = strlen(st->deal);
	/* Every key of the push is its subscriber's shard's (keys.h). */
	uint32_t shard = keys_shard_of(st->sub);
	struct keys_prefixes px;
	int i, bad = 0;

	bad |= keys_prefixes(shard, &px) < 0;
	bad |= keys_shard_key(shard, KEYS_STATS, sh[0], sizeof(sh[0])) < 0;
	bad |= keys_shard_key(shard, KEYS_RESOLVE_DUE, sh[1], sizeof(sh[1])) < 0;
	bad |= keys_shard_key(shard, KEYS_RESOLVE_INFO, sh[2], sizeof(sh[2])) < 0;
	bad |= keys_shard_key(shard, KEYS_RESOLVE_TRIES, sh[3], sizeof(sh[3])) < 0;
	bad |= keys_shard_key(shard, KEYS_PUSHES_LOG, sh[4], sizeof(sh[4])) < 0;
	bad |= keys_shard_key(shard, KEYS_BEHAVIOUR, sh[5], sizeof(sh[5])) < 0;
	bad |= keys_shard_key(shard, KEYS_PUSHES, sh[6], sizeof(sh[6])) < 0;

	snprintf(field, sizeof(field), "%s:%s", st->sub, st->ch);
	bad |= status_key(k[0], px.p[KEYS_DEALENTRY], st->entry, strlen(st->entry));
	switch (st->step) {
	case HOOKS_ST_SEEN:
		return status_seen(st, "claim", on_status_step);
	case HOOKS_ST_PAUSE:
		args[0] = "HSET";
		args[1] = "paused_templates";
		args[2] = st->pause;
		args[3] = st->now;
		return rconn_argv(rc, on_status_step, st, 0, 4, args, NULL);
	case HOOKS_ST_DEAL:
		args[0] = "GET";
		args[1] = k[0];
		return bad ? 1 : rconn_argv(rc, on_status_step, st, 0, 2, args, NULL);
	case HOOKS_ST_RINFO:
		args[0] = "HGET";
		args[1] = sh[2];                /* resolve:info */
		args[2] = st->push;
		return bad ? 1 : rconn_argv(rc, on_status_step, st, 0, 3, args, NULL);
	case HOOKS_ST_PINFO:
		bad |= status_key(k[1], px.p[KEYS_PUSHINFO], st->deal, dlen);
		args[0] = "HGET";
		args[1] = k[1];
		args[2] = field;
		return bad ? 1 : rconn_argv(rc, on_status_step, st, 0, 3, args, NULL);
	case HOOKS_ST_SCRIPT:
		break;
	}
	/* ORDER HOOK_STATUS_KEYS: the header of hook_status.lua. */
	args[0] = k[0];
	for (i = 0; i < 5; i++)
		args[1 + i] = sh[i];    /* stats, resolve:due, info, tries, pushes:log */
	for (i = 0; i < 6; i++) {
		bad |= status_key(k[1 + i], px.p[deal_key[i]], st->deal, dlen);
		args[6 + i] = k[1 + i];
	}
	rule = camp = NULL;
	if (dlen > 0 && status_rule_camp(st->rinfo, 1, &rule, &rlen, &camp, &clen) < 0)
		rule = camp = NULL;
	bad |= status_key(k[7], px.p[KEYS_REPORT_RULE], rule, rlen);
	bad |= status_key(k[8], px.p[KEYS_REPORT_CAMPAIGN], camp, clen);
	rule = camp = NULL;
	if (dlen > 0 && status_rule_camp(st->pinfo, 0, &rule, &rlen, &camp, &clen) < 0)
		rule = camp = NULL;
	bad |= status_key(k[9], px.p[KEYS_REPORT_RULE], rule, rlen);
	bad |= status_key(k[10], px.p[KEYS_REPORT_CAMPAIGN], camp, clen);
	for (i = 0; i < 4; i++)
		args[12 + i] = k[7 + i];
	(void)keys_sub_keys(shard, sk);
	args[16] = sk[0];               /* ORDER SUB_KEYS: subscribers */
	args[17] = sk[1];               /* subscribers:changes */
	args[18] = sk[4 + CH_SMS];      /* consent:sms */
	args[19] = sk[2];               /* consent:epoch */
	args[20] = sk[3];               /* consent:records */
	bad |= status_key(k[11], px.p[KEYS_SERIES], st->deal, dlen);
	args[21] = k[11];               /* series:<deal> */
	args[22] = sh[6];               /* pushes: a 30003 resend's job */
	args[23] = sh[5];               /* behaviour */
	args[24] = st->entry;
	args[25] = st->sub;
	args[26] = st->ch;
	args[27] = st->status;
	args[28] = st->code;
	args[29] = st->to;
	args[30] = st->now;
	args[31] = st->sid;
	args[32] = st->deal;
	args[33] = st->rinfo != NULL ? st->rinfo : "";
	args[34] = st->pinfo != NULL ? st->pinfo : "";
	if (bad)
		return 1;
	return script_call_named(rc, "hook_status", HOOKS_STATUS_NKEYS,
	    HOOKS_STATUS_NKEYS + HOOKS_STATUS_ARGS, args, NULL, on_status_step, st);
}

/* Copies a bulk string reply (NULL for nil) into *out. Returns 0, or -1 for another
 * reply, an oversized one or out of memory (err set). */
static int
status_copy(struct redisReply *reply, char **out, const char **err)
{
	if (ru_copy(reply, 65536, out) == 0)
		return 0;
	*err = reply->type == REDIS_REPLY_ERROR ? reply->str :
	    reply->type == REDIS_REPLY_STRING && reply->len <= 65536 ? "out of memory" :
	    "bad reply";
	return -1;
}

/* Sends st's current step; on failure answers 503 and frees st. */
static void
status_next(struct hooks_status *st)
{
	int sent = status_send(st);

	if (sent < 0) {
		log_warnx("event=hook_status_failed err=\"redis not connected\" sid=%s",
		    st->sidq);
		http_error(st->op->r, 503, NULL, "try again later");
		status_free(st);
	} else if (sent > 0) {
		status_fail(st, "key too long");
	}
}

/* The callback is counted: its claim marked done, 204, st freed. */
static void
status_done(struct hooks_status *st)
{
	if (st->claimed) {
		(void)status_seen(st, "done", NULL);
		st->claimed = 0;
	}
	http_reply(st->op->r, 204, NULL, "", 0);
	status_free(st);
}

/* One step's reply: the next step, the answer, or a retry from the first read. */
static void
on_status_step(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct hooks_status *st = arg;
	const char *err = NULL;
	char *deal = NULL;

	(void)rc;
	if (st->op->r == NULL) {        /* hooks_free: nobody to answer */
		status_free(st);
		return;
	}
	if (reply == NULL && st->step == HOOKS_ST_PAUSE) {
		/* Counted already: done, the pause lost (see HOOKS_ST_PAUSE below). */
		log_warnx("event=hook_status_pause_failed rule=%s err=\"no reply\"", st->pause);
		status_done(st);
		return;
	}
	if (reply == NULL) {
		status_fail(st, "no reply");
		return;
	}
	switch (st->step) {
	case HOOKS_ST_SEEN:
		if (reply->type != REDIS_REPLY_STATUS && reply->type != REDIS_REPLY_STRING) {
			status_fail(st, reply->type == REDIS_REPLY_ERROR ? reply->str :
			    "bad reply");
			return;
		}
		if (strcmp(reply->str, "duplicate") == 0) {
			/* Counted before: a replay or Twilio's retry. */
			log_info("event=hook_status result=duplicate_callback sid=%s",
			    st->sidq);
			hooks_count(st->op->h, "status:duplicate_callback");
			http_reply(st->op->r, 204, NULL, "", 0);
			status_free(st);
			return;
		}
		if (strcmp(reply->str, "new") != 0) {
			status_fail(st, "the same callback is being counted");
			return;
		}
		st->claimed = 1;
		st->step = HOOKS_ST_DEAL;
		break;
	case HOOKS_ST_DEAL:
		if (status_copy(reply, &deal, &err) < 0) {
			status_fail(st, err);
			return;
		}
		if (deal != NULL && strlen(deal) >= sizeof(st->deal)) {
			free(deal);
			status_fail(st, "bad reply");
			return;
		}
		snprintf(st->deal, sizeof(st->deal), "%s", deal != NULL ? deal : "");
		free(deal);
		free(st->rinfo);
		free(st->pinfo);
		st->rinfo = st->pinfo = NULL;
		/* No deal: the script only counts the push unknown (or asks again). */
		st->step = st->deal[0] != '\0' ? HOOKS_ST_RINFO : HOOKS_ST_SCRIPT;
		break;
	case HOOKS_ST_RINFO:
		if (status_copy(reply, &st->rinfo, &err) < 0) {
			status_fail(st, err);
			return;
		}
		st->step = HOOKS_ST_PINFO;
		break;
	case HOOKS_ST_PINFO:
		if (status_copy(reply, &st->pinfo, &err) < 0) {
			status_fail(st, err);
			return;
		}
		st->step = HOOKS_ST_SCRIPT;
		break;
	case HOOKS_ST_SCRIPT:
		if (reply->type != REDIS_REPLY_STATUS && reply->type != REDIS_REPLY_STRING) {
			status_fail(st, reply->type == REDIS_REPLY_ERROR ? reply->str :
			    "bad reply");
			return;
		}
		if (strcmp(reply->str, "retry") == 0) {
			if (++st->tries >= HOOKS_STATUS_TRIES) {
				status_fail(st, "the push's keys kept changing");
				return;
			}
			st->step = HOOKS_ST_DEAL;
			break;
		}
		if (strncmp(reply->str, "filtered\t", 9) == 0) {
			/* The carrier filtered the template: paused (docs/hooks.md)
			 * before the callback is answered. paused_templates is global,
			 * so it cannot be in the script's slot; a crash in between
			 * loses this pause, and the template's next filtered callback
			 * sets it. */
			if ((st->pause = strdup(reply->str + 9)) == NULL) {
				status_fail(st, "out of memory");
				return;
			}
			st->step = HOOKS_ST_PAUSE;
			break;
		}
		log_info("event=hook_status result=%s", reply->str);
		/* FALLTHROUGH */
	case HOOKS_ST_PAUSE:
		/* The script has counted the callback: whatever the pause's HSET
		 * answered, the callback is done (released, Twilio's retry would count
		 * it twice); a pause lost is set by the template's next one. */
		if (st->step == HOOKS_ST_PAUSE && reply->type == REDIS_REPLY_ERROR)
			log_warnx("event=hook_status_pause_failed rule=%s err=\"%s\"", st->pause,
			    reply->str);
		else if (st->step == HOOKS_ST_PAUSE)
			log_info("event=hook_status result=filtered rule=%s", st->pause);
		status_done(st);
		return;
	}
	status_next(st);
}

void
hooks_on_status(struct http_req *r, void *arg)
{
	struct hooks *h = arg;
	struct hooks_form f;
	struct hooks_status *st;
	char pbuf[HOOKS_PUSH_MAX + 1], sidq[80];
	const char *push, *status, *code, *to, *sid, *entry, *sub, *ch;

	memset(&f, 0, sizeof(f));
	if (hooks_twilio_check(h, r, &f, "twilio_status") < 0)
		goto done;
	push = http_query(r, "push");
	status = hooks_form_get(&f, "MessageStatus");
	code = hooks_form_get(&f, "ErrorCode");
	to = hooks_form_get(&f, "To");
	sid = hooks_form_get(&f, "MessageSid");
	if (push == NULL) {
		http_error(r, 400, "push", "the push query parameter is missing");
		goto done;
	}
	if (status == NULL) {
		http_error(r, 400, "MessageStatus", "MessageStatus is missing");
		goto done;
	}
	if (code == NULL)
		code = "";
	if (*code != '\0' && !hooks_all_digits(code, 1, 6)) {
		http_error(r, 400, "ErrorCode", "ErrorCode is not a number");
		goto done;
	}
	if (to == NULL || !phone_is_e164(to))
		to = "";
	log_quote(sid ? sid : "", sidq, sizeof(sidq));
	if (strncmp(push, HOOKS_CONFIRM_PREFIX, strlen(HOOKS_CONFIRM_PREFIX)) == 0) {
		/* One of our confirmation texts: nothing to record. */
		hooks_count(h, "status:confirmation");
		http_reply(r, 204, NULL, "", 0);
		goto done;
	}
	if (push_split(push, pbuf, sizeof(pbuf), &entry, &sub, &ch) < 0 ||
	    !status_known(status)) {
		/* 2xx all the same: Twilio would only retry the same callback. */
		log_warnx("event=hook_status_ignored reason=%s sid=%s",
		    status_known(status) ? "bad_push" : "unknown_status", sidq);
		hooks_count(h, status_known(status) ? "status:bad_push" :
		    "status:unknown_status");
		http_reply(r, 204, NULL, "", 0);
		goto done;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->op = hooks_op_new(h, r, HOOKS_OP_STATUS)) == NULL) {
		free(st);
		http_error(r, 503, NULL, "out of memory");
		goto done;
	}
	/* push_split checked every length against these buffers. */
	snprintf(st->push, sizeof(st->push), "%s", push);
	memcpy(st->pbuf, pbuf, sizeof(st->pbuf));
	st->entry = st->pbuf + (entry - pbuf);
	st->sub = st->pbuf + (sub - pbuf);
	st->ch = st->pbuf + (ch - pbuf);
	snprintf(st->status, sizeof(st->status), "%s", status);
	snprintf(st->code, sizeof(st->code), "%s", code);
	snprintf(st->to, sizeof(st->to), "%s", to);
	snprintf(st->now, sizeof(st->now), "%lld", (long long)clock_now());
	/* A Twilio message SID ("SM" and 32 hex digits) is an id like a deal's; one that
	 * is not is passed as "" and only loses the stale-attempt check (and resolves
	 * no unknown push). */
	snprintf(st->sid, sizeof(st->sid), "%s",
	    deal_id_is_valid(sid) && strlen(sid) < sizeof(st->sid) ? sid : "");
	snprintf(st->sidq, sizeof(st->sidq), "%s", sidq);
	/* Counted once per (MessageSid, MessageStatus); without a sid, no replay check. */
	st->step = st->sid[0] != '\0' ? HOOKS_ST_SEEN : HOOKS_ST_DEAL;
	status_next(st);
done:
	free(f.buf);
}
