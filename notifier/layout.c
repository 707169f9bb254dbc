/*
 * layout.c: the layout key read at start-up and the layout in force (stage: start-up).
 *
 * Decides between the single-instance layout and a stored sharded one, refusing any
 * disagreement by naming the field. Never writes: the layout is created by
 * dealpushctl (layout create, migrate); the process-wide layout is set before any
 * reader starts and never changes afterwards.
 */
#include <string.h>

#include <stdlib.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "err.h"
#include "layout.h"
#include "log.h"
#include "rconn.h"
#include "shard.h"

struct layout_reader {
	struct rconn *cmd;
	struct event *retry;
	long config_shards;
	layout_done_fn *done;
	void *arg;
	int state;                     /* 0 to ask, 1 asked, 2 answered */
};

static struct shard_layout *layout_in_force;

/* The reply's field i as a string, or NULL when it is nil (absent). -1 in *bad when
 * it is neither. */
static const char *
field_str(const redisReply *r, size_t i, int *bad)
{
	const redisReply *e = r->element[i];

	if (e->type == REDIS_REPLY_NIL)
		return NULL;
	if (e->type != REDIS_REPLY_STRING) {
		*bad = 1;
		return NULL;
	}
	return e->str;
}

int
layout_from_reply(const redisReply *r, long config_shards, struct shard_layout **out,
    struct err *err)
{
	static const char *const names[LAYOUT_NFIELDS] = {
		"version", "shards", "hash", "tags", "created"
	};
	const char *v[LAYOUT_NFIELDS];
	struct shard_layout *l;
	int bad = 0, present = 0;
	size_t i;

	*out = NULL;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != LAYOUT_NFIELDS)
		return err_set(err, ERR_INPUT, "bad_layout", "layout", LAYOUT_KEY " is not a "
		    "hash of the layout's fields");
	for (i = 0; i < LAYOUT_NFIELDS; i++) {
		v[i] = field_str(r, i, &bad);
		if (bad)
			return err_set(err, ERR_INPUT, "bad_layout", names[i], "%s is not a "
			    "string", names[i]);
		present += v[i] != NULL;
	}
	if (present == 0) {
		if (config_shards > 0)
			return err_set(err, ERR_INPUT, "layout_missing", "shards", "the config "
			    "says shards = %ld but Redis holds no " LAYOUT_KEY ": create it "
			    "(dealpushctl layout create --shards %ld) or move the data to it "
			    "(dealpushctl migrate --shards %ld)", config_shards, config_shards,
			    config_shards);
		return 0;
	}
	if (v[LAYOUT_VERSION] != NULL && strncmp(v[LAYOUT_VERSION], "0-", 2) == 0)
		return err_set(err, ERR_INPUT, "layout_pending", "version", "version is '%s': "
		    "a migration has not finished (run dealpushctl migrate again to resume "
		    "it)", v[LAYOUT_VERSION]);
	if ((l = shard_layout_parse(v[LAYOUT_VERSION], v[LAYOUT_SHARDS], v[LAYOUT_HASH],
	    v[LAYOUT_TAGS], err)) == NULL)
		return -1;
	if (v[LAYOUT_CREATED] == NULL) {
		shard_layout_free(l);
		return err_set(err, ERR_INPUT, "bad_layout", "created", "created is missing");
	}
	if (config_shards > 0 && (unsigned long)config_shards != shard_layout_count(l)) {
		err_set(err, ERR_INPUT, "layout_mismatch", "shards", "the config says shards "
		    "= %ld, the stored layout has %u shards", config_shards,
		    shard_layout_count(l));
		shard_layout_free(l);
		return -1;
	}
	*out = l;
	return 0;
}

void
layout_set(struct shard_layout *l)
{
	shard_layout_free(layout_in_force);
	layout_in_force = l;
}

const struct shard_layout *
layout_current(void)
{
	return layout_in_force;
}

void
layout_clear(void)
{
	layout_set(NULL);
}

/* 1 when an XINFO GROUPS reply names group. */
static int
groups_have(const redisReply *reply, const char *group)
{
	size_t g, k;

	for (g = 0; reply->type == REDIS_REPLY_ARRAY && g < reply->elements; g++) {
		const redisReply *e = reply->element[g];

		for (k = 0; e->type == REDIS_REPLY_ARRAY && k + 1 < e->elements; k += 2)
			if (e->element[k]->type == REDIS_REPLY_STRING &&
			    strcmp(e->element[k]->str, "name") == 0 &&
			    e->element[k + 1]->type == REDIS_REPLY_STRING &&
			    strcmp(e->element[k + 1]->str, group) == 0)
				return 1;
	}
	return 0;
}

/* The groups on deals of a sharded layout: each shard's (s<K>), never "notifier",
 * whose readers planned into deal:<id> before each shard had its copy. A shard
 * group made now would start at the stream's beginning and plan every deal there
 * again: refused, naming what to run (dealpushctl migrate moves the groups and the
 * deals' keys). An error reply (no stream yet) is no group. */
static void
on_groups_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct layout_reader *r = arg;

	struct timeval tv = { 0, LAYOUT_RETRY_MS * 1000 };

	(void)rc;
	if (reply == NULL) {
		r->state = 0;   /* dropped: asked again at the next connect */
		layout_clear();
		return;
	}
	/* No stream yet is no group; any other error (LOADING ...) is not an answer. */
	if (reply->type == REDIS_REPLY_ERROR && strstr(reply->str, "no such key") == NULL) {
		log_warnx("event=layout_read_failed err=\"%s\" retry_ms=%d", reply->str,
		    LAYOUT_RETRY_MS);
		r->state = 0;
		layout_clear();
		evtimer_add(r->retry, &tv);
		return;
	}
	if (groups_have(reply, "notifier")) {
		log_errorx("event=layout_mismatch field=groups code=single_group err=\"deals "
		    "is read in group notifier, as before each shard had its own: stop every "
		    "notifier and run dealpushctl migrate --to-shards %u to move it\"",
		    shard_layout_count(layout_current()));
		r->done(r->arg, LAYOUT_EXIT_MISMATCH);
		return;
	}
	r->done(r->arg, 0);
}

static void
on_layout_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct layout_reader *r = arg;
	struct timeval tv = { 0, LAYOUT_RETRY_MS * 1000 };
	struct shard_layout *l;
	struct err err;

	(void)rc;
	r->state = 0;
	if (reply == NULL)
		return;   /* dropped or shut down: asked again at the next connect */
	if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "WRONGTYPE", 9) != 0) {
		log_warnx("event=layout_read_failed err=\"%s\" retry_ms=%d", reply->str,
		    LAYOUT_RETRY_MS);
		evtimer_add(r->retry, &tv);
		return;
	}
	r->state = 2;
	err_clear(&err);
	if (layout_from_reply(reply->type == REDIS_REPLY_ERROR ? NULL : reply,
	    r->config_shards, &l, &err) < 0) {
		log_errorx("event=layout_mismatch field=%s code=%s err=\"%s\"", err.field,
		    err.code, err.msg);
		r->done(r->arg, err.kind == ERR_NOMEM ? 1 : LAYOUT_EXIT_MISMATCH);
		return;
	}
	layout_set(l);
	if (l == NULL) {
		log_info("event=layout layout=single");
		r->done(r->arg, 0);
		return;
	}
	log_info("event=layout layout=sharded shards=%u", shard_layout_count(l));
	/* Sharded: deals must not still be read in the single group (a layout made
	 * before the shard groups, docs/sharding.md 4a). */
	if (rconn_cmd(r->cmd, on_groups_reply, r, 0, "XINFO GROUPS deals") < 0) {
		r->state = 0;   /* the whole layout asked again */
		layout_clear();
		evtimer_add(r->retry, &tv);
	}
}

static void
reader_ask(struct layout_reader *r)
{
	if (r->state == 0 && rconn_cmd(r->cmd, on_layout_reply, r, 0, LAYOUT_HMGET) == 0)
		r->state = 1;
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	reader_ask(arg);
}

struct layout_reader *
layout_reader_new(struct event_base *base, struct rconn *cmd, long config_shards,
    layout_done_fn *done, void *arg)
{
	struct layout_reader *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	if ((r->retry = evtimer_new(base, on_retry, r)) == NULL) {
		free(r);
		return NULL;
	}
	r->cmd = cmd;
	r->config_shards = config_shards;
	r->done = done;
	r->arg = arg;
	return r;
}

void
layout_reader_connected(struct layout_reader *r)
{
	if (r != NULL)
		reader_ask(r);
}

void
layout_reader_free(struct layout_reader *r)
{
	if (r == NULL)
		return;
	event_free(r->retry);
	free(r);
}
