/*
 * ctl_migrate_jobs.c: how dealpushctl migrate moves the jobs of "pushes" (stage:
 * outside the pipeline; docs/sharding.md section 4g, "As built").
 *
 * A job stream is not copied entry for entry like pushes:log: each layout's
 * deliverer reads its own group "deliver", and a job must hold one shard's
 * recipients in the sharded layout. So only the jobs the group still needs (pending,
 * or not yet delivered to any consumer) move, each split by its recipients' shards
 * into new jobs with new ids (one per shard it names) on the other layout's streams;
 * the jobs already acked stay behind and go with the source stream at the end.
 * Also here: the names of the global keys the sharded layout renames.
 * A job's move (its XADDs, the XACK and XDEL of the source entry) is one MULTI, so a
 * migration killed anywhere and run again moves each job once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "shard.h"

#include "ctl_int.h"
#include "ctl_migrate_int.h"

#define MIG_JOBS_GROUP "deliver"

/* A stream id "<ms>-<seq>" as two numbers; -1 when it is not one. */
static int
mig_id_parse(const char *id, unsigned long long *ms, unsigned long long *seq)
{
	char *end;

	*ms = strtoull(id, &end, 10);
	if (end == id || *end != '-')
		return -1;
	*seq = strtoull(end + 1, &end, 10);
	return *end == '\0' ? 0 : -1;
}

/* 1 when stream id a comes after b. */
static int
mig_id_after(const char *a, const char *b)
{
	unsigned long long am, as, bm, bs;

	if (mig_id_parse(a, &am, &as) < 0 || mig_id_parse(b, &bm, &bs) < 0)
		return 1;    /* cannot tell: treat it as needed (moved, never lost) */
	return am > bm || (am == bm && as > bs);
}

/* The group's last-delivered-id into last ("" when the stream has no such group:
 * every entry is needed). 0, or -1 after printing. */
static int
mig_jobs_last(struct mig *m, const char *src, char *last, size_t size)
{
	const char *argv[3] = { "XINFO", "GROUPS", src };
	redisReply *r = mig_argv(m, 3, argv, NULL);
	size_t g, k;

	last[0] = '\0';
	if (r == NULL)
		return -1;
	for (g = 0; r->type == REDIS_REPLY_ARRAY && g < r->elements; g++) {
		const redisReply *e = r->element[g];
		const char *name = NULL, *id = NULL;

		for (k = 0; e->type == REDIS_REPLY_ARRAY && k + 1 < e->elements; k += 2) {
			const redisReply *key = e->element[k], *v = e->element[k + 1];

			if (key->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
				continue;
			if (strcmp(key->str, "name") == 0)
				name = v->str;
			else if (strcmp(key->str, "last-delivered-id") == 0)
				id = v->str;
		}
		if (name != NULL && id != NULL && strcmp(name, MIG_JOBS_GROUP) == 0)
			snprintf(last, size, "%s", id);
	}
	freeReplyObject(r);
	return 0;
}

/* 1 when entry id of src is pending in the group, 0 when not, -1 after printing. */
static int
mig_jobs_pending(struct mig *m, const char *src, const char *id)
{
	const char *argv[6] = { "XPENDING", src, MIG_JOBS_GROUP, id, id, "1" };
	redisReply *r = mig_argv(m, 6, argv, NULL);
	int pending;

	if (r == NULL)
		return -1;
	pending = r->type == REDIS_REPLY_ARRAY && r->elements > 0;
	freeReplyObject(r);
	return pending;
}

/* The shard of a recipient line "<channel>\t<subscriber>\t..." (0 when it names
 * none: the deliverer refuses such a line wherever it is). */
static uint32_t
mig_line_shard(struct mig *m, const redisReply *v)
{
	char sub[MIG_NAME_MAX];
	const char *a = memchr(v->str, '\t', v->len), *b;
	size_t n;

	if (a == NULL)
		return 0;
	n = v->len - (size_t)(a + 1 - v->str);
	b = memchr(a + 1, '\t', n);
	n = b != NULL ? (size_t)(b - a - 1) : n;
	if (n == 0 || n >= sizeof(sub))
		return 0;
	memcpy(sub, a + 1, n);
	sub[n] = '\0';
	return shard_of(sub, m->n);
}

/* Queues "XADD dst * <the job's own fields> <its r lines of shard k>" (every line
 * when k is MIG_ALL); returns 1 when queued, 0 when the job has no line there (and
 * force is 0), -1 on OOM. */
static int
mig_jobs_xadd(struct mig *m, const char *dst, const redisReply *f, uint32_t k,
    int force)
{
	const char **argv = calloc(3 + f->elements, sizeof(*argv));
	size_t *lens = calloc(3 + f->elements, sizeof(*lens)), i;
	int argc = 3, lines = 0;

	if (argv == NULL || lens == NULL) {
		free(argv);
		free(lens);
		return -1;
	}
	argv[0] = "XADD";
	lens[0] = 4;
	argv[1] = dst;
	lens[1] = strlen(dst);
	argv[2] = "*";
	lens[2] = 1;
	for (i = 0; i + 1 < f->elements; i += 2) {
		const redisReply *key = f->element[i], *v = f->element[i + 1];
		int is_line = key->type == REDIS_REPLY_STRING && strcmp(key->str, "r") == 0;

		if (key->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		if (is_line && k != MIG_ALL && mig_line_shard(m, v) != k)
			continue;
		lines += is_line;
		argv[argc] = key->str;
		lens[argc++] = key->len;
		argv[argc] = v->str;
		lens[argc++] = v->len;
	}
	if ((lines > 0 || force) &&
	    redisAppendCommandArgv(m->c, argc, argv, lens) != REDIS_OK)
		lines = force = -1;
	free(argv);
	free(lens);
	return lines < 0 ? -1 : lines > 0 || force;
}

/* Moves one job (entry e of src) in one MULTI: a new job per destination, then the
 * source entry acked and deleted. A job without any recipient line (the deliverer
 * acks it as bad) moves whole to the first stream, so that its fate is the
 * deliverer's, not the migration's. 0, or -1 after printing. */
static int
mig_jobs_move(struct mig *m, const char *src, const redisReply *e, int grouped)
{
	const redisReply *f = e->element[1];
	const char *id = e->element[0]->str;
	char dst[MIG_NAME_MAX];
	uint32_t k, nk = m->to_shards ? m->n : 1;
	int queued = 1, q, rv = 0, i, appended = 1;
	redisReply *r;

	if (redisAppendCommand(m->c, "MULTI") != REDIS_OK)
		return -1;
	for (k = 0; k < nk && rv == 0; k++) {
		if (m->to_shards && mig_name(m, k, "pushes", dst, sizeof(dst)) < 0)
			rv = -1;
		else if (!m->to_shards)
			snprintf(dst, sizeof(dst), "pushes");
		if (rv == 0 && (q = mig_jobs_xadd(m, dst, f, m->to_shards ? k : MIG_ALL,
		    0)) < 0)
			rv = -1;
		else if (rv == 0)
			queued += q;
	}
	if (rv == 0 && queued == 1) {
		if (m->to_shards && mig_name(m, 0, "pushes", dst, sizeof(dst)) < 0)
			rv = -1;
		else if ((q = mig_jobs_xadd(m, dst, f, MIG_ALL, 1)) < 0)
			rv = -1;
		else
			queued += q;
	}
	if (grouped) {
		appended &= redisAppendCommand(m->c, "XACK %s " MIG_JOBS_GROUP " %s", src,
		    id) == REDIS_OK;
		queued++;
	}
	appended &= redisAppendCommand(m->c, "XDEL %s %s", src, id) == REDIS_OK;
	appended &= redisAppendCommand(m->c, rv < 0 ? "DISCARD" : "EXEC") == REDIS_OK;
	queued += 2;
	if (!appended) {
		fprintf(stderr, "dealpushctl: migrate: out of memory\n");
		return -1;
	}
	for (i = 0; i < queued; i++) {
		size_t j;

		if (redisGetReply(m->c, (void **)&r) != REDIS_OK) {
			fprintf(stderr, "dealpushctl: migrate: redis: %s\n", m->c->errstr);
			return -1;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "dealpushctl: migrate: redis: moving job %s of %s: %s\n",
			    id, src, r->str);
			rv = -1;
		}
		/* EXEC's answers: a command that failed inside it (the destination streams
		 * were checked before the walk, so this is rare) is said. */
		for (j = 0; i == queued - 1 && r->type == REDIS_REPLY_ARRAY && j < r->elements;
		    j++)
			if (r->element[j]->type == REDIS_REPLY_ERROR) {
				fprintf(stderr, "dealpushctl: migrate: redis: moving job %s of %s:"
				    " %s\n", id, src, r->element[j]->str);
				rv = -1;
			}
		freeReplyObject(r);
	}
	return rv;
}

/* What mig_jobs' walk needs: the group's last-delivered id ("" = no group). */
struct mig_jobs_walk {
	char last[64];
};

/* mig_entry_fn: moves entry e when the group still needs it (pending, or after the
 * last-delivered id, or every entry without a group). */
static int
mig_jobs_entry(struct mig *m, const char *src, const redisReply *e, void *arg)
{
	const struct mig_jobs_walk *w = arg;
	const char *id = e->element[0]->str;
	int grouped = w->last[0] != '\0';
	int need = !grouped || mig_id_after(id, w->last);

	if (!need && (need = mig_jobs_pending(m, src, id)) < 0)
		return -1;
	return need ? mig_jobs_move(m, src, e, grouped) : 0;
}

/* 0 when every stream mig_jobs may write to is a stream or absent, -1 (after
 * printing) when one is another type: the move of a job must not half-fail. */
static int
mig_jobs_check_dst(struct mig *m)
{
	char dst[MIG_NAME_MAX];
	uint32_t k, nk = m->to_shards ? m->n : 1;

	for (k = 0; k < nk; k++) {
		redisReply *r;
		int bad;

		if (m->to_shards && mig_name(m, k, "pushes", dst, sizeof(dst)) < 0)
			return -1;
		if (!m->to_shards)
			snprintf(dst, sizeof(dst), "pushes");
		if ((r = mig_cmd(m, "TYPE", dst, NULL, NULL)) == NULL)
			return -1;
		bad = r->type != REDIS_REPLY_STATUS || (strcmp(r->str, "stream") != 0 &&
		    strcmp(r->str, "none") != 0);
		if (bad)
			fprintf(stderr, "dealpushctl: migrate: refused: %s is a %s, not a job "
			    "stream\n", dst, r->type == REDIS_REPLY_STATUS ? r->str : "?");
		freeReplyObject(r);
		if (bad)
			return -1;
	}
	return 0;
}

int
mig_jobs(struct mig *m, const char *src)
{
	struct mig_jobs_walk w;

	if (mig_jobs_check_dst(m) < 0 || mig_jobs_last(m, src, w.last, sizeof(w.last)) < 0 ||
	    mig_walk_stream(m, src, mig_jobs_entry, &w) < 0)
		return -1;
	/* What is left was acked: it goes with the stream and its groups. */
	return mig_drop(m, src);
}

int
mig_global_name(const char *k, int to_shards, char *buf, size_t size)
{
	/* Keys named by a prefix and an id, beside their partner in the sharded layout:
	 * a console session (keys_session), a reply's MessageSid (keys_reply_seen). */
	static const char *const prefix[][2] = {
		{ "session:", "{rules}:session:" },
		{ "inbound:seen:", "{replies}:seen:" },
	};
	int g, n;
	size_t p;

	for (g = 0; g < KEYS_G_NAMES; g++) {
		const char *a = to_shards ? keys_global_single((enum keys_global)g) :
		    keys_global_sharded((enum keys_global)g);

		if (strcmp(k, a) == 0) {
			n = snprintf(buf, size, "%s", to_shards ?
			    keys_global_sharded((enum keys_global)g) :
			    keys_global_single((enum keys_global)g));
			return n < 0 || (size_t)n >= size ? -1 : 1;
		}
	}
	for (p = 0; p < sizeof(prefix) / sizeof(prefix[0]); p++) {
		const char *from = prefix[p][!to_shards], *to = prefix[p][to_shards];

		if (strncmp(k, from, strlen(from)) != 0)
			continue;
		n = snprintf(buf, size, "%s%s", to, k + strlen(from));
		return n < 0 || (size_t)n >= size ? -1 : 1;
	}
	return 0;
}
