/*
 * ingest_update.c: a deal published again with "update": true (stages: ingest,
 * match).
 *
 * The new expiry goes into deal:<id> (update.lua). When the update may change what
 * a text renders (a price, list price or currency, or a title or url other than the
 * planned ones), the deal is matched again as planning does, with the click links of
 * the ORIGINAL deal entry (push ids stay the same), and the new texts are written in
 * chunks of plan_chunk for the pushes not yet final (retext.lua), whose last chunk
 * bumps the deal's version and acks. Must never add a recipient (an update never
 * texts new people) and never ack an update whose texts are not all written.
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
#define INGEST_UPD_KEYS 3
#define INGEST_UPD_ARGS 12
/* ORDER RETEXT_KEYS: the header of notifier/lua/retext.lua. */
#define INGEST_RETEXT_KEYS 3       /* then push:, retext: per group of one shard */
#define INGEST_RETEXT_ARGV 6       /* fixed arguments; per group n, field, text */

/* One update.lua call: the deal it applies, kept for a re-render. */
struct ingest_upd {
	struct ingest_job *job;
	struct deal *d;            /* owned */
	char keep[32];
};

static void
upd_free(struct ingest_upd *u)
{
	deal_free(u->d);
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

/* A recipient's position in the chunk and its shard (keys.h), to group by shard. */
struct retext_pos {
	uint32_t shard;
	size_t i;
};

static int
retext_pos_cmp(const void *a, const void *b)
{
	const struct retext_pos *x = a, *y = b;

	if (x->shard != y->shard)
		return x->shard < y->shard ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

int
ingest_retext_chunk(struct ingest_job *j, const struct deal *d,
    const struct match_list *ml, const char *attempt, const char *keep, size_t chunk,
    int last)
{
	size_t n = ml->n, i, a = 0, g, ng = 0, nk = INGEST_RETEXT_KEYS;
	struct retext_pos *ord = calloc(n + 1, sizeof(*ord));
	/* KEYS then ARGV: at most one group per recipient, 2 keys and a count each */
	const char **keys = calloc(INGEST_RETEXT_KEYS + 2 * n + 2, sizeof(*keys));
	const char **args = calloc(INGEST_RETEXT_KEYS + INGEST_RETEXT_ARGV + 5 * n + 2,
	    sizeof(*args));
	char (*fields)[MODEL_ID_MAX + 16] = calloc(n + 1, sizeof(*fields));
	char (*gkeys)[2][MODEL_ID_MAX + KEYS_SHARD_MAX] = calloc(n + 1, sizeof(*gkeys));
	char (*gn)[24] = calloc(n + 1, sizeof(*gn));
	char key[MODEL_ID_MAX + 8];
	char sc[32], snc[32];
	int rv = -1;

	if (ord == NULL || keys == NULL || args == NULL || fields == NULL ||
	    gkeys == NULL || gn == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		ord[i].shard = keys_shard_of(ml->v[i].sub->id);
		ord[i].i = i;
	}
	qsort(ord, n, sizeof(*ord), retext_pos_cmp);
	snprintf(key, sizeof(key), "deal:%s", d->id);
	snprintf(sc, sizeof(sc), "%zu", chunk);
	/* ORDER PLAN_LAST: as plan.lua, the count only with the last chunk. */
	snprintf(snc, sizeof(snc), "%zu", last ? chunk + 1 : (size_t)0);
	/* KEYS (ORDER RETEXT_KEYS) */
	keys[0] = key;
	keys[1] = INGEST_STREAM;
	keys[2] = INGEST_TRIES;
	/* ARGV */
	args[a++] = j->entry;
	args[a++] = INGEST_GROUP;
	args[a++] = sc;
	args[a++] = snc;
	args[a++] = attempt;
	args[a++] = keep;
	/* One group per shard of the chunk's recipients: its push: and retext: keys. */
	for (i = 0; i < n; i = g) {
		uint32_t shard = ord[i].shard;

		for (g = i; g < n && ord[g].shard == shard; g++)
			;
		keys_per(shard, KEYS_PUSH, d->id, gkeys[ng][0], sizeof(gkeys[ng][0]));
		keys_per(shard, KEYS_RETEXT, d->id, gkeys[ng][1], sizeof(gkeys[ng][1]));
		keys[nk++] = gkeys[ng][0];
		keys[nk++] = gkeys[ng][1];
		snprintf(gn[ng], sizeof(gn[ng]), "%zu", g - i);
		args[a++] = gn[ng++];
		for (; i < g; i++) {
			const struct match_rcpt *rc = &ml->v[ord[i].i];

			snprintf(fields[i], sizeof(fields[i]), "%s:%s", rc->sub->id,
			    channel_name(rc->ch));
			args[a++] = fields[i];
			args[a++] = rc->text;
		}
	}
	/* KEYS first, then ARGV, as script_call_named takes them. */
	memmove(args + nk, args, a * sizeof(*args));
	memcpy(args, keys, nk * sizeof(*args));
	ingest_call(j, "retext", (int)nk, (int)(nk + a), args, NULL, chunk);
	rv = 0;
out:
	free(ord);
	free(keys);
	free(args);
	free(fields);
	free(gkeys);
	free(gn);
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
	if (upd_fill(&d->code_pool, pool) < 0 || upd_fill(&d->campaign, campaign) < 0) {
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
	} else if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "unknown") == 0) {
		log_warnx("event=deal_dead entry=%s deal=%s reason=unknown_deal field=id "
		    "err=\"update of a deal that was never planned\"", j->entry, j->deal);
		if (j->in->metrics != NULL)
			metrics_inc(j->in->metrics, METRIC_DEALS_DEAD,
			    METRICS_L("unknown_deal"), 1);
	} else if (r->type == REDIS_REPLY_ARRAY && r->elements == 4 && upd_str(r, 0) &&
	    strcmp(r->element[0]->str, "retext") == 0 && upd_str(r, 1) && upd_str(r, 2) &&
	    upd_str(r, 3)) {
		upd_retext(u, r->element[1]->str, r->element[2]->str, r->element[3]->str);
	} else if (r->type != REDIS_REPLY_STATUS) {
		ingest_job_fail(j, 0, "update", "unexpected reply");
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
		log_info("event=deal_updated deal=%s entry=%s texts=%zu", j->deal, j->entry,
		    j->recipients);
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
	char key[MODEL_ID_MAX + 8], exp[32], msg[MODEL_ID_MAX + 64];
	const char *args[INGEST_UPD_ARGS];
	size_t lens[INGEST_UPD_ARGS];
	int64_t left = d->expires_at - clock_now();
	struct ingest_upd *u = NULL;
	struct ingest_job *j;
	int i;

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
	snprintf(key, sizeof(key), "deal:%s", u->d->id);
	snprintf(exp, sizeof(exp), "%lld", (long long)u->d->expires_at);
	snprintf(u->keep, sizeof(u->keep), "%lld", (long long)((left > 0 ? left : 0) +
	    INGEST_KEEP_S));
	snprintf(msg, sizeof(msg), "id: no deal %s was planned to update", u->d->id);
	/* ORDER UPDATE_KEYS: the header of update.lua. A past expiry stops every push:
	 * nothing to render. */
	args[0] = key;
	args[1] = INGEST_STREAM;
	args[2] = INGEST_DEAD_STREAM;
	args[3] = entry;
	args[4] = INGEST_GROUP;
	args[5] = exp;
	args[6] = u->keep;
	args[7] = msg;
	args[8] = payload;
	args[9] = left <= 0 ? "-" : upd_renders(u->d) ? "1" : "0";
	args[10] = u->d->title;
	args[11] = u->d->url;
	for (i = 0; i < INGEST_UPD_ARGS; i++)
		lens[i] = strlen(args[i]);
	lens[8] = len > INGEST_DEAD_PAYLOAD_MAX ? INGEST_DEAD_PAYLOAD_MAX : len;
	if (script_call_named(in->cmd, "update", INGEST_UPD_KEYS, INGEST_UPD_ARGS, args, lens,
	    upd_on_reply, u) < 0) {
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
