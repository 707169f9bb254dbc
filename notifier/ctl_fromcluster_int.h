/*
 * ctl_fromcluster_int.h: what the copy from a Redis Cluster into one Redis
 * (ctl_fromcluster.c) and its checks (ctl_fromcluster_checks.c) share (stage:
 * outside the pipeline, the operator's CLI). Private to those two files.
 */
#ifndef DEALPUSH_CTL_FROMCLUSTER_INT_H
#define DEALPUSH_CTL_FROMCLUSTER_INT_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "shard.h"

#include "ctl_int.h"

#define FC_PENDING_MAX 1024               /* RESTOREs in flight */
#define FC_TAGS_MAX (SHARD_MAX * SHARD_TAG_MAX)
#define FC_NODES_MAX 64

/* The copy's state. */
struct fc {
	struct ctl_conn *dst;             /* the target: one Redis */
	struct ctl_conn src;              /* the cluster (its router) */
	const char *target;               /* as given, for messages */
	const char *seeds;
	/* the cluster's layout, as HMGET'd (LAYOUT_HMGET's order) */
	char version[32], shards[16], hash[64], created[32], *tags;
	uint32_t n;                       /* shards */
	int nprim;
	char addr[FC_NODES_MAX][CTL_ADDR_MAX];
	unsigned long copied[FC_NODES_MAX], gone[FC_NODES_MAX];
	long long dbsize[FC_NODES_MAX];   /* each primary's keys, as verified */
	/* RESTOREs sent to the target whose answers are not read yet */
	const redisReply *pending[FC_PENDING_MAX];   /* their keys (in the SCAN reply) */
	int npending;
	size_t pending_bytes;
};

/* "dealpushctl: migrate --from-cluster: refused: <why>" on stderr. */
void fc_refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* r when it is a reply of type type; else prints why (naming what and where: err is
 * the connection's error when r is NULL), frees r and returns NULL. */
redisReply *fc_want(redisReply *r, int type, const char *what, const char *where,
    const char *err);

/* DBSIZE of the Redis of c (where names it) into *n. 0, or -1 after printing. */
int fc_dbsize(redisContext *c, const char *where, long long *n);

/* The checks before the first write, in order: the cluster's layout (into f), the
 * target (empty: *rerun 0; an unfinished copy of this deployment: *rerun 1), every
 * slot served and none moving (the primaries' addresses into f), no notifier.
 * CTL_OK, or CTL_BAD_INPUT (refused), CTL_FAIL or LAYOUT_EXIT_MISMATCH after
 * printing. */
int fc_checks(struct fc *f, int *rerun);

/* 1 when a notifier serves the cluster (after printing why), 0 when none does, -1
 * after printing an error (ctl_fromcluster_checks.c). */
int fc_notifier_running(struct fc *f);

#endif
