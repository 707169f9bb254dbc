/*
 * config_cluster.c: the cross-checks of the [cluster] keys (stage: start-up;
 * docs/sharding.md 4d, include/owner.h).
 *
 * A lease must not end in Redis while its holder may still hand a request over: the
 * holder counts its lease from when the renew was sent, minus the margin, and the
 * margin covers the clocks of two primaries after a failover and Redis' timer, so it
 * is at least a tenth of the lease and leaves the lease at least half of it.
 * --check-config and start-up make the same checks; each problem names its key.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "owner.h"
#include "shard.h"

void
config_cluster_check(struct config *c, void (*report)(void *arg, const char *key,
    const char *msg), void *arg)
{
	uint8_t want[SHARD_MAX];
	char why[200], msg[300];
	const char *mode = c->cluster_ownership;

	if (c->cluster_settle_ms < 0)
		c->cluster_settle_ms = c->cluster_lease_ms / 3 * 2;
	if (c->cluster_lease_margin_ms * 10 < c->cluster_lease_ms ||
	    c->cluster_lease_margin_ms * 2 > c->cluster_lease_ms) {
		snprintf(msg, sizeof(msg), "must be between a tenth and a half of "
		    "cluster.lease_ms (%ld..%ld)", (c->cluster_lease_ms + 9) / 10,
		    c->cluster_lease_ms / 2);
		report(arg, "cluster.lease_margin_ms", msg);
	}
	if (mode != NULL && strcmp(mode, "off") != 0 && strcmp(mode, "configured") != 0 &&
	    strcmp(mode, "balanced") != 0)
		report(arg, "cluster.ownership", "must be off, configured or balanced");
	if (mode != NULL && strcmp(mode, "configured") == 0 && c->cluster_shards == NULL)
		report(arg, "cluster.shards", "is required with ownership = configured (the "
		    "shards this notifier serves, like 0-15,40)");
	if (c->cluster_shards != NULL && (mode == NULL || strcmp(mode, "configured") != 0))
		report(arg, "cluster.shards", "is for ownership = configured only");
	if (c->cluster_shards != NULL && owner_parse_shards(c->cluster_shards, want,
	    SHARD_MAX, why, sizeof(why)) < 0)
		report(arg, "cluster.shards", why);
}
