/*
 * formats_watch.c: the running notifier's side of the format version (stage: start-up,
 * then every FORMATS_BEAT_MS). See formats.h.
 *
 * One beat at a time (formats_beat.lua): announce what this release reads, read the
 * deployment's version and write it from then on. Must never let the readers start
 * on a deployment whose version is newer than this release reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "formats.h"
#include "keys.h"
#include "log.h"
#include "rconn.h"
#include "scripts.h"
#include "version.h"

struct formats_watch {
	struct rconn *cmd;
	struct event *tick;
	formats_ready_fn *ready;       /* NULL once called */
	void *arg;
	int out;                       /* a beat is waiting on Redis */
	int left;                      /* formats_watch_leave ran */
	int warned;                    /* a newer deployment version was logged */
	char consumer[128];
	/* The beat waiting on Redis holds this; freed by whichever ends last. */
	struct formats_beat *beat;
};

struct formats_beat {
	struct formats_watch *w;       /* NULL: w was freed, only free this */
};

static void formats_watch_arm(struct formats_watch *w, long ms);

/* The beat's answer: the deployment's version (nil = 1). */
static void
formats_on_beat(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct formats_beat *b = arg;
	struct formats_watch *w = b->w;
	formats_ready_fn *ready;
	int v;

	(void)rc;
	free(b);
	if (w == NULL)
		return;
	w->beat = NULL;
	w->out = 0;
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		/* At start-up the scripts may still be loading (NOSCRIPT): the next beat. */
		log_warnx("event=format_beat_failed err=\"%s\"", r == NULL ? "no reply" : r->str);
		formats_watch_arm(w, FORMATS_BEAT_MS);
		return;
	}
	if (r->type == REDIS_REPLY_NIL)
		v = 1;
	else if (r->type == REDIS_REPLY_STRING)
		v = formats_parse(r->str, r->len);
	else
		v = -1;
	if (formats_classify(v) != FORMATS_OK) {
		if (w->ready != NULL) {
			log_errorx("event=format_mismatch key=dealpush:formats field="
			    FORMATS_KEY_FIELD " stored=\"%.16s\" reads=%d-%d err=\"%s\"",
			    r->type == REDIS_REPLY_STRING ? r->str : "?", FORMATS_READ_MIN,
			    FORMATS_READ_MAX, v < 0 ? "not a format version" :
			    "the deployment's stored format is newer than this release reads");
			ready = w->ready;
			w->ready = NULL;
			ready(w->arg, FORMATS_EXIT_MISMATCH);
			return;
		}
		/* Raised while running (only by hand: `formats upgrade` asks every live
		 * notifier first): what is written stays readable by this release. */
		if (!w->warned)
			log_errorx("event=format_mismatch stored=\"%.16s\" writes=%d "
			    "action=keep_writing", r->type == REDIS_REPLY_STRING ? r->str : "?",
			    formats_write());
		w->warned = 1;
	} else {
		w->warned = 0;
		if (v != formats_write() || w->ready != NULL)
			log_info("event=%s format=%d reads=%d-%d", w->ready != NULL ?
			    "format_read" : "format_changed", v, FORMATS_READ_MIN,
			    FORMATS_READ_MAX);
		formats_set_write(v);
	}
	formats_watch_arm(w, FORMATS_BEAT_MS);
	if ((ready = w->ready) != NULL) {
		w->ready = NULL;
		ready(w->arg, 0);
	}
}

/* Sends one beat with lease lease_ms. Returns 0, or -1 (not sent). */
static int
formats_send(struct formats_watch *w, long lease_ms)
{
	char key[KEYS_SHARD_MAX], reads[16], lease[24];
	const char *args[5];
	struct formats_beat *b;

	if (w->out || !rconn_is_ready(w->cmd) || keys_formats(key, sizeof(key)) < 0)
		return -1;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return -1;
	b->w = w;
	snprintf(reads, sizeof(reads), "%d", FORMATS_READ_MAX);
	snprintf(lease, sizeof(lease), "%ld", lease_ms);
	args[0] = key;
	args[1] = w->consumer;
	args[2] = reads;
	args[3] = DEALPUSH_VERSION;
	args[4] = lease;
	if (script_call_named(w->cmd, "formats_beat", 1, 5, args, NULL, formats_on_beat,
	    b) < 0) {
		free(b);
		return -1;
	}
	w->beat = b;
	w->out = 1;
	return 0;
}

static void
formats_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct formats_watch *w = arg;

	(void)fd;
	(void)what;
	if (w->left)
		return;
	if (formats_send(w, FORMATS_LEASE_MS) < 0 && !w->out)
		formats_watch_arm(w, w->ready != NULL ? 200 : FORMATS_BEAT_MS);
}

static void
formats_watch_arm(struct formats_watch *w, long ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (!w->left)
		evtimer_add(w->tick, &tv);
}

struct formats_watch *
formats_watch_new(struct event_base *base, struct rconn *cmd, const char *consumer,
    formats_ready_fn *ready, void *arg)
{
	struct formats_watch *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->cmd = cmd;
	w->ready = ready;
	w->arg = arg;
	snprintf(w->consumer, sizeof(w->consumer), "%s", consumer);
	if ((w->tick = evtimer_new(base, formats_on_tick, w)) == NULL) {
		free(w);
		return NULL;
	}
	formats_watch_arm(w, 0);
	return w;
}

void
formats_watch_leave(struct formats_watch *w)
{
	char key[KEYS_SHARD_MAX], reads[16];
	const char *args[5];

	if (w == NULL || w->left)
		return;
	w->left = 1;
	evtimer_del(w->tick);
	if (keys_formats(key, sizeof(key)) < 0 || !rconn_is_ready(w->cmd))
		return;
	/* Lease 0: ends now. Nothing waits for the answer. */
	snprintf(reads, sizeof(reads), "%d", FORMATS_READ_MAX);
	args[0] = key;
	args[1] = w->consumer;
	args[2] = reads;
	args[3] = DEALPUSH_VERSION;
	args[4] = "0";
	if (script_call_named(w->cmd, "formats_beat", 1, 5, args, NULL, NULL, NULL) < 0)
		log_warnx("event=format_leave_failed consumer=%s", w->consumer);
}

void
formats_watch_free(struct formats_watch *w)
{
	if (w == NULL)
		return;
	if (w->beat != NULL)
		w->beat->w = NULL;
	event_free(w->tick);
	free(w);
}
