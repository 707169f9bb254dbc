/*
 * rconn.h: one asynchronous Redis connection with deadlines (stage: all Redis I/O).
 *
 * hiredis 0.14 async on the libevent adapter has no connect or command timeouts: every
 * connect and every command here gets its own deadline, counted from when the command
 * reaches the head of the queue awaiting replies (Redis answers in order). A missed
 * deadline with nothing left to read fails the command (callback with NULL) and drops
 * the connection, which then reconnects with exponential backoff. Every command's callback runs exactly once. Note: hiredis 0.14
 * aborts the process on out-of-memory inside its own allocations.
 */
#ifndef DEALPUSH_RCONN_H
#define DEALPUSH_RCONN_H

#include <stddef.h>

struct event_base;
struct redisReply;
struct rconn;
struct sentinel;

struct rconn_config {
	const char *host;              /* an IP address, or a host name resolved again at
	                                * every connect without blocking the loop
	                                * (libevent's evdns: /etc/hosts, then the
	                                * nameservers of /etc/resolv.conf; the first IPv4
	                                * address, else the first IPv6) */
	int port;
	const char *password;          /* AUTH on every connect when non-NULL */
	long connect_timeout_ms;
	long command_timeout_ms;       /* default deadline of a command */
	long reconnect_max_ms;         /* backoff cap; starts at 50 ms */
	const char *username;          /* Redis 6 ACL user: AUTH username password; NULL =
	                                * the default user */
	struct sentinel *sentinel;     /* non-NULL: host and port are not used; the
	                                * primary's address is asked of it at every
	                                * connect, confirmed with ROLE before the
	                                * connection is ready, and the connection moves
	                                * when the primary does (borrowed: it must
	                                * outlive the rconn) */
	const char *cluster;           /* non-NULL: "ip:port,..." seeds of a Redis
	                                * Cluster; host, port and sentinel are not used,
	                                * and every command is routed to its keys'
	                                * primary (rconn_cluster.c, rroute.h) */
};

/* Called when the connection is up (after AUTH), after every reconnect too. Use it
 * to (re)create consumer groups, load scripts and restart reads. */
typedef void rconn_ready_fn(struct rconn *rc, void *arg);

/*
 * Called exactly once per command: reply is the server's reply (borrowed: valid only
 * during the call; an error reply has type REDIS_REPLY_ERROR), or NULL when the
 * command timed out, the connection dropped or the rconn is being freed.
 */
typedef void rconn_reply_fn(struct rconn *rc, struct redisReply *reply, void *arg);

/* Returns a new connection that starts connecting at once, or NULL on OOM.
 * name appears in logs ("ingest", "deliver"). cfg strings are copied. */
struct rconn *rconn_new(struct event_base *base, const struct rconn_config *cfg,
    const char *name, rconn_ready_fn *ready, void *arg);

/* Closes the connection; pending commands get their callback with NULL first.
 * Must not be called from inside one of this rconn's callbacks. NULL does nothing. */
void rconn_free(struct rconn *rc);

/* Fails every command still out now (each callback runs with NULL, while what it
 * reaches is still alive) and refuses every later send; never reconnects. The first
 * step of a shutdown; rconn_free still frees it. NULL does nothing. */
void rconn_close(struct rconn *rc);

/* 1 when connected and ready for commands, else 0. */
int rconn_is_ready(const struct rconn *rc);

/* The default deadline of a command (rconn_config.command_timeout_ms). */
long rconn_timeout_ms(const struct rconn *rc);

/* The connection's generation: incremented at every successful (re)connect. */
unsigned long rconn_generation(const struct rconn *rc);

/*
 * Sends a command given as argc strings (argvlen may be NULL for NUL-terminated ones).
 * timeout_ms 0 means the configured command timeout; a blocking command passes its
 * BLOCK time plus a margin. cb may be NULL when nobody waits for the reply. Returns 0
 * (cb will run exactly once) or -1 when not connected or out of memory (cb never runs).
 */
int rconn_argv(struct rconn *rc, rconn_reply_fn *cb, void *arg, long timeout_ms,
    int argc, const char **argv, const size_t *argvlen);

/* Sends a command already in Redis' wire format (an array of bulk strings: cmd[0..len),
 * copied), otherwise like rconn_argv. */
int rconn_formatted(struct rconn *rc, rconn_reply_fn *cb, void *arg, long timeout_ms,
    const char *cmd, size_t len);

/* printf-style hiredis command format (%s, %b, %d ...), otherwise like rconn_argv. */
int rconn_cmd(struct rconn *rc, rconn_reply_fn *cb, void *arg, long timeout_ms,
    const char *fmt, ...);

/* What health and metrics show of a connection. */
struct rconn_stat {
	int ready;
	unsigned long generation;      /* successful (re)connects */
	unsigned long timeouts;        /* commands whose server stayed silent too long */
	unsigned long drops;           /* connections dropped by us */
	size_t waiting;                /* commands awaiting a reply now */
	char addr[46];                 /* the address host resolved to at the last connect
	                                * (host itself when it is one); "" before */
};

void rconn_stats(const struct rconn *rc, struct rconn_stat *st);

/* On a cluster: the slot of the last keyed command sent (-1: none, or not a
 * cluster). */
int rconn_last_slot(const struct rconn *rc);
/* rconn_argv, a WAIT-like command sent to the node of slot on a cluster (slot from
 * rconn_last_slot right after the command it follows); rconn_argv otherwise. */
int rconn_argv_slot(struct rconn *rc, int slot, rconn_reply_fn *cb, void *arg,
    long timeout_ms, int argc, const char **argv, const size_t *argvlen);
/* From inside a command's callback: rconn_argv to the node that answered it, on the
 * same connection (a cluster; -1 when that connection is gone since), or
 * rconn_argv (one Redis). For WAIT after a script: it counts that connection's
 * writes only. */
int rconn_argv_here(struct rconn *rc, rconn_reply_fn *cb, void *arg, long timeout_ms,
    int argc, const char **argv, const size_t *argvlen);
/* Drops the connection now (as after a timeout) and reconnects with backoff. */
void rconn_reset(struct rconn *rc, const char *why);

/* The primary's address changed (called by sentinel.c): a connection elsewhere, or
 * one waiting to reconnect, goes to the new address at once; pending commands get
 * their callback with NULL. Does nothing without a sentinel or when already there. */
void rconn_moved(struct rconn *rc);

/*
 * Subscribes to channel (SUBSCRIBE): cb runs for every message (reply is the
 * ["message", channel, payload] array, borrowed) and once with NULL when the
 * connection drops or the rconn is freed; subscribe again from the ready callback.
 * A subscribed connection takes no other command and has no deadline for messages.
 * Returns 0, or -1 when not connected or out of memory (cb never runs).
 */
int rconn_subscribe(struct rconn *rc, const char *channel, rconn_reply_fn *cb,
    void *arg);

#endif
