/*
 * ctl_formats.c: dealpushctl's side of the stored format version (stage: tool):
 * the check every Redis command makes first, `formats show` and `formats upgrade`
 * (docs/operations.md, "Rolling upgrades").
 *
 * `upgrade` raises the deployment only when every live notifier reads the new
 * version; a consumer of the streams that announces nothing is an older release
 * (1.0.0 announces nothing and reads version 1 only). Must never raise it past what
 * this dealpushctl reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "formats.h"
#include "keys.h"
#include "scripts.h"
#include "version.h"

#include "ctl_int.h"

/* A stream consumer idle for less than this is live (notifiers read every
 * ingest.block_ms, 1 s by default). */
#define CTL_FORMATS_LIVE_MS 30000LL
#define CTL_FORMATS_NAMES 256

/* The groups whose consumers are notifiers: every shard's on "deals" (the second
 * name is the single-instance one), and every shard's "pushes" (keys.h). */
static const char *const ctl_formats_groups[][2] = {
	{ "deals", "notifier" }, { "pushes", "deliver" },
};

struct ctl_reader {
	char name[128];
	int reads;                        /* 0: announces nothing */
	char release[FORMATS_RELEASE_MAX + 1];
	long long until_ms;
	long long idle_ms;                /* -1: not a consumer of the streams */
	long long pending;
};

struct ctl_readers {
	struct ctl_reader r[CTL_FORMATS_NAMES];
	size_t n;
	int version;                      /* the deployment's */
	long long now_ms;                 /* Redis' clock */
};

/* The reader named name (len bytes), added when new; NULL when the table is full. */
static struct ctl_reader *
ctl_reader_of(struct ctl_readers *t, const char *name, size_t len)
{
	struct ctl_reader *r;
	size_t i;

	if (len >= sizeof(t->r[0].name))
		len = sizeof(t->r[0].name) - 1;
	for (i = 0; i < t->n; i++)
		if (strlen(t->r[i].name) == len && memcmp(t->r[i].name, name, len) == 0)
			return &t->r[i];
	if (t->n == CTL_FORMATS_NAMES)
		return NULL;
	r = &t->r[t->n++];
	memset(r, 0, sizeof(*r));
	memcpy(r->name, name, len);
	r->name[len] = '\0';
	r->idle_ms = -1;
	return r;
}

/* The deployment's version from HGET's reply: 1 when absent; -1 when not a version. */
static int
ctl_formats_version(const redisReply *r)
{
	if (r->type == REDIS_REPLY_NIL)
		return 1;
	if (r->type != REDIS_REPLY_STRING)
		return -1;
	return formats_parse(r->str, r->len);
}

int
ctl_formats_check(struct ctl_conn *c)
{
	char key[KEYS_SHARD_MAX];
	redisReply *r;
	int v;

	if (keys_formats(key, sizeof(key)) < 0)
		return CTL_FAIL;
	if ((r = ctl_command(c, "HGET %s %s", key, FORMATS_KEY_FIELD)) == NULL ||
	    r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "dealpushctl: redis: HGET %s: %s\n", key,
		    r == NULL ? ctl_errstr(c) : r->str);
		freeReplyObject(r);
		return CTL_FAIL;
	}
	v = ctl_formats_version(r);
	freeReplyObject(r);
	if (formats_classify(v) != FORMATS_OK) {
		fprintf(stderr, "dealpushctl: event=format_mismatch: the deployment's stored "
		    "format is %s; this dealpushctl (%s) reads formats %d-%d: use the "
		    "release the notifiers run\n", v < 0 ? "not a version" : "newer",
		    DEALPUSH_VERSION, FORMATS_READ_MIN, FORMATS_READ_MAX);
		return FORMATS_EXIT_MISMATCH;
	}
	formats_set_write(v);
	return CTL_OK;
}

/* Redis' clock in epoch ms into *ms. 0, or -1 after printing. */
static int
ctl_redis_now_ms(struct ctl_conn *c, long long *ms)
{
	redisReply *r;

	if ((r = ctl_command_expect(c, ctl_command(c, "TIME"), REDIS_REPLY_ARRAY,
	    "TIME")) == NULL)
		return -1;
	if (r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "dealpushctl: redis: TIME: unexpected reply\n");
		freeReplyObject(r);
		return -1;
	}
	*ms = strtoll(r->element[0]->str, NULL, 10) * 1000 +
	    strtoll(r->element[1]->str, NULL, 10) / 1000;
	freeReplyObject(r);
	return 0;
}

/* The consumers of one group (XINFO CONSUMERS): idle and pending into t. A missing
 * stream or group has none. 0, or -1 after printing. */
static int
ctl_formats_consumers(struct ctl_conn *c, struct ctl_readers *t, const char *stream,
    const char *group)
{
	redisReply *r;
	size_t i, j;

	if ((r = ctl_command(c, "XINFO CONSUMERS %s %s", stream, group)) == NULL) {
		fprintf(stderr, "dealpushctl: redis: XINFO CONSUMERS: %s\n", ctl_errstr(c));
		return -1;
	}
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *e = r->element[i];
		const char *name = NULL;
		size_t nlen = 0;
		long long idle = -1, pending = 0;
		struct ctl_reader *rd;

		for (j = 0; e->type == REDIS_REPLY_ARRAY && j + 1 < e->elements; j += 2) {
			const redisReply *k = e->element[j], *v = e->element[j + 1];

			if (k->type != REDIS_REPLY_STRING)
				continue;
			if (strcmp(k->str, "name") == 0 && v->type == REDIS_REPLY_STRING) {
				name = v->str;
				nlen = v->len;
			} else if (strcmp(k->str, "idle") == 0 && v->type == REDIS_REPLY_INTEGER) {
				idle = v->integer;
			} else if (strcmp(k->str, "pending") == 0 &&
			    v->type == REDIS_REPLY_INTEGER) {
				pending = v->integer;
			}
		}
		if (name == NULL || (rd = ctl_reader_of(t, name, nlen)) == NULL)
			continue;
		if (rd->idle_ms < 0 || idle < rd->idle_ms)
			rd->idle_ms = idle;
		rd->pending += pending;
	}
	freeReplyObject(r);   /* an error reply (no such stream or group): none */
	return 0;
}

/* Reads the deployment's version, the announcements and the consumers into t.
 * CTL_OK, or CTL_FAIL after printing. */
static int
ctl_formats_read(struct ctl_conn *c, struct ctl_readers *t)
{
	char key[KEYS_SHARD_MAX];
	redisReply *r;
	size_t i, k;

	memset(t, 0, sizeof(*t));
	if (keys_formats(key, sizeof(key)) < 0 || ctl_redis_now_ms(c, &t->now_ms) < 0)
		return CTL_FAIL;
	if ((r = ctl_command_expect(c, ctl_command(c, "HGETALL %s", key),
	    REDIS_REPLY_ARRAY, "HGETALL dealpush:formats")) == NULL)
		return CTL_FAIL;
	t->version = 1;
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
		const redisReply *f = r->element[i], *v = r->element[i + 1];
		const size_t np = strlen(FORMATS_READER_PREFIX);
		struct ctl_reader *rd, tmp;

		if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(f->str, FORMATS_KEY_FIELD) == 0) {
			t->version = formats_parse(v->str, v->len);
			continue;
		}
		if (f->len <= np || strncmp(f->str, FORMATS_READER_PREFIX, np) != 0 ||
		    formats_reader_parse(v->str, &tmp.reads, tmp.release, sizeof(tmp.release),
		    &tmp.until_ms) < 0 ||
		    (rd = ctl_reader_of(t, f->str + np, f->len - np)) == NULL)
			continue;
		rd->reads = tmp.reads;
		memcpy(rd->release, tmp.release, sizeof(rd->release));
		rd->until_ms = tmp.until_ms;
	}
	freeReplyObject(r);
	/* Every shard's stream "pushes", and every shard's group on "deals". */
	for (k = 0; k < sizeof(ctl_formats_groups) / sizeof(ctl_formats_groups[0]); k++) {
		int pushes = strcmp(ctl_formats_groups[k][0], "pushes") == 0;
		uint32_t sh;

		for (sh = 0; sh < keys_shards(); sh++) {
			char stream[KEYS_SHARD_MAX], group[KEYS_GROUP_MAX];

			if (pushes) {
				(void)keys_shard_key(sh, KEYS_PUSHES, stream, sizeof(stream));
				snprintf(group, sizeof(group), "%s", ctl_formats_groups[k][1]);
			} else {
				snprintf(stream, sizeof(stream), "%s", ctl_formats_groups[k][0]);
				(void)keys_deals_group(sh, group, sizeof(group));
			}
			if (ctl_formats_consumers(c, t, stream, group) < 0)
				return CTL_FAIL;
		}
	}
	return CTL_OK;
}

/* 1 when rd may be running: its lease runs, or it read a stream lately, or it holds
 * pending entries (it may come back for them). */
static int
ctl_reader_live(const struct ctl_readers *t, const struct ctl_reader *rd)
{
	return rd->until_ms > t->now_ms ||
	    (rd->idle_ms >= 0 && rd->idle_ms < CTL_FORMATS_LIVE_MS) || rd->pending > 0;
}

/* What rd reads, as far as anyone can tell: its announcement while its lease runs;
 * a consumer that announces nothing is release 1.0.0 or older (format 1). */
static int
ctl_reader_reads(const struct ctl_readers *t, const struct ctl_reader *rd)
{
	return rd->until_ms > t->now_ms ? rd->reads : 1;
}

int
ctl_cmd_formats_show(struct ctl_conn *c)
{
	struct ctl_readers *t;
	size_t i;
	int rc;

	if ((t = malloc(sizeof(*t))) == NULL) {
		fprintf(stderr, "dealpushctl: out of memory\n");
		return CTL_FAIL;
	}
	if ((rc = ctl_formats_read(c, t)) != CTL_OK)
		goto out;
	if (t->version < 0)
		printf("format   not a version (field " FORMATS_KEY_FIELD " of "
		    "dealpush:formats)\n");
	else
		printf("format   %d\n", t->version);
	printf("reads    %d-%d (this dealpushctl, %s)\n", FORMATS_READ_MIN,
	    FORMATS_READ_MAX, DEALPUSH_VERSION);
	for (i = 0; i < t->n; i++) {
		const struct ctl_reader *rd = &t->r[i];

		printf("notifier %s  reads %d  release %s  %s", rd->name,
		    ctl_reader_reads(t, rd), rd->until_ms > t->now_ms ? rd->release :
		    rd->reads > 0 ? "(lease ended)" : "(announces nothing: 1.0.0 or older)",
		    ctl_reader_live(t, rd) ? "live" : "gone");
		if (rd->idle_ms >= 0)
			printf("  idle %lld ms  pending %lld", rd->idle_ms, rd->pending);
		printf("\n");
	}
out:
	free(t);
	return rc;
}

int
ctl_cmd_formats_upgrade(struct ctl_conn *c, int argc, char **argv)
{
	char key[KEYS_SHARD_MAX], from[16], to[16];
	struct ctl_readers *t = NULL;
	int rc = CTL_FAIL, want = FORMATS_READ_MAX, old = 0;
	redisReply *r = NULL;
	size_t i;

	if (argc == 2 && strcmp(argv[0], "--to") == 0) {
		want = formats_parse(argv[1], strlen(argv[1]));
		if (formats_classify(want) != FORMATS_OK) {
			fprintf(stderr, "dealpushctl: formats upgrade: --to must be %d..%d (the "
			    "formats this dealpushctl reads)\n", FORMATS_READ_MIN,
			    FORMATS_READ_MAX);
			return CTL_BAD_INPUT;
		}
	} else if (argc != 0) {
		fprintf(stderr, "usage: dealpushctl formats upgrade [--to N]\n");
		return CTL_FAIL;
	}
	if ((t = malloc(sizeof(*t))) == NULL) {
		fprintf(stderr, "dealpushctl: out of memory\n");
		return CTL_FAIL;
	}
	if (ctl_formats_read(c, t) != CTL_OK || keys_formats(key, sizeof(key)) < 0)
		goto out;
	if (formats_classify(t->version) != FORMATS_OK) {
		fprintf(stderr, "dealpushctl: formats upgrade: refused: the stored format is "
		    "not one this dealpushctl reads (%d-%d)\n", FORMATS_READ_MIN,
		    FORMATS_READ_MAX);
		rc = FORMATS_EXIT_MISMATCH;
		goto out;
	}
	if (t->version >= want) {
		printf("format %d already (nothing to do)\n", t->version);
		rc = CTL_OK;
		goto out;
	}
	for (i = 0; i < t->n; i++) {
		const struct ctl_reader *rd = &t->r[i];

		if (!ctl_reader_live(t, rd) || ctl_reader_reads(t, rd) >= want)
			continue;
		if (old++ == 0)
			fprintf(stderr, "dealpushctl: formats upgrade: refused: these notifiers "
			    "read format %d at most; upgrade or stop them first:\n", want - 1);
		if (rd->until_ms > t->now_ms)
			fprintf(stderr, "  %s: release %s reads up to format %d\n", rd->name,
			    rd->release, rd->reads);
		else
			fprintf(stderr, "  %s: announces nothing (release 1.0.0 or older, reads "
			    "format 1); idle %lld ms, %lld pending\n", rd->name, rd->idle_ms,
			    rd->pending);
	}
	if (old > 0) {
		rc = CTL_BAD_INPUT;
		goto out;
	}
	/* Compare and set: refused when the version moved or a lease changed since. */
	snprintf(from, sizeof(from), "%d", t->version);
	snprintf(to, sizeof(to), "%d", want);
	{
		const char *src = script_source("formats_set");

		if (src == NULL)
			goto out;
		r = ctl_command(c, "EVAL %s 1 %s %s %s", src, key, from, to);
	}
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "dealpushctl: redis: formats_set.lua: %s\n", r == NULL ?
		    ctl_errstr(c) : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		goto out;
	}
	if (strcmp(r->element[0]->str, "ok") == 0) {
		printf("format raised: %d -> %d\n", t->version, want);
		rc = CTL_OK;
	} else if (strcmp(r->element[0]->str, "moved") == 0) {
		fprintf(stderr, "dealpushctl: formats upgrade: refused: the format changed "
		    "meanwhile; run it again\n");
	} else {
		fprintf(stderr, "dealpushctl: formats upgrade: refused: a notifier announced "
		    "meanwhile that it reads less:\n");
		for (i = 1; i + 2 < r->elements; i += 3)
			fprintf(stderr, "  %s: release %s reads up to format %s\n",
			    r->element[i]->str, r->element[i + 2]->str, r->element[i + 1]->str);
		rc = CTL_BAD_INPUT;
	}
out:
	freeReplyObject(r);
	free(t);
	return rc;
}
