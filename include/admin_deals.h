/*
 * admin_deals.h: GET /v1/deals/<id>, a deal's state and counts for its publisher
 * (stage: report): planned, sending, paused, cancelled, expired, dead-lettered with
 * its reason, waiting for confirmation, done (docs/api.md).
 */
#ifndef DEALPUSH_ADMIN_DEALS_H
#define DEALPUSH_ADMIN_DEALS_H

#include <stddef.h>

struct app;
struct admin_deals;

/* Registers the route on app->http (borrowed; must outlive the module). Returns the
 * module, or NULL when out of memory. */
struct admin_deals *admin_deals_new(const struct app *app);

/* Forgets every request still waiting on Redis (their callbacks only free their own
 * state). Call before http_free. admin_deals_free(NULL) does nothing. */
void admin_deals_free(struct admin_deals *ad);

struct http_req;
struct http_wait;

/* GET /v1/deals: the deals on now, newest first (admin_deallist.c); r waits in ops. */
void admin_deal_list(const struct app *app, struct http_wait **ops, struct http_req *r);

/* GET /v1/deals/<id>/series?from=&to=: the deal's counts per minute
 * (admin_series.c); id is idlen bytes, not NUL-terminated; r waits in ops or is
 * answered at once (400 naming the bad parameter, 503, 500). */
void admin_deal_series(const struct app *app, struct http_wait **ops, struct http_req *r,
    const char *id, size_t idlen);

#endif
