/*
 * ctl_migrate.c: dealpushctl migrate --to-shards S | --to-single (stage: outside the
 * pipeline): every key of the single-instance layout moved to its name in the
 * sharded layout of S shards on the same Redis, or back (docs/sharding.md, 4g).
 *
 * The rule it relies on (notifier/keys.c): a shard's key is "{tag}<today's name>".
 * So a key goes to the shard of the subscriber it is about (by its name, a field or
 * a member), whole or split; counters go to shard 0 and are summed back; markers
 * every shard must see (order:, status_seen:, consent:epoch, engagement:decay) are
 * copied to every shard and merged back. No RENAME and no MIGRATE: whole keys move
 * with DUMP/RESTORE inside migrate_move.lua, split keys by batches of plain writes.
 *
 * Must never run beside a notifier (refused while one is connected or seen lately)
 * and must survive a kill anywhere: the layout says version "0-to-shards" or
 * "0-to-single" from the first write to the last (every notifier and dealpushctl
 * command refuses it), every step is idempotent, "dealpush:migrate" keeps the
 * direction and the SCAN cursor of the batch in progress, and the layout is
 * finished last.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "keys.h"
#include "layout.h"
#include "shard.h"

#include "ctl_int.h"
#include "ctl_migrate_int.h"

#define MIG_TAGS_MAX (SHARD_MAX * SHARD_TAG_MAX)

/* ---- the walk ---- */

/* SCANs every key from the saved cursor (dealpush:migrate field cursor: the batch in
 * progress at a kill is read again) and moves each. pass 2 only counts the keys left
 * to move (0 = verified). Returns the count, or -1. */
static long
mig_walk(struct mig *m, int verify)
{
	char cursor[32] = "0";
	long left = 0;
	redisReply *r;

	if (!verify && (r = mig_cmd(m, "HGET", MIG_KEY, "cursor", NULL)) != NULL) {
		if (r->type == REDIS_REPLY_STRING)
			snprintf(cursor, sizeof(cursor), "%s", r->str);
		freeReplyObject(r);
	}
	do {
		const char *argv[5] = { "SCAN", cursor, "COUNT", MIG_BATCH, NULL };
		redisReply *e;
		size_t i;

		if (!verify && mig_ok(mig_cmd(m, "HSET", MIG_KEY, "cursor", cursor)) < 0)
			return -1;
		if ((r = mig_argv(m, 4, argv, NULL)) == NULL)
			return -1;
		if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			freeReplyObject(r);
			return -1;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		e = r->element[1];
		for (i = 0; i < e->elements; i++) {
			const char *k = e->element[i]->str, *name = NULL;
			int rc;

			if (verify) {
				char other[MIG_NAME_MAX];

				if (m->to_shards)
					left += k[0] != '{' && (strcmp(k, "subscribers") == 0 ||
					    strcmp(k, "pushes:log") == 0 || strcmp(k, "stats") == 0 ||
					    strcmp(k, "pushes") == 0 ||
					    mig_has_prefix(k, "push:") ||
					    mig_has_prefix(k, "deal:") ||
					    mig_has_prefix(k, "dealentry:") ||
					    mig_has_prefix(k, "report:"));
				else
					left += mig_tag_of(m, k, &name) != MIG_ALL ||
					    mig_is_codeout(k) || mig_is_pool_side(k);
				left += mig_global_name(k, m->to_shards, other, sizeof(other)) != 0;
				continue;
			}
			rc = m->to_shards ? mig_key_to_shards(m, k) : mig_key_to_single(m, k);
			if (rc < 0) {
				freeReplyObject(r);
				return -1;
			}
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0") != 0);
	if (!verify && mig_ok(mig_cmd(m, "HDEL", MIG_KEY, "cursor", NULL)) < 0)
		return -1;
	return left;
}

/* ---- checks ---- */

int
mig_consumers_active(struct ctl_conn *k, const char *stream, const char *group)
{
	redisReply *r = ctl_command(k, "XINFO CONSUMERS %s %s", stream, group);
	size_t i, f;

	if (r == NULL) {
		fprintf(stderr, "dealpushctl: migrate: redis: XINFO CONSUMERS %s: %s\n", stream,
		    ctl_errstr(k));
		return -1;
	}
	/* An error reply (no such stream or group): nobody reads there. */
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *c = r->element[i];
		const char *name = "?";
		long long idle = -1;

		for (f = 0; c->type == REDIS_REPLY_ARRAY && f + 1 < c->elements; f += 2) {
			const redisReply *n = c->element[f], *v = c->element[f + 1];

			if (n->type != REDIS_REPLY_STRING)
				continue;
			if (strcmp(n->str, "name") == 0 && v->type == REDIS_REPLY_STRING)
				name = v->str;
			else if (strcmp(n->str, "idle") == 0 && v->type == REDIS_REPLY_INTEGER)
				idle = v->integer;
		}
		if (idle >= 0 && idle < MIG_IDLE_MS) {
			fprintf(stderr, "dealpushctl: migrate: refused: consumer %.100s of group %s"
			    " on %s was active %lld ms ago (a notifier running?); stop every"
			    " notifier and try again in %lld s\n", name, group, stream, idle,
			    (MIG_IDLE_MS - idle) / 1000 + 1);
			freeReplyObject(r);
			return 1;
		}
	}
	freeReplyObject(r);
	return 0;
}

int
mig_stream_readers(redisContext *c, const char *where)
{
	redisReply *r = redisCommand(c, "CLIENT LIST");
	const char *p;

	if (r == NULL || r->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "dealpushctl: migrate: redis%s%s: CLIENT LIST: %s\n",
		    where[0] ? " at " : "", where, r == NULL ? c->errstr :
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		freeReplyObject(r);
		return -1;
	}
	for (p = r->str; (p = strstr(p, " cmd=")) != NULL; p += 5) {
		if (strncmp(p + 5, "xreadgroup ", 11) == 0 || strncmp(p + 5, "xread ", 6) == 0) {
			fprintf(stderr, "dealpushctl: migrate: refused: a client is reading a stream"
			    "%s%s (CLIENT LIST: %.*s): stop every notifier first\n",
			    where[0] ? " on " : "", where, (int)strcspn(p + 1, " "), p + 1);
			freeReplyObject(r);
			return 1;
		}
	}
	freeReplyObject(r);
	return 0;
}

/* 1 when a notifier looks alive (after printing why), 0 when not, -1 on error: a
 * client whose last command is XREADGROUP or XREAD (a notifier's readers block there
 * all the time), or a consumer of notifier/deals, deliver on "pushes" or on any
 * shard's, or attribution/conversions seen in the last MIG_IDLE_MS. */
static int
mig_notifier_running(struct mig *m)
{
	static const char *const groups[3][2] = { { "deals", "notifier" },
	    { "pushes", "deliver" }, { "conversions", "attribution" } };
	size_t g;
	int rc;

	if ((rc = mig_stream_readers(m->c, "")) != 0)
		return rc;
	for (g = 0; g < 3; g++)
		if ((rc = mig_consumers_active(&m->k, groups[g][0], groups[g][1])) != 0)
			return rc;
	return 0;
}

/* As mig_notifier_running for every shard's group on "deals" (s<K>). */
static int
mig_shard_groups_active(struct mig *m)
{
	char group[KEYS_GROUP_MAX];
	uint32_t k;
	int rc;

	for (k = 0; k < m->n; k++) {
		snprintf(group, sizeof(group), "s%u", (unsigned)k);
		if ((rc = mig_consumers_active(&m->k, "deals", group)) != 0)
			return rc;
	}
	return 0;
}

/* As mig_notifier_running for every shard's "pushes" (the layout's tags known). */
static int
mig_shard_readers_active(struct mig *m)
{
	char stream[MIG_NAME_MAX];
	uint32_t k;
	int rc;

	for (k = 0; k < m->n; k++)
		if (mig_name(m, k, "pushes", stream, sizeof(stream)) == 0 &&
		    (rc = mig_consumers_active(&m->k, stream, "deliver")) != 0)
			return rc;
	return 0;
}

/* 1 when a key matching pattern exists (SCAN MATCH), 0 when not, -1 on error. */
static int
mig_any(struct mig *m, const char *pattern)
{
	char cursor[32] = "0";
	int found = 0;

	do {
		const char *argv[6] = { "SCAN", cursor, "MATCH", pattern, "COUNT", "1000" };
		redisReply *r = mig_argv(m, 6, argv, NULL);

		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
			freeReplyObject(r);
			return -1;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		found = r->element[1]->elements > 0;
		freeReplyObject(r);
	} while (!found && strcmp(cursor, "0") != 0);
	return found;
}

/* HGET of one field of key into buf ("" when absent); -1 after printing. */
static int
mig_hget(struct mig *m, const char *key, const char *field, char *buf, size_t size)
{
	redisReply *r = mig_cmd(m, "HGET", key, field, NULL);

	if (r == NULL)
		return -1;
	snprintf(buf, size, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
	return 0;
}

/* ---- the command ---- */

static int
mig_usage(void)
{
	fprintf(stderr, "dealpushctl: migrate wants --to-shards S (S from 1 to %d), "
	    "--to-single, or --from-cluster IP:PORT[,IP:PORT...]\n", SHARD_MAX);
	return CTL_FAIL;
}

int
ctl_cmd_migrate(redisContext *c, int argc, char **argv)
{
	struct mig m;
	struct shard_layout *l = NULL;
	struct err err;
	char version[32], shards[16], hash[64], created[32], to[16], *tags = NULL;
	char want_shards[16] = "";
	int rc = CTL_FAIL, running, upgrade = 0;
	long left;

	memset(&m, 0, sizeof(m));
	m.c = c;
	m.k.c = c;
	if (argc == 2 && strcmp(argv[0], "--to-shards") == 0) {
		char *end = NULL;
		unsigned long s = strtoul(argv[1], &end, 10);

		if (end == argv[1] || *end != '\0' || argv[1][0] == '-' || s < 1 ||
		    s > SHARD_MAX)
			return mig_usage();
		m.to_shards = 1;
		m.n = (uint32_t)s;
		snprintf(want_shards, sizeof(want_shards), "%lu", s);
	} else if (!(argc == 1 && strcmp(argv[0], "--to-single") == 0)) {
		return mig_usage();
	}
	if ((tags = malloc(MIG_TAGS_MAX)) == NULL)
		return CTL_FAIL;
	if (mig_hget(&m, LAYOUT_KEY, "version", version, sizeof(version)) < 0 ||
	    mig_hget(&m, LAYOUT_KEY, "shards", shards, sizeof(shards)) < 0 ||
	    mig_hget(&m, LAYOUT_KEY, "hash", hash, sizeof(hash)) < 0 ||
	    mig_hget(&m, LAYOUT_KEY, "tags", tags, MIG_TAGS_MAX) < 0 ||
	    mig_hget(&m, LAYOUT_KEY, "created", created, sizeof(created)) < 0 ||
	    mig_hget(&m, MIG_KEY, "to", to, sizeof(to)) < 0)
		goto out;
	/* Which state this Redis is in, and whether the command fits it. */
	if (strcmp(version, MIG_VERSION_COPY) == 0) {
		fprintf(stderr, "dealpushctl: migrate: refused: a copy from a Redis Cluster "
		    "into this Redis has not finished (" MIG_COPY_KEY "); run dealpushctl "
		    "--redis HOST:PORT migrate --from-cluster SEEDS again to finish it\n");
		rc = CTL_BAD_INPUT;
		goto out;
	}
	if (to[0] != '\0' && strcmp(to, m.to_shards ? "shards" : "single") != 0) {
		fprintf(stderr, "dealpushctl: migrate: refused: a migration to the %s layout "
		    "has not finished (" MIG_KEY "); run it again to finish it first\n",
		    strcmp(to, "shards") == 0 ? "sharded" : "single-instance");
		rc = CTL_BAD_INPUT;
		goto out;
	}
	if (m.to_shards) {
		/* A sharded layout of a release before each shard had its group on deals
		 * (group "notifier", global deal:<id>): the same --to-shards finishes it. */
		if (strcmp(version, SHARD_LAYOUT_VERSION) == 0 &&
		    strcmp(shards, want_shards) == 0 && (upgrade = mig_deals_single_group(&m)) < 0)
			goto out;
		if (strcmp(version, SHARD_LAYOUT_VERSION) == 0 && !upgrade) {
			fprintf(stderr, "dealpushctl: migrate: refused: this Redis is in the "
			    "sharded layout already (%s shards)\n", shards);
			rc = CTL_BAD_INPUT;
			goto out;
		}
		if (version[0] != '\0' && !upgrade &&
		    !(strcmp(version, MIG_VERSION_SHARDS) == 0 &&
		    strcmp(shards, want_shards) == 0)) {
			fprintf(stderr, "dealpushctl: migrate: refused: " LAYOUT_KEY " says version"
			    " '%s' with %s shards; resume with the same --to-shards\n", version,
			    shards);
			rc = CTL_BAD_INPUT;
			goto out;
		}
	} else {
		if (version[0] == '\0') {
			fprintf(stderr, "dealpushctl: migrate: refused: this Redis is in the "
			    "single-instance layout already\n");
			rc = CTL_BAD_INPUT;
			goto out;
		}
		if (strcmp(version, SHARD_LAYOUT_VERSION) != 0 &&
		    strcmp(version, MIG_VERSION_SINGLE) != 0) {
			fprintf(stderr, "dealpushctl: migrate: refused: " LAYOUT_KEY " says version"
			    " '%s'\n", version);
			rc = CTL_BAD_INPUT;
			goto out;
		}
	}
	if ((running = mig_notifier_running(&m)) != 0) {
		rc = running < 0 ? CTL_FAIL : CTL_BAD_INPUT;
		goto out;
	}
	err_clear(&err);
	if (m.to_shards) {
		int old;

		if ((old = mig_any(&m, "consent_history:*")) != 0 ||
		    (old = mig_any(&m, "consent_log:*")) != 0) {
			if (old > 0)
				fprintf(stderr, "dealpushctl: migrate: refused: consent records of an"
				    " earlier version are left; run dealpushctl consent migrate"
				    " first\n");
			rc = old > 0 ? CTL_BAD_INPUT : CTL_FAIL;
			goto out;
		}
		if (upgrade ? (l = shard_layout_parse(SHARD_LAYOUT_VERSION, shards, hash, tags,
		    &err)) == NULL : ((l = shard_layout_new(m.n, &err)) == NULL ||
		    shard_layout_tags(l, tags, MIG_TAGS_MAX) < 0)) {
			fprintf(stderr, "dealpushctl: migrate: %s\n", l ? "out of memory" : err.msg);
			goto out;
		}
		if (version[0] == '\0')
			snprintf(created, sizeof(created), "%lld", (long long)time(NULL));
	} else if ((l = shard_layout_parse(SHARD_LAYOUT_VERSION, shards, hash, tags,
	    &err)) == NULL) {
		fprintf(stderr, "dealpushctl: migrate: the stored layout: %s\n", err.msg);
		goto out;
	}
	m.l = l;
	m.n = shard_layout_count(l);
	if ((running = mig_shard_readers_active(&m)) != 0 ||
	    (running = mig_shard_groups_active(&m)) != 0 ||
	    (running = mig_deals_groups_check(&m)) != 0) {
		rc = running < 0 ? CTL_FAIL : CTL_BAD_INPUT;
		goto out;
	}
	if (ctl_load_script(c, "migrate_move", m.sha) < 0)
		goto out;
	/* First write: the progress key and the layout's unfinished version, together:
	 * from here every notifier and dealpushctl command refuses this Redis. */
	{
		const char *mv = m.to_shards ? MIG_VERSION_SHARDS : MIG_VERSION_SINGLE;
		char ns[16], now[24];

		snprintf(ns, sizeof(ns), "%u", m.n);
		snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
		if (mig_ok(mig_cmd(&m, "MULTI", NULL, NULL, NULL)) < 0)
			goto out;
		redisAppendCommand(c, "HSET %s to %s shards %s started %s", MIG_KEY,
		    m.to_shards ? "shards" : "single", ns, now);
		redisAppendCommand(c, "HSET %s version %s shards %s hash %s tags %s created %s",
		    LAYOUT_KEY, mv, ns, SHARD_HASH_NAME, tags, created);
		redisAppendCommand(c, "EXEC");
		if (ctl_expect_reply(c, REDIS_REPLY_STATUS, "QUEUED", "HSET " MIG_KEY,
		    NULL) < 0 || ctl_expect_reply(c, REDIS_REPLY_STATUS, "QUEUED",
		    "HSET " LAYOUT_KEY, NULL) < 0 ||
		    ctl_expect_reply(c, REDIS_REPLY_ARRAY, NULL, "EXEC", NULL) < 0)
			goto out;
	}
	printf("migrating to the %s layout (%u shards)\n", m.to_shards ? "sharded" :
	    "single-instance", m.n);
	if (!m.to_shards && (mig_codes_to_single(&m) < 0 ||
	    mig_codes_orphans_to_single(&m) < 0))
		goto out;
	if (mig_walk(&m, 0) < 0)
		goto out;
	if (!m.to_shards && (mig_merge_streams(&m, "pushes:log") < 0 ||
	    mig_merge_streams(&m, "subscribers:changes") < 0))
		goto out;
	if (m.to_shards && mig_codes_to_shards(&m) < 0)
		goto out;
	if (mig_sids(&m) < 0 || mig_phone_index(&m) < 0 || mig_deals_groups(&m) < 0)
		goto out;
	if ((left = mig_walk(&m, 1)) != 0) {
		if (left > 0)
			fprintf(stderr, "dealpushctl: migrate: %ld keys are left in the old "
			    "layout; run it again\n", left);
		goto out;
	}
	/* Last write: the layout finished (or gone), and the progress key. */
	if (mig_ok(mig_cmd(&m, "MULTI", NULL, NULL, NULL)) < 0)
		goto out;
	if (m.to_shards)
		redisAppendCommand(c, "HSET %s version %s", LAYOUT_KEY, SHARD_LAYOUT_VERSION);
	else
		redisAppendCommand(c, "DEL %s", LAYOUT_KEY);
	redisAppendCommand(c, "DEL %s", MIG_KEY);
	redisAppendCommand(c, "EXEC");
	if (ctl_expect_reply(c, REDIS_REPLY_STATUS, "QUEUED", "layout", NULL) < 0 ||
	    ctl_expect_reply(c, REDIS_REPLY_STATUS, "QUEUED", "DEL " MIG_KEY, NULL) < 0 ||
	    ctl_expect_reply(c, REDIS_REPLY_ARRAY, NULL, "EXEC", NULL) < 0)
		goto out;
	printf("migrated: %lu keys moved; the %s layout is in force\n", m.moved,
	    m.to_shards ? "sharded" : "single-instance");
	rc = CTL_OK;
out:
	shard_layout_free(l);
	free(tags);
	return rc;
}
