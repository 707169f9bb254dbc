/*
 * admin_consent.h: GET /v1/consent/<id>, a subscriber's consent record (stage: http):
 * the proof of consent as JSON, read from consent:records (docs/admin.md).
 */
#ifndef DEALPUSH_ADMIN_CONSENT_H
#define DEALPUSH_ADMIN_CONSENT_H

#include <stddef.h>

struct app;
struct admin_consent;
struct cJSON;

/* Adds each event of consent record rec[0..len) to array events as the API shows it
 * ({when, at, channel, state, how, detail}, or {raw} for a line that does not parse),
 * and each channel's state now to object cur. */
void admin_consent_events(const char *rec, size_t len, struct cJSON *events,
    struct cJSON *cur);

/* Registers the route on app->http (borrowed; must outlive the module). Returns the
 * module, or NULL when out of memory. */
struct admin_consent *admin_consent_new(const struct app *app);

/* Forgets every request still waiting on Redis (the HTTP server answers those 503
 * when it is freed next; their callbacks only free their own state). Call before
 * http_free. admin_consent_free(NULL) does nothing. */
void admin_consent_free(struct admin_consent *ac);

#endif
