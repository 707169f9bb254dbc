/*
 * ingest_update.c: a deal published again with "update": true (stages: ingest,
 * match).
 *
 * Each shard's reader applies the update to its shard's copy of the deal: the new
 * expiry goes into deal:<id> (update.lua). When the update may change what a text
 * renders (a price, list price or currency, or a title or url other than the
 * planned ones), the deal is matched again as planning does, with the click links of
 * the ORIGINAL deal entry (push ids stay the same), and the shard's new texts are
 * written in chunks of plan_chunk for the pushes not yet final (retext.lua), whose
 * last chunk bumps the copy's version; the update is acked in the shard's group
 * after it. Must never add a recipient (an update never texts new people) and never
 * ack an update whose texts are not all written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "config.h"
#include "deal.h"
#include "ingest_int.h"
#include "keys.h"
#include "log.h"
#include "match.h"
#include "metrics.h"
#include "rconn.h"
#include "scripts.h"
#include "subscriber.h"

/* ORDER UPDATE_KEYS: the header of notifier/lua/update.lua. */
#define INGEST_UPD_KEYS 1
#define INGEST_UPD_ARGS 6
/* ORDER RETEXT_KEYS: the header of notifier/lua/retext.lua. */
#define INGEST_RETEXT_KEYS 1       /* then push:, retext: of the shard */
#define INGEST_RETEXT_ARGV 5       /* fixed arguments; then n, field, text */

/* One update.lua call: the deal it applies, kept for a re-render, and the entry's
 * payload for the dead letter of an update of an unknown deal. */
struct ingest_upd {
	struct ingest_job *job;
	struct deal *d;            /* owned */
	char keep[32];
	char *payload;             /* owned */
	size_t len;
};

static void
upd_free(struct ingest_upd *u)
{
	deal_free(u->d);
	free(u->payload);
	free(u);
}

/* Replaces *field with a copy of v when *field is NULL and v is not "". 0, or -1 on
 * OOM. */
static int
upd_fill(char **field, const char *v)
{
	if (*field != NULL || v[0] == '\0')
		return 0;
	return (*field = strdup(v)) != NULL ? 0 : -1;
}

int
ingest_retext_chunk(struct ingest_job *j, const struct deal *d,
    const struct match_list *ml, const char *attempt, const char *keep, size_t chunk,
    int last)
{
	uint32_t shard = j->in->shard;
	size_t n = ml->n, i, a = 0;
	const char **args = calloc(INGEST_RETEXT_KEYS + 2 + INGEST_RETEXT_ARGV + 1 + 2 * n,
	    sizeof(*args));
	char (*fields)[MODEL_ID_MAX + 16] = calloc(n + 1, sizeof(*fields));
	char key[MODEL_ID_MAX + KEYS_SHARD_MAX], push[MODEL_ID_MAX + KEYS_SHARD_MAX];
	char retext[MODEL_ID_MAX + KEYS_SHARD_MAX], sc[32], snc[32], sn[32];
	int rv = -1;

	if (args == NULL || fields == NULL)
		goto out;
	keys_per(shard, KEYS_DEAL, d->id, key, sizeof(key));
	keys_per(shard, KEYS_PUSH, d->id, push, sizeof(push));
	keys_per(shard, KEYS_RETEXT, d->id, retext, sizeof(retext));
	snprintf(sc, sizeof(sc), "%zu", chunk);
	/* ORDER PLAN_LAST: as plan.lua, the count only with the last chunk. */
	snprintf(snc, sizeof(snc), "%zu", last ? chunk + 1 : (size_t)0);
	snprintf(sn, sizeof(sn), "%zu", n);
	/* KEYS (ORDER RETEXT_KEYS): the shard's copy, then its push: and retext: */
	args[a++] = key;
	args[a++] = push;
	args[a++] = retext;
	/* ARGV */
	args[a++] = j->entry;
	args[a++] = sc;
	args[a++] = snc;
	args[a++] = attempt;
	args[a++] = keep;
	args[a++] = sn;
	for (i = 0; i < n; i++) {
		const struct match_rcpt *rc = &ml->v[i];

		snprintf(fields[i], sizeof(fields[i]), "%s:%s", rc->sub->id,
		    channel_name(rc->ch));
		args[a++] = fields[i];
		args[a++] = rc->text;
	}
	ingest_call(j, "retext", INGEST_RETEXT_KEYS + 2, (int)a, args, NULL, chunk);
	rv = 0;
out:
	free(args);
	free(fields);
	return rv;
}

/* Renders the updated deal's texts again, with the links of its planned entry, and
 * writes them (retext.lua), a slice at a time as planning does (ingest_plan.c). A
 * failure is recorded on the job. */
static void
upd_retext(struct ingest_upd *u, const char *planned_entry, const char *pool,
    const char *campaign)
{
	struct ingest_job *j = u->job;
	struct deal *d = u->d;

	/* The update need not repeat the pool or campaign: the planned ones hold, so
	 * the code keeps its place and the same rules match. */
	if (upd_fill(&d->code_pool, keys_pool_quota(pool) > 0 ? "" : pool) < 0 ||
	    upd_fill(&d->campaign, campaign) < 0) {
		ingest_job_fail(j, 0, "retext", "out of memory");
		return;
	}
	u->d = NULL;
	ingest_retext(j, d, planned_entry, u->keep);       /* takes d */
}

static int
upd_str(const struct redisReply *r, size_t i)
{
	return i < r->elements && r->element[i]->type == REDIS_REPLY_STRING;
}

static void
upd_on_reply(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct ingest_upd *u = arg;
	struct ingest_job *j = u->job;

	(void)rc;
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		/* Left pending: read again from the pending list. */
		log_warnx("event=update_failed deal=%s entry=%s err=\"%s\"", j->deal, j->entry,
		    r ? r->str : "no reply");
		ingest_job_fail(j, r != NULL && ingest_error_counts(r), "update",
		    r ? r->str : "no reply");
	} else if ((r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) &&
	    strcmp(r->str, "unknown") == 0) {
		struct err e;

		/* Dead-lettered once, by shard 0's reader; every other shard acks. */
		err_set(&e, ERR_INPUT, "unknown_deal", "id",
		    "id: no deal %s was planned to update", j->deal);
		ingest_dead(j->in, j->entry, &e, u->payload, u->len);
	} else if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 && upd_str(r, 0) &&
	    strcmp(r->element[0]->str, "retext") == 0 && upd_str(r, 1) && upd_str(r, 2) &&
	    upd_str(r, 3)) {
		upd_retext(u, r->element[1]->str, r->element[2]->str, r->element[3]->str);
	} else if ((r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) ||
	    strcmp(r->str, "ok") != 0) {
		ingest_job_fail(j, 0, "update", "unexpected reply");
	} else {
		j->ack = 1;             /* applied, nothing to render again */
	}
	upd_free(u);
	ingest_job_put(j);
}

void
ingest_update_on_retext(struct ingest_job *j, size_t chunk, const struct redisReply *r)
{
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || !upd_str(r, 0) ||
	    !upd_str(r, 1)) {
		ingest_job_fail(j, 0, "retext", "unexpected reply");
	} else if (strcmp(r->element[0]->str, "retry") == 0) {
		ingest_job_fail(j, 0, "retext", r->element[1]->str);
	} else if (chunk + 1 == j->nchunks) {
		log_info("event=deal_updated deal=%s entry=%s shard=%u texts=%zu", j->deal,
		    j->entry, (unsigned)j->in->shard, j->recipients);
		j->ack = 1;
	}
}

/* 1 when the update carries a field that only a re-render would show beyond the
 * title and url (update.lua compares those with the planned ones). */
static int
upd_renders(const struct deal *d)
{
	return d->has_price || d->has_list_price || d->currency[0] != '\0';
}

void
ingest_update(struct ingest *in, const char *entry, struct deal *d,
    const char *payload, size_t len)
{
	char key[MODEL_ID_MAX + KEYS_SHARD_MAX], exp[32];
	const char *args[INGEST_UPD_KEYS + INGEST_UPD_ARGS];
	int64_t left = d->expires_at - clock_now();
	struct ingest_upd *u = NULL;
	struct ingest_job *j;

	log_info("event=deal_update deal=%s entry=%s exp=%lld expired=%d", d->id, entry,
	    (long long)d->expires_at, left <= 0);
	if ((j = ingest_job_new(in, entry, d->id)) == NULL)
		goto out;
	if ((u = calloc(1, sizeof(*u))) == NULL) {
		ingest_job_fail(j, 0, "update", "out of memory");
		goto out;
	}
	u->job = j;
	u->d = d;
	d = NULL;
	if (in->shard == 0 && (u->payload = malloc(len + 1)) != NULL) {
		u->len = len > INGEST_DEAD_PAYLOAD_MAX ? INGEST_DEAD_PAYLOAD_MAX : len;
		memcpy(u->payload, payload, u->len);
		u->payload[u->len] = '\0';
	}
	keys_per(in->shard, KEYS_DEAL, u->d->id, key, sizeof(key));
	snprintf(exp, sizeof(exp), "%lld", (long long)u->d->expires_at);
	snprintf(u->keep, sizeof(u->keep), "%lld", (long long)((left > 0 ? left : 0) +
	    INGEST_KEEP_S));
	/* ORDER UPDATE_KEYS: the header of update.lua. A past expiry stops every push:
	 * nothing to render. */
	args[0] = key;
	args[1] = exp;
	args[2] = u->keep;
	args[3] = left <= 0 ? "-" : upd_renders(u->d) ? "1" : "0";
	args[4] = u->d->title;
	args[5] = u->d->url;
	if (script_call_named(in->cmd, "update", INGEST_UPD_KEYS, INGEST_UPD_ARGS, args,
	    NULL, upd_on_reply, u) < 0) {
		log_warnx("event=update_failed deal=%s entry=%s err=\"redis not ready\"",
		    j->deal, entry);
		ingest_job_fail(j, 0, "update", "redis not ready");
		goto out;
	}
	u = NULL;
	j->refs++;
out:
	if (u != NULL)
		upd_free(u);
	deal_free(d);
	if (j != NULL)
		ingest_job_put(j);
}
