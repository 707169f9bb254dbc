/*
 * gw.c: gateway clients: one message becomes one request in a provider's wire format
 * (twilio, x-dm, webhook), and the provider's answer becomes one gw_outcome (stage:
 * send). This file: config checks, requests and sending; the answers are gw_answer.c.
 *
 * It never retries, queues or logs (details go into gw_result.detail and struct err;
 * an x-dm credential refusal goes to xauth_rejected, which logs it),
 * never sends a message whose expiry has passed, never lets a request outlive that
 * expiry, and never puts a secret, a signature or a full phone number in a detail.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "gw.h"
#include "gw_int.h"
#include "httpc.h"
#include "timefmt.h"
#include "uri.h"
#include "xauth.h"

#define GW_TIMEOUT_DEFAULT_MS 10000
#define GW_REQUEST_MAX 65536          /* cap of a built URL or request body */
#define GW_PUSH_ID_MAX 200            /* it travels in a header and a URL */
#define GW_SECONDS_MAX (366L * 86400) /* keeps ms arithmetic far from overflow */
#define TWILIO_VALIDITY_MAX 36000     /* Twilio accepts ValidityPeriod 1..36000 */

struct gw {
	struct httpc *h;
	const struct gw_config *cfg;
	EVP_MAC *hmac;                /* webhook: HMAC, fetched once */
};

/* A growable string capped at GW_REQUEST_MAX; the first failure sticks. */
struct sbuf {
	char *p;
	size_t len;
	size_t cap;
	enum err_kind fail;           /* ERR_NONE, ERR_NOMEM or ERR_INPUT (too long) */
};

/* What gw_send builds before handing it to httpc (which copies all of it). */
struct gw_wire {
	struct sbuf url;
	struct sbuf body;
	char hdr[3][GW_PUSH_ID_MAX + 64];
};

/* ORDER GW_KIND: as enum gw_kind in gw.h. */
static const char *const gw_kind_names[] = { "twilio", "x-dm", "webhook" };

/* Makes room for n more bytes and the NUL. Returns 0, or -1 with b->fail set. */
static int sb_room(struct sbuf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->fail != ERR_NONE)
		return -1;
	if (n > GW_REQUEST_MAX - b->len) {
		b->fail = ERR_INPUT;
		return -1;
	}
	if (b->len + n + 1 > b->cap) {
		cap = b->cap != 0 ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((p = realloc(b->p, cap)) == NULL) {
			b->fail = ERR_NOMEM;
			return -1;
		}
		b->p = p;
		b->cap = cap;
	}
	return 0;
}

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (sb_room(b, n) < 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* 1 for RFC 3986's unreserved characters (ALPHA, DIGIT, "-", ".", "_", "~"), by
 * ASCII code; every byte from 128 up is encoded. */
static const unsigned char gw_unreserved[128] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
	0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1,
	0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0,
};

static int unreserved(unsigned char c)
{
	return c < 128 && gw_unreserved[c];
}

/* Appends s percent-encoded per RFC 3986: only unreserved characters stay. The
 * encoded length is counted first, so the buffer grows (or the cap is hit) once. */
static void sb_put_encoded(struct sbuf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	size_t n = 0;
	char *o;

	for (p = (const unsigned char *)s; *p != '\0'; p++)
		n += unreserved(*p) ? 1 : 3;
	if (sb_room(b, n) < 0)
		return;
	o = b->p + b->len;
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (unreserved(*p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	b->len += n;
	b->p[b->len] = '\0';
}

/* Appends a base URL without its trailing slashes, so that paths join cleanly. */
static void sb_put_base(struct sbuf *b, const char *base)
{
	size_t n = strlen(base);

	while (n > 0 && base[n - 1] == '/')
		n--;
	sb_add(b, base, n);
}

static int sb_check(const struct sbuf *b, const char *what, struct err *err)
{
	if (b->fail == ERR_NOMEM)
		return err_set(err, ERR_NOMEM, "nomem", NULL, "gw: out of memory for %s", what);
	if (b->fail != ERR_NONE)
		return err_set(err, ERR_INPUT, "too_long", NULL, "gw: %s over %d bytes", what,
		    GW_REQUEST_MAX);
	return 0;
}

/* ---- config checks ---- */

static int cfg_fail(const struct gw_config *cfg, struct err *err, const char *key,
    const char *why)
{
	char field[sizeof(err->field)];

	snprintf(field, sizeof(field), "gateway.%s.%s", cfg->name, key);
	return err_set(err, ERR_INPUT, "bad_config", field, "%s: %s", field, why);
}

static int is_blank(const char *s)
{
	return s == NULL || *s == '\0';
}

static int has_ctl_or_space(const char *s)
{
	for (; *s != '\0'; s++)
		if (iscntrl((unsigned char)*s) || *s == ' ')
			return 1;
	return 0;
}

/* An http(s) URI (uri.c, the same check config.c makes); base: no query. */
static int url_ok(const char *u, int flags)
{
	char why[160];

	return uri_check_http(u, flags, why, sizeof(why)) == 0;
}

/* prefix followed by exactly 32 hex digits: ^AC[0-9a-fA-F]{32}$ and the like. */
static int sid_ok(const char *s, const char *prefix)
{
	size_t i;

	if (is_blank(s) || strlen(s) != 34 || strncmp(s, prefix, 2) != 0)
		return 0;
	for (i = 2; i < 34; i++)
		if (!isxdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

static int digits_ok(const char *s, size_t min, size_t max)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (!isdigit((unsigned char)s[n]))
			return 0;
	return n >= min && n <= max;
}

/* E.164: ^\+[1-9][0-9]{1,14}$ */
static int e164_ok(const char *s)
{
	return !is_blank(s) && s[0] == '+' && s[1] >= '1' && s[1] <= '9' &&
	    digits_ok(s + 1, 2, 15);
}

int gw_config_check(const struct gw_config *cfg, struct err *err)
{
	if (is_blank(cfg->name) || has_ctl_or_space(cfg->name))
		return err_set(err, ERR_INPUT, "bad_config", "gateway.name",
		    "gateway.name: must be a non-empty word");
	if ((int)cfg->kind < GW_TWILIO || cfg->kind > GW_WEBHOOK)
		return cfg_fail(cfg, err, "kind", "must be twilio, x-dm or webhook");
	if ((int)cfg->channel < 0 || cfg->channel >= CH_COUNT)
		return cfg_fail(cfg, err, "channel", "must be sms or dm");
	if (cfg->kind == GW_TWILIO && cfg->channel != CH_SMS)
		return cfg_fail(cfg, err, "channel", "a twilio gateway sends sms");
	if (cfg->kind == GW_XDM && cfg->channel != CH_DM)
		return cfg_fail(cfg, err, "channel", "an x-dm gateway sends dm");
	if (cfg->kind == GW_XDM && cfg->auth != NULL && strcmp(cfg->auth, "static") != 0 &&
	    strcmp(cfg->auth, "oauth2") != 0)
		return cfg_fail(cfg, err, "auth", "must be static or oauth2");
	if (cfg->kind == GW_XDM && cfg->auth != NULL && strcmp(cfg->auth, "oauth2") == 0) {
		/* the token store is the daemon's, checked by gw_new */
	} else if (is_blank(cfg->secret)) {
		return cfg_fail(cfg, err, "secret", "must not be empty");
	}
	if (!is_blank(cfg->secret) && has_ctl_or_space(cfg->secret))
		return cfg_fail(cfg, err, "secret", "must not contain blanks or control characters");
	if (cfg->timeout_ms < 0)
		return cfg_fail(cfg, err, "timeout_ms", "must be >= 0 (0 = default)");
	if (cfg->connect_timeout_ms < 0)
		return cfg_fail(cfg, err, "connect_timeout_ms", "must be >= 0 (0 = default)");
	if (!(cfg->rate_per_s >= 0) || !(cfg->burst >= 0))
		return cfg_fail(cfg, err, cfg->rate_per_s >= 0 ? "burst" : "rate_per_s",
		    "must be >= 0");
	if (cfg->max_in_flight < 0)
		return cfg_fail(cfg, err, "max_in_flight", "must be >= 0");
	switch (cfg->kind) {
	case GW_TWILIO:
		if (!url_ok(cfg->base_url, URI_BASE))
			return cfg_fail(cfg, err, "base_url", "must be an http(s) URL");
		if (!sid_ok(cfg->account_sid, "AC"))
			return cfg_fail(cfg, err, "account_sid", "must match ^AC[0-9a-fA-F]{32}$");
		if (is_blank(cfg->from) && is_blank(cfg->messaging_service_sid))
			return cfg_fail(cfg, err, "from",
			    "from or messaging_service_sid is required");
		if (!is_blank(cfg->from) && !e164_ok(cfg->from))
			return cfg_fail(cfg, err, "from", "must be E.164 (+ and 2-15 digits)");
		if (!is_blank(cfg->messaging_service_sid) &&
		    !sid_ok(cfg->messaging_service_sid, "MG"))
			return cfg_fail(cfg, err, "messaging_service_sid",
			    "must match ^MG[0-9a-fA-F]{32}$");
		if (!is_blank(cfg->status_callback_base) && !url_ok(cfg->status_callback_base, URI_BASE))
			return cfg_fail(cfg, err, "status_callback_base", "must be an http(s) URL");
		break;
	case GW_XDM:
		if (!url_ok(cfg->base_url, URI_BASE))
			return cfg_fail(cfg, err, "base_url", "must be an http(s) URL");
		break;
	case GW_WEBHOOK:
		if (!url_ok(cfg->url, 0))
			return cfg_fail(cfg, err, "url", "must be an http(s) URL");
		break;
	}
	return 0;
}

struct gw *gw_new(struct httpc *h, const struct gw_config *cfg, struct err *err)
{
	struct gw *g = NULL;

	if (h == NULL || cfg == NULL) {
		err_set(err, ERR_INPUT, "bad_config", NULL, "gw_new: client and config required");
		return NULL;
	}
	if (gw_config_check(cfg, err) < 0)
		return NULL;
	if (cfg->kind == GW_XDM && cfg->auth != NULL && strcmp(cfg->auth, "oauth2") == 0 &&
	    cfg->xauth == NULL) {
		cfg_fail(cfg, err, "auth", "oauth2 needs the daemon's token store");
		return NULL;
	}
	if ((g = calloc(1, sizeof(*g))) == NULL) {
		err_set(err, ERR_NOMEM, "nomem", NULL, "gw_new: out of memory");
		goto fail;
	}
	g->h = h;
	g->cfg = cfg;
	if (cfg->kind == GW_WEBHOOK && (g->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL) {
		err_set(err, ERR_PERM, "crypto", NULL, "gw_new: OpenSSL has no HMAC");
		goto fail;
	}
	return g;
fail:
	gw_free(g);
	return NULL;
}

void gw_free(struct gw *g)
{
	if (g == NULL)
		return;
	EVP_MAC_free(g->hmac);
	free(g);
}

const struct gw_config *gw_config_of(const struct gw *g)
{
	return g->cfg;
}

struct httpc *gw_client_of(const struct gw *g)
{
	return g->h;
}

const char *gw_kind_name(enum gw_kind k)
{
	if ((int)k < GW_TWILIO || k > GW_WEBHOOK)
		return "unknown";
	return gw_kind_names[k];
}

int gw_kind_from_name(const char *name)
{
	int k;

	for (k = GW_TWILIO; name != NULL && k <= GW_WEBHOOK; k++)
		if (strcmp(name, gw_kind_names[k]) == 0)
			return k;
	return -1;
}

/* ---- requests ---- */

static int msg_check(const struct gw *g, const struct gw_message *m, struct err *err)
{
	const char *p;

	if (m == NULL || is_blank(m->push_id) || is_blank(m->to) || is_blank(m->text))
		return err_set(err, ERR_INPUT, "missing_field", NULL,
		    "gw_send: push_id, to and text are required");
	if (strlen(m->push_id) > GW_PUSH_ID_MAX)
		return err_set(err, ERR_INPUT, "bad_push_id", "push_id",
		    "push_id: longer than %d", GW_PUSH_ID_MAX);
	for (p = m->push_id; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~')
			return err_set(err, ERR_INPUT, "bad_push_id", "push_id",
			    "push_id: only printable ASCII without blanks");
	if (m->expires_at <= m->now)
		return err_set(err, ERR_INPUT, "expired", "expires_at",
		    "expires_at: the message expired %lld s ago",
		    (long long)(m->now - m->expires_at));
	if (g->cfg->kind == GW_TWILIO && !e164_ok(m->to))
		return err_set(err, ERR_INPUT, "bad_recipient", "to", "to: not an E.164 number");
	if (g->cfg->kind == GW_XDM && !digits_ok(m->to, 1, XDM_ID_DIGITS_MAX))
		return err_set(err, ERR_INPUT, "bad_recipient", "to",
		    "to: an X user id is 1-%d digits", XDM_ID_DIGITS_MAX);
	return 0;
}

static int64_t seconds_left(const struct gw_message *m)
{
	int64_t left = m->expires_at - m->now;

	return left > GW_SECONDS_MAX ? GW_SECONDS_MAX : left;
}

/* The configured deadlines, cut so that no request outlives the message. */
static void request_deadlines(const struct gw_config *cfg, const struct gw_message *m,
    struct httpc_req *req)
{
	long left_ms = (long)seconds_left(m) * 1000;
	long t = cfg->timeout_ms > 0 ? cfg->timeout_ms : GW_TIMEOUT_DEFAULT_MS;

	req->timeout_ms = t < left_ms ? t : left_ms;
	if (m->timeout_cap_ms > 0 && m->timeout_cap_ms < req->timeout_ms)
		req->timeout_ms = m->timeout_cap_ms;
	req->connect_timeout_ms = cfg->connect_timeout_ms < req->timeout_ms ?
	    cfg->connect_timeout_ms : req->timeout_ms;
}

/* POST {base}/2010-04-01/Accounts/{sid}/Messages.json, form-encoded, Basic auth. */
static int twilio_build(const struct gw *g, const struct gw_message *m,
    struct gw_wire *w, struct httpc_req *req, struct err *err)
{
	const struct gw_config *cfg = g->cfg;
	struct sbuf cb = { 0 };
	char validity[24];
	int64_t left = seconds_left(m);
	int rc = -1;

	sb_put_base(&w->url, cfg->base_url);
	sb_puts(&w->url, "/2010-04-01/Accounts/");
	sb_puts(&w->url, cfg->account_sid);
	sb_puts(&w->url, "/Messages.json");

	sb_puts(&w->body, "To=");
	sb_put_encoded(&w->body, m->to);
	if (!is_blank(cfg->from)) {
		sb_puts(&w->body, "&From=");
		sb_put_encoded(&w->body, cfg->from);
	}
	if (!is_blank(cfg->messaging_service_sid)) {
		sb_puts(&w->body, "&MessagingServiceSid=");
		sb_put_encoded(&w->body, cfg->messaging_service_sid);
	}
	sb_puts(&w->body, "&Body=");
	sb_put_encoded(&w->body, m->text);
	if (!is_blank(cfg->status_callback_base)) {
		/* push_id is encoded into the callback URL, which is encoded again as a
		 * form value: Twilio hands the URL back to us verbatim. */
		sb_put_base(&cb, cfg->status_callback_base);
		sb_puts(&cb, "/hooks/twilio/status?push=");
		sb_put_encoded(&cb, m->push_id);
		if (sb_check(&cb, "StatusCallback", err) < 0)
			goto done;
		sb_puts(&w->body, "&StatusCallback=");
		sb_put_encoded(&w->body, cb.p);
	}
	snprintf(validity, sizeof(validity), "%lld",
	    (long long)(left > TWILIO_VALIDITY_MAX ? TWILIO_VALIDITY_MAX : left));
	sb_puts(&w->body, "&ValidityPeriod=");
	sb_puts(&w->body, validity);

	req->content_type = "application/x-www-form-urlencoded";
	req->basic_user = cfg->account_sid;
	req->basic_pass = cfg->secret;
	rc = 0;
done:
	free(cb.p);
	return rc;
}

/* Appends j printed without blanks. Returns 0 or -1 with *err (out of memory). */
static int json_put(struct sbuf *b, const cJSON *j, struct err *err)
{
	char *s = cJSON_PrintUnformatted(j);

	if (s == NULL)
		return err_set(err, ERR_NOMEM, "nomem", NULL, "gw: out of memory for JSON");
	sb_puts(b, s);
	cJSON_free(s);
	return 0;
}

/* POST {base}/2/dm_conversations/with/{to}/messages, {"text": ...}, Bearer with the
 * user's access token (xauth), or the secret when the gateway has no token store. */
static int xdm_build(const struct gw *g, const struct gw_message *m, struct gw_wire *w,
    struct httpc_req *req, unsigned long *gen, struct err *err)
{
	cJSON *j = NULL;
	const char *token = g->cfg->secret;
	int rc = -1;

	*gen = 0;
	if (g->cfg->xauth != NULL &&
	    (token = xauth_token(g->cfg->xauth, m->now, gen)) == NULL)
		return err_set(err, ERR_TEMP, "auth_paused", NULL,
		    "gw: x-dm has no usable user token now (refreshing or refused)");
	j = cJSON_CreateObject();

	sb_put_base(&w->url, g->cfg->base_url);
	sb_puts(&w->url, "/2/dm_conversations/with/");
	sb_puts(&w->url, m->to);      /* digits only: checked by msg_check */
	sb_puts(&w->url, "/messages");
	if (j == NULL || cJSON_AddStringToObject(j, "text", m->text) == NULL) {
		err_set(err, ERR_NOMEM, "nomem", NULL, "gw: out of memory for JSON");
		goto done;
	}
	if (json_put(&w->body, j, err) < 0)
		goto done;
	req->content_type = "application/json";
	req->bearer = token;
	rc = 0;
done:
	cJSON_Delete(j);
	return rc;
}

/* Lowercase hex HMAC-SHA256(secret, ts "." body) into hex[65]. Returns 0 or -1. */
static int webhook_sign(const struct gw *g, const char *ts, const struct sbuf *body,
    char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char mac[EVP_MAX_MD_SIZE];
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(g->hmac);
	OSSL_PARAM params[2];
	size_t maclen = 0, i;
	int rc = -1;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (ctx == NULL ||
	    !EVP_MAC_init(ctx, (const unsigned char *)g->cfg->secret,
	    strlen(g->cfg->secret), params) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)ts, strlen(ts)) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)body->p, body->len) ||
	    !EVP_MAC_final(ctx, mac, &maclen, sizeof(mac)) || maclen != 32)
		goto done;
	for (i = 0; i < maclen; i++) {
		hex[2 * i] = digits[mac[i] >> 4];
		hex[2 * i + 1] = digits[mac[i] & 15];
	}
	hex[64] = '\0';
	rc = 0;
done:
	EVP_MAC_CTX_free(ctx);
	return rc;
}

/* POST {url}, JSON, Idempotency-Key and an HMAC-SHA256 signature over ts "." body. */
static int webhook_build(const struct gw *g, const struct gw_message *m,
    struct gw_wire *w, struct httpc_req *req, struct err *err)
{
	cJSON *j = cJSON_CreateObject();
	char expires[32], ts[24], sig[65];
	int rc = -1;

	time_format_rfc3339(m->expires_at, expires, sizeof(expires));
	if (j == NULL ||
	    cJSON_AddStringToObject(j, "push_id", m->push_id) == NULL ||
	    cJSON_AddStringToObject(j, "to", m->to) == NULL ||
	    cJSON_AddStringToObject(j, "text", m->text) == NULL ||
	    cJSON_AddStringToObject(j, "expires_at", expires) == NULL) {
		err_set(err, ERR_NOMEM, "nomem", NULL, "gw: out of memory for JSON");
		goto done;
	}
	sb_puts(&w->url, g->cfg->url);
	if (json_put(&w->body, j, err) < 0 || sb_check(&w->body, "request body", err) < 0)
		goto done;
	snprintf(ts, sizeof(ts), "%lld", (long long)m->now);
	if (webhook_sign(g, ts, &w->body, sig) < 0) {
		err_set(err, ERR_PERM, "crypto", NULL, "gw: HMAC-SHA256 failed");
		goto done;
	}
	snprintf(w->hdr[0], sizeof(w->hdr[0]), "Idempotency-Key: %s", m->push_id);
	snprintf(w->hdr[1], sizeof(w->hdr[1]), "X-Dealpush-Timestamp: %s", ts);
	snprintf(w->hdr[2], sizeof(w->hdr[2]), "X-Dealpush-Signature: v1=%s", sig);
	req->headers[0] = w->hdr[0];
	req->headers[1] = w->hdr[1];
	req->headers[2] = w->hdr[2];
	req->content_type = "application/json";
	rc = 0;
done:
	cJSON_Delete(j);
	return rc;
}

static void on_http_done(void *arg, const struct httpc_resp *resp, int cancelled)
{
	struct gw_call *c = arg;
	struct gw_result res;

	gw_classify(c, resp, cancelled, &res);
	c->done(c->arg, &res, cancelled);
	free(c);
}

int gw_send(struct gw *g, const struct gw_message *msg, gw_done_fn *done, void *arg,
    struct err *err)
{
	struct gw_wire w;
	struct httpc_req req;
	struct gw_call *c = NULL;
	unsigned long gen = 0;
	int built = -1, rc = -1;

	memset(&w, 0, sizeof(w));
	memset(&req, 0, sizeof(req));
	if (g == NULL || done == NULL) {
		err_set(err, ERR_INPUT, "bad_request", NULL, "gw_send: gateway and done required");
		goto done;
	}
	if (msg_check(g, msg, err) < 0)
		goto done;
	switch (g->cfg->kind) {
	case GW_TWILIO:
		built = twilio_build(g, msg, &w, &req, err);
		break;
	case GW_XDM:
		built = xdm_build(g, msg, &w, &req, &gen, err);
		break;
	case GW_WEBHOOK:
		built = webhook_build(g, msg, &w, &req, err);
		break;
	}
	if (built < 0 || sb_check(&w.url, "URL", err) < 0 ||
	    sb_check(&w.body, "request body", err) < 0)
		goto done;
	req.url = w.url.p;
	req.body = w.body.p;
	req.body_len = w.body.len;
	request_deadlines(g->cfg, msg, &req);
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		err_set(err, ERR_NOMEM, "nomem", NULL, "gw_send: out of memory");
		goto done;
	}
	c->kind = g->cfg->kind;
	c->now = msg->now;
	if (c->kind == GW_XDM) {
		c->xauth = g->cfg->xauth;
		c->auth_gen = gen;
		snprintf(c->to, sizeof(c->to), "%s", msg->to);   /* 1-19 digits */
	}
	c->done = done;
	c->arg = arg;
	if (httpc_post(g->h, &req, on_http_done, c, err) < 0)
		goto done;
	c = NULL;       /* on_http_done frees it */
	rc = 0;
done:
	free(c);
	free(w.url.p);
	free(w.body.p);
	return rc;
}
