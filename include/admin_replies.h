/*
 * admin_replies.h: GET /v1/replies, what subscribers texted back (stage: http).
 */
#ifndef DEALPUSH_ADMIN_REPLIES_H
#define DEALPUSH_ADMIN_REPLIES_H

struct app;
struct admin_replies;

/* Registers the route on app->http (borrowed). NULL when out of memory. */
struct admin_replies *admin_replies_new(const struct app *app);

/* Forgets every request still waiting on Redis. NULL does nothing. */
void admin_replies_free(struct admin_replies *ar);

#endif
