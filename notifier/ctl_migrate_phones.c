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

/* The pairs (value, id) of one page, grouped by (kind, phone shard). */
struct mig_ix_bucket {
	const char **argv;            /* EVALSHA sha 2 ix sup add, then pairs */
	size_t *lens;
	int argc, cap;
	char ix[KEYS_SHARD_MAX], sup[KEYS_SHARD_MAX];
};

struct mig_ix {
	struct mig *m;
	char sha[41];
	struct mig_ix_bucket *b;      /* 2 * shards: kind * n + shard */
	char **owned;                 /* the strings the page's pairs point to */
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

/* Adds the pair (value, id) to its bucket. 0, or -1 on OOM. */
static int
mig_ix_add(struct mig_ix *x, enum phoneix_kind kind, const char *value, const char *id)
{
	uint32_t p = shard_of(value, x->m->n);   /* keys_phone_shard, in m's layout */
	struct mig_ix_bucket *b = &x->b[(size_t)kind * x->m->n + p];
	const char *v = mig_ix_keep(x, value), *i = mig_ix_keep(x, id);

	if (v == NULL || i == NULL)
		return -1;
	if (b->argc + 2 > b->cap) {
		int cap = b->cap ? 2 * b->cap : 64;
		const char **a = realloc(b->argv, (size_t)cap * sizeof(*a));
		size_t *l = a != NULL ? realloc(b->lens, (size_t)cap * sizeof(*l)) : NULL;

		if (a != NULL)
			b->argv = a;
		if (l == NULL)
			return -1;
		b->lens = l;
		b->cap = cap;
	}
	if (b->argc == 0) {
		/* phoneix_keys, in m's layout (not in force in this process) */
		b->sup[0] = '\0';
		if (mig_name(x->m, p, kind == PHONEIX_DM ? "dmx" : "phones", b->ix,
		    sizeof(b->ix)) < 0 || (kind == PHONEIX_PHONE && mig_name(x->m, p,
		    "suppressed:sms", b->sup, sizeof(b->sup)) < 0))
			return -1;
		b->argv[0] = "EVALSHA";
		b->argv[1] = x->sha;
		b->argv[2] = "2";
		b->argv[3] = b->ix;
		b->argv[4] = b->sup;
		b->argv[5] = "add";
		b->argc = 6;
	}
	b->argv[b->argc++] = v;
	b->argv[b->argc++] = i;
	return 0;
}

/* Sends every bucket of the page and empties them. 0, or -1 after printing. */
static int
mig_ix_flush(struct mig_ix *x)
{
	size_t k, i;

	for (k = 0; k < 2 * (size_t)x->m->n; k++) {
		struct mig_ix_bucket *b = &x->b[k];
		int j;

		if (b->argc == 0)
			continue;
		for (j = 0; j < b->argc; j++)
			b->lens[j] = strlen(b->argv[j]);
		if (mig_ok(mig_argv(x->m, b->argc, b->argv, b->lens)) < 0)
			return -1;
		b->argc = 0;
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
	    (x.b = calloc(2 * (size_t)m->n, sizeof(*x.b))) == NULL)
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
	for (i = 0; x.b != NULL && i < 2 * (size_t)m->n; i++) {
		free(x.b[i].argv);
		free(x.b[i].lens);
	}
	free(x.b);
	for (i = 0; i < x.nowned; i++)
		free(x.owned[i]);
	free(x.owned);
	return rc;
}
