/*
 * test_promises.h: what the promise tests (test_promises.c, test_promises_takeover.c)
 * share: an audience s-0..s-(n-1) with phones +1512555<1000+i>, publishing a deal
 * and keeping its stream entry id, and the tally of one deal from what reached the
 * gateway (gwsim's log: texts per phone) and from Redis (push:<deal> states,
 * pushes:log). Counts, never timings. Test code: it blocks and sleeps.
 */
#ifndef DEALPUSH_TEST_PROMISES_H
#define DEALPUSH_TEST_PROMISES_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "itest.h"
#include "keys.h"

#define PT_PHONE_BASE 1000      /* subscriber s-i has +1512555<1000+i> */
#define PT_SETTLE_MS 45000      /* the longest a fan-out may take to end */

/* What one deal left behind. Per subscriber i (s-i, sms): */
struct pt_tally {
	int n;
	int *texts;             /* 201 answers to its number */
	int *reqs;              /* requests of any status to its number */
	char **state;           /* push:<deal> state (NULL: absent) */
	int *nlog;              /* pushes:log entries of the deal */
	/* gwsim, the deal's requests (push id "<entry>:..."): */
	long requests, accepted, strangers, dup_phones, accepted_after;
	/* Redis: */
	long final, open, sent, unknown, other, unlogged;
	long sent_not_at_gw;    /* state sent, but the gateway never answered 201 */
	long at_gw_not_sent;    /* 201 at the gateway, state neither sent nor unknown */
	char first_open[96], first_other[96];
};

static inline long long
pt_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* n subscribers s-0..s-(n-1) interested in category, consenting to SMS. */
static inline void
pt_import(int port, int n, const char *category)
{
	it_import_audience(port, n, PT_PHONE_BASE, category);
}

/* XADD deals * deal <json>; the entry id into entry. Aborts the test on failure. */
static inline void
pt_publish(redisContext *rc, const char *json, char *entry, size_t size)
{
	redisReply *r = redisCommand(rc, "XADD deals * deal %b", json, strlen(json));

	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	snprintf(entry, size, "%s", r->str);
	freeReplyObject(r);
}

/* The ms part of a stream entry id "<ms>-<seq>". */
static inline long long
pt_entry_ms(const char *entry)
{
	return strtoll(entry, NULL, 10);
}

/* 1 when a push:<deal> state is final (docs/delivery.md). */
static inline int
pt_final(const char *st)
{
	static const char *const fin[] = { "sent", "unknown", "failed", "opted_out",
		"expired", "cancelled", "sold_out", "no_consent", "no_subscriber",
		"quiet_hours", "daily_cap", "campaign_cap", NULL };
	int k;

	for (k = 0; st != NULL && fin[k] != NULL; k++)
		if (strcmp(st, fin[k]) == 0)
			return 1;
	return 0;
}

/* Subscriber index of "+1512555<1000+i>" or of a field "s-<i>:sms"; -1 if neither. */
static inline int
pt_index(const char *s, int n)
{
	char *end;
	long v;

	if (strncmp(s, "+1512555", 8) == 0) {
		errno = 0;
		v = strtol(s + 8, &end, 10);
		if (errno != 0 || *end != '\0')
			return -1;
		v -= PT_PHONE_BASE;
	} else if (strncmp(s, "s-", 2) == 0) {
		errno = 0;
		v = strtol(s + 2, &end, 10);
		if (errno != 0 || end == s + 2 || (*end != '\0' && *end != ':'))
			return -1;
	} else {
		return -1;
	}
	return v >= 0 && v < n ? (int)v : -1;
}

/* Every gwsim log line of the deal whose entry id is entry, as a cJSON array. */
static inline cJSON *
pt_gw_lines(const struct it_gwsim *g, const char *entry)
{
	cJSON *all = it_gwsim_requests(g), *out = cJSON_CreateArray(), *o, *next;
	size_t plen = strlen(entry);

	assert_non_null(out);
	for (o = all->child; o != NULL; o = next) {
		const cJSON *push = cJSON_GetObjectItemCaseSensitive(o, "push");
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");

		next = o->next;
		if (!cJSON_IsNumber(st) || !cJSON_IsString(push) ||
		    strncmp(push->valuestring, entry, plen) != 0 ||
		    push->valuestring[plen] != ':')
			continue;
		cJSON_AddItemToArray(out, cJSON_DetachItemViaPointer(all, o));
	}
	cJSON_Delete(all);
	return out;
}

static inline void
pt_tally_free(struct pt_tally *t)
{
	int i;

	for (i = 0; t->state != NULL && i < t->n; i++)
		free(t->state[i]);
	free(t->state);
	free(t->texts);
	free(t->reqs);
	free(t->nlog);
	memset(t, 0, sizeof(*t));
}

/*
 * Reads gwsim's log (texts per number; accepted_after counts 201s arriving later than
 * after_ms, wall clock; 0 = none), push:<deal> and pushes:log for deal, and derives
 * the counts. Free with pt_tally_free.
 */
static inline void
pt_tally(struct pt_tally *t, redisContext *rc, const struct it_gwsim *g,
    const char *deal, const char *entry, int n, long long after_ms)
{
	cJSON *lines = pt_gw_lines(g, entry), *o;
	char key[KEYS_MAX];
	redisReply *r;
	uint32_t shard;
	size_t i, j;
	int k;

	memset(t, 0, sizeof(*t));
	t->n = n;
	t->texts = calloc((size_t)n, sizeof(int));
	t->reqs = calloc((size_t)n, sizeof(int));
	t->nlog = calloc((size_t)n, sizeof(int));
	t->state = calloc((size_t)n, sizeof(char *));
	assert_true(t->texts && t->reqs && t->nlog && t->state);

	cJSON_ArrayForEach(o, lines) {
		const cJSON *to = cJSON_GetObjectItemCaseSensitive(o, "to");
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
		const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "ts_ms");
		int idx = cJSON_IsString(to) ? pt_index(to->valuestring, n) : -1;

		t->requests++;
		if (idx < 0) {
			t->strangers++;
			continue;
		}
		t->reqs[idx]++;
		if (st->valueint / 100 != 2)
			continue;
		t->accepted++;
		t->texts[idx]++;
		if (after_ms > 0 && cJSON_IsNumber(ts) && (long long)ts->valuedouble > after_ms)
			t->accepted_after++;
	}
	cJSON_Delete(lines);
	for (k = 0; k < n; k++)
		if (t->texts[k] > 1 && t->dup_phones++ < 3)
			printf("# duplicate: +1512555%04d got %d texts of deal %s\n",
			    PT_PHONE_BASE + k, t->texts[k], deal);

	/* Every shard's push:<deal> and pushes:log (one of each without a layout). */
	for (shard = 0; shard < keys_shards(); shard++) {
		keys_per(shard, KEYS_PUSH, deal, key, sizeof(key));
		r = redisCommand(rc, "HGETALL %s", key);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		for (i = 0; i + 1 < r->elements; i += 2) {
			int idx = pt_index(r->element[i]->str, n);

			if (idx >= 0 && t->state[idx] == NULL)
				assert_non_null(t->state[idx] =
				    strdup(r->element[i + 1]->str));
		}
		freeReplyObject(r);

		keys_shard_key(shard, KEYS_PUSHES_LOG, key, sizeof(key));
		r = redisCommand(rc, "XRANGE %s - +", key);
		assert_non_null(r);
		assert_int_equal(r->type, REDIS_REPLY_ARRAY);
		for (i = 0; i < r->elements; i++) {
			redisReply *fl = r->element[i]->element[1];
			const char *sub = NULL, *d = NULL;
			int idx;

			for (j = 0; j + 1 < fl->elements; j += 2) {
				if (strcmp(fl->element[j]->str, "sub") == 0)
					sub = fl->element[j + 1]->str;
				else if (strcmp(fl->element[j]->str, "deal") == 0)
					d = fl->element[j + 1]->str;
			}
			if (sub != NULL && d != NULL && strcmp(d, deal) == 0 &&
			    (idx = pt_index(sub, n)) >= 0)
				t->nlog[idx]++;
		}
		freeReplyObject(r);
	}

	for (k = 0; k < n; k++) {
		const char *st = t->state[k];

		if (!pt_final(st)) {
			if (t->open++ == 0)
				snprintf(t->first_open, sizeof(t->first_open), "s-%d:%s", k,
				    st ? st : "(absent)");
			continue;
		}
		t->final++;
		if (strcmp(st, "sent") == 0)
			t->sent++;
		else if (strcmp(st, "unknown") == 0)
			t->unknown++;
		else if (t->other++ == 0)
			snprintf(t->first_other, sizeof(t->first_other), "s-%d:%s", k, st);
		if (t->nlog[k] == 0)
			t->unlogged++;
		if (strcmp(st, "sent") == 0 && t->texts[k] == 0)
			t->sent_not_at_gw++;
	}
	for (k = 0; k < n; k++)
		if (t->texts[k] > 0 && (t->state[k] == NULL ||
		    (strcmp(t->state[k], "sent") != 0 && strcmp(t->state[k], "unknown") != 0)))
			t->at_gw_not_sent++;
}

static inline void
pt_tally_print(const char *name, const struct pt_tally *t)
{
	printf("# %s: gateway requests=%ld accepted=%ld dup_phones=%ld strangers=%ld "
	    "accepted_after=%ld; states final=%ld open=%ld sent=%ld unknown=%ld other=%ld "
	    "unlogged=%ld sent_not_at_gw=%ld at_gw_not_sent=%ld\n", name, t->requests,
	    t->accepted, t->dup_phones, t->strangers, t->accepted_after, t->final, t->open,
	    t->sent, t->unknown, t->other, t->unlogged, t->sent_not_at_gw,
	    t->at_gw_not_sent);
	if (t->open > 0)
		printf("# %s: first open push %s\n", name, t->first_open);
	if (t->other > 0)
		printf("# %s: first push neither sent nor unknown %s\n", name, t->first_other);
	fflush(stdout);
}

/* What pt_wait_settled watches. */
struct pt_watch {
	redisContext *rc;
	const struct it_gwsim *g;
	const char *deal, *entry;
	int n;
	long dup_phones;        /* out: phones with two texts when it gave up early */
};

/* Over every shard's push:<deal>: the states there are, how many are final, and
 * how many read mark (NULL: not counted). */
static inline void
pt_count_states(redisContext *rc, const char *deal, const char *mark, long *states,
    long *final, long *marked)
{
	char key[KEYS_MAX];
	uint32_t shard;
	size_t i;

	*states = *final = *marked = 0;
	for (shard = 0; shard < keys_shards(); shard++) {
		redisReply *r;

		keys_per(shard, KEYS_PUSH, deal, key, sizeof(key));
		r = redisCommand(rc, "HVALS %s", key);
		for (i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
			*final += pt_final(r->element[i]->str);
			*marked += mark != NULL && strcmp(r->element[i]->str, mark) == 0;
			(*states)++;
		}
		freeReplyObject(r);
	}
}

/* 1 when every push of the deal is final; also 1 (giving up early) as soon as a
 * phone has two texts: the promise is broken, waiting longer proves nothing. */
static inline int
pt_settled(void *arg)
{
	struct pt_watch *w = arg;
	cJSON *lines, *o;
	int *texts, k, done = 0;
	long final, states, marked;

	pt_count_states(w->rc, w->deal, NULL, &states, &final, &marked);
	done = states == w->n && final == w->n;
	if (done)
		return 1;
	texts = calloc((size_t)w->n, sizeof(int));
	assert_non_null(texts);
	lines = pt_gw_lines(w->g, w->entry);
	cJSON_ArrayForEach(o, lines) {
		const cJSON *to = cJSON_GetObjectItemCaseSensitive(o, "to");
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");

		if (cJSON_IsString(to) && st->valueint / 100 == 2 &&
		    (k = pt_index(to->valuestring, w->n)) >= 0 && ++texts[k] == 2)
			w->dup_phones++;
	}
	cJSON_Delete(lines);
	free(texts);
	return w->dup_phones > 0;
}

/*
 * Waits until every push of the deal is final (or a phone got two texts, or
 * timeout_ms), then a moment for stragglers (a request that was still on its way),
 * and says which it was as a TAP comment. Returns 1 when everything became final.
 */
static inline int
pt_wait_settled(redisContext *rc, const struct it_gwsim *g, const char *deal,
    const char *entry, int n, long timeout_ms)
{
	struct pt_watch w = { rc, g, deal, entry, n, 0 };
	int ok = it_wait(pt_settled, &w, timeout_ms);

	if (!ok)
		printf("# %s: not every push final after %ld s\n", deal, timeout_ms / 1000);
	else if (w.dup_phones > 0)
		printf("# %s: stopped waiting: a phone already got two texts\n", deal);
	fflush(stdout);
	it_sleep_ms(700);
	return ok && w.dup_phones == 0;
}

/* Pending entries of a consumer in a group (XPENDING summary), -1 on error. */
static inline long long
pt_pending_of(redisContext *rc, const char *stream, const char *group,
    const char *consumer)
{
	redisReply *r = redisCommand(rc, "XPENDING %s %s", stream, group);
	long long n = -1;
	size_t i;

	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 4) {
		n = 0;
		if (r->element[3]->type == REDIS_REPLY_ARRAY)
			for (i = 0; i < r->element[3]->elements; i++) {
				redisReply *c = r->element[3]->element[i];
				if (c->elements == 2 && strcmp(c->element[0]->str, consumer) == 0)
					n = strtoll(c->element[1]->str, NULL, 10);
			}
	}
	freeReplyObject(r);
	return n;
}

/* Pending entries of a consumer on "deals", summed over every shard's group
 * (keys_deals_group); -1 when a group cannot be read. */
static inline long long
pt_deals_pending_of(redisContext *rc, const char *consumer)
{
	char group[KEYS_GROUP_MAX];
	long long sum = 0, n;
	uint32_t k;

	for (k = 0; k < keys_shards(); k++) {
		if (keys_deals_group(k, group, sizeof(group)) < 0 ||
		    (n = pt_pending_of(rc, "deals", group, consumer)) < 0)
			return -1;
		sum += n;
	}
	return sum;
}

/* Freezes (SIGSTOP) or thaws (SIGCONT) a process the harness started. */
static inline void
pt_signal(const struct it_proc *p, int sig)
{
	if (p->pid > 0)
		assert_int_equal(kill(p->pid, sig), 0);
}

#endif
