/*
 * deliver_admit.c: admit.lua for each job, or for one recipient's retry, and the
 * release of deferred recipients (stage: admit).
 *
 * The notifier computes what needs the subscriber's time zones (the legal windows of
 * the recipient's place and quiet hours, the start of the daily cap's local day, the
 * deal's starts_at) and the caps' keys (dl_caps_fill, for send.lua and record.lua
 * too), and admit.lua decides atomically. Must never queue a recipient admit.lua did not admit, nor ack
 * work it could not admit (a failed call leaves the job pending).
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "deliver_int.h"
#include "fault.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "owner.h"
#include "rconn.h"
#include "scripts.h"
#include "shortlink.h"
#include "strcopy.h"
#include "subscriber.h"
#include "substore.h"
#include "tz.h"

#define DELIVER_KEEP_S (7 * 86400)
#define DELIVER_DELAY_BATCH "200"

struct admit_call {
	struct job *job;
	struct rcpt *only;         /* a retry of one recipient, or NULL for the job */
};

/* One recipient's verdict: admitted with its code, or a final one (logged and
 * counted by admit.lua) or a deferral. */
static void
admit_settle(struct deliver *dl, struct rcpt *r, const struct redisReply *v,
    const char *epoch)
{
	const struct job *j = r->job;

	if (v->type != REDIS_REPLY_STRING) {
		dl_rcpt_done(r);
		return;
	}
	if (strncmp(v->str, "admit", 5) == 0 && (v->str[5] == '\0' || v->str[5] == '\t')) {
		str_copy(r->code, sizeof(r->code), v->str[5] ? v->str + 6 : "");
		str_copy(r->consent_epoch, sizeof(r->consent_epoch), epoch);
		r->token = r->code[0] != '\0' && keys_pool_quota(j->pool) > 0;
		if (r->code[0] != '\0' && !r->token && !pushline_code_ok(r->code)) {
			/* A code the plan kept no room for (or one that would change the
			 * text's shape): this push fails, the code leaves the pool. */
			r->code_bad = 1;
			snprintf(r->detail, sizeof(r->detail), "pool code is not 1-%d printable "
			    "characters", PUSHLINE_CODE_MAX);
			dl_record(r, "failed");
			return;
		}
		r->state = RS_QUEUED;
		if (fault_hit("deliver.heap") || dl_heap_push(dl, r) < 0) {
			/* Out of memory: admitted in Redis, so a later admit takes it again. */
			snprintf(r->detail, sizeof(r->detail), "out of memory");
			dl_retry_or_expire(r, -1);
		}
		return;
	}
	/* Final verdicts are logged to pushes:log by admit.lua itself; a delayed
	 * recipient comes back as a job of its own when its window opens. "duplicate"
	 * is no verdict on the push (it ended before): a job read again, routine once
	 * parked jobs are (dl_parked), so neither an info line nor a skip. */
	if (strcmp(v->str, "duplicate") == 0) {
		log_debug("event=push outcome=duplicate push=%s deal=%s", r->push_id, j->deal);
		dl_rcpt_done(r);
		return;
	}
	log_info("event=push outcome=%s push=%s deal=%s sub=%s ch=%s", v->str, r->push_id,
	    j->deal, r->pl.sub, channel_name(r->pl.ch));
	if (dl->metrics != NULL)
		metrics_inc(dl->metrics, METRIC_SKIPS, METRICS_L(v->str), 1);
	dl_rcpt_done(r);
}

/*
 * admit.lua answers {"!pool", <name>} for a job that does not name its deal's code pool
 * (a job re-queued by delay.lua), having written nothing: the job takes the name and
 * admit runs again with that key. Returns 1 when reply was that answer (handled).
 */
static int
admit_pool_named(struct deliver *dl, struct job *j, struct rcpt *only,
    const struct redisReply *reply)
{
	const struct redisReply *name;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(reply->element[0]->str, "!pool") != 0)
		return 0;
	name = reply->element[1];
	if (j->pool[0] == '\0' && name->type == REDIS_REPLY_STRING && name->len > 0 &&
	    name->len < sizeof(j->pool)) {
		snprintf(j->pool, sizeof(j->pool), "%s", name->str);
		if (dl_admit(dl, j, only) == 0)
			return 1;
	}
	log_warnx("event=admit_failed job=%s deal=%s err=\"code pool not named\"", j->entry,
	    j->deal);
	if (only != NULL) {
		dl_retry_or_expire(only, -1);
		return 1;
	}
	dl_job_drop(j);      /* left pending: read again */
	return 1;
}

static void
admit_on_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct admit_call ac = *(struct admit_call *)arg;
	struct job *j = ac.job;
	struct deliver *dl = j->dl;
	size_t i, k = 0, n = ac.only ? 1 : j->n;
	const char *epoch;

	(void)rc;
	free(arg);
	dl->admits_out--;
	if (admit_pool_named(dl, j, ac.only, reply))
		return;
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
	    reply->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(reply->element[0]->str, "!fenced") == 0) {
		/* Another notifier holds the shard now: the job is its to admit. */
		log_warnx("event=admit_fenced job=%s deal=%s shard=%u "
		    "action=leave_to_new_owner", j->entry, j->deal, j->shard);
		j->lost = 1;
		j->unrecorded = 1;
		if (ac.only != NULL)
			dl_rcpt_done(ac.only);
		else
			dl_job_drop(j);
		return;
	}
	if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
	    reply->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(reply->element[0]->str, "!codes") == 0 &&
	    dl_codes_wanted(dl, j, ac.only, reply) == 0)
		return;     /* admitted again once the stash holds the codes */
	/* One verdict per recipient, then the consent epoch. */
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != n + 1 ||
	    reply->element[n]->type != REDIS_REPLY_STRING ||
	    reply->element[n]->len >= sizeof(j->r[0].consent_epoch)) {
		log_warnx("event=admit_failed job=%s deal=%s err=\"%s\"", j->entry, j->deal,
		    reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "no reply");
		if (ac.only != NULL) {
			dl_retry_or_expire(ac.only, -1);
			return;
		}
		/* Dropped from memory unacked; read again from the pending list. */
		dl_job_drop(j);
		return;
	}
	epoch = reply->element[n]->str;
	for (i = 0; i < j->n; i++) {
		if (ac.only != NULL && &j->r[i] != ac.only)
			continue;
		admit_settle(dl, &j->r[i], reply->element[k++], epoch);
	}
	dl_kick(dl);
}

/*
 * The zone of r's subscriber s (UTC, logged, when its own cannot be read), or NULL.
 * Looked up once per push: admit, the send-time window, the caps at send and at record
 * all ask, and a zone that cannot be read would otherwise be read from disk and logged
 * again each time. The cache never evicts, so the pointer stays valid.
 */
static const struct tz *
rcpt_zone(struct deliver *dl, struct rcpt *r, const struct subscriber *s)
{
	const struct tz *z;
	struct err err;

	if (r->zone_done)
		return r->zone;
	r->zone_done = 1;
	err_clear(&err);
	if ((z = tz_get(dl->zones, s->timezone, &err)) == NULL) {
		log_warnx("event=timezone_unavailable sub=%s tz=%s err=\"%s\" action=use_utc",
		    s->id, s->timezone, err.msg);
		z = tz_get(dl->zones, "UTC", NULL);
	}
	return r->zone = z;
}

int64_t
dl_window_open_at(struct deliver *dl, struct rcpt *r, const struct subscriber *s,
    int64_t from, long margin_s)
{
	const struct tz *z;
	int64_t nb, again;

	if (s == NULL)
		return DL_WINDOW_NO_SUBSCRIBER;
	if ((z = rcpt_zone(dl, r, s)) == NULL)
		return DL_WINDOW_NEVER;
	nb = quiet_next_allowed(&dl->quiet, dl->zones, z, s, from);
	if (nb == QUIET_NO_WINDOW)
		return DL_WINDOW_NO_WINDOW;
	if (nb == TZ_TIME_ERROR || nb == QUIET_NEVER)
		return DL_WINDOW_NEVER;
	if (nb > from || margin_s <= 0)
		return nb;
	/* Open now, but closing before the margin is out: the next stretch. */
	again = quiet_next_allowed(&dl->quiet, dl->zones, z, s, from + margin_s);
	if (again == QUIET_NO_WINDOW)
		return DL_WINDOW_NO_WINDOW;
	if (again == TZ_TIME_ERROR || again == QUIET_NEVER)
		return DL_WINDOW_NEVER;
	return again > from + margin_s ? again : nb;
}

void
dl_caps_fill(struct deliver *dl, struct rcpt *r, const struct subscriber *s,
    int64_t now, struct dl_caps *c)
{
	const struct job *j = r->job;
	const struct tz *z;
	struct quiet_place place;
	struct quiet_limit law;
	int64_t day0;

	/* Not a memset: the keys are 2 KB in all, and this runs twice a push or more. */
	c->daykey[0] = c->campkey[0] = c->lawkey[0] = '\0';
	memcpy(c->day_cap, "0", 2);
	memcpy(c->day_start, "0", 2);
	memcpy(c->camp_cap, "0", 2);
	memcpy(c->law_cap, "0", 2);
	memcpy(c->law_window, "0", 2);
	if (s == NULL)
		return;
	/* The daily cap counts the subscriber's local day of the moment given: at send,
	 * the day the text leaves, not the day it was admitted. */
	if (s->max_per_day > 0 && (z = rcpt_zone(dl, r, s)) != NULL &&
	    (day0 = quiet_day_start(z, now)) != TZ_TIME_ERROR) {
		snprintf(c->day_cap, sizeof(c->day_cap), "%d", s->max_per_day);
		snprintf(c->day_start, sizeof(c->day_start), "%lld", (long long)day0);
		(void)keys_texts(r->pl.sub, c->daykey, sizeof(c->daykey));
	}
	if (dl->cfg->campaign_cap > 0 && j->camp[0] != '\0') {
		snprintf(c->camp_cap, sizeof(c->camp_cap), "%ld", dl->cfg->campaign_cap);
		(void)keys_camp(j->camp, r->pl.sub, c->campkey, sizeof(c->campkey));
	}
	quiet_place_of(s, &place);
	law = quiet_limit_of(&dl->quiet, &place);
	if (law.max > 0) {
		snprintf(c->law_cap, sizeof(c->law_cap), "%d", law.max);
		snprintf(c->law_window, sizeof(c->law_window), "%ld", law.window_s);
		if (!dl->quiet.cap_per_campaign)
			(void)keys_texts(r->pl.sub, c->lawkey, sizeof(c->lawkey));
		else if (j->camp[0] != '\0')
			(void)keys_capcamp(j->camp, r->pl.sub, c->lawkey, sizeof(c->lawkey));
		else
			(void)keys_capdeal(j->deal, r->pl.sub, c->lawkey, sizeof(c->lawkey));
	}
}

/* The key link:<code> of r's short link into buf, or "" when its text holds none
 * (no short links configured, or no {link} in the template): the code is the one
 * the plan rendered (shortlink_for_push of the push id), found in the text. */
static void
admit_link_key(const struct deliver *dl, const struct rcpt *r, char *buf, size_t size)
{
	const char *key = dl->cfg->click_secret;
	char code[SHORTLINK_LEN + 1];
	uint32_t shard = keys_shard_of(r->pl.sub);

	buf[0] = '\0';
	if (dl->cfg->link_base == NULL || key == NULL || r->pl.text == NULL ||
	    shortlink_for_push((const unsigned char *)key, strlen(key), r->push_id, shard,
	    keys_shards(), code) < 0 || strstr(r->pl.text, code) == NULL)
		return;
	(void)keys_per(shard, KEYS_LINK, code, buf, size);
}

/*
 * Adds r's keys and arguments for admit.lua (ORDER ADMIT_RKEYS, ADMIT_RARGS): its
 * window (not_before), caps and their keys, at wall time now, and the recipient line
 * only when the push may be deferred (the window opens later): admit.lua keeps it in
 * delayed then, and needs it for nothing else. 0, or -1 on OOM.
 */
static int
admit_add(struct deliver *dl, struct script_args *sa, struct rcpt *r, int64_t now,
    int retry, const char *rrule)
{
	const struct subscriber *s = substore_get(dl->ss, r->pl.sub);
	const struct job *j = r->job;
	struct dl_caps caps;
	char *line = NULL, link[KEYS_SHARD_MAX + SHORTLINK_LEN];
	int64_t nb = -2;

	dl_caps_fill(dl, r, s, now, &caps);
	admit_link_key(dl, r, link, sizeof(link));
	if (s != NULL) {
		/* Nothing leaves before the deal starts: the window is looked at from
		 * then. */
		nb = dl_window_open_at(dl, r, s, j->start > now ? j->start : now, 0);
		if (nb != DL_WINDOW_NEVER && nb != DL_WINDOW_NO_WINDOW && nb <= now)
			nb = 0;
	}
	/* The line goes with a deferred recipient (kept for later), and with every one
	 * of a job read again, whose push may be "sending" from an earlier claim: its
	 * unknown outcome then carries the text the resolver looks up. */
	if ((nb > now || j->reread) && (line = pushline_format(&r->pl)) == NULL)
		return -1;
	/* ORDER ADMIT_RKEYS */
	script_key(sa, caps.daykey, NULL);
	script_key(sa, caps.campkey, NULL);
	script_key(sa, rrule, r->pl.rule);
	script_key(sa, caps.lawkey, NULL);
	script_key(sa, link, NULL);
	/* ORDER ADMIT_RARGS */
	script_arg(sa, r->pl.sub, NULL);
	script_arg(sa, channel_name(r->pl.ch), NULL);
	script_arg(sa, r->push_id, NULL);
	script_arg(sa, retry ? "1" : "0", NULL);
	script_arg_ll(sa, nb);
	script_arg(sa, caps.day_cap, NULL);
	script_arg(sa, caps.camp_cap, NULL);
	script_arg(sa, line != NULL ? line : "", NULL);
	script_arg(sa, r->pl.rule, NULL);
	script_arg(sa, caps.day_start, NULL);
	script_arg(sa, caps.law_cap, NULL);
	script_arg(sa, caps.law_window, NULL);
	free(line);
	return 0;
}

int
dl_admit(struct deliver *dl, struct job *j, struct rcpt *only)
{
	struct script_args *sa = &dl->sargs;
	char k_sub[KEYS_SUB_NKEYS][KEYS_SHARD_MAX];
	char p_push[KEYS_SHARD_MAX], p_code[KEYS_SHARD_MAX], p_rdeal[KEYS_SHARD_MAX];
	char p_rcamp[KEYS_SHARD_MAX], p_rrule[KEYS_SHARD_MAX], p_deal[KEYS_SHARD_MAX];
	char k_log[KEYS_SHARD_MAX], k_stats[KEYS_SHARD_MAX], k_delayed[KEYS_SHARD_MAX];
	char k_due[KEYS_SHARD_MAX], k_info[KEYS_SHARD_MAX], k_cstate[KEYS_SHARD_MAX];
	char k_stash[KEYS_MAX], cfield[2 * MODEL_TEXT_MAX + 2];
	struct admit_call *ac = calloc(1, sizeof(*ac));
	uint32_t shard;
	int64_t t = clock_now();
	size_t i;

	if (ac == NULL)
		return -1;
	ac->job = j;
	ac->only = only;
	/* ORDER ADMIT_KEYS */
	/* A job holds one shard's recipients (ingest_plan.c; never none, deliver.c):
	 * its subscriber keys and the keys of its pushes. */
	shard = keys_shard_of((only != NULL ? only : &j->r[0])->pl.sub);
	(void)keys_sub_keys(shard, k_sub);
	(void)keys_prefix(shard, KEYS_DEAL, p_deal, sizeof(p_deal));
	(void)keys_prefix(shard, KEYS_PUSH, p_push, sizeof(p_push));
	(void)keys_prefix(shard, KEYS_CODE, p_code, sizeof(p_code));
	(void)keys_prefix(shard, KEYS_REPORT_DEAL, p_rdeal, sizeof(p_rdeal));
	(void)keys_prefix(shard, KEYS_REPORT_RULE, p_rrule, sizeof(p_rrule));
	if (j->camp[0] != '\0')
		(void)keys_prefix(shard, KEYS_REPORT_CAMPAIGN, p_rcamp, sizeof(p_rcamp));
	else
		p_rcamp[0] = '\0';
	(void)keys_shard_key(shard, KEYS_PUSHES_LOG, k_log, sizeof(k_log));
	(void)keys_shard_key(shard, KEYS_STATS, k_stats, sizeof(k_stats));
	(void)keys_shard_key(shard, KEYS_DELAYED, k_delayed, sizeof(k_delayed));
	(void)keys_shard_key(shard, KEYS_RESOLVE_DUE, k_due, sizeof(k_due));
	(void)keys_shard_key(shard, KEYS_RESOLVE_INFO, k_info, sizeof(k_info));
	/* Sharded, a pool's codes come through the shard's stash (deliver_codes.c). */
	(void)keys_codestash(shard, j->deal, j->pool, k_stash, sizeof(k_stash));
	if (j->pool[0] == '\0' || keys_codestate(shard, k_cstate, sizeof(k_cstate)) <= 0 ||
	    snprintf(cfield, sizeof(cfield), "%s\t%s", j->deal, j->pool) >=
	    (int)sizeof(cfield)) {
		k_cstate[0] = '\0';
		cfield[0] = '\0';
	}
	script_key(sa, p_deal, j->deal);
	script_key(sa, p_push, j->deal);
	script_key(sa, k_sub[4 + CH_SMS], NULL);
	script_key(sa, k_sub[4 + CH_DM], NULL);
	script_key(sa, k_log, NULL);
	script_key(sa, k_stats, NULL);
	script_key(sa, k_delayed, NULL);
	script_key(sa, p_code, j->deal);
	script_key(sa, k_stash, NULL);
	script_key(sa, p_rdeal, j->deal);
	script_key(sa, p_rcamp, j->camp);
	script_key(sa, k_due, NULL);
	script_key(sa, k_info, NULL);
	script_key(sa, k_sub[2], NULL);
	script_key(sa, k_cstate, NULL);
	script_key(sa, owner_key(dl->owner, shard), NULL);   /* the fence, or "" */
	/* ORDER ADMIT_ARGS */
	script_arg_ll(sa, t);
	script_arg_ll(sa, j->exp);
	/* Relative: Redis' clock need not agree with ours. */
	script_arg_ll(sa, (j->exp - t > 0 ? j->exp - t : 0) + DELIVER_KEEP_S);
	script_arg(sa, j->deal, NULL);
	script_arg(sa, j->deal_entry, NULL);
	script_arg(sa, j->camp, NULL);
	script_arg(sa, dl->cfg->consumer, NULL);
	script_arg_ll(sa, only != NULL ? 1 : (long long)j->n);
	script_arg_ll(sa, t + dl->cfg->resolve_after_s);
	script_arg_ll(sa, dl->cfg->click_window_s);
	script_arg(sa, cfield, NULL);
	script_arg(sa, dl_codes_pool_empty(dl, j) ? "1" : "0", NULL);
	script_arg(sa, owner_epoch(dl->owner, shard), NULL);
	for (i = 0; i < j->n; i++) {
		if (only != NULL && &j->r[i] != only)
			continue;
		if (admit_add(dl, sa, &j->r[i], t, only != NULL, p_rrule) < 0) {
			script_args_release(sa);
			free(ac);
			return -1;
		}
	}
	if (script_call_args(dl->cmd, SCRIPT_ADMIT, sa, admit_on_reply, ac) < 0) {
		free(ac);
		return -1;
	}
	dl->admits_out++;
	return 0;
}

static void
delay_on_reply(struct rconn *rc, struct redisReply *r, void *arg)
{
	(void)rc;
	(void)arg;
	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		log_warnx("event=delay_failed err=\"%s\"", r ? r->str : "no reply");
	else if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
		log_info("event=delayed_released recipients=%lld", r->integer);
}

/* arg: the shard, as a number (the deliverer may be freed before a late reply). */
static void
trim_on_reply(struct rconn *rc, struct redisReply *r, void *arg)
{
	(void)rc;
	/* A failed trim only leaves acked jobs for the next second's. */
	if (r == NULL || r->type == REDIS_REPLY_ERROR)
		log_warnx("event=trim_failed shard=%lu err=\"%s\"", (unsigned long)(uintptr_t)arg,
		    r ? r->str : "no reply");
}

/*
 * Once a second, in every shard: moves recipients whose window opened back onto the
 * shard's "pushes" (delay.lua), then drops the jobs of that stream below the oldest
 * one any group still needs (trim.lua): an acked job is never read again, so the
 * stream holds only the work in progress. Each call is on its shard's slot.
 */
void
dl_on_delay_timer(evutil_socket_t fd, short what, void *arg)
{
	struct deliver *dl = arg;
	char now[32], delayed[KEYS_SHARD_MAX];
	/* ORDER DELAY_KEYS, then the arguments */
	const char *args[4] = { delayed, NULL, now, DELIVER_DELAY_BATCH };
	/* ORDER TRIM_KEYS */
	const char *targs[1];
	uint32_t k;

	(void)fd;
	(void)what;
	if (dl->stopping || !rconn_is_ready(dl->cmd))
		return;
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	for (k = 0; k < dl->nrd; k++) {
		/* A shard's own work: done by its owner only (owner.h). */
		if (!owner_serves(dl->owner, k) ||
		    keys_shard_key(k, KEYS_DELAYED, delayed, sizeof(delayed)) < 0)
			continue;
		args[1] = dl->rd[k].stream;
		script_call(dl->cmd, SCRIPT_DELAY, 2, 4, args, NULL, delay_on_reply, NULL);
		targs[0] = dl->rd[k].stream;
		script_call_named(dl->cmd, "trim", 1, 1, targs, NULL, trim_on_reply,
		    (void *)(uintptr_t)k);
	}
	dl_codes_walk(dl);
}
