/*
 * deliver_int.h: what the delivery stages share inside the deliverer (stages: admit,
 * send, record): a job and its recipients, the deliverer's state, and each stage's
 * entry points. Private to deliver.c, deliver_admit.c, deliver_send.c and
 * deliver_record.c; the public face is include/deliver.h.
 *
 * Life of a recipient: RS_ADMITTING (admit.lua) → RS_QUEUED (in the earliest-expiry
 * heap) → RS_CLAIMING (send.lua marks it "sending") → RS_SENDING (request in flight)
 * → RS_RECORDING (record.lua) → RS_DONE; RS_WAITING is a backoff before admitting
 * again; RS_RENEWING waits for a lease renewal before the request may leave.
 */
#ifndef DEALPUSH_DELIVER_INT_H
#define DEALPUSH_DELIVER_INT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "durable.h"
#include "gw.h"
#include "keys.h"
#include "model.h"
#include "pushline.h"
#include "quiet.h"
#include "scripts.h"

#define DELIVER_GROUP "deliver"

struct greader;
struct deliver;

/* The reader of one shard's job stream ({sK}pushes, "pushes" in the single-instance
 * layout) in group "deliver", on its own connection. */
struct dl_reader {
	struct deliver *dl;
	uint32_t shard;
	struct greader *g;
	char stream[KEYS_SHARD_MAX];
};
struct rconn;
struct httpc;
struct substore;
struct subscriber;
struct tzcache;
struct gwpool;
struct metrics;
struct owner;

enum rstate {
	RS_ADMITTING = 0,
	RS_QUEUED,
	RS_CLAIMING,
	RS_RENEWING,
	RS_SENDING,
	RS_WAITING,
	RS_RECORDING,
	RS_DONE
};

struct job;

struct rcpt {
	struct job *job;
	struct pushline pl;        /* points into line, owned by the rcpt */
	char *line;
	char push_id[256];
	enum rstate state;
	int attempts;
	size_t gw_index;           /* index into dl->gws of the gateway in use */
	int reserved;              /* gwpool_started() taken for gw_index */
	int renewed;               /* the lease was renewed for this claim */
	int code_bad;              /* the pool gave a code that cannot be sent */
	char code[128];            /* per-recipient code from the pool, "" when none */
	int token;                 /* code is a quota's token: never in a text, never
	                            * redeemable (docs/sharding.md 4c "The quota") */
	char consent_epoch[24];    /* consent:epoch when admit.lua checked consent */
	struct event *timer;       /* retry backoff, or record retry */
	int record_tries;
	int64_t sent_ms;           /* wall ms the last request left */
	int64_t started;           /* epoch s the last attempt began (for resolution) */
	int64_t window;            /* when its window opens, as of its last reservation
	                            * (dl_window_open_at): the reservation's time itself
	                            * when open */
	int64_t reserved_at;       /* epoch s of that reservation */
	const struct tz *zone;     /* its subscriber's zone, looked up once (rcpt_zone) */
	int zone_done;
	char *sent_text;           /* the body of the last request, for an unknown one */
	/* the outcome being recorded */
	char outcome[16];
	char provider_id[64];
	char detail[256];
	int http_status;
	int revoke;
	int64_t park_until;        /* monotonic ms: a long wait, kept in Redis (parked) */
};

struct job {
	struct deliver *dl;
	struct job *prev, *next;
	uint32_t shard;                  /* its stream's: dl->rd[shard] */
	char entry[64];                  /* its id there (the ids of two streams may meet) */
	char deal[MODEL_ID_MAX + 1];
	char deal_entry[64];
	char camp[MODEL_TEXT_MAX + 1];
	char pool[MODEL_TEXT_MAX + 1];   /* the deal's code pool key, "" when not named */
	int64_t landed_ms;
	int64_t exp;                     /* the deal's expiry; send.lua says when it moves */
	int64_t start;                   /* starts_at, epoch s; 0 = at once */
	int64_t lease_until;             /* monotonic ms: we may send until then */
	int lost;                        /* another notifier took the job over */
	size_t n;
	size_t open;               /* recipients not yet RS_DONE */
	size_t recs_out;           /* its outcomes queued for or out to record.lua: the
	                            * job stays in memory until each has answered (a
	                            * "retry" record may answer after its recipient
	                            * went on, or after the job was dropped) */
	struct rcpt *r;
	int acking;
	int leasing;               /* dl_on_lease_timer: in this round's calls */
	int unrecorded;            /* an outcome could not be recorded: do not ack */
	int parked;                /* a recipient waits long in state "retry": the job
	                            * leaves memory unacked and is read again then */
	int reread;                /* read from the pending list: a push of it may be
	                            * "sending" from an earlier claim, so admit gets each
	                            * line (an unknown push's text, for the resolver) */
	int64_t park_until;        /* monotonic ms: the earliest of them */
};

struct rec;
struct dl_codesrc;
struct dl_codes_walk;

struct deliver {
	struct event_base *base;
	const struct config *cfg;
	struct dl_reader *rd;      /* one per shard, indexed by shard */
	uint32_t nrd;
	struct rconn *cmd;
	struct durable_config durable;   /* WAIT after each send.lua call */
	struct httpc *http;
	const struct substore *ss;
	struct tzcache *zones;
	struct quiet_rules quiet;
	struct event *delay_timer;
	struct event *lease_timer;     /* renews the leases of the jobs we hold */
	struct gw *gws[CONFIG_GATEWAYS_MAX];
	size_t ngws;
	struct gwpool *pool;       /* which gateway may take a push now */
	struct metrics *metrics;   /* borrowed, may be NULL */
	const struct pause *pause; /* borrowed, may be NULL: sending paused while on */
	const struct owner *owner; /* borrowed, may be NULL: every shard served */
	struct event *wake;        /* pump again when a gateway becomes usable */
	struct event *tick;
	int stopping;
	struct job *jobs;          /* every job held in memory */
	size_t njobs;
	struct rcpt **heap;        /* queued recipients, earliest expiry first */
	size_t heap_n, heap_cap;
	size_t in_flight, claiming, admits_out, records_out, acks_out, leases_out;
	struct rec *recq;          /* outcomes to record in the next loop pass */
	size_t recq_n, recq_cap;
	struct event *flush;       /* writes recq, once per loop pass */
	struct event *pump_ev;     /* runs the send queue, once per loop pass */
	struct event *park_timer;  /* reads the pending list again when a parked job's
	                            * earliest wait ends */
	int64_t park_due;          /* monotonic ms the park timer is armed for, 0: none */
	struct script_args sargs;  /* the script call being built (admit, send, record):
	                            * filled and sent within one function, its memory
	                            * kept for the next call */
	struct dl_codesrc **codesrcs;   /* deliver_codes.c: the (shard, deal, pool)s met,
	                                 * DL_CODES_BUCKETS chains (NULL until the first) */
	struct dl_codes_walk *codes_walk;   /* the walk in flight, NULL when none */
	size_t codes_out;          /* code reservation and give-back steps in flight */
};

/* deliver.c: jobs, the queue, reading. */
int dl_heap_push(struct deliver *dl, struct rcpt *r);
struct rcpt *dl_heap_pop(struct deliver *dl);
void dl_rcpt_done(struct rcpt *r);
/* An outcome of j's has answered (deliver_record.c): j may be done now. */
void dl_job_recorded(struct job *j);
/* Drops j from memory unacked (every open recipient done): read again from the
 * pending list. j may be freed by the time it returns. */
void dl_job_drop(struct job *j);
void dl_reread(struct deliver *dl, int failed);
void dl_read(struct deliver *dl);
const char *dl_gw_name(const struct deliver *dl, const struct rcpt *r);

/*
 * deliver_admit.c: the first instant at or after from (epoch s) when r, whose
 * subscriber is s (substore_get, in the same loop turn; NULL when unknown), may be
 * texted and stay allowed for margin_s more (the legal window of its place joined
 * with its quiet hours): from itself, a later instant, DL_WINDOW_NEVER (the windows
 * never overlap) or DL_WINDOW_NO_SUBSCRIBER.
 */
#define DL_WINDOW_NEVER (-1)
#define DL_WINDOW_NO_SUBSCRIBER (-2)
#define DL_WINDOW_NO_WINDOW (-3)   /* the windows of its places never meet */
int64_t dl_window_open_at(struct deliver *dl, struct rcpt *r,
    const struct subscriber *s, int64_t from, long margin_s);

#define DL_CAPKEY_MAX (MODEL_TEXT_MAX + MODEL_ID_MAX + 32)

/*
 * The caps of one push at wall time now, as admit.lua (a pre-filter) and send.lua
 * (the check that holds, and the count) take them. Each cap counts the push ids of
 * texts that left, in a zset scored by when: texts:<sub> (every deal), camp:<c>:<sub>
 * (one campaign), and for cap_scope = campaign capcamp:<c>:<sub> or
 * capdeal:<deal>:<sub>. "" = that cap does not apply. s is r's subscriber
 * (substore_get, in the same loop turn; NULL when unknown: no cap applies).
 */
struct dl_caps {
	char daykey[DL_CAPKEY_MAX];    /* texts:<sub>, for the daily cap */
	char campkey[DL_CAPKEY_MAX];   /* camp:<campaign>:<sub> */
	char lawkey[DL_CAPKEY_MAX];    /* the caps of the law of the place */
	char day_cap[16];              /* max_per_day; "0" = none */
	char day_start[24];            /* epoch s the local day of now began */
	char camp_cap[24];             /* deliver.campaign_cap; "0" = none */
	char law_cap[16];              /* the strictest cap of the places; "0" = none */
	char law_window[24];           /* its period, seconds */
};
void dl_caps_fill(struct deliver *dl, struct rcpt *r, const struct subscriber *s,
    int64_t now, struct dl_caps *c);

/* deliver_admit.c: admit.lua for a whole job, or for one recipient's retry (only).
 * Returns 0, or -1 when the call could not be made (nothing changed). */
int dl_admit(struct deliver *dl, struct job *j, struct rcpt *only);
void dl_on_delay_timer(evutil_socket_t fd, short what, void *arg);

/*
 * deliver_codes.c: a code pool shared by the shards (the sharded layout only,
 * docs/sharding.md 4c).
 * dl_codes_wanted: admit.lua answered reply = {"!codes", n, c} for job j (or its
 *   recipient only): the reservation runs and admit is called again. 0, or -1 when
 *   it cannot be queued (the caller fails the admit as for any bad reply).
 * dl_codes_pool_empty: 1 when j's admit should run with pool_empty (a reservation
 *   found the pool empty within the last second); 0 in the single-instance layout.
 * dl_codes_returned: a push of j gave its code back to the stash (look at it again).
 * dl_codes_walk: once a second; finishes what a crash left and gives idle codes back.
 * dl_codes_idle: 1 when no step is in flight. dl_codes_free: at deliver_free.
 */
int dl_codes_wanted(struct deliver *dl, struct job *j, struct rcpt *only,
    const struct redisReply *reply);
int dl_codes_pool_empty(struct deliver *dl, const struct job *j);
void dl_codes_returned(struct deliver *dl, const struct job *j);
void dl_codes_walk(struct deliver *dl);
int dl_codes_idle(const struct deliver *dl);
void dl_codes_free(struct deliver *dl);

/* deliver_send.c: the send queue, claims, leases, requests and their answers. */
void dl_kick(struct deliver *dl);
void dl_on_wake(evutil_socket_t fd, short what, void *arg);
void dl_pump(struct deliver *dl);
void dl_retry_or_expire(struct rcpt *r, long retry_after_s);

/* A wait this long or longer is not held in memory: the push is recorded "retry" and
 * its job, once nothing else of it is open, leaves memory unacked (a paused gateway
 * must not hold every job, and with them the other gateways' pushes). */
#define DELIVER_PARK_MS 5000

/* r's "retry" is recorded: it waits in Redis, out of memory (dl_retry_or_expire). */
void dl_parked(struct rcpt *r);
void dl_release(struct rcpt *r);
void dl_on_lease_timer(evutil_socket_t fd, short what, void *arg);

/* deliver_record.c: outcomes, written in batches once per loop pass. */
void dl_record(struct rcpt *r, const char *outcome);
void dl_flush(evutil_socket_t fd, short what, void *arg);

#endif
