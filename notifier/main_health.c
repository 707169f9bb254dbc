/*
 * main_health.c: what the notifier says about itself (stage: operations): /healthz
 * from the state it already has, the stats tick (the consumer groups' lag and the
 * gateways' gauges in /metrics, the paused templates), and READY=1 and WATCHDOG=1 to
 * the service manager (sdnotify.h). Runs on the loop; never waits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "deliver.h"
#include "durable.h"
#include "http.h"
#include "ingest.h"
#include "keys.h"
#include "log.h"
#include "match.h"
#include "metrics.h"
#include "owner.h"
#include "rconn.h"
#include "rules.h"
#include "sdnotify.h"
#include "substore.h"

#include "main_int.h"

/* /healthz says replica lag while the last WAIT, this recent (or within two WAIT
 * timeouts, when longer), was short. */
#define MAIN_REPLICA_LAG_MS 5000

/* ORDER STREAMS: the streams whose consumer-group lag is watched; "pushes" is every
 * shard's (keys.h), summed; on "deals" every shard's group (keys_deals_group),
 * summed. */
static const char *const main_streams[2][2] = {
	{ "deals", "notifier" },
	{ "pushes", "deliver" },
};

/* 1 when group is one of ours on stream i of main_streams. */
static int
main_group_is_ours(int i, const char *group)
{
	char g[KEYS_GROUP_MAX];
	uint32_t k;

	if (i != 0)
		return strcmp(group, main_streams[i][1]) == 0;
	for (k = 0; k < keys_shards(); k++)
		if (keys_deals_group(k, g, sizeof(g)) >= 0 && strcmp(group, g) == 0)
			return 1;
	return 0;
}

/* Every shard's planning, summed (a deal counts once per shard planning it). */
static void
main_ingest_progress(const struct notifier *n, struct ingest_progress *out)
{
	struct ingest_progress one;
	uint32_t k;

	memset(out, 0, sizeof(*out));
	for (k = 0; k < n->ningest; k++) {
		ingest_progress(n->ingest[k], &one);
		out->planning += one.planning;
		out->ranked += one.ranked;
		out->done += one.done;
		out->plans_failed += one.plans_failed;
		if (one.stalled_ms >= out->stalled_ms && one.planning > 0) {
			out->stalled_ms = one.stalled_ms;
			memcpy(out->stalled_deal, one.stalled_deal, sizeof(out->stalled_deal));
		}
	}
}

/* XINFO GROUPS reply: the group's lag (not yet read) plus pending (read, not acked). */
struct lag_call {
	struct notifier *n;
	int i;
	uint32_t shard;               /* of "pushes" */
	int export;                   /* 1: into /metrics too (the stats tick's calls) */
};

/* The pushes lag: every shard's summed, -1 while one is unknown. */
static long long
main_push_lag(const struct notifier *n)
{
	long long sum = 0;
	uint32_t k;

	if (n->push_lags == NULL)
		return -1;
	for (k = 0; k < n->npush_lags; k++) {
		if (n->push_lags[k] < 0)
			return -1;
		sum += n->push_lags[k];
	}
	return sum;
}

static void
on_xinfo(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct lag_call *c = arg;
	struct notifier *n = c->n;
	long long lag = -1, pending = 0;
	size_t g, k;

	(void)rc;
	for (g = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && g < r->elements; g++) {
		const struct redisReply *e = r->element[g];
		int mine = 0;
		long long gl = 0, gp = 0;

		if (e->type != REDIS_REPLY_ARRAY)
			continue;
		for (k = 0; k + 1 < e->elements; k += 2) {
			const struct redisReply *key = e->element[k], *v = e->element[k + 1];

			if (key->type != REDIS_REPLY_STRING)
				continue;
			if (strcmp(key->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
				mine = main_group_is_ours(c->i, v->str);
			else if (strcmp(key->str, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
				gl = v->integer;
			else if (strcmp(key->str, "pending") == 0 &&
			    v->type == REDIS_REPLY_INTEGER)
				gp = v->integer;
		}
		if (mine) {
			lag = (lag < 0 ? 0 : lag) + gl;
			pending += gp;
		}
	}
	if (c->i == 1 && c->shard < n->npush_lags) {
		n->push_lags[c->shard] = lag < 0 ? -1 : lag + pending;
		n->lag[1] = main_push_lag(n);
	} else {
		n->lag[c->i] = lag < 0 ? -1 : lag + pending;
	}
	if (c->export && n->metrics != NULL && n->lag[c->i] >= 0)
		metrics_set(n->metrics, METRIC_STREAM_LAG, METRICS_L(main_streams[c->i][0]),
		    (double)n->lag[c->i]);
	n->lag_calls--;
	free(c);
}

/* HKEYS paused_templates: the rules whose SMS template a carrier filtered. */
static void
on_paused(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct notifier *n = arg;
	const char *names[256];
	size_t i, k = 0;

	(void)rc;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return;   /* keep what we have */
	for (i = 0; i < r->elements && k < sizeof(names) / sizeof(names[0]); i++)
		if (r->element[i]->type == REDIS_REPLY_STRING)
			names[k++] = r->element[i]->str;
	matcher_set_paused(n->matcher, names, k);
}

/* The planning, mirror and connection gauges of /metrics. */
static void
main_export(struct notifier *n)
{
	struct ingest_progress ip;
	struct substore_stats ms;
	struct rconn_stat rs;

	if (n->metrics == NULL)
		return;
	main_ingest_progress(n, &ip);
	rconn_stats(n->cmd, &rs);
	metrics_set(n->metrics, METRIC_PLANNING_DEALS, NULL, (double)ip.planning);
	metrics_set(n->metrics, METRIC_PLANNING_STALLED, NULL, (double)ip.stalled_ms / 1000);
	substore_stats(n->ss, &ms);
	metrics_set(n->metrics, METRIC_MIRROR_SUBSCRIBERS, NULL, (double)ms.subscribers);
	metrics_set(n->metrics, METRIC_MIRROR_READY, NULL, ms.ready ? 1 : 0);
	metrics_set(n->metrics, METRIC_MIRROR_RELOADS, NULL, (double)ms.reloads);
	metrics_set(n->metrics, METRIC_REDIS_CONNECTS, METRICS_L("mirror"),
	    (double)(ms.reconnects + 1));
	metrics_set(n->metrics, METRIC_REDIS_CONNECTS, METRICS_L("scripts"),
	    (double)rs.generation);
	metrics_set(n->metrics, METRIC_REDIS_TIMEOUTS, METRICS_L("scripts"),
	    (double)rs.timeouts);
}

/* XINFO GROUPS of both streams: their lag, and whether our groups exist (lag >= 0).
 * export: the gauges of /metrics are set too; the ready poll leaves them to the
 * stats tick, which sets them together with the gateway gauges. */
static void
main_query_lag(struct notifier *n, int export)
{
	char stream[KEYS_SHARD_MAX];
	uint32_t k, ns = keys_shards();
	int i;

	if (n->push_lags == NULL) {
		if ((n->push_lags = malloc(ns * sizeof(*n->push_lags))) == NULL)
			return;
		n->npush_lags = ns;
		for (k = 0; k < ns; k++)
			n->push_lags[k] = -1;
	}
	for (i = 0; i < 2; i++) {
		for (k = 0; k < (i == 0 ? 1 : n->npush_lags); k++) {
			struct lag_call *c = malloc(sizeof(*c));

			if (c == NULL)
				return;
			c->n = n;
			c->i = i;
			c->shard = k;
			c->export = export;
			if (i == 0)
				snprintf(stream, sizeof(stream), "%s", main_streams[0][0]);
			else
				(void)keys_shard_key(k, KEYS_PUSHES, stream, sizeof(stream));
			n->lag_calls++;
			if (rconn_cmd(n->cmd, on_xinfo, c, 0, "XINFO GROUPS %s", stream) < 0) {
				if (i == 1)
					n->push_lags[k] = -1;
				n->lag[i] = -1;
				n->lag_calls--;
				free(c);
			}
		}
	}
}

void
main_on_stats(evutil_socket_t fd, short what, void *arg)
{
	struct notifier *n = arg;

	(void)fd;
	(void)what;
	deliver_export_gateways(n->deliver);
	main_export(n);
	ingest_ranks_expire(n->ranks);   /* parts no reader took: not kept idle */
	rconn_cmd(n->cmd, on_paused, n, 0, "HKEYS paused_templates");
	main_query_lag(n, 1);
}

/* Planning and mirror facts for /healthz; the stalled deal's id goes into buf. */
static void
main_progress(struct notifier *n, struct http_health *out, char *buf, size_t size)
{
	struct ingest_progress ip;
	struct substore_stats ms;

	main_ingest_progress(n, &ip);
	out->planning = ip.planning;
	out->plan_ranked = ip.ranked;
	out->plan_done = ip.done;
	out->plan_stalled_ms = ip.stalled_ms;
	snprintf(buf, size, "%s", ip.stalled_deal);
	out->plan_stalled_deal = buf;
	out->plans_failed = ip.plans_failed;
	substore_stats(n->ss, &ms);
	out->mirror_ready = ms.ready;
	out->mirror_loading = ms.loading;
	out->mirror_subscribers = ms.subscribers;
	out->mirror_reconnects = ms.reconnects;
	out->mirror_reloads = ms.reloads;
	out->mirror_reload_reason = ms.last_reload_reason;
	if (n->owner != NULL) {
		uint32_t k;

		out->shards_owned = 1;
		for (k = 0; k < n->ningest; k++) {
			if (!owner_serves(n->owner, k))
				continue;
			out->shards_served++;
			out->shards_loading += !substore_shard_ready(n->ss, k);
		}
	}
}

/* /healthz: Redis reachable, the subscribers loaded, no deal's planning stalled; lag,
 * rules, planning progress, the mirror and reconnects as facts. */
int
main_on_health(void *arg, struct http_health *out)
{
	struct notifier *n = arg;
	struct rconn_stat rs;
	static char stalled[160];

	out->redis_ok = rconn_is_ready(n->cmd);
	if (!n->started) {
		out->detail = out->redis_ok ? "reading the key layout" : "redis unreachable";
		return 0;
	}
	out->stream_lag = (n->lag[0] > 0 ? n->lag[0] : 0) + (n->lag[1] > 0 ? n->lag[1] : 0);
	out->rules_loaded = rule_set_count(matcher_rules(n->matcher));
	main_progress(n, out, stalled, sizeof(stalled));
	rconn_stats(n->cmd, &rs);
	out->redis_connects = rs.generation;
	out->redis_timeouts = rs.timeouts;
	out->wait_replicas = n->cfg->wait_replicas;
	if (out->wait_replicas > 0) {
		struct durable_stats ds;

		durable_stats(&ds);
		out->waits = ds.waits;
		out->waits_short = ds.short_waits;
		/* At least two WAIT timeouts, so that slow verdicts do not flap it. */
		out->replica_lag = durable_lagging(&ds, clock_mono_ms(),
		    MAIN_REPLICA_LAG_MS > 2 * n->cfg->wait_timeout_ms ? MAIN_REPLICA_LAG_MS :
		    2 * n->cfg->wait_timeout_ms);
	}
	if (!out->redis_ok) {
		out->detail = "redis unreachable";
		return 0;
	}
	if (!substore_ready(n->ss)) {
		out->detail = "subscribers loading";
		return 0;
	}

	if (n->stop_deadline_ms != 0) {
		out->detail = "shutting down";
		return 0;
	}
	if (out->planning > 0 && out->plan_stalled_ms >= n->cfg->plan_stall_ms) {
		out->detail = "planning stalled";
		return 0;
	}
	if (out->replica_lag) {
		/* Nothing is claimed, planned to the end or acked until a replica answers
		 * (docs/sharding.md 4e): the operator must bring one back, or set
		 * redis.wait_replicas = 0. */
		out->detail = "replica lag: writes not durable";
		return 0;
	}
	/* The shards already loaded are served meanwhile: a fact, not a failure. */
	out->detail = out->shards_loading > 0 ? "shards loading" : NULL;
	return 1;
}

/* Until ready: READY=1 once /healthz would say ok and both groups exist (the
 * subscribers are loaded, Redis answers, deals and pushes can be read). Sent once;
 * a later loss of Redis shows in /healthz and the logs, not to the manager. */
static void
on_ready_poll(evutil_socket_t fd, short what, void *arg)
{
	struct notifier *n = arg;
	struct http_health h;
	struct timeval tv = { 0, MAIN_READY_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	if (n->stop_deadline_ms != 0)
		return;
	memset(&h, 0, sizeof(h));
	if (main_on_health(n, &h) == 1) {
		if (n->lag[0] >= 0 && n->lag[1] >= 0) {
			log_info("event=ready subscribers=%zu rules=%zu notify=%d",
			    (size_t)h.mirror_subscribers, (size_t)h.rules_loaded,
			    sdnotify_send("READY=1\nSTATUS=ready"));
			return;
		}
		if (n->lag_calls == 0)
			main_query_lag(n, 0);
	}
	evtimer_add(n->ready_poll, &tv);
}

/* WATCHDOG=1 from the loop: a loop stuck in one callback misses it and the
 * manager restarts the service (Restart=on-failure). */
static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	(void)sdnotify_send("WATCHDOG=1");
}

/* The ready poll, and the watchdog timer when the manager asked for one. 0 or -1. */
int
main_start_notify(struct notifier *n)
{
	struct timeval now = { 0, 0 }, tv;
	long long usec = sdnotify_watchdog_usec();

	if ((n->ready_poll = evtimer_new(n->base, on_ready_poll, n)) == NULL)
		return -1;
	evtimer_add(n->ready_poll, &now);
	if (usec <= 0)
		return 0;
	usec /= 2;
	tv.tv_sec = (time_t)(usec / 1000000);
	tv.tv_usec = (suseconds_t)(usec % 1000000);
	if ((n->watchdog = event_new(n->base, -1, EV_PERSIST, on_watchdog, n)) == NULL)
		return -1;
	event_add(n->watchdog, &tv);
	log_info("event=watchdog interval_us=%lld", usec);
	return 0;
}
