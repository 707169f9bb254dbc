/*
 * admin.h: the admin API under /v1/ (stage: http): subscribers, rules, deal
 * simulation and reports. Routes: docs/admin.md.
 *
 * Also owns the rules in use: the configured folder's files compiled together with
 * the rules put over the API (Redis hash "rules"), reloaded when any notifier changes
 * them (polled "rules:version") and on SIGHUP.
 */
#ifndef DEALPUSH_ADMIN_H
#define DEALPUSH_ADMIN_H

struct app;
struct admin;

/* Registers the /v1/ routes on app->http (when there is one), reads the rule folder
 * and starts loading the API rules from Redis (the set in use is swapped once they
 * compile with the folder), also on a notifier without the HTTP surface. app is
 * borrowed and must outlive the module. Returns the module, or NULL (logged) when
 * the folder cannot be read or out of memory. */
struct admin *admin_new(const struct app *app);

struct http_req;
struct rule_set;

/* The rules in use with the API source name's text replaced by text (len bytes; or
 * added), compiled as PUT /v1/rules/<name> would compile them, written nowhere: for
 * simulating a draft (POST /v1/deals/simulate with "draft"). Returns the set (the
 * caller owns it), or NULL after answering r 400 (the errors at their line and column,
 * field "body"; "draft.name", "draft.text") or 500. */
struct rule_set *admin_rules_draft(const struct admin *a, struct http_req *r,
    const char *name, const char *text, size_t len);

/* Stops the reload timers and forgets every request still waiting on Redis (the HTTP
 * server answers those 503 when it is freed next). Call before http_free; the Redis
 * callbacks still to come find the module gone and only free their own state.
 * admin_free(NULL) does nothing. */
void admin_free(struct admin *a);

#endif
