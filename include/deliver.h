/*
 * deliver.h: jobs from "pushes" to the gateways and back to a record (stages: admit,
 * send, record). Implemented in deliver.c, deliver_admit.c, deliver_send.c and
 * deliver_record.c (notifier/deliver_int.h draws how they fit).
 *
 * Reads "pushes" in consumer group "deliver"; each job's recipients pass one atomic
 * admit step (admit.lua), go out earliest-expiry-first through the gateway of their
 * channel, and each outcome is recorded (record.lua) before the job is acked.
 */
#ifndef DEALPUSH_DELIVER_H
#define DEALPUSH_DELIVER_H

#include <stddef.h>

struct event_base;
struct config;
struct rconn;
struct rconn_config;
struct httpc;
struct substore;
struct deliver;
struct tzcache;

/*
 * Returns a deliverer reading through its own connection to rcfg, writing through
 * cmd, sending through http, reading subscribers (time zone, quiet hours, caps) from
 * ss, with the local times of zones; all borrowed and outliving it. Builds one
 * gateway per configured [gateway];
 * NULL (with the reason logged) when one is invalid or on OOM.
 */
struct deliver *deliver_new(struct event_base *base, const struct config *cfg,
    const struct rconn_config *rcfg, struct rconn *cmd, struct httpc *http,
    const struct substore *ss, struct tzcache *zones);

struct metrics;

/* Counts outcomes, skips and send latency in m (borrowed; NULL: none). */
void deliver_set_metrics(struct deliver *dl, struct metrics *m);

struct pause;

/* While p (borrowed; NULL: never) says paused, no push is claimed for sending. */
void deliver_set_pause(struct deliver *dl, const struct pause *p);

struct owner;
/* Only the shards o (borrowed; NULL: every shard) serves are read, and a request
 * leaves only under the shard's lease (owner.h). Set before the readers connect. */
void deliver_set_owner(struct deliver *dl, const struct owner *o);
/* Shard k came to be served here (its previous owner's jobs are taken over at
 * once), or stopped being served (its jobs in memory are dropped unacked: what was
 * claimed and not yet sent waits for its retry, which finds the job lost; requests in
 * flight finish and are recorded). */
void deliver_shard_change(struct deliver *dl, uint32_t k, int serving);
/* 1 while shard k has an admit, claim, request or record out here. */
int deliver_shard_busy(const struct deliver *dl, uint32_t k);
/* Sending resumed: claims what waited, at once. */
void deliver_resume(struct deliver *dl);

/* Writes each gateway's breaker state and requests in flight into the metrics. */
void deliver_export_gateways(struct deliver *dl);

/* Stops reading jobs. Recipients admitted but not yet handed to a gateway are dropped
 * from memory: their state stays "admitted" (or "retry" for those waiting out a
 * backoff), which admit.lua admits again, and their job stays pending, so that the job,
 * redelivered to this consumer after a restart or claimed by another after
 * claim_idle_ms, sends them. Requests in flight complete and are recorded. */
void deliver_stop(struct deliver *dl);

/* 1 when stopped and no request, admit or record is outstanding. */
int deliver_idle(const struct deliver *dl);

/* Frees everything; call after httpc_free() so no gateway callback can follow. */
void deliver_free(struct deliver *dl);

#endif
