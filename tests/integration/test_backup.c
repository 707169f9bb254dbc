/*
 * test_backup.c: backups and restore, done the way docs/operations.md ("Backups and
 * restore") says: `redis-cli --rdb FILE` from the running Redis, everything stopped,
 * a fresh redis-server started from that file, the notifier started again with the
 * same consumer name.
 *
 * A backup taken after a deal was fully delivered: the restored notifier is healthy
 * (subscriber mirror loaded), texts nobody again for that deal, and sends the next
 * deal with the rules put over the API before the backup. A backup taken in the
 * middle of a fan-out: what it repeats is measured and printed. The promise checked
 * is the one a snapshot can keep: a push whose claim or outcome is in the backup is
 * never texted again; only pushes first texted after the backup began can be texted
 * twice (the backup does not know they left).
 */
#include <errno.h>
#include <fcntl.h>
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

#define PHONE_BASE 1000            /* subscriber s-i has +1512555<1000+i> */
#define TOKEN "backup-test-token-0123456789"
#define WAIT_MS 30000

struct fx {
	redisContext *rc;
	int port, http;
	char rules_dir[512];
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

/* A private redis-server (no AOF, no snapshots of its own) in dir on a free port,
 * loading dir/dump.rdb when there is one; connects f->rc. */
static void
redis_start(struct fx *f, const char *dir)
{
	char portbuf[16];
	const char *argv[] = { "/usr/bin/redis-server", "--port", portbuf, "--bind",
		"127.0.0.1", "--save", "", "--appendonly", "no", "--dbfilename",
		"dump.rdb", "--dir", dir, NULL };
	int attempt, i, status, port;

	assert_true(mkdir(dir, 0755) == 0 || errno == EEXIST);
	for (attempt = 0; attempt < 5; attempt++) {
		port = it_free_port();
		snprintf(portbuf, sizeof(portbuf), "%d", port);
		assert_int_equal(it_spawn(&f->redis, argv, NULL), 0);
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
				r = redisCommand(rc, "PING");   /* LOADING while it loads */
				ok = r != NULL && r->type == REDIS_REPLY_STATUS;
				freeReplyObject(r);
				redisFree(rc);
				if (ok) {
					f->port = port;
					f->rc = it_redis_connect(port);
					return;
				}
			} else if (rc != NULL) {
				redisFree(rc);
			}
			it_sleep_ms(25);
		}
		if (f->redis.pid > 0)
			it_stop(&f->redis, SIGKILL, 1000);
	}
	fail_msg("could not start redis-server in %s", dir);
}

static void
redis_stop(struct fx *f)
{
	redisFree(f->rc);
	f->rc = NULL;
	it_stop(&f->redis, SIGKILL, 2000);
}

/* The backup, as the guide says: redis-cli --rdb FILE (a fork-time snapshot). */
static void
backup(struct fx *f, const char *file)
{
	char portbuf[16], out[1024];
	const char *argv[] = { "/usr/bin/redis-cli", "-h", "127.0.0.1", "-p", portbuf,
		"--rdb", file, NULL };
	struct stat st;

	snprintf(portbuf, sizeof(portbuf), "%d", f->port);
	if (it_run(argv, out, sizeof(out)) != 0)
		fail_msg("redis-cli --rdb failed: %s", out);
	assert_int_equal(stat(file, &st), 0);
	assert_true(st.st_size > 0);
}

/* 1 when INFO persistence holds line (e.g. "rdb_bgsave_in_progress:0"). */
static int
info_has(redisContext *rc, const char *line)
{
	redisReply *r = redisCommand(rc, "INFO persistence");
	int has = r != NULL && r->type == REDIS_REPLY_STRING &&
	    strstr(r->str, line) != NULL;

	freeReplyObject(r);
	return has;
}

static int
bgsave_done(void *arg)
{
	return info_has(arg, "rdb_bgsave_in_progress:0");
}

/* The other way the guide gives: BGSAVE (the snapshot is the fork, at once), wait
 * for it to finish, copy dir/dump.rdb to file. */
static void
backup_bgsave(struct fx *f, const char *dir, const char *file)
{
	redisReply *r = redisCommand(f->rc, "BGSAVE");
	char src[700], buf[65536];
	int in, out;
	ssize_t n;

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STATUS);
	freeReplyObject(r);
	assert_true(it_wait(bgsave_done, f->rc, WAIT_MS));
	assert_true(info_has(f->rc, "rdb_last_bgsave_status:ok"));
	snprintf(src, sizeof(src), "%s/dump.rdb", dir);
	assert_true((in = open(src, O_RDONLY)) >= 0);
	assert_true((out = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	close(in);
	assert_int_equal(close(out), 0);
}

/* A new folder holding a copy of the backup as dump.rdb, into dir. */
static void
restore_dir(const char *file, char *dir, size_t size)
{
	char dst[700], buf[65536];
	int in, out;
	ssize_t r;

	it_path(dir, size, "redis-restored", "");
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(dst, sizeof(dst), "%s/dump.rdb", dir);
	assert_true((in = open(file, O_RDONLY)) >= 0);
	assert_true((out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0);
	while ((r = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)r), r);
	close(in);
	assert_int_equal(close(out), 0);
}

static void
start_notifier(struct fx *f, const char *consumer, const char *extra)
{
	char conf[1024];

	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	snprintf(conf, sizeof(conf), "admin_token_env = DP_TEST_ADMIN_TOKEN\n[rules]\n"
	    "dir = %s\n%s", f->rules_dir, extra != NULL ? extra : "");
	f->http = it_notifier_start_http(&f->nt, f->port, f->gw.port, consumer, conf);
	assert_true(f->http > 0);
}

static int
healthy(void *arg)
{
	struct fx *f = arg;
	char body[1024];

	return it_http_get(f->http, "/healthz", body, sizeof(body)) == 200;
}

/*
 * Texts (201 answers) of deal at gwsim, per number, into got[n] (may be NULL); the
 * index among the deal's texts of each number's first one into first[n] (may be
 * NULL; -1 when none). Texts carrying match in their body are counted in *matching
 * (may be NULL); numbers outside the list in *strangers. Returns the deal's texts.
 */
static long
deal_texts(const struct it_gwsim *g, const char *deal, int n, int *got, long *first,
    const char *match, long *matching, long *strangers)
{
	FILE *fp = fopen(g->logfile, "r");
	char *line = NULL, *end, needle[80];
	size_t cap = 0;
	long total = 0, num;
	int k;

	snprintf(needle, sizeof(needle), "Deal %s", deal);
	for (k = 0; got != NULL && k < n; k++)
		got[k] = 0;
	for (k = 0; first != NULL && k < n; k++)
		first[k] = -1;
	if (matching != NULL)
		*matching = 0;
	if (strangers != NULL)
		*strangers = 0;
	if (fp == NULL)
		return 0;
	while (getline(&line, &cap, fp) > 0) {
		cJSON *o = cJSON_Parse(line), *to, *st, *body;

		if (o == NULL)
			continue;   /* a line being written */
		to = cJSON_GetObjectItem(o, "to");
		st = cJSON_GetObjectItem(o, "status");
		body = cJSON_GetObjectItem(o, "body");
		if (cJSON_IsNumber(st) && st->valueint == 201 && cJSON_IsString(body) &&
		    strstr(body->valuestring, needle) != NULL) {
			num = -1;
			if (cJSON_IsString(to) &&
			    strncmp(to->valuestring, "+1512555", 8) == 0) {
				num = strtol(to->valuestring + 8, &end, 10);
				if (*end != '\0')
					num = -1;
			}
			if (num >= PHONE_BASE && num < PHONE_BASE + n) {
				if (got != NULL)
					got[num - PHONE_BASE]++;
				if (first != NULL && first[num - PHONE_BASE] < 0)
					first[num - PHONE_BASE] = total;
			} else if (strangers != NULL) {
				(*strangers)++;
			}
			if (matching != NULL && match != NULL &&
			    strstr(body->valuestring, match) != NULL)
				(*matching)++;
			total++;
		}
		cJSON_Delete(o);
	}
	free(line);
	fclose(fp);
	return total;
}

struct states {
	long sent, unknown, sending, admitted, other, absent;
};

/* Counts the states of deal's n pushes, in push:<deal> of every shard of the layout
 * in force. */
static void
count_states(redisContext *rc, const char *deal, int n, struct states *s)
{
	char key[KEYS_MAX];
	long seen = 0;
	uint32_t sh;
	size_t i;

	memset(s, 0, sizeof(*s));
	for (sh = 0; sh < keys_shards(); sh++) {
		redisReply *r;

		keys_per(sh, KEYS_PUSH, deal, key, sizeof(key));
		r = redisCommand(rc, "HGETALL %s", key);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		for (i = 0; i + 1 < r->elements; i += 2) {
			const char *v = r->element[i + 1]->str;

			if (strcmp(v, "sent") == 0)
				s->sent++;
			else if (strcmp(v, "unknown") == 0)
				s->unknown++;
			else if (strncmp(v, "sending", 7) == 0)
				s->sending++;
			else if (strcmp(v, "admitted") == 0 || strcmp(v, "retry") == 0)
				s->admitted++;
			else
				s->other++;
		}
		seen += (long)(r->elements / 2);
		freeReplyObject(r);
	}
	s->absent = n - seen;
}

struct done {
	struct fx *f;
	const char *deal;
	int n;
};

/* Every push of the deal final and nothing pending in either group. */
static int
delivered(void *arg)
{
	struct done *d = arg;
	struct states s;

	if (it_shards_jobs_pending(d->f->rc, NULL) != 0 ||
	    it_deals_pending(d->f->rc) != 0)
		return 0;
	count_states(d->f->rc, d->deal, d->n, &s);
	return s.sent + s.unknown + s.other == d->n;
}

static void
put_rule(struct fx *f)
{
	static struct it_resp resp;
	static const char rule[] = "rule promo\n  audience interested\n  send sms\n"
	    "  template sms \"PROMO {title} {link} Reply STOP to end\"\nend\n";

	it_http(f->http, "PUT", "/v1/rules/promo",
	    "Authorization: Bearer " TOKEN "\r\n", rule, strlen(rule), &resp);
	assert_int_equal(resp.status, 201);
}

static void
restored_backup_resumes_without_texting_a_delivered_deal_again(void **state)
{
	struct fx *f = *state;
	const int n = 200;
	char dir[512], file[512];
	struct done d = { f, "alpha", n };
	long before, after, promo, strangers;
	int *got = calloc((size_t)n, sizeof(int));
	int k, dups = 0;

	assert_non_null(got);
	it_path(f->rules_dir, sizeof(f->rules_dir), "backup-rules", "");
	assert_int_equal(mkdir(f->rules_dir, 0700), 0);
	it_path(dir, sizeof(dir), "redis-live", "");
	redis_start(f, dir);
	it_import_audience(f->port, n, PHONE_BASE, "laptop");
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	start_notifier(f, "bk-1", NULL);
	assert_true(it_wait(healthy, f, WAIT_MS));
	put_rule(f);
	assert_int_equal(it_publish(f->rc, it_deal("alpha", "laptop", 3600)), 0);
	assert_true(it_wait(delivered, &d, WAIT_MS));
	before = deal_texts(&f->gw, "alpha", n, NULL, NULL, NULL, NULL, NULL);
	assert_int_equal(before, n);

	/* Backup, stop everything, restore into a fresh server. */
	it_path(file, sizeof(file), "backup", ".rdb");
	backup(f, file);
	assert_int_equal(it_stop_clean(&f->nt.proc), 0);
	redis_stop(f);
	restore_dir(file, dir, sizeof(dir));
	redis_start(f, dir);
	assert_int_equal(it_shards_sum_key(f->rc, "HLEN %s", KEYS_SUBSCRIBERS), n);
	assert_int_equal(it_int(f->rc, "HLEN rules"), 1);
	assert_int_equal(it_deal_copies(f->rc, "alpha", "planned"), (int)keys_shards());

	start_notifier(f, "bk-1", NULL);
	assert_true(it_wait(healthy, f, WAIT_MS));
	assert_int_equal(it_publish(f->rc, it_deal("bravo", "laptop", 3600)), 0);
	d.deal = "bravo";
	assert_true(it_wait(delivered, &d, WAIT_MS));
	it_sleep_ms(500);   /* a late text of alpha would show now */

	after = deal_texts(&f->gw, "alpha", n, got, NULL, NULL, NULL, &strangers);
	for (k = 0; k < n; k++)
		dups += got[k] > 1;
	assert_int_equal(deal_texts(&f->gw, "bravo", n, got, NULL, "PROMO Deal bravo",
	    &promo, NULL), n);
	for (k = 0; k < n; k++)
		dups += got[k] > 1;
	printf("# restore of a backup taken after delivery: alpha texts before=%ld "
	    "after=%ld (new %ld); bravo texts=%d with the API rule=%ld; phones texted "
	    "twice=%d\n", before, after, after - before, n, promo, dups);
	fflush(stdout);
	assert_int_equal(after, before);
	assert_int_equal(promo, n);
	assert_int_equal(dups, 0);
	assert_int_equal(strangers, 0);
	free(got);
}

static void
backup_taken_mid_fanout_repeats_only_texts_sent_after_it(void **state)
{
	struct fx *f = *state;
	static const char *const gw_50ms[] = { "--latency-ms", "50", NULL };
	static const char extra[] = "[deliver]\nmax_in_flight = 32\n";
	const int n = 2000;
	char dir[512], file[512];
	struct done d = { f, "charlie", n };
	struct states in_backup, end;
	long at_start, at_end, live_texts, total, strangers;
	long *first = calloc((size_t)n, sizeof(long));
	int *got = calloc((size_t)n, sizeof(int));
	int k, dups = 0, dups_before_backup = 0;

	assert_non_null(first);
	assert_non_null(got);
	it_path(f->rules_dir, sizeof(f->rules_dir), "backup-rules", "");
	assert_int_equal(mkdir(f->rules_dir, 0700), 0);
	it_path(dir, sizeof(dir), "redis-live", "");
	redis_start(f, dir);
	it_import_audience(f->port, n, PHONE_BASE, "laptop");
	/* 32 in flight at 50 ms: the fan-out lasts about 3 s. */
	assert_int_equal(it_gwsim_start(&f->gw, gw_50ms), 0);
	start_notifier(f, "bk-2", extra);
	assert_true(it_wait(healthy, f, WAIT_MS));
	assert_int_equal(it_publish(f->rc, it_deal("charlie", "laptop", 3600)), 0);
	while (deal_texts(&f->gw, "charlie", n, NULL, NULL, NULL, NULL, NULL) < n * 3 / 10)
		it_sleep_ms(20);

	it_path(file, sizeof(file), "backup", ".rdb");
	at_start = deal_texts(&f->gw, "charlie", n, NULL, NULL, NULL, NULL, NULL);
	backup_bgsave(f, dir, file);
	at_end = deal_texts(&f->gw, "charlie", n, NULL, NULL, NULL, NULL, NULL);
	assert_true(it_wait(delivered, &d, WAIT_MS));
	live_texts = deal_texts(&f->gw, "charlie", n, NULL, NULL, NULL, NULL, NULL);
	assert_int_equal(live_texts, n);

	assert_int_equal(it_stop_clean(&f->nt.proc), 0);
	redis_stop(f);
	restore_dir(file, dir, sizeof(dir));
	redis_start(f, dir);
	count_states(f->rc, "charlie", n, &in_backup);
	start_notifier(f, "bk-2", extra);
	assert_true(it_wait(healthy, f, WAIT_MS));
	assert_true(it_wait(delivered, &d, WAIT_MS));
	it_sleep_ms(500);

	total = deal_texts(&f->gw, "charlie", n, got, first, NULL, NULL, &strangers);
	count_states(f->rc, "charlie", n, &end);
	for (k = 0; k < n; k++) {
		if (got[k] < 2)
			continue;
		dups++;
		/* Its claim was in the backup when its first text reached gwsim before
		 * the backup began. */
		if (first[k] < at_start)
			dups_before_backup++;
	}
	printf("# restore of a backup taken mid fan-out: texts at gwsim when the backup "
	    "began=%ld, when it returned=%ld, before the restore=%ld; in the backup: "
	    "sent=%ld sending=%ld admitted=%ld not yet admitted=%ld; after the restore: "
	    "new texts=%ld phones texted twice=%d (first text before the backup: %d), "
	    "final sent=%ld unknown=%ld other=%ld\n", at_start, at_end, live_texts,
	    in_backup.sent, in_backup.sending, in_backup.admitted, in_backup.absent,
	    total - live_texts, dups, dups_before_backup, end.sent, end.unknown,
	    end.other);
	fflush(stdout);
	assert_int_equal(strangers, 0);
	assert_int_equal(dups_before_backup, 0);
	/* What the backup had claimed is not sent again: it ends unknown. */
	assert_true(end.unknown >= in_backup.sending);
	/* Every text sent again is one the backup had not seen leave. */
	assert_true(total - live_texts <= n - at_start);
	assert_int_equal(end.sent + end.unknown, n);
	free(first);
	free(got);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    restored_backup_resumes_without_texting_a_delivered_deal_again, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    backup_taken_mid_fanout_repeats_only_texts_sent_after_it, setup,
		    teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("backup", tests, NULL, NULL);
}
