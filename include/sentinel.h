/*
 * sentinel.h: where the Redis primary is, found through Redis Sentinel and followed
 * across failovers (stage: all Redis I/O).
 *
 * One struct sentinel per process is shared by every rconn of the notifier that
 * names it in its config: rconn asks it for the primary's address at every connect,
 * confirms the role itself (ROLE) before it uses the connection, and is moved to the
 * new primary when a failover is seen (a +switch-master message, or a sentinel that
 * answers another address when asked). Never blocks the loop.
 */
#ifndef DEALPUSH_SENTINEL_H
#define DEALPUSH_SENTINEL_H

#include <stddef.h>

struct event_base;
struct rconn;
struct rconn_config;
struct sentinel;

#define SENTINEL_MAX 16            /* sentinels in one list */
#define SENTINEL_HOST_MAX 256

struct sentinel_addr {
	char host[SENTINEL_HOST_MAX];  /* an IP address or a host name */
	int port;
};

/*
 * Parses "host:port,host:port,..." (an IPv6 address in brackets: "[::1]:26379";
 * white space around entries is ignored) into out[0..max). Returns the number of
 * sentinels, or -1 with what is wrong (naming the entry) in err.
 */
int sentinel_parse(const char *list, struct sentinel_addr *out, size_t max, char *err,
    size_t errlen);

/*
 * Starts following master (a Sentinel master name) through the sentinels in list
 * (as sentinel_parse takes it). cfg gives the timeouts of the connections to the
 * sentinels (its host, port and credentials are not used: sentinels are asked
 * without a password). Returns NULL on a bad list (logged) or OOM.
 */
struct sentinel *sentinel_new(struct event_base *base, const char *list,
    const char *master, const struct rconn_config *cfg);

/* Stops following; every rconn that watches it must have been freed first. NULL
 * does nothing. */
void sentinel_free(struct sentinel *s);

/* The primary's address as last learned into host (size len) and *port: 0, or -1
 * when no sentinel has answered yet. */
int sentinel_primary(const struct sentinel *s, char *host, size_t len, int *port);

/* Adds rc to (or removes it from) the connections moved when the primary changes.
 * Called by rconn_new and rconn_free. Returns 0, or -1 on OOM. */
int sentinel_watch(struct sentinel *s, struct rconn *rc);
void sentinel_unwatch(struct sentinel *s, struct rconn *rc);

/* Asks the sentinels again at once (a connection found the address refused, or
 * not a primary). */
void sentinel_refresh(struct sentinel *s);

struct sentinel_stat {
	int known;                     /* a primary address is known */
	char primary[SENTINEL_HOST_MAX + 8];   /* "host:port", "" when not known */
	unsigned long switches;        /* primary changes seen since start */
	char sentinel[SENTINEL_HOST_MAX + 8];  /* the sentinel asked last */
};

void sentinel_stats(const struct sentinel *s, struct sentinel_stat *st);

#endif
