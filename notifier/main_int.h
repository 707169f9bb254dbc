/*
 * main_int.h: what main.c and main_health.c share (stage: start-up, operations): the
 * notifier's state, and what main_health.c gives main.c (/healthz, the stats tick,
 * READY and WATCHDOG for the service manager). Private to the two files.
 */
#ifndef DEALPUSH_MAIN_INT_H
#define DEALPUSH_MAIN_INT_H

#include <stdint.h>

#include <event2/event.h>

#include "app.h"
#include "config.h"
#include "rconn.h"

#define MAIN_STATS_MS 1000        /* stream lag and gateway gauges */
#define MAIN_READY_POLL_MS 100    /* until READY=1 has gone to the service manager */

struct http_health;

struct notifier {
	struct event_base *base;
	struct config *cfg;
	struct rconn_config rcfg;
	struct rconn *cmd;
	struct sentinel *sentinel;  /* the primary found through Sentinel, or NULL */
	struct substore *ss;
	struct matcher *matcher;
	struct httpc *http;
	struct ingest **ingest;       /* one reader per shard: group s<K> on deals */
	uint32_t ningest;
	struct ingest_ranks *ranks;   /* the rankings they share; NULL on one shard */
	struct deliver *deliver;
	struct owner *owner;          /* the shards served here; NULL: every shard */
	uint8_t *owned;               /* owner on: the shards whose lease is held, for
	                               * the mirror */
	uint8_t *served;              /* owner on: the shards served now */
	struct event *mirror_set;     /* applies owned to the mirror once per loop turn */
	struct resolve *resolve;      /* unknown SMS pushes looked up at Twilio */
	struct xauth *xauth[CONFIG_GATEWAYS_MAX]; /* x-dm credentials, by gateway index */
	struct event *sigint, *sigterm, *drain, *stats;
	struct event *sighup;         /* reloads the zones (admin.c reloads the rules) */
	struct tzcache *zones;        /* every zone of tzdata: one cache for the process */
	struct pause *pause;          /* the global pause of sending (dealpush:pause) */
	struct event *ready_poll;     /* until ready: then READY=1, and it is not re-armed */
	struct event *watchdog;       /* WATCHDOG=1 every half WATCHDOG_USEC; NULL: none */
	struct layout_reader *layout; /* until the layout is read */
	struct formats_watch *formats; /* the stored format version, then announcements */
	int started;                  /* layout and format read: the readers started */
	int exit_code;                /* main's exit status once the loop ends */
	int lag_calls;                /* XINFO GROUPS out (the ready poll sends one pair
	                               * at a time) */
	struct metrics *metrics;
	struct http *http_srv;
	struct app app;               /* what the HTTP-facing modules are given */
	/* HTTP-facing modules: one handle each. */
	struct clicks *clicks;        /* /c/<token>: click links (NULL: not configured) */
	struct convert *convert;      /* the "conversions" stream: attribution */
	struct abtest *abtest;        /* A/B tests decided and their rest released */
	struct hooks *hooks;          /* /hooks/: Twilio callbacks, STOP/START */
	struct admin *admin;          /* the /v1/ admin API and the rules in use */
	struct tokens *tokens;        /* named tokens, sessions, /v1/audit (NULL without
	                               * HTTP) */
	struct simulate *simulate;    /* POST /v1/deals/simulate (NULL without HTTP) */
	long long lag[2];             /* ORDER STREAMS; -1 unknown; pushes: every
	                               * shard's summed */
	long long *push_lags;         /* per shard's pushes; -1 unknown (NULL: none yet) */
	uint32_t npush_lags;
	int64_t stop_deadline_ms;
	struct event *left;           /* the leases' release had its time (owner_leave) */
};

/* ---- main_owner.c ---- */

/* With [cluster] ownership on: the owner, and the readers and mirror told to follow
 * it. 0 (also when off), or -1 (logged). After the mirror, ingest and deliver. */
int main_start_owner(struct notifier *n);
/* The drain is over: every lease released (at most a second), then the loop ends. */
void main_leave(struct notifier *n);
/* After the command connection is freed (its replies reach the owner). */
void main_free_owner(struct notifier *n);

/* ---- main_health.c ---- */

/* http_health_fn: /healthz from the state the notifier already has. */
int main_on_health(void *arg, struct http_health *out);

/* The stats tick (every MAIN_STATS_MS): stream lag and gateway gauges, paused
 * templates. */
void main_on_stats(evutil_socket_t fd, short what, void *arg);

/* Arms the ready poll (READY=1 once healthy and both groups exist) and, under a
 * watchdog, WATCHDOG=1 from the loop. 0, or -1 on OOM. */
int main_start_notify(struct notifier *n);

#endif
