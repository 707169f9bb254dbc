/*
 * bench_cancel.c: time from a cancel landing on "deals" to the last push of that deal
 * leaving for the gateway, with about 50,000 pushes queued (issue 6 item 8,
 * `make bench`).
 *
 * One deal matches N subscribers (BENCH_CANCEL_SUBS, default 50,000). The deliver
 * side is made slow on purpose: gwsim answers every request after 200 ms and the
 * notifier keeps at most 64 requests in flight (about 320 pushes/s), so nearly the
 * whole fan-out is still queued (admitted in memory, or jobs not yet admitted on
 * "pushes") when, after the first few hundred requests reached gwsim, the cancel
 * {"id": ..., "cancel": true} is XADDed to "deals". The figure is
 *   ms = max(gwsim ts_ms of the deal's requests) - the cancel entry id's ms
 * (0 when no request arrived after it): requests already in flight may finish, what
 * counts is the last one to leave. Then the bench waits until every subscriber has
 * an outcome on pushes:log (90 s at most) and checks that each has exactly one, that
 * only "sent" and "cancelled" occur, and that gwsim saw each sent push once. Test
 * code: it blocks, sleeps and forks. Ends with one BENCH line; exits non-zero when
 * the setup or a check fails.
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

#define BENCH_SUBS_DEFAULT 50000
#define BENCH_SUBS_MIN 1000
#define BENCH_SUBS_MAX 200000
#define BENCH_WARM_SUBS 200          /* a warm-up deal: mirror loaded, connections open */
#define BENCH_CATEGORY "laptop"
#define BENCH_WARM_CATEGORY "phone"
#define BENCH_LATENCY 200            /* gwsim: every answer this many ms late */
#define BENCH_LATENCY_MS "200"       /* the same, for its command line */
#define BENCH_IN_FLIGHT 64           /* notifier: requests in flight */
#define BENCH_CANCEL_AFTER 300       /* gwsim requests of the deal before the cancel */
#define BENCH_POLL_MS 5
#define BENCH_START_MS 30000         /* deal planned and BENCH_CANCEL_AFTER sent */
#define BENCH_SETTLE_MS 90000        /* every subscriber has an outcome */
#define BENCH_GOAL_MS 100.0

/*
 * [deliver] max_in_flight caps the notifier's requests in flight (all gateways);
 * the twilio gateway's own limit is 64 by default as well. Log level warn: info
 * would write a line per push.
 */
/*
 * The requests go out in waves: the first 64 together, and each answer (200 ms
 * later, all 64 at once) frees the slots for the next 64, so a wave leaves every
 * 200 ms and a few ms. Each trial cancels this many ms after gwsim received the
 * BENCH_CANCEL_AFTER-th request (the first of a wave, give or take the 5 ms poll):
 * spread over the cycle, and packed around the next wave, where the cancel races the
 * claim of the next 64 and the worst case lies.
 */
static const long bench_offsets[] = { 0, 50, 100, 150, 190, 195, 200, 205, 210 };
#define BENCH_TRIALS ((int)(sizeof(bench_offsets) / sizeof(bench_offsets[0])))

static const char bench_config[] =
    "[deliver]\nmax_in_flight = 64\n"
    "[notifier]\nlog_level = warn\n";

/* The id of the newest entry of a stream into out ("0-0" when empty). 0 or -1. */
static int
stream_last_id(redisContext *rc, const char *key, char *out, size_t size)
{
	redisReply *r = redisCommand(rc, "XREVRANGE %s + - COUNT 1", key);
	int rv = -1;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
		snprintf(out, size, "0-0");
		rv = 0;
	} else if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2 &&
	    r->element[0]->element[0]->type == REDIS_REPLY_STRING) {
		snprintf(out, size, "%s", r->element[0]->element[0]->str);
		rv = 0;
	}
	freeReplyObject(r);
	return rv;
}

/* 1 when the hash has the field, 0 when not, -1 on error. */
static int
hash_has(redisContext *rc, const char *key, const char *field)
{
	redisReply *r = redisCommand(rc, "HEXISTS %s %s", key, field);
	int v = r != NULL && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;

	freeReplyObject(r);
	return v;
}

/* Jobs of the deliver group read and not acked (XPENDING), and not yet read (the
 * group's lag, Redis 7); -1 where unknown. */
static void
jobs_state(redisContext *rc, long long *pending, long long *unread)
{
	redisReply *r = redisCommand(rc, "XPENDING pushes deliver");
	size_t i, k;

	*pending = *unread = -1;
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_INTEGER)
		*pending = r->element[0]->integer;
	freeReplyObject(r);
	r = redisCommand(rc, "XINFO GROUPS pushes");
	for (i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *g = r->element[i];
		int ours = 0;

		if (g->type != REDIS_REPLY_ARRAY)
			continue;
		for (k = 0; k + 1 < g->elements; k += 2)
			if (g->element[k]->type == REDIS_REPLY_STRING &&
			    strcmp(g->element[k]->str, "name") == 0 &&
			    g->element[k + 1]->type == REDIS_REPLY_STRING &&
			    strcmp(g->element[k + 1]->str, "deliver") == 0)
				ours = 1;
		for (k = 0; ours && k + 1 < g->elements; k += 2)
			if (g->element[k]->type == REDIS_REPLY_STRING &&
			    strcmp(g->element[k]->str, "lag") == 0 &&
			    g->element[k + 1]->type == REDIS_REPLY_INTEGER)
				*unread = g->element[k + 1]->integer;
	}
	freeReplyObject(r);
}

/* Lines appended to the gwsim log since *off (advanced past the last whole line). */
static long
log_new_lines(const char *path, long *off)
{
	FILE *f = fopen(path, "r");
	char buf[65536];
	size_t n, i;
	long lines = 0, pos = *off, last_nl = -1;

	if (f == NULL)
		return 0;
	if (fseek(f, *off, SEEK_SET) == 0) {
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
			for (i = 0; i < n; i++)
				if (buf[i] == '\n') {
					lines++;
					last_nl = pos + (long)i;
				}
			pos += (long)n;
		}
	}
	fclose(f);
	if (last_nl >= 0)
		*off = last_nl + 1;
	return lines;
}

/* The subscriber number i of "s-<i>", or -1. */
static long
sub_index(const char *s, size_t len, long n)
{
	char tmp[32], *end;
	long i;

	if (len < 3 || len >= sizeof(tmp) || s[0] != 's' || s[1] != '-')
		return -1;
	memcpy(tmp, s + 2, len - 2);
	tmp[len - 2] = '\0';
	errno = 0;
	i = strtol(tmp, &end, 10);
	return errno != 0 || end == tmp || *end != '\0' || i < 1 || i > n ? -1 : i;
}

struct gw_tally {
	long requests;            /* of the deal */
	long after;               /* of those, arrived after the cancel landed */
	long dups;                /* a subscriber requested more than once */
	long bad;                 /* not a 201, or an unknown subscriber */
	long long first_ms, last_ms;
};

/* The deal's requests in the gwsim log from byte off on (push id "<entry>:s-<i>:sms"). */
static int
gw_scan(const char *path, long off, const char *deal_entry, long long cancel_ms, long n,
    unsigned char *seen, struct gw_tally *t)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, prefix[80];
	size_t cap = 0, plen;

	memset(t, 0, sizeof(*t));
	t->first_ms = t->last_ms = -1;
	if (f == NULL || fseek(f, off, SEEK_SET) != 0) {
		if (f != NULL)
			fclose(f);
		return -1;
	}
	snprintf(prefix, sizeof(prefix), "%s:", deal_entry);
	plen = strlen(prefix);
	while (getline(&line, &cap, f) > 0) {
		cJSON *o = cJSON_Parse(line);
		const cJSON *push, *ts, *st;
		const char *sub, *colon;
		long long ms;
		long i;

		if (o == NULL)
			continue;
		push = cJSON_GetObjectItemCaseSensitive(o, "push");
		ts = cJSON_GetObjectItemCaseSensitive(o, "ts_ms");
		st = cJSON_GetObjectItemCaseSensitive(o, "status");
		if (!cJSON_IsString(push) || strncmp(push->valuestring, prefix, plen) != 0 ||
		    !cJSON_IsNumber(ts)) {
			cJSON_Delete(o);
			continue;
		}
		ms = (long long)ts->valuedouble;
		t->requests++;
		if (t->first_ms < 0 || ms < t->first_ms)
			t->first_ms = ms;
		if (ms > t->last_ms)
			t->last_ms = ms;
		if (ms > cancel_ms)
			t->after++;
		sub = push->valuestring + plen;
		colon = strchr(sub, ':');
		i = sub_index(sub, colon ? (size_t)(colon - sub) : strlen(sub), n);
		if (i < 0 || !cJSON_IsNumber(st) || st->valueint != 201)
			t->bad++;
		else if (seen[i]++ > 0)
			t->dups++;
		cJSON_Delete(o);
	}
	free(line);
	fclose(f);
	return 0;
}

struct log_tally {
	long entries, sent, cancelled, other, unknown_sub;
	long missing, multiple;   /* subscribers with no, or more than one, outcome */
	char other_name[32];
	long long last_ms;        /* ms of the newest entry id */
};

/* Tallies the deal's pushes:log entries after entry id from_id, per subscriber. */
static int
log_scan(redisContext *rc, const char *from_id, const char *deal_id, long n,
    unsigned char *count, struct log_tally *t)
{
	char start[80];
	long i;

	memset(t, 0, sizeof(*t));
	t->last_ms = -1;
	snprintf(start, sizeof(start), "(%s", from_id);
	for (;;) {
		redisReply *r = redisCommand(rc, "XRANGE pushes:log %s + COUNT 5000", start);
		size_t e, k;

		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return -1;
		}
		if (r->elements == 0) {
			freeReplyObject(r);
			break;
		}
		for (e = 0; e < r->elements; e++) {
			const redisReply *en = r->element[e], *f;
			const char *deal = NULL, *sub = NULL, *outcome = NULL;
			size_t sublen = 0;

			if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 ||
			    en->element[0]->type != REDIS_REPLY_STRING ||
			    en->element[1]->type != REDIS_REPLY_ARRAY)
				continue;
			snprintf(start, sizeof(start), "(%s", en->element[0]->str);
			t->last_ms = bench_entry_ms(en->element[0]->str);
			f = en->element[1];
			for (k = 0; k + 1 < f->elements; k += 2) {
				const redisReply *key = f->element[k], *v = f->element[k + 1];

				if (key->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
					continue;
				if (strcmp(key->str, "deal") == 0)
					deal = v->str;
				else if (strcmp(key->str, "sub") == 0) {
					sub = v->str;
					sublen = v->len;
				} else if (strcmp(key->str, "outcome") == 0)
					outcome = v->str;
			}
			if (deal == NULL || strcmp(deal, deal_id) != 0)
				continue;
			t->entries++;
			if (outcome != NULL && strcmp(outcome, "sent") == 0)
				t->sent++;
			else if (outcome != NULL && strcmp(outcome, "cancelled") == 0)
				t->cancelled++;
			else {
				t->other++;
				snprintf(t->other_name, sizeof(t->other_name), "%s",
				    outcome ? outcome : "(none)");
			}
			if (sub == NULL || (i = sub_index(sub, sublen, n)) < 0)
				t->unknown_sub++;
			else if (count[i] < 255)
				count[i]++;
		}
		freeReplyObject(r);
	}
	for (i = 1; i <= n; i++) {
		if (count[i] == 0)
			t->missing++;
		else if (count[i] > 1)
			t->multiple++;
	}
	return 0;
}

/* XLEN pushes:log, or -1. */
static long long
log_len(redisContext *rc)
{
	return it_int(rc, "XLEN pushes:log");
}

/* One trial's figures. */
struct trial {
	long long deal_ms, cancel_ms;
	long long done_at_cancel;     /* outcomes recorded just before the cancel */
	long long pending_at_cancel, unread_at_cancel;
	long received_at_cancel;      /* requests gwsim had received */
	long long settled_ms;         /* cancel landing -> last outcome (Redis clock) */
	long long pending_after;
	double ms;
	struct gw_tally gt;
	struct log_tally lt;
	int ok;
};

struct bench {
	redisContext *rc;
	struct it_gwsim *gw;
	const char *nt_log;
	long n;
	unsigned char *seen, *count;
};

/*
 * Publishes a deal to the n subscribers, waits until it is planned and gwsim has
 * received BENCH_CANCEL_AFTER of its requests, waits offset_ms more, XADDs the cancel,
 * then waits for all n outcomes and tallies. 0 (t filled; t->ok says whether the
 * checks passed) or -1 (setup failure, printed).
 */
static int
trial_run(struct bench *b, int k, long offset_ms, struct trial *t)
{
	redisContext *rc = b->rc;
	redisReply *r = NULL;
	char deal_id[64], deal_key[80], deal_entry[64], log_from[64], cancel_json[128];
	long gw_off = 0, gw_deal_off;
	long long t0, t_cancel, base, len, pending, unread;
	int planned = 0;

	memset(t, 0, sizeof(*t));
	memset(b->seen, 0, (size_t)b->n + 1);
	memset(b->count, 0, (size_t)b->n + 1);
	if ((base = log_len(rc)) < 0 ||
	    stream_last_id(rc, "pushes:log", log_from, sizeof(log_from)) < 0) {
		fprintf(stderr, "bench_cancel: cannot read pushes:log\n");
		return -1;
	}
	log_new_lines(b->gw->logfile, &gw_off);
	gw_deal_off = gw_off;

	snprintf(deal_id, sizeof(deal_id), "bench-%d-%d", (int)getpid(), k);
	snprintf(deal_key, sizeof(deal_key), "deal:%s", deal_id);
	r = redisCommand(rc, "XADD deals * deal %s", it_deal(deal_id, BENCH_CATEGORY, 600));
	if (r == NULL || r->type != REDIS_REPLY_STRING ||
	    (t->deal_ms = bench_entry_ms(r->str)) < 0) {
		fprintf(stderr, "bench_cancel: XADD deals failed\n");
		freeReplyObject(r);
		return -1;
	}
	snprintf(deal_entry, sizeof(deal_entry), "%s", r->str);
	freeReplyObject(r);
	t0 = bench_now_ms();
	while (!planned || t->received_at_cancel < BENCH_CANCEL_AFTER) {
		if (bench_now_ms() - t0 > BENCH_START_MS) {
			fprintf(stderr, "bench_cancel: after %d s the deal is %splanned and "
			    "gwsim received %ld of its requests (see %s)\n", BENCH_START_MS / 1000,
			    planned ? "" : "not ", t->received_at_cancel, b->nt_log);
			return -1;
		}
		it_sleep_ms(BENCH_POLL_MS);
		if (!planned && (planned = hash_has(rc, deal_key, "planned")) < 0) {
			fprintf(stderr, "bench_cancel: HEXISTS %s failed\n", deal_key);
			return -1;
		}
		t->received_at_cancel += log_new_lines(b->gw->logfile, &gw_off);
	}
	if (offset_ms > 0)
		it_sleep_ms(offset_ms);
	/* The state just before the cancel. gwsim logs a request when it arrives (the
	 * answer follows 200 ms later). */
	t->received_at_cancel += log_new_lines(b->gw->logfile, &gw_off);
	t->done_at_cancel = log_len(rc) - base;
	jobs_state(rc, &t->pending_at_cancel, &t->unread_at_cancel);
	snprintf(cancel_json, sizeof(cancel_json), "{\"id\": \"%s\", \"cancel\": true}",
	    deal_id);
	r = redisCommand(rc, "XADD deals * deal %s", cancel_json);
	t_cancel = bench_now_ms();
	if (r == NULL || r->type != REDIS_REPLY_STRING ||
	    (t->cancel_ms = bench_entry_ms(r->str)) < 0) {
		fprintf(stderr, "bench_cancel: XADD of the cancel failed\n");
		freeReplyObject(r);
		return -1;
	}
	freeReplyObject(r);

	/* Every subscriber gets an outcome: sent, or cancelled (at admit or claim). */
	while ((len = log_len(rc)) >= 0 && len - base < b->n &&
	    bench_now_ms() - t_cancel < BENCH_SETTLE_MS)
		it_sleep_ms(20);
	if (len < 0 || len - base < b->n) {
		fprintf(stderr, "bench_cancel: %lld of %ld outcomes on pushes:log %d s after "
		    "the cancel (see %s)\n", len < 0 ? -1 : len - base, b->n,
		    BENCH_SETTLE_MS / 1000, b->nt_log);
		return -1;
	}
	/* Jobs are acked after their last record; none may stay pending. */
	for (t0 = bench_now_ms(); jobs_state(rc, &pending, &unread), pending != 0 &&
	    bench_now_ms() - t0 < 5000; )
		it_sleep_ms(20);
	t->pending_after = pending;
	it_sleep_ms(300);    /* a late request would still show at gwsim */
	if (gw_scan(b->gw->logfile, gw_deal_off, deal_entry, t->cancel_ms, b->n, b->seen,
	    &t->gt) < 0 || log_scan(rc, log_from, deal_id, b->n, b->count, &t->lt) < 0) {
		fprintf(stderr, "bench_cancel: cannot read the gwsim log or pushes:log\n");
		return -1;
	}
	t->ms = t->gt.last_ms > t->cancel_ms ? (double)(t->gt.last_ms - t->cancel_ms) : 0.0;
	t->settled_ms = t->lt.last_ms - t->cancel_ms;
	t->ok = t->lt.other == 0 && t->lt.missing == 0 && t->lt.multiple == 0 &&
	    t->lt.unknown_sub == 0 && t->gt.dups == 0 && t->gt.bad == 0 &&
	    t->gt.requests == t->lt.sent && t->pending_after == 0;

	printf("  trial %d (cancel %ld ms after the %dth request): %lld ms after the deal "
	    "landed, %lld pushes not yet sent (%lld outcomes recorded, gwsim had received "
	    "%ld; jobs read and not acked %lld, not yet read %lld)\n", k + 1, offset_ms,
	    BENCH_CANCEL_AFTER, t->cancel_ms - t->deal_ms, b->n - t->done_at_cancel,
	    t->done_at_cancel, t->received_at_cancel, t->pending_at_cancel,
	    t->unread_at_cancel);
	printf("    gwsim: %ld requests, %ld arrived after the cancel landed, last arrival "
	    "%+lld ms from it -> %.0f ms\n", t->gt.requests, t->gt.after,
	    t->gt.last_ms - t->cancel_ms, t->ms);
	printf("    pushes:log: %ld sent, %ld cancelled, %ld other%s%s; subscribers without "
	    "an outcome %ld, with more than one %ld; the last of the %ld outcomes %lld ms "
	    "after the cancel; jobs pending %lld\n", t->lt.sent, t->lt.cancelled,
	    t->lt.other, t->lt.other ? " e.g. " : "", t->lt.other_name, t->lt.missing,
	    t->lt.multiple, b->n, t->settled_ms, t->pending_after);
	if (!t->ok)
		fprintf(stderr, "bench_cancel: trial %d: check failed: every subscriber must "
		    "have exactly one outcome, sent or cancelled, every sent push exactly one "
		    "201 at gwsim, and no job may stay pending (gwsim duplicates %ld, refused "
		    "or unknown %ld, requests %ld vs sent %ld; unknown subscribers on "
		    "pushes:log %ld)\n", k + 1, t->gt.dups, t->gt.bad, t->gt.requests,
		    t->lt.sent, t->lt.unknown_sub);
	return 0;
}

int
main(void)
{
	static const char *const gw_flags[] = { "--latency-ms", BENCH_LATENCY_MS, NULL };
	struct it_gwsim gw;
	struct it_notifier nt;
	struct trial t;
	struct bench b;
	char *subs = NULL, *warm = NULL, deal_id[64];
	long n = bench_env_long("BENCH_CANCEL_SUBS", BENCH_SUBS_DEFAULT, BENCH_SUBS_MIN,
	    BENCH_SUBS_MAX), sent = 0, cancelled = 0, after = 0;
	long long t0, len, queued_min = -1;
	int port = it_redis_port(), gw_up = 0, nt_up = 0, rv = 2, k, failed = 0;
	double worst = 0;

	memset(&gw, 0, sizeof(gw));
	memset(&nt, 0, sizeof(nt));
	memset(&b, 0, sizeof(b));
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (n < 0) {
		fprintf(stderr, "bench_cancel: BENCH_CANCEL_SUBS must be %d..%d\n",
		    BENCH_SUBS_MIN, BENCH_SUBS_MAX);
		return 2;
	}
	b.n = n;
	b.gw = &gw;
	b.nt_log = nt.proc.log;
	if ((subs = bench_subscribers_jsonl("s", n, 0, BENCH_CATEGORY)) == NULL ||
	    (warm = bench_subscribers_jsonl("w", BENCH_WARM_SUBS, n, BENCH_WARM_CATEGORY)) ==
	    NULL || (b.seen = calloc((size_t)n + 1, 1)) == NULL ||
	    (b.count = calloc((size_t)n + 1, 1)) == NULL) {
		fprintf(stderr, "bench_cancel: out of memory\n");
		goto end;
	}

	/* Setup: empty redis, a slow gwsim, the audience, the notifier. */
	b.rc = it_redis_connect(port);
	it_flush(b.rc);
	if (it_gwsim_start(&gw, gw_flags) < 0) {
		fprintf(stderr, "bench_cancel: gwsim did not start (see %s)\n", gw.proc.log);
		goto end;
	}
	gw_up = 1;
	t0 = bench_now_ms();
	if (it_import(port, subs) != 0 || it_import(port, warm) != 0) {
		fprintf(stderr, "bench_cancel: importing subscribers failed\n");
		goto end;
	}
	printf("cancel_stop: one deal to %ld subscribers (imported in %.1f s), gwsim "
	    "--latency-ms %s, max_in_flight %d (at most %d pushes/s), %d trials\n", n,
	    (double)(bench_now_ms() - t0) / 1000.0, BENCH_LATENCY_MS, BENCH_IN_FLIGHT,
	    BENCH_IN_FLIGHT * 1000 / BENCH_LATENCY, BENCH_TRIALS);
	if (it_notifier_start(&nt, port, gw.port, "bench", bench_config) < 0) {
		fprintf(stderr, "bench_cancel: notifier did not start\n");
		goto end;
	}
	nt_up = 1;

	/* Warm-up: proves the mirror loaded and the groups made, opens connections. */
	snprintf(deal_id, sizeof(deal_id), "warm-%d", (int)getpid());
	if (it_publish(b.rc, it_deal(deal_id, BENCH_WARM_CATEGORY, 600)) < 0) {
		fprintf(stderr, "bench_cancel: XADD deals failed\n");
		goto end;
	}
	for (t0 = bench_now_ms(); (len = log_len(b.rc)) >= 0 && len < BENCH_WARM_SUBS &&
	    bench_now_ms() - t0 < 30000; )
		it_sleep_ms(20);
	if (len < BENCH_WARM_SUBS) {
		fprintf(stderr, "bench_cancel: the warm-up deal was not delivered within 30 s "
		    "(see %s and %s)\n", nt.proc.log, gw.proc.log);
		goto end;
	}
	it_sleep_ms(300);

	for (k = 0; k < BENCH_TRIALS; k++) {
		if (trial_run(&b, k, bench_offsets[k], &t) < 0) {
			rv = 1;
			goto end;
		}
		if (!t.ok)
			failed++;
		if (t.ms > worst)
			worst = t.ms;
		if (queued_min < 0 || b.n - t.done_at_cancel < queued_min)
			queued_min = b.n - t.done_at_cancel;
		sent += t.lt.sent;
		cancelled += t.lt.cancelled;
		after += t.gt.after;
	}
	printf("  checks: %s\n", failed ? "FAILED (see above)" : "in every trial each "
	    "subscriber has exactly one outcome (sent or cancelled) and gwsim saw each sent "
	    "push once");
	printf("ms = the worst trial's last request of the deal to arrive at gwsim - the "
	    "cancel landing (XADD entry id), 0 when none arrived after it; lower is better "
	    "(goal < %.0f ms with ~50,000 queued); ratio = ms/%.0f. queued = the fewest "
	    "pushes not yet sent at a cancel; sent, cancelled, after_cancel = sums over "
	    "the trials\n", BENCH_GOAL_MS, BENCH_GOAL_MS);
	printf("BENCH name=cancel_stop ms=%.0f trials=%d queued=%lld sent=%ld "
	    "cancelled=%ld after_cancel=%ld ratio=%.3f\n", worst, BENCH_TRIALS, queued_min,
	    sent, cancelled, after, worst / BENCH_GOAL_MS);
	rv = failed ? 1 : 0;
end:
	if (nt_up)
		it_stop(&nt.proc, SIGTERM, 5000);
	if (gw_up)
		it_stop(&gw.proc, SIGTERM, 2000);
	if (b.rc != NULL)
		redisFree(b.rc);
	free(b.count);
	free(b.seen);
	free(warm);
	free(subs);
	return rv;
}
