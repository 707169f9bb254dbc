/*
 * bench_owner_mirror.c: the mirror memory of a notifier that serves half the shards
 * (issue 14 item 7, its rss_bytes_per_sub_per_notifier; docs/sharding.md 4d).
 *
 * On one Redis with the sharded layout of 8 shards and BENCH_OWNER_SUBS subscribers
 * (default 200,000): the RSS of a notifier on the empty store, then of one notifier
 * serving every shard ([cluster] ownership off: the baseline, today's deployment),
 * then of two notifiers sharing the shards (ownership = balanced), each measured once
 * its /healthz says every shard it serves is loaded. The mirror's memory is the RSS
 * less the empty store's; rss_bytes_per_sub_per_notifier is the busier notifier's
 * per subscriber of the whole audience. ratio = the busier of the two's mirror memory
 * over the one notifier's (goal <= 0.55: each of two notifiers holding half the
 * shards uses at most 55% of one notifier's mirror memory). Goals are reported,
 * never asserted.
 * Test code: it blocks and sleeps.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "benchlib.h"
#include "itest.h"

#define OM_SUBS_DEFAULT 200000L
#define OM_SHARDS "8"
#define OM_READY_CAP_MS 120000
#define OM_GOAL 0.55

/* The notifier's config after the harness's [http] (and OM_GW in its gateway's). */
#define OM_GW "max_in_flight = 64\n"
#define OM_OFF "[notifier]\nlog_level = warn\n"
#define OM_BALANCED OM_OFF "[cluster]\nownership = balanced\nlease_ms = 3000\n" \
	"lease_margin_ms = 300\nsettle_ms = 1500\n"

/* Starts n notifiers with extra, waits for want subscribers among them, and puts
 * their RSS into rss[]; stops them. 0 or -1. */
static int
measure(int redis_port, int gw_port, int n, const char *extra, long want,
    long long *rss)
{
	static const char *const names[] = { "om-a", "om-b" };
	struct it_notifier nt[2];
	int ports[2], i, rv = 0;

	memset(nt, 0, sizeof(nt));
	for (i = 0; i < n; i++)
		if ((ports[i] = it_notifier_start_http_gw(&nt[i], redis_port, gw_port,
		    names[i], OM_GW, extra)) < 0)
			rv = -1;
	if (rv == 0 && bench_wait_loaded(ports, n, want, n == 1 ? 0 : atol(OM_SHARDS),
	    OM_READY_CAP_MS) < 0) {
		fprintf(stderr, "bench_owner_mirror: %d notifier(s) did not load %ld "
		    "subscribers within %d s (see %s)\n", n, want, OM_READY_CAP_MS / 1000,
		    nt[0].proc.log);
		rv = -1;
	}
	/* A moment for the loads' freed pages to go back (malloc_trim after a load). */
	it_sleep_ms(500);
	for (i = 0; i < n; i++) {
		rss[i] = rv == 0 ? bench_proc_bytes(nt[i].proc.pid, "VmRSS") : -1;
		it_stop(&nt[i].proc, SIGTERM, 10000);
	}
	return rv == 0 && rss[0] > 0 && (n == 1 || rss[1] > 0) ? 0 : -1;
}

int
main(void)
{
	long subs = bench_env_long("BENCH_OWNER_SUBS", OM_SUBS_DEFAULT, 1000, 10000000);
	long long empty[1], one[1], two[2], busiest;
	struct it_gwsim gw;
	redisContext *rc;
	char *jsonl;
	int port;
	double per_one, per_two, ratio;

	if (subs < 0) {
		fprintf(stderr, "bench_owner_mirror: BENCH_OWNER_SUBS is not a count\n");
		return 1;
	}
	setenv("DP_SHARDS", OM_SHARDS, 1);
	port = it_redis_port();
	if ((rc = it_redis_connect(port)) == NULL)
		return 1;
	it_flush(rc);
	memset(&gw, 0, sizeof(gw));
	if (it_gwsim_start(&gw, NULL) < 0)
		return 1;
	printf("bench_owner_mirror: %ld subscribers, %s shards, one notifier against "
	    "two sharing the shards\n", subs, OM_SHARDS);
	if (measure(port, gw.port, 1, OM_OFF, 0, empty) < 0)
		return 1;
	if ((jsonl = bench_subscribers_jsonl("om", subs, 1, "laptop")) == NULL ||
	    it_import(port, jsonl) != 0) {
		fprintf(stderr, "bench_owner_mirror: the import failed\n");
		return 1;
	}
	free(jsonl);
	if (measure(port, gw.port, 1, OM_OFF, subs, one) < 0 ||
	    measure(port, gw.port, 2, OM_BALANCED, subs, two) < 0)
		return 1;
	busiest = two[0] > two[1] ? two[0] : two[1];
	per_one = (double)(one[0] - empty[0]) / (double)subs;
	per_two = (double)(busiest - empty[0]) / (double)subs;
	ratio = (double)(busiest - empty[0]) / (double)(one[0] - empty[0]);
	printf("  RSS on the empty store %.1f MB; one notifier %.1f MB (%.0f B/sub of "
	    "mirror); two sharing: %.1f and %.1f MB\n", empty[0] / 1e6, one[0] / 1e6,
	    per_one, two[0] / 1e6, two[1] / 1e6);
	printf("  the busier of the two holds %.0f%% of one notifier's mirror memory "
	    "(goal <= %.0f%%)\n", ratio * 100, OM_GOAL * 100);
	printf("BENCH name=owner_mirror subscribers=%ld shards=%s notifiers=2 "
	    "rss_bytes_per_sub_one=%.0f rss_bytes_per_sub_per_notifier=%.0f ratio=%.3f\n",
	    subs, OM_SHARDS, per_one, per_two, ratio);
	it_stop(&gw.proc, SIGTERM, 2000);
	redisFree(rc);
	return 0;
}
