/*
 * privacy.h: a subscriber's data on request (stage: http; docs/compliance.md
 * "Erasure and export"): GET /v1/export?id=<id> and POST /v1/erase?id=<id>, admin.
 */
#ifndef DEALPUSH_PRIVACY_H
#define DEALPUSH_PRIVACY_H

struct app;
struct privacy;

/* Registers both routes on app->http (borrowed; must outlive the module). Returns
 * the module, or NULL when out of memory. */
struct privacy *privacy_new(const struct app *app);

/* Forgets every request still waiting on Redis (their callbacks only free their
 * state). Call before http_free. NULL does nothing. */
void privacy_free(struct privacy *pv);

#endif
