/*
 * audit.h: the audit stream, one entry per change made over the API (stage: http):
 * who (a token's name, "config" for http.admin_token), with which role, what
 * ("rules.put", "tokens.revoke" ...), the object's id, when (epoch ms) and the object
 * before and after (JSON, cut at AUDIT_VALUE_MAX bytes with a marker). Changes made
 * by a script on global keys (rules, tokens, sessions) write their entry in the same
 * script (lib/audit.lua); the others (subscribers, deals, pause) right after they
 * succeed, from here. Never a token, a session id or a secret. docs/api.md "Audit".
 */
#ifndef DEALPUSH_AUDIT_H
#define DEALPUSH_AUDIT_H

#include <stddef.h>

#include "keys.h"

struct app;
struct http_principal;
struct http_req;
struct http_wait;
struct rconn;

#define AUDIT_KEY keys_global(KEYS_G_AUDIT)  /* "audit", sharded "{rules}:audit" */
#define AUDIT_MAXLEN "100000"           /* XADD MAXLEN ~ (lib/audit.lua has its own) */
#define AUDIT_VALUE_MAX 4096            /* before/after bytes kept (lib/audit.lua too) */
#define AUDIT_LIMIT_DEFAULT 50
#define AUDIT_LIMIT_MAX 1000

/* The value stored for json (NULL: "null"): itself when at most AUDIT_VALUE_MAX bytes,
 * else {"truncated":true,"bytes":N,"head":"<the first bytes, cut at a UTF-8
 * boundary>"}. Returns a string the caller frees, or NULL when out of memory. */
char *audit_value(const char *json);

/* Appends one entry for a change p made (NULL: "-"), after it succeeded; before and
 * after are JSON text or NULL. Does not wait for Redis; a failure is logged
 * (event=audit_failed). */
void audit_record(struct rconn *cmd, const struct http_principal *p,
    const char *what, const char *id, const char *before, const char *after);

/* A subscriber's stored JSON as the audit keeps it: the phone number cut to its
 * last 4 digits. Returns a string the caller frees, or NULL (not JSON, or out of
 * memory). */
char *audit_subscriber(const char *json, size_t len);

/* Answers GET /v1/audit?limit=&before= for r, the newest first; r waits in *waits
 * (the caller's list, detached when the caller goes away). */
void audit_query(const struct app *app, struct http_wait **waits, struct http_req *r);

#endif
