/*
 * rroute.h: where a command goes on a Redis Cluster (stage: all Redis I/O; docs/
 * architecture.md, "The cluster client").
 *
 * The daemon talks to Redis through rconn with commands it builds itself; on a cluster
 * each must go to the primary of its keys' slot. This says, for one command, which
 * argument is its key and whether every key it names shares one slot, from a table of
 * the commands the daemon and dealpushctl send: the first argument for the one-key
 * commands, the second for XINFO and XGROUP, the numkeys keys of EVAL/EVALSHA, the
 * streams after STREAMS of XREAD/XREADGROUP, every argument of DEL, EXISTS, MGET. A
 * command not in the table is refused rather than guessed (RROUTE_UNKNOWN): a new
 * command is added here first. Pure: no I/O, no allocation.
 */
#ifndef DEALPUSH_RROUTE_H
#define DEALPUSH_RROUTE_H

#include <stddef.h>

enum rroute_kind {
	RROUTE_KEY = 0,      /* to the primary of slot, the slot of argv[key] */
	RROUTE_ANY,          /* no key: any primary (PING, TIME, INFO, EVALSHA with no key) */
	RROUTE_EVERY,        /* to every primary (SCRIPT LOAD, SCRIPT FLUSH) */
	RROUTE_SAME,         /* to the node of the command before it on the connection
	                      * (WAIT counts that node's replicas) */
	RROUTE_NODES,        /* walks one node's keyspace (SCAN, KEYS, DBSIZE): the caller
	                      * iterates the primaries itself */
	RROUTE_CROSSSLOT,    /* keys in two slots: key and slot are the first key's; the
	                      * caller splits it (XREAD over several shards' streams) */
	RROUTE_UNKNOWN,      /* not in the table, or malformed: refused */
};

struct rroute {
	enum rroute_kind kind;
	int key;             /* argv index of the (first) key; -1 when none */
	int slot;            /* its hash slot; -1 when none */
	int nkeys;           /* keys the command names */
};

/* Routes argc arguments (lens[i] their lengths; NULL: NUL-terminated). Returns the
 * kind, also in out. */
enum rroute_kind rroute_of(int argc, const char *const *argv, const size_t *lens,
    struct rroute *out);

/* The kind's name, for logs ("key", "any" ...). */
const char *rroute_kind_name(enum rroute_kind k);

#endif
