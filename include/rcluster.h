/*
 * rcluster.h: the minimum Redis Cluster client on top of rconn (stage: all Redis I/O).
 *
 * Reads the slot map from any seed (CLUSTER SHARDS, else CLUSTER SLOTS), keeps one
 * rconn per primary and sends each command to the owner of its key's slot. Follows
 * MOVED (and refreshes the map) and ASK (ASKING first, map unchanged), retries
 * TRYAGAIN and CLUSTERDOWN with backoff, loads a script on NOSCRIPT and resends, all
 * bounded. Every command's callback runs exactly once, never from inside the call
 * that sent it. Not used by the daemon yet (docs/architecture.md, "The cluster client").
 */
#ifndef DEALPUSH_RCLUSTER_H
#define DEALPUSH_RCLUSTER_H

#include <stddef.h>

struct event_base;
struct redisReply;
struct rcluster;

struct rcluster_config {
	const char *seeds;             /* "ip:port,ip:port": IP addresses, never resolved */
	const char *password;          /* AUTH on every node when non-NULL */
	long connect_timeout_ms;       /* as rconn_config; 0 = rconn's default */
	long command_timeout_ms;       /* default deadline of a command (0 = 2000) */
	long reconnect_max_ms;
	long refresh_min_ms;           /* least time between map reads (0 = 1000) */
	int redirects_max;             /* MOVED/ASK followed per command (0 = 5) */
	int retries_max;               /* TRYAGAIN/CLUSTERDOWN retries per command (0 = 5) */
};

/* Called once the first slot map is read, and again after a map read that brought a
 * primary not known before (a failover): the moment to SCRIPT LOAD on every primary. */
typedef void rcluster_ready_fn(struct rcluster *rcl, void *arg);

/* Called exactly once per command with the reply (borrowed: valid only during the
 * call; errors Redis gave after the redirect or retry bounds are passed on as they
 * are), or NULL when the deadline passed, the node's connection dropped with the
 * command sent, or the rcluster is being freed. */
typedef void rcluster_reply_fn(struct rcluster *rcl, struct redisReply *reply,
    void *arg);

/* rcluster_each: called once per primary with its "ip:port" and reply (or NULL). */
typedef void rcluster_node_fn(struct rcluster *rcl, const char *addr,
    struct redisReply *reply, void *arg);

/* rcluster_each: called once after every node's callback: how many primaries were
 * sent the command and how many answered with NULL or an error reply. */
typedef void rcluster_done_fn(struct rcluster *rcl, int nodes, int failed, void *arg);

/* The argv index meaning "this command has no key": it goes to any primary. */
#define RCLUSTER_NOKEY (-1)

/* Returns a client that starts connecting to the seeds at once, or NULL when seeds
 * is empty or not "ip:port,..." (logged) or on OOM. cfg strings are copied; name
 * appears in logs. ready may be NULL. */
struct rcluster *rcluster_new(struct event_base *base, const struct rcluster_config *cfg,
    const char *name, rcluster_ready_fn *ready, void *arg);

/* Closes every connection; every command still waiting gets its callback with NULL
 * first. Must not be called from inside one of this rcluster's callbacks. NULL does
 * nothing. */
void rcluster_free(struct rcluster *rcl);

/* 1 once a slot map has been read and every slot has a primary, else 0. */
int rcluster_is_ready(const struct rcluster *rcl);

/*
 * Sends argc strings (argvlen may be NULL for NUL-terminated ones) to the primary of
 * the slot of argv[key] (RCLUSTER_NOKEY: any primary). Multi-key commands must keep
 * their keys in one slot ({hash tags}); that is the caller's to ensure. The command
 * is copied. Before the map is read, or while its node reconnects, the command waits
 * (its deadline running). timeout_ms 0 = the configured command timeout, counted by
 * rconn once sent and bounding the wait before. Returns 0 (cb runs exactly once,
 * later) or -1 on OOM, a bad key index or while being freed (cb never runs). cb may
 * be NULL.
 */
int rcluster_argv(struct rcluster *rcl, int key, rcluster_reply_fn *cb, void *arg,
    long timeout_ms, int argc, const char **argv, const size_t *argvlen);

/* rcluster_argv to the primary of slot (0 .. 16383) itself: a command that has to
 * follow an earlier one to its node (WAIT after a script). -1 for a bad slot. */
int rcluster_argv_slot(struct rcluster *rcl, int slot, rcluster_reply_fn *cb, void *arg,
    long timeout_ms, int argc, const char **argv, const size_t *argvlen);

/* During a command's callback: the "ip:port" of the node that answered it and its
 * connection's generation. 0, or -1 outside a callback or when no node answered. */
int rcluster_reply_node(const struct rcluster *rcl, char *addr, size_t size,
    unsigned long *gen);

/* Sends the command to node addr on the same connection as generation gen (from
 * rcluster_reply_node), no redirect followed: WAIT after a script, which counts the
 * replicas of the writes of that connection only. -1 when that connection is gone
 * (the node left the map, is no longer a primary, or reconnected): the caller takes
 * that as "not confirmed". */
int rcluster_argv_node(struct rcluster *rcl, const char *addr, unsigned long gen,
    rcluster_reply_fn *cb, void *arg, long timeout_ms, int argc, const char **argv,
    const size_t *argvlen);

/*
 * EVALSHA sha nkeys args...: routed by the first key (any primary when nkeys is 0).
 * On NOSCRIPT the node is sent SCRIPT LOAD body and the EVALSHA once more. body is
 * borrowed and must stay valid until cb has run (the embedded scripts are static).
 * Returns 0 or -1 as rcluster_argv.
 */
int rcluster_evalsha(struct rcluster *rcl, const char *sha, const char *body, int nkeys,
    int nargs, const char **args, const size_t *lens, rcluster_reply_fn *cb, void *arg,
    long timeout_ms);

/*
 * Sends the command to every primary of the current map (SCRIPT LOAD, INFO ...), no
 * redirects followed: node_cb once per primary (may be NULL), then done_cb once (may
 * be NULL). Returns 0, or -1 when no map has been read yet, on OOM or while being
 * freed (no callback runs).
 */
int rcluster_each(struct rcluster *rcl, rcluster_node_fn *node_cb,
    rcluster_done_fn *done_cb, void *arg, long timeout_ms, int argc, const char **argv,
    const size_t *argvlen);

/* Asks for the slot map to be read again soon (at most once per refresh_min_ms). */
void rcluster_refresh(struct rcluster *rcl);

/* The "ip:port" of the primary that owns slot now, or NULL (no map yet). Valid until
 * the loop runs again. */
const char *rcluster_slot_owner(const struct rcluster *rcl, int slot);

/* What /healthz and metrics show; counters since start. */
struct rcluster_stat {
	int primaries;                 /* primaries in the map */
	int ready;                     /* of which connected now */
	int slots_covered;             /* slots with a primary */
	size_t waiting;                /* commands not yet sent (map, reconnect, backoff) */
	unsigned long refreshes;       /* slot maps read and applied */
	unsigned long moved, ask, tryagain, clusterdown, noscript;
	unsigned long gave_up;         /* commands past a redirect or retry bound */
	unsigned long expired;         /* commands whose deadline passed while waiting */
};

void rcluster_stats(const struct rcluster *rcl, struct rcluster_stat *st);

#endif
