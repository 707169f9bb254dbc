/*
 * ctl_fromcluster.c: dealpushctl --redis TARGET migrate --from-cluster SEEDS (stage:
 * outside the pipeline, the operator's CLI; docs/sharding.md 4g): a Redis Cluster in
 * the sharded layout copied, key by key, into one Redis, which then runs the sharded
 * layout with every shard on it (or goes on with migrate --to-single).
 *
 * Each primary is walked with SCAN (FC_BATCH keys a batch); each key is read with
 * DUMP and PTTL, pipelined, and written with RESTORE <key> <ttl> <payload> REPLACE,
 * pipelined too and drained whenever FC_PENDING_BYTES of payloads are in flight:
 * memory stays at about that plus the largest key. DUMP/RESTORE through this
 * process, not MIGRATE run on each primary: the target is the address the operator
 * gave, reached from here with our login (a primary resolving "127.0.0.1" would
 * write into its own host's Redis), every key's answer is checked here, and RESTORE
 * refuses a payload whose checksum or version is wrong, so a key is whole or absent.
 *
 * It must never write to the cluster, never write into a Redis that holds anything
 * but an unfinished copy of the same deployment, and never leave the target looking
 * finished when it is not: from the first write to the last, the target's layout
 * says version "0-from-cluster" (every notifier and dealpushctl command refuses it)
 * and dealpush:copy names the deployment copied; a rerun after a kill copies every
 * key again (REPLACE: the same value), verifies, and only then puts the cluster's
 * layout in place and deletes dealpush:copy, in one MULTI.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "clock.h"
#include "fault.h"
#include "layout.h"
#include "shard.h"

#include "ctl_int.h"
#include "ctl_migrate_int.h"
#include "ctl_fromcluster_int.h"

#define FC_BATCH "100"                    /* SCAN COUNT on each primary */
#define FC_PENDING_BYTES (8u << 20)       /* RESTORE payloads in flight to the target */
#define FC_VERIFY_TRIES 3                 /* keys expiring meanwhile: count again */

/* ---- the copy ---- */

/* Reads the answers of the RESTOREs in flight: each must be OK. 0, or -1 after
 * printing the key refused and why. */
static int
fc_drain(struct fc *f)
{
	redisContext *c = f->dst->c;
	int i, rc = 0;

	for (i = 0; i < f->npending; i++) {
		const redisReply *key = f->pending[i];
		redisReply *r = NULL;

		if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
			fprintf(stderr, "dealpushctl: migrate --from-cluster: redis at %s: "
			    "RESTORE: %s\n", f->target, c->errstr[0] ? c->errstr : "no reply");
			f->npending = 0;
			return -1;          /* the connection is gone: nothing more to read */
		}
		if (rc == 0 && (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "OK") != 0)) {
			fprintf(stderr, "dealpushctl: migrate --from-cluster: redis at %s: RESTORE "
			    "%.*s: %s\n", f->target, (int)(key->len > 200 ? 200 : key->len),
			    key->str, r->type == REDIS_REPLY_ERROR ? r->str :
			    "unexpected reply");
			rc = -1;            /* the rest still read: the pipeline stays in step */
		}
		freeReplyObject(r);
		if (rc == 0 && fault_hit("copy.kill")) {
			fprintf(stderr, "dealpushctl: migrate --from-cluster: fault point "
			    "copy.kill\n");
			_exit(137);
		}
	}
	f->npending = 0;
	f->pending_bytes = 0;
	return rc;
}

/* One PTTL answer as RESTORE's ttl: 0 (none) for -1, the ms left otherwise (at least
 * 1: a key about to expire must not become persistent); -2 (gone) or a bad answer:
 * -1. */
static long long
fc_ttl_of(const redisReply *r, int *bad)
{
	*bad = r->type != REDIS_REPLY_INTEGER || r->integer < -2;
	if (*bad || r->integer == -2)
		return -1;
	return r->integer == -1 ? 0 : r->integer == 0 ? 1 : r->integer;
}

/* Copies the keys of one SCAN page (keys, an array of strings) from primary c (the
 * p-th): DUMP and PTTL of each pipelined, a RESTORE each to the target. 0, or -1
 * after printing. */
static int
fc_page(struct fc *f, int p, redisContext *c, const redisReply *keys)
{
	size_t i, sent = 0;
	int rc = 0;

	for (i = 0; i < keys->elements; i++) {
		if (keys->element[i]->type != REDIS_REPLY_STRING) {
			fprintf(stderr, "dealpushctl: migrate --from-cluster: redis at %s: SCAN: "
			    "a key that is not a string\n", f->addr[p]);
			return -1;
		}
	}
	for (i = 0; i < keys->elements; i++) {
		const redisReply *k = keys->element[i];
		const char *dargv[2] = { "DUMP", k->str }, *pargv[2] = { "PTTL", k->str };
		size_t dl[2] = { 4, k->len }, pl[2] = { 4, k->len };

		if (redisAppendCommandArgv(c, 2, dargv, dl) != REDIS_OK ||
		    redisAppendCommandArgv(c, 2, pargv, pl) != REDIS_OK) {
			fprintf(stderr, "dealpushctl: migrate --from-cluster: out of memory\n");
			return -1;
		}
		sent++;
	}
	for (i = 0; i < sent; i++) {
		const redisReply *k = keys->element[i];
		redisReply *d = NULL, *t = NULL;
		long long ttl;
		int bad;

		if (redisGetReply(c, (void **)&d) != REDIS_OK ||
		    redisGetReply(c, (void **)&t) != REDIS_OK || d == NULL || t == NULL) {
			fprintf(stderr, "dealpushctl: migrate --from-cluster: redis at %s: DUMP: "
			    "%s\n", f->addr[p], c->errstr[0] ? c->errstr : "no reply");
			freeReplyObject(d);
			return -1;          /* the connection is broken: stop here */
		}
		ttl = fc_ttl_of(t, &bad);
		if (rc == 0 && (bad || (d->type != REDIS_REPLY_STRING &&
		    d->type != REDIS_REPLY_NIL))) {
			fprintf(stderr, "dealpushctl: migrate --from-cluster: redis at %s: DUMP "
			    "%.*s: %s\n", f->addr[p], (int)(k->len > 200 ? 200 : k->len), k->str,
			    d->type == REDIS_REPLY_ERROR ? d->str : t->type == REDIS_REPLY_ERROR ?
			    t->str : "unexpected reply");
			rc = -1;            /* the other answers still read, then stop */
		} else if (rc == 0 && (d->type == REDIS_REPLY_NIL || ttl < 0)) {
			f->gone[p]++;       /* expired between SCAN and DUMP */
		} else if (rc == 0) {
			char ttls[24];
			const char *argv[5] = { "RESTORE", k->str, ttls, d->str, "REPLACE" };
			size_t lens[5] = { 7, k->len, 0, d->len, 7 };

			lens[2] = (size_t)snprintf(ttls, sizeof(ttls), "%lld", ttl);
			if (redisAppendCommandArgv(f->dst->c, 5, argv, lens) != REDIS_OK) {
				fprintf(stderr, "dealpushctl: migrate --from-cluster: out of memory\n");
				rc = -1;
			} else {
				f->pending[f->npending++] = k;
				f->pending_bytes += d->len;
				f->copied[p]++;
			}
		}
		freeReplyObject(d);
		freeReplyObject(t);
		if (rc == 0 && (f->pending_bytes >= FC_PENDING_BYTES ||
		    f->npending == FC_PENDING_MAX))
			rc = fc_drain(f);
	}
	if (fc_drain(f) < 0)
		rc = -1;
	return rc;
}

/* Every key of primary p but the layout (copied last), by SCAN pages. 0 or -1. */
static int
fc_primary(struct fc *f, int p)
{
	char cursor[32] = "0", err[CTL_ERR_MAX];
	redisContext *c = ctl_cluster_conn_at(f->src.cl, f->addr[p], err, sizeof(err));

	if (c == NULL) {
		fprintf(stderr, "dealpushctl: migrate --from-cluster: %s\n", err);
		return -1;
	}
	do {
		const char *argv[4] = { "SCAN", cursor, "COUNT", FC_BATCH };
		redisReply *r = redisCommandArgv(c, 4, argv, NULL), *keys;
		size_t i, w = 0;

		if ((r = fc_want(r, REDIS_REPLY_ARRAY, "SCAN", f->addr[p], c->errstr)) == NULL)
			return -1;
		if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[0]->len == 0 || r->element[0]->len >= sizeof(cursor) ||
		    strspn(r->element[0]->str, "0123456789") != r->element[0]->len ||
		    r->element[1]->type != REDIS_REPLY_ARRAY) {
			fprintf(stderr, "dealpushctl: migrate --from-cluster: redis at %s: SCAN: "
			    "unexpected reply\n", f->addr[p]);
			freeReplyObject(r);
			return -1;
		}
		memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
		keys = r->element[1];
		/* The layout is written last, with the end of the copy. */
		for (i = 0; i < keys->elements; i++) {
			const redisReply *e = keys->element[i];

			if (e->type == REDIS_REPLY_STRING && e->len == sizeof(LAYOUT_KEY) - 1 &&
			    memcmp(e->str, LAYOUT_KEY, e->len) == 0)
				freeReplyObject(keys->element[i]);
			else
				keys->element[w++] = keys->element[i];
		}
		keys->elements = w;
		if (fc_page(f, p, c, keys) < 0) {
			freeReplyObject(r);
			return -1;
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	return 0;
}

/* The keys the primaries hold (DBSIZE each) against the target's, less dealpush:copy;
 * counted again a few times while they differ (a key expiring on both sides may go
 * at different moments). 1 when equal, 0 when not (printed), -1 on error. */
static int
fc_verify(struct fc *f, long long *total)
{
	char err[CTL_ERR_MAX];
	long long want, have, n;
	int tries, p;

	for (tries = 0; tries < FC_VERIFY_TRIES; tries++) {
		if (tries > 0)
			ctl_sleep_ms(300);
		want = 0;
		for (p = 0; p < f->nprim; p++) {
			redisContext *c = ctl_cluster_conn_at(f->src.cl, f->addr[p], err,
			    sizeof(err));

			if (c == NULL) {
				fprintf(stderr, "dealpushctl: migrate --from-cluster: %s\n", err);
				return -1;
			}
			if (fc_dbsize(c, f->addr[p], &n) < 0)
				return -1;
			f->dbsize[p] = n;
			want += n;
		}
		if (fc_dbsize(f->dst->c, f->target, &have) < 0)
			return -1;
		have -= 1;                  /* dealpush:copy */
		if (have == want) {
			*total = want;
			return 1;
		}
	}
	fprintf(stderr, "dealpushctl: migrate --from-cluster: verify: the cluster's "
	    "primaries hold %lld keys, the target %lld; %s\n", want, have, have < want ?
	    "run the same command again to finish the copy" : "the target holds keys the "
	    "cluster no longer has (written to the cluster since an earlier run?): empty "
	    "the target (FLUSHALL) and copy again");
	return 0;
}

/* The first write: dealpush:copy and the layout's unfinished version, in one MULTI.
 * 0, or -1 after printing. */
static int
fc_first_write(struct fc *f)
{
	redisContext *c = f->dst->c;
	char now[24];

	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	if (redisAppendCommand(c, "MULTI") != REDIS_OK ||
	    redisAppendCommand(c, "HSET %s from %s created %s shards %s hash %s tags %s "
	    "started %s", MIG_COPY_KEY, f->seeds, f->created, f->shards, f->hash, f->tags,
	    now) != REDIS_OK ||
	    redisAppendCommand(c, "HSET %s version %s shards %s hash %s tags %s created %s",
	    LAYOUT_KEY, MIG_VERSION_COPY, f->shards, f->hash, f->tags, f->created) !=
	    REDIS_OK || redisAppendCommand(c, "EXEC") != REDIS_OK)
		return -1;
	if (ctl_expect_reply(c, REDIS_REPLY_STATUS, "OK", "MULTI", NULL) < 0 ||
	    ctl_expect_reply(c, REDIS_REPLY_STATUS, "QUEUED", "HSET " MIG_COPY_KEY,
	    NULL) < 0 || ctl_expect_reply(c, REDIS_REPLY_STATUS, "QUEUED",
	    "HSET " LAYOUT_KEY, NULL) < 0 || ctl_expect_reply(c, REDIS_REPLY_ARRAY, NULL,
	    "EXEC", NULL) < 0)
		return -1;
	return 0;
}

/* The last write: the cluster's layout (DUMP there, RESTORE REPLACE here) and
 * dealpush:copy deleted, in one MULTI. 0, or -1 after printing. */
static int
fc_last_write(struct fc *f)
{
	redisContext *c = f->dst->c;
	redisReply *d, *e = NULL;
	const char *argv[5] = { "RESTORE", LAYOUT_KEY, "0", NULL, "REPLACE" };
	size_t lens[5] = { 7, strlen(LAYOUT_KEY), 1, 0, 7 };
	int rc = -1;

	if ((d = ctl_command_expect(&f->src, ctl_command(&f->src, "DUMP %s", LAYOUT_KEY),
	    REDIS_REPLY_STRING, "DUMP " LAYOUT_KEY)) == NULL)
		return -1;
	argv[3] = d->str;
	lens[3] = d->len;
	if (redisAppendCommand(c, "MULTI") != REDIS_OK ||
	    redisAppendCommandArgv(c, 5, argv, lens) != REDIS_OK ||
	    redisAppendCommand(c, "DEL %s", MIG_COPY_KEY) != REDIS_OK ||
	    redisAppendCommand(c, "EXEC") != REDIS_OK)
		goto out;
	if (ctl_expect_reply(c, REDIS_REPLY_STATUS, "OK", "MULTI", NULL) < 0 ||
	    ctl_expect_reply(c, REDIS_REPLY_STATUS, "QUEUED", "RESTORE " LAYOUT_KEY,
	    NULL) < 0 || ctl_expect_reply(c, REDIS_REPLY_STATUS, "QUEUED",
	    "DEL " MIG_COPY_KEY, NULL) < 0 || ctl_expect_reply(c, REDIS_REPLY_ARRAY, NULL,
	    "EXEC", &e) < 0)
		goto out;
	/* EXEC's answers: RESTORE's OK and DEL's count; an error inside is no copy. */
	if (e->elements != 2 || e->element[0]->type != REDIS_REPLY_STATUS ||
	    strcmp(e->element[0]->str, "OK") != 0 ||
	    e->element[1]->type != REDIS_REPLY_INTEGER) {
		fprintf(stderr, "dealpushctl: migrate --from-cluster: redis at %s: the last "
		    "write (RESTORE " LAYOUT_KEY "): %s\n", f->target, e->elements >= 1 &&
		    e->element[0]->type == REDIS_REPLY_ERROR ? e->element[0]->str :
		    "unexpected reply");
		goto out;
	}
	rc = 0;
out:
	freeReplyObject(e);
	freeReplyObject(d);
	return rc;
}

int
ctl_cmd_migrate_from_cluster(struct ctl_conn *k, const char *target, const char *seeds)
{
	struct fc *f = calloc(1, sizeof(*f));
	char err[CTL_ERR_MAX];
	long long t0 = clock_mono_ms(), total = 0;
	unsigned long copied = 0, gone = 0;
	int rc = CTL_FAIL, rerun = 0, p, same;

	if (f == NULL || (f->tags = malloc(FC_TAGS_MAX)) == NULL) {
		fprintf(stderr, "dealpushctl: out of memory\n");
		goto out;
	}
	f->dst = k;
	f->seeds = seeds;
	f->target = target;
	if ((f->src.cl = ctl_cluster_open(seeds, err, sizeof(err))) == NULL) {
		/* The seeds' checks name the option they know: here it is --from-cluster. */
		if (strncmp(err, "--cluster", 9) == 0)
			fprintf(stderr, "dealpushctl: migrate --from-%s\n", err + 2);
		else
			fprintf(stderr, "dealpushctl: migrate --from-cluster: %s\n", err);
		goto out;
	}
	if ((rc = fc_checks(f, &rerun)) != CTL_OK)
		goto out;
	rc = CTL_FAIL;
	if (!rerun && fc_first_write(f) < 0)
		goto out;
	printf("copying the cluster (%d primaries, %u shards) into %s\n", f->nprim, f->n,
	    f->target);
	for (p = 0; p < f->nprim; p++) {
		if (fc_primary(f, p) < 0) {
			fprintf(stderr, "dealpushctl: migrate --from-cluster: the copy stopped at "
			    "primary %s; run the same command again to finish it\n", f->addr[p]);
			goto out;
		}
		copied += f->copied[p];
		gone += f->gone[p];
	}
	/* Nothing may have changed under the copy: the same map, still no notifier. */
	if ((same = ctl_cluster_map_same(f->src.cl, err, sizeof(err))) <= 0) {
		fprintf(stderr, "dealpushctl: migrate --from-cluster: %s; run the same command "
		    "again\n", same < 0 ? err : "the cluster's slot map changed during the "
		    "copy (a failover or a reshard)");
		goto out;
	}
	if ((p = fc_notifier_running(f)) != 0) {
		if (p > 0)
			fprintf(stderr, "dealpushctl: migrate --from-cluster: a notifier started "
			    "during the copy; stop it and run the same command again\n");
		rc = p > 0 ? CTL_BAD_INPUT : CTL_FAIL;
		goto out;
	}
	if ((same = fc_verify(f, &total)) <= 0 || fc_last_write(f) < 0)
		goto out;
	/* One line: what was copied from where, and what the counts say. */
	printf("copied: %lu keys from %d primaries in %.1f s (", copied + 1, f->nprim,
	    (double)(clock_mono_ms() - t0) / 1000.0);
	for (p = 0; p < f->nprim; p++)
		printf("%s%s %lu of %lld", p ? ", " : "", f->addr[p], f->copied[p],
		    f->dbsize[p]);
	printf(", " LAYOUT_KEY " last; %lu expired meanwhile); verified: the primaries "
	    "hold %lld keys, %s as many\n", gone, total, f->target);
	printf("the sharded layout of %u shards is in force on %s: run notifiers on it "
	    "with [redis] shards = %u, or dealpushctl --redis %s migrate --to-single\n",
	    f->n, f->target, f->n, f->target);
	rc = CTL_OK;
out:
	if (f != NULL) {
		ctl_cluster_free(f->src.cl);
		free(f->tags);
	}
	free(f);
	return rc;
}
