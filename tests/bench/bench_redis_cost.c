/*
 * bench_redis_cost.c: what one push costs Redis, measured through the real notifier
 * and gwsim (issue 11 item 8, `make bench`): the ceiling of one Redis for this design.
 *
 * One deal to N subscribers (BENCH_COST_SUBS, default 5,000) with the gateway limits
 * lifted. CONFIG RESETSTAT before the deal, INFO commandstats once every push is
 * recorded and every job acked:
 *   usec = Redis CPU µs per push: the usec of EVALSHA/EVAL (which include the
 *     commands their scripts run) plus the usec of every command the notifier sent
 *     itself, over N;
 *   script_cmds = commands run inside the scripts per push (the names the .lua files
 *     call, read from the sources, minus the notifier's own XACKs and ours).
 * Baseline, the same run, the same Redis, the same N: the least a push must write,
 * its state (HSET push:<deal> <sub>:sms sent) and its log entry (XADD pushes:log
 * with the same fields), sent as a plain pipeline; usec = their usec over N.
 * ratio = ours / baseline (lower is better; 1 would be "no overhead at all").
 * INFO cpu deltas (the whole server: parsing, networking, the event loop, idle
 * ticks) are printed for both as a cross-check. Test code: it blocks, sleeps and forks. Ends
 * with one BENCH line; exits non-zero when the setup fails or not every push is sent.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "benchlib.h"
#include "itest.h"

#define BENCH_SUBS_DEFAULT 5000
#define BENCH_SUBS_MIN 100
#define BENCH_SUBS_MAX 100000
#define BENCH_WARM_SUBS 50
#define BENCH_CATEGORY "laptop"
#define BENCH_WARM_CATEGORY "phone"
#define BENCH_DEADLINE_MS 60000
#define BENCH_NAMES_MAX 256
#define BENCH_GOAL_SCRIPT_CMDS 12.0

/* As bench_deliver.c: the gateway's own in-flight limit first (it lands in the
 * harness's [gateway twilio] section), then the notifier's. */
static const char bench_config[] =
    "max_in_flight = 256\n"
    "[deliver]\nmax_in_flight = 256\nbatch = 64\n"
    "[ingest]\njob_size = 100\nplan_chunk = 1000\n"
    "[notifier]\nlog_level = warn\n";

struct stat1 {
	char name[48];
	long long calls;
	double usec;
};

struct stats {
	struct stat1 v[BENCH_NAMES_MAX];
	size_t n;
	double cpu_s;           /* used_cpu_sys + used_cpu_user */
};

/* INFO commandstats and INFO cpu into s. 0 or -1. */
static int
stats_get(redisContext *rc, struct stats *s)
{
	redisReply *r = redisCommand(rc, "INFO all");
	const char *p, *colon, *eol, *u;
	char *end;
	double sys = 0, user = 0;
	size_t len;

	memset(s, 0, sizeof(*s));
	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		freeReplyObject(r);
		return -1;
	}
	if ((p = strstr(r->str, "used_cpu_sys:")) != NULL)
		sys = strtod(p + 13, NULL);
	if ((p = strstr(r->str, "used_cpu_user:")) != NULL)
		user = strtod(p + 14, NULL);
	s->cpu_s = sys + user;
	for (p = r->str; (p = strstr(p, "cmdstat_")) != NULL; p = eol) {
		p += strlen("cmdstat_");
		if ((eol = strchr(p, '\n')) == NULL)
			eol = p + strlen(p);
		colon = strchr(p, ':');
		if (colon == NULL || colon > eol || strncmp(colon, ":calls=", 7) != 0 ||
		    (len = (size_t)(colon - p)) >= sizeof(s->v[0].name) ||
		    s->n == BENCH_NAMES_MAX)
			continue;
		memcpy(s->v[s->n].name, p, len);
		s->v[s->n].name[len] = '\0';
		errno = 0;
		s->v[s->n].calls = strtoll(colon + 7, &end, 10);
		if (errno != 0 || end == colon + 7 || (u = strstr(end, "usec=")) == NULL ||
		    u > eol)
			continue;
		s->v[s->n].usec = strtod(u + 5, NULL);
		s->n++;
	}
	freeReplyObject(r);
	return 0;
}

static const struct stat1 *
stats_find(const struct stats *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, name) == 0)
			return &s->v[i];
	return NULL;
}

/* Stats are reset, so every command is counted; these are the bench's own, by name. */
struct own {
	long long xadd, xlen, xpending;
};

static long long
wait_log(redisContext *rc, long long want, long long deadline, struct own *o)
{
	long long len;

	for (;;) {
		o->xlen++;
		if ((len = it_int(rc, "XLEN pushes:log")) < 0 || len >= want ||
		    bench_now_ms() >= deadline)
			return len;
		it_sleep_ms(20);
	}
}

static int
wait_acked(redisContext *rc, struct own *o)
{
	long long deadline = bench_now_ms() + 5000;

	for (;;) {
		redisReply *r = redisCommand(rc, "XPENDING pushes deliver");
		int idle = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
		    r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 0;

		o->xpending++;
		freeReplyObject(r);
		if (idle)
			return 0;
		if (bench_now_ms() >= deadline)
			return -1;
		it_sleep_ms(20);
	}
}

/* The least a push must write, for n pushes, as one pipeline; returns 0 or -1. */
static int
baseline_run(redisContext *rc, long n)
{
	redisReply *r;
	long i, bad = 0;

	for (i = 0; i < n; i++) {
		redisAppendCommand(rc, "HSET push:baseline s-%ld:sms sent", i + 1);
		redisAppendCommand(rc, "XADD pushes:baseline MAXLEN ~ 1000000 * push "
		    "1-0:s-%ld:sms deal baseline sub s-%ld channel sms outcome sent "
		    "gateway twilio provider_id SM0123456789abcdef0123456789abcdef "
		    "http_status 201 detail - at 1796400000 latency_ms 3", i + 1, i + 1);
	}
	for (i = 0; i < 2 * n; i++) {
		if (redisGetReply(rc, (void **)&r) != REDIS_OK)
			return -1;
		bad += r == NULL || r->type == REDIS_REPLY_ERROR;
		freeReplyObject(r);
	}
	return bad == 0 ? 0 : -1;
}

int
main(void)
{
	static struct stats ours, base;
	struct it_gwsim gw;
	struct it_notifier nt;
	struct own own = { 0, 0, 0 };
	redisContext *rc = NULL;
	redisReply *r = NULL;
	const char *root = getenv("DP_ROOT");
	char *subs = NULL, *warm = NULL, deal_id[64];
	long n = bench_env_long("BENCH_COST_SUBS", BENCH_SUBS_DEFAULT, BENCH_SUBS_MIN,
	    BENCH_SUBS_MAX);
	long long logbase, len, jobs, sent0, sent, internal = 0, top_calls = 0;
	double usec_top = 0, usec_scripts = 0, base_usec, cpu0, ours_cpu_s;
	size_t i;
	int port = it_redis_port(), gw_up = 0, nt_up = 0, rv = 2;
	const struct stat1 *xa, *ev;

	memset(&gw, 0, sizeof(gw));
	memset(&nt, 0, sizeof(nt));
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (n < 0 || root == NULL) {
		fprintf(stderr, "bench_redis_cost: BENCH_COST_SUBS must be %d..%d; run through "
		    "tests/bench/run.sh (DP_ROOT)\n", BENCH_SUBS_MIN, BENCH_SUBS_MAX);
		return 2;
	}
	if (bench_script_cmds_load(root) < 0) {
		fprintf(stderr, "bench_redis_cost: cannot read %s/notifier/lua\n", root);
		return 2;
	}
	if ((subs = bench_subscribers_jsonl("s", n, 0, BENCH_CATEGORY)) == NULL ||
	    (warm = bench_subscribers_jsonl("w", BENCH_WARM_SUBS, n, BENCH_WARM_CATEGORY)) ==
	    NULL) {
		fprintf(stderr, "bench_redis_cost: out of memory\n");
		goto end;
	}

	rc = it_redis_connect(port);
	it_flush(rc);
	if (it_gwsim_start(&gw, NULL) < 0) {
		fprintf(stderr, "bench_redis_cost: gwsim did not start (see %s)\n", gw.proc.log);
		goto end;
	}
	gw_up = 1;
	if (it_import(port, subs) != 0 || it_import(port, warm) != 0 ||
	    it_notifier_start(&nt, port, gw.port, "bench", bench_config) < 0) {
		fprintf(stderr, "bench_redis_cost: import or notifier start failed\n");
		goto end;
	}
	nt_up = 1;
	/* Warm-up: the mirror loaded, the scripts loaded, the connections open. */
	if (it_publish(rc, it_deal("warm", BENCH_WARM_CATEGORY, 600)) < 0 ||
	    wait_log(rc, BENCH_WARM_SUBS, bench_now_ms() + 20000, &own) < BENCH_WARM_SUBS ||
	    wait_acked(rc, &own) < 0) {
		fprintf(stderr, "bench_redis_cost: the warm-up deal was not delivered within "
		    "20 s (see %s)\n", nt.proc.log);
		goto end;
	}
	it_sleep_ms(300);
	logbase = it_int(rc, "XLEN pushes:log");
	sent0 = it_outcomes(rc, "sent");

	/* Ours: from CONFIG RESETSTAT to the last ack, every command counted. */
	memset(&own, 0, sizeof(own));
	freeReplyObject(redisCommand(rc, "CONFIG RESETSTAT"));
	if (stats_get(rc, &base) < 0) {         /* the server's CPU time so far */
		fprintf(stderr, "bench_redis_cost: INFO failed\n");
		goto end;
	}
	snprintf(deal_id, sizeof(deal_id), "cost-%d", (int)getpid());
	r = redisCommand(rc, "XADD deals * deal %s", it_deal(deal_id, BENCH_CATEGORY, 600));
	own.xadd++;
	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "bench_redis_cost: XADD deals failed\n");
		goto end;
	}
	freeReplyObject(r);
	r = NULL;
	len = wait_log(rc, logbase + n, bench_now_ms() + BENCH_DEADLINE_MS, &own);
	if (len < logbase + n || wait_acked(rc, &own) < 0) {
		fprintf(stderr, "bench_redis_cost: %lld of %ld pushes recorded and acked "
		    "within %d s (see %s)\n", len - logbase, n, BENCH_DEADLINE_MS / 1000,
		    nt.proc.log);
		rv = 1;
		goto end;
	}
	if (stats_get(rc, &ours) < 0) {
		fprintf(stderr, "bench_redis_cost: INFO failed\n");
		goto end;
	}
	/* The deal's jobs (acked jobs are trimmed from "pushes", so not XLEN). */
	r = redisCommand(rc, "HGET deal:%s jobs", deal_id);
	jobs = r != NULL && r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
	freeReplyObject(r);
	r = NULL;
	nt_up = 0;
	it_stop(&nt.proc, SIGTERM, 5000);
	sent = it_outcomes(rc, "sent") - sent0;
	if (sent != n) {
		fprintf(stderr, "bench_redis_cost: %lld of %ld pushes sent (see %s)\n", sent, n,
		    nt.proc.log);
		rv = 1;
		goto end;
	}

	/* Split by name: the scripts' names are inside EVALSHA's usec; of XACK, one per
	 * job is the notifier's own; XADD, XLEN and XPENDING are partly ours. */
	for (i = 0; i < ours.n; i++) {
		const struct stat1 *s = &ours.v[i];
		long long calls = s->calls, top;

		if (strcmp(s->name, "xlen") == 0)
			calls -= own.xlen;
		else if (strcmp(s->name, "xpending") == 0)
			calls -= own.xpending;
		else if (strcmp(s->name, "xadd") == 0)
			calls -= own.xadd;
		else if (strcmp(s->name, "config|resetstat") == 0 ||
		    strcmp(s->name, "info") == 0)
			continue;
		if (calls <= 0)
			continue;
		if (strcmp(s->name, "evalsha") == 0 || strcmp(s->name, "eval") == 0) {
			usec_scripts += s->usec;
			top_calls += calls;
		} else if (bench_is_script_cmd(s->name)) {
			top = strcmp(s->name, "xack") == 0 ? (calls < jobs ? calls : jobs) : 0;
			internal += calls - top;
			top_calls += top;
			usec_top += s->usec * (double)top / (double)s->calls;
		} else {
			top_calls += calls;
			usec_top += s->usec * (double)calls / (double)s->calls;
		}
	}
	ours_cpu_s = ours.cpu_s - base.cpu_s;
	xa = stats_find(&ours, "xack");
	ev = stats_find(&ours, "evalsha");
	printf("redis_cost_per_push: one deal to %ld subscribers through the notifier and "
	    "gwsim (no faults), %lld jobs\n", n, jobs);
	printf("  ours: evalsha %lld calls, %.0f usec (scripts included); top-level other "
	    "commands %.0f usec (xack %lld calls); inside scripts %lld calls\n",
	    ev ? ev->calls : 0, usec_scripts, usec_top, xa ? xa->calls : 0, internal);
	printf("  ours: %.2f usec per push in commands; server CPU %.2f usec per push "
	    "(INFO cpu, parsing and I/O included)\n", (usec_scripts + usec_top) / (double)n,
	    ours_cpu_s * 1e6 / (double)n);
	printf("  ours: %.3f round trips and %.2f commands inside scripts per push\n",
	    (double)top_calls / (double)n, (double)internal / (double)n);
	printf("  ours, inside scripts per push by command:");
	for (i = 0; i < ours.n; i++)
		if (bench_is_script_cmd(ours.v[i].name) && ours.v[i].calls * 100 >= n)
			printf(" %s=%.2f", ours.v[i].name, (double)ours.v[i].calls / (double)n);
	printf("\n");

	/* Baseline: the same N, the least a push must write, one pipeline. */
	freeReplyObject(redisCommand(rc, "CONFIG RESETSTAT"));
	if (stats_get(rc, &base) < 0) {
		fprintf(stderr, "bench_redis_cost: INFO failed\n");
		goto end;
	}
	cpu0 = base.cpu_s;
	if (baseline_run(rc, n) < 0 || stats_get(rc, &base) < 0) {
		fprintf(stderr, "bench_redis_cost: the baseline pipeline failed\n");
		goto end;
	}
	base_usec = (stats_find(&base, "hset") ? stats_find(&base, "hset")->usec : 0) +
	    (stats_find(&base, "xadd") ? stats_find(&base, "xadd")->usec : 0);
	printf("  baseline (HSET push state + XADD pushes:log entry per push, one "
	    "pipeline): %.2f usec per push in commands; server CPU %.2f usec per push\n",
	    base_usec / (double)n, (base.cpu_s - cpu0) * 1e6 / (double)n);
	printf("usec = Redis command time per push (EVALSHA incl. its scripts + the "
	    "notifier's own commands); script_cmds = commands inside scripts per push, "
	    "goal <= %.0f; ratio = usec / baseline usec, lower is better\n",
	    BENCH_GOAL_SCRIPT_CMDS);
	printf("BENCH name=redis_cost_per_push usec=%.2f script_cmds=%.2f ratio=%.2f\n",
	    (usec_scripts + usec_top) / (double)n, (double)internal / (double)n,
	    base_usec > 0 ? (usec_scripts + usec_top) / base_usec : 0.0);
	rv = 0;
end:
	freeReplyObject(r);
	if (nt_up)
		it_stop(&nt.proc, SIGTERM, 5000);
	if (gw_up)
		it_stop(&gw.proc, SIGTERM, 2000);
	if (rc != NULL)
		redisFree(rc);
	free(warm);
	free(subs);
	return rv;
}
