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
#include <unistd.h>

#include "fault.h"
#include "keys.h"
#include "redisutil.h"
#include "shard.h"

#include "ctl_int.h"
#include "ctl_migrate_int.h"

#define MIG_DEALS "deals"
#define MIG_ID_MAX 48

/* The new layout's group number k on deals into buf. */
static void
mig_new_group(const struct mig *m, uint32_t k, char *buf, size_t size)
{
	if (m->to_shards)
		snprintf(buf, size, "s%u", (unsigned)k);
	else
		snprintf(buf, size, "notifier");
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

/* What XINFO GROUPS deals says, for the move. */
struct mig_groups {
	char old[SHARD_MAX + 1][KEYS_GROUP_MAX];   /* the source layout's groups */
	int nold;
	char start[MIG_ID_MAX];     /* their common last-delivered id */
	int busy;                   /* one has pending entries, or they disagree */
	int single;                 /* a group "notifier" is there */
};

/* Reads the groups on deals into g (a missing stream: none). Prints why the old
 * readers are not done (g->busy). 0, or -1 after printing. */
static int
mig_groups_read(struct mig *m, struct mig_groups *g)
{
	const char *argv[3] = { "XINFO", "GROUPS", MIG_DEALS };
	redisReply *r = redisCommandArgv(m->c, 3, argv, NULL);
	size_t i, k;

	memset(g, 0, sizeof(*g));
	if (r == NULL || (r->type == REDIS_REPLY_ERROR &&
	    strstr(r->str, "no such key") == NULL) || (r->type != REDIS_REPLY_ARRAY &&
	    r->type != REDIS_REPLY_ERROR)) {
		fprintf(stderr, "dealpushctl: migrate: redis: XINFO GROUPS deals: %s\n",
		    r == NULL ? m->c->errstr : r->type == REDIS_REPLY_ERROR ? r->str :
		    "unexpected reply");
		freeReplyObject(r);
		return -1;
	}
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *e = r->element[i];
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
		if (name == NULL || last == NULL)
			continue;
		g->single |= strcmp(name, "notifier") == 0;
		if (!mig_old_group(m, name) || g->nold == SHARD_MAX + 1)
			continue;
		snprintf(g->old[g->nold++], sizeof(g->old[0]), "%s", name);
		if (pending > 0) {
			fprintf(stderr, "dealpushctl: migrate: refused: %lld deal entries read and "
			    "not finished in group %s on deals (XPENDING deals %s): start the "
			    "notifiers until they finish them, then stop them and migrate\n",
			    pending, name, name);
			g->busy = 1;
		} else if (g->start[0] != '\0' && strcmp(g->start, last) != 0) {
			fprintf(stderr, "dealpushctl: migrate: refused: the shards' readers stand "
			    "at different places on deals (%s at %s, another at %s): start the "
			    "notifiers until every group has read the same entries, then stop "
			    "them and migrate\n", name, last, g->start);
			g->busy = 1;
		}
		snprintf(g->start, sizeof(g->start), "%s", last);
	}
	freeReplyObject(r);
	return 0;
}

int
mig_deals_single_group(struct mig *m)
{
	struct mig_groups g;

	return mig_groups_read(m, &g) < 0 ? -1 : g.single;
}

int
mig_deals_groups_check(struct mig *m)
{
	struct mig_groups g;

	if (mig_groups_read(m, &g) < 0)
		return -1;
	return g.busy;
}

int
mig_deals_groups(struct mig *m)
{
	struct mig_groups g;
	char group[KEYS_GROUP_MAX];
	uint32_t k, nnew = m->to_shards ? m->n : 1;
	int i;

	if (mig_groups_read(m, &g) < 0 || g.busy)
		return -1;
	if (g.nold == 0)
		return 0;               /* no reader yet: each starts its group itself */
	for (k = 0; k < nnew; k++) {
		const char *argv[5] = { "XGROUP", "CREATE", MIG_DEALS, group, g.start };
		redisReply *r;

		mig_new_group(m, k, group, sizeof(group));
		/* Made already by a run that was killed before the old ones went: it
		 * started at the same place (the old ones have not moved since). */
		if ((r = redisCommandArgv(m->c, 5, argv, NULL)) == NULL ||
		    (r->type == REDIS_REPLY_ERROR && !ru_is_error(r, "BUSYGROUP"))) {
			fprintf(stderr, "dealpushctl: migrate: XGROUP CREATE deals %s %s: %s\n",
			    group, g.start, r == NULL ? m->c->errstr : r->str);
			freeReplyObject(r);
			return -1;
		}
		freeReplyObject(r);
	}
	/* Tests: killed as kill -9 would between the new groups and the old ones'
	 * end (DP_FAULTS=migrate.groups.kill@1): a rerun finds both and finishes. */
	if (fault_hit("migrate.groups.kill"))
		_exit(137);
	for (i = 0; i < g.nold; i++) {
		const char *argv[4] = { "XGROUP", "DESTROY", MIG_DEALS, g.old[i] };

		if (mig_ok(mig_argv(m, 4, argv, NULL)) < 0)
			return -1;
	}
	printf("deals: %d reader group%s moved to %u, from %s\n", g.nold,
	    g.nold == 1 ? "" : "s", (unsigned)nnew, g.start);
	return 0;
}
