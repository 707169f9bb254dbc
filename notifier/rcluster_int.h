/*
 * rcluster_int.h: what rcluster.c (commands: routing, redirects, retries) and
 * rcluster_map.c (the slot map and the nodes it names) share (stage: all Redis I/O).
 * Private; the public face is include/rcluster.h.
 *
 * A command is in flight (c->node set: rconn holds it and will call rcl_on_reply
 * exactly once) or waiting (in rcl->wait_head's list, its timer armed), never both.
 */
#ifndef DEALPUSH_RCLUSTER_INT_H
#define DEALPUSH_RCLUSTER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include <event2/event.h>

#include "rcluster.h"
#include "slot.h"

struct redisReply;
struct rconn;

#define RCL_ADDR_MAX 64
#define RCL_KNOWN_MAX 64           /* seeds and every node seen in a map */
#define RCL_WAIT_MS 100            /* a waiting command looks again this often */
#define RCL_RETRY_MIN_MS 20        /* TRYAGAIN backoff, doubling */
#define RCL_DOWN_MIN_MS 100        /* CLUSTERDOWN backoff, doubling */
#define RCL_RETRY_MAX_MS 1000
#define RCL_WATCH_MS 500           /* primaries' connections checked this often */

struct rcl_node {
	struct rcluster *rcl;
	struct rconn *rc;
	char addr[RCL_ADDR_MAX];       /* "ip:port" */
	int primary;                   /* owns slots in the map */
	int announced;                 /* the ready callback ran with it a primary */
	struct rcl_node *next;         /* rcl->nodes, or rcl->reap once gone */
};

/* One rcluster_each call: its commands share it. */
struct rcl_each {
	rcluster_node_fn *node_cb;
	rcluster_done_fn *done_cb;
	void *arg;
	int nodes, left, failed;
};

struct rcl_cmd {
	struct rcluster *rcl;
	rcluster_reply_fn *cb;
	void *arg;
	struct rcl_each *each;         /* part of rcluster_each: pinned to target */
	long timeout_ms;
	int64_t give_up_ms;            /* monotonic: the wait before sending ends */
	int64_t hold_until_ms;         /* in a retry backoff until then */
	int argc;
	char **argv;                   /* one block with argvlen and the bytes */
	size_t *argvlen;
	int slot;                      /* -1: any primary */
	char target[RCL_ADDR_MAX];     /* ASK's node or the pinned node, else "" */
	int asking;                    /* send ASKING first */
	const char *script;            /* borrowed: SCRIPT LOAD body on NOSCRIPT */
	int reloaded;
	int redirects, retries;
	int fail_now;                  /* the timer finishes it with NULL */
	struct rcl_node *node;         /* in flight there, else NULL */
	struct event *timer;
	int waiting;
	struct rcl_cmd *next, *prev;   /* the waiting list */
};

struct rcluster {
	struct event_base *base;
	char name[32];
	char *password;
	long connect_timeout_ms, command_timeout_ms, reconnect_max_ms;
	long refresh_min_ms;
	int redirects_max, retries_max;
	char known[RCL_KNOWN_MAX][RCL_ADDR_MAX];
	size_t nknown, probe_next;
	struct rcl_node *nodes;        /* live nodes */
	struct rcl_node *reap;         /* gone, freed by reap_timer */
	struct rcl_node *slots[SLOT_COUNT];
	int have_map;
	int refreshing;
	int64_t last_refresh_ms;
	unsigned long any_next;
	struct event *refresh_timer, *reap_timer, *watch_timer;
	struct rcl_cmd *wait_head, *wait_tail;
	int freeing;
	rcluster_ready_fn *on_ready;
	void *arg;
	struct rcluster_stat st;       /* the counters */
	/* During a command's callback: the node that answered it and its connection's
	 * generation ("" otherwise): rcluster_reply_node. */
	char reply_addr[RCL_ADDR_MAX];
	unsigned long reply_gen;
};

static inline void
rcl_tv(struct timeval *tv, long ms)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

/* Slots start..end (inclusive) belong to the primary at addr ("ip:port"). */
struct rcl_range {
	int start, end;
	char addr[RCL_ADDR_MAX];
};

/* A map read from one reply: the ranges, and every node seen (replicas too). */
struct rcl_map {
	struct rcl_range *ranges;
	size_t nranges, cap;
	char (*nodes)[RCL_ADDR_MAX];
	size_t nnodes, nodes_cap;
};

/* Reads a CLUSTER SHARDS (Redis 7) reply into m (empty on entry). from_host is the
 * host of the node asked, for nodes that report no IP. 0, or -1 when the reply is
 * not in that shape or on OOM (m may hold part: rcl_map_clear it either way). */
int rcl_map_from_shards(const struct redisReply *r, const char *from_host,
    struct rcl_map *m);

/* The same for a CLUSTER SLOTS reply. */
int rcl_map_from_slots(const struct redisReply *r, const char *from_host,
    struct rcl_map *m);

/* Frees what m holds and empties it. */
void rcl_map_clear(struct rcl_map *m);

/* Splits "ip:port" (the last ':') into host and port; 0 or -1 when malformed. */
int rcl_split_addr(const char *addr, char *host, size_t hsize, int *port);

/* Remembers addr as a node to ask for the map (up to RCL_KNOWN_MAX). */
void rcl_add_known(struct rcluster *rcl, const char *addr);

/* The live node at addr or NULL. */
struct rcl_node *rcl_node_find(struct rcluster *rcl, const char *addr);

/* The live node at addr, created (and connecting) when new; NULL on a bad address,
 * OOM or while freeing (logged). */
struct rcl_node *rcl_node_get(struct rcluster *rcl, const char *addr);

/* Any primary, round robin, a connected one when there is one; NULL without a map. */
struct rcl_node *rcl_any_primary(struct rcluster *rcl);

/* Sends every waiting command not in a backoff (in rcluster.c). */
void rcl_kick(struct rcluster *rcl);

/* Timer callbacks rcluster_new arms (in rcluster_map.c). */
void rcl_on_reap_timer(evutil_socket_t fd, short what, void *arg);
void rcl_on_refresh_timer(evutil_socket_t fd, short what, void *arg);
void rcl_on_watch_timer(evutil_socket_t fd, short what, void *arg);

#endif
