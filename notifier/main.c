/*
 * main.c: the notifier daemon's start-up, signals and orderly shutdown.
 *
 * Setup reads top to bottom: config, logging, clock, one event loop, the shared
 * Redis command connection, the subscriber mirror, the HTTP client, ingest and
 * deliver. SIGTERM/SIGINT stop reading, let in-flight work finish for up to
 * notifier.shutdown_grace_ms, then exit 0. Nothing after start-up calls exit().
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "clock.h"
#include "config.h"
#include "deliver.h"
#include "httpc.h"
#include "ingest.h"
#include "log.h"
#include "match.h"
#include "rconn.h"
#include "rulesload.h"
#include "scripts.h"
#include "substore.h"

#define MAIN_DRAIN_POLL_MS 20

struct notifier {
	struct event_base *base;
	struct config *cfg;
	struct rconn_config rcfg;
	struct rconn *cmd;
	struct substore *ss;
	struct matcher *matcher;
	struct httpc *http;
	struct ingest *ingest;
	struct deliver *deliver;
	struct event *sigint, *sigterm, *sighup, *drain;
	int64_t stop_deadline_ms;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: notifier -c FILE            run the daemon\n"
	    "       notifier --check-config -c FILE\n"
	    "                                   validate FILE, report every bad key, exit 1 on any\n"
	    "       notifier --check-rules DIR  compile DIR/*.rules, print errors like a\n"
	    "                                   compiler, exit 1 on any\n"
	    "       notifier -h | --help\n");
}

/* `notifier --check-rules DIR`: exit status 0 when the folder compiles, else 1. */
static int
check_rules(const char *dir)
{
	struct rule_diags diags;
	struct rule_set *rs;
	struct err err;
	char *text;
	size_t need;

	rule_diags_init(&diags);
	err_clear(&err);
	rs = rulesload_dir(dir, &diags, &err);
	if (rs != NULL) {
		printf("%s: %zu rules, no errors\n", dir, rule_set_count(rs));
		rule_set_free(rs);
		return 0;
	}
	if (diags.n == 0) {
		fprintf(stderr, "notifier: %s\n", err.msg);
		return 1;
	}
	need = rule_diags_format(&diags, NULL, 0) + 1;
	if ((text = malloc(need)) != NULL) {
		rule_diags_format(&diags, text, need);
		fputs(text, stderr);
		free(text);
	}
	fprintf(stderr, "%zu error%s\n", diags.n, diags.n == 1 ? "" : "s");
	rule_diags_free(&diags);
	return 1;
}

static void
on_cmd_ready(struct rconn *rc, void *arg)
{
	(void)arg;
	scripts_load(rc);
}

static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct notifier *n = arg;
	struct timeval tv = { 0, MAIN_DRAIN_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	if ((ingest_idle(n->ingest) && deliver_idle(n->deliver)) ||
	    clock_mono_ms() >= n->stop_deadline_ms) {
		if (!deliver_idle(n->deliver))
			log_warnx("event=shutdown_grace_over action=leave_pending");
		event_base_loopbreak(n->base);
		return;
	}
	evtimer_add(n->drain, &tv);
}

static void
on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct notifier *n = arg;
	struct timeval now = { 0, 0 };

	(void)what;
	if (n->stop_deadline_ms != 0) {
		log_warnx("event=signal sig=%d action=stop_now", (int)sig);
		event_base_loopbreak(n->base);
		return;
	}
	log_info("event=signal sig=%d action=drain grace_ms=%ld", (int)sig,
	    n->cfg->shutdown_grace_ms);
	n->stop_deadline_ms = clock_mono_ms() + n->cfg->shutdown_grace_ms;
	ingest_stop(n->ingest);
	deliver_stop(n->deliver);
	substore_stop(n->ss);
	evtimer_add(n->drain, &now);
}

/* Compiles the rule folder; on success swaps the new set in whole, on failure logs
 * every error (file, line, column) and keeps the rules in use. 0 or -1. */
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
		return -1;
	}
	matcher_set_rules(n->matcher, rs);
	log_info("event=rules_loaded dir=%s rules=%zu default=%d",
	    n->cfg->rules_dir ? n->cfg->rules_dir : "-", rule_set_count(rs),
	    rule_set_is_default(rs));
	return 0;
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	log_info("event=signal sig=HUP action=reload_rules");
	load_rules(arg);
}

static int
notifier_start(struct notifier *n)
{
	struct httpc_config hc = { 10000, 2000, 0, 0 };
	struct err err;

	hc.max_connects = n->cfg->max_in_flight * 2;
	n->rcfg.host = n->cfg->redis_host;
	n->rcfg.port = n->cfg->redis_port;
	n->rcfg.password = n->cfg->redis_password;
	n->rcfg.connect_timeout_ms = n->cfg->redis_connect_timeout_ms;
	n->rcfg.command_timeout_ms = n->cfg->redis_command_timeout_ms;
	n->rcfg.reconnect_max_ms = n->cfg->redis_reconnect_max_ms;

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
	n->sighup = evsignal_new(n->base, SIGHUP, on_hup, n);
	n->drain = evtimer_new(n->base, on_drain, n);
	if (!n->sigint || !n->sigterm || !n->sighup || !n->drain)
		return -1;
	event_add(n->sigint, NULL);
	event_add(n->sigterm, NULL);
	event_add(n->sighup, NULL);

	err_clear(&err);
	if ((n->matcher = matcher_new(n->cfg->overbook, &err)) == NULL) {
		log_errorx("event=start_failed err=\"%s\"", err.msg);
		return -1;
	}
	if (load_rules(n) < 0)
		return -1;   /* at start-up there is no working set to keep */
	if ((n->cmd = rconn_new(n->base, &n->rcfg, "cmd", on_cmd_ready, NULL)) == NULL)
		return -1;
	n->ss = substore_new(n->base, &n->rcfg, n->cfg->block_ms, matcher_on_change,
	    n->matcher);
	if (n->ss == NULL)
		return -1;
	err_clear(&err);
	if ((n->http = httpc_new(n->base, &hc, &err)) == NULL) {
		log_errorx("event=start_failed err=\"%s\"", err.msg);
		return -1;
	}
	n->ingest = ingest_new(n->base, n->cfg, &n->rcfg, n->cmd, n->ss, n->matcher);
	if (n->ingest == NULL)
		return -1;
	if ((n->deliver = deliver_new(n->base, n->cfg, &n->rcfg, n->cmd, n->http,
	    n->ss)) == NULL)
		return -1;
	return 0;
}

static void
notifier_free(struct notifier *n)
{
	ingest_free(n->ingest);
	/* Cancels requests still in flight; deliver sees each callback once. */
	httpc_free(n->http);
	deliver_free(n->deliver);
	/* The index borrows the mirror's subscribers: free it first. */
	matcher_free(n->matcher);
	substore_free(n->ss);
	rconn_free(n->cmd);
	if (n->sigint)
		event_free(n->sigint);
	if (n->sigterm)
		event_free(n->sigterm);
	if (n->sighup)
		event_free(n->sighup);
	if (n->drain)
		event_free(n->drain);
	if (n->base)
		event_base_free(n->base);
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
			return check_rules(argv[i + 1]);
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
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
	srandom((unsigned)clock_mono_ms() ^ (unsigned)getpid());
	if (scripts_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_errorx("event=start_failed err=\"library init\"");
		config_free(n.cfg);
		return 1;
	}
	if (notifier_start(&n) < 0) {
		log_errorx("event=start_failed err=\"out of memory or bad gateway config\"");
		goto out;
	}
	log_info("event=started consumer=%s redis=%s:%d gateways=%zu", n.cfg->consumer,
	    n.cfg->redis_host, n.cfg->redis_port, n.cfg->ngateways);
	event_base_dispatch(n.base);
	log_info("event=stopped");
	rv = 0;
out:
	notifier_free(&n);
	curl_global_cleanup();
	libevent_global_shutdown();
	return rv;
}
