/*
 * bench_deliver.c: deliver throughput (admit + send + record) to gwsim beside wrk on
 * the same endpoint, and Redis commands per push (issue 6 item 8, `make bench`).
 *
 * One deal matching N subscribers (BENCH_DELIVER_SUBS, default 20,000) is published
 * with the gateway limits lifted; the time from XADD to the N-th pushes:log entry
 * gives pushes/s. INFO commandstats before and after gives Redis commands per push,
 * our own polling subtracted exactly. In the same run wrk sends the same Twilio
 * request to the same gwsim. It also reports the notifier's CPU time per push (/proc)
 * and the Redis memory the deal leaves per push once delivered (issue 13 item 3).
 * Test code: it blocks, sleeps and forks. Ends with three BENCH lines,
 * deliver_throughput, redis_cmds_per_push (cmds: top-level commands, the round trips
 * the notifier asks for, per push; script_cmds: commands run inside the Lua scripts
 * per push) and redis_bytes_per_push; exits non-zero when the setup fails or not all
 * N pushes are sent and recorded within 60 s. BENCH_DELIVER_WAIT_REPLICAS=1 gives
 * the redis a replica and the notifier redis.wait_replicas = 1 (a WAIT behind every
 * claim batch), to measure what durability costs per push.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "benchlib.h"
#include "itest.h"

#define BENCH_SUBS_DEFAULT 20000
#define BENCH_SUBS_MIN 100
#define BENCH_SUBS_MAX 200000
#define BENCH_WARM_SUBS 200         /* a warm-up deal: mirror loaded, connections open */
#define BENCH_CATEGORY "laptop"
#define BENCH_WARM_CATEGORY "phone"
#define BENCH_POLL_MS 5
#define BENCH_DEADLINE_MS 60000     /* all N recorded within this, or the bench fails */
#define BENCH_CMDS_MAX 256          /* distinct command names in INFO commandstats */
#define BENCH_GOAL_RATIO 0.5
#define BENCH_GOAL_CMDS 0.2

/*
 * The notifier's limits lifted. The harness's config ends inside its
 * "[gateway twilio]" section and a gateway may not be defined twice, so the first
 * line, before any section header, raises that gateway's own in-flight limit (64 by
 * default). Should the harness ever end in another section, the notifier refuses the
 * key and the bench fails at start-up rather than measuring the default.
 * plan_chunk is 1000, not 2000: a chunk of 2000 recipients in jobs of 100 makes a
 * plan.lua call of 4231 arguments, over the 4096 that scripts.c accepts (see
 * docs/performance.md).
 */
static const char bench_config[] =
    "max_in_flight = 256\n"
    "[deliver]\nmax_in_flight = 256\nbatch = 64\n"
    "[ingest]\njob_size = 100\nplan_chunk = 1000\n"
    "[notifier]\nlog_level = warn\n";

/*
 * The commands only our Lua scripts send (redis.call in notifier/lua), counted by
 * Redis under their own names next to the EVALSHA that ran them. Of these the
 * notifier itself sends only XACK (one per job, once all its outcomes are recorded)
 * and HGET (substore, on a subscriber change: none here). A name the notifier also
 * sends on its own (XPENDING, XRANGE, TIME ...) is not listed: it counts as a round
 * trip, which can only overstate cmds; HMGET is split in cmdstats_delta. Keep in step
 * with the scripts.
 */
static const char *const bench_script_cmds[] = {
	"exists", "expire", "expireat", "get", "hdel", "hexists", "hget", "hincrby", "hset",
	"hsetnx", "incr", "sadd", "spop", "ttl", "xack", "xadd", "xinfo", "xtrim", "zadd",
	"zcard", "zrangebyscore", "zrem", "zremrangebyscore",
};

static int
is_script_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(bench_script_cmds) / sizeof(bench_script_cmds[0]); i++)
		if (strcmp(bench_script_cmds[i], name) == 0)
			return 1;
	return 0;
}

struct cmdstat {
	char name[48];
	long long calls;
};

struct cmdstats {
	struct cmdstat v[BENCH_CMDS_MAX];
	size_t n;
};

/* What this bench itself sends between the two commandstats snapshots. */
struct own {
	long long info, xadd, xlen, xpending;
};

/* Parses INFO commandstats ("cmdstat_<name>:calls=<n>,usec=..." lines) into cs.
 * Sends one INFO. 0 or -1. */
static int
cmdstats_get(redisContext *rc, struct cmdstats *cs)
{
	redisReply *r = redisCommand(rc, "INFO commandstats");
	const char *p, *colon, *eol;
	char *end;
	size_t len;

	cs->n = 0;
	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		freeReplyObject(r);
		return -1;
	}
	for (p = r->str; (p = strstr(p, "cmdstat_")) != NULL; p = eol) {
		p += strlen("cmdstat_");
		if ((eol = strchr(p, '\n')) == NULL)
			eol = p + strlen(p);
		colon = strchr(p, ':');
		if (colon == NULL || colon > eol || strncmp(colon, ":calls=", 7) != 0)
			continue;
		len = (size_t)(colon - p);
		if (len >= sizeof(cs->v[0].name) || cs->n == BENCH_CMDS_MAX)
			continue;
		memcpy(cs->v[cs->n].name, p, len);
		cs->v[cs->n].name[len] = '\0';
		errno = 0;
		cs->v[cs->n].calls = strtoll(colon + 7, &end, 10);
		if (errno != 0 || end == colon + 7)
			continue;
		cs->n++;
	}
	freeReplyObject(r);
	return 0;
}

static long long
cmdstats_calls(const struct cmdstats *cs, const char *name)
{
	size_t i;

	for (i = 0; i < cs->n; i++)
		if (strcmp(cs->v[i].name, name) == 0)
			return cs->v[i].calls;
	return 0;
}

/* Our own calls of name between the snapshots (the first INFO is counted in the
 * second snapshot, the second INFO in none). */
static long long
own_calls(const struct own *o, const char *name)
{
	if (strcmp(name, "info") == 0)
		return o->info;
	if (strcmp(name, "xadd") == 0)
		return o->xadd;
	if (strcmp(name, "xlen") == 0)
		return o->xlen;
	if (strcmp(name, "xpending") == 0)
		return o->xpending;
	return 0;
}

static int
cmp_delta(const void *a, const void *b)
{
	const struct cmdstat *x = a, *y = b;

	if (x->calls != y->calls)
		return x->calls < y->calls ? 1 : -1;
	return strcmp(x->name, y->name);
}

/*
 * The notifier's commands between the snapshots, per name, largest first (ours
 * subtracted) into d; the totals of all calls and of top-level calls (everything
 * except what the scripts ran; of XACK, acked_jobs are the notifier's own).
 */
static size_t
cmdstats_delta(const struct cmdstats *before, const struct cmdstats *after,
    const struct own *o, long long acked_jobs, struct cmdstat *d, long long *total,
    long long *top)
{
	size_t i, n = 0;
	long long hmget = 0, evalsha = 0;

	*total = *top = 0;
	for (i = 0; i < after->n; i++) {
		long long c = after->v[i].calls - cmdstats_calls(before, after->v[i].name) -
		    own_calls(o, after->v[i].name);

		if (c == 0)
			continue;
		d[n] = after->v[i];
		d[n].calls = c;
		n++;
		*total += c;
		if (strcmp(after->v[i].name, "xack") == 0)
			*top += c < acked_jobs ? c : acked_jobs;
		else if (strcmp(after->v[i].name, "hmget") == 0)
			hmget = c;
		else if (!is_script_cmd(after->v[i].name))
			*top += c;
		if (strcmp(after->v[i].name, "evalsha") == 0)
			evalsha = c;
	}
	/* HMGET both: admit.lua, send.lua and record.lua read the deal hash (or the
	 * behaviour records) with one in nearly every call, the notifier a few of its own
	 * (the pause state). Those beyond one per EVALSHA count as round trips. */
	*top += hmget > evalsha ? hmget - evalsha : 0;
	qsort(d, n, sizeof(*d), cmp_delta);
	return n;
}

/* The ms part of the id of the newest pushes:log entry, or -1. */
static long long
log_last_ms(redisContext *rc)
{
	redisReply *r = redisCommand(rc, "XREVRANGE pushes:log + - COUNT 1");
	long long ms = -1;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
	    r->element[0]->element[0]->type == REDIS_REPLY_STRING)
		ms = bench_entry_ms(r->element[0]->element[0]->str);
	freeReplyObject(r);
	return ms;
}

/* Polls XLEN pushes:log every 5 ms until it reaches want or deadline_ms (monotonic)
 * passes; counts the calls in o. The last length seen, or -1 on error. */
static long long
wait_log(redisContext *rc, long long want, long long deadline_ms, struct own *o)
{
	long long len;

	for (;;) {
		o->xlen++;
		if ((len = it_int(rc, "XLEN pushes:log")) < 0 || len >= want ||
		    bench_now_ms() >= deadline_ms)
			return len;
		it_sleep_ms(BENCH_POLL_MS);
	}
}

/* Waits until the deliver group has no pending job (the last acks follow the last
 * records); counts the calls in o. 0, or -1 when it did not within 2 s. */
static int
wait_acked(redisContext *rc, struct own *o)
{
	long long deadline = bench_now_ms() + 2000;

	for (;;) {
		redisReply *r = redisCommand(rc, "XPENDING pushes deliver");
		int idle;

		o->xpending++;
		idle = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
		    r->element[0]->type == REDIS_REPLY_INTEGER && r->element[0]->integer == 0;
		freeReplyObject(r);
		if (idle)
			return 0;
		if (bench_now_ms() >= deadline)
			return -1;
		it_sleep_ms(BENCH_POLL_MS);
	}
}

/* CPU seconds (user + system) process pid has used, from /proc; -1 when unknown. */
static double
proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After "(comm)": state, then fields 4..13, then utime (14) and stime (15). */
	if ((p = strrchr(buf, ')')) == NULL ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
	    &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* used_memory from INFO memory, or -1. */
static long long
mem_used(redisContext *rc)
{
	redisReply *r = redisCommand(rc, "INFO memory");
	const char *p;
	long long v = -1;

	if (r != NULL && r->type == REDIS_REPLY_STRING &&
	    (p = strstr(r->str, "used_memory:")) != NULL)
		v = strtoll(p + strlen("used_memory:"), NULL, 10);
	freeReplyObject(r);
	return v;
}

/* MEMORY USAGE of key, every element counted (0 when it does not exist). */
static long long
key_mem(redisContext *rc, const char *prefix, const char *id)
{
	redisReply *r = redisCommand(rc, "MEMORY USAGE %s%s SAMPLES 0", prefix, id);
	long long v = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : 0;

	freeReplyObject(r);
	return v;
}

int
main(void)
{
	static struct cmdstats before, after;
	static struct cmdstat delta[BENCH_CMDS_MAX];
	struct it_gwsim gw;
	struct it_notifier nt;
	struct own own = { 0, 0, 0, 0 };
	redisContext *rc = NULL;
	redisReply *r = NULL;
	char *subs = NULL, *warm = NULL, deal_id[64];
	long n = bench_env_long("BENCH_DELIVER_SUBS", BENCH_SUBS_DEFAULT, BENCH_SUBS_MIN,
	    BENCH_SUBS_MAX);
	long long t0, t1, deal_ms = -1, last_ms, len, base, sent0, sent, jobs, total, top;
	long long mem0, mem1, km[5];
	double cpu0, cpu1;
	size_t i, nd, body_len = 0;
	int port = it_redis_port(), gw_up = 0, nt_up = 0, rv = 2;
	long wait = bench_env_long("BENCH_DELIVER_WAIT_REPLICAS", 0, 0, 1);
	struct it_sentinel replica;
	char config[sizeof(bench_config) + 64];
	double elapsed_s, pps, wrk_rps, cmds, top_cmds;

	memset(&gw, 0, sizeof(gw));
	memset(&nt, 0, sizeof(nt));
	memset(&replica, 0, sizeof(replica));
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (n < 0) {
		fprintf(stderr, "bench_deliver: BENCH_DELIVER_SUBS must be %d..%d\n",
		    BENCH_SUBS_MIN, BENCH_SUBS_MAX);
		return 2;
	}
	if (wait < 0) {
		fprintf(stderr, "bench_deliver: BENCH_DELIVER_WAIT_REPLICAS must be 0 or 1\n");
		return 2;
	}
	if ((subs = bench_subscribers_jsonl("s", n, 0, BENCH_CATEGORY)) == NULL ||
	    (warm = bench_subscribers_jsonl("w", BENCH_WARM_SUBS, n, BENCH_WARM_CATEGORY)) ==
	    NULL) {
		fprintf(stderr, "bench_deliver: out of memory\n");
		goto end;
	}

	/* Setup: empty redis, gwsim without faults, the audience, the notifier. */
	rc = it_redis_connect(port);
	it_flush(rc);
	if (it_gwsim_start(&gw, NULL) < 0) {
		fprintf(stderr, "bench_deliver: gwsim did not start (see %s)\n", gw.proc.log);
		goto end;
	}
	gw_up = 1;
	if (it_import(port, subs) != 0 || it_import(port, warm) != 0) {
		fprintf(stderr, "bench_deliver: importing subscribers failed\n");
		goto end;
	}
	snprintf(config, sizeof(config), "%s[redis]\nwait_replicas = %ld\n", bench_config,
	    wait);
	if (wait > 0 && it_sentinel_add_replica(&replica, port) < 0) {
		fprintf(stderr, "bench_deliver: the replica did not start\n");
		goto end;
	}
	if (it_notifier_start(&nt, port, gw.port, "bench", config) < 0) {
		fprintf(stderr, "bench_deliver: notifier did not start\n");
		goto end;
	}
	nt_up = 1;

	/* Warm-up: a deal for the other BENCH_WARM_SUBS subscribers proves the mirror
	 * loaded and the groups made, and opens the gateway connections. */
	snprintf(deal_id, sizeof(deal_id), "warm-%d", (int)getpid());
	if (it_publish(rc, it_deal(deal_id, BENCH_WARM_CATEGORY, 600)) < 0 ||
	    wait_log(rc, BENCH_WARM_SUBS, bench_now_ms() + 20000, &own) < BENCH_WARM_SUBS) {
		fprintf(stderr, "bench_deliver: the warm-up deal was not delivered within "
		    "20 s (see %s and %s)\n", nt.proc.log, gw.proc.log);
		goto end;
	}
	if (wait_acked(rc, &own) < 0) {
		fprintf(stderr, "bench_deliver: the warm-up jobs were not acked\n");
		goto end;
	}
	it_sleep_ms(300);
	if ((base = it_int(rc, "XLEN pushes:log")) < 0 ||
	    (sent0 = bench_hash_int(rc, "stats", "outcome:sent")) < 0) {
		fprintf(stderr, "bench_deliver: cannot read pushes:log or stats\n");
		goto end;
	}

	mem0 = mem_used(rc);
	cpu0 = proc_cpu_s(nt.proc.pid);
	/* The measurement: every command from here to the second snapshot is counted
	 * in own, by name. */
	memset(&own, 0, sizeof(own));
	if (cmdstats_get(rc, &before) < 0) {
		fprintf(stderr, "bench_deliver: INFO commandstats failed\n");
		goto end;
	}
	own.info++;
	snprintf(deal_id, sizeof(deal_id), "bench-%d", (int)getpid());
	t0 = bench_now_ms();
	r = redisCommand(rc, "XADD deals * deal %s", it_deal(deal_id, BENCH_CATEGORY, 600));
	own.xadd++;
	if (r == NULL || r->type != REDIS_REPLY_STRING || (deal_ms = bench_entry_ms(r->str)) < 0) {
		fprintf(stderr, "bench_deliver: XADD deals failed\n");
		goto end;
	}
	freeReplyObject(r);
	r = NULL;
	len = wait_log(rc, base + n, t0 + BENCH_DEADLINE_MS, &own);
	t1 = bench_now_ms();
	if (len < base + n) {
		fprintf(stderr, "bench_deliver: %lld of %ld pushes recorded within %d s "
		    "(see %s)\n", len < 0 ? -1 : len - base, n, BENCH_DEADLINE_MS / 1000,
		    nt.proc.log);
		rv = 1;
		goto end;
	}
	if (wait_acked(rc, &own) < 0) {
		fprintf(stderr, "bench_deliver: jobs still pending 2 s after the last "
		    "record\n");
		rv = 1;
		goto end;
	}
	cpu1 = proc_cpu_s(nt.proc.pid);
	if (cmdstats_get(rc, &after) < 0) {
		fprintf(stderr, "bench_deliver: INFO commandstats failed\n");
		goto end;
	}

	/* Not counted: after the second snapshot. */
	last_ms = log_last_ms(rc);
	sent = bench_hash_int(rc, "stats", "outcome:sent") - sent0;
	{
		char key[96];

		snprintf(key, sizeof(key), "deal:%s", deal_id);
		jobs = bench_hash_int(rc, key, "jobs");
	}
	if (sent != n || jobs <= 0) {
		fprintf(stderr, "bench_deliver: %lld of %ld pushes were sent (%lld jobs); "
		    "see the pushes:log outcomes and %s\n", sent, n, jobs, nt.proc.log);
		rv = 1;
		goto end;
	}
	nd = cmdstats_delta(&before, &after, &own, jobs, delta, &total, &top);
	/* What the deal left in Redis once delivered: after a pause longer than the
	 * notifier's once-a-second trim of acked jobs from "pushes". */
	it_sleep_ms(1500);
	mem1 = mem_used(rc);
	km[0] = key_mem(rc, "pushline:", deal_id);
	km[1] = key_mem(rc, "pushes", "");
	km[2] = key_mem(rc, "pushes:log", "");
	km[3] = key_mem(rc, "push:", deal_id);
	km[4] = key_mem(rc, "pushinfo:", deal_id);

	/* The baseline: the notifier stopped, wrk with one of its requests. */
	nt_up = 0;
	if (it_stop(&nt.proc, SIGTERM, 5000) != 0)
		fprintf(stderr, "bench_deliver: the notifier did not exit cleanly (see %s)\n",
		    nt.proc.log);
	if ((wrk_rps = bench_wrk_gwsim(&gw, "bench_deliver", &body_len)) < 0)
		goto end;

	elapsed_s = (double)(t1 - t0) / 1000.0;
	pps = (double)n / elapsed_s;
	cmds = (double)total / (double)n;
	top_cmds = (double)top / (double)n;
	printf("deliver_throughput: one deal to %ld subscribers (sms, job_size 100, "
	    "deliver.batch 64, max_in_flight 256, wait_replicas %ld), gwsim without "
	    "faults\n", n, wait);
	printf("  ours: XADD -> %ld entries on pushes:log (XLEN every %d ms): %.3f s, "
	    "%.0f pushes/s\n", n, BENCH_POLL_MS, elapsed_s, pps);
	if (last_ms >= deal_ms)
		printf("  (Redis clock: deal entry id -> last pushes:log entry id: %lld ms)\n",
		    last_ms - deal_ms);
	printf("  wrk: -t%s -c%s -d%ss, the same request (%zu-byte form body): "
	    "%.0f requests/s\n", BENCH_WRK_THREADS, BENCH_WRK_CONNS, BENCH_WRK_SECONDS,
	    body_len, wrk_rps);
	printf("  Redis calls by the notifier (INFO commandstats, ours subtracted: "
	    "info %lld, xadd %lld, xlen %lld, xpending %lld):\n", own.info, own.xadd,
	    own.xlen, own.xpending);
	printf("    %-18s %9s %9s  %s\n", "command", "calls", "per push", "from");
	for (i = 0; i < nd; i++)
		printf("    %-18s %9lld %9.4f  %s\n", delta[i].name, delta[i].calls,
		    (double)delta[i].calls / (double)n,
		    strcmp(delta[i].name, "xack") == 0 ? "notifier (1 per job) + scripts" :
		    strcmp(delta[i].name, "hmget") == 0 ? "scripts (one per EVALSHA) + notifier" :
		    is_script_cmd(delta[i].name) ? "scripts" : "notifier");
	printf("    all calls %lld = %.4f per push; top-level (round trips) %lld = %.4f "
	    "per push; inside scripts %lld\n", total, cmds, top, top_cmds, total - top);
	if (cpu0 >= 0 && cpu1 >= cpu0)
		printf("  notifier CPU (user + system, /proc): %.1f us per push, %.2f s in all "
		    "(less noisy than the rate on a shared machine)\n",
		    (cpu1 - cpu0) * 1e6 / (double)n, cpu1 - cpu0);
	printf("ratio = ours/wrk, higher is better (goal >= %.1f)\n", BENCH_GOAL_RATIO);
	printf("BENCH name=deliver_throughput pushes_per_s=%.0f wrk_rps=%.0f ratio=%.3f\n",
	    pps, wrk_rps, pps / wrk_rps);
	printf("redis_cmds_per_push: cmds = top-level commands the notifier sends per push "
	    "(its round trips: every command it sends itself, e.g. EVALSHA, XREADGROUP, "
	    "XREAD and one XACK per job); script_cmds = "
	    "commands run inside Lua scripts per push (counted by Redis under their own "
	    "names too), reported for honesty; the goal (< %.1f) is read against cmds; "
	    "ratio = cmds/%.1f, lower is better\n", BENCH_GOAL_CMDS, BENCH_GOAL_CMDS);
	printf("BENCH name=redis_cmds_per_push cmds=%.3f script_cmds=%.3f ratio=%.3f\n",
	    top_cmds, (double)(total - top) / (double)n, top_cmds / BENCH_GOAL_CMDS);
	printf("redis_bytes_per_push: used_memory after delivery (acked, 1.5 s later) "
	    "minus before the deal, over %ld pushes; MEMORY USAGE per push of pushline:<deal> "
	    "%.0f, pushes %.0f, pushes:log %.0f (whole streams), push:<deal> %.0f, "
	    "pushinfo:<deal> %.0f\n", n, (double)km[0] / (double)n, (double)km[1] / (double)n,
	    (double)km[2] / (double)n, (double)km[3] / (double)n, (double)km[4] / (double)n);
	printf("BENCH name=redis_bytes_per_push delivered=%.0f\n",
	    mem0 > 0 && mem1 > 0 ? (double)(mem1 - mem0) / (double)n : -1.0);
	rv = 0;

end:
	freeReplyObject(r);
	if (nt_up)
		it_stop(&nt.proc, SIGTERM, 5000);
	if (gw_up)
		it_stop(&gw.proc, SIGTERM, 2000);
	it_sentinel_stop(&replica);
	if (rc != NULL)
		redisFree(rc);
	free(warm);
	free(subs);
	return rv;
}
