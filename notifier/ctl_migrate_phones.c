/*
 * ctl_migrate_phones.c: dealpushctl migrate --to-shards builds the phone index of
 * every stored subscriber (stage: outside the pipeline; docs/sharding.md 4f, 4g).
 *
 * The writes of the sharded layout add each subscriber's id to its number (and X
 * id) before they store it; subscribers stored before, in the single-instance layout
 * or by an older build, may be missing from it. So once the walk has put every
 * subscriber in its shard, each shard's subscribers are read page by page and their
 * ids added to the index with phone_index.lua, one call per (index, phone shard) of
 * a page. Adding is idempotent: a run again after a kill adds nothing twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "keys.h"
#include "phoneix.h"
#include "shard.h"

#include "ctl_int.h"
#include "ctl_migrate_int.h"

#define MIG_IX_PAGE 500               /* subscribers a page (MIG_BATCH) */

/* The triples (bucket, value, id) of one page for one (index, phone shard), with
 * the call's keys: the suppression list, then the distinct buckets. */
struct mig_ix_group {
	const char **argv;            /* EVALSHA sha nkeys, keys, "add", triples */
	int argc, cap;
	char *keys[1 + MIG_IX_PAGE];  /* owned; [0] the suppression list */
	int nkeys;
	char nk[16];
};

struct mig_ix {
	struct mig *m;
	char sha[41];
	struct mig_ix_group *g;       /* 2 * shards: kind * n + shard */
	char **owned;                 /* the strings the page's triples point to */
	size_t nowned, capowned;
};

static char *
mig_ix_keep(struct mig_ix *x, const char *s)
{
	char *d;

	if (x->nowned == x->capowned) {
		size_t cap = x->capowned ? 2 * x->capowned : 256;
		char **o = realloc(x->owned, cap * sizeof(*o));

		if (o == NULL)
			return NULL;
		x->owned = o;
		x->capowned = cap;
	}
	if ((d = strdup(s)) != NULL)
		x->owned[x->nowned++] = d;
	return d;
}

/* The position (2 ...) of key among g's keys, added when new; 0 on OOM. */
static int
mig_ix_key(struct mig_ix_group *g, const char *key)
{
	int i;

	for (i = 1; i < g->nkeys; i++)
		if (strcmp(g->keys[i], key) == 0)
			return i + 1;
	if (g->nkeys == 1 + MIG_IX_PAGE || (g->keys[g->nkeys] = strdup(key)) == NULL)
		return 0;
	return ++g->nkeys;
}

static int mig_ix_flush(struct mig_ix *x);

/* Adds the triple of (value, id) to its group. 0, or -1 (OOM, or a failed flush). */
static int
mig_ix_add(struct mig_ix *x, enum phoneix_kind kind, const char *value, const char *id)
{
	uint32_t p = shard_of(value, x->m->n);   /* keys_phone_shard, in m's layout */
	struct mig_ix_group *g = &x->g[(size_t)kind * x->m->n + p];
	char name[KEYS_SHARD_MAX], key[KEYS_SHARD_MAX], num[16];
	const char *v, *i, *pos;
	int at;

	/* A page larger than asked for (HSCAN's COUNT is a hint): what is held goes
	 * out first. */
	if (g->nkeys == 1 + MIG_IX_PAGE && mig_ix_flush(x) < 0)
		return -1;
	if ((v = mig_ix_keep(x, value)) == NULL || (i = mig_ix_keep(x, id)) == NULL)
		return -1;
	/* keys_phone's names, in m's layout (not in force in this process): the
	 * bucket of the value's own hash, on the value's shard. */
	if (keys_phone_untagged(value, kind == PHONEIX_DM ? KEYS_PH_DMX : KEYS_PH_PHONES,
	    name, sizeof(name)) < 0 || mig_name(x->m, p, name, key, sizeof(key)) < 0)
		return -1;
	if (g->nkeys == 0) {
		char sup[KEYS_SHARD_MAX] = "";

		if (kind == PHONEIX_PHONE && mig_name(x->m, p, "suppressed:sms", sup,
		    sizeof(sup)) < 0)
			return -1;
		if ((g->keys[0] = strdup(sup)) == NULL)
			return -1;
		g->nkeys = 1;
	}
	if ((at = mig_ix_key(g, key)) == 0)
		return -1;
	snprintf(num, sizeof(num), "%d", at);
	if ((pos = mig_ix_keep(x, num)) == NULL)
		return -1;
	if (g->argc + 3 > g->cap) {
		int cap = g->cap ? 2 * g->cap : 64;
		const char **a = realloc(g->argv, (size_t)cap * sizeof(*a));

		if (a == NULL)
			return -1;
		g->argv = a;
		g->cap = cap;
	}
	g->argv[g->argc++] = pos;
	g->argv[g->argc++] = v;
	g->argv[g->argc++] = i;
	return 0;
}

/* Sends every group of the page and empties them. 0, or -1 after printing. */
static int
mig_ix_flush(struct mig_ix *x)
{
	size_t k, i;

	for (k = 0; k < 2 * (size_t)x->m->n; k++) {
		struct mig_ix_group *g = &x->g[k];
		const char **argv;
		int j, argc = 0, rc;

		if (g->argc == 0)
			continue;
		if ((argv = calloc((size_t)(4 + g->nkeys + g->argc), sizeof(*argv))) == NULL)
			return -1;
		snprintf(g->nk, sizeof(g->nk), "%d", g->nkeys);
		argv[argc++] = "EVALSHA";
		argv[argc++] = x->sha;
		argv[argc++] = g->nk;
		for (j = 0; j < g->nkeys; j++)
			argv[argc++] = g->keys[j];
		argv[argc++] = "add";
		for (j = 0; j < g->argc; j++)
			argv[argc++] = g->argv[j];
		rc = mig_ok(mig_argv(x->m, argc, argv, NULL));
		free(argv);
		for (j = 0; j < g->nkeys; j++)
			free(g->keys[j]);
		g->nkeys = 0;
		g->argc = 0;
		if (rc < 0)
			return -1;
	}
	for (i = 0; i < x->nowned; i++)
		free(x->owned[i]);
	x->nowned = 0;
	return 0;
}

/* The pairs of one stored subscriber (id, its JSON). 0, or -1 on OOM. */
static int
mig_ix_sub(struct mig_ix *x, const char *id, const char *json)
{
	cJSON *j = cJSON_Parse(json);
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "phone");
	const cJSON *dm = cJSON_GetObjectItemCaseSensitive(j, "dm");
	const cJSON *xid = cJSON_GetObjectItemCaseSensitive(dm, "x");
	int rc = 0;

	if (cJSON_IsString(p) && p->valuestring[0] != '\0')
		rc |= mig_ix_add(x, PHONEIX_PHONE, p->valuestring, id);
	if (cJSON_IsString(xid) && xid->valuestring[0] != '\0')
		rc |= mig_ix_add(x, PHONEIX_DM, xid->valuestring, id);
	cJSON_Delete(j);
	return rc;
}

int
mig_phone_index(struct mig *m)
{
	struct mig_ix x;
	uint32_t k;
	size_t i;
	int rc = -1;

	if (!m->to_shards)
		return 0;               /* the walk merged the shards' indexes */
	memset(&x, 0, sizeof(x));
	x.m = m;
	if (ctl_load_script(m->c, "phone_index", x.sha) < 0 ||
	    (x.g = calloc(2 * (size_t)m->n, sizeof(*x.g))) == NULL)
		goto out;
	for (k = 0; k < m->n; k++) {
		char key[KEYS_SHARD_MAX], cursor[32] = "0";

		if (mig_name(m, k, "subscribers", key, sizeof(key)) < 0)
			goto out;
		do {
			const char *argv[5] = { "HSCAN", key, cursor, "COUNT", MIG_BATCH };
			redisReply *r = mig_argv(m, 5, argv, NULL), *e;

			if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
				freeReplyObject(r);
				goto out;
			}
			snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
			e = r->element[1];
			for (i = 0; i + 1 < e->elements; i += 2)
				if (mig_ix_sub(&x, e->element[i]->str, e->element[i + 1]->str) < 0) {
					freeReplyObject(r);
					fprintf(stderr, "dealpushctl: out of memory\n");
					goto out;
				}
			freeReplyObject(r);
			if (mig_ix_flush(&x) < 0)
				goto out;
		} while (strcmp(cursor, "0") != 0);
	}
	rc = 0;
out:
	for (i = 0; x.g != NULL && i < 2 * (size_t)m->n; i++) {
		int j;

		free(x.g[i].argv);
		for (j = 0; j < x.g[i].nkeys; j++)
			free(x.g[i].keys[j]);
	}
	free(x.g);
	for (i = 0; i < x.nowned; i++)
		free(x.owned[i]);
	free(x.owned);
	return rc;
}
