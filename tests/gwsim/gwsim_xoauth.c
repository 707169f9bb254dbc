/*
 * gwsim_xoauth.c: X's OAuth 2.0 user-context tokens as the DM endpoint sees them, and
 * POST /2/oauth2/token (grant_type=refresh_token) with rotating refresh tokens.
 *
 * The simulator keeps every access token it issued with its expiry and exactly one
 * valid refresh token: a refresh answers a new pair and retires the old refresh token
 * (X rotates them). Tokens never reach the log. /_sim/x/expire expires every access
 * token at once, so tests can force the 401 a stale token gets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gwsim.h"

#define XO_TOKENS_MAX 4096        /* access tokens remembered; the oldest go first */
#define XO_TOKEN_LEN 48
#define XO_SCOPE "dm.write tweet.read users.read offline.access"

struct gwsim_xtoken {
	char tok[XO_TOKEN_LEN];
	int64_t expires_ms;       /* 0 = never (the --user-token) */
	long serial;              /* 0 = the --user-token, n = the nth refresh's */
};

struct gwsim_xoauth {
	struct gwsim_xtoken *tokens;  /* oldest first */
	size_t n;
	char refresh[XO_TOKEN_LEN];   /* the one refresh token that works now */
	long refreshes;               /* refresh grants answered 200 */
	long refused;                 /* token requests refused */
};

static int xo_add(struct gwsim_xoauth *x, const char *tok, int64_t expires_ms)
{
	if (x->n == XO_TOKENS_MAX) {
		memmove(x->tokens, x->tokens + 1, (x->n - 1) * sizeof(*x->tokens));
		x->n--;
	}
	snprintf(x->tokens[x->n].tok, XO_TOKEN_LEN, "%s", tok);
	x->tokens[x->n].expires_ms = expires_ms;
	x->tokens[x->n].serial = x->refreshes;
	x->n++;
	return 0;
}

int gwsim_xoauth_init(struct gwsim *sim)
{
	struct gwsim_xoauth *x = calloc(1, sizeof(*x));

	if (x == NULL || (x->tokens = calloc(XO_TOKENS_MAX, sizeof(*x->tokens))) == NULL) {
		free(x);
		return -1;
	}
	snprintf(x->refresh, sizeof(x->refresh), "%s", sim->refresh_token);
	if (sim->user_token[0] != '\0')
		xo_add(x, sim->user_token, 0);
	sim->xoauth = x;
	return 0;
}

void gwsim_xoauth_free(struct gwsim *sim)
{
	if (sim->xoauth == NULL)
		return;
	OPENSSL_cleanse(sim->xoauth->tokens, XO_TOKENS_MAX * sizeof(*sim->xoauth->tokens));
	free(sim->xoauth->tokens);
	OPENSSL_cleanse(sim->xoauth->refresh, sizeof(sim->xoauth->refresh));
	free(sim->xoauth);
	sim->xoauth = NULL;
}

static int xo_eq(const char *a, const char *b)
{
	size_t n = strlen(b);

	return strlen(a) == n && CRYPTO_memcmp(a, b, n) == 0;
}

enum gwsim_xauth gwsim_xoauth_check(struct gwsim *sim, struct evhttp_request *req,
    char *who, size_t wholen)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	struct gwsim_xoauth *x = sim->xoauth;
	size_t i;

	who[0] = '\0';
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return GWSIM_XAUTH_NONE;
	h += 7;
	while (*h == ' ')
		h++;
	if (sim->bearer_token[0] != '\0' && xo_eq(h, sim->bearer_token)) {
		snprintf(who, wholen, "app");
		return GWSIM_XAUTH_APP_ONLY;
	}
	for (i = 0; i < x->n; i++) {
		if (!xo_eq(h, x->tokens[i].tok))
			continue;
		snprintf(who, wholen, "user-token-%ld", x->tokens[i].serial);
		if (x->tokens[i].expires_ms != 0 && x->tokens[i].expires_ms <= gwsim_now_ms())
			return GWSIM_XAUTH_EXPIRED;
		return GWSIM_XAUTH_OK;
	}
	return GWSIM_XAUTH_UNKNOWN;
}

static cJSON *xo_down_json(struct gwsim_call *c)
{
	cJSON *o = cJSON_CreateObject();

	(void)c;
	if (o != NULL && (!cJSON_AddStringToObject(o, "error", "temporarily_unavailable") ||
	    !cJSON_AddStringToObject(o, "error_description", "Service Unavailable"))) {
		cJSON_Delete(o);
		o = NULL;
	}
	return o;
}

/* RFC 6749 §5.2 error answer, as X's token endpoint gives it. */
static void xo_error(struct gwsim_call *c, int status, const char *error,
    const char *description)
{
	cJSON *o = cJSON_CreateObject();

	c->sim->xoauth->refused++;
	if (o != NULL && (!cJSON_AddStringToObject(o, "error", error) ||
	    !cJSON_AddStringToObject(o, "error_description", description))) {
		cJSON_Delete(o);
		o = NULL;
	}
	gwsim_reply_json(c, status, o, NULL, 1);
}

/* Confidential client: Basic base64(client_id:client_secret). Public client (no
 * --client-secret): no Authorization, client_id in the form. 1 when right. */
static int xo_client_ok(struct gwsim *sim, struct evhttp_request *req,
    const struct form *f)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	const char *id = form_get(f, "client_id");
	size_t ulen = strlen(sim->client_id), plen = strlen(sim->client_secret);
	unsigned char *raw = NULL, *enc = NULL;
	int ok = 0, n;

	if (plen == 0)
		return h == NULL && id != NULL && xo_eq(id, sim->client_id);
	if (h == NULL || strncasecmp(h, "Basic ", 6) != 0)
		return 0;
	for (h += 6; *h == ' '; h++)
		;
	raw = malloc(ulen + plen + 2);
	enc = malloc(4 * ((ulen + plen + 1 + 2) / 3) + 1);
	if (raw == NULL || enc == NULL)
		goto out;
	memcpy(raw, sim->client_id, ulen);
	raw[ulen] = ':';
	memcpy(raw + ulen + 1, sim->client_secret, plen);
	n = EVP_EncodeBlock(enc, raw, (int)(ulen + plen + 1));
	ok = n > 0 && strlen(h) == (size_t)n && CRYPTO_memcmp(h, enc, (size_t)n) == 0;
out:
	if (raw != NULL)
		OPENSSL_cleanse(raw, ulen + plen + 2);
	free(raw);
	free(enc);
	return ok;
}

/* A new pair: the old refresh token stops working at once (rotation). */
static void xo_grant(struct gwsim_call *c)
{
	struct gwsim *sim = c->sim;
	struct gwsim_xoauth *x = sim->xoauth;
	char access[XO_TOKEN_LEN], digits[32];
	cJSON *o = cJSON_CreateObject();

	gwsim_new_digits(sim, digits, sizeof(digits));
	snprintf(access, sizeof(access), "xa-%s", digits);
	gwsim_new_digits(sim, digits, sizeof(digits));
	snprintf(x->refresh, sizeof(x->refresh), "xr-%s", digits);
	x->refreshes++;
	xo_add(x, access, gwsim_now_ms() + sim->token_ttl_s * 1000);
	if (o != NULL && (!cJSON_AddStringToObject(o, "token_type", "bearer") ||
	    !cJSON_AddNumberToObject(o, "expires_in", (double)sim->token_ttl_s) ||
	    !cJSON_AddStringToObject(o, "access_token", access) ||
	    !cJSON_AddStringToObject(o, "scope", XO_SCOPE) ||
	    !cJSON_AddStringToObject(o, "refresh_token", x->refresh))) {
		cJSON_Delete(o);
		o = NULL;
	}
	OPENSSL_cleanse(access, sizeof(access));
	gwsim_reply_json(c, 200, o, NULL, 1);
}

void gwsim_xoauth_token(struct gwsim *sim, struct evhttp_request *req)
{
	struct gwsim_call c;
	struct form f = { 0 };
	const char *ct, *grant, *rt;
	char *body = NULL;
	size_t len = 0;
	int rc;

	gwsim_call_init(&c, sim, req, "x-oauth");
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		xo_error(&c, 405, "invalid_request", "Method Not Allowed");
		return;
	}
	if (gwsim_fault_gate(&c, xo_down_json))
		return;
	ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	rc = gwsim_body(req, &body, &len);
	if (rc == 0 && (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded",
	    33) != 0 || form_parse(&f, body, len) != 0))
		rc = 2;
	free(body);
	if (rc != 0) {
		xo_error(&c, rc == 1 ? 413 : 400, "invalid_request",
		    "The body must be a form (application/x-www-form-urlencoded)");
		goto out;
	}
	c.auth_ok = xo_client_ok(sim, req, &f);
	grant = form_get(&f, "grant_type");
	rt = form_get(&f, "refresh_token");
	if (!c.auth_ok)
		xo_error(&c, 401, "unauthorized_client", "Missing valid authorization header");
	else if (grant == NULL || strcmp(grant, "refresh_token") != 0)
		xo_error(&c, 400, "unsupported_grant_type", "Only refresh_token is served");
	else if (rt == NULL || sim->xoauth->refresh[0] == '\0' ||
	    !xo_eq(rt, sim->xoauth->refresh))
		xo_error(&c, 400, "invalid_request", "Value passed for the token was invalid.");
	else
		xo_grant(&c);
out:
	form_free(&f);
}

/* Expires every access token issued so far (the --user-token too). */
static long xo_expire_all(struct gwsim_xoauth *x)
{
	int64_t now = gwsim_now_ms();
	size_t i;

	for (i = 0; i < x->n; i++)
		x->tokens[i].expires_ms = now;
	return (long)x->n;
}

int gwsim_xoauth_control(struct gwsim_call *c, const char *path)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(c->req);
	struct gwsim_xoauth *x = c->sim->xoauth;
	cJSON *o;

	if (strcmp(path, "/_sim/x/expire") == 0 && m == EVHTTP_REQ_POST) {
		o = cJSON_CreateObject();
		if (o != NULL && !cJSON_AddNumberToObject(o, "expired",
		    (double)xo_expire_all(x))) {
			cJSON_Delete(o);
			o = NULL;
		}
		gwsim_reply_json(c, 200, o, NULL, 0);
		return 1;
	}
	if (strcmp(path, "/_sim/x") == 0 && m == EVHTTP_REQ_GET) {
		o = cJSON_CreateObject();
		if (o != NULL && (!cJSON_AddNumberToObject(o, "refreshes", (double)x->refreshes) ||
		    !cJSON_AddNumberToObject(o, "refused", (double)x->refused) ||
		    !cJSON_AddNumberToObject(o, "access_tokens", (double)x->n))) {
			cJSON_Delete(o);
			o = NULL;
		}
		gwsim_reply_json(c, 200, o, NULL, 0);
		return 1;
	}
	return 0;
}
