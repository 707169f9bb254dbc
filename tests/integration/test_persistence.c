/*
 * test_persistence.c: what Redis persistence keeps of the delivery promises, measured
 * (docs/operations.md, "Redis persistence"). A notifier fans out one deal to 2,000
 * subscribers through gwsim; in the middle, the test's own redis-server (AOF on,
 * appendfsync everysec or always) is killed with SIGKILL and started again on the
 * same port from the same folder, and the notifier finishes.
 *
 * Three runs: everysec and always with a plain kill -9 of the Redis process (what the
 * kernel had been given survives it), and everysec with the last second of the AOF
 * cut off after the kill, which is what a host crash or power loss can take from
 * everysec (fsync once a second). Each run prints one line with its counts: texts
 * at gwsim, phones texted twice, outcomes Redis had acknowledged and then lost,
 * pushes ending unknown. Asserted is only what the design promises: with the AOF
 * intact no phone is texted twice and nothing acknowledged is lost; in every run
 * every push ends with one final outcome and nothing stays pending. The duplicates
 * of the cut-AOF run are the window an operator accepts with everysec: counted and
 * printed, not asserted away.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"

#define N_SUBS 2000
#define PHONE_BASE 1000            /* subscriber s-i has +1512555<1000+i> */
#define MAX_SAMPLES 20000
#define SETTLE_MS 45000

struct fx {
	redisContext *rc;
	int port;
	char dir[512];
	const char *fsync;
	struct it_proc redis;
	struct it_gwsim gw;
	struct it_notifier nt;
};

static int
setup(void **state)
{
	*state = calloc(1, sizeof(struct fx));
	return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rv = it_stop_clean(&f->nt.proc);

	it_stop(&f->gw.proc, SIGTERM, 2000);
	it_stop(&f->redis, SIGKILL, 2000);
	if (f->rc != NULL)
		redisFree(f->rc);
	free(f);
	return rv;
}

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Starts the private redis-server on f->port (0: a free one) from f->dir with the
 * AOF on and appendfsync f->fsync; waits for PING. AOF rewrites are off, so the
 * writes of a run stay in one incr file. Returns 0 or -1. */
static int
redis_start(struct fx *f)
{
	char portbuf[16];
	const char *argv[] = { "/usr/bin/redis-server", "--port", portbuf, "--bind",
		"127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", f->fsync,
		"--auto-aof-rewrite-percentage", "0", "--aof-load-truncated", "yes",
		"--dir", f->dir, NULL };
	int attempt, i, status, port;

	for (attempt = 0; attempt < 5; attempt++) {
		port = f->port != 0 ? f->port : it_free_port();
		snprintf(portbuf, sizeof(portbuf), "%d", port);
		if (it_spawn(&f->redis, argv, NULL) < 0)
			return -1;
		for (i = 0; i < 400; i++) {
			struct timeval tv = { 0, 200000 };
			redisContext *rc;
			redisReply *r;
			int ok;

			if (waitpid(f->redis.pid, &status, WNOHANG) == f->redis.pid) {
				f->redis.pid = 0;
				break;
			}
			rc = redisConnectWithTimeout("127.0.0.1", port, tv);
			if (rc != NULL && !rc->err) {
				/* PING answers LOADING while the AOF loads. */
				r = redisCommand(rc, "PING");
				ok = r != NULL && r->type == REDIS_REPLY_STATUS;
				freeReplyObject(r);
				redisFree(rc);
				if (ok) {
					f->port = port;
					return 0;
				}
			} else if (rc != NULL) {
				redisFree(rc);
			}
			it_sleep_ms(25);
		}
		if (f->redis.pid > 0)
			it_stop(&f->redis, SIGKILL, 1000);
		if (f->port != 0)
			return -1;   /* a restart must get its own port back */
	}
	return -1;
}

/* The path of the AOF's incr file (Redis 7 multi-part AOF) into buf; 0 or -1. */
static int
aof_incr_path(const struct fx *f, char *buf, size_t size)
{
	char d[600];
	struct dirent *e;
	DIR *dp;
	int rv = -1;

	snprintf(d, sizeof(d), "%s/appendonlydir", f->dir);
	if ((dp = opendir(d)) == NULL)
		return -1;
	while ((e = readdir(dp)) != NULL) {
		size_t l = strlen(e->d_name);

		if (l > 9 && strcmp(e->d_name + l - 9, ".incr.aof") == 0) {
			snprintf(buf, size, "%s/%s", d, e->d_name);
			rv = 0;
		}
	}
	closedir(dp);
	return rv;
}

static long long
file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}
/* Texts (201 answers) per number at gwsim into got[n]; returns all 201s. Numbers
 * outside the list are counted in *strangers. */
static long
gw_texts(const struct it_gwsim *g, int *got, int n, long *strangers)
{
	FILE *fp = fopen(g->logfile, "r");
	char *line = NULL, *end;
	size_t cap = 0;
	long total = 0, num;

	memset(got, 0, sizeof(int) * (size_t)n);
	*strangers = 0;
	if (fp == NULL)
		return 0;
	while (getline(&line, &cap, fp) > 0) {
		cJSON *o = cJSON_Parse(line), *to, *st;

		if (o == NULL)
			continue;   /* a line being written */
		to = cJSON_GetObjectItem(o, "to");
		st = cJSON_GetObjectItem(o, "status");
		if (cJSON_IsNumber(st) && st->valueint == 201) {
			total++;
			num = -1;
			if (cJSON_IsString(to) &&
			    strncmp(to->valuestring, "+1512555", 8) == 0) {
				num = strtol(to->valuestring + 8, &end, 10);
				if (*end != '\0')
					num = -1;
			}
			if (num >= PHONE_BASE && num < PHONE_BASE + n)
				got[num - PHONE_BASE]++;
			else
				(*strangers)++;
		}
		cJSON_Delete(o);
	}
	free(line);
	fclose(fp);
	return total;
}

/* Push states of deal into st[n] (strdup'ed, NULL when absent), from push:<deal> of
 * every shard of the layout in force; -1 if unreadable. */
static int
read_states(redisContext *rc, const char *deal, char **st, int n)
{
	char key[KEYS_MAX];
	uint32_t sh;
	size_t i;
	int k;

	for (k = 0; k < n; k++) {
		free(st[k]);
		st[k] = NULL;
	}
	for (sh = 0; sh < keys_shards(); sh++) {
		redisReply *r;

		keys_per(sh, KEYS_PUSH, deal, key, sizeof(key));
		r = redisCommand(rc, "HGETALL %s", key);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return -1;
		}
		for (i = 0; i + 1 < r->elements; i += 2) {
			const char *field = r->element[i]->str;
			char *end;
			long idx;

			if (strncmp(field, "s-", 2) != 0)
				continue;
			idx = strtol(field + 2, &end, 10);
			if (strcmp(end, ":sms") != 0 || idx < 0 || idx >= n)
				continue;
			st[idx] = strdup(r->element[i + 1]->str);
		}
		freeReplyObject(r);
	}
	return 0;
}

/* A state no script moves on from (unknown may still be resolved to sent). */
static int
is_final(const char *s)
{
	return s != NULL && strcmp(s, "admitted") != 0 && strcmp(s, "retry") != 0 &&
	    strcmp(s, "delayed") != 0 && strcmp(s, "deferred") != 0 &&
	    strncmp(s, "sending", 7) != 0;
}

struct settle {
	redisContext *rc;
	const char *deal;
	char **st;
	int n;
};

/* Every push has a final state and nothing is pending in either group. */
static int
settled(void *arg)
{
	struct settle *s = arg;
	int k;

	if (it_shards_jobs_pending(s->rc, NULL) != 0 ||
	    it_deals_pending(s->rc) != 0)
		return 0;
	if (read_states(s->rc, s->deal, s->st, s->n) < 0)
		return 0;
	for (k = 0; k < s->n; k++)
		if (!is_final(s->st[k]))
			return 0;
	return 1;
}

/*
 * Waits until settled(), or until nothing is pending, nothing reaches gwsim and no
 * push changes state for 3 s (pushes left open that no job will ever finish: the
 * notifier never learns that Redis went back in time). 1 when settled.
 */
static int
wait_settled(struct settle *s, const struct it_gwsim *g, int *got)
{
	long long start = mono_ms(), quiet_since = mono_ms();
	long texts = -1, open = -1, t, o, strangers;
	int k;

	while (mono_ms() - start < SETTLE_MS) {
		if (settled(s))
			return 1;
		t = gw_texts(g, got, s->n, &strangers);
		for (o = 0, k = 0; k < s->n; k++)
			o += !is_final(s->st[k]);
		if (t != texts || o != open || it_shards_jobs_pending(s->rc, NULL) != 0 ||
		    it_deals_pending(s->rc) != 0) {
			texts = t;
			open = o;
			quiet_since = mono_ms();
		} else if (mono_ms() - quiet_since >= 3000) {
			return 0;
		}
		it_sleep_ms(200);
	}
	return 0;
}

struct run_counts {
	long texts, dup_phones, extra_texts, strangers;
	long acked_final, lost_outcomes, lost_log;
	long sent, unknown, other, missing;
	long stuck, stuck_texted;   /* not final once nothing is pending */
	long fsync_stalls;          /* Redis held AOF writes back for a slow fsync */
	long long aof_dropped;
};

/*
 * One run: fan-out of N_SUBS, SIGKILL of redis-server once 40% of the texts reached
 * gwsim, drop_ms of the AOF's tail cut off (0: none), restart on the same port and
 * folder, settle. Fills c.
 */
static void
run_fanout_with_redis_kill(struct fx *f, const char *fsync, int drop_ms,
    struct run_counts *c)
{
	static const char *const gw_50ms[] = { "--latency-ms", "50", NULL };
	static const char extra[] = "[deliver]\nmax_in_flight = 32\n";
	static long long at[MAX_SAMPLES], size[MAX_SAMPLES];
	char deal[64], incr[1024];
	char **before = calloc(N_SUBS, sizeof(char *));
	char **after = calloc(N_SUBS, sizeof(char *));
	int *got = calloc(N_SUBS, sizeof(int));
	long long log_before, log_after, t_kill, keep;
	struct settle s;
	int samples = 0, k, status;
	long strangers;

	assert_non_null(before);
	assert_non_null(after);
	assert_non_null(got);
	memset(c, 0, sizeof(*c));
	f->fsync = fsync;
	it_path(f->dir, sizeof(f->dir), "redis-persist", "");
	assert_int_equal(mkdir(f->dir, 0755), 0);
	assert_int_equal(redis_start(f), 0);
	f->rc = it_redis_connect(f->port);
	it_import_audience(f->port, N_SUBS, PHONE_BASE, "laptop");
	/* 32 in flight at 50 ms: about 640 texts/s, so the fan-out lasts about 3 s and
	 * the last second of the AOF holds about a third of it. */
	assert_int_equal(it_gwsim_start(&f->gw, gw_50ms), 0);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "persist-1",
	    extra), 0);
	snprintf(deal, sizeof(deal), "persist-%s-%d", fsync, drop_ms);
	assert_int_equal(it_publish(f->rc, it_deal(deal, "laptop", 3600)), 0);
	assert_int_equal(aof_incr_path(f, incr, sizeof(incr)), 0);

	/* Sample the AOF's size every 10 ms until 40% of the texts are out. */
	for (;;) {
		if (samples < MAX_SAMPLES) {
			at[samples] = mono_ms();
			size[samples] = file_size(incr);
			samples++;
		}
		if (gw_texts(&f->gw, got, N_SUBS, &strangers) >= N_SUBS * 4 / 10)
			break;
		assert_true(samples < MAX_SAMPLES);
		it_sleep_ms(10);
	}
	/* What Redis acknowledged: read just before the kill. A stalled fsync makes an
	 * everysec Redis hold its AOF writes back (and log it) while it answers. */
	c->fsync_stalls = it_log_count(f->redis.log, "fsync is taking too long", NULL,
	    NULL);
	assert_int_equal(read_states(f->rc, deal, before, N_SUBS), 0);
	log_before = it_shards_sum_key(f->rc, "XLEN %s", KEYS_PUSHES_LOG);
	t_kill = mono_ms();
	status = it_stop(&f->redis, SIGKILL, 2000);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	redisFree(f->rc);
	f->rc = NULL;
	if (drop_ms > 0) {
		/* A host crash under everysec loses what was not yet fsynced: up to the
		 * last second (more while a slow fsync holds writes back). Keep the AOF
		 * as it was drop_ms before the kill. */
		keep = size[0];
		for (k = 0; k < samples; k++)
			if (at[k] <= t_kill - drop_ms && size[k] >= 0)
				keep = size[k];
		c->aof_dropped = file_size(incr) - keep;
		assert_int_equal(truncate(incr, keep), 0);
	}
	it_sleep_ms(300);
	assert_int_equal(redis_start(f), 0);
	f->rc = it_redis_connect(f->port);

	/* Outcomes Redis had answered before the kill and no longer has. */
	assert_int_equal(read_states(f->rc, deal, after, N_SUBS), 0);
	log_after = it_shards_sum_key(f->rc, "XLEN %s", KEYS_PUSHES_LOG);
	for (k = 0; k < N_SUBS; k++) {
		if (!is_final(before[k]))
			continue;
		c->acked_final++;
		if (after[k] == NULL || strcmp(after[k], before[k]) != 0)
			c->lost_outcomes++;
	}
	c->lost_log = log_before > log_after ? (long)(log_before - log_after) : 0;

	s.rc = f->rc;
	s.deal = deal;
	s.st = after;
	s.n = N_SUBS;
	if (!wait_settled(&s, &f->gw, got))
		printf("# %s aof_tail_cut_ms=%d: pushes left open with nothing pending "
		    "(pending %lld/%lld)\n", fsync, drop_ms,
		    it_shards_jobs_pending(f->rc, NULL), it_deals_pending(f->rc));
	it_sleep_ms(500);   /* a late request would show at gwsim now */
	read_states(f->rc, deal, after, N_SUBS);
	c->texts = gw_texts(&f->gw, got, N_SUBS, &c->strangers);
	for (k = 0; k < N_SUBS; k++) {
		if (got[k] > 1) {
			if (c->dup_phones == 0)
				printf("# first duplicate: s-%d texted %d times, state before "
				    "the kill %s\n", k, got[k], before[k] ? before[k] : "(none)");
			c->dup_phones++;
			c->extra_texts += got[k] - 1;
		}
		if (after[k] == NULL)
			c->missing++;
		else if (strcmp(after[k], "sent") == 0)
			c->sent++;
		else if (strcmp(after[k], "unknown") == 0)
			c->unknown++;
		else {
			if (c->other++ < 3)
				printf("# s-%d ends %s (before the kill: %s), texted %d "
				    "times\n", k, after[k], before[k] ? before[k] : "(none)",
				    got[k]);
			if (!is_final(after[k])) {
				c->stuck++;
				c->stuck_texted += got[k] > 0;
			}
		}
	}
	printf("# persistence appendfsync=%s aof_tail_cut_ms=%d: pushes=%d texts=%ld "
	    "phones_texted_twice=%ld extra_texts=%ld acked_final_before_kill=%ld "
	    "outcomes_lost=%ld log_entries_lost=%ld aof_bytes_cut=%lld final: sent=%ld "
	    "unknown=%ld other=%ld missing=%ld; left open with nothing pending=%ld "
	    "(texted once already: %ld)\n", fsync, drop_ms, N_SUBS, c->texts,
	    c->dup_phones, c->extra_texts, c->acked_final, c->lost_outcomes, c->lost_log,
	    c->aof_dropped, c->sent, c->unknown, c->other, c->missing, c->stuck,
	    c->stuck_texted);
	if (c->fsync_stalls > 0)
		printf("# redis logged %ld slow fsyncs before the kill: writes were held "
		    "back\n", c->fsync_stalls);
	fflush(stdout);

	/* The notifier rode it out. */
	assert_int_equal(waitpid(f->nt.proc.pid, &status, WNOHANG), 0);
	/* Every push accounted for, whatever the AOF kept, and nobody else texted. */
	assert_int_equal(c->strangers, 0);
	assert_int_equal(c->missing, 0);
	assert_int_equal(it_shards_jobs_pending(f->rc, NULL), 0);
	assert_int_equal(it_deals_pending(f->rc), 0);
	for (k = 0; k < N_SUBS; k++) {
		free(before[k]);
		free(after[k]);
	}
	free(before);
	free(after);
	free(got);
}

static void
everysec_redis_sigkill_loses_nothing_acknowledged(void **state)
{
	struct fx *f = *state;
	struct run_counts c;

	run_fanout_with_redis_kill(f, "everysec", 0, &c);
	/* The process died, the kernel kept every write it had been given, unless a
	 * stalled disk made Redis hold writes back (the window of a host crash). */
	if (c.fsync_stalls > 0)
		return;
	assert_int_equal(c.dup_phones, 0);
	assert_int_equal(c.lost_outcomes, 0);
	assert_int_equal(c.other, 0);
	assert_true(c.acked_final > 0);
}

static void
always_redis_sigkill_loses_nothing_acknowledged(void **state)
{
	struct fx *f = *state;
	struct run_counts c;

	run_fanout_with_redis_kill(f, "always", 0, &c);
	assert_int_equal(c.dup_phones, 0);
	assert_int_equal(c.lost_outcomes, 0);
	assert_int_equal(c.other, 0);
	assert_true(c.acked_final > 0);
}

static void
everysec_host_crash_window_is_measured(void **state)
{
	struct fx *f = *state;
	struct run_counts c;

	run_fanout_with_redis_kill(f, "everysec", 1000, &c);
	/* The window is real: the cut took acknowledged outcomes with it. What it costs
	 * (texts sent twice, pushes ending unknown) is printed above and written in
	 * docs/operations.md; only the accounting is asserted. */
	assert_true(c.aof_dropped > 0);
	assert_true(c.lost_outcomes > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    everysec_redis_sigkill_loses_nothing_acknowledged, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    always_redis_sigkill_loses_nothing_acknowledged, setup, teardown),
		cmocka_unit_test_setup_teardown(everysec_host_crash_window_is_measured,
		    setup, teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("persistence", tests, NULL, NULL);
}
