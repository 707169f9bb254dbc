/*
 * admin_bulk.h: POST /v1/bulk/subscribers, the admin API's bulk subscriber import
 * (stage: http): JSON lines in, each validated as a single put is, stored by
 * admin_sub_bulk.lua, a report of the bad lines by number out (docs/admin.md).
 */
#ifndef DEALPUSH_ADMIN_BULK_H
#define DEALPUSH_ADMIN_BULK_H

struct app;
struct admin_bulk;

/* Registers the route on app->http (borrowed; must outlive the module). Returns the
 * module, or NULL when out of memory. */
struct admin_bulk *admin_bulk_new(const struct app *app);

/* Forgets every request still waiting on Redis (the HTTP server answers those 503
 * when it is freed next; their callbacks only free their own state). Call before
 * http_free. admin_bulk_free(NULL) does nothing. */
void admin_bulk_free(struct admin_bulk *ab);

#endif
