/*
 * owner.c: the shards this notifier serves, under leases (stage: all; docs/sharding.md
 * 4d; include/owner.h says what it promises).
 *
 * One timer drives it, every lease_ms / 6: the heartbeat (balanced), then per shard
 * the one step it needs (acquire, renew, release), at most one command per shard out
 * at a time. Answers update the local lease; after each, the shards whose served
 * state changed are told to the notifier (on_change). The local lease is counted from
 * when the command that set it was sent, minus the margin, and only once WAIT has
 * counted the replicas: an acquire or renew that a failover could revert does not
 * count.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "keys.h"
#include "log.h"
#include "owner.h"
#include "rconn.h"
#include "rules.h"
#include "scripts.h"

#define OWNER_TICK_MIN_MS 50
#define OWNER_MEMBERS_MAX 1024    /* live notifiers read from one heartbeat */
#define OWNER_EPOCH_MAX 24

struct owner_shard {
	struct owner *o;
	uint32_t k;
	char key[KEYS_SHARD_MAX];
	char epoch[OWNER_EPOCH_MAX];  /* of the lease held, "" when none */
	int64_t until_ms;          /* monotonic: the local lease's end, 0 when none */
	int64_t renewed_ms;        /* monotonic: when the last renew (or acquire) went out */
	int64_t left_ms;           /* monotonic: when leaving began, 0 when not leaving */
	int out;                   /* a command about this shard is out */
	int serving;               /* as last told to on_change */
	int holding;               /* likewise: the lease held */
	char busy_holder[80];      /* the holder named by the last "busy", for the log */
};

struct owner {
	struct event_base *base;
	struct rconn *cmd;
	struct owner_config cfg;
	char *me, *addr;
	uint8_t *want;             /* the shards to hold now */
	int *assign;               /* balanced: each shard's member at the last beat */
	struct owner_shard *sh;
	uint32_t n;
	struct event *tick;
	int64_t started_ms;
	int members_out;
	int leave_beat_out;        /* the members "leave" is out (counted in leave_out) */
	size_t nmembers;           /* live notifiers at the last heartbeat (balanced) */
	int leaving;               /* owner_leave: nothing more is acquired */
	size_t leave_out;          /* releases and the members leave still out */
	owner_done_fn *done;
	void *done_arg;
	owner_change_fn *on_change;
	owner_busy_fn *busy;
	void *arg;
	int muted;                 /* owner_mute: on_change and busy are not called */
	int quiet;                 /* owner_quiesce: nothing more is acquired */
};

struct owner_call {
	struct owner_shard *s;
	int64_t sent_ms;
	int leave;                 /* a release of owner_leave: counted in leave_out */
	char op[8];
};

/* ---- pure parts ---- */

/* One (shard, member) pair and its rendezvous weight. */
struct owner_pair {
	uint64_t w;
	uint32_t shard;
	uint32_t member;
};

static int
owner_pair_cmp(const void *a, const void *b)
{
	const struct owner_pair *x = a, *y = b;

	if (x->w != y->w)
		return x->w < y->w ? 1 : -1;          /* heaviest first */
	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	return x->member < y->member ? -1 : x->member > y->member;
}

int
owner_assign(const char *const *members, size_t n, uint32_t nshards, int *out)
{
	struct owner_pair *p;
	size_t i, np = 0, cap, extra, *load;
	uint32_t k;

	for (k = 0; k < nshards; k++)
		out[k] = -1;
	if (n == 0)
		return 0;
	if ((p = calloc(n * nshards, sizeof(*p))) == NULL ||
	    (load = calloc(n, sizeof(*load))) == NULL) {
		free(p);
		return -1;
	}
	for (k = 0; k < nshards; k++) {
		uint64_t salt = (uint64_t)(k + 1) * 0x9e3779b97f4a7c15ULL;

		for (i = 0; i < n; i++) {
			p[np].w = rule_fmix64(rule_fnv1a(members[i]) ^ salt);
			p[np].shard = k;
			p[np++].member = (uint32_t)i;
		}
	}
	/* Greedy, heaviest pair first: each shard goes to the member that wants it most
	 * among those still under their share. The share is nshards / n, and only
	 * nshards mod n members may take one more: a cap of the rounded-up share for
	 * all could fill the others and leave one member far under its share. */
	qsort(p, np, sizeof(*p), owner_pair_cmp);
	cap = nshards / n;
	extra = nshards % n;
	for (i = 0; i < np; i++) {
		size_t *l = &load[p[i].member];

		if (out[p[i].shard] >= 0 || *l > cap || (*l == cap && extra == 0))
			continue;
		if (*l == cap)
			extra--;              /* this member takes one of the extra shards */
		out[p[i].shard] = (int)p[i].member;
		(*l)++;
	}
	free(p);
	free(load);
	return 0;
}

int
owner_parse_shards(const char *s, uint8_t *want, uint32_t nshards, char *why,
    size_t whysize)
{
	const char *p = s;
	unsigned long lo, hi, k;
	char *end;
	int any = 0;

	memset(want, 0, nshards);
	while (*p != '\0') {
		while (*p == ' ')
			p++;
		if (*p < '0' || *p > '9')
			goto bad;
		lo = hi = strtoul(p, &end, 10);
		p = end;
		if (*p == '-') {
			p++;
			if (*p < '0' || *p > '9')
				goto bad;
			hi = strtoul(p, &end, 10);
			p = end;
		}
		while (*p == ' ')
			p++;
		if (lo > hi) {
			snprintf(why, whysize, "range %lu-%lu runs backwards", lo, hi);
			return -1;
		}
		if (hi >= nshards) {
			snprintf(why, whysize, "shard %lu is past the last shard (%u)", hi,
			    nshards - 1);
			return -1;
		}
		for (k = lo; k <= hi; k++)
			want[k] = 1;
		any = 1;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			goto bad;
	}
	if (!any) {
		snprintf(why, whysize, "names no shard");
		return -1;
	}
	return 0;
bad:
	snprintf(why, whysize, "expected shard numbers and ranges like 0-15,40 at '%.20s'",
	    p);
	return -1;
}

/* ---- the served set ---- */

int
owner_serves(const struct owner *o, uint32_t k)
{
	const struct owner_shard *s;

	if (o == NULL)
		return 1;
	if (k >= o->n)
		return 0;
	s = &o->sh[k];
	return s->until_ms > clock_mono_ms() && s->left_ms == 0 && !o->leaving;
}

int
owner_holds(const struct owner *o, uint32_t k)
{
	if (o == NULL)
		return 1;
	return k < o->n && o->sh[k].until_ms > clock_mono_ms();
}

int64_t
owner_until(const struct owner *o, uint32_t k)
{
	if (o == NULL)
		return INT64_MAX;
	return k < o->n ? o->sh[k].until_ms : 0;
}

const char *
owner_epoch(const struct owner *o, uint32_t k)
{
	if (o == NULL)
		return "";
	/* Not held: an epoch no lease ever has (they start at 1), so that a fenced
	 * script refuses rather than taking "" for "no ownership". */
	return k < o->n && o->sh[k].epoch[0] != '\0' ? o->sh[k].epoch : "0";
}

const char *
owner_key(const struct owner *o, uint32_t k)
{
	return o == NULL || k >= o->n ? "" : o->sh[k].key;
}

size_t
owner_count(const struct owner *o)
{
	size_t c = 0;
	uint32_t k;

	for (k = 0; o != NULL && k < o->n; k++)
		c += owner_serves(o, k);
	return c;
}

/* Tells the notifier of every shard whose served state changed. */
static void
owner_notify(struct owner *o)
{
	uint32_t k;
	int now;

	for (k = 0; k < o->n && !o->muted; k++) {
		struct owner_shard *s = &o->sh[k];
		int held = owner_holds(o, k);

		if ((now = owner_serves(o, k)) == s->serving && held == s->holding)
			continue;
		if (now != s->serving)
			log_info("event=shard_%s shard=%u epoch=%s", now ? "serving" :
			    "not_serving", k, s->epoch[0] ? s->epoch : "-");
		s->serving = now;
		s->holding = held;
		o->on_change(o->arg, k, now, held);
	}
}

/* The lease is gone (lost, released, or run out here). */
static void
owner_drop(struct owner_shard *s)
{
	s->epoch[0] = '\0';
	s->until_ms = 0;
	s->left_ms = 0;
}

/* ---- commands ---- */

static void owner_on_reply(struct rconn *rc, struct redisReply *r, int durable,
    void *arg);

static int
owner_send(struct owner_shard *s, const char *op, int leave)
{
	struct owner *o = s->o;
	struct owner_call *c = calloc(1, sizeof(*c));
	char lease[32];
	const char *args[6];
	int nargs = 0;

	if (c == NULL)
		return -1;
	c->s = s;
	c->leave = leave;
	c->sent_ms = clock_mono_ms();
	snprintf(c->op, sizeof(c->op), "%s", op);
	snprintf(lease, sizeof(lease), "%ld", o->cfg.lease_ms);
	/* ORDER OWN_KEYS */
	args[nargs++] = s->key;
	args[nargs++] = op;
	args[nargs++] = o->me;
	if (strcmp(op, "acquire") != 0)
		args[nargs++] = s->epoch;
	if (strcmp(op, "release") != 0)
		args[nargs++] = lease;
	/* A release needs no WAIT: losing it in a failover only makes the next holder
	 * wait for the lease to run out. */
	if (durable_script_call(o->cmd, strcmp(op, "release") == 0 ? &(struct
	    durable_config){ 0, 0 } : &o->cfg.wait, "own", 1, nargs, args, NULL,
	    owner_on_reply, c) < 0) {
		free(c);
		return -1;
	}
	s->out = 1;
	if (strcmp(op, "acquire") == 0 || strcmp(op, "renew") == 0)
		s->renewed_ms = c->sent_ms;
	return 0;
}

static void
owner_leave_step(struct owner *o)
{
	if (o->leave_out > 0)
		o->leave_out--;
	if (o->leave_out == 0 && o->done != NULL) {
		owner_done_fn *done = o->done;

		o->done = NULL;
		done(o->done_arg);
	}
}

static void
owner_on_reply(struct rconn *rc, struct redisReply *r, int durable, void *arg)
{
	struct owner_call *c = arg;
	struct owner_shard *s = c->s;
	struct owner *o = s->o;
	const char *verdict = NULL;
	int leave;

	(void)rc;
	s->out = 0;
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    r->element[1]->type == REDIS_REPLY_STRING)
		verdict = r->element[0]->str;
	if (verdict == NULL) {
		/* No answer: an acquire may have run; the next one (same id) takes it
		 * under a new epoch. A renew's lease runs down here meanwhile: the next
		 * tick tries again. */
		log_warnx("event=shard_lease_failed shard=%u op=%s err=\"%s\"", s->k, c->op,
		    r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "no reply");
		s->renewed_ms = 0;
	} else if (strcmp(c->op, "release") == 0) {
		log_info("event=shard_released shard=%u epoch=%s", s->k, s->epoch);
		owner_drop(s);
	} else if (strcmp(verdict, "ok") == 0 && !durable) {
		/* Held in the primary, not yet on a replica: a failover could give the
		 * shard to another notifier. Not counted; the next tick asks again. */
		log_warnx("event=shard_lease_not_durable shard=%u op=%s replicas_wanted=%ld",
		    s->k, c->op, o->cfg.wait.replicas);
		s->renewed_ms = 0;        /* the next tick asks again */
	} else if (strcmp(verdict, "ok") == 0 && strcmp(c->op, "renew") == 0 &&
	    s->until_ms == 0) {
		/* The local lease ran out before this answer: not served; the next tick
		 * acquires again under a new epoch. */
	} else if (strcmp(verdict, "ok") == 0) {
		if (strcmp(c->op, "acquire") == 0) {
			snprintf(s->epoch, sizeof(s->epoch), "%s", r->element[1]->str);
			s->left_ms = 0;
			s->busy_holder[0] = '\0';
			log_info("event=shard_acquired shard=%u epoch=%s", s->k, s->epoch);
		}
		s->until_ms = c->sent_ms + o->cfg.lease_ms - o->cfg.margin_ms;
	} else if (strcmp(verdict, "busy") == 0) {
		if (strcmp(s->busy_holder, r->element[1]->str) != 0) {
			snprintf(s->busy_holder, sizeof(s->busy_holder), "%s",
			    r->element[1]->str);
			log_info("event=shard_busy shard=%u holder=%s", s->k, s->busy_holder);
		}
	} else {
		/* "lost": another notifier holds it under a later epoch. */
		log_warnx("event=shard_lost shard=%u epoch=%s holder=%s", s->k, s->epoch,
		    r->element[1]->str[0] ? r->element[1]->str : "-");
		owner_drop(s);
	}
	leave = c->leave;
	free(c);
	owner_notify(o);
	if (leave)
		owner_leave_step(o);
}

/* The heartbeat's answer: the live ids, sorted. Balanced: who should hold what. */
static void
owner_on_members(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct owner *o = arg;
	const char *ids[OWNER_MEMBERS_MAX];
	size_t i, n = 0;
	uint32_t k;
	int me = -1;

	(void)rc;
	o->members_out = 0;
	if (o->leaving) {
		if (o->leave_beat_out) {
			o->leave_beat_out = 0;
			owner_leave_step(o);
		}
		return;
	}
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		log_warnx("event=members_failed err=\"%s\"", r != NULL &&
		    r->type == REDIS_REPLY_ERROR ? r->str : "no reply");
		return;   /* the wanted set stays as it was; the leases decide */
	}
	for (i = 0; i < r->elements && n < OWNER_MEMBERS_MAX; i++) {
		if (r->element[i]->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(r->element[i]->str, o->me) == 0)
			me = (int)n;
		ids[n++] = r->element[i]->str;
	}
	if (n != o->nmembers)
		log_info("event=members live=%zu", n);
	o->nmembers = n;
	if (me < 0)
		return;   /* our own beat is not in the list: wait for the next */
	if (owner_assign(ids, n, o->n, o->assign) < 0) {
		log_warnx("event=members_failed err=\"out of memory\"");
		return;
	}
	for (k = 0; k < o->n; k++)
		o->want[k] = o->assign[k] == me;
}

static void
owner_beat(struct owner *o, const char *op)
{
	char lease[32];

	snprintf(lease, sizeof(lease), "%ld", o->cfg.lease_ms);
	/* ORDER MEMBERS_KEYS */
	if (script_call_named(o->cmd, "members", 1, 5, (const char *[]){
	    OWNER_MEMBERS_KEY, op, o->me, lease, o->addr }, NULL, owner_on_members,
	    o) == 0)
		o->members_out = 1;
}

/* The one step shard s needs now, if any. */
static void
owner_step(struct owner *o, struct owner_shard *s, int64_t now)
{
	int held = s->until_ms != 0;

	if (held && now >= s->until_ms) {
		log_warnx("event=shard_lease_ran_out shard=%u epoch=%s", s->k, s->epoch);
		owner_drop(s);
		held = 0;
	}
	if (s->out)
		return;
	if (held && !o->want[s->k] && s->left_ms == 0) {
		log_info("event=shard_leaving shard=%u epoch=%s", s->k, s->epoch);
		s->left_ms = now;
	} else if (held && o->want[s->k] && s->left_ms != 0 && !o->quiet) {
		/* Wanted again before it was released: kept, served again. */
		log_info("event=shard_kept shard=%u epoch=%s", s->k, s->epoch);
		s->left_ms = 0;
	}
	if (held && s->left_ms != 0 &&
	    (o->muted || !o->busy(o->arg, s->k) ||
	    now - s->left_ms >= o->cfg.lease_ms)) {
		(void)owner_send(s, "release", 0);
		return;
	}
	/* Every quarter lease (a tick is a sixth): a renew that fails is tried again
	 * at the next tick, well before the local lease (lease - margin) ends. */
	if (held && now - s->renewed_ms >= o->cfg.lease_ms / 4) {
		(void)owner_send(s, "renew", 0);
		return;
	}
	if (!held && o->want[s->k] && !o->quiet && (o->cfg.mode == OWNER_CONFIGURED ||
	    now - o->started_ms >= o->cfg.settle_ms))
		(void)owner_send(s, "acquire", 0);
}

static void
owner_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct owner *o = arg;
	int64_t now = clock_mono_ms();
	uint32_t k;

	(void)fd;
	(void)what;
	if (o->leaving)
		return;
	if (o->cfg.mode == OWNER_BALANCED && !o->members_out && rconn_is_ready(o->cmd))
		owner_beat(o, "beat");
	for (k = 0; k < o->n; k++)
		owner_step(o, &o->sh[k], now);
	owner_notify(o);
}

struct owner *
owner_new(struct event_base *base, struct rconn *cmd, const struct owner_config *cfg,
    uint32_t nshards, owner_change_fn *on_change, owner_busy_fn *busy, void *arg)
{
	struct owner *o = calloc(1, sizeof(*o));
	long ms = cfg->lease_ms / 6 > OWNER_TICK_MIN_MS ? cfg->lease_ms / 6 :
	    OWNER_TICK_MIN_MS;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
	uint32_t k;

	if (o == NULL)
		return NULL;
	o->base = base;
	o->cmd = cmd;
	o->cfg = *cfg;
	o->n = nshards;
	o->on_change = on_change;
	o->busy = busy;
	o->arg = arg;
	o->started_ms = clock_mono_ms();
	if ((o->me = strdup(cfg->me)) == NULL ||
	    (o->addr = strdup(cfg->addr != NULL ? cfg->addr : "")) == NULL ||
	    (o->want = calloc(nshards, 1)) == NULL ||
	    (o->assign = calloc(nshards, sizeof(*o->assign))) == NULL ||
	    (o->sh = calloc(nshards, sizeof(*o->sh))) == NULL)
		goto fail;
	o->cfg.want = NULL;
	if (cfg->mode == OWNER_CONFIGURED)
		memcpy(o->want, cfg->want, nshards);
	for (k = 0; k < nshards; k++) {
		o->sh[k].o = o;
		o->sh[k].k = k;
		if (keys_shard_key(k, KEYS_OWNER, o->sh[k].key, sizeof(o->sh[k].key)) < 0)
			goto fail;
	}
	if ((o->tick = event_new(base, -1, EV_PERSIST, owner_on_tick, o)) == NULL)
		goto fail;
	event_add(o->tick, &tv);
	log_info("event=ownership mode=%s shards=%u lease_ms=%ld margin_ms=%ld",
	    cfg->mode == OWNER_BALANCED ? "balanced" : "configured", nshards,
	    cfg->lease_ms, cfg->margin_ms);
	return o;
fail:
	owner_free(o);
	return NULL;
}

void
owner_leave(struct owner *o, owner_done_fn *done, void *arg)
{
	uint32_t k;

	o->leaving = 1;
	o->done = done;
	o->done_arg = arg;
	o->leave_out = 1;           /* this call's own step, below */
	owner_notify(o);
	for (k = 0; k < o->n; k++) {
		struct owner_shard *s = &o->sh[k];

		/* A command out answers first; its shard's lease then runs out in Redis. */
		if (s->until_ms != 0 && !s->out && owner_send(s, "release", 1) == 0)
			o->leave_out++;
	}
	if (o->cfg.mode == OWNER_BALANCED && !o->members_out) {
		owner_beat(o, "leave");
		if (o->members_out) {
			o->leave_beat_out = 1;
			o->leave_out++;
		}
	}
	owner_leave_step(o);
}

void
owner_quiesce(struct owner *o)
{
	if (o != NULL)
		o->quiet = 1;
}

void
owner_mute(struct owner *o)
{
	if (o != NULL)
		o->muted = 1;
}

void
owner_free(struct owner *o)
{
	if (o == NULL)
		return;
	if (o->tick != NULL)
		event_free(o->tick);
	free(o->sh);
	free(o->want);
	free(o->assign);
	free(o->me);
	free(o->addr);
	free(o);
}
