/*
 * main_owner.c: shard ownership wired into the notifier (stage: start-up and all;
 * docs/sharding.md 4d, include/owner.h).
 *
 * With `[cluster] ownership` on, a shard's readers (its group on deals, its job
 * stream), its claims and its part of the mirror run only while this notifier holds
 * the shard's lease. When a shard comes to be served here its previous owner's
 * pending entries are taken over at once (deals first, then jobs: greader's guard);
 * when it stops, its jobs in memory are dropped unacked for the next owner, and
 * once its lease is gone (released after its work in flight, or lost) the mirror
 * lets its subscribers go. On shutdown, once the work in flight is done, every
 * lease is released so that the others take the shards over at once.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "deliver.h"
#include "ingest.h"
#include "keys.h"
#include "layout.h"
#include "log.h"
#include "owner.h"
#include "substore.h"

#include "main_int.h"

#define MAIN_LEAVE_MS 1000        /* the releases' answers are waited for this long */

/* The served set changed during this loop turn: the mirror follows it once. */
static void
on_mirror_set(evutil_socket_t fd, short what, void *arg)
{
	struct notifier *n = arg;

	(void)fd;
	(void)what;
	substore_set_shards(n->ss, n->owned);
}

/* The mirror holds the shards whose lease is held, being left or not: a shard's
 * plans and claims still running while it is left read its subscribers. */
static void
on_shard(void *arg, uint32_t k, int serving, int held)
{
	struct notifier *n = arg;

	if (k >= n->ningest)
		return;
	if (serving != n->served[k]) {
		n->served[k] = (uint8_t)serving;
		if (serving)
			ingest_takeover(n->ingest[k]);
		deliver_shard_change(n->deliver, k, serving);
	}
	if (held != n->owned[k]) {
		n->owned[k] = (uint8_t)held;
		event_active(n->mirror_set, EV_TIMEOUT, 0);
	}
}

static int
shard_busy(void *arg, uint32_t k)
{
	struct notifier *n = arg;

	return k < n->ningest && (!ingest_idle(n->ingest[k]) ||
	    deliver_shard_busy(n->deliver, k));
}

int
main_start_owner(struct notifier *n)
{
	const char *mode = n->cfg->cluster_ownership;
	uint32_t k, nshards = keys_shards();
	struct owner_config oc;
	uint8_t *want = NULL;
	char why[200];

	if (mode == NULL || strcmp(mode, "off") == 0)
		return 0;
	if (layout_current() == NULL) {
		log_errorx("event=start_failed key=cluster.ownership err=\"ownership = %s "
		    "needs the sharded layout (dealpushctl layout create, or dealpushctl "
		    "migrate --to-shards)\"", mode);
		return -1;
	}
	memset(&oc, 0, sizeof(oc));
	oc.mode = strcmp(mode, "balanced") == 0 ? OWNER_BALANCED : OWNER_CONFIGURED;
	if ((n->owned = calloc(nshards, 1)) == NULL ||
	    (n->served = calloc(nshards, 1)) == NULL ||
	    (want = calloc(nshards, 1)) == NULL) {
		free(want);
		return -1;
	}
	if (oc.mode == OWNER_CONFIGURED && owner_parse_shards(n->cfg->cluster_shards, want,
	    nshards, why, sizeof(why)) < 0) {
		log_errorx("event=start_failed key=cluster.shards err=\"%s (the layout has "
		    "%u shards)\"", why, nshards);
		free(want);
		return -1;
	}
	oc.want = want;
	oc.lease_ms = n->cfg->cluster_lease_ms;
	oc.margin_ms = n->cfg->cluster_lease_margin_ms;
	oc.settle_ms = n->cfg->cluster_settle_ms;
	oc.me = n->cfg->consumer;
	oc.addr = n->cfg->public_url != NULL ? n->cfg->public_url : "";
	oc.wait.replicas = n->cfg->wait_replicas;
	oc.wait.timeout_ms = n->cfg->wait_timeout_ms;
	n->owner = owner_new(n->base, n->cmd, &oc, nshards, on_shard, shard_busy, n);
	free(want);
	if (n->owner == NULL ||
	    (n->mirror_set = event_new(n->base, -1, 0, on_mirror_set, n)) == NULL)
		return -1;
	/* Nothing is served yet: the mirror's first load holds no shard, and each
	 * shard's subscribers load once its lease is held. */
	substore_set_shards(n->ss, n->owned);
	for (k = 0; k < n->ningest; k++)
		ingest_set_owner(n->ingest[k], n->owner);
	deliver_set_owner(n->deliver, n->owner);
	return 0;
}

static void
on_left(void *arg)
{
	struct notifier *n = arg;

	event_base_loopbreak(n->base);
}

static void
on_left_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	on_left(arg);
}

void
main_leave(struct notifier *n)
{
	struct timeval tv = { MAIN_LEAVE_MS / 1000, (MAIN_LEAVE_MS % 1000) * 1000 };

	if (n->owner == NULL || (n->left = evtimer_new(n->base, on_left_timer, n)) ==
	    NULL) {
		event_base_loopbreak(n->base);
		return;
	}
	evtimer_add(n->left, &tv);
	owner_leave(n->owner, on_left, n);
}

void
main_free_owner(struct notifier *n)
{
	owner_free(n->owner);
	n->owner = NULL;
	if (n->mirror_set != NULL)
		event_free(n->mirror_set);
	if (n->left != NULL)
		event_free(n->left);
	n->mirror_set = n->left = NULL;
	free(n->owned);
	free(n->served);
	n->owned = n->served = NULL;
}
