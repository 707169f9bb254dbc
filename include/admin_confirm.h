/*
 * admin_confirm.h: POST /v1/deals/<id>/confirm, the confirmation of a deal the guards
 * held (stage: http; docs/delivery.md, "Guards before a big send").
 */
#ifndef DEALPUSH_ADMIN_CONFIRM_H
#define DEALPUSH_ADMIN_CONFIRM_H

#define CONFIRM_SCAN_MAX "10000"   /* dead letters looked through for the held deal */

struct app;
struct admin_confirm;

/* Registers the route on app->http (borrowed; must outlive the module). Returns the
 * module, or NULL when out of memory. */
struct admin_confirm *admin_confirm_new(const struct app *app);

struct http_req;
struct http_wait;

/* POST /v1/deals: publishes the body's deal once the deal parser accepts it; the
 * request waits in ops (admin_publish.c). */
void admin_publish(const struct app *app, struct http_wait **ops, struct http_req *r);

/* Forgets every request still waiting on Redis (the HTTP server answers those 503
 * when it is freed next). Call before http_free. NULL does nothing. */
void admin_confirm_free(struct admin_confirm *ac);

#endif
