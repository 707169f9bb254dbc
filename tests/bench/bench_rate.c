/*
 * bench_rate.c: rate-limit fidelity of one gateway limited to 100 requests a second
 * (issue 6 item 8, `make bench`).
 *
 * The twilio gateway gets a token bucket of rate_per_s = 100 and burst = 1; one deal
 * matches N subscribers (BENCH_RATE_SUBS, default 2,000), about 20 s at 100/s. From
 * the arrival times gwsim logs (ts_ms, whole ms) for that deal's requests:
 *   achieved_over_configured = (requests - 1) / (last - first arrival) / 100
 * (the steady part: the span from the first request to the last), and
 *   windows_over_limit = how many 1-second windows [t, t + 1000 ms), one starting at
 * every request's arrival t, hold more than 100 requests.
 * Goals: 0.95 <= achieved_over_configured <= 1.00 and no window over. Test code: it
 * blocks, sleeps and forks. Ends with one BENCH line; exits non-zero when the setup
 * fails or not every push is sent within 60 s.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "benchlib.h"
#include "itest.h"

#define BENCH_SUBS_DEFAULT 2000
#define BENCH_SUBS_MIN 200
#define BENCH_SUBS_MAX 20000
#define BENCH_WARM_SUBS 5            /* a warm-up deal: mirror loaded, connection open */
#define BENCH_CATEGORY "laptop"
#define BENCH_WARM_CATEGORY "phone"
#define BENCH_RATE 100.0             /* the gateway's rate_per_s */
#define BENCH_WINDOW_MS 1000
#define BENCH_LIMIT 100              /* requests allowed in any window */
#define BENCH_DEADLINE_MS 60000
#define BENCH_GOAL_LO 0.95
#define BENCH_GOAL_HI 1.00

/*
 * The harness's config ends inside its "[gateway twilio]" section, so the first two
 * lines, before any section header, are that gateway's: 100 tokens a second, a bucket
 * of one. With burst b the notifier may start b + 100 x - 1 requests in any x seconds
 * after a token was taken, so 1 is the only burst that keeps every 1-second window at
 * 100 or under; a larger one lets a full bucket go out at once after any pause (and
 * the bucket starts full). Should the harness ever end in another section, the
 * notifier refuses the keys and the bench fails at start-up.
 */
static const char bench_config[] =
    "rate_per_s = 100\nburst = 1\n"
    "[notifier]\nlog_level = warn\n";

/* Waits until pushes:log holds want entries or timeout_ms passes; the last length
 * seen, or -1. */
static long long
wait_log(redisContext *rc, long long want, long timeout_ms)
{
	long long t0 = bench_now_ms(), len;

	while ((len = it_int(rc, "XLEN pushes:log")) >= 0 && len < want &&
	    bench_now_ms() - t0 < timeout_ms)
		it_sleep_ms(20);
	return len;
}

static int
cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

/* The arrival ms of every request of the deal (push id "<entry>:..."), sorted, into
 * *out (caller frees); how many (-1 on error). Counts the answers other than 201. */
static long
arrivals(const struct it_gwsim *g, const char *deal_entry, long long **out, long *bad)
{
	cJSON *all = it_gwsim_requests(g), *o;
	char prefix[80];
	size_t plen;
	long n = 0, cap = 0;
	long long *v = NULL, *nv;

	*bad = 0;
	snprintf(prefix, sizeof(prefix), "%s:", deal_entry);
	plen = strlen(prefix);
	cJSON_ArrayForEach(o, all) {
		const cJSON *push = cJSON_GetObjectItemCaseSensitive(o, "push");
		const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "ts_ms");
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");

		if (!cJSON_IsString(push) || strncmp(push->valuestring, prefix, plen) != 0 ||
		    !cJSON_IsNumber(ts))
			continue;
		if (!cJSON_IsNumber(st) || st->valueint != 201)
			(*bad)++;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			if ((nv = realloc(v, (size_t)cap * sizeof(*v))) == NULL) {
				free(v);
				cJSON_Delete(all);
				return -1;
			}
			v = nv;
		}
		v[n++] = (long long)ts->valuedouble;
	}
	cJSON_Delete(all);
	if (n > 0)
		qsort(v, (size_t)n, sizeof(*v), cmp_ll);
	*out = v;
	return n;
}

int
main(void)
{
	struct it_gwsim gw;
	struct it_notifier nt;
	redisContext *rc = NULL;
	redisReply *r = NULL;
	char *subs = NULL, *warm = NULL, deal_id[64], deal_entry[64];
	long long *ts = NULL, base, len, sent0, sent, span;
	long n = bench_env_long("BENCH_RATE_SUBS", BENCH_SUBS_DEFAULT, BENCH_SUBS_MIN,
	    BENCH_SUBS_MAX), reqs, bad, i, j, over = 0, worst = 0, gap_min = -1;
	long gap_max = 0, gaps_short = 0;
	int port = it_redis_port(), gw_up = 0, nt_up = 0, rv = 2;
	double ratio;

	memset(&gw, 0, sizeof(gw));
	memset(&nt, 0, sizeof(nt));
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (n < 0) {
		fprintf(stderr, "bench_rate: BENCH_RATE_SUBS must be %d..%d\n",
		    BENCH_SUBS_MIN, BENCH_SUBS_MAX);
		return 2;
	}
	if ((subs = bench_subscribers_jsonl("s", n, 0, BENCH_CATEGORY)) == NULL ||
	    (warm = bench_subscribers_jsonl("w", BENCH_WARM_SUBS, n, BENCH_WARM_CATEGORY)) ==
	    NULL) {
		fprintf(stderr, "bench_rate: out of memory\n");
		goto end;
	}

	/* Setup: empty redis, gwsim without faults, the audience, the notifier. */
	rc = it_redis_connect(port);
	it_flush(rc);
	if (it_gwsim_start(&gw, NULL) < 0) {
		fprintf(stderr, "bench_rate: gwsim did not start (see %s)\n", gw.proc.log);
		goto end;
	}
	gw_up = 1;
	if (it_import(port, subs) != 0 || it_import(port, warm) != 0) {
		fprintf(stderr, "bench_rate: importing subscribers failed\n");
		goto end;
	}
	if (it_notifier_start(&nt, port, gw.port, "bench", bench_config) < 0) {
		fprintf(stderr, "bench_rate: notifier did not start\n");
		goto end;
	}
	nt_up = 1;

	/* Warm-up: a few pushes prove the mirror loaded and open the connection. */
	snprintf(deal_id, sizeof(deal_id), "warm-%d", (int)getpid());
	if (it_publish(rc, it_deal(deal_id, BENCH_WARM_CATEGORY, 600)) < 0 ||
	    wait_log(rc, BENCH_WARM_SUBS, 20000) < BENCH_WARM_SUBS) {
		fprintf(stderr, "bench_rate: the warm-up deal was not delivered within 20 s "
		    "(see %s and %s)\n", nt.proc.log, gw.proc.log);
		goto end;
	}
	it_sleep_ms(300);
	if ((base = it_int(rc, "XLEN pushes:log")) < 0 ||
	    (sent0 = it_outcomes(rc, "sent")) < 0) {
		fprintf(stderr, "bench_rate: cannot read pushes:log\n");
		goto end;
	}

	/* The deal, then every outcome. */
	snprintf(deal_id, sizeof(deal_id), "bench-%d", (int)getpid());
	r = redisCommand(rc, "XADD deals * deal %s", it_deal(deal_id, BENCH_CATEGORY, 600));
	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "bench_rate: XADD deals failed\n");
		goto end;
	}
	snprintf(deal_entry, sizeof(deal_entry), "%s", r->str);
	freeReplyObject(r);
	r = NULL;
	len = wait_log(rc, base + n, BENCH_DEADLINE_MS);
	if (len < base + n) {
		fprintf(stderr, "bench_rate: %lld of %ld pushes recorded within %d s (see %s)\n",
		    len < 0 ? -1 : len - base, n, BENCH_DEADLINE_MS / 1000, nt.proc.log);
		rv = 1;
		goto end;
	}
	sent = it_outcomes(rc, "sent") - sent0;
	nt_up = 0;
	if (it_stop(&nt.proc, SIGTERM, 5000) != 0)
		fprintf(stderr, "bench_rate: the notifier did not exit cleanly (see %s)\n",
		    nt.proc.log);
	if ((reqs = arrivals(&gw, deal_entry, &ts, &bad)) < 0) {
		fprintf(stderr, "bench_rate: out of memory reading %s\n", gw.logfile);
		goto end;
	}
	if (sent != n || reqs != n || bad != 0) {
		fprintf(stderr, "bench_rate: %lld of %ld pushes sent, %ld requests at gwsim "
		    "(%ld not answered 201); see %s\n", sent, n, reqs, bad, nt.proc.log);
		rv = 1;
		goto end;
	}

	/* Every request opens a window [ts, ts + 1000 ms); j runs ahead to its end. */
	for (i = 0, j = 0; i < reqs; i++) {
		if (j < i)
			j = i;
		while (j < reqs && ts[j] < ts[i] + BENCH_WINDOW_MS)
			j++;
		if (j - i > BENCH_LIMIT)
			over++;
		if (j - i > worst)
			worst = j - i;
		if (i > 0) {
			long gap = (long)(ts[i] - ts[i - 1]);

			if (gap_min < 0 || gap < gap_min)
				gap_min = gap;
			if (gap > gap_max)
				gap_max = gap;
			if (gap < (long)(1000.0 / BENCH_RATE))
				gaps_short++;
		}
	}
	span = ts[reqs - 1] - ts[0];
	ratio = span > 0 ? (double)(reqs - 1) * 1000.0 / (double)span / BENCH_RATE : 0;

	printf("rate_fidelity: one deal to %ld subscribers through one gateway with "
	    "rate_per_s = %.0f, burst = 1 (no other limit reached), gwsim without faults\n",
	    n, BENCH_RATE);
	printf("  gwsim: %ld requests, first to last arrival %.3f s: %.2f requests/s\n",
	    reqs, (double)span / 1000.0, span > 0 ? (double)(reqs - 1) * 1000.0 /
	    (double)span : 0.0);
	printf("  gaps between arrivals: min %ld ms, max %ld ms, %ld of %ld under %.0f ms\n",
	    gap_min, gap_max, gaps_short, reqs - 1, 1000.0 / BENCH_RATE);
	printf("  1-second windows [t, t+1000 ms), one per request: the fullest holds %ld, "
	    "%ld hold more than %d\n", worst, over, BENCH_LIMIT);
	printf("achieved_over_configured = (requests - 1) / span / %.0f per s, goal "
	    "%.2f..%.2f; windows_over_limit goal 0; ratio = achieved_over_configured\n",
	    BENCH_RATE, BENCH_GOAL_LO, BENCH_GOAL_HI);
	printf("BENCH name=rate_fidelity achieved_over_configured=%.4f windows_over_limit=%ld "
	    "max_in_window=%ld ratio=%.4f\n", ratio, over, worst, ratio);
	rv = 0;

end:
	freeReplyObject(r);
	if (nt_up)
		it_stop(&nt.proc, SIGTERM, 5000);
	if (gw_up)
		it_stop(&gw.proc, SIGTERM, 2000);
	if (rc != NULL)
		redisFree(rc);
	free(ts);
	free(warm);
	free(subs);
	return rv;
}
