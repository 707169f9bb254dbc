/*
 * admin_codes.h: code pools through the admin API (stage: http): POST /v1/codes/<pool>
 * adds codes to the Redis set codes:<pool>, GET /v1/codes/<pool> counts what is left
 * (docs/api.md, "Code pools"); a deal's report shows its pool's remaining codes. The
 * checks on a pool name and a code are pure and shared with dealpushctl.
 */
#ifndef DEALPUSH_ADMIN_CODES_H
#define DEALPUSH_ADMIN_CODES_H

#include <stddef.h>

struct app;
struct admin_codes;

#define CODES_POOL_NAME_MAX 64        /* a pool's name, without "codes:" */
#define CODES_CODE_MAX 64             /* one code, in bytes */
#define CODES_BATCH 1000              /* codes per SADD (and per dealpushctl request) */
#define CODES_BAD_LISTED 100          /* bad lines named in an answer; more are counted */

/* The key of pool name into buf ("codes:<name>"; a name that already starts with
 * "codes:" is the key itself). Returns 0, or -1 when name is not 1..64 of
 * [A-Za-z0-9_.:-] after the prefix (no braces: a pool never picks its own slot). */
int codes_pool_key(const char *name, char *buf, size_t size);

/* 1 when s (len bytes) is a code: 1..CODES_CODE_MAX printable ASCII bytes, no space.
 * Else 0, with why (a static string) in *why when why is not NULL. */
int codes_code_ok(const char *s, size_t len, const char **why);

/* Registers the routes on app->http (borrowed; must outlive the module). Returns the
 * module, or NULL when out of memory. */
struct admin_codes *admin_codes_new(const struct app *app);

/* Forgets every request still waiting on Redis (their callbacks only free their own
 * state). Call before http_free. admin_codes_free(NULL) does nothing. */
void admin_codes_free(struct admin_codes *ac);

#endif
