/*
 * ctl_migrate_groups.c: how dealpushctl migrate moves the readers' place on "deals"
 * (stage: outside the pipeline; docs/sharding.md sections 4a and 4g).
 *
 * One Redis reads deals in group "notifier"; the sharded layout in one group per
 * shard, "s<K>". A migration starts only when the old readers are done: nothing
 * pending in any old group, and every old group at the same last-delivered id (a
 * deal planned in some shards and not yet in others could not be merged into one
 * plan, nor split into shards' plans, without planning someone twice or never).
 * The new groups start at that id, so no entry is read twice and none is skipped.
 * The old groups go last, so that a migration killed between two steps and run
 * again finds them and starts from the same place.
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

/* The source layout's groups on deals: their names (at most max) and where the new
 * ones start: their last-delivered id, which must be the same for all with nothing
 * pending (else 1 after printing: the readers are not done). Returns how many
 * groups (0: none, every reader starts its group itself), or -1 after printing. */
static int
mig_groups_state(struct mig *m, char *start, size_t size, char (*names)[KEYS_GROUP_MAX],
    int max, int *busy)
{
	const char *argv[3] = { "XINFO", "GROUPS", MIG_DEALS };
	redisReply *r = mig_argv(m, 3, argv, NULL);
	size_t g, k;
	int n = 0;

	start[0] = '\0';
	*busy = 0;
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
		if (pending > 0) {
			fprintf(stderr, "dealpushctl: migrate: refused: %lld deal entries read and "
			    "not finished in group %s on deals (XPENDING deals %s): start the "
			    "notifiers until they finish them, then stop them and migrate\n",
			    pending, name, name);
			*busy = 1;
		} else if (start[0] != '\0' && strcmp(start, last) != 0) {
			fprintf(stderr, "dealpushctl: migrate: refused: the shards' readers stand "
			    "at different places on deals (%s at %s, another at %s): start the "
			    "notifiers until every group has read the same entries, then stop "
			    "them and migrate\n", name, last, start);
			*busy = 1;
		}
		snprintf(start, size, "%s", last);
	}
	freeReplyObject(r);
	return n;
}

int
mig_deals_groups_check(struct mig *m)
{
	char names[SHARD_MAX + 1][KEYS_GROUP_MAX], start[MIG_ID_MAX];
	int busy;

	if (mig_groups_state(m, start, sizeof(start), names, SHARD_MAX + 1, &busy) < 0)
		return -1;
	return busy;
}

int
mig_deals_groups(struct mig *m)
{
	char names[SHARD_MAX + 1][KEYS_GROUP_MAX], start[MIG_ID_MAX], group[KEYS_GROUP_MAX];
	uint32_t k, nnew = m->to_shards ? m->n : 1;
	int n, i, busy;

	if ((n = mig_groups_state(m, start, sizeof(start), names, SHARD_MAX + 1,
	    &busy)) <= 0)
		return n;               /* no reader yet: each starts its group itself */
	if (busy)
		return -1;
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
