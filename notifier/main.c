/*
 * main.c: the notifier daemon's start-up, signals and orderly shutdown.
 *
 * Setup reads top to bottom: config, logging, clock, one event loop, the shared
 * Redis command connection; once it has read the key layout (layout.h; a layout that
 * disagrees with the config ends the process with exit code 78 before any reader
 * starts), the subscriber mirror, the HTTP client, ingest, deliver and the resolver
 * of unknown pushes. SIGTERM/SIGINT stop reading, let in-flight work finish for up to
 * notifier.shutdown_grace_ms, then exit 0. Nothing after start-up calls exit().
 * Under systemd (Type=notify) READY=1 goes out once /healthz would say ok and both
 * consumer groups exist, and WATCHDOG=1 from the loop itself (sdnotify.h); those,
 * /healthz and the stats tick are main_health.c's.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "admin.h"
#include "abtest.h"
#include "app.h"
#include "clicks.h"
#include "clock.h"
#include "config.h"
#include "convert.h"
#include "deliver.h"
#include "hooks.h"
#include "httpc.h"
#include "ingest.h"
#include "keys.h"
#include "log.h"
#include "http.h"
#include "formats.h"
#include "layout.h"
#include "match.h"
#include "metrics.h"
#include "owner.h"
#include "pause.h"
#include "rconn.h"
#include "resolve.h"
#include "rulesload.h"
#include "simulate.h"
#include "scripts.h"
#include "sentinel.h"
#include "sdnotify.h"
#include "subscriber.h"
#include "substore.h"
#include "tokens.h"
#include "tz.h"
#include "version.h"
#include "xauth.h"

#include "main_int.h"
#include "ui.h"

#define MAIN_DRAIN_POLL_MS 20
#define MAIN_ZONES_MAX 4096       /* tzdata holds about 600 zones and links */


static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: notifier -c FILE            run the daemon\n"
	    "       notifier --check-config -c FILE\n"
	    "                                   validate FILE, report every bad key, exit 1 on any\n"
	    "       notifier --check-rules DIR  compile DIR/*.rules, print errors like a\n"
	    "                                   compiler, exit 1 on any\n"
	    "       notifier --version\n"
	    "       notifier -h | --help\n");
}

static int notifier_start_readers(struct notifier *n);

/* The deployment's stored format version is read and readable (formats.h): the
 * readers start; or refused: the loop ends with exit code rv. */
static void
on_formats(void *arg, int rv)
{
	struct notifier *n = arg;

	if (rv == 0) {
		n->started = 1;
		if (notifier_start_readers(n) == 0)
			return;
		log_errorx("event=start_failed err=\"a component could not start (the line"
		    " above says which)\"");
		rv = 1;
	}
	n->exit_code = rv;
	event_base_loopbreak(n->base);
}

/* The layout is read (and in force) or refused: the stored format is read next, or
 * the loop ends with exit code rv. */
static void
on_layout(void *arg, int rv)
{
	struct notifier *n = arg;

	if (rv == 0 && n->cfg->redis_cluster != NULL && layout_current() == NULL) {
		/* On a cluster every script's keys must share a slot: the sharded names. */
		log_errorx("event=layout_mismatch field=layout err=\"redis.cluster needs the "
		    "sharded layout (dealpushctl layout create) and the cluster holds none\"");
		rv = 78;
	}
	if (rv == 0) {
		n->formats = formats_watch_new(n->base, n->cmd, n->cfg->consumer, on_formats,
		    n);
		if (n->formats != NULL)
			return;
		log_errorx("event=start_failed err=\"out of memory\"");
		rv = 1;
	}
	n->exit_code = rv;
	event_base_loopbreak(n->base);
}

static void
on_cmd_ready(struct rconn *rc, void *arg)
{
	struct notifier *n = arg;

	scripts_load(rc);
	layout_reader_connected(n->layout);
}

/* 1 when every shard's reader of deals has stopped with nothing outstanding. */
static int
main_ingest_idle(const struct notifier *n)
{
	uint32_t k;

	for (k = 0; k < n->ningest; k++)
		if (!ingest_idle(n->ingest[k]))
			return 0;
	return 1;
}

static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct notifier *n = arg;
	struct timeval tv = { 0, MAIN_DRAIN_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	/* Webhooks already read (a STOP waiting on Redis) are answered before exit. */
	if ((main_ingest_idle(n) && deliver_idle(n->deliver) &&
	    http_pending(n->http_srv) == 0) || clock_mono_ms() >= n->stop_deadline_ms) {
		if (!deliver_idle(n->deliver))
			log_warnx("event=shutdown_grace_over action=leave_pending");
		main_leave(n);
		return;
	}
	evtimer_add(n->drain, &tv);
}

static void
on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct notifier *n = arg;
	struct timeval now = { 0, 0 };
	uint32_t k;

	(void)what;
	if (!n->started) {
		struct timeval flush = { 0, MAIN_DRAIN_POLL_MS * 1000 };

		/* Requests waiting for their route are answered 503; the loop runs a
		 * moment more so that the answers go out. */
		log_info("event=signal sig=%d action=stop_before_start", (int)sig);
		http_drain(n->http_srv);
		event_base_loopexit(n->base, &flush);
		return;
	}
	if (n->stop_deadline_ms != 0) {
		log_warnx("event=signal sig=%d action=stop_now", (int)sig);
		event_base_loopbreak(n->base);
		return;
	}
	log_info("event=signal sig=%d action=drain grace_ms=%ld", (int)sig,
	    n->cfg->shutdown_grace_ms);
	(void)sdnotify_send("STOPPING=1");
	n->stop_deadline_ms = clock_mono_ms() + n->cfg->shutdown_grace_ms;
	/* An older release may take this consumer name next: it announces nothing. */
	formats_watch_leave(n->formats);
	owner_quiesce(n->owner);
	for (k = 0; k < n->ningest; k++)
		ingest_stop(n->ingest[k]);
	deliver_stop(n->deliver);
	resolve_stop(n->resolve);
	substore_stop(n->ss);
	http_drain(n->http_srv);
	evtimer_add(n->drain, &now);
}


static int
start_http(struct notifier *n)
{
	struct http_config hc;
	struct err err;
	FILE *f;

	if (n->cfg->http_port < 0)
		return 0;
	memset(&hc, 0, sizeof(hc));
	hc.listen_addr = n->cfg->http_listen;
	hc.port = (unsigned short)n->cfg->http_port;
	hc.timeout_ms = n->cfg->http_timeout_ms;
	hc.idle_ms = n->cfg->http_idle_ms;
	hc.max_connections = (size_t)n->cfg->http_max_connections;
	hc.max_per_address = (size_t)n->cfg->http_max_per_address;
	hc.admin_token = n->cfg->admin_token;
	hc.public_url = n->cfg->public_url;
	hc.health = main_on_health;
	hc.health_arg = n;
	hc.metrics = n->metrics;
	err_clear(&err);
	if ((n->http_srv = http_new(n->base, &hc, &err)) == NULL) {
		log_errorx("event=start_failed component=http err=\"%s\"", err.msg);
		return -1;
	}
	log_info("event=http_listening addr=%s port=%u", n->cfg->http_listen ?
	    n->cfg->http_listen : "127.0.0.1", http_port(n->http_srv));
	/* /healthz answers from now on; the other routes come with the layout. */
	http_set_starting(n->http_srv, 1);
	n->app.http = n->http_srv;
	if (n->cfg->http_port_file != NULL) {
		if ((f = fopen(n->cfg->http_port_file, "w")) == NULL) {
			log_warn("event=port_file_failed path=%s", n->cfg->http_port_file);
			return -1;
		}
		fprintf(f, "%u\n", http_port(n->http_srv));
		fclose(f);
	}
	return 0;
}

/* Loads every zone of tzdata, once, before anything reads local time: no zone file is
 * read inside the loop after this, and a subscriber's unknown zone is refused without
 * a look at the disk. 0 or -1 (logged). */
static int
load_zones(struct notifier *n)
{
	int64_t t0 = clock_mono_ms();
	struct err err;

	err_clear(&err);
	if ((n->zones = tzcache_new(NULL, MAIN_ZONES_MAX)) == NULL ||
	    tzcache_load_all(n->zones, &err) < 0) {
		log_errorx("event=start_failed component=zones err=\"%s\"",
		    err.msg[0] ? err.msg : "out of memory");
		return -1;
	}
	sub_tz_use(n->zones);
	log_info("event=zones_loaded zones=%zu ms=%lld", tzcache_count(n->zones),
	    (long long)(clock_mono_ms() - t0));
	return 0;
}

/* SIGHUP: tzdata read again, each zone updated in place (its pointers stay valid). */
static void
on_hup_zones(evutil_socket_t fd, short what, void *arg)
{
	struct notifier *n = arg;
	int64_t t0 = clock_mono_ms();
	struct err err;

	(void)fd;
	(void)what;
	err_clear(&err);
	if (tzcache_reload(n->zones, &err) < 0)
		log_warnx("event=zones_reload_failed err=\"%s\"", err.msg);
	else
		log_info("event=zones_reloaded zones=%zu ms=%lld", tzcache_count(n->zones),
		    (long long)(clock_mono_ms() - t0));
}

/* Sending resumed (pause.h): the deliverer claims what waited. */
static void
on_pause_change(void *arg, int paused)
{
	struct notifier *n = arg;

	if (!paused)
		deliver_resume(n->deliver);
}

/* Compiles the rule folder at start-up; on success swaps the new set in whole, on
 * failure logs every error (file, line, column). 0 or -1. Later reloads (SIGHUP,
 * rules put over the API) belong to admin.c, which compiles the folder together
 * with the API rules. */
static int
load_rules(struct notifier *n)
{
	struct rule_diags diags;
	struct rule_set *rs;
	struct err err;
	size_t i;

	rule_diags_init(&diags);
	err_clear(&err);
	if ((rs = rulesload_dir(n->cfg->rules_dir, &diags, &err)) == NULL) {
		for (i = 0; i < diags.n; i++)
			log_errorx("event=rules_invalid file=%s line=%d col=%d err=\"%s\"",
			    diags.v[i].file, diags.v[i].line, diags.v[i].col, diags.v[i].msg);
		if (diags.n == 0)
			log_errorx("event=rules_invalid err=\"%s\"", err.msg);
		log_warnx("event=rules_kept rules=%zu", rule_set_count(matcher_rules(n->matcher)));
		rule_diags_free(&diags);
		if (n->metrics != NULL)
			metrics_inc(n->metrics, METRIC_RULE_RELOADS, METRICS_L("failed"), 1);
		return -1;
	}
	if (n->metrics != NULL)
		metrics_inc(n->metrics, METRIC_RULE_RELOADS, METRICS_L("ok"), 1);
	matcher_set_rules(n->matcher, rs);
	log_info("event=rules_loaded dir=%s rules=%zu default=%d",
	    n->cfg->rules_dir ? n->cfg->rules_dir : "-", rule_set_count(rs),
	    rule_set_is_default(rs));
	return 0;
}

/* The credentials of every x-dm gateway, hung on its config before any gw_new: the
 * deliverer's and the hooks' gateways then share one token store. 0 or -1. */
static int
start_xauth(struct notifier *n)
{
	struct err err;
	size_t i;

	for (i = 0; i < n->cfg->ngateways; i++) {
		struct gw_config *g = &n->cfg->gateways[i];

		if (g->kind != GW_XDM)
			continue;
		err_clear(&err);
		if ((n->xauth[i] = xauth_new(n->base, n->cmd, n->http, g, n->metrics,
		    &err)) == NULL) {
			log_errorx("event=start_failed gw=%s err=\"%s\"", g->name, err.msg);
			return -1;
		}
		g->xauth = n->xauth[i];
	}
	return 0;
}

static int
notifier_start(struct notifier *n)
{
	struct err err;

	n->rcfg.host = n->cfg->redis_host;
	n->rcfg.port = n->cfg->redis_port;
	n->rcfg.password = n->cfg->redis_password;
	n->rcfg.username = n->cfg->redis_username;
	n->rcfg.connect_timeout_ms = n->cfg->redis_connect_timeout_ms;
	n->rcfg.command_timeout_ms = n->cfg->redis_command_timeout_ms;
	n->rcfg.reconnect_max_ms = n->cfg->redis_reconnect_max_ms;
	n->rcfg.cluster = n->cfg->redis_cluster;   /* every rconn routes by slot */

	/* Precise timers: the coarse clock libevent uses by default moves in 4 ms steps
	 * here, which stretched every 10 ms token-bucket wait to 12 ms and held a
	 * 100/s gateway to 83/s (rate_fidelity bench, docs/performance.md). */
	{
		struct event_config *ec = event_config_new();

		if (ec == NULL)
			return -1;
		event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
		n->base = event_base_new_with_config(ec);
		event_config_free(ec);
		if (n->base == NULL)
			return -1;
	}
	n->sigint = evsignal_new(n->base, SIGINT, on_stop_signal, n);
	n->sigterm = evsignal_new(n->base, SIGTERM, on_stop_signal, n);
	n->sighup = evsignal_new(n->base, SIGHUP, on_hup_zones, n);
	n->drain = evtimer_new(n->base, on_drain, n);
	if (!n->sigint || !n->sigterm || !n->sighup || !n->drain)
		return -1;
	event_add(n->sigint, NULL);
	event_add(n->sigterm, NULL);
	event_add(n->sighup, NULL);

	n->lag[0] = n->lag[1] = -1;
	err_clear(&err);
	if ((n->metrics = metrics_new(0, &err)) == NULL) {
		log_errorx("event=start_failed err=\"%s\"", err.msg);
		return -1;
	}
	if (load_zones(n) < 0)
		return -1;
	err_clear(&err);
	if ((n->matcher = matcher_new(n->cfg->overbook, n->zones, &err)) == NULL) {
		log_errorx("event=start_failed err=\"%s\"", err.msg);
		return -1;
	}
	if (load_rules(n) < 0)
		return -1;   /* at start-up there is no working set to keep */
	if (n->cfg->redis_sentinels != NULL) {
		n->sentinel = sentinel_new(n->base, n->cfg->redis_sentinels,
		    n->cfg->redis_master_name, &n->rcfg);
		if ((n->rcfg.sentinel = n->sentinel) == NULL)
			return -1;
	}
	/* The rest starts once the layout is read (on_layout). */
	if ((n->cmd = rconn_new(n->base, &n->rcfg, "cmd", on_cmd_ready, n)) == NULL)
		return -1;
	if ((n->layout = layout_reader_new(n->base, n->cmd, n->cfg->redis_shards,
	    on_layout, n)) == NULL)
		return -1;
	/* /healthz and the service manager hear from us while the layout is read. */
	if (start_http(n) < 0)
		return -1;
	return main_start_notify(n);
}

/* Everything that reads or names keys: the mirror, ingest, deliver, the resolver,
 * the HTTP surface, conversions and the admin API, with the layout in force. */
static int
notifier_start_readers(struct notifier *n)
{
	struct httpc_config hc = { 10000, 2000, 0, 0 };
	struct err err;
	int failed = 0;
	uint32_t k;

	hc.max_connects = n->cfg->max_in_flight * 2;
	n->ss = substore_new(n->base, &n->rcfg, n->cfg->block_ms, matcher_on_change,
	    matcher_on_loaded, n->matcher);
	if (n->ss == NULL)
		return -1;
	err_clear(&err);
	if ((n->http = httpc_new(n->base, &hc, &err)) == NULL) {
		log_errorx("event=start_failed err=\"%s\"", err.msg);
		return -1;
	}
	if (start_xauth(n) < 0)
		return -1;
	/* A reader per shard, each planning its shard's subscribers (docs/sharding.md
	 * 4a); one on one Redis. */
	if ((n->ingest = calloc(keys_shards(), sizeof(*n->ingest))) == NULL ||
	    (keys_shards() > 1 && (n->ranks = ingest_ranks_new(keys_shards())) == NULL))
		return -1;
	for (n->ningest = 0; n->ningest < keys_shards(); n->ningest++) {
		if ((n->ingest[n->ningest] = ingest_new(n->base, n->cfg, &n->rcfg, n->cmd,
		    n->ss, n->matcher, n->ningest)) == NULL)
			return -1;
		/* One ranking per deal for every shard's reader (ingest_ranks.c). */
		ingest_set_ranks(n->ingest[n->ningest], n->ranks);
	}
	if ((n->deliver = deliver_new(n->base, n->cfg, &n->rcfg, n->cmd, n->http,
	    n->ss, n->zones)) == NULL)
		return -1;
	if (main_start_owner(n) < 0)
		return -1;
	if ((n->resolve = resolve_new(n->base, n->cfg, &n->rcfg, n->http)) == NULL)
		return -1;
	for (k = 0; k < n->ningest; k++)
		ingest_set_metrics(n->ingest[k], n->metrics);
	deliver_set_metrics(n->deliver, n->metrics);
	if ((n->pause = pause_new(n->base, n->cmd, on_pause_change, n)) == NULL)
		return -1;
	pause_set_metrics(n->pause, n->metrics);
	deliver_set_pause(n->deliver, n->pause);
	{
		struct timeval tv = { MAIN_STATS_MS / 1000, (MAIN_STATS_MS % 1000) * 1000 };

		if ((n->stats = event_new(n->base, -1, EV_PERSIST, main_on_stats, n)) == NULL)
			return -1;
		event_add(n->stats, &tv);
	}
	n->app.base = n->base;
	n->app.cfg = n->cfg;
	n->app.rcfg = &n->rcfg;
	n->app.cmd = n->cmd;
	n->app.ss = n->ss;
	n->app.matcher = n->matcher;
	n->app.metrics = n->metrics;
	n->app.httpc = n->http;
	n->app.zones = n->zones;
	/* HTTP-facing modules: start here (each returns its handle or NULL). */
	if (n->http_srv != NULL) {
		n->clicks = clicks_new(&n->app);   /* NULL when links are not configured */
		if ((n->simulate = simulate_new(&n->app)) == NULL ||
		    pause_routes(n->pause, n->http_srv) < 0 || ui_start(n->http_srv) < 0)
			return -1;
		n->tokens = tokens_new(&n->app, &failed);
		if (failed)
			return -1;
		if ((n->hooks = hooks_start(&n->app, &err)) == NULL) {
			log_errorx("event=start_failed component=hooks err=\"%s\"", err.msg);
			return -1;
		}
		n->app.hooks = n->hooks;
	}
	/* With or without the HTTP surface: conversions are attributed, and the rules
	 * put over the admin API (on any notifier) are part of the set in use here. */
	if ((n->convert = convert_new(&n->app)) == NULL)
		return -1;
	if ((n->abtest = abtest_new(&n->app)) == NULL)
		return -1;
	if ((n->admin = admin_new(&n->app)) == NULL)
		return -1;
	n->app.admin = n->admin;
	http_set_starting(n->http_srv, 0);
	return 0;
}

static void
notifier_free(struct notifier *n)
{
	uint32_t k;

	/* Every command still out on the shared connection fails now, while each module
	 * it answers is alive (a second SIGTERM, or a grace that ran out, leaves records,
	 * acks and admits out); from here on nothing is sent. */
	rconn_close(n->cmd);
	owner_mute(n->owner);         /* its last answers must not reach what is freed */
	/* HTTP-facing modules: free here, before the server. The pause's POSTs still
	 * waiting on Redis are detached: their callbacks only free them. */
	if (n->deliver != NULL)
		deliver_set_pause(n->deliver, NULL);
	pause_free(n->pause);
	clicks_free(n->clicks);
	simulate_free(n->simulate);
	convert_free(n->convert);
	abtest_free(n->abtest);
	hooks_free(n->hooks);
	n->app.hooks = NULL;
	admin_free(n->admin);
	n->app.admin = NULL;
	tokens_free(n->tokens);
	http_free(n->http_srv);
	if (n->stats)
		event_free(n->stats);
	if (n->ready_poll)
		event_free(n->ready_poll);
	if (n->watchdog)
		event_free(n->watchdog);
	for (k = 0; k < n->ningest; k++)
		ingest_free(n->ingest[k]);
	free(n->ingest);
	ingest_ranks_free(n->ranks);      /* before the matcher: its parts pin rules */
	/* Cancels requests still in flight; deliver sees each callback once. */
	httpc_free(n->http);
	deliver_free(n->deliver);
	resolve_free(n->resolve);     /* after httpc_free: no lookup is left in flight */
	/* The index borrows the mirror's subscribers: free it first. */
	matcher_free(n->matcher);
	substore_free(n->ss);
	rconn_free(n->cmd);
	main_free_owner(n);           /* after the connection: a lease reply may be due */
	free(n->push_lags);           /* after the connection: an XINFO reply may be due */
	n->push_lags = NULL;
	n->npush_lags = 0;
	layout_reader_free(n->layout);   /* after the connection: its reply may be due */
	formats_watch_free(n->formats);
	sentinel_free(n->sentinel);   /* after every connection that watches it */
	/* After the client and the connection: their last callbacks still reach it. */
	for (size_t i = 0; i < CONFIG_GATEWAYS_MAX; i++) {
		if (n->cfg != NULL && i < n->cfg->ngateways)
			n->cfg->gateways[i].xauth = NULL;
		xauth_free(n->xauth[i]);
	}
	if (n->sigint)
		event_free(n->sigint);
	if (n->sigterm)
		event_free(n->sigterm);
	/* Freeing the events put back the default action: a second SIGTERM (a service
	 * manager's, a test's) must not turn an orderly exit into death by signal. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	if (n->sighup)
		event_free(n->sighup);
	if (n->drain)
		event_free(n->drain);
	if (n->base)
		event_base_free(n->base);
	metrics_free(n->metrics);
	sub_tz_use(NULL);
	tzcache_free(n->zones);
	config_free(n->cfg);
}

int
main(int argc, char **argv)
{
	struct notifier n;
	const char *path = NULL;
	int check = 0, i, rv = 1;

	memset(&n, 0, sizeof(n));
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--check-config") == 0)
			check = 1;
		else if (strcmp(argv[i], "--check-rules") == 0 && i + 1 < argc)
			return rulesload_check(argv[i + 1], "notifier");
		else if (strcmp(argv[i], "--version") == 0) {
			printf("notifier %s\n", DEALPUSH_VERSION);
			return 0;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "notifier: unknown argument '%s'\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	if (path == NULL) {
		usage(stderr);
		return 2;
	}
	if ((n.cfg = config_load(path, stderr)) == NULL) {
		fprintf(stderr, "notifier: %s is not valid\n", path);
		return 1;
	}
	if (check) {
		printf("notifier: %s is valid (%zu gateways)\n", path, n.cfg->ngateways);
		config_free(n.cfg);
		return 0;
	}
	log_set_level((enum log_level)n.cfg->log_level);
	clock_set_offset(n.cfg->clock_offset_s);
	signal(SIGPIPE, SIG_IGN);
	/* Until admin.c's handler is in place a SIGHUP (a rules reload) would end the
	 * process; one that early has nothing to reload. */
	signal(SIGHUP, SIG_IGN);
	srandom((unsigned)clock_mono_ms() ^ (unsigned)getpid());
	if (scripts_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_errorx("event=start_failed err=\"library init\"");
		config_free(n.cfg);
		return 1;
	}
	if (notifier_start(&n) < 0) {
		log_errorx("event=start_failed err=\"a component could not start (the line"
		    " above says which)\"");
		goto out;
	}
	log_info("event=started consumer=%s redis=%s:%d gateways=%zu", n.cfg->consumer,
	    n.cfg->redis_host, n.cfg->redis_port, n.cfg->ngateways);
	event_base_dispatch(n.base);
	rv = n.exit_code;
	if (rv == 0)
		log_info("event=stopped");
out:
	notifier_free(&n);
	layout_clear();
	curl_global_cleanup();
	libevent_global_shutdown();
	return rv;
}
