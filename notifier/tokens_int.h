/*
 * tokens_int.h: what tokens.c (the tokens, their routes) and session.c (console
 * sessions) share (stage: http). Not a public header; the public face is
 * include/tokens.h.
 */
#ifndef DEALPUSH_TOKENS_INT_H
#define DEALPUSH_TOKENS_INT_H

#include "http.h"

struct app;
struct event;

/* One token as every notifier keeps it: never the token, only its SHA-256. */
struct tokens_ent {
	char name[HTTP_NAME_MAX + 1];
	unsigned char hash[32];
	enum http_role role;
	long long created_ms;
	long long used_ms;              /* last use seen here or loaded; 0: never */
	long long used_written_ms;      /* last write of used_ms to Redis (monotonic) */
};

struct tokens_load;

struct tokens {
	const struct app *app;
	struct tokens_ent *v;
	size_t n;
	char version[32];               /* tokens:version of v; "" before the first load */
	int loaded;                     /* v was loaded once */
	struct tokens_load *loading;    /* the load in flight, or NULL */
	struct event *poll;
	struct http_wait *waits;        /* requests waiting on Redis */
};

/* The token named name, or NULL. */
struct tokens_ent *tokens_find(struct tokens *t, const char *name);

/* struct http_auth_ops.bearer (arg: the module): a named token, checked against
 * the table in constant time per entry; records its last use (at most once a
 * minute per token). 1 and *p filled, 0 unknown, -1 not loaded yet. */
int tokens_check(void *arg, const char *tok, size_t len, struct http_principal *p);

/* ---- session.c ---- */

/* The provider's session lookup (struct http_auth_ops.session). */
void session_lookup(void *arg, struct http_req *r, const char *id);

/* /v1/session: POST signs in (public), GET says who, DELETE signs out (arg: the
 * tokens module). */
void session_on_request(struct http_req *r, void *arg);

#endif
