/*
 * bench_million.c: the whole pipeline at a million realistic subscribers (issue 13
 * item 6, `make bench`; BENCH_MILLION_SUBS changes the count).
 *
 * Subscribers from subgen.h (seed BENCH_MILLION_SEED, default 1) are imported with
 * `dealpushctl subscribers import`; the notifier runs the example rules with click
 * links on and the default [ingest], [deliver] and [redis] settings, its gateways
 * (gwsim, sms and dm) with their limits lifted as in bench_deliver. Measured: the
 * import rate, Redis used_memory per subscriber, notifier RSS per subscriber (less
 * that of a notifier on an empty store), then after a warm-up deal to 20 probe
 * subscribers, one broad deal (the category nearest 30% of the pushes): XADD ->
 * "planned" in deal:<id>, Redis memory per planned push, XADD -> every push ended
 * (on pushes:log), then kill -9 and a restart: time to /healthz ready and to a new
 * small deal's first request at gwsim; last, the wrk baseline of
 * deliver_throughput. Every phase has a cap: a phase that does not finish prints
 * "timeout" in its place and the bench exits 1. Goals are reported, never asserted.
 * BENCH_MILLION_CONFIG (config lines appended last, so they win) is for experiments
 * only; the bench then says the config is not the default.
 * Test code: it blocks, sleeps and forks.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "benchlib.h"
#include "config.h"
#include "itest.h"
#include "subgen.h"

#define M_SUBS_DEFAULT 1000000L
#define M_SUBS_MIN 1000L
#define M_SEED_DEFAULT 1L
#define M_SHARE 0.30             /* the broad deal's share of all pushes */
#define M_PROBES 20              /* subscribers of the small deal after the restart */
#define M_PROBE_CATEGORY "bench-probe"
#define M_POLL_MS 20
#define M_IMPORT_CAP_S "240"
#define M_EMPTY_CAP_MS 30000
#define M_READY_CAP_MS 90000
#define M_PLAN_CAP_MS 30000     /* six times the goal */
#define M_DELIVER_CAP_MS 120000  /* from the XADD, planning included */
#define M_RESTART_CAP_MS 60000
#define M_WARM_CAP_MS 20000
#define M_CLOCK_SHIFT_S (3 * 3600)   /* 20:00 UTC: 10:00-15:00 in all 7 zones */
#define M_DEAL_TTL_S 7200
#define M_FLUSH_CAP_S 120
#define M_CMD_TIMEOUT_S 30        /* Redis is slow to answer while it holds 1M */

/* The notifier's settings after the harness's (a later key wins), then the
 * defaults of every key the harness sets in [redis], [ingest] and [deliver]. The
 * first line still belongs to the harness's "[gateway twilio]". */
static const char m_config_fmt[] =
    "max_in_flight = 256\n"
    "[gateway x]\nkind = x-dm\nchannel = dm\nbase_url = http://127.0.0.1:%d\n"
    "secret_env = DP_TEST_X_TOKEN\nmax_in_flight = 256\n"
    "[http]\nport = 0\nport_file = %s\npublic_url = https://click.example/\n"
    "click_secret_file = %s\n"
    "[rules]\ndir = %s/rules/examples\n"
    "[notifier]\nlog_level = warn\nclock_offset_s = %lld\n%s";

struct bench {
	redisContext *rc;
	int port;
	struct it_gwsim gw;
	struct it_notifier nt;
	int gw_up, nt_up, http_port;
	char portfile[512], secret[512];
	char defaults[512];   /* [redis], [ingest], [deliver] keys at their defaults */
};

/*
 * The notifier's own defaults (config_load of an empty file) of the keys the test
 * harness sets to other values, as config lines into b->defaults: the bench runs
 * what an operator who sets nothing runs, whatever the defaults become. 0 or -1.
 */
static int
load_defaults(struct bench *b)
{
	char path[512];
	struct config *c;
	FILE *f;
	int w;

	it_path(path, sizeof(path), "empty", ".conf");
	if ((f = fopen(path, "w")) == NULL || fclose(f) != 0 ||
	    (c = config_load(path, stderr)) == NULL)
		return -1;
	w = snprintf(b->defaults, sizeof(b->defaults),
	    "[redis]\nconnect_timeout_ms = %ld\ncommand_timeout_ms = %ld\n"
	    "reconnect_max_ms = %ld\n[ingest]\nblock_ms = %ld\n"
	    "[deliver]\nretry_base_ms = %ld\nretry_max_ms = %ld\n",
	    c->redis_connect_timeout_ms, c->redis_command_timeout_ms,
	    c->redis_reconnect_max_ms, c->block_ms, c->retry_base_ms, c->retry_max_ms);
	config_free(c);
	return w > 0 && (size_t)w < sizeof(b->defaults) ? 0 : -1;
}

/*
 * FLUSHALL with room to finish: a million subscribers are about 3M keys and 1.1 GB,
 * which take Redis seconds to free, longer than the harness's 2 s command timeout.
 * Left to time out, the flush goes on inside Redis and the next command (here, or
 * the next bench's) times out behind it. 0 or -1.
 */
static int
flush_all(redisContext *rc)
{
	struct timeval slow = { M_FLUSH_CAP_S, 0 }, normal = { M_CMD_TIMEOUT_S, 0 };
	redisReply *r;
	int ok;

	redisSetTimeout(rc, slow);
	r = redisCommand(rc, "FLUSHALL");
	ok = r != NULL && r->type == REDIS_REPLY_STATUS;
	freeReplyObject(r);
	redisSetTimeout(rc, normal);
	return ok ? 0 : -1;
}

/* A number field of INFO <section> ("used_memory", "used_cpu_user" ...), or -1. */
static double
info_num(redisContext *rc, const char *section, const char *field)
{
	redisReply *r = redisCommand(rc, "INFO %s", section);
	char key[64], *p, *end;
	double v = -1;

	snprintf(key, sizeof(key), "\n%s:", field);
	if (r != NULL && r->type == REDIS_REPLY_STRING &&
	    (p = strstr(r->str, key)) != NULL) {
		p += strlen(key);
		errno = 0;
		v = strtod(p, &end);
		if (errno != 0 || end == p)
			v = -1;
	}
	freeReplyObject(r);
	return v;
}

static double
redis_cpu_s(redisContext *rc)
{
	double u = info_num(rc, "cpu", "used_cpu_user"), s = info_num(rc, "cpu",
	    "used_cpu_sys");

	return u < 0 || s < 0 ? -1 : u + s;
}

/*
 * The pushes ended so far: the sum of the outcome:* counters in stats (each final
 * outcome counts once; an unknown resolved as sent moves its count). Unlike XLEN
 * pushes:log (MAXLEN ~ 1,000,000) it holds at any size. With summary, also the
 * counters as "sent 1234, daily_cap 5". -1 on error.
 */
static long long
outcomes_ended(redisContext *rc, char *summary, size_t size)
{
	redisReply *r = redisCommand(rc, "HGETALL stats");
	long long sum = 0, v;
	size_t i, off = 0;
	char *end;

	if (summary != NULL && size > 0)
		summary[0] = '\0';
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(r);
		return -1;
	}
	for (i = 0; i + 1 < r->elements; i += 2) {
		const char *k = r->element[i]->str, *val = r->element[i + 1]->str;

		if (k == NULL || val == NULL || strncmp(k, "outcome:", 8) != 0)
			continue;
		errno = 0;
		v = strtoll(val, &end, 10);
		if (errno != 0 || end == val || *end != '\0')
			continue;
		sum += v;
		if (summary != NULL && v != 0 && off < size) {
			int w = snprintf(summary + off, size - off, "%s%s %lld", off ? ", " : "",
			    k + 8, v);

			if (w > 0)
				off += (size_t)w < size - off ? (size_t)w : size - off - 1;
		}
	}
	freeReplyObject(r);
	return sum;
}

/* 1 when the notifier still runs; 0 (and nt_up cleared) when it exited. */
static int
notifier_alive(struct bench *b)
{
	int status;

	if (!b->nt_up)
		return 0;
	if (waitpid(b->nt.proc.pid, &status, WNOHANG) == b->nt.proc.pid) {
		b->nt.proc.pid = 0;
		b->nt_up = 0;
		return 0;
	}
	return 1;
}

/* Starts the notifier (consumer "million") with its HTTP port in a new port file. */
static int
notifier_start(struct bench *b)
{
	char extra[8192];
	const char *root = getenv("DP_ROOT"), *more = getenv("BENCH_MILLION_CONFIG");
	int w;

	it_path(b->portfile, sizeof(b->portfile), "http", ".port");
	b->http_port = 0;
	w = snprintf(extra, sizeof(extra), m_config_fmt, b->gw.port, b->portfile,
	    b->secret, root != NULL && *root != '\0' ? root : ".",
	    it_clock_offset() + M_CLOCK_SHIFT_S, b->defaults);
	if (w < 0 || (size_t)w >= sizeof(extra) || (more != NULL &&
	    snprintf(extra + w, sizeof(extra) - (size_t)w, "%s\n", more) >=
	    (int)(sizeof(extra) - (size_t)w)))
		return -1;
	if (it_notifier_start(&b->nt, b->port, b->gw.port, "million", extra) < 0)
		return -1;
	b->nt_up = 1;
	return 0;
}

/* One look at readiness: the port file, then GET /healthz. 1 ready, 0 not yet, -1
 * the notifier exited. */
static int
notifier_ready(struct bench *b)
{
	char body[512];
	FILE *f;

	if (!notifier_alive(b))
		return -1;
	if (b->http_port == 0 && (f = fopen(b->portfile, "r")) != NULL) {
		if (fscanf(f, "%d", &b->http_port) != 1)
			b->http_port = 0;
		fclose(f);
	}
	return b->http_port > 0 && it_http_get(b->http_port, "/healthz", body,
	    sizeof(body)) == 200;
}

/* Waits for readiness until deadline (monotonic ms): 1 ready, 0 timeout, -1 died. */
static int
wait_ready(struct bench *b, long long deadline)
{
	int r;

	while ((r = notifier_ready(b)) == 0 && bench_now_ms() < deadline)
		it_sleep_ms(M_POLL_MS);
	return r;
}

/* Scans gwsim's log from *off for a line holding needle; advances *off past whole
 * lines read. 1 found, 0 not yet. */
static int
gwsim_log_has(const struct it_gwsim *g, long *off, const char *needle)
{
	FILE *f = fopen(g->logfile, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int found = 0;

	if (f == NULL)
		return 0;
	if (fseek(f, *off, SEEK_SET) == 0)
		while (!found && (n = getline(&line, &cap, f)) > 0) {
			if (line[n - 1] != '\n')
				break;   /* being written: read it whole next time */
			*off += (long)n;
			found = strstr(line, needle) != NULL;
		}
	free(line);
	fclose(f);
	return found;
}

static long
gwsim_log_size(const struct it_gwsim *g)
{
	struct stat st;

	return stat(g->logfile, &st) == 0 ? (long)st.st_size : 0;
}

/* A deal of this category, without brand, code or keyword, at $49 (50.5% off), so
 * that it reaches exactly the subscribers of the category (every max_price is at
 * least 100 and every min_discount_pct at most 40). Static buffer. */
static const char *
deal_json(const char *id, const char *title, const char *category)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf),
	    "{\"id\":\"%s\",\"title\":\"%s\",\"category\":\"%s\",\"price\":49.0,"
	    "\"list_price\":99.0,\"currency\":\"USD\",\"url\":\"https://shop.example/d/%s\","
	    "\"expires_at\":%lld}", id, title, category, id,
	    it_now() + M_CLOCK_SHIFT_S + M_DEAL_TTL_S);
	return buf;
}

/* Writes n generated subscribers to path; stats into st. Seconds, or -1. */
static double
generate(const char *path, unsigned long long seed, long n, struct subgen_stats *st)
{
	static char buf[1 << 20];
	long long t = bench_now_ms();
	FILE *f = fopen(path, "w");
	int rc;

	if (f == NULL)
		return -1;
	setvbuf(f, buf, _IOFBF, sizeof(buf));
	rc = subgen_write(f, seed, 0, n, st);
	if (fclose(f) != 0 || rc < 0)
		return -1;
	return (double)(bench_now_ms() - t) / 1000.0;
}

/* dealpushctl subscribers import path, capped by timeout(1). Seconds, or -1. */
static double
import_file(int port, const char *path)
{
	char bin[512], addr[64], out[8192];
	const char *argv[] = { "/usr/bin/timeout", M_IMPORT_CAP_S, bin, "--redis", addr,
	    "subscribers", "import", path, NULL };
	long long t = bench_now_ms();
	int rc;

	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	rc = it_run(argv, out, sizeof(out));
	if (rc != 0) {
		fprintf(stderr, "bench_million: import exited %d%s: %.2000s\n", rc,
		    rc == 124 ? " (over " M_IMPORT_CAP_S " s)" : "", out);
		return -1;
	}
	return (double)(bench_now_ms() - t) / 1000.0;
}

/* The figures; a negative value prints as "timeout" (or "na" where said). */
struct figures {
	long n, probes, expected, recipients;
	double gen_s, import_s, start_s, plan_s, deliver_s, pushes_per_s, wrk_rps;
	double redis_per_sub, rss_per_sub, redis_per_push, redis_per_push_done;
	double plan_rss_per_recipient, redis_cpu_us, restart_healthz_s, restart_push_s;
	double elapsed_s;     /* XADD -> the end of the delivery wait */
	long long recorded;
	char outcomes[256];   /* the stats outcome counters at the end of delivery */
};

static const char *
fmt(char *buf, size_t size, const char *f, double v)
{
	if (v < 0)
		snprintf(buf, size, "timeout");
	else
		snprintf(buf, size, f, v);
	return buf;
}

/* As fmt, "none" for a figure with nothing to measure (no push ended, no request
 * of the notifier at gwsim for wrk to replay). */
static const char *
fmt_none(char *buf, size_t size, const char *f, double v)
{
	if (v < 0)
		snprintf(buf, size, "none");
	else
		snprintf(buf, size, f, v);
	return buf;
}

static void
print_figures(const struct figures *m, const char *category)
{
	char a[32], b[32], c[32], d[32];
	double ready = m->restart_healthz_s < 0 || m->restart_push_s < 0 ? -1 :
	    m->restart_healthz_s > m->restart_push_s ? m->restart_healthz_s :
	    m->restart_push_s;
	double ratio = m->pushes_per_s >= 0 && m->wrk_rps > 0 ? m->pushes_per_s / m->wrk_rps
	    : -1;

	printf("million_broad: %ld generated subscribers (+%ld probes); one deal for "
	    "category '%s' (expected %ld pushes)\n", m->n, m->probes, category, m->expected);
	printf("  generate %.1f s; import %s = %s subscribers/s (dealpushctl subscribers "
	    "import)\n", m->gen_s, fmt(a, sizeof(a), "%.1f s", m->import_s),
	    fmt(b, sizeof(b), "%.0f", m->import_s > 0 ? (double)m->n / m->import_s : -1));
	printf("  start -> /healthz ready %s; RSS %s (goal <= 400); Redis %s "
	    "(goal <= 700)\n", fmt(a, sizeof(a), "%.1f s", m->start_s),
	    fmt(b, sizeof(b), "%.0f B/sub", m->rss_per_sub), fmt(c, sizeof(c),
	    "%.0f B/sub", m->redis_per_sub));
	printf("  plan %s (goal < 5 s); Redis %s right after planning (goal <= 500), %s "
	    "once delivered; RSS peak %s over the RSS before the deal (goal <= 250)\n",
	    fmt(a, sizeof(a), "%.2f s", m->plan_s), fmt(b, sizeof(b), "%.0f B/push",
	    m->redis_per_push), fmt(c, sizeof(c), "%.0f B/push", m->redis_per_push_done),
	    fmt(d, sizeof(d), "%.0f B/recipient", m->plan_rss_per_recipient));
	printf("  %lld of %ld%s pushes ended (pushes:log) %.1f s after the XADD%s: %s "
	    "pushes/s; Redis CPU %s\n", m->recorded,
	    m->recipients > 0 ? m->recipients : m->expected,
	    m->recipients > 0 ? "" : " expected", m->elapsed_s,
	    m->deliver_s < 0 ? " (not finished: the rate reached)" : "",
	    fmt(a, sizeof(a), "%.0f", m->pushes_per_s),
	    fmt_none(b, sizeof(b), "%.1f us/push", m->redis_cpu_us));
	printf("  outcomes of every deal so far (stats): %s\n",
	    m->outcomes[0] ? m->outcomes : "none");
	printf("  kill -9 -> /healthz ready %s, -> first push of a new deal at gwsim %s "
	    "(goal < 10 s)\n", fmt(a, sizeof(a), "%.1f s", m->restart_healthz_s),
	    fmt(b, sizeof(b), "%.1f s", m->restart_push_s));
	printf("  wrk baseline (as deliver_throughput) %s requests/s\n",
	    fmt_none(a, sizeof(a), "%.0f", m->wrk_rps));
	{
		char v[14][32];

		if (m->recipients > 0)
			snprintf(v[11], 32, "%ld", m->recipients);
		else
			snprintf(v[11], 32, "timeout");
		printf("BENCH name=million_broad subscribers=%ld recipients=%s plan_s=%s "
		    "pushes_per_s=%s rss_bytes_per_sub=%s redis_bytes_per_sub=%s "
		    "redis_bytes_per_push=%s restart_ready_s=%s import_per_s=%s "
		    "start_ready_s=%s restart_healthz_s=%s restart_push_s=%s "
		    "recipients_expected=%ld redis_bytes_per_push_done=%s "
		    "redis_cpu_us_per_push=%s ratio=%s\n",
		    m->n, v[11], fmt(v[0], 32, "%.2f", m->plan_s),
		    fmt(v[1], 32, m->deliver_s < 0 ? "%.0f_at_cap" : "%.0f", m->pushes_per_s),
		    fmt(v[2], 32, "%.0f", m->rss_per_sub),
		    fmt(v[3], 32, "%.0f", m->redis_per_sub),
		    fmt(v[4], 32, "%.0f", m->redis_per_push),
		    fmt(v[5], 32, "%.1f", ready),
		    fmt(v[6], 32, "%.0f", m->import_s > 0 ? (double)m->n / m->import_s : -1),
		    fmt(v[7], 32, "%.1f", m->start_s),
		    fmt(v[8], 32, "%.1f", m->restart_healthz_s),
		    fmt(v[9], 32, "%.1f", m->restart_push_s), m->expected,
		    fmt(v[12], 32, "%.0f", m->redis_per_push_done),
		    fmt_none(v[13], 32, "%.1f", m->redis_cpu_us),
		    fmt_none(v[10], 32, "%.3f", ratio));
	}
}

/* Phase: a notifier on the store as it is now (empty); its RSS once ready, or -1. */
static long long
rss_empty(struct bench *b)
{
	long long rss = -1;

	if (notifier_start(b) < 0 || wait_ready(b, bench_now_ms() + M_EMPTY_CAP_MS) != 1) {
		fprintf(stderr, "bench_million: a notifier on the empty store was not ready "
		    "within %d s (see %s)\n", M_EMPTY_CAP_MS / 1000, b->nt.proc.log);
	} else {
		rss = bench_proc_bytes(b->nt.proc.pid, "VmRSS");
	}
	if (b->nt_up)
		it_stop(&b->nt.proc, SIGTERM, 5000);
	b->nt_up = 0;
	return rss;
}

/*
 * A small deal to the probe subscribers before the broad one: proves the path to
 * gwsim open (so that a broad deal that never plans is not mistaken for a broken
 * setup) and leaves a request of the notifier's for the wrk baseline whatever
 * happens next. 0 when all M_PROBES pushes ended within the cap, else -1.
 */
static int
warm_up(struct bench *b)
{
	char id[64];
	long long base = outcomes_ended(b->rc, NULL, 0), t0 = bench_now_ms(), n = -1;

	snprintf(id, sizeof(id), "warm-%d", (int)getpid());
	if (base < 0 || it_publish(b->rc, deal_json(id, "Warm-up deal",
	    M_PROBE_CATEGORY)) < 0)
		return -1;
	while (bench_now_ms() - t0 < M_WARM_CAP_MS && notifier_alive(b) &&
	    (n = outcomes_ended(b->rc, NULL, 0) - base) < M_PROBES)
		it_sleep_ms(M_POLL_MS);
	return n >= M_PROBES ? 0 : -1;
}

/* Resets the process's peak RSS (VmHWM) to its RSS now. 0, or -1 (kernel without it). */
static int
reset_peak(pid_t pid)
{
	char path[64];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "/proc/%d/clear_refs", (int)pid);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	ok = fputs("5", f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Phase: the broad deal. Fills plan_s, recipients, redis_per_push, the delivery
 * figures; 0 when it was planned and delivered within the caps, else 1. */
static int
broad_deal(struct bench *b, const char *category, long long rss_ready,
    struct figures *m)
{
	char id[64], key[96];
	long long t0, now, base, len = 0, planned = 0, hwm;
	double mem0, mem1, cpu0, cpu1;
	redisReply *r;

	snprintf(id, sizeof(id), "broad-%d", (int)getpid());
	/* The peak from here on only: the load's own transient peak, before ready, is
	 * not the deal's (writing 5 to clear_refs resets VmHWM to the current RSS). */
	if (reset_peak(b->nt.proc.pid) == 0)
		rss_ready = bench_proc_bytes(b->nt.proc.pid, "VmRSS");
	if ((base = outcomes_ended(b->rc, NULL, 0)) < 0 ||
	    (mem0 = info_num(b->rc, "memory", "used_memory")) < 0 ||
	    (cpu0 = redis_cpu_s(b->rc)) < 0)
		return 1;
	t0 = bench_now_ms();
	r = redisCommand(b->rc, "XADD deals * deal %s",
	    deal_json(id, "Half price week: spring sale", category));
	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "bench_million: XADD deals failed\n");
		freeReplyObject(r);
		return 1;
	}
	freeReplyObject(r);

	/* plan.lua's last chunk sets "planned" (the entry id) in deal:<id>. */
	snprintf(key, sizeof(key), "deal:%s", id);
	for (;;) {
		r = redisCommand(b->rc, "HEXISTS %s planned", key);
		planned = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
		freeReplyObject(r);
		now = bench_now_ms();
		if (planned != 0 || now - t0 >= M_PLAN_CAP_MS || !notifier_alive(b))
			break;
		it_sleep_ms(M_POLL_MS);
	}
	if (planned == 1) {
		m->plan_s = (double)(now - t0) / 1000.0;
		mem1 = info_num(b->rc, "memory", "used_memory");
		snprintf(key, sizeof(key), "report:deal:%s", id);
		m->recipients = (long)bench_hash_int(b->rc, key, "planned");
		if (m->recipients > 0 && mem1 >= 0)
			m->redis_per_push = (mem1 - mem0) / (double)m->recipients;
		hwm = bench_proc_bytes(b->nt.proc.pid, "VmHWM");
		if (m->recipients > 0 && hwm > 0 && rss_ready > 0)
			m->plan_rss_per_recipient = (double)(hwm - rss_ready) /
			    (double)m->recipients;
		printf("  planned in %.2f s: %ld recipients\n", m->plan_s, m->recipients);
	} else {
		fprintf(stderr, "bench_million: the deal was not planned within %d s%s (see "
		    "%s)\n", M_PLAN_CAP_MS / 1000, b->nt_up ? "" : ": the notifier exited",
		    b->nt.proc.log);
	}

	/* Every push ended (on pushes:log), or the rate reached at the cap; when the
	 * deal was not planned there is no end to wait for: the rate reached so far. */
	for (;;) {
		len = outcomes_ended(b->rc, NULL, 0) - base;
		now = bench_now_ms();
		if (planned != 1 || (m->recipients > 0 && len >= m->recipients) ||
		    now - t0 >= M_DELIVER_CAP_MS || !notifier_alive(b))
			break;
		it_sleep_ms(M_POLL_MS);
	}
	m->recorded = len;
	m->elapsed_s = (double)(now - t0) / 1000.0;
	outcomes_ended(b->rc, m->outcomes, sizeof(m->outcomes));
	if ((cpu1 = redis_cpu_s(b->rc)) >= 0 && len > 0)
		m->redis_cpu_us = (cpu1 - cpu0) * 1e6 / (double)len;
	if (len >= 0)
		m->pushes_per_s = (double)len * 1000.0 / (double)(now - t0);
	if (m->recipients > 0 && len >= m->recipients) {
		m->deliver_s = (double)(now - t0) / 1000.0;
		if ((mem1 = info_num(b->rc, "memory", "used_memory")) >= 0)
			m->redis_per_push_done = (mem1 - mem0) / (double)m->recipients;
		return planned == 1 ? 0 : 1;
	}
	fprintf(stderr, "bench_million: %lld of %ld%s pushes ended within %.0f s of the "
	    "XADD\n", len, m->recipients > 0 ? m->recipients : m->expected,
	    m->recipients > 0 ? "" : " expected", (double)(now - t0) / 1000.0);
	return 1;
}

/* Phase: kill -9, a small deal published, a restart. Fills restart_healthz_s and
 * restart_push_s; 0 when both came within the cap, else 1. */
static int
restart(struct bench *b, struct figures *m)
{
	char id[64], title[96];
	long off;
	long long t0, deadline;
	int ready = 0, pushed = 0, r;

	it_stop(&b->nt.proc, SIGKILL, 5000);
	b->nt_up = 0;
	off = gwsim_log_size(&b->gw);
	snprintf(id, sizeof(id), "probe-%d", (int)getpid());
	snprintf(title, sizeof(title), "Restart probe %d", (int)getpid());
	if (it_publish(b->rc, deal_json(id, title, M_PROBE_CATEGORY)) < 0 ||
	    notifier_start(b) < 0) {
		fprintf(stderr, "bench_million: cannot publish the probe or restart\n");
		return 1;
	}
	t0 = bench_now_ms();
	deadline = t0 + M_RESTART_CAP_MS;
	while ((!ready || !pushed) && bench_now_ms() < deadline) {
		if (!ready && (r = notifier_ready(b)) != 0) {
			if (r < 0)
				break;
			ready = 1;
			m->restart_healthz_s = (double)(bench_now_ms() - t0) / 1000.0;
		}
		if (!pushed && gwsim_log_has(&b->gw, &off, title)) {
			pushed = 1;
			m->restart_push_s = (double)(bench_now_ms() - t0) / 1000.0;
		}
		it_sleep_ms(M_POLL_MS);
	}
	if (ready && pushed)
		return 0;
	fprintf(stderr, "bench_million: after the restart, %s%s%s within %d s (see %s)\n",
	    ready ? "" : "/healthz not ready", !ready && !pushed ? " and " : "",
	    pushed ? "" : "no push of the new deal at gwsim", M_RESTART_CAP_MS / 1000,
	    b->nt.proc.log);
	return 1;
}

int
main(void)
{
	static struct subgen_stats st;
	struct bench b;
	struct figures m;
	char subs_path[512], *probes = NULL;
	long n = bench_env_long("BENCH_MILLION_SUBS", M_SUBS_DEFAULT, M_SUBS_MIN,
	    SUBGEN_MAX - M_PROBES);
	long seed = bench_env_long("BENCH_MILLION_SEED", M_SEED_DEFAULT, 0, 1L << 30);
	long long rss0, rss1, t;
	double mem_before, mem_after;
	int i, best = 0, rv = 2, late = 0;
	FILE *f;

	memset(&b, 0, sizeof(b));
	memset(&m, 0, sizeof(m));
	m.plan_s = m.deliver_s = m.pushes_per_s = m.wrk_rps = m.redis_per_push = -1;
	m.redis_per_push_done = m.plan_rss_per_recipient = m.redis_cpu_us = -1;
	m.restart_healthz_s = m.restart_push_s = m.rss_per_sub = m.redis_per_sub = -1;
	m.import_s = m.start_s = -1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (n < 0 || seed < 0) {
		fprintf(stderr, "bench_million: BENCH_MILLION_SUBS must be %ld..%ld and "
		    "BENCH_MILLION_SEED a whole number\n", M_SUBS_MIN, SUBGEN_MAX - M_PROBES);
		return 2;
	}
	m.n = n;
	m.probes = M_PROBES;
	if (getenv("BENCH_MILLION_CONFIG") != NULL)
		printf("  NOT THE DEFAULT CONFIG: BENCH_MILLION_CONFIG adds:\n%s\n",
		    getenv("BENCH_MILLION_CONFIG"));

	/* Setup: empty redis, gwsim, the click secret, a notifier on the empty store. */
	b.port = it_redis_port();
	b.rc = it_redis_connect(b.port);
	if (flush_all(b.rc) < 0) {
		fprintf(stderr, "bench_million: FLUSHALL failed\n");
		goto end;
	}
	if (it_gwsim_start(&b.gw, NULL) < 0) {
		fprintf(stderr, "bench_million: gwsim did not start (see %s)\n",
		    b.gw.proc.log);
		goto end;
	}
	b.gw_up = 1;
	setenv("DP_TEST_X_TOKEN", "test-user-token", 1);
	it_path(b.secret, sizeof(b.secret), "click", ".secret");
	if ((f = fopen(b.secret, "w")) == NULL ||
	    fputs("bench-million-click-secret-0123456789\n", f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "bench_million: cannot write %s\n", b.secret);
		goto end;
	}
	if (load_defaults(&b) < 0) {
		fprintf(stderr, "bench_million: cannot read the notifier's defaults\n");
		goto end;
	}
	if ((rss0 = rss_empty(&b)) < 0)
		goto end;
	printf("  notifier on an empty store: RSS %lld bytes\n", rss0);

	/* The audience: M_PROBES probes (outside the measured memory), then N. */
	if ((probes = bench_subscribers_jsonl("probe", M_PROBES, 7999000,
	    M_PROBE_CATEGORY)) == NULL || it_import(b.port, probes) != 0) {
		fprintf(stderr, "bench_million: importing the probe subscribers failed\n");
		goto end;
	}
	it_path(subs_path, sizeof(subs_path), "subs", ".jsonl");
	if ((m.gen_s = generate(subs_path, (unsigned long long)seed, n, &st)) < 0) {
		fprintf(stderr, "bench_million: cannot write %s: %s\n", subs_path,
		    strerror(errno));
		goto end;
	}
	for (i = 1; i < SUBGEN_NCATS; i++)
		if (labs(st.cat_pushes[i] - (long)(M_SHARE * (double)st.pushes)) <
		    labs(st.cat_pushes[best] - (long)(M_SHARE * (double)st.pushes)))
			best = i;
	m.expected = st.cat_pushes[best];
	printf("  generated %ld subscribers (seed %ld) in %.1f s; deal category '%s': %ld "
	    "subscribers, %ld pushes\n", n, seed, m.gen_s, subgen_category(best),
	    st.cat_subs[best], m.expected);
	mem_before = info_num(b.rc, "memory", "used_memory");
	m.import_s = import_file(b.port, subs_path);
	unlink(subs_path);
	mem_after = info_num(b.rc, "memory", "used_memory");
	if (m.import_s < 0 || it_int(b.rc, "HLEN subscribers") != n + M_PROBES) {
		fprintf(stderr, "bench_million: the import did not store %ld subscribers\n",
		    n + M_PROBES);
		goto end;
	}
	if (mem_before >= 0 && mem_after >= 0)
		m.redis_per_sub = (mem_after - mem_before) / (double)n;
	printf("  imported in %.1f s (%.0f/s); Redis used_memory %.0f -> %.0f\n",
	    m.import_s, (double)n / m.import_s, mem_before, mem_after);

	/* The notifier on the full store. */
	t = bench_now_ms();
	if (notifier_start(&b) < 0 || wait_ready(&b, t + M_READY_CAP_MS) != 1) {
		fprintf(stderr, "bench_million: the notifier was not ready within %d s of "
		    "its start (see %s)\n", M_READY_CAP_MS / 1000, b.nt.proc.log);
		rv = 1;
		print_figures(&m, subgen_category(best));
		goto end;
	}
	m.start_s = (double)(bench_now_ms() - t) / 1000.0;
	rss1 = bench_proc_bytes(b.nt.proc.pid, "VmRSS");
	if (rss1 > 0)
		m.rss_per_sub = (double)(rss1 - rss0) / (double)n;
	printf("  notifier ready in %.1f s: RSS %lld bytes\n", m.start_s, rss1);

	if (warm_up(&b) < 0)
		fprintf(stderr, "bench_million: the warm-up deal to %d probes did not end "
		    "within %d s (see %s)\n", M_PROBES, M_WARM_CAP_MS / 1000, b.nt.proc.log);
	late |= broad_deal(&b, subgen_category(best), rss1, &m);
	late |= restart(&b, &m);

	/* The baseline: the notifier stopped, wrk with its last Twilio request. */
	if (b.nt_up)
		it_stop(&b.nt.proc, SIGTERM, 5000);
	b.nt_up = 0;
	m.wrk_rps = bench_wrk_gwsim(&b.gw, "bench_million", NULL);
	print_figures(&m, subgen_category(best));
	if (late) {
		printf("bench_million: a phase did not finish within its cap: its figure says "
		    "\"timeout\" (see the messages above and %s)\n", b.nt.proc.log);
		rv = 1;
	} else {
		rv = m.wrk_rps > 0 ? 0 : 2;
	}

end:
	if (b.nt_up)
		it_stop(&b.nt.proc, SIGTERM, 5000);
	if (b.gw_up)
		it_stop(&b.gw.proc, SIGTERM, 2000);
	/* Leave an empty Redis to the next bench (and the memory to the machine). */
	if (b.rc != NULL && flush_all(b.rc) < 0)
		fprintf(stderr, "bench_million: the last FLUSHALL failed\n");
	if (b.rc != NULL)
		redisFree(b.rc);
	free(probes);
	return rv;
}
