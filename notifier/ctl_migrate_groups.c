/*
 * ctl_migrate_groups.c: how dealpushctl migrate moves the readers' place on "deals"
 * (stage: outside the pipeline; docs/sharding.md sections 4a and 4g).
 *
 * One Redis reads deals in group "notifier"; the sharded layout in one group per
 * shard, "s<K>". The new layout's groups start where the old ones stand: after the
 * last entry delivered, or just before the first entry still pending anywhere, so
 * that an entry read and not acked (a plan cut short) is read again. Reading an
 * entry again is harmless: each deal's copy says it is planned (the migration copied
 * it, section 4g), and the entry is acked then. The old groups go last, so that a
 * migration killed between two steps and run again finds them and starts from the
 * same place.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keys.h"
#include "shard.h"

#include "ctl_int.h"
#include "ctl_migrate_int.h"

#define MIG_DEALS "deals"
#define MIG_ID_MAX 48

/* "<ms>-<seq>" as two numbers; -1 when it is not one. */
static int
mig_gid(const char *id, unsigned long long *ms, unsigned long long *seq)
{
	char *end;

	*ms = strtoull(id, &end, 10);
	if (end == id || *end != '-')
		return -1;
	*seq = strtoull(end + 1, &end, 10);
	return *end == '\0' ? 0 : -1;
}

/* 1 when group is one of the source layout's readers of deals. */
static int
mig_old_group(const struct mig *m, const char *group)
{
	unsigned long k;
	char *end;

	if (m->to_shards)
		return strcmp(group, "notifier") == 0;
	if (group[0] != 's' || group[1] < '0' || group[1] > '9')
		return 0;
	k = strtoul(group + 1, &end, 10);
	return *end == '\0' && k < m->n;
}

/* Lowers *at (ms, seq; ms ULLONG_MAX = none yet) to id. */
static void
mig_lower(unsigned long long *ms, unsigned long long *seq, const char *id)
{
	unsigned long long im, is;

	if (mig_gid(id, &im, &is) == 0 && (im < *ms || (im == *ms && is < *seq))) {
		*ms = im;
		*seq = is;
	}
}

/* Where the new groups start: the earliest of every old group's last-delivered-id
 * and the id just before its first pending entry. names gets the old groups
 * (at most max). Returns how many, or -1 after printing. */
static int
mig_groups_start(struct mig *m, char *start, size_t size, char (*names)[KEYS_GROUP_MAX],
    int max)
{
	const char *argv[3] = { "XINFO", "GROUPS", MIG_DEALS };
	unsigned long long ms = (unsigned long long)-1, seq = 0;
	redisReply *r = mig_argv(m, 3, argv, NULL);
	size_t g, k;
	int n = 0;

	start[0] = '\0';
	if (r == NULL)
		return -1;
	for (g = 0; r->type == REDIS_REPLY_ARRAY && g < r->elements; g++) {
		const redisReply *e = r->element[g];
		const char *name = NULL, *last = NULL;
		long long pending = 0;

		for (k = 0; e->type == REDIS_REPLY_ARRAY && k + 1 < e->elements; k += 2) {
			const redisReply *key = e->element[k], *v = e->element[k + 1];

			if (key->type != REDIS_REPLY_STRING)
				continue;
			if (strcmp(key->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
				name = v->str;
			else if (strcmp(key->str, "last-delivered-id") == 0 &&
			    v->type == REDIS_REPLY_STRING)
				last = v->str;
			else if (strcmp(key->str, "pending") == 0 &&
			    v->type == REDIS_REPLY_INTEGER)
				pending = v->integer;
		}
		if (name == NULL || last == NULL || !mig_old_group(m, name) || n == max)
			continue;
		snprintf(names[n++], sizeof(names[0]), "%s", name);
		mig_lower(&ms, &seq, last);
		if (pending > 0) {
			const char *pargv[3] = { "XPENDING", MIG_DEALS, name };
			redisReply *p = mig_argv(m, 3, pargv, NULL);

			if (p == NULL) {
				freeReplyObject(r);
				return -1;
			}
			/* { count, first id, last id, consumers }: start just before the
			 * first, so that it is delivered again. */
			if (p->type == REDIS_REPLY_ARRAY && p->elements >= 2 &&
			    p->element[1]->type == REDIS_REPLY_STRING) {
				unsigned long long fm, fs;

				if (mig_gid(p->element[1]->str, &fm, &fs) == 0) {
					if (fs > 0) {
						fs--;
					} else if (fm > 0) {
						fm--;
						fs = (unsigned long long)-1;
					}
					if (fm < ms || (fm == ms && fs < seq)) {
						ms = fm;
						seq = fs;
					}
				}
			}
			freeReplyObject(p);
		}
	}
	freeReplyObject(r);
	if (n > 0)
		snprintf(start, size, "%llu-%llu", ms, seq);
	return n;
}

int
mig_deals_groups(struct mig *m)
{
	char names[SHARD_MAX + 1][KEYS_GROUP_MAX], start[MIG_ID_MAX], group[KEYS_GROUP_MAX];
	uint32_t k, nnew = m->to_shards ? m->n : 1;
	int n, i;

	if ((n = mig_groups_start(m, start, sizeof(start), names, SHARD_MAX + 1)) <= 0)
		return n;               /* no reader yet: each starts its group itself */
	for (k = 0; k < nnew; k++) {
		const char *argv[5] = { "XGROUP", "CREATE", MIG_DEALS, group, start };
		redisReply *r;

		if (m->to_shards)
			snprintf(group, sizeof(group), "s%u", (unsigned)k);
		else
			snprintf(group, sizeof(group), "notifier");
		if ((r = mig_argv(m, 5, argv, NULL)) == NULL)
			return -1;
		/* BUSYGROUP: made by a run that was killed; it started at the same place. */
		if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0) {
			fprintf(stderr, "dealpushctl: migrate: XGROUP CREATE deals %s %s: %s\n",
			    group, start, r->str);
			freeReplyObject(r);
			return -1;
		}
		freeReplyObject(r);
	}
	for (i = 0; i < n; i++) {
		const char *argv[4] = { "XGROUP", "DESTROY", MIG_DEALS, names[i] };

		if (mig_ok(mig_argv(m, 4, argv, NULL)) < 0)
			return -1;
	}
	printf("deals: %d reader group%s moved to %u, from %s\n", n, n == 1 ? "" : "s",
	    (unsigned)nnew, start);
	return 0;
}
