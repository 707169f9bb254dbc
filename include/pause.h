/*
 * pause.h: the global pause of sending (stage: send, http).
 *
 * One hash, `dealpush:pause` (state "paused" or "running", since in epoch ms, reason),
 * written by the admin API (POST /v1/pause, POST /v1/resume) or `dealpushctl pause`,
 * and read by every notifier every PAUSE_POLL_MS. While it says paused, no push is
 * claimed for sending: queued pushes wait, planning and admission go on, and a push
 * whose deal expires meanwhile ends `expired` when sending resumes. Requests already
 * handed to a gateway when the pause lands still finish (docs/delivery.md).
 */
#ifndef DEALPUSH_PAUSE_H
#define DEALPUSH_PAUSE_H

#include <stdint.h>

#define PAUSE_KEY "dealpush:pause"
#define PAUSE_POLL_MS 200
#define PAUSE_REASON_MAX 200          /* bytes of a reason */
#define PAUSE_BODY_MAX 1024           /* bytes of a POST /v1/pause body */

struct event_base;
struct http;
struct metrics;
struct pause;
struct rconn;

/* Called on the loop when this notifier's view changes (paused 1 or 0). */
typedef void pause_change_fn(void *arg, int paused);

/* Starts polling PAUSE_KEY through cmd (borrowed, outliving it); cb (may be NULL) is
 * told of every change. NULL on OOM. */
struct pause *pause_new(struct event_base *base, struct rconn *cmd,
    pause_change_fn *cb, void *arg);

/* Frees p; NULL does nothing. */
void pause_free(struct pause *p);

/* 1 while sending is paused; 0 for NULL. */
int pause_is_on(const struct pause *p);

/* The dealpush_paused gauge in m (borrowed; NULL: none). */
void pause_set_metrics(struct pause *p, struct metrics *m);

/* GET /v1/pause, POST /v1/pause ({"reason": "..."}, optional) and POST /v1/resume on
 * h, behind the admin token. 0, or -1 on OOM. */
int pause_routes(struct pause *p, struct http *h);

/* Checks a reason given to a pause: at most PAUSE_REASON_MAX bytes of printable
 * UTF-8, no control characters. 1 when good. */
int pause_reason_ok(const char *reason);

#endif
