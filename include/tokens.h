/*
 * tokens.h: named API tokens with a role, console sessions and the routes that manage
 * them (stage: http). Routes and Redis keys: docs/api.md "Sign-in and roles".
 *
 * A token is "dp_" and 64 hex digits (256 bits from the OS); Redis keeps only its
 * SHA-256, so a dump of Redis holds no usable token. Every notifier keeps the tokens
 * in memory (a bearer token costs no Redis round trip) and reloads them when
 * tokens:version moves, polled every TOKENS_POLL_MS: a revoke takes effect at once on
 * the notifier that served it and within TOKENS_POLL_MS plus a Redis round trip on
 * every other.
 */
#ifndef DEALPUSH_TOKENS_H
#define DEALPUSH_TOKENS_H

#include <stddef.h>

#include "http.h"
#include "keys.h"

struct app;
struct tokens;

/* Named "{rules}:..." in the sharded layout (keys.h, ORDER KEYS_GLOBAL). */
#define TOKENS_KEY keys_global(KEYS_G_TOKENS) /* hash: name -> {"sha256","role","created_ms"} */
#define TOKENS_USED_KEY keys_global(KEYS_G_TOKENS_USED)   /* hash: name -> last use, ms */
#define TOKENS_VERSION_KEY keys_global(KEYS_G_TOKENS_VERSION) /* bumped by every change */
/* A session: keys_session(hex SHA-256 of the id) (keys.h). */
#define TOKENS_PREFIX "dp_"
#define TOKENS_HEX_LEN 64                   /* hex digits after the prefix */
#define TOKENS_LEN (sizeof(TOKENS_PREFIX) - 1 + TOKENS_HEX_LEN)
#define TOKENS_MAX 1000                     /* tokens kept; more are refused */
#define TOKENS_POLL_MS 1000                 /* how often tokens:version is looked at */
#define TOKENS_USED_EVERY_MS 60000          /* last-use writes per token at most */

/* Registers the token, session, routes and audit routes on app->http and becomes its
 * provider of named tokens and sessions; starts loading the tokens. Returns the
 * module, or NULL (logged) when out of memory; NULL without app->http is no error
 * (tokens_free(NULL) is fine). app is borrowed. */
struct tokens *tokens_new(const struct app *app, int *failed);

/* Stops the poll, forgets every request waiting on Redis (http_free answers them
 * 503) and removes itself as the server's provider. NULL does nothing. */
void tokens_free(struct tokens *t);

/* ---- pure parts (tests/unit/test_tokens.c) ---- */

/* 1 when name may name a token: 1..HTTP_NAME_MAX of [A-Za-z0-9_.-], not "config". */
int tokens_name_ok(const char *name);

/* A new token from 32 random bytes: "dp_" + 64 hex digits into out (size >
 * TOKENS_LEN). */
void tokens_format(const unsigned char rnd[32], char *out, size_t size);

/* n random bytes from the OS; 0, or -1 (errno). */
int tokens_random(unsigned char *out, size_t n);

/* Lower-case hex of the SHA-256 of len bytes of p into out (65 bytes); 0 or -1. */
int tokens_sha256_hex(const void *p, size_t len, char out[65]);

#endif
