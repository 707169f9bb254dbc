/*
 * ctl_fromcluster_checks.c: what must hold before dealpushctl --redis TARGET migrate
 * --from-cluster SEEDS writes anything (stage: outside the pipeline, the operator's
 * CLI; the copy is ctl_fromcluster.c): the cluster in the sharded layout with every
 * slot served and none moving; no notifier serving it (a stream reader on any
 * primary, a consumer of the notifier's groups or a lease seen in the last 10 s:
 * the checks of dealpushctl migrate, ctl_migrate.c, over the cluster); the target one
 * Redis, a primary, not a cluster node, that never evicts, and empty or holding an
 * unfinished copy of the same deployment.
 *
 * It never writes, and every answer is checked before it is read: a refusal names
 * what is wrong and where.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "layout.h"
#include "owner.h"
#include "shard.h"

#include "ctl_int.h"
#include "ctl_migrate_int.h"
#include "ctl_fromcluster_int.h"

void
fc_refuse(const char *fmt, ...)
{
	va_list ap;

	fputs("dealpushctl: migrate --from-cluster: refused: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

redisReply *
fc_want(redisReply *r, int type, const char *what, const char *where, const char *err)
{
	if (r != NULL && r->type == type)
		return r;
	fprintf(stderr, "dealpushctl: migrate --from-cluster: redis at %s: %s: %s\n", where,
	    what, r == NULL ? (err != NULL && err[0] ? err : "no reply") :
	    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
	freeReplyObject(r);
	return NULL;
}

/* 1 when the len bytes at s hold needle. */
static int
fc_has(const char *s, size_t len, const char *needle)
{
	size_t n = strlen(needle), i;

	for (i = 0; i + n <= len; i++)
		if (memcmp(s + i, needle, n) == 0)
			return 1;
	return 0;
}

/* ---- the target ---- */

int
fc_dbsize(redisContext *c, const char *where, long long *n)
{
	redisReply *r = fc_want(redisCommand(c, "DBSIZE"), REDIS_REPLY_INTEGER, "DBSIZE",
	    where, c->errstr);

	if (r == NULL)
		return -1;
	*n = r->integer;
	freeReplyObject(r);
	if (*n < 0) {
		fprintf(stderr, "dealpushctl: migrate --from-cluster: redis at %s: DBSIZE: "
		    "unexpected reply\n", where);
		return -1;
	}
	return 0;
}

/* The value of "name:" in INFO text info into buf ("" when absent). */
static void
fc_info_field(const char *info, const char *name, char *buf, size_t size)
{
	size_t n = strlen(name), len;
	const char *p;

	buf[0] = '\0';
	for (p = info; (p = strstr(p, name)) != NULL; p += n) {
		if ((p == info || p[-1] == '\n') && p[n] == ':') {
			len = strcspn(p + n + 1, "\r\n");
			snprintf(buf, size, "%.*s", (int)len, p + n + 1);
			return;
		}
	}
}

/* The target keeps every key written to it: no memory limit, or noeviction (a full
 * target then refuses a RESTORE, which stops the copy, instead of dropping keys
 * already copied). CTL_OK, or CTL_BAD_INPUT / CTL_FAIL after printing. */
static int
fc_target_keeps(struct fc *f)
{
	redisContext *c = f->dst->c;
	redisReply *r;
	char max[32], policy[64];

	if ((r = fc_want(redisCommand(c, "INFO memory"), REDIS_REPLY_STRING, "INFO "
	    "memory", f->target, c->errstr)) == NULL)
		return CTL_FAIL;
	fc_info_field(r->str, "maxmemory", max, sizeof(max));
	fc_info_field(r->str, "maxmemory_policy", policy, sizeof(policy));
	freeReplyObject(r);
	if (max[0] != '\0' && strcmp(max, "0") != 0 && strcmp(policy, "noeviction") != 0) {
		fc_refuse("the target %s may evict keys (maxmemory %s, maxmemory-policy %s): "
		    "set maxmemory-policy noeviction (or maxmemory 0) for the copy", f->target,
		    max, policy[0] ? policy : "?");
		return CTL_BAD_INPUT;
	}
	return CTL_OK;
}

/* The target may take the copy: one Redis (not a cluster node), a primary, and empty
 * or holding an unfinished copy of this deployment (*rerun set). CTL_OK, or
 * CTL_BAD_INPUT / CTL_FAIL after printing. */
static int
fc_target_check(struct fc *f, int *rerun)
{
	redisContext *c = f->dst->c;
	redisReply *r;
	long long n;
	int rc = CTL_FAIL, same;

	*rerun = 0;
	if ((r = fc_want(redisCommand(c, "INFO cluster"), REDIS_REPLY_STRING, "INFO "
	    "cluster", f->target, c->errstr)) == NULL)
		return CTL_FAIL;
	if (strstr(r->str, "cluster_enabled:1") != NULL) {
		fc_refuse("the target %s is a Redis Cluster node (cluster_enabled:1); the "
		    "copy goes into one Redis that is not part of a cluster", f->target);
		freeReplyObject(r);
		return CTL_BAD_INPUT;
	}
	freeReplyObject(r);
	if ((r = fc_want(redisCommand(c, "ROLE"), REDIS_REPLY_ARRAY, "ROLE", f->target,
	    c->errstr)) == NULL)
		return CTL_FAIL;
	if (r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(r->element[0]->str, "master") != 0) {
		fc_refuse("the target %s is not a primary (ROLE: %.20s); give the primary",
		    f->target, r->elements >= 1 && r->element[0]->type ==
		    REDIS_REPLY_STRING ? r->element[0]->str : "?");
		freeReplyObject(r);
		return CTL_BAD_INPUT;
	}
	freeReplyObject(r);
	if ((rc = fc_target_keeps(f)) != CTL_OK)
		return rc;
	rc = CTL_FAIL;
	if (fc_dbsize(c, f->target, &n) < 0)
		return CTL_FAIL;
	if (n == 0)
		return CTL_OK;
	/* Not empty: only an unfinished copy of this same deployment goes on. */
	r = redisCommand(c, "HMGET " MIG_COPY_KEY " created shards hash tags");
	if (r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) == 0) {
		freeReplyObject(r);
		r = NULL;
		fc_refuse("the target %s holds %lld keys, and " MIG_COPY_KEY " is not a copy's "
		    "record; copy into an empty Redis", f->target, n);
		return CTL_BAD_INPUT;
	}
	if ((r = fc_want(r, REDIS_REPLY_ARRAY, "HMGET " MIG_COPY_KEY, f->target,
	    c->errstr)) == NULL)
		return CTL_FAIL;
	if (r->elements != 4) {
		fprintf(stderr, "dealpushctl: migrate --from-cluster: redis at %s: HMGET: "
		    "unexpected reply\n", f->target);
		goto out;
	}
	if (r->element[0]->type != REDIS_REPLY_STRING) {
		fc_refuse("the target %s is not empty (%lld keys) and holds no unfinished copy "
		    "(" MIG_COPY_KEY "); the copy would overwrite its keys: give an empty "
		    "Redis, or empty this one (FLUSHALL) if its data is not needed", f->target,
		    n);
		rc = CTL_BAD_INPUT;
		goto out;
	}
	same = r->element[1]->type == REDIS_REPLY_STRING &&
	    r->element[2]->type == REDIS_REPLY_STRING &&
	    r->element[3]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, f->created) == 0 &&
	    strcmp(r->element[1]->str, f->shards) == 0 &&
	    strcmp(r->element[2]->str, f->hash) == 0 &&
	    strcmp(r->element[3]->str, f->tags) == 0;
	if (!same) {
		fc_refuse("the target %s holds an unfinished copy of another deployment (its "
		    MIG_COPY_KEY " says layout created %.32s, %.16s shards; the cluster's was "
		    "created %s with %s shards); finish that one, or give an empty Redis",
		    f->target, r->element[0]->str, r->element[1]->type == REDIS_REPLY_STRING ?
		    r->element[1]->str : "?", f->created, f->shards);
		rc = CTL_BAD_INPUT;
		goto out;
	}
	freeReplyObject(r);
	/* The layout of an unfinished copy says so; anything else was changed by hand. */
	if ((r = redisCommand(c, "HGET %s version", LAYOUT_KEY)) == NULL) {
		fprintf(stderr, "dealpushctl: migrate --from-cluster: redis at %s: HGET "
		    LAYOUT_KEY ": %s\n", f->target, c->errstr);
		return CTL_FAIL;
	}
	if (r->type != REDIS_REPLY_STRING || strcmp(r->str, MIG_VERSION_COPY) != 0) {
		fc_refuse("the target %s holds " MIG_COPY_KEY " but its layout's version is "
		    "'%.32s', not '" MIG_VERSION_COPY "'; give an empty Redis", f->target,
		    r->type == REDIS_REPLY_STRING ? r->str : "(none)");
		rc = CTL_BAD_INPUT;
		goto out;
	}
	*rerun = 1;
	printf("resuming the unfinished copy on %s (%lld keys there)\n", f->target, n);
	rc = CTL_OK;
out:
	freeReplyObject(r);
	return rc;
}

/* ---- the cluster ---- */

/* The cluster's layout (version 1, no migration or copy of ours in progress there)
 * into f. CTL_OK, or CTL_BAD_INPUT / CTL_FAIL / LAYOUT_EXIT_MISMATCH after printing. */
static int
fc_cluster_layout(struct fc *f)
{
	char *dst[5] = { f->version, f->shards, f->hash, f->tags, f->created };
	size_t size[5] = { sizeof(f->version), sizeof(f->shards), sizeof(f->hash),
	    FC_TAGS_MAX, sizeof(f->created) };
	redisReply *r;
	size_t i;
	int rc;

	if ((rc = ctl_layout_check(&f->src)) != CTL_OK)
		return rc;
	if (layout_current() == NULL) {
		fc_refuse("the cluster holds no sharded layout (" LAYOUT_KEY "): nothing of "
		    "dealpush to copy");
		return CTL_BAD_INPUT;
	}
	f->n = shard_layout_count(layout_current());
	if ((r = ctl_command_expect(&f->src, ctl_command(&f->src, LAYOUT_HMGET),
	    REDIS_REPLY_ARRAY, "HMGET " LAYOUT_KEY)) == NULL)
		return CTL_FAIL;
	for (i = 0; i < 5; i++) {
		if (r->elements != 5 || r->element[i]->type != REDIS_REPLY_STRING ||
		    r->element[i]->len >= size[i]) {
			fprintf(stderr, "dealpushctl: migrate --from-cluster: the cluster's "
			    LAYOUT_KEY " cannot be read\n");
			freeReplyObject(r);
			return CTL_FAIL;
		}
		memcpy(dst[i], r->element[i]->str, r->element[i]->len + 1);
	}
	freeReplyObject(r);
	/* Our own progress keys never belong on a cluster: one there is not ours to copy. */
	if ((r = ctl_command_expect(&f->src, ctl_command(&f->src, "EXISTS %s", MIG_KEY),
	    REDIS_REPLY_INTEGER, "EXISTS " MIG_KEY)) == NULL)
		return CTL_FAIL;
	rc = r->integer != 0;
	freeReplyObject(r);
	if (!rc && (r = ctl_command_expect(&f->src, ctl_command(&f->src, "EXISTS %s",
	    MIG_COPY_KEY), REDIS_REPLY_INTEGER, "EXISTS " MIG_COPY_KEY)) == NULL)
		return CTL_FAIL;
	if (!rc) {
		rc = r->integer != 0;
		freeReplyObject(r);
	}
	if (rc) {
		fc_refuse("the cluster holds " MIG_KEY " or " MIG_COPY_KEY " (a migration's "
		    "progress); they belong on one Redis, never on a cluster");
		return CTL_BAD_INPUT;
	}
	return CTL_OK;
}

/* Every slot served, none moving (CLUSTER NODES of each primary: "[slot->-" or
 * "[slot-<-" on its own line), at most FC_NODES_MAX primaries; their addresses into
 * f. CTL_OK, or CTL_BAD_INPUT / CTL_FAIL after printing. */
static int
fc_cluster_steady(struct fc *f)
{
	struct ctl_cluster *cl = f->src.cl;
	char err[CTL_ERR_MAX];
	int k, uncovered = ctl_cluster_uncovered(cl);

	if (uncovered > 0) {
		fc_refuse("%d slots of the cluster have no primary (is it down?)", uncovered);
		return CTL_BAD_INPUT;
	}
	if ((f->nprim = ctl_cluster_nprimaries(cl)) > FC_NODES_MAX) {
		fc_refuse("the cluster has more than %d primaries", FC_NODES_MAX);
		return CTL_BAD_INPUT;
	}
	for (k = 0; k < f->nprim; k++) {
		redisContext *c = ctl_cluster_primary_conn(cl, k, err, sizeof(err));
		const char *line;
		redisReply *r;
		size_t len;

		snprintf(f->addr[k], CTL_ADDR_MAX, "%s", ctl_cluster_primary_addr(cl, k));
		if (c == NULL) {
			fprintf(stderr, "dealpushctl: migrate --from-cluster: %s\n", err);
			return CTL_FAIL;
		}
		if ((r = fc_want(redisCommand(c, "CLUSTER NODES"), REDIS_REPLY_STRING,
		    "CLUSTER NODES", f->addr[k], c->errstr)) == NULL)
			return CTL_FAIL;
		for (line = r->str; *line != '\0'; line += len + (line[len] == '\n')) {
			len = strcspn(line, "\n");
			if (fc_has(line, len, "myself") && (fc_has(line, len, "->-") ||
			    fc_has(line, len, "-<-"))) {
				fc_refuse("a slot of primary %s is being moved (CLUSTER NODES: "
				    "MIGRATING or IMPORTING); finish the reshard first", f->addr[k]);
				freeReplyObject(r);
				return CTL_BAD_INPUT;
			}
		}
		freeReplyObject(r);
	}
	return CTL_OK;
}

/* 1 when a lease of the cluster's (a shard's owner, a member of dealpush:members)
 * ended less than MIG_IDLE_MS ago or has not ended (after printing), 0 when not, -1
 * on error. */
static int
fc_leases_active(struct fc *f)
{
	const struct shard_layout *l = layout_current();
	char key[MIG_NAME_MAX];
	long long now;
	redisReply *r;
	uint32_t k;
	size_t i;

	if ((r = ctl_command_expect(&f->src, ctl_command(&f->src, "TIME"),
	    REDIS_REPLY_ARRAY, "TIME")) == NULL)
		return -1;
	if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "dealpushctl: migrate --from-cluster: TIME: unexpected reply\n");
		freeReplyObject(r);
		return -1;
	}
	now = strtoll(r->element[0]->str, NULL, 10) * 1000 +
	    strtoll(r->element[1]->str, NULL, 10) / 1000;
	freeReplyObject(r);
	for (k = 0; k < f->n; k++) {
		long long until;

		if (shard_key(l, k, "owner", key, sizeof(key)) < 0)
			return -1;
		if ((r = ctl_command_expect(&f->src, ctl_command(&f->src, "HMGET %s owner "
		    "until", key), REDIS_REPLY_ARRAY, "HMGET owner")) == NULL)
			return -1;
		if (r->elements == 2 && r->element[0]->type == REDIS_REPLY_STRING &&
		    r->element[1]->type == REDIS_REPLY_STRING &&
		    (until = strtoll(r->element[1]->str, NULL, 10)) + MIG_IDLE_MS > now) {
			fc_refuse("shard %u is leased to notifier %.100s (%s, until %lld ms from "
			    "now); stop every notifier and try again in %lld s", (unsigned)k,
			    r->element[0]->str, key, until - now, (until + MIG_IDLE_MS - now) /
			    1000 + 1);
			freeReplyObject(r);
			return 1;
		}
		freeReplyObject(r);
	}
	if ((r = ctl_command_expect(&f->src, ctl_command(&f->src, "HGETALL %s",
	    OWNER_MEMBERS_KEY), REDIS_REPLY_ARRAY, "HGETALL " OWNER_MEMBERS_KEY)) == NULL)
		return -1;
	for (i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *id = r->element[i], *v = r->element[i + 1];
		long long until;

		if (id->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		until = strtoll(v->str, NULL, 10);
		if (until + MIG_IDLE_MS > now) {
			fc_refuse("notifier %.100s is a live member of the cluster (" 
			    OWNER_MEMBERS_KEY ", until %lld ms from now); stop every notifier and "
			    "try again in %lld s", id->str, until - now, (until + MIG_IDLE_MS -
			    now) / 1000 + 1);
			freeReplyObject(r);
			return 1;
		}
	}
	freeReplyObject(r);
	return 0;
}

/* 1 when a notifier serves the cluster (after printing why), 0 when none does, -1 on
 * error: a client blocked reading a stream on any primary; a consumer of the
 * notifier's groups (deals: notifier and s<K>, every shard's pushes: deliver,
 * conversions: attribution) active in the last MIG_IDLE_MS; a lease held lately. */
int
fc_notifier_running(struct fc *f)
{
	const struct shard_layout *l = layout_current();
	char err[CTL_ERR_MAX], name[MIG_NAME_MAX];
	uint32_t k;
	int p, rc;

	for (p = 0; p < f->nprim; p++) {
		redisContext *c = ctl_cluster_conn_at(f->src.cl, f->addr[p], err, sizeof(err));

		if (c == NULL) {
			fprintf(stderr, "dealpushctl: migrate --from-cluster: %s\n", err);
			return -1;
		}
		if ((rc = mig_stream_readers(c, f->addr[p])) != 0)
			return rc;
	}
	if ((rc = mig_consumers_active(&f->src, "deals", "notifier")) != 0 ||
	    (rc = mig_consumers_active(&f->src, "conversions", "attribution")) != 0)
		return rc;
	for (k = 0; k < f->n; k++) {
		snprintf(name, sizeof(name), "s%u", (unsigned)k);
		if ((rc = mig_consumers_active(&f->src, "deals", name)) != 0)
			return rc;
		if (shard_key(l, k, "pushes", name, sizeof(name)) < 0)
			return -1;
		if ((rc = mig_consumers_active(&f->src, name, "deliver")) != 0)
			return rc;
	}
	return fc_leases_active(f);
}

int
fc_checks(struct fc *f, int *rerun)
{
	int rc, running;

	if ((rc = fc_cluster_layout(f)) != CTL_OK ||
	    (rc = fc_target_check(f, rerun)) != CTL_OK ||
	    (rc = fc_cluster_steady(f)) != CTL_OK)
		return rc;
	if ((running = fc_notifier_running(f)) != 0)
		return running < 0 ? CTL_FAIL : CTL_BAD_INPUT;
	return CTL_OK;
}
