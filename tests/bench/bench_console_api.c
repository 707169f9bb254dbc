/*
 * bench_console_api.c: the console's API calls answer within 50 ms p99 for a deal of
 * 300,000 pushes (issue 19 item 4, `make bench`).
 *
 * The deal's state is written straight into Redis, pipelined, under the names
 * notifier/keys.c gives and in the forms the scripts write (push:, pushinfo:,
 * delivery: with a field per push, a pushes:log entry per push, the report's counters,
 * series: per minute, the deal hash), with 1,000 entries on `deals` (the most the
 * deal list reads) and 10,000 replies (the stream's bound). BENCH_CONSOLE_PUSHES
 * changes the 300,000. Then a real notifier answers over loopback HTTP, one request
 * at a time on a new connection each (as the console's polling does): the deal's
 * status, its series, its report, the deal list and a page of 100 replies, each
 * BENCH_CONSOLE_CALLS times (default 200), interleaved with as many GET /healthz on
 * the same server as the baseline (the cost of the HTTP round trip alone).
 * p99_ms = the 99th percentile of all the console's calls; ratio = p99_ms / 50 (the
 * target: under 1). Test code: it blocks. Ends with one BENCH line; exits non-zero
 * when the setup fails or a call does not answer 200.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "benchlib.h"
#include "ithttp.h"
#include "itest.h"
#include "keys.h"

#define BENCH_DEAL "console-big"
#define BENCH_TOKEN "bench-console-admin-token-0123456789"
#define BENCH_AUTH "Authorization: Bearer " BENCH_TOKEN "\r\n"
#define BENCH_PIPE 1000               /* commands in flight while writing */
#define BENCH_FIELDS 500              /* field-value pairs per HSET */
#define BENCH_MINUTES 300             /* minutes of the series with counts */
#define BENCH_DEALS 1000              /* entries on deals */
#define BENCH_REPLIES 10000           /* entries on replies */
#define BENCH_TARGET_MS 50.0

enum { CALL_STATUS, CALL_SERIES, CALL_REPORT, CALL_LIST, CALL_REPLIES, CALL_COUNT };
static const char *const call_name[CALL_COUNT] = { "deal status", "series", "report",
    "deal list", "replies page" };
static const char *const call_path[CALL_COUNT] = { "/v1/deals/" BENCH_DEAL,
    "/v1/deals/" BENCH_DEAL "/series", "/v1/reports/deal/" BENCH_DEAL, "/v1/deals",
    "/v1/replies?limit=100" };

/* Pipelined writes: commands are appended, replies drained every BENCH_PIPE. */
struct pipe {
	redisContext *rc;
	long pending, errors;
};

static void
pipe_drain(struct pipe *p)
{
	redisReply *r;

	while (p->pending > 0) {
		if (redisGetReply(p->rc, (void **)&r) != REDIS_OK) {
			p->errors++;
			p->pending = 0;
			return;
		}
		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			p->errors++;
		freeReplyObject(r);
		p->pending--;
	}
}

static void
pipe_argv(struct pipe *p, int argc, const char **argv, const size_t *lens)
{
	redisAppendCommandArgv(p->rc, argc, argv, lens);
	if (++p->pending >= BENCH_PIPE)
		pipe_drain(p);
}

/* HSET key with n fields: field(i), value(i) from the callers' formats. */
static void
hset_many(struct pipe *p, const char *key, long n, const char *ffmt, const char *vfmt)
{
	const char **argv = calloc(2 + 2 * BENCH_FIELDS, sizeof(*argv));
	char (*buf)[64] = calloc(2 * BENCH_FIELDS, sizeof(*buf));
	long i, k;

	if (argv == NULL || buf == NULL) {
		p->errors++;
		goto out;
	}
	for (i = 1; i <= n; ) {
		int argc = 2;

		argv[0] = "HSET";
		argv[1] = key;
		for (k = 0; k < BENCH_FIELDS && i <= n; k++, i++) {
			snprintf(buf[2 * k], sizeof(buf[0]), ffmt, i);
			snprintf(buf[2 * k + 1], sizeof(buf[0]), vfmt, i);
			argv[argc++] = buf[2 * k];
			argv[argc++] = buf[2 * k + 1];
		}
		pipe_argv(p, argc, argv, NULL);   /* formatted now: buf may be reused */
	}
out:
	free(argv);
	free(buf);
}

/* The deal's state for n pushes, sent at minute first .. first+BENCH_MINUTES-1. */
static int
write_state(redisContext *rc, long n, long long now)
{
	struct pipe p = { rc, 0, 0 };
	char k_push[KEYS_MAX], k_info[KEYS_MAX], k_deliv[KEYS_MAX], k_rep[KEYS_MAX];
	char k_series[KEYS_MAX], k_log[KEYS_SHARD_MAX], a[8][96];
	long long first = now / 60 - BENCH_MINUTES + 1, t0 = bench_now_ms();
	long i, m;

	if (keys_per(0, KEYS_PUSH, BENCH_DEAL, k_push, sizeof(k_push)) < 0 ||
	    keys_per(0, KEYS_PUSHINFO, BENCH_DEAL, k_info, sizeof(k_info)) < 0 ||
	    keys_per(0, KEYS_DELIVERY, BENCH_DEAL, k_deliv, sizeof(k_deliv)) < 0 ||
	    keys_per(0, KEYS_REPORT_DEAL, BENCH_DEAL, k_rep, sizeof(k_rep)) < 0 ||
	    keys_per(0, KEYS_SERIES, BENCH_DEAL, k_series, sizeof(k_series)) < 0 ||
	    keys_shard_key(0, KEYS_PUSHES_LOG, k_log, sizeof(k_log)) < 0)
		return -1;
	hset_many(&p, k_push, n, "b-%ld:sms", "sent");
	hset_many(&p, k_info, n, "b-%ld:sms", "bench\tcmp");
	hset_many(&p, k_deliv, n, "b-%ld:sms", "delivered");
	/* ORDER (lib/outcome.lua oc_final): the log entry of each push. */
	for (i = 1; i <= n; i++) {
		const char *argv[18] = { "XADD", k_log, "MAXLEN", "~", "1000000", "*", "push",
		    a[0], "deal", BENCH_DEAL, "sub", a[1], "channel", "sms", "outcome", "sent",
		    "at", a[2] };

		snprintf(a[0], sizeof(a[0]), "1-0:b-%ld:sms", i);
		snprintf(a[1], sizeof(a[1]), "b-%ld", i);
		snprintf(a[2], sizeof(a[2]), "%lld", now - (n - i) * (BENCH_MINUTES * 60LL) / n);
		pipe_argv(&p, 18, argv, NULL);
	}
	/* The report and the series, as record.lua, hook_status.lua, click.lua and
	 * convert.lua count them. */
	redisAppendCommand(rc, "HSET %s planned %ld admitted %ld sent %ld delivered %ld "
	    "clicked %ld redeemed %ld revenue %ld sms_segments %ld treated_audience %ld",
	    k_rep, n, n, n, n - n / 30, n / 25, n / 300, n / 300 * 49, n, n);
	p.pending++;
	for (m = 0; m < BENCH_MINUTES; m++) {
		long per = n / BENCH_MINUTES;

		redisAppendCommand(rc, "HSET %s sent:%lld %ld delivered:%lld %ld clicked:%lld "
		    "%ld redeemed:%lld %ld", k_series, first + m, per, first + m, per - per / 30,
		    first + m, per / 25, first + m, per / 300);
		p.pending++;
	}
	redisAppendCommand(rc, "EXPIRE %s %d", k_series, 8 * 86400);
	p.pending++;
	redisAppendCommand(rc, "HSET deal:%s url https://shop.example/d/big title Big "
	    "campaign cmp exp %lld entry 1-0 planned 1-0 recipients %ld", BENCH_DEAL,
	    now + 7200, n);
	p.pending++;
	pipe_drain(&p);
	/* The deals on now (the list reads the newest 1,000 entries) and the replies. */
	for (i = 0; i < BENCH_DEALS; i++) {
		char id[32];

		snprintf(id, sizeof(id), i == BENCH_DEALS - 1 ? BENCH_DEAL : "small-%ld", i);
		redisAppendCommand(rc, "XADD deals * deal %s", it_deal(id, "benchcat", 7200));
		if (++p.pending >= BENCH_PIPE)
			pipe_drain(&p);
	}
	for (i = 0; i < BENCH_REPLIES; i++) {
		redisAppendCommand(rc, "XADD replies MAXLEN ~ 10000 * from +1512200%04ld text "
		    "%s received_at %lld reason no_keyword channel sms sid SM%ld sub b-%ld "
		    "deal %s", i % 10000, "is the blue one back in stock?", now - i, i, i + 1,
		    BENCH_DEAL);
		if (++p.pending >= BENCH_PIPE)
			pipe_drain(&p);
	}
	/* Ingest starts after the entries: the deals are listed, not planned again. */
	redisAppendCommand(rc, "XGROUP CREATE deals notifier $ MKSTREAM");
	p.pending++;
	pipe_drain(&p);
	printf("state: %ld pushes of %s, %d deals, %d replies written in %lld ms "
	    "(%ld errors)\n", n, BENCH_DEAL, BENCH_DEALS, BENCH_REPLIES,
	    bench_now_ms() - t0, p.errors);
	return p.errors == 0 ? 0 : -1;
}

/* GET path; its wall time in ms into *ms. Returns 0, or -1 (said on stderr) for an
 * answer other than 200. */
static int
timed_get(int http, const char *path, const char *hdrs, double *ms)
{
	static struct it_resp resp;
	struct timespec a, b;

	clock_gettime(CLOCK_MONOTONIC, &a);
	if (it_http(http, "GET", path, hdrs, NULL, 0, &resp) != 200) {
		fprintf(stderr, "bench_console_api: %s answered %d\n", path, resp.status);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	*ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile of v (n of them, sorted here). */
static double
quantile(double *v, long n, double q)
{
	long i;

	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	i = (long)(q * (double)n + 0.999999) - 1;
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

int
main(void)
{
	static struct it_resp resp;
	struct it_gwsim gw;
	struct it_notifier nt;
	long n = bench_env_long("BENCH_CONSOLE_PUSHES", 300000, 1000, 2000000);
	long calls = bench_env_long("BENCH_CONSOLE_CALLS", 200, 20, 100000);
	double *lat[CALL_COUNT], *all = NULL, *base = NULL, p99, p99_base;
	int port = it_redis_port(), http = -1, rv = 2, gw_up = 0, nt_up = 0, c;
	redisContext *rc = NULL;
	long i, nall = 0;

	memset(&gw, 0, sizeof(gw));
	memset(&nt, 0, sizeof(nt));
	memset(lat, 0, sizeof(lat));
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (n < 0 || calls < 0) {
		fprintf(stderr, "bench_console_api: BENCH_CONSOLE_PUSHES 1000..2000000, "
		    "BENCH_CONSOLE_CALLS 20..100000\n");
		return 2;
	}
	for (c = 0; c < CALL_COUNT; c++)
		if ((lat[c] = calloc((size_t)calls, sizeof(double))) == NULL)
			goto out;
	if ((all = calloc((size_t)(calls * CALL_COUNT), sizeof(double))) == NULL ||
	    (base = calloc((size_t)(calls * CALL_COUNT), sizeof(double))) == NULL)
		goto out;
	rc = it_redis_connect(port);
	it_flush(rc);
	if (write_state(rc, n, it_now()) < 0) {
		fprintf(stderr, "bench_console_api: writing the deal's state failed\n");
		goto out;
	}
	if (it_gwsim_start(&gw, NULL) < 0)
		goto out;
	gw_up = 1;
	setenv("DP_TEST_ADMIN_TOKEN", BENCH_TOKEN, 1);
	if ((http = it_notifier_start_http(&nt, port, gw.port, "bench",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n")) < 0)
		goto out;
	nt_up = 1;
	it_sleep_ms(500);
	/* Warm-up: every call once, each must answer 200. */
	for (c = 0; c < CALL_COUNT; c++)
		if (it_http(http, "GET", call_path[c], BENCH_AUTH, NULL, 0, &resp) != 200) {
			fprintf(stderr, "bench_console_api: %s answered %d: %.200s\n",
			    call_path[c], resp.status, resp.body);
			goto out;
		}
	for (i = 0; i < calls; i++) {
		for (c = 0; c < CALL_COUNT; c++) {
			if (timed_get(http, call_path[c], BENCH_AUTH, &lat[c][i]) < 0 ||
			    timed_get(http, "/healthz", NULL, &base[nall]) < 0)
				goto out;
			all[nall++] = lat[c][i];
		}
	}
	printf("%-14s %8s %8s %8s   (ms, %ld calls each, over HTTP on loopback)\n", "call",
	    "p50", "p99", "max", calls);
	for (c = 0; c < CALL_COUNT; c++) {
		double p50 = quantile(lat[c], calls, 0.50), q99 = quantile(lat[c], calls, 0.99);

		printf("%-14s %8.2f %8.2f %8.2f\n", call_name[c], p50, q99, lat[c][calls - 1]);
	}
	p99_base = quantile(base, nall, 0.99);
	printf("%-14s %8.2f %8.2f %8.2f   (baseline: GET /healthz, interleaved)\n",
	    "healthz", quantile(base, nall, 0.50), p99_base, base[nall - 1]);
	p99 = quantile(all, nall, 0.99);
	printf("all console calls: p99 %.2f ms (baseline p99 %.2f ms), target %.0f ms\n",
	    p99, p99_base, BENCH_TARGET_MS);
	printf("BENCH name=console_api p99_ms=%.2f ratio=%.3f\n", p99, p99 / BENCH_TARGET_MS);
	rv = 0;
out:
	if (nt_up)
		it_stop(&nt.proc, SIGTERM, 5000);
	if (gw_up)
		it_stop(&gw.proc, SIGTERM, 2000);
	if (rc != NULL)
		redisFree(rc);
	for (c = 0; c < CALL_COUNT; c++)
		free(lat[c]);
	free(all);
	free(base);
	return rv;
}
