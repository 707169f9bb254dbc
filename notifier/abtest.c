/*
 * abtest.c: A/B tests decided while they run, and their rest released (stages: plan,
 * report; docs/rules.md "A/B variants").
 *
 * Once a second, when no step is out, every notifier walks the open tests (zset
 * abtests, ABTEST_SCAN a tick, the next page on the next tick): per test it reads the terms (abtest:<deal>),
 * sums each variant's sent texts and successes over the shards' report:deal:<id>,
 * judges (abtest_judge), and when decided calls ab_verdict.lua, which keeps the first
 * decision any notifier stored, then ab_release.lua in every shard, which releases
 * the shard's held rest in batches to the winner's text; once every shard has
 * released all it held and planned the deal, the test leaves abtests (each call on
 * one slot, docs/sharding.md 4h). A test decided before (here or elsewhere) is only
 * released. Must never release without a stored decision, and never block the loop.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "abtest.h"
#include "app.h"
#include "clock.h"
#include "config.h"
#include "fault.h"
#include "keys.h"
#include "log.h"
#include "rconn.h"
#include "scripts.h"

#define ABTEST_SCAN 32              /* open tests looked at per tick */
#define ABTEST_ROUNDS 50            /* release calls per test per tick */
/* A test whose abtest:<deal> is gone this long past its decide-by has expired with
 * its deal (ab_register.lua keeps it 7 days past the deal's end); before that, its
 * registration may only be late (another slot, docs/sharding.md 4h). */
#define ABTEST_GONE_S (8 * 86400)

int64_t
abtest_decide_by(int64_t start, long window_s, int64_t expires_at)
{
	int64_t by = start + window_s, life = expires_at - start;
	int64_t margin = life / 3 < ABTEST_MARGIN_S ? life / 3 : ABTEST_MARGIN_S;

	if (expires_at > 0 && expires_at - margin < by)
		by = expires_at - margin;
	return by < start ? start : by;
}

int
abtest_judge(const struct rule_ab_stat *st, size_t n, unsigned fallback,
    int64_t start, long window_s, int64_t decide_by, int64_t now,
    struct abtest_verdict *out)
{
	struct rule_ab_verdict v;
	int final = now >= start + window_s;

	rule_ab_decide(st, n, final, &v);
	out->z = v.z;
	out->confidence = v.confidence;
	if (v.winner >= 0) {
		out->index = v.winner;
		out->how = final ? "final" : "early";
		return 1;
	}
	if (!final && now < decide_by)
		return 0;
	out->index = (int)fallback;
	out->how = final ? "fallback" : "expiry";
	return 1;
}

struct abtest_step;

struct abtest {
	const struct app *app;
	struct event *tick;
	struct abtest_step *busy;
	long offset;                    /* in abtests of the next walk: a full page moves
	                                   it on, a short one back to 0, so no test waits
	                                   behind 32 others for good */
};

enum abtest_stage { AB_LIST, AB_TEST, AB_REPORT, AB_VERDICT, AB_RELEASE };

/* One walk over the open tests; detached (t NULL) when the module is freed. */
struct abtest_step {
	struct abtest *t;
	enum abtest_stage stage;
	char **members;                 /* "<deal>\t<rule>" */
	long long *scores;              /* their decide-by, epoch s */
	size_t n, cur;
	uint32_t shard;                 /* AB_REPORT, AB_RELEASE: the shard of the call */
	int rounds;
	long released;                  /* AB_RELEASE: this round's, over the shards */
	int finished;                   /* AB_RELEASE: shards with nothing left to release */
	char decision[160], job[2 * MODEL_TEXT_MAX + 64];   /* from ab_verdict.lua */
	/* the current test */
	char deal[MODEL_ID_MAX + 1], rule[RULE_NAME_MAX + 1], camp[MODEL_TEXT_MAX + 1];
	char vars[RULE_VARIANTS_MAX][RULE_VARIANT_NAME_MAX + 1];
	size_t nvars;
	int64_t start, decide_by;
	long window_s;
	int redemptions;
	unsigned fallback;
	struct rule_ab_stat st[RULE_VARIANTS_MAX];
	char verdict[160];              /* "" = only release */
};

static void abtest_on_reply(struct rconn *rc, struct redisReply *r, void *arg);

static void
abtest_step_free(struct abtest_step *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++)
		free(s->members[i]);
	free(s->members);
	free(s->scores);
	free(s);
}

static void
abtest_done(struct abtest_step *s)
{
	if (s->t != NULL)
		s->t->busy = NULL;
	abtest_step_free(s);
}

/* Reads "<start>\t<window_s>\t<metric>\t<fallback>\t<decide_by>" and "a b c" into s.
 * 0, or -1 when malformed. */
int
abtest_terms_parse(const char *vars, const char *terms, struct abtest_terms *out)
{
	const char *p = vars;

	memset(out, 0, sizeof(*out));
	if (vars == NULL || terms == NULL ||
	    sscanf(terms, "%lld\t%ld\t%15[a-z]\t%u\t%lld", &out->start, &out->window_s,
	    out->metric, &out->fallback, &out->decide_by) != 5)
		return -1;
	while (*p != '\0') {
		size_t l = strcspn(p, " ");

		if (l == 0 || l > RULE_VARIANT_NAME_MAX || out->nvars == RULE_VARIANTS_MAX)
			return -1;
		memcpy(out->vars[out->nvars], p, l);
		out->vars[out->nvars++][l] = '\0';
		p += l + (p[l] == ' ');
	}
	return out->nvars >= 2 && out->fallback < out->nvars ? 0 : -1;
}

static int
abtest_parse(struct abtest_step *s, const char *vars, const char *terms, const char *job)
{
	struct abtest_terms tm;
	const char *c;
	size_t k;

	if (abtest_terms_parse(vars, terms, &tm) < 0)
		return -1;
	s->start = tm.start;
	s->window_s = tm.window_s;
	s->decide_by = tm.decide_by;
	s->fallback = tm.fallback;
	s->redemptions = strcmp(tm.metric, "redemptions") == 0;
	s->nvars = tm.nvars;
	memcpy(s->vars, tm.vars, sizeof(s->vars));
	/* the campaign: the job's third field (<entry>\t<exp>\t<campaign>\t...) */
	s->camp[0] = '\0';
	if ((c = strchr(job, '\t')) != NULL && (c = strchr(c + 1, '\t')) != NULL) {
		k = strcspn(c + 1, "\t");
		snprintf(s->camp, sizeof(s->camp), "%.*s", (int)k, c + 1);
	}
	memset(s->st, 0, sizeof(s->st));
	return 0;
}

/* Sends the command of s's stage for its current test. 0, or -1 (not ready, OOM). */
static int
abtest_send(struct abtest_step *s)
{
	struct rconn *rc = s->t->app->cmd;
	const char *argv[3 + 2 * RULE_VARIANTS_MAX];
	char key[KEYS_MAX], f[3][RULE_NAME_MAX + 16], from[24], to[24];
	char fs[2 * RULE_VARIANTS_MAX][RULE_NAME_MAX + RULE_VARIANT_NAME_MAX + 24];
	size_t k;

	switch (s->stage) {
	case AB_LIST:
		if (keys_ab(KEYS_AB_TESTS, "", "", key, sizeof(key)) < 0)
			return -1;
		snprintf(from, sizeof(from), "%ld", s->t->offset);
		snprintf(to, sizeof(to), "%ld", s->t->offset + ABTEST_SCAN - 1);
		argv[0] = "ZRANGE";
		argv[1] = key;
		argv[2] = from;
		argv[3] = to;
		argv[4] = "WITHSCORES";
		return rconn_argv(rc, abtest_on_reply, s, 0, 5, argv, NULL);
	case AB_TEST:
		if (keys_ab(KEYS_AB_TEST, s->deal, "", key, sizeof(key)) < 0)
			return -1;
		snprintf(f[0], sizeof(f[0]), "%s:vars", s->rule);
		snprintf(f[1], sizeof(f[1]), "%s:terms", s->rule);
		snprintf(f[2], sizeof(f[2]), "%s:decision", s->rule);
		argv[0] = "HMGET";
		argv[1] = key;
		argv[2] = f[0];
		argv[3] = f[1];
		argv[4] = f[2];
		snprintf(fs[0], sizeof(fs[0]), "%s:job", s->rule);
		argv[5] = fs[0];
		return rconn_argv(rc, abtest_on_reply, s, 0, 6, argv, NULL);
	case AB_REPORT:
		if (keys_per(s->shard, KEYS_REPORT_DEAL, s->deal, key, sizeof(key)) < 0)
			return -1;
		argv[0] = "HMGET";
		argv[1] = key;
		for (k = 0; k < s->nvars; k++) {
			snprintf(fs[2 * k], sizeof(fs[0]), "ab:%s:%s:sent", s->rule, s->vars[k]);
			snprintf(fs[2 * k + 1], sizeof(fs[0]), "ab:%s:%s:%s", s->rule, s->vars[k],
			    s->redemptions ? "redeemed" : "clicked");
			argv[2 + 2 * k] = fs[2 * k];
			argv[3 + 2 * k] = fs[2 * k + 1];
		}
		return rconn_argv(rc, abtest_on_reply, s, 0, (int)(2 + 2 * s->nvars), argv,
		    NULL);
	case AB_VERDICT:
		/* ORDER AB_VERDICT_KEYS, then its arguments */
		if (keys_ab(KEYS_AB_TEST, s->deal, "", key, sizeof(key)) < 0)
			return -1;
		argv[0] = key;
		argv[1] = s->rule;
		argv[2] = s->verdict;
		return script_call_named(rc, "ab_verdict", 1, 3, argv, NULL, abtest_on_reply,
		    s);
	case AB_RELEASE:
		break;
	}
	{
		/* ORDER AB_RELEASE_KEYS: the shard's copy, held rest, queue, pushes and
		 * reports, then the arguments */
		char dk[KEYS_MAX], rest[KEYS_MAX], q[KEYS_MAX], pushes[KEYS_SHARD_MAX];
		char rdeal[KEYS_MAX], rrule[KEYS_MAX], rcamp[KEYS_MAX];
		char batch[24], jobsz[24];
		const char *a[13];
		uint32_t sh = s->shard;

		if (keys_per(sh, KEYS_DEAL, s->deal, dk, sizeof(dk)) < 0 ||
		    keys_ab_held(sh, KEYS_AB_REST, s->deal, "", rest, sizeof(rest)) < 0 ||
		    keys_ab_held(sh, KEYS_AB_QUEUE, s->deal, s->rule, q, sizeof(q)) < 0 ||
		    keys_shard_key(sh, KEYS_PUSHES, pushes, sizeof(pushes)) < 0 ||
		    keys_per(sh, KEYS_REPORT_DEAL, s->deal, rdeal, sizeof(rdeal)) < 0 ||
		    keys_per(sh, KEYS_REPORT_RULE, s->rule, rrule, sizeof(rrule)) < 0)
			return -1;
		rcamp[0] = '\0';
		if (s->camp[0] != '\0' && keys_per(sh, KEYS_REPORT_CAMPAIGN, s->camp, rcamp,
		    sizeof(rcamp)) < 0)
			return -1;
		snprintf(batch, sizeof(batch), "%d", ABTEST_BATCH);
		snprintf(jobsz, sizeof(jobsz), "%ld", s->t->app->cfg->job_size);
		a[0] = dk;
		a[1] = rest;
		a[2] = q;
		a[3] = pushes;
		a[4] = rdeal;
		a[5] = rrule;
		a[6] = rcamp;
		a[7] = s->deal;
		a[8] = s->rule;
		a[9] = s->decision;
		a[10] = s->job;
		a[11] = batch;
		a[12] = jobsz;
		return script_call_named(rc, "ab_release", 7, 13, a, NULL, abtest_on_reply, s);
	}
}

/* Moves s to its next open test, or ends it. */
static void
abtest_next(struct abtest_step *s)
{
	while (++s->cur < s->n) {
		const char *m = s->members[s->cur], *tab = strchr(m, '\t');

		if (tab == NULL || (size_t)(tab - m) > MODEL_ID_MAX ||
		    strlen(tab + 1) > RULE_NAME_MAX)
			continue;
		snprintf(s->deal, sizeof(s->deal), "%.*s", (int)(tab - m), m);
		snprintf(s->rule, sizeof(s->rule), "%s", tab + 1);
		s->stage = AB_TEST;
		s->verdict[0] = '\0';
		s->rounds = 0;
		if (abtest_send(s) == 0)
			return;
		log_warnx("event=ab_failed deal=%s rule=%s err=\"redis not ready\"", s->deal,
		    s->rule);
		break;
	}
	abtest_done(s);
}

static const char *
abtest_str(const struct redisReply *r, size_t i)
{
	return i < r->elements && r->element[i]->type == REDIS_REPLY_STRING ?
	    r->element[i]->str : NULL;
}

/* The test's terms read (HMGET vars, terms, decision, job): judge next, or only
 * release when decided. 0 to send s's stage, 1 to move on. */
static int
abtest_on_test(struct abtest_step *s, const struct redisReply *r)
{
	const char *vars = abtest_str(r, 0), *terms = abtest_str(r, 1);
	const char *dec = abtest_str(r, 2), *job = abtest_str(r, 3);

	if (vars == NULL && terms == NULL && dec == NULL && job == NULL) {
		/* abtest:<deal> expired with its deal: nothing is left to release. A test
		 * not yet registered (ab_join.lua's ZADD may land before ab_register.lua
		 * on another slot) is left for a later tick. */
		char key[KEYS_MAX];
		const char *argv[3] = { "ZREM", key, s->members[s->cur] };

		if (clock_now() > s->scores[s->cur] + ABTEST_GONE_S &&
		    keys_ab(KEYS_AB_TESTS, "", "", key, sizeof(key)) >= 0)
			(void)rconn_argv(s->t->app->cmd, NULL, NULL, 0, 3, argv, NULL);
		return 1;
	}
	if (vars == NULL || terms == NULL || job == NULL ||
	    abtest_parse(s, vars, terms, job) < 0) {
		log_warnx("event=ab_failed deal=%s rule=%s err=\"test terms missing or "
		    "malformed\"", s->deal, s->rule);
		return 1;
	}
	s->shard = 0;
	s->stage = dec != NULL ? AB_VERDICT : AB_REPORT;
	return 0;
}

/* One shard's counts summed in; after the last, judged. 0 to send, 1 to move on. */
static int
abtest_on_report(struct abtest_step *s, const struct redisReply *r)
{
	struct abtest_verdict v;
	size_t k;

	for (k = 0; k < s->nvars; k++) {
		const char *a = abtest_str(r, 2 * k), *b = abtest_str(r, 2 * k + 1);

		s->st[k].sent += a != NULL ? strtoul(a, NULL, 10) : 0;
		s->st[k].wins += b != NULL ? strtoul(b, NULL, 10) : 0;
	}
	if (++s->shard < keys_shards())
		return 0;
	if (!abtest_judge(s->st, s->nvars, s->fallback, s->start, s->window_s,
	    s->decide_by, clock_now(), &v))
		return 1;
	snprintf(s->verdict, sizeof(s->verdict), "%d\t%s\t%s\t%lld\t%.3f\t%.6f", v.index,
	    s->vars[v.index], v.how, (long long)clock_now(), isfinite(v.z) ? v.z : 0.0,
	    v.confidence);
	s->stage = AB_VERDICT;
	return 0;
}

/* ab_verdict.lua's answer: {'open'} or {'decided', decision, job}. 0 to release
 * (every shard, from shard 0), 1 to move on. */
static int
abtest_on_verdict(struct abtest_step *s, const struct redisReply *r)
{
	const char *what = abtest_str(r, 0), *dec = abtest_str(r, 1), *job = abtest_str(r, 2);

	if (what == NULL || strcmp(what, "decided") != 0 || dec == NULL || job == NULL ||
	    strlen(dec) >= sizeof(s->decision) || strlen(job) >= sizeof(s->job))
		return 1;
	if (s->verdict[0] != '\0') {
		if (strcmp(dec, s->verdict) == 0)
			log_info("event=ab_decided deal=%s rule=%s decision=\"%s\"", s->deal,
			    s->rule, dec);
		s->verdict[0] = '\0';
	}
	snprintf(s->decision, sizeof(s->decision), "%s", dec);
	snprintf(s->job, sizeof(s->job), "%s", job);
	s->stage = AB_RELEASE;
	s->shard = 0;
	s->released = 0;
	s->finished = 0;
	return 0;
}

/* ab_release.lua's answer in one shard: {'more'|'empty'|'cancelled', released}.
 * After the last shard of a round: the test leaves abtests when no shard has
 * anything left, else another round while this one released someone. 0 to send,
 * 1 to move on. */
static int
abtest_on_release(struct abtest_step *s, const struct redisReply *r)
{
	const char *what = abtest_str(r, 0), *rel = abtest_str(r, 1);
	long n = rel != NULL ? strtol(rel, NULL, 10) : 0;

	if (what == NULL)
		return 1;
	if (n > 0)
		log_info("event=ab_released deal=%s rule=%s shard=%u recipients=%ld", s->deal,
		    s->rule, (unsigned)s->shard, n);
	/* Tests: the process dies as under kill -9 once the n-th release call that
	 * released someone has answered (DP_FAULTS=ab.release.kill@n). */
	if (n > 0 && fault_hit("ab.release.kill"))
		_exit(137);
	s->released += n;
	s->finished += strcmp(what, "more") != 0;
	if (++s->shard < keys_shards())
		return 0;
	if (s->finished == (int)keys_shards()) {
		/* Every shard released all it held and planned the deal (or has its copy
		 * cancelled): the test is over. */
		char key[KEYS_MAX];
		const char *argv[3] = { "ZREM", key, s->members[s->cur] };

		if (keys_ab(KEYS_AB_TESTS, "", "", key, sizeof(key)) >= 0)
			(void)rconn_argv(s->t->app->cmd, NULL, NULL, 0, 3, argv, NULL);
		return 1;
	}
	if (s->released == 0 || ++s->rounds >= ABTEST_ROUNDS)
		return 1;
	s->shard = 0;
	s->released = 0;
	s->finished = 0;
	return 0;
}

static void
abtest_on_reply(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct abtest_step *s = arg;
	int next = 1;
	size_t i;

	(void)rc;
	if (s->t == NULL) {
		abtest_step_free(s);
		return;
	}
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		log_warnx("event=ab_failed deal=%s rule=%s err=\"%s\"", s->deal, s->rule,
		    r == NULL ? "no reply" : r->type == REDIS_REPLY_ERROR ? r->str :
		    "bad reply");
		/* One test's trouble does not hold the others up; no reply at all (the
		 * connection) ends the walk, the next tick starts again. */
		if (r == NULL || s->stage == AB_LIST)
			abtest_done(s);
		else
			abtest_next(s);
		return;
	}
	switch (s->stage) {
	case AB_LIST:
		/* member, score, member, score ... (WITHSCORES) */
		s->t->offset = r->elements / 2 == ABTEST_SCAN ? s->t->offset + ABTEST_SCAN : 0;
		if (r->elements < 2 || (s->members = calloc(r->elements / 2,
		    sizeof(*s->members))) == NULL || (s->scores = calloc(r->elements / 2,
		    sizeof(*s->scores))) == NULL) {
			abtest_done(s);
			return;
		}
		for (i = 0; i + 1 < r->elements; i += 2) {
			const char *m = abtest_str(r, i), *sc = abtest_str(r, i + 1);

			if ((s->members[s->n] = strdup(m != NULL ? m : "")) == NULL)
				break;
			s->scores[s->n] = sc != NULL ? strtoll(sc, NULL, 10) : 0;
			s->n++;
		}
		s->cur = (size_t)-1;
		abtest_next(s);
		return;
	case AB_TEST:
		next = abtest_on_test(s, r);
		break;
	case AB_REPORT:
		next = abtest_on_report(s, r);
		break;
	case AB_VERDICT:
		next = abtest_on_verdict(s, r);
		break;
	case AB_RELEASE:
		next = abtest_on_release(s, r);
		break;
	}
	if (!next && abtest_send(s) == 0)
		return;
	abtest_next(s);
}

static void
abtest_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct abtest *t = arg;
	struct abtest_step *s;

	(void)fd;
	(void)what;
	if (t->busy != NULL || !rconn_is_ready(t->app->cmd) ||
	    (s = calloc(1, sizeof(*s))) == NULL)
		return;
	s->t = t;
	s->stage = AB_LIST;
	t->busy = s;
	if (abtest_send(s) < 0)
		abtest_done(s);
}

struct abtest *
abtest_new(const struct app *app)
{
	struct abtest *t = calloc(1, sizeof(*t));
	struct timeval tv = { ABTEST_TICK_MS / 1000, (ABTEST_TICK_MS % 1000) * 1000 };

	if (t == NULL)
		return NULL;
	t->app = app;
	if ((t->tick = event_new(app->base, -1, EV_PERSIST, abtest_on_tick, t)) == NULL ||
	    event_add(t->tick, &tv) < 0) {
		abtest_free(t);
		return NULL;
	}
	return t;
}

void
abtest_free(struct abtest *t)
{
	if (t == NULL)
		return;
	if (t->busy != NULL)
		t->busy->t = NULL;       /* its reply frees it */
	if (t->tick != NULL)
		event_free(t->tick);
	free(t);
}
