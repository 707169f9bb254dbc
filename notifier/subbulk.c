/*
 * subbulk.c: builds the arguments of one admin_sub_bulk.lua call from validated
 * subscribers and reads its reply (stage: http and the CLI, before the store). It
 * never validates: what it is given was accepted by subscriber_parse; it never
 * decides what is stored either: the script (lib/subput.lua) does, as for one put.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "phoneix.h"
#include "subbulk.h"

#define SUBBULK_PER (4 + CH_COUNT)    /* ORDER BULK_ARGS: id, json, phone, entry,
                                       * times */
#define SUBBULK_HEAD 3                /* EVALSHA, sha, key count */

struct subbulk_sub {
	char id[MODEL_ID_MAX + 1];
	char *json;
	char phone[24];
	char dm[32];                  /* the X user id ("" = none) */
	char consent[CH_COUNT][24];
	char *entry;                  /* the number's suppression entry as read, NULL:
	                               * none (or not read) */
	unsigned long line;
};

struct subbulk {
	size_t max, n;
	struct subbulk_sub *v;
	char how[16], now[24], nkeys[8];
	uint32_t shard;               /* every subscriber of the batch is of this shard */
	char keys[SUBBULK_NKEYS][KEYS_SHARD_MAX]; /* ORDER BULK_KEYS */
	const char **args;            /* SUBBULK_HEAD + keys + 2 + max * SUBBULK_PER */
	size_t *lens;
	/* The index adds (subbulk_reads): the distinct (kind, shard) of the numbers
	 * and X ids, and one call's keys and arguments being built. */
	struct subbulk_group {
		enum phoneix_kind kind;
		uint32_t shard;
	} *groups;
	int ngroups;
	char rsup[KEYS_SHARD_MAX];
	char (*rbuck)[KEYS_SHARD_MAX]; /* max: the call's distinct buckets */
	char (*rpos)[8];              /* max: each subscriber's bucket's position */
	const char **rargv;           /* 2 + 4 * max: sup, buckets, "add", triples */
	size_t *rlens;
};

struct subbulk *
subbulk_new(size_t max, const char *how)
{
	struct subbulk *b;
	size_t cap = SUBBULK_HEAD + SUBBULK_NKEYS + 2 + max * SUBBULK_PER;

	if (max < 1 || max > SUBBULK_MAX || (b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->max = max;
	b->v = calloc(max, sizeof(*b->v));
	b->args = calloc(cap, sizeof(*b->args));
	b->lens = calloc(cap, sizeof(*b->lens));
	b->groups = calloc(2 * max, sizeof(*b->groups));
	b->rbuck = calloc(max, sizeof(*b->rbuck));
	b->rpos = calloc(max, sizeof(*b->rpos));
	b->rargv = calloc(2 + 4 * max, sizeof(*b->rargv));
	b->rlens = calloc(2 + 4 * max, sizeof(*b->rlens));
	if (b->v == NULL || b->args == NULL || b->lens == NULL || b->groups == NULL ||
	    b->rbuck == NULL || b->rpos == NULL || b->rargv == NULL || b->rlens == NULL) {
		subbulk_free(b);
		return NULL;
	}
	snprintf(b->how, sizeof(b->how), "%s", how);
	snprintf(b->nkeys, sizeof(b->nkeys), "%d", SUBBULK_NKEYS);
	subbulk_set_shard(b, 0);
	return b;
}

int
subbulk_set_shard(struct subbulk *b, uint32_t shard)
{
	int i = 0, c, bad = 0;

	if (b->n > 0)
		return -1;
	b->shard = shard;
	/* ORDER BULK_KEYS (admin_sub_bulk.lua). The suppression list is on the slots
	 * of the numbers (docs/sharding.md 4f): read before, by subbulk_reads. */
	bad |= keys_shard_key(shard, KEYS_SUBSCRIBERS, b->keys[i++], KEYS_SHARD_MAX) < 0;
	bad |= keys_shard_key(shard, KEYS_SUB_CHANGES, b->keys[i++], KEYS_SHARD_MAX) < 0;
	bad |= keys_shard_key(shard, KEYS_CONSENT_EPOCH, b->keys[i++], KEYS_SHARD_MAX) < 0;
	bad |= keys_shard_key(shard, KEYS_CONSENT_RECORDS, b->keys[i++], KEYS_SHARD_MAX) < 0;
	bad |= keys_shard_key(shard, KEYS_STOPS, b->keys[i++], KEYS_SHARD_MAX) < 0;
	for (c = 0; c < CH_COUNT; c++)
		bad |= keys_consent(shard, (enum channel)c, b->keys[i++], KEYS_SHARD_MAX) < 0;
	return bad ? -1 : 0;
}

uint32_t
subbulk_shard(const struct subbulk *b)
{
	return b->shard;
}

int
subbulk_add(struct subbulk *b, const struct subscriber *s, char *canon,
    unsigned long line)
{
	struct subbulk_sub *e;
	int c;

	if (b->n == b->max || keys_shard_of(s->id) != b->shard) {
		free(canon);
		return -1;
	}
	e = &b->v[b->n];
	e->json = canon;
	snprintf(e->id, sizeof(e->id), "%s", s->id);
	snprintf(e->phone, sizeof(e->phone), "%s", s->phone != NULL ? s->phone : "");
	snprintf(e->dm, sizeof(e->dm), "%s", s->dm_x != NULL ? s->dm_x : "");
	for (c = 0; c < CH_COUNT; c++)
		(void)subscriber_consent_arg(s, (enum channel)c, e->consent[c],
		    sizeof(e->consent[c]));
	e->line = line;
	b->n++;
	return 0;
}

size_t
subbulk_count(const struct subbulk *b)
{
	return b->n;
}

unsigned long
subbulk_line(const struct subbulk *b, size_t i)
{
	return i < b->n ? b->v[i].line : 0;
}

/* Puts s (a string b owns) at args[i]. */
static void
put(struct subbulk *b, int i, const char *s)
{
	b->args[i] = s;
	b->lens[i] = strlen(s);
}

/* Fills b->args from slot SUBBULK_HEAD on; returns the index past the last. */
static int
fill(struct subbulk *b, long long now)
{
	int i = SUBBULK_HEAD, c;
	size_t k;

	for (c = 0; c < SUBBULK_NKEYS; c++)
		put(b, i++, b->keys[c]);
	snprintf(b->now, sizeof(b->now), "%lld", now);
	put(b, i++, b->now);
	put(b, i++, b->how);
	for (k = 0; k < b->n; k++) {
		struct subbulk_sub *e = &b->v[k];

		/* ORDER BULK_ARGS */
		put(b, i++, e->id);
		put(b, i++, e->json);
		put(b, i++, e->phone);
		put(b, i++, e->entry != NULL ? e->entry : "");
		for (c = 0; c < CH_COUNT; c++)
			put(b, i++, e->consent[c]);
	}
	return i;
}

int
subbulk_args(struct subbulk *b, long long now, const char ***args, const size_t **lens)
{
	int end = fill(b, now);

	*args = b->args + SUBBULK_HEAD;
	*lens = b->lens + SUBBULK_HEAD;
	return end - SUBBULK_HEAD;
}

int
subbulk_evalsha(struct subbulk *b, const char *sha, long long now, const char ***argv,
    const size_t **lens)
{
	int end = fill(b, now);

	put(b, 0, "EVALSHA");
	b->args[1] = sha;
	b->lens[1] = strlen(sha);
	put(b, 2, b->nkeys);
	*argv = b->args;
	*lens = b->lens;
	return end;
}

void
subbulk_reset(struct subbulk *b)
{
	size_t k;

	for (k = 0; k < b->n; k++) {
		free(b->v[k].json);
		free(b->v[k].entry);
		b->v[k].json = NULL;
		b->v[k].entry = NULL;
	}
	b->n = 0;
	b->ngroups = 0;
}

/* What subscriber e is indexed under in kind ("" = nothing). */
static const char *
index_value(const struct subbulk_sub *e, enum phoneix_kind kind)
{
	return kind == PHONEIX_DM ? e->dm : e->phone;
}

/* 1 when subscriber e belongs to read group g. */
static int
in_group(const struct subbulk_sub *e, const struct subbulk_group *g)
{
	const char *v = index_value(e, g->kind);

	return v[0] != '\0' && keys_phone_shard(v) == g->shard;
}

int
subbulk_reads(struct subbulk *b)
{
	size_t k;
	int g, kind;

	b->ngroups = 0;
	for (k = 0; k < b->n; k++) {
		for (kind = PHONEIX_PHONE; kind <= PHONEIX_DM; kind++) {
			const char *v = index_value(&b->v[k], (enum phoneix_kind)kind);
			uint32_t p;

			if (v[0] == '\0')
				continue;
			p = keys_phone_shard(v);
			for (g = 0; g < b->ngroups && (b->groups[g].shard != p ||
			    (int)b->groups[g].kind != kind); g++)
				;
			if (g == b->ngroups) {
				b->groups[g].kind = (enum phoneix_kind)kind;
				b->groups[g].shard = p;
				b->ngroups++;
			}
		}
	}
	return b->ngroups;
}

int
subbulk_read_argv(struct subbulk *b, int i, const char ***argv, const size_t **lens,
    int *nkeys)
{
	const struct subbulk_group *g;
	char buck[KEYS_SHARD_MAX];
	size_t k, nb = 0, j, nsub = 0;
	int n;

	if (i < 0 || i >= b->ngroups)
		return -1;
	g = &b->groups[i];
	/* ORDER PHONE_INDEX_KEYS: the suppression list, then the distinct buckets;
	 * each subscriber's position of its bucket kept in rpos. */
	for (k = 0; k < b->n; k++) {
		const char *v = index_value(&b->v[k], g->kind);

		if (!in_group(&b->v[k], g))
			continue;
		if (phoneix_keys(g->kind, v, buck, b->rsup) < 0)
			return -1;
		for (j = 0; j < nb && strcmp(b->rbuck[j], buck) != 0; j++)
			;
		if (j == nb)
			memcpy(b->rbuck[nb++], buck, sizeof(buck));
		snprintf(b->rpos[nsub++], sizeof(b->rpos[0]), "%zu", j + 2);
	}
	n = 0;
	b->rargv[n] = b->rsup;
	b->rlens[n++] = strlen(b->rsup);
	for (j = 0; j < nb; j++) {
		b->rargv[n] = b->rbuck[j];
		b->rlens[n++] = strlen(b->rbuck[j]);
	}
	*nkeys = n;
	b->rargv[n] = "add";
	b->rlens[n++] = 3;
	for (k = 0, nsub = 0; k < b->n; k++) {
		const char *v = index_value(&b->v[k], g->kind);

		if (!in_group(&b->v[k], g))
			continue;
		b->rargv[n] = b->rpos[nsub];
		b->rlens[n++] = strlen(b->rpos[nsub++]);
		b->rargv[n] = v;
		b->rlens[n++] = strlen(v);
		b->rargv[n] = b->v[k].id;
		b->rlens[n++] = strlen(b->v[k].id);
	}
	*argv = b->rargv;
	*lens = b->rlens;
	return n;
}

int
subbulk_read_reply(struct subbulk *b, int i, const redisReply *r)
{
	const struct subbulk_group *g;
	size_t k, at, want = 0;

	if (i < 0 || i >= b->ngroups || r == NULL || r->type != REDIS_REPLY_ARRAY)
		return -1;
	g = &b->groups[i];
	/* The whole reply checked before any entry is kept. */
	for (k = 0; k < b->n; k++)
		want += (size_t)in_group(&b->v[k], g);
	if (r->elements != want)
		return -1;
	for (at = 0; at < want; at++)
		if (r->element[at]->type != REDIS_REPLY_STRING)
			return -1;
	if (g->kind == PHONEIX_DM)
		return 0;               /* indexed; no suppression list for X ids */
	for (k = 0, at = 0; k < b->n; k++) {
		struct subbulk_sub *e = &b->v[k];
		const redisReply *v;

		if (!in_group(e, g))
			continue;
		v = r->element[at++];
		free(e->entry);
		e->entry = NULL;
		/* Only an SMS consent is kept out by a STOP (lib/subput.lua). */
		if (v->len > 0 && e->consent[CH_SMS][0] != '\0' &&
		    (e->entry = strndup(v->str, v->len)) == NULL)
			return -1;
	}
	return 0;
}

void
subbulk_free(struct subbulk *b)
{
	if (b == NULL)
		return;
	if (b->v != NULL)
		subbulk_reset(b);
	free(b->v);
	free(b->args);
	free(b->lens);
	free(b->groups);
	free(b->rbuck);
	free(b->rpos);
	free(b->rargv);
	free(b->rlens);
	free(b);
}

int
subbulk_reply(const redisReply *r, size_t n, long long counts[3])
{
	size_t i;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
	    (r->elements - 3) % 2 != 0)
		return -1;
	for (i = 0; i < 3; i++) {
		if (r->element[i]->type != REDIS_REPLY_INTEGER)
			return -1;
		counts[i] = r->element[i]->integer;
	}
	if (counts[0] != (long long)n)
		return -1;
	for (i = 3; i < r->elements; i += 2) {
		if (r->element[i]->type != REDIS_REPLY_INTEGER ||
		    r->element[i]->integer < 1 || r->element[i]->integer > (long long)n ||
		    r->element[i + 1]->type != REDIS_REPLY_STRING)
			return -1;
	}
	return (int)((r->elements - 3) / 2);
}

void
subbulk_kept(const redisReply *r, int k, size_t *pos, const char **channels)
{
	*pos = (size_t)r->element[3 + 2 * k]->integer - 1;
	*channels = r->element[4 + 2 * k]->str;
}
