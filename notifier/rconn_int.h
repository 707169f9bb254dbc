/*
 * rconn_int.h: what rconn.c and rconn_primary.c share: the connection itself and the
 * steps of its connect (stage: all Redis I/O). Private to those two files; the
 * public face is include/rconn.h.
 */
#ifndef DEALPUSH_RCONN_INT_H
#define DEALPUSH_RCONN_INT_H

#include <arpa/inet.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <hiredis/async.h>

#include "rconn.h"

struct rcluster;

#define RCONN_BACKOFF_MIN_MS 50

struct rconn {
	struct event_base *base;
	redisAsyncContext *ac;     /* NULL while disconnected */
	int ready;                 /* connected (and authenticated) */
	int closed;                /* rconn_close: every send refused, no reconnect */
	unsigned long generation;
	char *host;                /* as configured: an IP address or a host name */
	char addr[INET6_ADDRSTRLEN]; /* what host resolved to at the last connect */
	char *username;            /* Redis 6 ACL user, with the password; may be NULL */
	char *password;
	int port;
	struct evdns_base *dns;    /* only when host is a name */
	struct rconn_lookup *lookup; /* the name's resolution in progress, or NULL */
	long connect_timeout_ms;
	long command_timeout_ms;
	long reconnect_max_ms;
	long backoff_ms;
	char name[32];
	struct event *connect_timer;   /* connect deadline */
	struct event *retry_timer;     /* reconnect after backoff */
	struct event *drop_timer;      /* drop the connection outside hiredis callbacks */
	char drop_why[64];
	rconn_ready_fn *on_ready;
	void *arg;
	struct rconn_cmd *head, *tail; /* awaiting a reply, in the order sent */
	unsigned long timeouts, drops; /* since start, for health and metrics */
	struct sentinel *sentinel; /* where the primary is; NULL: host is fixed */
	int waiting_logged;        /* "no primary known yet" said once */
	rconn_reply_fn *sub_cb;    /* the subscription's callback, or NULL */
	void *sub_arg;
	struct rcluster *cl;       /* on a Redis Cluster (rconn_cluster.c); else NULL */
	int last_slot;             /* cluster: the slot of the last keyed command sent */
	size_t cl_inflight;        /* cluster: commands whose callback has not run */
	int cl_ready_due;          /* cluster: ready once they have (a new primary) */
};

/* rconn.c: reconnect after the backoff (doubling it); drop the hiredis context now
 * (pending callbacks run with NULL); connected and logged in: ready; 1 when host is
 * an IP address. */
void rconn_schedule_reconnect(struct rconn *rc);
void rconn_drop(struct rconn *rc);
void rconn_became_ready(struct rconn *rc);
int rconn_is_ip(const char *host);

/* rconn_primary.c: ready once ROLE confirms a primary, when the address came from a
 * sentinel (else ready at once); the sentinel's address into host and port, or -1
 * when none is known yet. */
void rconn_handshake(struct rconn *rc);
int rconn_locate(struct rconn *rc);

/* rconn_cluster.c: the same face on a Redis Cluster (rconn_config.cluster): the
 * client made, commands routed (rroute.h; slot >= 0 names WAIT's node), ready, stats,
 * a map read asked for, freed. */
int rconn_cluster_new(struct rconn *rc, const struct rconn_config *cfg);
int rconn_cluster_argv(struct rconn *rc, int slot, rconn_reply_fn *cb, void *arg,
    long timeout_ms, int argc, const char **argv, const size_t *lens);
int rconn_cluster_argv_here(struct rconn *rc, rconn_reply_fn *cb, void *arg,
    long timeout_ms, int argc, const char **argv, const size_t *lens);
int rconn_cluster_formatted(struct rconn *rc, rconn_reply_fn *cb, void *arg,
    long timeout_ms, const char *cmd, size_t len);
int rconn_cluster_ready(const struct rconn *rc);
void rconn_cluster_stats(const struct rconn *rc, struct rconn_stat *st);
void rconn_cluster_free(struct rconn *rc);
void rconn_cluster_reset(struct rconn *rc);

#endif
