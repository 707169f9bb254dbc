/*
 * bench_e2e.c: end-to-end latency of a deal's first push (issue 4 item 7, `make bench`).
 *
 * Publishes deals one at a time on "deals" and measures, per deal, the time from the
 * stream entry id (when the deal landed, Redis' wall clock, ms) to the first request
 * for it arriving at gwsim (its ts_ms, wall clock, ms). Beside it, on the same redis in
 * the same run, the floor: a bare XADD -> XREADGROUP BLOCK round trip to a second
 * process, timed with a microsecond clock. Test code: it blocks, sleeps and forks.
 * Ends with one BENCH line; exits non-zero when the setup fails or fewer than 95% of
 * the deals reach the gateway within 2 s.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "itest.h"

#define BENCH_DEALS_DEFAULT 300
#define BENCH_DEALS_MIN 200         /* the minimum for a reported figure */
#define BENCH_DEALS_MAX 100000
#define BENCH_SUBSCRIBERS 100
#define BENCH_CATEGORIES 20
#define BENCH_WARMUP_DEALS 5
#define BENCH_FLOOR_WARMUP 10
#define BENCH_DEADLINE_MS 2000      /* a deal later than this counts as not delivered */
#define BENCH_MIN_DELIVERED 0.95
#define BENCH_FLOOR_STREAM "bench:floor"
#define BENCH_FLOOR_GROUP "floor"

static const char *const bench_categories[BENCH_CATEGORIES] = {
	"laptop", "phone", "tv", "camera", "headphones", "tablet", "monitor", "printer",
	"router", "watch", "console", "speaker", "keyboard", "mouse", "drone", "ereader",
	"projector", "vacuum", "blender", "grill",
};

/* One published deal: when it landed and what the gateway and the notifier saw. */
struct probe {
	char entry[64];
	long long ms, seq;          /* the entry id, parsed */
	long long first_gw_ms;      /* earliest gwsim ts_ms for it, -1 = none yet */
	long long planned_ms;       /* notifier: deal_planned ms_since_landed, -1 = none */
	long long sent_ms;          /* notifier: earliest push ms_since_landed, -1 = none */
};

/* What the floor reader sends back per entry. */
struct floor_msg {
	long idx;                   /* -1 = ready */
	long long recv_us;
};

static long long
now_us(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static long long
now_ms(void)
{
	return now_us(CLOCK_REALTIME) / 1000;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted v[0..n-1]; q in (0, 1]. */
static double
pct(const double *v, size_t n, double q)
{
	size_t k;

	if (n == 0)
		return NAN;
	k = (size_t)ceil(q * (double)n);
	if (k < 1)
		k = 1;
	return v[(k > n ? n : k) - 1];
}

static void
print_dist(const char *what, double *v, size_t n, const char *unit, int prec)
{
	if (n == 0) {
		printf("  %-34s no samples\n", what);
		return;
	}
	qsort(v, n, sizeof(*v), cmp_double);
	printf("  %-34s n=%-4zu p50=%.*f%s p99=%.*f%s max=%.*f%s\n", what, n, prec,
	    pct(v, n, 0.50), unit, prec, pct(v, n, 0.99), unit, prec, v[n - 1], unit);
}

/* Parses "<ms>-<seq>"; 0 or -1. */
static int
entry_parse(const char *s, size_t len, long long *ms, long long *seq)
{
	char buf[64], *end;

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	errno = 0;
	*ms = strtoll(buf, &end, 10);
	if (errno != 0 || end == buf || *end != '-')
		return -1;
	s = end + 1;
	*seq = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	return 0;
}

/* The probe whose entry id is the text s[0..len-1], or NULL (p is in entry order). */
static struct probe *
probe_find(struct probe *p, size_t n, const char *s, size_t len)
{
	long long ms, seq;
	size_t lo = 0, hi = n;

	if (entry_parse(s, len, &ms, &seq) < 0)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p[mid].ms < ms || (p[mid].ms == ms && p[mid].seq < seq))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && p[lo].ms == ms && p[lo].seq == seq ? &p[lo] : NULL;
}

/* XADDs one deal; fills pr from the entry id. 0 or -1. */
static int
publish(redisContext *rc, const char *json, struct probe *pr)
{
	redisReply *r = redisCommand(rc, "XADD deals * deal %b", json, strlen(json));
	int ok = r != NULL && r->type == REDIS_REPLY_STRING &&
	    r->len < (int)sizeof(pr->entry) &&
	    entry_parse(r->str, (size_t)r->len, &pr->ms, &pr->seq) == 0;

	if (ok)
		snprintf(pr->entry, sizeof(pr->entry), "%s", r->str);
	else
		fprintf(stderr, "bench_e2e: XADD deals failed: %s\n",
		    r == NULL ? rc->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
	freeReplyObject(r);
	pr->first_gw_ms = pr->planned_ms = pr->sent_ms = -1;
	return ok ? 0 : -1;
}

/* Reads the whole gwsim log and records each probe's earliest request; returns how
 * many probes have one. A line still being written fails to parse and is read on
 * the next call. */
static size_t
scan_gwsim(const struct it_gwsim *g, struct probe *p, size_t n)
{
	cJSON *arr = it_gwsim_requests(g), *o;
	size_t i, found = 0;

	cJSON_ArrayForEach(o, arr) {
		const cJSON *push = cJSON_GetObjectItemCaseSensitive(o, "push");
		const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "ts_ms");
		const char *colon;
		struct probe *pr;

		if (!cJSON_IsString(push) || !cJSON_IsNumber(ts) ||
		    (colon = strchr(push->valuestring, ':')) == NULL)
			continue;
		pr = probe_find(p, n, push->valuestring, (size_t)(colon - push->valuestring));
		if (pr != NULL && (pr->first_gw_ms < 0 || (long long)ts->valuedouble <
		    pr->first_gw_ms))
			pr->first_gw_ms = (long long)ts->valuedouble;
	}
	cJSON_Delete(arr);
	for (i = 0; i < n; i++)
		found += p[i].first_gw_ms >= 0;
	return found;
}

/* Where the value of " key=" starts in line, or NULL. */
static const char *
log_value(const char *line, const char *key)
{
	char pat[64];
	const char *v;

	snprintf(pat, sizeof(pat), " %s=", key);
	return (v = strstr(line, pat)) == NULL ? NULL : v + strlen(pat);
}

/* The value of " key=" in line as a number, or -1. */
static long long
log_number(const char *line, const char *key)
{
	const char *v = log_value(line, key);
	char *end;
	long long x;

	if (v == NULL)
		return -1;
	errno = 0;
	x = strtoll(v, &end, 10);
	return errno != 0 || end == v ? -1 : x;
}

/* Reads the notifier's log for where the time went: when each probe's deal was
 * planned and when its first push was handed to the gateway client. */
static void
scan_notifier_log(const char *path, struct probe *p, size_t n)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;

	if (f == NULL)
		return;
	while (getline(&line, &cap, f) > 0) {
		long long ms = log_number(line, "ms_since_landed");
		const char *id;
		struct probe *pr;

		if (ms < 0)
			continue;
		if (strstr(line, " event=deal_planned ") != NULL &&
		    (id = log_value(line, "entry")) != NULL) {
			if ((pr = probe_find(p, n, id, strcspn(id, " \n"))) != NULL)
				pr->planned_ms = ms;
		} else if (strstr(line, " event=push ") != NULL &&
		    (id = log_value(line, "push")) != NULL) {
			pr = probe_find(p, n, id, strcspn(id, ": \n"));
			if (pr != NULL && (pr->sent_ms < 0 || ms < pr->sent_ms))
				pr->sent_ms = ms;
		}
	}
	free(line);
	fclose(f);
}

/* Deal i's category; consecutive deals go to different subscribers. */
static const char *
deal_category(size_t i)
{
	return bench_categories[i % BENCH_CATEGORIES];
}

/* 100 subscribers, each interested in one category, every fourth in a second one:
 * five or ten recipients per deal. */
static char *
subscribers_jsonl(void)
{
	size_t cap = BENCH_SUBSCRIBERS * 320, off = 0;
	char *buf = malloc(cap), extra[64];
	int i, w;

	if (buf == NULL)
		return NULL;
	for (i = 0; i < BENCH_SUBSCRIBERS; i++) {
		extra[0] = '\0';
		if (i % 4 == 0)
			snprintf(extra, sizeof(extra), ", \"%s\"",
			    bench_categories[(i + 7) % BENCH_CATEGORIES]);
		w = snprintf(buf + off, cap - off,
		    "{\"id\":\"s-%d\",\"phone\":\"+1512555%04d\",\"channels\":[\"sms\"],"
		    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
		    "\"timezone\":\"America/Chicago\","
		    "\"interests\":{\"categories\":[\"%s\"%s]}}\n",
		    i + 1, 100 + i, bench_categories[i % BENCH_CATEGORIES], extra);
		if (w < 0 || (size_t)w >= cap - off) {
			free(buf);
			return NULL;
		}
		off += (size_t)w;
	}
	return buf;
}

/* Publishes n deals spaced 5..10 ms apart into p (ids "<tag>-<pid>-<i>"). 0 or -1. */
static int
publish_all(redisContext *rc, struct probe *p, size_t n, const char *tag)
{
	char id[64];
	size_t i;

	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%s-%d-%zu", tag, (int)getpid(), i);
		if (publish(rc, it_deal(id, deal_category(i), 600), &p[i]) < 0)
			return -1;
		it_sleep_ms(5 + (long)(i % 6));
	}
	return 0;
}

/* Polls gwsim until every probe has a request or deadline_ms (wall clock) passes. */
static size_t
wait_gwsim(const struct it_gwsim *g, struct probe *p, size_t n, long long deadline_ms)
{
	size_t found;

	while ((found = scan_gwsim(g, p, n)) < n && now_ms() < deadline_ms)
		it_sleep_ms(50);
	return found;
}

/* The floor reader (a forked child): blocks in XREADGROUP on the floor stream and
 * writes the time it received each entry to wfd. Exits on a "stop" entry. */
static void
floor_reader(int port, int wfd)
{
	struct timeval tv = { 5, 0 };
	redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);
	struct floor_msg m = { -1, 0 };

	if (rc == NULL || rc->err)
		_exit(2);
	redisSetTimeout(rc, tv);
	if (write(wfd, &m, sizeof(m)) != (ssize_t)sizeof(m))
		_exit(2);
	for (;;) {
		redisReply *r = redisCommand(rc, "XREADGROUP GROUP " BENCH_FLOOR_GROUP
		    " reader COUNT 1 BLOCK 1000 STREAMS " BENCH_FLOOR_STREAM " >");
		long long t = now_us(CLOCK_MONOTONIC);
		redisReply *f;
		char *end;

		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			_exit(3);
		if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
			freeReplyObject(r);
			continue;
		}
		/* [[stream, [[id, [field, value]]]]] */
		f = r->element[0]->element[1]->element[0]->element[1];
		if (f->elements < 2 || strcmp(f->element[0]->str, "i") != 0)
			_exit(0);   /* the "stop" entry */
		m.idx = strtol(f->element[1]->str, &end, 10);
		if (*end != '\0')
			_exit(5);
		m.recv_us = t;
		freeReplyObject(r);
		if (write(wfd, &m, sizeof(m)) != (ssize_t)sizeof(m))
			_exit(4);
	}
}

/* Reads one message from the reader within timeout_ms. 0 or -1. */
static int
floor_recv(int rfd, struct floor_msg *m, int timeout_ms)
{
	struct pollfd pfd = { rfd, POLLIN, 0 };

	if (poll(&pfd, 1, timeout_ms) != 1)
		return -1;
	return read(rfd, m, sizeof(*m)) == (ssize_t)sizeof(*m) ? 0 : -1;
}

/* The floor reader as seen from the bench. */
struct floor {
	pid_t pid;
	int rfd;
	long next;                  /* the index of the next sample */
};

/* Creates the floor stream's group and forks the reader; returns once it is
 * connected and blocked. 0 or -1 (nothing left running). */
static int
floor_start(struct floor *fl, redisContext *rc, int port)
{
	int pfd[2];
	pid_t parent = getpid();
	struct floor_msg m;
	redisReply *r;

	fl->pid = -1;
	fl->rfd = -1;
	fl->next = 0;
	r = redisCommand(rc, "XGROUP CREATE " BENCH_FLOOR_STREAM " " BENCH_FLOOR_GROUP
	    " $ MKSTREAM");
	freeReplyObject(r);
	if (pipe(pfd) < 0)
		return -1;
	if ((fl->pid = fork()) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (fl->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		close(pfd[0]);
		floor_reader(port, pfd[1]);
		_exit(0);
	}
	close(pfd[1]);
	fl->rfd = pfd[0];
	if (floor_recv(fl->rfd, &m, 5000) < 0 || m.idx != -1)
		return -1;
	it_sleep_ms(20);    /* let the reader block */
	return 0;
}

/* One sample: the time from just before XADD to the reader having the entry, in
 * ms (monotonic clock, 1 us resolution); -1 when the reader failed. */
static double
floor_sample(struct floor *fl, redisContext *rc)
{
	long i = fl->next++;
	long long t0 = now_us(CLOCK_MONOTONIC);
	redisReply *r = redisCommand(rc, "XADD " BENCH_FLOOR_STREAM " * i %ld", i);
	int ok = r != NULL && r->type == REDIS_REPLY_STRING;
	struct floor_msg m;

	freeReplyObject(r);
	if (!ok || floor_recv(fl->rfd, &m, 2000) < 0 || m.idx != i)
		return -1;
	return (double)(m.recv_us - t0) / 1000.0;
}

/* Tells the reader to exit and reaps it (killing it after 3 s). */
static void
floor_stop(struct floor *fl, redisContext *rc)
{
	redisReply *r;
	int status, i;

	if (fl->pid > 0) {
		r = redisCommand(rc, "XADD " BENCH_FLOOR_STREAM " * stop 1");
		freeReplyObject(r);
		for (i = 0; i < 300 && waitpid(fl->pid, &status, WNOHANG) == 0; i++)
			it_sleep_ms(10);
		if (i == 300) {
			kill(fl->pid, SIGKILL);
			waitpid(fl->pid, &status, 0);
		}
	}
	if (fl->rfd >= 0)
		close(fl->rfd);
	fl->pid = -1;
	fl->rfd = -1;
}

/* The measurement: for each deal, one floor sample, then the deal 2 ms later, then a
 * pause of 5..10 ms, so that both see the same machine at the same moments and the
 * notifier is idle when the floor is taken. Fills p[] and fl[]. 0 or -1. */
static int
measure(redisContext *rc, struct floor *flr, struct probe *p, double *fl, size_t n)
{
	char id[64];
	size_t i;

	for (i = 0; i < BENCH_FLOOR_WARMUP; i++) {
		if (floor_sample(flr, rc) < 0)
			goto floor_failed;
		it_sleep_ms(5);
	}
	for (i = 0; i < n; i++) {
		if ((fl[i] = floor_sample(flr, rc)) < 0)
			goto floor_failed;
		it_sleep_ms(2);
		snprintf(id, sizeof(id), "bench-%d-%zu", (int)getpid(), i);
		if (publish(rc, it_deal(id, deal_category(i), 600), &p[i]) < 0)
			return -1;
		it_sleep_ms(5 + (long)(i % 6));
	}
	return 0;
floor_failed:
	fprintf(stderr, "bench_e2e: the floor reader failed\n");
	return -1;
}

/* BENCH_E2E_DEALS, or the default; -1 when it is not a number in range. */
static long
deals_wanted(void)
{
	const char *v = getenv("BENCH_E2E_DEALS");
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return BENCH_DEALS_DEFAULT;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < 1 || n > BENCH_DEALS_MAX)
		return -1;
	return n;
}

int
main(void)
{
	struct it_gwsim gw;
	struct it_notifier nt;
	struct probe warm[BENCH_WARMUP_DEALS], *p = NULL;
	struct floor flr = { -1, -1, 0 };
	redisContext *rc = NULL;
	double *lat = NULL, *fl = NULL, *plan = NULL, *sent = NULL;
	char *subs = NULL;
	long n = deals_wanted();
	size_t i, found, ok = 0, nplan = 0, nsent = 0;
	int port = it_redis_port(), gw_up = 0, nt_up = 0, rv = 2;
	double p50, p99, fl_p99;

	memset(&gw, 0, sizeof(gw));
	memset(&nt, 0, sizeof(nt));
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (n < 0) {
		fprintf(stderr, "bench_e2e: BENCH_E2E_DEALS must be 1..%d\n", BENCH_DEALS_MAX);
		return 2;
	}
	p = calloc((size_t)n, sizeof(*p));
	lat = calloc((size_t)n, sizeof(*lat));
	plan = calloc((size_t)n, sizeof(*plan));
	sent = calloc((size_t)n, sizeof(*sent));
	fl = calloc((size_t)n, sizeof(*fl));
	if (p == NULL || lat == NULL || plan == NULL || sent == NULL || fl == NULL ||
	    (subs = subscribers_jsonl()) == NULL) {
		fprintf(stderr, "bench_e2e: out of memory\n");
		goto end;
	}

	/* Setup: empty redis, gwsim, the audience, the notifier at log level info. */
	rc = it_redis_connect(port);
	it_flush(rc);
	if (it_gwsim_start(&gw, NULL) < 0) {
		fprintf(stderr, "bench_e2e: gwsim did not start (see %s)\n", gw.proc.log);
		goto end;
	}
	gw_up = 1;
	if (it_import(port, subs) != 0) {
		fprintf(stderr, "bench_e2e: importing subscribers failed\n");
		goto end;
	}
	if (it_notifier_start(&nt, port, gw.port, "bench",
	    "[notifier]\nlog_level = info\n") < 0) {
		fprintf(stderr, "bench_e2e: notifier did not start\n");
		goto end;
	}
	nt_up = 1;
	if (publish_all(rc, warm, BENCH_WARMUP_DEALS, "warm") < 0 ||
	    wait_gwsim(&gw, warm, BENCH_WARMUP_DEALS, now_ms() + 10000) <
	    BENCH_WARMUP_DEALS) {
		fprintf(stderr, "bench_e2e: warm-up deals did not reach gwsim within 10 s "
		    "(see %s and %s)\n", nt.proc.log, gw.proc.log);
		goto end;
	}
	it_sleep_ms(200);   /* let the warm-up fan-out finish */

	if (floor_start(&flr, rc, port) < 0) {
		fprintf(stderr, "bench_e2e: the floor reader did not start\n");
		goto end;
	}
	if (measure(rc, &flr, p, fl, (size_t)n) < 0)
		goto end;
	found = wait_gwsim(&gw, p, (size_t)n, p[n - 1].ms + BENCH_DEADLINE_MS + 500);
	/* A push is logged after its answer: stop the notifier before reading its log. */
	nt_up = 0;
	if (it_stop(&nt.proc, SIGTERM, 5000) != 0)
		fprintf(stderr, "bench_e2e: the notifier did not exit cleanly (see %s)\n",
		    nt.proc.log);
	scan_notifier_log(nt.proc.log, p, (size_t)n);
	for (i = 0; i < (size_t)n; i++) {
		if (p[i].first_gw_ms >= 0) {
			lat[ok] = (double)(p[i].first_gw_ms - p[i].ms);
			ok += lat[ok] <= BENCH_DEADLINE_MS;
		}
		if (p[i].planned_ms >= 0)
			plan[nplan++] = (double)p[i].planned_ms;
		if (p[i].sent_ms >= 0)
			sent[nsent++] = (double)p[i].sent_ms;
	}

	printf("e2e_first_push: %ld deals one at a time (7-12 ms apart), %d subscribers, "
	    "%d categories; a floor sample before each deal\n", n, BENCH_SUBSCRIBERS,
	    BENCH_CATEGORIES);
	if (n < BENCH_DEALS_MIN)
		printf("  note: fewer than %d deals; not a reportable figure\n", BENCH_DEALS_MIN);
	printf("  reached gwsim: %zu/%ld (within %d ms: %zu)\n", found, n,
	    BENCH_DEADLINE_MS, ok);
	printf("  ours: XADD entry id ms -> first request at gwsim (ts_ms); wall clocks, "
	    "1 ms resolution\n");
	print_dist("ours, landed -> gateway", lat, ok, " ms", 1);
	printf("  where the time goes (notifier log, ms_since_landed, 1 ms resolution):\n");
	print_dist("landed -> deal planned", plan, nplan, " ms", 0);
	print_dist("landed -> first send started", sent, nsent, " ms", 0);
	printf("  floor: XADD sent -> XREADGROUP BLOCK reader has it; monotonic clock, 1 us\n");
	print_dist("floor, XADD -> XREADGROUP", fl, (size_t)n, " ms", 3);

	if (ok == 0 || (double)ok < BENCH_MIN_DELIVERED * (double)n) {
		fprintf(stderr, "bench_e2e: only %zu of %ld deals reached gwsim within %d ms "
		    "(see %s)\n", ok, n, BENCH_DEADLINE_MS, nt.proc.log);
		rv = 1;
		goto end;
	}
	p50 = pct(lat, ok, 0.50);
	p99 = pct(lat, ok, 0.99);
	fl_p99 = pct(fl, (size_t)n, 0.99);
	printf("ratio = ours p99 / floor p99, lower is better\n");
	printf("BENCH name=e2e_first_push p50_ms=%.1f p99_ms=%.1f floor_p99_ms=%.3f "
	    "ratio=%.1f\n", p50, p99, fl_p99, fl_p99 > 0 ? p99 / fl_p99 : INFINITY);
	rv = 0;

end:
	floor_stop(&flr, rc);
	if (nt_up)
		it_stop(&nt.proc, SIGTERM, 5000);
	if (gw_up)
		it_stop(&gw.proc, SIGTERM, 2000);
	if (rc != NULL)
		redisFree(rc);
	free(subs);
	free(fl);
	free(sent);
	free(plan);
	free(lat);
	free(p);
	return rv;
}
