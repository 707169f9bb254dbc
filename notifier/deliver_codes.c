/*
 * deliver_codes.c: a code pool shared by the shards (stage: admit; the sharded layout
 * only, docs/sharding.md 4c).
 *
 * A pool `codes:<name>` sits on its own slot; a shard's pushes take codes from the
 * shard's stash of it, `{sK}codestash:<deal>:<pool>`, which only this module fills
 * and empties, each step one script on one slot and made durable (durable.h) before
 * the next step on the other slot depends on it:
 *
 *   reservation: admit.lua opens intent n in {sK}codestate and answers {"!codes", n,
 *     c} → code_reserve.lua on the pool (up to c codes out, named "<deal>\t<K>\t<n>"
 *     in {pool}:out and listed in {pool}:res; a replay answers them again) → WAIT →
 *     code_take.lua on the shard (into the stash, only while intent n is open) → WAIT
 *     → HDEL {pool}:res (nothing reads it once taken) → the waiting admits run again.
 *   give-back: code_give.lua "out" (the stash moves to {sK}codeback under number g)
 *     → WAIT → code_giveback.lua on the pool (each code out names as this shard's
 *     goes back, once per g) → WAIT → code_give.lua "done".
 *
 * A crash anywhere leaves an open intent or a give-back in flight in codestate; the
 * walk (dl_codes_walk, every second) finds them there and finishes them, so a code
 * is never handed out twice and never lost. Unused stash codes go back once the
 * (shard, deal, pool) has had no admit for DL_CODES_IDLE_MS. One step at a time per
 * (shard, deal, pool) ("busy"), and every step on dl->cmd, in order: the admits that
 * waited for a reservation are sent before any later give-back, which therefore
 * cannot take codes back from under them.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "deliver_int.h"
#include "durable.h"
#include "fault.h"
#include "keys.h"
#include "layout.h"
#include "log.h"
#include "owner.h"
#include "rconn.h"
#include "strcopy.h"

/* A reservation that found the pool empty lets the admits of the next second run
 * with pool_empty: the pushes no stash code serves end sold_out at once. */
#define DL_CODES_EMPTY_MS 1000
/* Stash codes go back after this long without an admit of the (shard, deal, pool):
 * here (ms), and in Redis, whichever notifier admitted (code_give.lua, s). */
#define DL_CODES_IDLE_MS 1000
#define DL_CODES_IDLE_S "2"
/* A stash found empty is looked at again this often (a failed push gives its code
 * back to the stash). */
#define DL_CODES_PROBE_MS 10000
/* The sources in memory, in chains by a hash of (shard, deal, pool): the walk looks
 * every codestate line up each second, and there is one per live pooled deal and
 * shard. */
#define DL_CODES_BUCKETS 4096
/* How long the pool's records and a stash are kept: past any deal's attribution. */
#define DL_CODES_KEEP_S (37 * 86400L)

enum dl_codes_step {
	CS_RESERVE = 0,
	CS_TAKE,
	CS_OUT,
	CS_BACK,
	CS_DONE
};

static const char *const cs_step_name[] = { "reserve", "take", "out", "back", "done" };

/* The log events' prefix: "quota" for a quota's implicit pool (quota_reserved,
 * quota_given_back, ...), "codes" for a code pool. */
static const char *
cs_kind(const char *pool)
{
	return keys_pool_quota(pool) > 0 ? "quota" : "codes";
}

struct dl_code_wait {
	struct dl_code_wait *next;
	struct job *job;
	struct rcpt *only;
};

/* One (shard, deal, pool) this notifier has met. */
struct dl_codesrc {
	struct dl_codesrc *next;
	struct deliver *dl;             /* NULL once the deliverer is freed mid-step */
	uint32_t shard;
	char deal[MODEL_ID_MAX + 1];
	char pool[MODEL_TEXT_MAX + 1];
	int busy;                       /* a step in flight */
	enum dl_codes_step step;
	long long n, c, g;              /* the reservation, or give-back, in flight */
	long long past;                 /* the pool's mark when it answered "done" */
	int empty;                      /* the reservation in flight came back short */
	int seen;                       /* in codestate at the last walk */
	int64_t used_ms;                /* monotonic: its last admit */
	int64_t empty_until_ms;         /* admits run with pool_empty until then */
	int64_t probed_ms;              /* a give-back found its stash empty then (0: not) */
	struct dl_code_wait *wait, **wait_tail;
};

/* The shard of j's recipients (a job holds one shard's: ingest_plan.c), as admit
 * names its keys. */
static uint32_t
job_shard(const struct job *j)
{
	return keys_shard_of(j->r[0].pl.sub);
}

static size_t
codesrc_bucket(uint32_t shard, const char *deal, const char *pool)
{
	uint64_t h = 14695981039346656037ULL ^ shard;
	const char *p;

	for (p = deal; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ '\t') * 1099511628211ULL;
	for (p = pool; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return (size_t)(h & (DL_CODES_BUCKETS - 1));
}

static struct dl_codesrc *
codesrc_find(struct deliver *dl, uint32_t shard, const char *deal, const char *pool)
{
	struct dl_codesrc *s;

	if (dl->codesrcs == NULL)
		return NULL;
	for (s = dl->codesrcs[codesrc_bucket(shard, deal, pool)]; s != NULL; s = s->next)
		if (s->shard == shard && strcmp(s->deal, deal) == 0 &&
		    strcmp(s->pool, pool) == 0)
			return s;
	return NULL;
}

static struct dl_codesrc *
codesrc_get(struct deliver *dl, uint32_t shard, const char *deal, const char *pool)
{
	struct dl_codesrc *s = codesrc_find(dl, shard, deal, pool);

	if (s != NULL)
		return s;
	size_t b;

	if (strlen(deal) >= sizeof(s->deal) || strlen(pool) >= sizeof(s->pool) ||
	    (dl->codesrcs == NULL && (dl->codesrcs = calloc(DL_CODES_BUCKETS,
	    sizeof(*dl->codesrcs))) == NULL) || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->dl = dl;
	s->shard = shard;
	str_copy(s->deal, sizeof(s->deal), deal);
	str_copy(s->pool, sizeof(s->pool), pool);
	s->wait_tail = &s->wait;
	b = codesrc_bucket(shard, deal, pool);
	s->next = dl->codesrcs[b];
	dl->codesrcs[b] = s;
	return s;
}

static void
codesrc_unlink(struct deliver *dl, struct dl_codesrc *s)
{
	struct dl_codesrc **p;

	for (p = &dl->codesrcs[codesrc_bucket(s->shard, s->deal, s->pool)]; *p != NULL;
	    p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			return;
		}
}

/* Who s is in the pool's records (code_reserve.lua, code_giveback.lua, the confirm):
 * its deal for a code pool; a quota's whole name ("quota:<L>:<deal>"), so that two
 * names of one deal (another L) keep their numbering apart, as their codestate
 * fields and stashes do. */
static const char *
codesrc_id(const struct dl_codesrc *s)
{
	return keys_pool_quota(s->pool) > 0 ? s->pool : s->deal;
}

/* "<deal>\t<pool>": the source's field in codestate. */
static int
codesrc_field(const struct dl_codesrc *s, char *buf, size_t size)
{
	int k = snprintf(buf, size, "%s\t%s", s->deal, s->pool);

	return k < 0 || (size_t)k >= size ? -1 : 0;
}

/* The admits that waited for s's step run again (or fail when it failed). */
static void
codesrc_release(struct dl_codesrc *s, int failed)
{
	struct deliver *dl = s->dl;
	struct dl_code_wait *w, *next;

	w = s->wait;
	s->wait = NULL;
	s->wait_tail = &s->wait;
	for (; w != NULL; w = next) {
		next = w->next;
		if (!failed && !dl->stopping && dl_admit(dl, w->job, w->only) == 0) {
			free(w);
			continue;
		}
		if (w->only != NULL)
			dl_retry_or_expire(w->only, -1);
		else
			dl_job_drop(w->job);    /* left pending, as when admit.lua fails */
		free(w);
	}
}

static void codes_on_step(struct rconn *rc, struct redisReply *reply, int durable,
    void *arg);

/* Sends s's step with the codes of reply (from element first on) as the last
 * arguments. Returns 0, or -1 (nothing sent). */
static int
codes_send(struct dl_codesrc *s, const struct redisReply *codes, size_t first)
{
	struct deliver *dl = s->dl;
	char stash[KEYS_MAX], back[KEYS_MAX], state[KEYS_SHARD_MAX], copy[KEYS_MAX];
	char res[KEYS_MAX], marks[KEYS_MAX], out[KEYS_MAX], field[KEYS_MAX];
	char shard[16], n[24], c[24], keep[24], now[24], past[24], quota[24];
	char key[KEYS_MAX];
	const char **args;
	size_t *lens, na = 0, nc = 0, i;
	int nkeys = 0, rc;
	const char *name = NULL;

	if (codes != NULL && codes->type == REDIS_REPLY_ARRAY && codes->elements > first)
		nc = codes->elements - first;
	if ((args = calloc(13 + nc, sizeof(*args))) == NULL)
		return -1;
	if ((lens = calloc(13 + nc, sizeof(*lens))) == NULL) {
		free(args);
		return -1;
	}
	if (keys_codestash(s->shard, s->deal, s->pool, stash, sizeof(stash)) <= 0 ||
	    keys_codeback(s->shard, s->deal, s->pool, back, sizeof(back)) <= 0 ||
	    keys_codestate(s->shard, state, sizeof(state)) <= 0 ||
	    keys_per(s->shard, KEYS_DEAL, s->deal, copy, sizeof(copy)) <= 0 ||
	    keys_pool_side(s->pool, KEYS_POOL_RES, res, sizeof(res)) <= 0 ||
	    keys_pool_side(s->pool, KEYS_POOL_MARKS, marks, sizeof(marks)) <= 0 ||
	    keys_pool_side(s->pool, KEYS_POOL_OUT, out, sizeof(out)) <= 0 ||
	    keys_pool_key(s->pool, key, sizeof(key)) <= 0 ||
	    codesrc_field(s, field, sizeof(field)) < 0) {
		free(args);
		free(lens);
		return -1;
	}
	snprintf(shard, sizeof(shard), "%u", (unsigned)s->shard);
	snprintf(n, sizeof(n), "%lld", s->step == CS_RESERVE || s->step == CS_TAKE ? s->n :
	    s->g);
	snprintf(c, sizeof(c), "%lld", s->c);
	snprintf(keep, sizeof(keep), "%ld", DL_CODES_KEEP_S);
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	snprintf(past, sizeof(past), "%lld", s->past);
	snprintf(quota, sizeof(quota), "%lld", keys_pool_quota(s->pool));
	switch (s->step) {
	case CS_RESERVE:
		/* ORDER CODE_RESERVE_KEYS, then its arguments */
		name = "code_reserve";
		args[na++] = key;
		args[na++] = res;
		args[na++] = marks;
		args[na++] = out;
		nkeys = 4;
		args[na++] = codesrc_id(s);
		args[na++] = shard;
		args[na++] = n;
		args[na++] = c;
		args[na++] = keep;
		args[na++] = quota;         /* "0": a code pool */
		break;
	case CS_TAKE:
		/* ORDER CODE_TAKE_KEYS */
		name = "code_take";
		args[na++] = state;
		args[na++] = stash;
		nkeys = 2;
		args[na++] = field;
		args[na++] = n;
		args[na++] = keep;
		args[na++] = now;
		args[na++] = past;
		break;
	case CS_OUT:
	case CS_DONE:
		/* ORDER CODE_GIVE_KEYS */
		name = "code_give";
		args[na++] = state;
		args[na++] = stash;
		args[na++] = back;
		args[na++] = copy;
		nkeys = 4;
		args[na++] = s->step == CS_OUT ? "out" : "done";
		args[na++] = field;
		args[na++] = n;
		args[na++] = keep;
		args[na++] = now;
		args[na++] = DL_CODES_IDLE_S;
		break;
	case CS_BACK:
		/* ORDER CODE_GIVEBACK_KEYS */
		name = "code_giveback";
		args[na++] = key;
		args[na++] = marks;
		args[na++] = out;
		nkeys = 3;
		args[na++] = codesrc_id(s);
		args[na++] = shard;
		args[na++] = n;
		args[na++] = keep;
		break;
	}
	for (i = 0; i < na; i++)
		lens[i] = strlen(args[i]);
	for (i = 0; i < nc; i++) {
		const struct redisReply *e = codes->element[first + i];

		if (e->type != REDIS_REPLY_STRING) {
			free(args);
			free(lens);
			return -1;
		}
		args[na] = e->str;
		lens[na++] = e->len;
	}
	rc = durable_script_call(dl->cmd, &dl->durable, name, nkeys, (int)na, args, lens,
	    codes_on_step, s);
	free(args);
	free(lens);
	if (rc == 0)
		dl->codes_out++;
	return rc;
}

/* s's chain ends here: the next may start, and the admits waiting for it run. */
static void
codes_end(struct dl_codesrc *s, int failed)
{
	s->busy = 0;
	codesrc_release(s, failed);
}

static void
codes_fail(struct dl_codesrc *s, const char *err)
{
	log_warnx("event=%s_step_failed step=%s deal=%s pool=%s shard=%u err=\"%s\" "
	    "action=resume_later", cs_kind(s->pool), cs_step_name[s->step], s->deal,
	    s->pool, (unsigned)s->shard, err);
	codes_end(s, 1);
}

/* Starts s's step (s->step set); on failure the chain ends failed. */
static void
codes_go(struct dl_codesrc *s, const struct redisReply *codes, size_t first)
{
	s->busy = 1;
	if (s->dl->stopping || codes_send(s, codes, first) < 0)
		codes_fail(s, s->dl->stopping ? "stopping" : "could not send");
}

static void
codes_on_confirm(struct rconn *rc, struct redisReply *reply, void *arg)
{
	(void)rc;
	(void)arg;
	/* Lost: {pool}:res keeps a reservation nobody reads again, until it expires. */
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		log_warnx("event=codes_confirm_failed err=\"%s\"", reply ? reply->str :
		    "no reply");
}

/* The reservation s->n is in the stash: forget it in the pool's res. */
static void
codes_confirm(struct dl_codesrc *s)
{
	char res[KEYS_MAX], rid[KEYS_MAX];
	const char *args[3] = { "HDEL", res, rid };

	if (keys_pool_side(s->pool, KEYS_POOL_RES, res, sizeof(res)) <= 0 ||
	    snprintf(rid, sizeof(rid), "%s\t%u\t%lld", codesrc_id(s), (unsigned)s->shard,
	    s->n) >= (int)sizeof(rid))
		return;
	(void)rconn_argv(s->dl->cmd, codes_on_confirm, NULL, 0, 3, args, NULL);
}

static int
reply_is(const struct redisReply *r, const char *s)
{
	if (r == NULL)
		return 0;
	if (r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING)
		return strcmp(r->str, s) == 0;
	return r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, s) == 0;
}

static void
codes_on_step(struct rconn *rc, struct redisReply *reply, int durable, void *arg)
{
	struct dl_codesrc *s = arg;
	struct deliver *dl = s->dl;
	char name[32];

	(void)rc;
	if (dl == NULL) {               /* the deliverer is gone */
		free(s);
		return;
	}
	dl->codes_out--;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		codes_fail(s, reply ? reply->str : "no reply");
		return;
	}
	if (!durable) {
		codes_fail(s, "not durable: WAIT counted too few replicas");
		return;
	}
	/* Tests: the process dies as under kill -9 right after a step's answer
	 * (DP_FAULTS=codes.<step>.kill@n). */
	snprintf(name, sizeof(name), "codes.%s.kill", cs_step_name[s->step]);
	if (fault_hit(name))
		_exit(137);
	switch (s->step) {
	case CS_RESERVE:
		if (reply_is(reply, "done")) {
			/* Taken and confirmed already, yet the intent is open: the shard's
			 * record went back (a failover, or it was dropped with its deal's
			 * copy and the deal id came again). Closed with no codes, the next
			 * intent numbered above the pool's mark. */
			s->empty = 0;
			s->past = reply->elements == 2 &&
			    reply->element[1]->type == REDIS_REPLY_INTEGER ?
			    reply->element[1]->integer : 0;
			s->step = CS_TAKE;
			codes_go(s, NULL, 0);
			return;
		}
		if (!reply_is(reply, "ok") && !reply_is(reply, "short")) {
			codes_fail(s, "unexpected reply");
			return;
		}
		s->empty = reply_is(reply, "short");
		log_info("event=%s_reserved deal=%s pool=%s shard=%u n=%lld "
		    "wanted=%lld got=%lu", cs_kind(s->pool), s->deal, s->pool,
		    (unsigned)s->shard, s->n, s->c,
		    (unsigned long)(reply->elements - 1));
		s->step = CS_TAKE;
		codes_go(s, reply, 1);
		return;
	case CS_TAKE:
		if (!reply_is(reply, "taken") && !reply_is(reply, "replay")) {
			codes_fail(s, "unexpected reply");
			return;
		}
		codes_confirm(s);
		s->past = 0;
		if (s->empty)
			s->empty_until_ms = clock_mono_ms() + DL_CODES_EMPTY_MS;
		s->probed_ms = 0;
		codes_end(s, 0);
		return;
	case CS_OUT:
		if (reply_is(reply, "gone")) {
			/* Nothing stashed and the deal is over: forgotten here too. */
			codes_end(s, 0);
			codesrc_unlink(dl, s);
			free(s);
			return;
		}
		if (reply_is(reply, "empty")) {
			s->probed_ms = clock_mono_ms();
			codes_end(s, 0);
			return;
		}
		if (reply_is(reply, "busy")) {
			/* Another notifier used the stash a moment ago. */
			s->used_ms = clock_mono_ms();
			codes_end(s, 0);
			return;
		}
		if (!reply_is(reply, "out") || reply->elements < 2 ||
		    reply->element[1]->type != REDIS_REPLY_INTEGER) {
			codes_fail(s, "unexpected reply");
			return;
		}
		s->g = reply->element[1]->integer;
		s->step = CS_BACK;
		codes_go(s, reply, 2);
		return;
	case CS_BACK:
		if (reply->type != REDIS_REPLY_INTEGER) {
			codes_fail(s, "unexpected reply");
			return;
		}
		log_info("event=%s_given_back deal=%s pool=%s shard=%u g=%lld "
		    "codes=%lld", cs_kind(s->pool), s->deal, s->pool, (unsigned)s->shard,
		    s->g, reply->integer);
		s->step = CS_DONE;
		codes_go(s, NULL, 0);
		return;
	case CS_DONE:
		s->probed_ms = clock_mono_ms();
		codes_end(s, 0);
		return;
	}
}

static void
codes_reserve(struct dl_codesrc *s, long long n, long long c)
{
	s->n = n;
	s->c = c;
	s->empty = 0;
	s->step = CS_RESERVE;
	codes_go(s, NULL, 0);
}

static void
codes_give_back(struct dl_codesrc *s)
{
	s->step = CS_OUT;
	codes_go(s, NULL, 0);
}

int
dl_codes_wanted(struct deliver *dl, struct job *j, struct rcpt *only,
    const struct redisReply *reply)
{
	struct dl_codesrc *s;
	struct dl_code_wait *w;

	if (reply->elements != 3 || reply->element[1]->type != REDIS_REPLY_INTEGER ||
	    reply->element[2]->type != REDIS_REPLY_INTEGER || reply->element[1]->integer <= 0)
		return -1;
	if ((s = codesrc_get(dl, job_shard(j), j->deal, j->pool)) == NULL ||
	    (w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->job = j;
	w->only = only;
	*s->wait_tail = w;
	s->wait_tail = &w->next;
	s->used_ms = clock_mono_ms();
	if (!s->busy)
		codes_reserve(s, reply->element[1]->integer, reply->element[2]->integer);
	return 0;
}

int
dl_codes_pool_empty(struct deliver *dl, const struct job *j)
{
	struct dl_codesrc *s;

	char out[KEYS_MAX];

	if (j->pool[0] == '\0' || layout_current() == NULL)
		return 0;
	/* A pool this layout cannot share (braces in its name, refused by deal.c
	 * since): its stash is all there is, never a reservation that cannot be made. */
	if (keys_pool_side(j->pool, KEYS_POOL_OUT, out, sizeof(out)) < 0)
		return 1;
	if ((s = codesrc_find(dl, job_shard(j), j->deal, j->pool)) == NULL)
		return 0;
	s->used_ms = clock_mono_ms();
	return clock_mono_ms() < s->empty_until_ms;
}

void
dl_codes_returned(struct deliver *dl, const struct job *j)
{
	struct dl_codesrc *s;

	if (j->pool[0] != '\0' && layout_current() != NULL &&
	    (s = codesrc_find(dl, job_shard(j), j->deal, j->pool)) != NULL)
		s->probed_ms = 0;
}

/* The walk in flight: one HGETALL per shard; detached (dl NULL) when the deliverer
 * is freed before every reply came. */
struct dl_codes_walk {
	struct deliver *dl;
	size_t pending;
};

struct codes_walk_arg {
	struct dl_codes_walk *w;
	uint32_t shard;
};

/* What one line of a shard's codestate asks for: finishing what a crash left, or
 * giving back what is idle. */
static void
codes_walk_one(struct deliver *dl, uint32_t shard, const struct redisReply *f,
    const struct redisReply *v, int64_t now)
{
	char deal[MODEL_ID_MAX + 1], pool[MODEL_TEXT_MAX + 1];
	long long resn, gbn, rn, rc, gb;
	const char *tab;
	struct dl_codesrc *s;

	if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
	    (tab = memchr(f->str, '\t', f->len)) == NULL ||
	    (size_t)(tab - f->str) >= sizeof(deal) ||
	    f->len - (size_t)(tab - f->str) - 1 >= sizeof(pool) ||
	    sscanf(v->str, "%lld %lld %lld %lld %lld", &resn, &gbn, &rn, &rc, &gb) != 5)
		return;
	memcpy(deal, f->str, (size_t)(tab - f->str));
	deal[tab - f->str] = '\0';
	str_copy(pool, sizeof(pool), tab + 1);
	if ((s = codesrc_get(dl, shard, deal, pool)) == NULL || s->busy || s->wait != NULL)
		return;
	if (rn > 0) {
		/* An intent a crash left open (or whose chain failed): its codes are
		 * fetched into the stash, or handed over again by a replay. */
		log_info("event=%s_resume step=reserve deal=%s pool=%s shard=%u n=%lld",
		    cs_kind(pool), deal, pool, (unsigned)shard, rn);
		codes_reserve(s, rn, rc);
	} else if (gb > 0 || (now - s->used_ms >= DL_CODES_IDLE_MS &&
	    (s->probed_ms == 0 || now - s->probed_ms >= DL_CODES_PROBE_MS))) {
		codes_give_back(s);
	}
}

static void
codes_on_state(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct codes_walk_arg a = *(struct codes_walk_arg *)arg;
	struct deliver *dl = a.w->dl;
	int64_t now = clock_mono_ms();
	size_t i;

	(void)rc;
	free(arg);
	if (--a.w->pending == 0) {
		if (dl != NULL)
			dl->codes_walk = NULL;
		free(a.w);
	}
	if (dl == NULL || dl->stopping)
		return;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0) {
		if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
			log_warnx("event=codes_walk_failed shard=%u err=\"%s\"",
			    (unsigned)a.shard, reply->str);
		return;
	}
	for (i = 0; i + 1 < reply->elements; i += 2)
		codes_walk_one(dl, a.shard, reply->element[i], reply->element[i + 1], now);
}

void
dl_codes_walk(struct deliver *dl)
{
	char state[KEYS_SHARD_MAX];
	const char *args[2] = { "HGETALL", state };
	struct codes_walk_arg *a;
	struct dl_codes_walk *w;
	uint32_t k;

	if (layout_current() == NULL || dl->stopping || dl->codes_walk != NULL ||
	    !rconn_is_ready(dl->cmd) || (w = calloc(1, sizeof(*w))) == NULL)
		return;
	w->dl = dl;
	w->pending = 1;                 /* held until every command is sent */
	dl->codes_walk = w;
	for (k = 0; k < keys_shards(); k++) {
		/* A shard's reservations are resumed and given back by its owner only
		 * (owner.h); a new owner's first walk finishes what the last one left. */
		if (!owner_serves(dl->owner, k) ||
		    keys_codestate(k, state, sizeof(state)) <= 0 ||
		    (a = malloc(sizeof(*a))) == NULL)
			continue;
		a->w = w;
		a->shard = k;
		w->pending++;
		if (rconn_argv(dl->cmd, codes_on_state, a, 0, 2, args, NULL) < 0) {
			w->pending--;
			free(a);
		}
	}
	if (--w->pending == 0) {
		dl->codes_walk = NULL;
		free(w);
	}
}

int
dl_codes_idle(const struct deliver *dl)
{
	return dl->codes_out == 0;
}

void
dl_codes_free(struct deliver *dl)
{
	struct dl_codesrc *s, *next;
	struct dl_code_wait *w, *wn;
	size_t b;

	if (dl->codes_walk != NULL)
		dl->codes_walk->dl = NULL;
	for (b = 0; dl->codesrcs != NULL && b < DL_CODES_BUCKETS; b++)
		for (s = dl->codesrcs[b]; s != NULL; s = next) {
			next = s->next;
			for (w = s->wait; w != NULL; w = wn) {
				wn = w->next;
				free(w);
			}
			if (s->busy) {
				s->dl = NULL;   /* its step's reply frees it */
				s->wait = NULL;
			} else {
				free(s);
			}
		}
	free(dl->codesrcs);
	dl->codesrcs = NULL;
}
