/*
 * resolve.h: settles "unknown" SMS pushes by asking the provider (stage: record).
 *
 * A push whose request may have reached Twilio (a timeout, a reset after the request
 * was written, a crashed consumer's claim) is recorded "unknown" and never sent
 * again. record.lua and admit.lua queue each such SMS in resolve:due / resolve:info;
 * once a second this module takes the entries due (resolve_take.lua, under a lease so
 * that one notifier looks at a time and a crash resumes later), looks each up in
 * Twilio's message list (gw_twilio_find) and settles it (resolve.lua): found, the push
 * becomes "sent"; not found, it is looked up again later and, after the last try,
 * left "unknown" (absence is never proof). It never sends a message and never blocks.
 */
#ifndef DEALPUSH_RESOLVE_H
#define DEALPUSH_RESOLVE_H

struct event_base;
struct config;
struct rconn_config;
struct httpc;
struct resolve;

#define RESOLVE_BATCH 16              /* entries taken per pass */
#define RESOLVE_TICK_MS 1000
#define RESOLVE_SKEW_S 5              /* clock skew allowed against the provider's */
#define RESOLVE_LEASE_MIN_S 10
#define RESOLVE_LEASE_MAX_S 60

/*
 * Returns a resolver with its own Redis connection to rcfg, looking up through every
 * twilio gateway of channel sms in cfg and sending through http (cfg and http are
 * borrowed and outlive it). With no such gateway it takes nothing. NULL on OOM or a
 * gateway that does not build (logged).
 */
struct resolve *resolve_new(struct event_base *base, const struct config *cfg,
    const struct rconn_config *rcfg, struct httpc *http);

/* Takes no more entries; lookups under way finish (or are cancelled with the HTTP
 * client: their entries come due again after the lease). */
void resolve_stop(struct resolve *r);

/* 1 when no batch is being resolved. */
int resolve_idle(const struct resolve *r);

/* Frees everything. Lookups still in flight are abandoned (their callbacks, from
 * httpc, only free their own state). resolve_free(NULL) does nothing. */
void resolve_free(struct resolve *r);

#endif
