/*
 * resolve.c: settles "unknown" SMS pushes by asking Twilio whether the message reached
 * it (stage: record).
 *
 * Once a second, when its own Redis connection is ready and no batch is under way, it
 * takes up to RESOLVE_BATCH due entries (resolve_take.lua, which moves each entry's
 * due time forward by a lease), looks each up through the gateway that sent it (or
 * every twilio gateway when that is not known) and settles each with resolve.lua.
 * Every step has a deadline: Redis commands through rconn, each list page through
 * httpc, and the lease bounds the whole. It must never send a message, never block
 * the loop, never settle a push without resolve.lua's check that it is still
 * "unknown", and never log a full phone number.
 */
#include <sys/queue.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "config.h"
#include "gw.h"
#include "keys.h"
#include "log.h"
#include "rconn.h"
#include "resolve.h"
#include "rules.h"
#include "scripts.h"

#define RESOLVE_INFO_FIELDS 9
#define RESOLVE_KEY_MAX 256
#define RESOLVE_NKEYS 13              /* ORDER RESOLVE_KEYS: resolve.lua's KEYS */

/* Multiples of deliver.resolve_after_s between the later looks: with the default of
 * 30 s, 60 s, 5 min and 15 min after the look before. Past the table, the last. */
static const long resolve_backoff[] = { 2, 10, 30 };

/* What record.lua / admit.lua wrote in resolve:info, split in place.
 * ORDER RESOLVE_INFO: deal, sub, channel, gateway, to, started, rule, campaign, text
 * (notifier/lua/lib/outcome.lua writes it; text last, the only field with tabs). */
struct resolve_info {
	const char *deal;
	const char *sub;
	const char *ch;
	const char *gw;               /* "" = not known: every twilio gateway is asked */
	const char *to;
	int64_t started;              /* epoch s, the notifier's clock */
	const char *rule;
	const char *camp;
	const char *text;             /* "" = not known: only a status callback can tell */
};

enum resolve_verdict {
	RV_FOUND = 0,
	RV_NOT_FOUND,
	RV_AMBIGUOUS,
	RV_ERROR,
	RV_WAIT
};

/* ORDER VERDICT: as enum resolve_verdict; the names resolve.lua takes. */
static const char *const resolve_verdict_names[] = {
	"found", "not_found", "ambiguous", "error", "wait"
};

struct resolve_item {
	struct resolve *r;            /* NULL once the resolver is gone: free and return */
	char *push;                   /* owned */
	char *buf;                    /* owned copy of the info the fields point into */
	struct resolve_info in;
	long tries;                   /* lookups done before this one */
	int gw_next;                  /* the next of gw_order[] to ask */
	int gw_count;
	int gw_order[CONFIG_GATEWAYS_MAX];
	int matches;                  /* over every gateway asked */
	int errors;
	enum resolve_verdict verdict;
	char sid[64];
	char gw_found[40];
	LIST_ENTRY(resolve_item) link;
};

struct resolve {
	struct event_base *base;
	const struct config *cfg;
	struct rconn *rc;
	struct event *tick;
	struct gw *gws[CONFIG_GATEWAYS_MAX];   /* twilio sms gateways only */
	const char *gw_names[CONFIG_GATEWAYS_MAX];
	int ngws;
	long lease_s;
	long page_timeout_ms;
	int taking;                   /* resolve_take.lua is out */
	int stopped;
	uint32_t next_shard;          /* whose resolve:due the next tick takes (keys.h) */
	LIST_HEAD(, resolve_item) items;   /* taken and not yet settled */
};

static void item_lookup_next(struct resolve_item *it);

static void item_free(struct resolve_item *it)
{
	if (it == NULL)
		return;
	if (it->r != NULL)
		LIST_REMOVE(it, link);
	free(it->push);
	free(it->buf);
	free(it);
}

/* Splits it->buf into it->in. Returns 0, or -1 when it is not what outcome.lua
 * writes (too few fields, a bad time, a channel other than sms, an empty id). */
static int info_parse(struct resolve_item *it)
{
	const char *f[RESOLVE_INFO_FIELDS];
	char *p = it->buf, *tab, *end;
	long long started;
	int i;

	for (i = 0; i < RESOLVE_INFO_FIELDS - 1; i++) {
		if ((tab = strchr(p, '\t')) == NULL)
			return -1;
		*tab = '\0';
		f[i] = p;
		p = tab + 1;
	}
	f[i] = p;
	it->in.deal = f[0];
	it->in.sub = f[1];
	it->in.ch = f[2];
	it->in.gw = f[3];
	it->in.to = f[4];
	it->in.rule = f[6];
	it->in.camp = f[7];
	it->in.text = f[8];
	started = strtoll(f[5], &end, 10);
	if (f[5][0] == '\0' || *end != '\0' || started < 0)
		return -1;
	it->in.started = started;
	for (p = (char *)it->in.deal; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~')
			return -1;
	if (it->in.deal[0] == '\0' || it->in.sub[0] == '\0' || strcmp(it->in.ch, "sms") != 0)
		return -1;
	return 0;
}

/* ---- settling ---- */

static void on_settled(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct resolve_item *it = arg;
	char masked[32];

	(void)rc;
	if (it->r == NULL) {
		item_free(it);
		return;
	}
	log_mask_phone(it->in.to, masked, sizeof(masked));
	if (reply == NULL || (reply->type != REDIS_REPLY_STATUS &&
	    reply->type != REDIS_REPLY_STRING)) {
		/* The lease brings the entry back; nothing was settled. */
		log_warnx("event=resolve_settle_failed push=%s err=\"%s\"", it->push,
		    reply == NULL ? "no reply" : reply->type == REDIS_REPLY_ERROR ?
		    reply->str : "bad reply");
	} else if (strncmp(reply->str, "sent:", 5) == 0) {
		log_info("event=resolved push=%s deal=%s sub=%s gw=%s by=%s", it->push,
		    it->in.deal, it->in.sub, it->gw_found[0] ? it->gw_found : "-",
		    reply->str + 5);
	} else if (strcmp(reply->str, "gave_up") == 0) {
		log_warnx("event=resolve_gave_up push=%s deal=%s sub=%s to=%s tries=%ld "
		    "last=%s", it->push, it->in.deal, it->in.sub, masked, it->tries + 1,
		    resolve_verdict_names[it->verdict]);
	} else {
		log_debug("event=resolve_%s push=%s verdict=%s matches=%d try=%ld", reply->str,
		    it->push, resolve_verdict_names[it->verdict], it->matches, it->tries + 1);
	}
	item_free(it);
}

/* Runs resolve.lua for it with its verdict; it is freed by on_settled, or here when
 * the script cannot be sent (the lease brings the entry back). */
static void item_settle(struct resolve_item *it)
{
	struct resolve *r = it->r;
	char k_states[RESOLVE_KEY_MAX], k_deal[RESOLVE_KEY_MAX], k_rule[RESOLVE_KEY_MAX];
	char k_camp[RESOLVE_KEY_MAX], k_info[RESOLVE_KEY_MAX], k_deliv[RESOLVE_KEY_MAX];
	char field[RESOLVE_KEY_MAX], now[24], segs[16], maxt[16], started[24];
	char delays[sizeof(resolve_backoff) / sizeof(resolve_backoff[0]) + 100][16];
	const char *args[RESOLVE_NKEYS + 14 + 100];
	enum rule_encoding enc;
	unsigned units, nseg = 0;
	long t, i, n = 0, b;

	/* Every key of the push is its subscriber's shard's (keys.h). */
	uint32_t shard = keys_shard_of(it->in.sub);
	char k_due[KEYS_SHARD_MAX], k_rinfo[KEYS_SHARD_MAX], k_tries[KEYS_SHARD_MAX];
	char k_log[KEYS_SHARD_MAX], k_stats[KEYS_SHARD_MAX], k_behav[KEYS_SHARD_MAX];
	char k_changes[KEYS_SHARD_MAX];

	keys_per(shard, KEYS_PUSH, it->in.deal, k_states, sizeof(k_states));
	keys_per(shard, KEYS_REPORT_DEAL, it->in.deal, k_deal, sizeof(k_deal));
	if (it->in.rule[0] != '\0')
		keys_per(shard, KEYS_REPORT_RULE, it->in.rule, k_rule, sizeof(k_rule));
	else
		k_rule[0] = '\0';
	if (it->in.camp[0] != '\0')
		keys_per(shard, KEYS_REPORT_CAMPAIGN, it->in.camp, k_camp, sizeof(k_camp));
	else
		k_camp[0] = '\0';
	keys_per(shard, KEYS_PUSHINFO, it->in.deal, k_info, sizeof(k_info));
	keys_per(shard, KEYS_DELIVERY, it->in.deal, k_deliv, sizeof(k_deliv));
	keys_shard_key(shard, KEYS_RESOLVE_DUE, k_due, sizeof(k_due));
	keys_shard_key(shard, KEYS_RESOLVE_INFO, k_rinfo, sizeof(k_rinfo));
	keys_shard_key(shard, KEYS_RESOLVE_TRIES, k_tries, sizeof(k_tries));
	keys_shard_key(shard, KEYS_PUSHES_LOG, k_log, sizeof(k_log));
	keys_shard_key(shard, KEYS_STATS, k_stats, sizeof(k_stats));
	keys_shard_key(shard, KEYS_BEHAVIOUR, k_behav, sizeof(k_behav));
	keys_shard_key(shard, KEYS_SUB_CHANGES, k_changes, sizeof(k_changes));
	snprintf(field, sizeof(field), "%s:%s", it->in.sub, it->in.ch);
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	if (it->in.text[0] != '\0')
		nseg = rule_sms_count(it->in.text, strlen(it->in.text), &enc, &units);
	snprintf(segs, sizeof(segs), "%u", nseg);
	snprintf(maxt, sizeof(maxt), "%ld", r->cfg->resolve_tries);
	snprintf(started, sizeof(started), "%lld", (long long)it->in.started);
	/* ORDER RESOLVE_KEYS (resolve.lua's header) */
	args[n++] = k_states;
	args[n++] = k_due;
	args[n++] = k_rinfo;
	args[n++] = k_tries;
	args[n++] = k_log;
	args[n++] = k_stats;
	args[n++] = k_deal;
	args[n++] = k_rule;
	args[n++] = k_camp;
	args[n++] = k_info;
	args[n++] = k_deliv;
	args[n++] = k_behav;
	args[n++] = k_changes;
	args[n++] = it->push;
	args[n++] = field;
	args[n++] = resolve_verdict_names[it->verdict];
	args[n++] = now;
	args[n++] = it->in.deal;
	args[n++] = it->in.sub;
	args[n++] = it->in.ch;
	args[n++] = it->gw_found[0] ? it->gw_found : it->in.gw;
	args[n++] = it->sid;
	args[n++] = segs;
	args[n++] = it->in.rule;
	args[n++] = it->in.camp;
	args[n++] = started;
	args[n++] = maxt;
	/* The delay after try t (1-based) before the next look. */
	for (t = 1; t < r->cfg->resolve_tries && t <= 100; t++) {
		i = t - 1 < (long)(sizeof(resolve_backoff) / sizeof(resolve_backoff[0])) ?
		    t - 1 : (long)(sizeof(resolve_backoff) / sizeof(resolve_backoff[0])) - 1;
		b = resolve_backoff[i] * r->cfg->resolve_after_s;
		snprintf(delays[t - 1], sizeof(delays[t - 1]), "%ld", b);
		args[n++] = delays[t - 1];
	}
	if (script_call_named(r->rc, "resolve", RESOLVE_NKEYS, (int)n, args, NULL, on_settled, it) < 0) {
		log_warnx("event=resolve_settle_failed push=%s err=\"redis not connected\"",
		    it->push);
		item_free(it);
	}
}

/* ---- looking up ---- */

/* The verdict once every gateway has answered. */
static void item_decide(struct resolve_item *it)
{
	if (it->matches > 1)
		it->verdict = RV_AMBIGUOUS;
	else if (it->matches == 1)
		it->verdict = RV_FOUND;
	else if (it->errors > 0)
		it->verdict = RV_ERROR;
	else
		it->verdict = RV_NOT_FOUND;
	if (it->verdict != RV_FOUND)
		it->sid[0] = '\0';
}

static void on_found(void *arg, const struct gw_find_result *res, int cancelled)
{
	struct resolve_item *it = arg;
	int gi;

	if (cancelled || it->r == NULL) {
		/* Shutting down: the entry comes due again after its lease. */
		item_free(it);
		return;
	}
	gi = it->gw_order[it->gw_next - 1];
	switch (res->outcome) {
	case GW_FIND_FOUND:
		if (it->matches++ == 0) {
			snprintf(it->sid, sizeof(it->sid), "%s", res->sid);
			snprintf(it->gw_found, sizeof(it->gw_found), "%s", it->r->gw_names[gi]);
		}
		break;
	case GW_FIND_AMBIGUOUS:
		it->matches += res->matches > 1 ? res->matches : 2;
		break;
	case GW_FIND_NOT_FOUND:
		break;
	case GW_FIND_ERROR:
		it->errors++;
		log_warnx("event=resolve_lookup_failed push=%s gw=%s err=\"%s\"", it->push,
		    it->r->gw_names[gi], res->detail);
		break;
	}
	item_lookup_next(it);
}

/* Asks the next gateway, or settles once every gateway has answered or two matches
 * make it ambiguous. */
static void item_lookup_next(struct resolve_item *it)
{
	struct resolve *r = it->r;
	struct gw_find_query q;
	struct err err;
	int gi;

	while (it->gw_next < it->gw_count && it->matches < 2) {
		gi = it->gw_order[it->gw_next++];
		memset(&q, 0, sizeof(q));
		q.to = it->in.to;
		q.text = it->in.text;
		/* Twilio's clock is the real one; ours may carry notifier.clock_offset_s. */
		q.not_before = it->in.started - (clock_now_ms() - clock_real_ms()) / 1000 -
		    RESOLVE_SKEW_S;
		q.timeout_ms = r->page_timeout_ms;
		err_clear(&err);
		if (gw_twilio_find(r->gws[gi], &q, on_found, it, &err) == 0)
			return;
		it->errors++;
		log_warnx("event=resolve_lookup_failed push=%s gw=%s err=\"%s\"", it->push,
		    r->gw_names[gi], err.msg);
	}
	item_decide(it);
	item_settle(it);
}

/* Starts one taken entry: parse, choose the gateways, look up (or wait for a
 * callback when the text is not known). */
static void item_start(struct resolve_item *it)
{
	struct resolve *r = it->r;
	int i;

	if (it->in.text[0] == '\0') {
		it->verdict = RV_WAIT;
		item_settle(it);
		return;
	}
	for (i = 0; i < r->ngws; i++)
		if (strcmp(r->gw_names[i], it->in.gw) == 0)
			it->gw_order[it->gw_count++] = i;
	/* Not named, or a gateway this notifier does not have: ask every one. */
	if (it->gw_count == 0)
		for (i = 0; i < r->ngws; i++)
			it->gw_order[it->gw_count++] = i;
	item_lookup_next(it);
}

/* Forgets an entry whose info cannot be used: it could never be looked up. */
static void item_drop_bad(struct resolve *r, const char *push)
{
	/* The push's shard (its subscriber's, from the push id). */
	uint32_t shard = keys_shard_of_push(push);
	char k[4][KEYS_SHARD_MAX];

	keys_shard_key(shard, KEYS_RESOLVE_DUE, k[0], sizeof(k[0]));
	keys_shard_key(shard, KEYS_RESOLVE_INFO, k[1], sizeof(k[1]));
	keys_shard_key(shard, KEYS_RESOLVE_TRIES, k[2], sizeof(k[2]));
	keys_shard_key(shard, KEYS_STATS, k[3], sizeof(k[3]));
	log_warnx("event=resolve_bad_info push=%s action=drop", push);
	rconn_cmd(r->rc, NULL, NULL, 0, "ZREM %s %s", k[0], push);
	rconn_cmd(r->rc, NULL, NULL, 0, "HDEL %s %s", k[1], push);
	rconn_cmd(r->rc, NULL, NULL, 0, "HDEL %s %s", k[2], push);
	rconn_cmd(r->rc, NULL, NULL, 0, "HINCRBY %s resolve:bad_info 1", k[3]);
}

static int reply_str(const struct redisReply *e)
{
	return e != NULL && e->type == REDIS_REPLY_STRING;
}

static void on_taken(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct resolve *r = arg;
	struct resolve_item *it;
	char *end;
	size_t i;

	(void)rc;
	r->taking = 0;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements % 3 != 0) {
		log_warnx("event=resolve_take_failed err=\"%s\"", reply == NULL ? "no reply" :
		    reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply");
		return;
	}
	for (i = 0; i + 2 < reply->elements; i += 3) {
		const struct redisReply *id = reply->element[i], *inf = reply->element[i + 1];
		const struct redisReply *tr = reply->element[i + 2];

		if (!reply_str(id) || !reply_str(inf) || !reply_str(tr))
			continue;
		if ((it = calloc(1, sizeof(*it))) == NULL ||
		    (it->push = strdup(id->str)) == NULL || (it->buf = strdup(inf->str)) == NULL) {
			if (it != NULL) {
				free(it->push);
				free(it);
			}
			log_warnx("event=resolve_take_failed err=\"out of memory\"");
			continue;   /* the lease brings it back */
		}
		it->tries = strtol(tr->str, &end, 10);
		if (info_parse(it) < 0 || *end != '\0' || it->tries < 0) {
			item_drop_bad(r, it->push);
			item_free(it);
			continue;
		}
		it->r = r;
		LIST_INSERT_HEAD(&r->items, it, link);
		item_start(it);
	}
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct resolve *r = arg;
	char now[24], batch[16], lease[16], k[4][KEYS_SHARD_MAX];
	const char *args[7];
	uint32_t shard;

	(void)fd;
	(void)what;
	if (r->stopped || r->taking || r->ngws == 0 || !LIST_EMPTY(&r->items) ||
	    !rconn_is_ready(r->rc))
		return;
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	snprintf(batch, sizeof(batch), "%d", RESOLVE_BATCH);
	snprintf(lease, sizeof(lease), "%ld", r->lease_s);
	/* One shard a tick, in turn (keys.h): its resolve keys and stats. */
	shard = r->next_shard % keys_shards();
	r->next_shard = (shard + 1) % keys_shards();
	keys_shard_key(shard, KEYS_RESOLVE_DUE, k[0], sizeof(k[0]));
	keys_shard_key(shard, KEYS_RESOLVE_INFO, k[1], sizeof(k[1]));
	keys_shard_key(shard, KEYS_RESOLVE_TRIES, k[2], sizeof(k[2]));
	keys_shard_key(shard, KEYS_STATS, k[3], sizeof(k[3]));
	args[0] = k[0];
	args[1] = k[1];
	args[2] = k[2];
	args[3] = k[3];
	args[4] = now;
	args[5] = batch;
	args[6] = lease;
	if (script_call_named(r->rc, "resolve_take", 4, 7, args, NULL, on_taken, r) == 0)
		r->taking = 1;
}

static void on_ready(struct rconn *rc, void *arg)
{
	(void)arg;
	scripts_load(rc);
}

struct resolve *resolve_new(struct event_base *base, const struct config *cfg,
    const struct rconn_config *rcfg, struct httpc *http)
{
	struct timeval tv = { RESOLVE_TICK_MS / 1000, (RESOLVE_TICK_MS % 1000) * 1000 };
	struct resolve *r = calloc(1, sizeof(*r));
	struct err err;
	size_t i;

	if (r == NULL)
		return NULL;
	r->base = base;
	r->cfg = cfg;
	LIST_INIT(&r->items);
	for (i = 0; i < cfg->ngateways; i++) {
		const struct gw_config *g = &cfg->gateways[i];

		if (g->kind != GW_TWILIO || g->channel != CH_SMS)
			continue;
		err_clear(&err);
		if ((r->gws[r->ngws] = gw_new(http, g, &err)) == NULL) {
			log_errorx("event=start_failed component=resolve gw=%s err=\"%s\"",
			    g->name, err.msg);
			goto fail;
		}
		r->gw_names[r->ngws++] = g->name;
	}
	/* The lease covers a whole lookup: at most GW_FIND_PAGES_MAX pages from each
	 * gateway, each page within half the lease shared out. */
	r->lease_s = 2 * cfg->resolve_after_s;
	if (r->lease_s < RESOLVE_LEASE_MIN_S)
		r->lease_s = RESOLVE_LEASE_MIN_S;
	if (r->lease_s > RESOLVE_LEASE_MAX_S)
		r->lease_s = RESOLVE_LEASE_MAX_S;
	r->page_timeout_ms = r->lease_s * 1000 / 2 / GW_FIND_PAGES_MAX /
	    (r->ngws > 0 ? r->ngws : 1);
	if ((r->tick = event_new(base, -1, EV_PERSIST, on_tick, r)) == NULL ||
	    event_add(r->tick, &tv) != 0)
		goto fail;
	if ((r->rc = rconn_new(base, rcfg, "resolve", on_ready, r)) == NULL)
		goto fail;
	log_info("event=resolve_started gateways=%d after_s=%ld tries=%ld lease_s=%ld",
	    r->ngws, cfg->resolve_after_s, cfg->resolve_tries, r->lease_s);
	return r;
fail:
	resolve_free(r);
	return NULL;
}

void resolve_stop(struct resolve *r)
{
	if (r != NULL)
		r->stopped = 1;
}

int resolve_idle(const struct resolve *r)
{
	return r == NULL || (!r->taking && LIST_EMPTY(&r->items));
}

void resolve_free(struct resolve *r)
{
	struct resolve_item *it;
	int i;

	if (r == NULL)
		return;
	r->stopped = 1;
	if (r->tick != NULL)
		event_free(r->tick);
	/* Pending script replies come back NULL now; their items are freed there. */
	rconn_free(r->rc);
	/* What is left waits on an HTTP lookup: detach it, its callback frees it. */
	while ((it = LIST_FIRST(&r->items)) != NULL) {
		LIST_REMOVE(it, link);
		it->r = NULL;
	}
	for (i = 0; i < r->ngws; i++)
		gw_free(r->gws[i]);
	free(r);
}
