/*
 * xauth.c: X OAuth 2.0 user tokens for one x-dm gateway, refreshed once for every
 * notifier through Redis (stage: send).
 *
 * A timer looks at the pair every XAUTH_TICK_MS; at most one step is in flight (a
 * script call or the token request), all of it on the loop (rconn, httpc). A new pair
 * is used only after Redis stored it ("stored" from xauth.lua): a notifier that dies
 * after the refresh leaves the rotated token where the others find it. Must never log
 * or put into an error a token or the client secret.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "clock.h"
#include "httpc.h"
#include "log.h"
#include "metrics.h"
#include "rconn.h"
#include "scripts.h"
#include "xauth.h"

#define XAUTH_KEY_MAX 256
#define XAUTH_BODY_MAX 8192
#define XAUTH_HTTP_TIMEOUT_MS 10000
#define XAUTH_LEASE_MS 30000          /* the lock outlives our token request */
#define XAUTH_BACKOFF_MAX_S 60
#define XAUTH_EXPIRES_MAX_S (90L * 86400)

enum xauth_mode { XAUTH_STATIC = 0, XAUTH_OAUTH2 };

struct xauth {
	struct event_base *base;
	struct rconn *rc;
	struct httpc *h;
	const struct gw_config *cfg;
	struct metrics *metrics;
	enum xauth_mode mode;
	struct event *tick;
	char key[XAUTH_KEY_MAX];      /* xauth:{NAME} */
	char lock[XAUTH_KEY_MAX];     /* xauth:{NAME}:lock */
	char token_url[2048];
	char owner[64];               /* who holds the lock: pid and random */
	char access[XAUTH_TOKEN_MAX + 1];
	int64_t expires_at;           /* epoch s; 0 = no token */
	unsigned long gen;            /* generation of access */
	long bad_gen;                 /* the generation X refused with 401; -1 = none */
	int seeded;
	int reload;                   /* a pair was stored: read it back (claim) */
	int busy;                     /* a script call or the token request in flight */
	long claimed_gen;             /* the generation our refresh replaces */
	int failures;                 /* refreshes failed in a row */
	int64_t next_try_ms;          /* monotonic: no refresh before this */
	int logged_status;            /* last (gen, status) logged: one line each */
	unsigned long logged_gen;
};

static void xauth_count(struct xauth *x, const char *event)
{
	if (x->metrics != NULL)
		metrics_inc(x->metrics, METRIC_XAUTH_EVENTS, METRICS_L(x->cfg->name, event), 1);
}

static void xauth_wipe(char *s, size_t n)
{
	OPENSSL_cleanse(s, n);
}

/* A token from outside: 1..XAUTH_TOKEN_MAX printable characters without blanks. */
static int token_ok(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || n > XAUTH_TOKEN_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~')
			return 0;
	return 1;
}

static void xauth_backoff(struct xauth *x)
{
	long s = 1;
	int i;

	x->failures++;
	for (i = 1; i < x->failures && s < XAUTH_BACKOFF_MAX_S; i++)
		s *= 2;
	if (s > XAUTH_BACKOFF_MAX_S)
		s = XAUTH_BACKOFF_MAX_S;
	x->next_try_ms = clock_mono_ms() + s * 1000;
}

static void xauth_step(struct xauth *x);

static int xauth_script(struct xauth *x, int nargs, const char **args,
    rconn_reply_fn *cb)
{
	const char *full[10];
	int i;

	full[0] = x->key;
	full[1] = x->lock;
	for (i = 0; i < nargs && i < 8; i++)
		full[2 + i] = args[i];
	if (script_call_named(x->rc, "xauth", 2, 2 + nargs, full, NULL, cb, x) < 0)
		return -1;
	x->busy = 1;
	return 0;
}

/* Takes a {"pair"|"fresh", access, expires_at, gen} reply from element first. */
static void xauth_take_pair(struct xauth *x, const redisReply *r, size_t first)
{
	const redisReply *a = r->element[first], *e = r->element[first + 1],
	    *g = r->element[first + 2];

	if (a->type != REDIS_REPLY_STRING || e->type != REDIS_REPLY_INTEGER ||
	    g->type != REDIS_REPLY_INTEGER || g->integer < 0)
		return;
	if (a->len == 0 || !token_ok(a->str, a->len)) {
		return;   /* seeded, never refreshed yet */
	}
	if ((unsigned long)g->integer == x->gen && x->access[0] != '\0')
		return;
	xauth_wipe(x->access, sizeof(x->access));
	memcpy(x->access, a->str, a->len);
	x->access[a->len] = '\0';
	x->expires_at = e->integer;
	x->gen = (unsigned long)g->integer;
	log_info("event=xauth_token gw=%s gen=%lu expires_at=%lld source=redis",
	    x->cfg->name, x->gen, (long long)x->expires_at);
}

static int reply_is(const redisReply *r, const char *what, size_t n)
{
	return r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == n &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, what) == 0;
}

static void on_seed(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct xauth *x = arg;

	(void)rc;
	x->busy = 0;
	if (!reply_is(r, "pair", 4)) {
		log_warnx("event=xauth_seed_failed gw=%s err=\"%s\"", x->cfg->name,
		    r == NULL ? "no reply" : r->type == REDIS_REPLY_ERROR ? r->str :
		    "unexpected reply");
		return;
	}
	x->seeded = 1;
	xauth_take_pair(x, r, 1);
	xauth_step(x);
}

static void on_release(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct xauth *x = arg;

	(void)rc;
	(void)r;
	x->busy = 0;
}

static void xauth_release(struct xauth *x)
{
	const char *args[2] = { "release", x->owner };

	if (xauth_script(x, 2, args, on_release) < 0)
		x->busy = 0;   /* the lease ends the lock */
}

static void xauth_refresh_failed(struct xauth *x, int status, const char *why)
{
	xauth_count(x, "refresh_failed");
	log_warnx("event=xauth_refresh_failed gw=%s http=%d failures=%d err=\"%s\" "
	    "action=%s", x->cfg->name, status, x->failures + 1, why,
	    status == 400 || status == 401 ? "check_tokens" : "retry");
	xauth_backoff(x);
	xauth_release(x);
}

static void on_store(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct xauth *x = arg;

	(void)rc;
	x->busy = 0;
	if (reply_is(r, "stored", 2) && r->element[1]->type == REDIS_REPLY_INTEGER) {
		x->failures = 0;
		x->reload = 1;
		xauth_count(x, "refreshed");
		log_info("event=xauth_refreshed gw=%s gen=%lld", x->cfg->name,
		    (long long)r->element[1]->integer);
		x->next_try_ms = 0;
		xauth_step(x);   /* reads the stored pair back through claim: "fresh" */
		return;
	}
	/* The new pair is not stored: it is never used. The old refresh token no longer
	 * works at X, so this needs an operator unless another notifier stored a pair. */
	log_errorx("event=xauth_store_failed gw=%s err=\"%s\" action=check_tokens",
	    x->cfg->name, r == NULL ? "no reply" : r->type == REDIS_REPLY_ERROR ? r->str :
	    reply_is(r, "stale", 2) ? "another pair was stored meanwhile" : "unexpected");
	xauth_count(x, "store_failed");
	xauth_backoff(x);
}

/* The token endpoint's answer: {"access_token", "refresh_token", "expires_in"}. */
static void on_token(void *arg, const struct httpc_resp *resp, int cancelled)
{
	struct xauth *x = arg;
	cJSON *j = NULL;
	const cJSON *at, *rt, *ei, *err;
	char gen[24], exp[24];
	const char *args[6];
	char why[96];

	x->busy = 0;
	if (cancelled)
		return;
	if (resp->status != 200) {
		j = cJSON_ParseWithLength(resp->body, resp->body_len);
		err = cJSON_GetObjectItemCaseSensitive(j, "error");
		snprintf(why, sizeof(why), "%s", resp->status == 0 ? "no answer" :
		    cJSON_IsString(err) && token_ok(err->valuestring,
		    strlen(err->valuestring)) ? err->valuestring : "no error code");
		cJSON_Delete(j);
		xauth_refresh_failed(x, resp->status, why);
		return;
	}
	j = cJSON_ParseWithLength(resp->body, resp->body_len);
	at = cJSON_GetObjectItemCaseSensitive(j, "access_token");
	rt = cJSON_GetObjectItemCaseSensitive(j, "refresh_token");
	ei = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
	if (!cJSON_IsString(at) || !token_ok(at->valuestring, strlen(at->valuestring)) ||
	    !cJSON_IsString(rt) || !token_ok(rt->valuestring, strlen(rt->valuestring)) ||
	    !cJSON_IsNumber(ei) || !(ei->valuedouble >= 1) ||
	    ei->valuedouble > XAUTH_EXPIRES_MAX_S) {
		cJSON_Delete(j);
		xauth_refresh_failed(x, 200, "answer without access_token, refresh_token "
		    "and expires_in");
		return;
	}
	snprintf(gen, sizeof(gen), "%ld", x->claimed_gen);
	snprintf(exp, sizeof(exp), "%lld", (long long)(clock_now() +
	    (int64_t)ei->valuedouble));
	args[0] = "store";
	args[1] = x->owner;
	args[2] = gen;
	args[3] = at->valuestring;
	args[4] = rt->valuestring;
	args[5] = exp;
	if (xauth_script(x, 6, args, on_store) < 0) {
		log_errorx("event=xauth_store_failed gw=%s err=\"redis not connected\" "
		    "action=check_tokens", x->cfg->name);
		xauth_count(x, "store_failed");
		xauth_backoff(x);
	}
	cJSON_Delete(j);
}

/* Appends s percent-encoded (RFC 3986 unreserved characters stay). */
static size_t put_encoded(char *out, size_t at, size_t cap, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p != '\0' && at + 4 < cap; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			out[at++] = (char)*p;
		} else {
			out[at++] = '%';
			out[at++] = hex[*p >> 4];
			out[at++] = hex[*p & 15];
		}
	}
	out[at] = '\0';
	return *p == '\0' ? at : cap;
}

/* POST token_url: grant_type=refresh_token, Basic client_id:client_secret. */
static void xauth_request(struct xauth *x, const char *refresh)
{
	char body[XAUTH_BODY_MAX];
	struct httpc_req req;
	struct err err;
	size_t n;

	n = (size_t)snprintf(body, sizeof(body), "grant_type=refresh_token&refresh_token=");
	n = put_encoded(body, n, sizeof(body), refresh);
	if (n < sizeof(body) - 12) {
		memcpy(body + n, "&client_id=", 12);
		n = put_encoded(body, n + 11, sizeof(body), x->cfg->client_id);
	}
	if (n >= sizeof(body)) {
		xauth_wipe(body, sizeof(body));
		xauth_refresh_failed(x, 0, "refresh token too long");
		return;
	}
	memset(&req, 0, sizeof(req));
	req.url = x->token_url;
	req.content_type = "application/x-www-form-urlencoded";
	req.body = body;
	req.body_len = n;
	if (x->cfg->client_secret != NULL) {
		req.basic_user = x->cfg->client_id;
		req.basic_pass = x->cfg->client_secret;
	}
	req.timeout_ms = XAUTH_HTTP_TIMEOUT_MS;
	req.connect_timeout_ms = XAUTH_HTTP_TIMEOUT_MS / 2;
	err_clear(&err);
	if (httpc_post(x->h, &req, on_token, x, &err) == 0)
		x->busy = 1;
	else
		xauth_refresh_failed(x, 0, err.msg);
	xauth_wipe(body, sizeof(body));
}

static void on_claim(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct xauth *x = arg;
	const redisReply *rt;

	(void)rc;
	x->busy = 0;
	if (reply_is(r, "fresh", 4)) {
		x->reload = 0;
		xauth_take_pair(x, r, 1);
		return;
	}
	if (reply_is(r, "busy", 1))
		return;   /* another notifier refreshes; its pair is read next tick */
	if (reply_is(r, "missing", 1)) {
		x->seeded = 0;
		return;
	}
	if (!reply_is(r, "claimed", 3) || r->element[1]->type != REDIS_REPLY_STRING ||
	    r->element[2]->type != REDIS_REPLY_INTEGER) {
		log_warnx("event=xauth_claim_failed gw=%s err=\"%s\"", x->cfg->name,
		    r == NULL ? "no reply" : r->type == REDIS_REPLY_ERROR ? r->str :
		    "unexpected reply");
		return;
	}
	rt = r->element[1];
	x->claimed_gen = (long)r->element[2]->integer;
	if (!token_ok(rt->str, rt->len)) {
		xauth_refresh_failed(x, 0, "stored refresh token is empty or malformed");
		return;
	}
	xauth_request(x, rt->str);
}

/* One step when nothing is in flight: seed, or claim when the token needs a
 * refresh (near expiry, refused, or none yet). */
static void xauth_step(struct xauth *x)
{
	char lease[24], now[24], margin[24], bad[24];
	const char *args[6];
	int64_t t = clock_now();
	long m = x->cfg->refresh_margin_s > 0 ? x->cfg->refresh_margin_s :
	    XAUTH_MARGIN_DEFAULT_S;

	if (x->busy || x->mode != XAUTH_OAUTH2 || !rconn_is_ready(x->rc))
		return;
	if (!x->seeded) {
		args[0] = "seed";
		args[1] = x->cfg->refresh_token;
		xauth_script(x, 2, args, on_seed);
		return;
	}
	if (!x->reload && x->access[0] != '\0' && x->expires_at - t > m &&
	    (x->bad_gen < 0 || (unsigned long)x->bad_gen != x->gen))
		return;
	if (!x->reload && clock_mono_ms() < x->next_try_ms)
		return;
	snprintf(lease, sizeof(lease), "%d", XAUTH_LEASE_MS);
	snprintf(now, sizeof(now), "%lld", (long long)t);
	snprintf(margin, sizeof(margin), "%ld", m);
	snprintf(bad, sizeof(bad), "%ld", x->bad_gen);
	args[0] = "claim";
	args[1] = x->owner;
	args[2] = lease;
	args[3] = now;
	args[4] = margin;
	args[5] = bad;
	xauth_script(x, 6, args, on_claim);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	xauth_step(arg);
}

static int xauth_config_check(struct xauth *x, const struct gw_config *cfg,
    struct err *err)
{
	char field[64];
	int n;

	if (cfg->kind != GW_XDM)
		return err_set(err, ERR_INPUT, "bad_config", NULL, "xauth: not an x-dm gateway");
	if (cfg->auth == NULL || strcmp(cfg->auth, "static") == 0) {
		x->mode = XAUTH_STATIC;
		return 0;
	}
	snprintf(field, sizeof(field), "gateway.%s.auth", cfg->name);
	if (strcmp(cfg->auth, "oauth2") != 0)
		return err_set(err, ERR_INPUT, "bad_config", field,
		    "%s: must be static or oauth2", field);
	x->mode = XAUTH_OAUTH2;
	snprintf(field, sizeof(field), "gateway.%s.client_id", cfg->name);
	if (cfg->client_id == NULL || *cfg->client_id == '\0')
		return err_set(err, ERR_INPUT, "bad_config", field,
		    "%s: required with auth = oauth2", field);
	snprintf(field, sizeof(field), "gateway.%s.refresh_token", cfg->name);
	if (cfg->refresh_token == NULL || !token_ok(cfg->refresh_token,
	    strlen(cfg->refresh_token)))
		return err_set(err, ERR_INPUT, "bad_config", field,
		    "%s: required with auth = oauth2 (refresh_token_env or "
		    "refresh_token_file), printable, no blanks", field);
	snprintf(field, sizeof(field), "gateway.%s.base_url", cfg->name);
	if (cfg->token_url == NULL && (cfg->base_url == NULL || *cfg->base_url == '\0'))
		return err_set(err, ERR_INPUT, "bad_config", field,
		    "%s: required (or token_url)", field);
	if (cfg->token_url != NULL)
		n = snprintf(x->token_url, sizeof(x->token_url), "%s", cfg->token_url);
	else
		n = snprintf(x->token_url, sizeof(x->token_url), "%.*s/2/oauth2/token",
		    (int)(strlen(cfg->base_url) - (cfg->base_url[strlen(cfg->base_url) - 1] ==
		    '/')), cfg->base_url);
	snprintf(field, sizeof(field), "gateway.%s.token_url", cfg->name);
	if (n < 0 || (size_t)n >= sizeof(x->token_url) ||
	    (strncasecmp(x->token_url, "http://", 7) != 0 &&
	    strncasecmp(x->token_url, "https://", 8) != 0))
		return err_set(err, ERR_INPUT, "bad_config", field,
		    "%s: must be an http(s) URL", field);
	return 0;
}

struct xauth *xauth_new(struct event_base *base, struct rconn *rc, struct httpc *h,
    const struct gw_config *cfg, struct metrics *m, struct err *err)
{
	struct xauth *x = NULL;
	unsigned char rnd[8];
	struct timeval tv = { XAUTH_TICK_MS / 1000, (XAUTH_TICK_MS % 1000) * 1000 };

	if (cfg == NULL || base == NULL) {
		err_set(err, ERR_INPUT, "bad_config", NULL, "xauth_new: base and config required");
		return NULL;
	}
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		err_set(err, ERR_NOMEM, "nomem", NULL, "xauth_new: out of memory");
		return NULL;
	}
	x->base = base;
	x->rc = rc;
	x->h = h;
	x->cfg = cfg;
	x->metrics = m;
	x->bad_gen = -1;
	if (xauth_config_check(x, cfg, err) < 0)
		goto fail;
	if (x->mode == XAUTH_STATIC) {
		/* The secret is the access token itself; gw.c checks it is set. */
		if (cfg->secret != NULL)
			snprintf(x->access, sizeof(x->access), "%s", cfg->secret);
		x->expires_at = INT64_MAX;
		x->gen = 1;
		return x;
	}
	if (rc == NULL || h == NULL) {
		err_set(err, ERR_INPUT, "bad_config", NULL,
		    "xauth_new: oauth2 needs Redis and an HTTP client");
		goto fail;
	}
	snprintf(x->key, sizeof(x->key), "xauth:{%s}", cfg->name);
	snprintf(x->lock, sizeof(x->lock), "xauth:{%s}:lock", cfg->name);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		err_set(err, ERR_PERM, "crypto", NULL, "xauth_new: no random bytes");
		goto fail;
	}
	snprintf(x->owner, sizeof(x->owner), "%ld-%02x%02x%02x%02x%02x%02x%02x%02x",
	    (long)getpid(), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	if ((x->tick = event_new(base, -1, EV_PERSIST, on_tick, x)) == NULL ||
	    event_add(x->tick, &tv) < 0) {
		err_set(err, ERR_NOMEM, "nomem", NULL, "xauth_new: out of memory for a timer");
		goto fail;
	}
	return x;
fail:
	xauth_free(x);
	return NULL;
}

void xauth_free(struct xauth *x)
{
	if (x == NULL)
		return;
	if (x->tick != NULL)
		event_free(x->tick);
	xauth_wipe(x->access, sizeof(x->access));
	free(x);
}

const char *xauth_token(struct xauth *x, int64_t now, unsigned long *gen)
{
	if (xauth_paused(x, now))
		return NULL;
	*gen = x->gen;
	return x->access;
}

int xauth_paused(const struct xauth *x, int64_t now)
{
	return x->access[0] == '\0' || now >= x->expires_at ||
	    (x->bad_gen >= 0 && (unsigned long)x->bad_gen == x->gen);
}

void xauth_rejected(struct xauth *x, unsigned long gen, int status)
{
	const char *action;

	xauth_count(x, status == 401 ? "rejected_401" : "rejected_403");
	if (gen != x->gen)
		return;   /* an answer to an older token: the new one is in use */
	/* Only a 401 under oauth2 stops this token (a refresh replaces it); otherwise
	 * the gateway's pause (gw.c) spaces out the next tries. */
	if (status == 401 && x->mode == XAUTH_OAUTH2) {
		x->bad_gen = (long)gen;
		action = "refresh";
	} else {
		action = status == 401 ? "pause_check_token" : "pause_check_app_and_scopes";
	}
	if (x->logged_gen != gen || x->logged_status != status) {
		x->logged_gen = gen;
		x->logged_status = status;
		log_errorx("event=xauth_rejected gw=%s http=%d gen=%lu action=%s",
		    x->cfg->name, status, gen, action);
	}
	if (x->mode == XAUTH_OAUTH2)
		xauth_step(x);
}
