/*
 * ctl_layout.c: dealpushctl's side of the key layout (stage: outside the pipeline):
 * the check every Redis command makes before it names a key, `layout create` and
 * `layout show` (docs/sharding.md, section 1.1).
 *
 * It must never write a layout over data stored in another layout: create is refused
 * when a layout exists or when the single-instance layout's keys do (moving them is
 * `dealpushctl migrate`).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "layout.h"
#include "shard.h"

#include "ctl_int.h"

/* Tags of SHARD_MAX shards, space-separated, and the NUL. */
#define CTL_TAGS_MAX (SHARD_MAX * SHARD_TAG_MAX)

/* HMGET of the layout's fields. Returns 0 with the reply in *out (caller frees), or
 * with *out NULL when the key is not a hash (WRONGTYPE: not a layout), or -1 after
 * printing. */
static int
layout_read(struct ctl_conn *c, redisReply **out)
{
	redisReply *r;

	*out = NULL;
	if ((r = ctl_command(c, LAYOUT_HMGET)) == NULL) {
		fprintf(stderr, "dealpushctl: redis: HMGET " LAYOUT_KEY ": %s\n", ctl_errstr(c));
		return -1;
	}
	if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) != 0) {
		fprintf(stderr, "dealpushctl: redis: HMGET " LAYOUT_KEY ": %s\n", r->str);
		freeReplyObject(r);
		return -1;
	}
	if (r->type == REDIS_REPLY_ARRAY)
		*out = r;
	else
		freeReplyObject(r);
	return 0;
}

int
ctl_layout_check(struct ctl_conn *c)
{
	struct shard_layout *l;
	struct err err;
	redisReply *r;
	int rc;

	if (layout_read(c, &r) < 0)
		return CTL_FAIL;
	err_clear(&err);
	rc = layout_from_reply(r, 0, &l, &err);
	freeReplyObject(r);
	if (rc < 0) {
		fprintf(stderr, "dealpushctl: event=layout_mismatch field=%s: %s\n", err.field,
		    err.msg);
		return err.kind == ERR_NOMEM ? CTL_FAIL : LAYOUT_EXIT_MISMATCH;
	}
	layout_set(l);
	return CTL_OK;
}

/* 1 when the single-instance layout holds data (key subscribers, or group notifier on
 * stream deals), 0 when not, -1 after printing. what names it. */
static int
single_layout_in_use(struct ctl_conn *c, const char **what)
{
	redisReply *r = NULL;
	size_t i;
	int found = 0;

	if ((r = ctl_command_expect(c, ctl_command(c, "EXISTS subscribers"),
	    REDIS_REPLY_INTEGER, "EXISTS subscribers")) == NULL)
		return -1;
	found = r->integer > 0;
	freeReplyObject(r);
	if (found) {
		*what = "key subscribers";
		return 1;
	}
	if ((r = ctl_command(c, "XINFO GROUPS deals")) == NULL) {
		fprintf(stderr, "dealpushctl: redis: XINFO GROUPS deals: %s\n", ctl_errstr(c));
		return -1;
	}
	/* An error reply: no stream deals, so no group. */
	for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && !found; i++) {
		const redisReply *g = r->element[i];
		size_t k;

		for (k = 0; g->type == REDIS_REPLY_ARRAY && k + 1 < g->elements; k += 2)
			if (g->element[k]->type == REDIS_REPLY_STRING &&
			    strcmp(g->element[k]->str, "name") == 0 &&
			    g->element[k + 1]->type == REDIS_REPLY_STRING &&
			    strcmp(g->element[k + 1]->str, "notifier") == 0)
				found = 1;
	}
	freeReplyObject(r);
	if (found)
		*what = "group notifier on stream deals";
	return found;
}

/* Parses "--shards S". Returns S, or 0 after printing a usage error. */
static unsigned long
parse_shards(int argc, char **argv)
{
	unsigned long s = 0;
	char *end = NULL;

	if (argc == 2 && strcmp(argv[0], "--shards") == 0) {
		errno = 0;
		s = strtoul(argv[1], &end, 10);
		if (errno != 0 || end == argv[1] || *end != '\0' || argv[1][0] == '-')
			s = 0;
	}
	if (s < 1 || s > SHARD_MAX) {
		fprintf(stderr, "dealpushctl: layout create wants --shards S, S from 1 to %d\n",
		    SHARD_MAX);
		return 0;
	}
	return s;
}

int
ctl_cmd_layout_create(struct ctl_conn *c, int argc, char **argv)
{
	struct shard_layout *l = NULL;
	const char *what = NULL;
	char sha[41], shards[16], created[24], *tags = NULL;
	redisReply *r = NULL;
	unsigned long s;
	struct err err;
	int rc = CTL_FAIL, used;

	if ((s = parse_shards(argc, argv)) == 0)
		return CTL_FAIL;
	if ((used = single_layout_in_use(c, &what)) < 0)
		return CTL_FAIL;
	if (used) {
		fprintf(stderr, "dealpushctl: layout create: refused: this Redis holds data in "
		    "the single-instance layout (%s); run dealpushctl migrate --to-shards %lu\n",
		    what, s);
		return CTL_BAD_INPUT;
	}
	err_clear(&err);
	if ((l = shard_layout_new((uint32_t)s, &err)) == NULL) {
		fprintf(stderr, "dealpushctl: layout create: %s\n", err.msg);
		return CTL_FAIL;
	}
	if ((tags = malloc(CTL_TAGS_MAX)) == NULL ||
	    shard_layout_tags(l, tags, CTL_TAGS_MAX) < 0) {
		fprintf(stderr, "dealpushctl: layout create: out of memory\n");
		goto out;
	}
	if (ctl_conn_load_script(c, "layout_create", sha) < 0)
		goto out;
	snprintf(shards, sizeof(shards), "%lu", s);
	snprintf(created, sizeof(created), "%lld", (long long)time(NULL));
	{
		/* ORDER LAYOUT_FIELDS */
		const char *args[] = { "EVALSHA", sha, "1", LAYOUT_KEY, SHARD_LAYOUT_VERSION,
			shards, SHARD_HASH_NAME, tags, created };

		r = ctl_command_expect(c, ctl_command_argv(c, 9, args, NULL),
		    REDIS_REPLY_STRING, "layout_create.lua");
	}
	if (r == NULL)
		goto out;
	if (strcmp(r->str, "exists") == 0) {
		fprintf(stderr, "dealpushctl: layout create: refused: " LAYOUT_KEY " exists "
		    "(dealpushctl layout show)\n");
		rc = CTL_BAD_INPUT;
		goto out;
	}
	printf("layout created: %lu shards\n", s);
	rc = CTL_OK;
out:
	freeReplyObject(r);
	free(tags);
	shard_layout_free(l);
	return rc;
}

int
ctl_cmd_layout_show(struct ctl_conn *c)
{
	static const char *const names[LAYOUT_NFIELDS] = {
		"version", "shards", "hash", "tags", "created"
	};
	struct shard_layout *l = NULL;
	struct err err;
	redisReply *r;
	uint32_t i;
	int rc;

	if (layout_read(c, &r) < 0)
		return CTL_FAIL;
	err_clear(&err);
	rc = layout_from_reply(r, 0, &l, &err);
	if (rc == 0 && l == NULL) {
		printf("layout single (no " LAYOUT_KEY ")\n");
		freeReplyObject(r);
		return CTL_OK;
	}
	for (i = 0; r != NULL && r->elements == LAYOUT_NFIELDS && i < LAYOUT_NFIELDS;
	    i++)
		if (r->element[i]->type == REDIS_REPLY_STRING && i != LAYOUT_TAGS)
			printf("%-8s %s\n", names[i], r->element[i]->str);
	freeReplyObject(r);
	if (rc < 0) {
		fprintf(stderr, "dealpushctl: event=layout_mismatch field=%s: %s\n", err.field,
		    err.msg);
		return err.kind == ERR_NOMEM ? CTL_FAIL : LAYOUT_EXIT_MISMATCH;
	}
	for (i = 0; i < shard_layout_count(l); i++)
		printf("shard %u tag {%s} slot %d\n", i, shard_layout_tag(l, i),
		    shard_target_slot(i, shard_layout_count(l)));
	shard_layout_free(l);
	return CTL_OK;
}
