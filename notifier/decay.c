/*
 * decay.c: engagement decay for pushes nobody clicked (stage: record).
 *
 * Once a second, when no step is out, for one shard after the other (keys.h): GET
 * the shard's engagement:decay (its cursor), XRANGE the shard's pushes:log after it,
 * then decay.lua with the shard's keys and one clicked:<push id> key per "sent" push
 * of the shard's subscribers in the batch; the others' entries only move the cursor
 * (every key a script touches is in its KEYS and of one shard). decay.lua writes nothing when another notifier moved the
 * cursor in between; the next tick reads again. Must never decay one push twice and
 * never block the loop.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "app.h"
#include "decay.h"
#include "keys.h"
#include "log.h"
#include "rconn.h"
#include "redisutil.h"
#include "scripts.h"

#define DECAY_TICK_MS 1000
#define DECAY_WINDOW_MS "259200000"     /* 72 h without a click */
#define DECAY_COUNT "200"               /* log entries per step */
#define DECAY_FACTOR "0.98"             /* e' = e x 0.98 per ignored push */

struct decay_step;

struct decay {
	const struct app *app;
	struct event *tick;
	struct decay_step *busy;        /* the step out, or NULL */
	uint32_t next_shard;            /* of the next step */
};

enum decay_stage {
	DECAY_CURSOR,                   /* GET the shard's engagement:decay */
	DECAY_LOG,                      /* XRANGE pushes:log (<cursor> + COUNT n */
	DECAY_SCRIPT                    /* decay.lua */
};

/* One step; detached (d NULL) when the module is freed before its reply. */
struct decay_step {
	struct decay *d;
	enum decay_stage stage;
	uint32_t shard;
	char cursor_key[KEYS_SHARD_MAX]; /* the shard's engagement:decay */
	char log_key[KEYS_SHARD_MAX];   /* the shard's pushes:log */
	char *cursor;                   /* as read ("" = none) */
	char **log;                     /* ORDER DECAY_ARGS: id, push ("" = not sent), sub */
	size_t nlog;
};

static void
decay_step_free(struct decay_step *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < 3 * s->nlog; i++)
		free(s->log[i]);
	free(s->log);
	free(s->cursor);
	free(s);
}

/* Ends step s: the next tick may start another. */
static void
decay_done(struct decay_step *s)
{
	if (s->d != NULL)
		s->d->busy = NULL;
	decay_step_free(s);
}

/* Keeps the entries of an XRANGE reply in s->log. Returns 0, or -1 (malformed or out
 * of memory). */
static int
decay_keep_log(struct decay_step *s, const struct redisReply *r)
{
	const struct redisReply *fields;
	const char *id, *v[3], *outcome, *push, *sub;
	size_t i, j, len;

	if (r->type != REDIS_REPLY_ARRAY)
		return -1;
	if (r->elements == 0)
		return 0;
	if ((s->log = calloc(3 * r->elements, sizeof(*s->log))) == NULL)
		return -1;
	for (i = 0; i < r->elements; i++) {
		if (ru_entry(r, i, &id, &fields) < 0)
			return -1;
		v[0] = id;
		v[1] = v[2] = "";
		if (fields != NULL) {
			outcome = ru_field(fields, "outcome", &len);
			push = ru_field(fields, "push", &len);
			sub = ru_field(fields, "sub", &len);
			if (outcome != NULL && strcmp(outcome, "sent") == 0 && push != NULL &&
			    sub != NULL && keys_shard_of(sub) == s->shard) {
				v[1] = push;
				v[2] = sub;
			}
		}
		s->nlog = i + 1;        /* decay_step_free frees what was copied */
		for (j = 0; j < 3; j++)
			if ((s->log[3 * i + j] = strdup(v[j])) == NULL)
				return -1;
	}
	return 0;
}

static void decay_on_reply(struct rconn *rc, struct redisReply *r, void *arg);

/* Sends decay.lua with the entries read (ORDER DECAY_KEYS, DECAY_ARGS). Returns 0,
 * or -1 when Redis is not ready or out of memory. */
static int
decay_script(struct decay_step *s)
{
	const char **args = NULL;
	char **keys = NULL, subs[KEYS_SHARD_MAX], changes[KEYS_SHARD_MAX];
	size_t i, n, nk = 0, na = 0;
	int rv = -1;

	if ((args = calloc(6 + 4 * s->nlog, sizeof(*args))) == NULL ||
	    (keys = calloc(s->nlog + 1, sizeof(*keys))) == NULL)
		goto out;
	if (keys_shard_key(s->shard, KEYS_SUBSCRIBERS, subs, sizeof(subs)) < 0 ||
	    keys_shard_key(s->shard, KEYS_SUB_CHANGES, changes, sizeof(changes)) < 0)
		goto out;
	args[na++] = s->cursor_key;
	args[na++] = subs;
	args[na++] = changes;
	for (i = 0; i < s->nlog; i++) {
		const char *push = s->log[3 * i + 1];

		if (*push == '\0')
			continue;
		n = strlen(push) + KEYS_SHARD_MAX + 16;
		if ((keys[nk] = malloc(n)) == NULL)
			goto out;
		if (keys_clicked(s->shard, push, keys[nk], n) < 0) {
			free(keys[nk]);
			goto out;
		}
		args[na++] = keys[nk++];
	}
	args[na++] = DECAY_WINDOW_MS;
	args[na++] = DECAY_FACTOR;
	args[na++] = s->cursor;
	for (i = 0; i < 3 * s->nlog; i++)
		args[na++] = s->log[i];
	rv = script_call_named(s->d->app->cmd, "decay", (int)(3 + nk), (int)na, args, NULL,
	    decay_on_reply, s);
out:
	for (i = 0; keys != NULL && i < nk; i++)
		free(keys[i]);
	free(keys);
	free(args);
	return rv;
}

/* Sends step s's next command. Returns 0, or -1 as decay_script. */
static int
decay_send(struct decay_step *s)
{
	char from[80];
	const char *args[6];

	switch (s->stage) {
	case DECAY_CURSOR:
		args[0] = "GET";
		args[1] = s->cursor_key;
		return rconn_argv(s->d->app->cmd, decay_on_reply, s, 0, 2, args, NULL);
	case DECAY_LOG:
		snprintf(from, sizeof(from), "(%s", *s->cursor != '\0' ? s->cursor : "0-0");
		args[0] = "XRANGE";
		args[1] = s->log_key;
		args[2] = from;
		args[3] = "+";
		args[4] = "COUNT";
		args[5] = DECAY_COUNT;
		return rconn_argv(s->d->app->cmd, decay_on_reply, s, 0, 6, args, NULL);
	case DECAY_SCRIPT:
		break;
	}
	return decay_script(s);
}

static void
decay_on_reply(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct decay_step *s = arg;

	(void)rc;
	if (s->d == NULL) {             /* the module was freed */
		decay_step_free(s);
		return;
	}
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		log_warnx("event=decay_failed err=\"%s\"", r ? r->str : "no reply");
		decay_done(s);
		return;
	}
	switch (s->stage) {
	case DECAY_CURSOR:
		free(s->cursor);
		s->cursor = strdup(r->type == REDIS_REPLY_STRING ? r->str : "");
		if (s->cursor == NULL || (r->type != REDIS_REPLY_STRING &&
		    r->type != REDIS_REPLY_NIL)) {
			log_warnx("event=decay_failed err=\"bad reply\"");
			decay_done(s);
			return;
		}
		s->stage = DECAY_LOG;
		break;
	case DECAY_LOG:
		if (decay_keep_log(s, r) < 0) {
			log_warnx("event=decay_failed err=\"bad reply\"");
			decay_done(s);
			return;
		}
		if (s->nlog == 0) {     /* nothing new */
			decay_done(s);
			return;
		}
		s->stage = DECAY_SCRIPT;
		break;
	case DECAY_SCRIPT:
		/* -1: another notifier moved the cursor; the next tick reads again. */
		if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
			log_info("event=engagement_decay pushes=%lld", (long long)r->integer);
		decay_done(s);
		return;
	}
	if (decay_send(s) < 0) {
		log_warnx("event=decay_failed err=\"redis not ready\"");
		decay_done(s);
	}
}

/* Starts one step unless one is out. */
static void
decay_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct decay *d = arg;
	struct decay_step *s;

	(void)fd;
	(void)what;
	if (d->busy != NULL || !rconn_is_ready(d->app->cmd) ||
	    (s = calloc(1, sizeof(*s))) == NULL)
		return;
	s->d = d;
	s->stage = DECAY_CURSOR;
	s->shard = d->next_shard;
	d->next_shard = (d->next_shard + 1) % keys_shards();
	if (keys_shard_key(s->shard, KEYS_PUSHES_LOG, s->log_key, sizeof(s->log_key)) < 0 ||
	    keys_shard_key(s->shard, KEYS_ENGAGEMENT_DECAY, s->cursor_key,
	    sizeof(s->cursor_key)) < 0) {
		decay_step_free(s);
		return;
	}
	d->busy = s;
	if (decay_send(s) < 0)
		decay_done(s);          /* the next tick tries again */
}

struct decay *
decay_new(const struct app *app)
{
	struct timeval tv = { DECAY_TICK_MS / 1000, (DECAY_TICK_MS % 1000) * 1000 };
	struct decay *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->app = app;
	if ((d->tick = event_new(app->base, -1, EV_PERSIST, decay_on_tick, d)) == NULL) {
		free(d);
		return NULL;
	}
	event_add(d->tick, &tv);
	return d;
}

void
decay_free(struct decay *d)
{
	if (d == NULL)
		return;
	if (d->busy != NULL)
		d->busy->d = NULL;      /* its reply frees it */
	event_free(d->tick);
	free(d);
}
