/*
 * hooks.c: inbound webhooks (stage: http). Twilio status callbacks update the push's
 * delivery record and act on error codes (hooks_status.c); inbound SMS and signed
 * DM-channel messages opt subscribers out or in (hooks_inbound.c). This file holds what
 * they share: start and stop, the routes, the form parser and Twilio signature check,
 * the phone / DM index, requests waiting for Redis, and the refusal counters.
 * It must never change anything for a request whose signature did not verify, and
 * never answer an opt-out before the script that revoked consent succeeded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/http.h>

#include "app.h"
#include "clock.h"
#include "config.h"
#include "gw.h"
#include "hooks.h"
#include "hooks_int.h"
#include "http.h"
#include "keywords.h"
#include "keys.h"
#include "log.h"
#include "model.h"
#include "rconn.h"
#include "substore.h"
#include "twsig.h"

/* ---- small helpers ------------------------------------------------------------- */

void
hooks_count(struct hooks *h, const char *what)
{
	char k[KEYS_SHARD_MAX];

	/* Best effort: a lost counter is not worth failing a webhook for. A webhook's
	 * counters are no subscriber's: shard 0's stats (keys.h), summed on read. */
	if (h->app->cmd != NULL && keys_shard_key(0, KEYS_STATS, k, sizeof(k)) >= 0)
		(void)rconn_cmd(h->app->cmd, NULL, NULL, 0, "HINCRBY %s hook:%s 1", k, what);
}

/* ORDER HOOKS_REFUSED */
static const char *const hooks_refused_names[2] = { "bad_signature", "bad_form" };

/* Writes the refusals counted since the last run, one HINCRBY per kind. */
static void
hooks_refused_flush(evutil_socket_t fd, short what, void *arg)
{
	struct hooks *h = arg;
	char k[KEYS_SHARD_MAX];
	size_t i;

	(void)fd;
	(void)what;
	(void)keys_shard_key(0, KEYS_STATS, k, sizeof(k));
	for (i = 0; i < 2; i++) {
		if (h->refused[i] != 0 && h->app->cmd != NULL)
			(void)rconn_cmd(h->app->cmd, NULL, NULL, 0, "HINCRBY %s hook:%s %lu",
			    k, hooks_refused_names[i], h->refused[i]);
		h->refused[i] = 0;
	}
}

/* A refused webhook (kind: 0 bad signature, 1 bad form): a flood of forgeries costs
 * a counter here, one Redis write and one log line a second, not one per request. */
void
hooks_refuse(struct hooks *h, int kind, const char *hook, const char *reason)
{
	static const struct timeval second = { 1, 0 };
	int64_t now = clock_mono_ms();

	h->refused[kind]++;
	if (h->refused_flush != NULL && !evtimer_pending(h->refused_flush, NULL))
		evtimer_add(h->refused_flush, &second);
	else if (h->refused_flush == NULL)
		hooks_refused_flush(-1, 0, h);
	h->refused_logged++;
	if (h->refused_log_ms != 0 && now - h->refused_log_ms < 1000)
		return;
	log_warnx("event=hook_refused hook=%s reason=%s refused=%lu", hook, reason,
	    h->refused_logged);
	h->refused_logged = 0;
	h->refused_log_ms = now;
}

int
hooks_all_digits(const char *s, size_t min, size_t max)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (s[n] < '0' || s[n] > '9' || n >= max)
			return 0;
	return n >= min;
}

int
hooks_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* ---- the phone / DM handle index ----------------------------------------------- */

static uint64_t
ix_hash(const char *s)
{
	uint64_t v = 1469598103934665603ULL;

	for (; *s != '\0'; s++) {
		v ^= (unsigned char)*s;
		v *= 1099511628211ULL;
	}
	return v;
}

static void
ix_clear(struct hooks_ix *ix)
{
	size_t i;

	for (i = 0; i < ix->cap; i++)
		free(ix->slots[i].id);
	free(ix->slots);
	ix->slots = NULL;
	ix->cap = 0;
}

static const char *
ix_key(const struct subscriber *s, enum hooks_ix_kind kind)
{
	return kind == HOOKS_IX_PHONE ? s->phone : s->dm_x;
}

/* Rebuilds ix from the whole mirror: one pass, O(subscribers). Returns 0, or -1 when
 * out of memory (the old index is kept). */
static int
ix_build(struct hooks_ix *ix, const struct substore *ss, enum hooks_ix_kind kind)
{
	struct hooks_ix fresh;
	size_t n = substore_count(ss), i, j;
	const struct subscriber *s;
	const char *key;

	memset(&fresh, 0, sizeof(fresh));
	if (n > SIZE_MAX / 8)
		return -1;
	for (fresh.cap = 16; fresh.cap < 2 * n + 1; fresh.cap <<= 1)
		;
	if ((fresh.slots = calloc(fresh.cap, sizeof(*fresh.slots))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		if ((s = substore_at(ss, i)) == NULL || (key = ix_key(s, kind)) == NULL)
			continue;
		j = (size_t)ix_hash(key) & (fresh.cap - 1);
		while (fresh.slots[j].id != NULL)
			j = (j + 1) & (fresh.cap - 1);
		if ((fresh.slots[j].id = strdup(s->id)) == NULL) {
			ix_clear(&fresh);
			return -1;
		}
		fresh.slots[j].hash = ix_hash(key);
	}
	ix_clear(ix);
	*ix = fresh;
	ix->built_ms = clock_mono_ms();
	ix->built_seq = substore_change_seq(ss);
	return 0;
}

/* 1 when ids[0 .. n-1] holds id. */
static int
ix_has(const char **ids, size_t n, const char *id)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(ids[i], id) == 0)
			return 1;
	return 0;
}

/*
 * Puts into ids (at most max, borrowed: from the index until its next rebuild, or
 * from the mirror's record until that subscriber's next change; use them before
 * returning to the loop) the subscribers whose phone (or DM handle) is key in the
 * mirror. Returns how many, or
 * -1 when the index could not be built (out of memory).
 */
int
hooks_ix_lookup(struct hooks *h, enum hooks_ix_kind kind, const char *key, const char **ids,
    size_t max)
{
	struct hooks_ix *ix = &h->ix[kind];
	const struct subscriber *s;
	const char *k;
	uint64_t hv = ix_hash(key);
	size_t j, n = 0;

	uint64_t seq, now_seq = substore_change_seq(h->app->ss);

	int64_t age = clock_mono_ms() - ix->built_ms;

	/* The index never lacks a subscriber the mirror has (a STOP must reach every
	 * subscriber of the number): the subscribers given a number since it was built
	 * are looked at below, while the mirror remembers them (substore_changed). It
	 * is rebuilt when old and the mirror changed, or when more changed than the
	 * mirror remembers (not twice in HOOKS_INDEX_MIN_AGE_MS: a bulk import), never
	 * while nothing changed. */
	if ((ix->cap == 0 || (ix->built_seq != now_seq && (age > HOOKS_INDEX_MAX_AGE_MS ||
	    (substore_changed(h->app->ss, ix->built_seq) == NULL &&
	    age >= HOOKS_INDEX_MIN_AGE_MS)))) &&
	    ix_build(ix, h->app->ss, kind) < 0 && ix->cap == 0)
		return -1;
	for (j = (size_t)hv & (ix->cap - 1); ix->slots[j].id != NULL && n < max;
	    j = (j + 1) & (ix->cap - 1)) {
		if (ix->slots[j].hash != hv ||
		    (s = substore_get(h->app->ss, ix->slots[j].id)) == NULL ||
		    (k = ix_key(s, kind)) == NULL || strcmp(k, key) != 0)
			continue;
		ids[n++] = ix->slots[j].id;
	}
	/* And the subscribers given a number since it was built, as far as the mirror
	 * remembers them. */
	seq = now_seq - ix->built_seq > SUBSTORE_RECENT_MAX ? now_seq - SUBSTORE_RECENT_MAX :
	    ix->built_seq;
	for (; seq < now_seq && n < max; seq++) {
		const char *id = substore_changed(h->app->ss, seq);

		if (id == NULL || (s = substore_get(h->app->ss, id)) == NULL ||
		    (k = ix_key(s, kind)) == NULL || strcmp(k, key) != 0 ||
		    ix_has(ids, n, s->id))
			continue;
		ids[n++] = s->id;
	}
	return (int)n;
}

int
hooks_subs_of_phone(struct hooks *h, const char *phone, const char **ids, size_t max)
{
	if (h->app->ss == NULL || !substore_ready(h->app->ss))
		return -2;
	return hooks_ix_lookup(h, HOOKS_IX_PHONE, phone, ids, max);
}

/* ---- requests waiting for Redis ----------------------------------------------- */

struct hooks_op *
hooks_op_new(struct hooks *h, struct http_req *r, enum hooks_op_kind kind)
{
	struct hooks_op *op = calloc(1, sizeof(*op));

	if (op == NULL)
		return NULL;
	op->h = h;
	op->r = r;
	op->kind = kind;
	op->next = h->ops;
	if (h->ops != NULL)
		h->ops->prev = op;
	h->ops = op;
	return op;
}

/* Unlinks op (if still attached) and frees it. */
void
hooks_op_free(struct hooks_op *op)
{
	if (op->h != NULL) {
		if (op->prev != NULL)
			op->prev->next = op->next;
		else
			op->h->ops = op->next;
		if (op->next != NULL)
			op->next->prev = op->prev;
	}
	free(op);
}

/* ---- form bodies and signatures ------------------------------------------------ */

/* Percent-decodes s in place ('+' is a space). Returns 0, or -1 for a bad escape or
 * an encoded NUL. */
static int
pct_decode(char *s)
{
	char *w = s;
	int hi, lo;

	for (; *s != '\0'; s++) {
		if (*s == '+') {
			*w++ = ' ';
		} else if (*s == '%') {
			if ((hi = hooks_hexval((unsigned char)s[1])) < 0 ||
			    (lo = hooks_hexval((unsigned char)s[2])) < 0 || (hi | lo) == 0)
				return -1;
			*w++ = (char)(hi << 4 | lo);
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
	return 0;
}

/* Parses an application/x-www-form-urlencoded body into f (f->buf is the caller's to
 * free, also on failure). Returns 0, or -1 for anything but name=value pairs joined
 * by '&' with valid escapes, at most TWSIG_PARAMS_MAX of them. */
static int
form_parse(struct hooks_form *f, const char *body, size_t len)
{
	char *p, *end, *amp, *eq;

	f->n = 0;
	if (memchr(body, '\0', len) != NULL || (f->buf = malloc(len + 1)) == NULL)
		return -1;
	memcpy(f->buf, body, len);
	f->buf[len] = '\0';
	if (len == 0)
		return 0;
	for (p = f->buf, end = f->buf + len; ; p = amp + 1) {
		if ((amp = memchr(p, '&', (size_t)(end - p))) == NULL)
			amp = end;
		*amp = '\0';
		if ((eq = strchr(p, '=')) == NULL || eq == p || f->n == TWSIG_PARAMS_MAX)
			return -1;
		*eq = '\0';
		if (pct_decode(p) < 0 || pct_decode(eq + 1) < 0)
			return -1;
		f->p[f->n].name = p;
		f->p[f->n++].value = eq + 1;
		if (amp == end)
			return 0;
	}
}

const char *
hooks_form_get(const struct hooks_form *f, const char *name)
{
	size_t i;

	for (i = 0; i < f->n; i++)
		if (strcmp(f->p[i].name, name) == 0)
			return f->p[i].value;
	return NULL;
}

/* The URL Twilio called: public_url (without a trailing '/') and the request target as
 * received, still encoded. Returns 0, or -1 when it does not fit. */
static int
twilio_url(const char *public_url, struct http_req *r, char *out, size_t size)
{
	const char *uri = evhttp_request_get_uri(http_req_evhttp(r)), *p;
	size_t blen = strlen(public_url);
	int n;

	if (uri == NULL)
		return -1;
	if (uri[0] != '/') {
		/* Absolute form: keep the path and query only. */
		if ((p = strstr(uri, "://")) == NULL || (uri = strchr(p + 3, '/')) == NULL)
			return -1;
	}
	if (blen > 0 && public_url[blen - 1] == '/')
		blen--;
	n = snprintf(out, size, "%.*s%s", (int)blen, public_url, uri);
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/* The same URL with the scheme's default port added (when absent) or removed (when
 * present), as Twilio's own libraries also accept. Returns 0, or -1 when no such form
 * exists (another port) or it does not fit. */
static int
twilio_url_alt(const char *url, char *out, size_t size)
{
	const char *host, *end, *colon, *port;
	int n;

	if (strncmp(url, "https://", 8) == 0)
		port = "443";
	else if (strncmp(url, "http://", 7) == 0)
		port = "80";
	else
		return -1;
	host = strstr(url, "://") + 3;
	if ((end = strchr(host, '/')) == NULL)
		end = host + strlen(host);
	colon = memchr(host, ':', (size_t)(end - host));
	if (colon == NULL)
		n = snprintf(out, size, "%.*s:%s%s", (int)(end - url), url, port, end);
	else if ((size_t)(end - colon - 1) == strlen(port) &&
	    memcmp(colon + 1, port, strlen(port)) == 0)
		n = snprintf(out, size, "%.*s%s", (int)(colon - url), url, end);
	else
		return -1;
	return n < 0 || (size_t)n >= size ? -1 : 0;
}

/*
 * Parses the form body and checks X-Twilio-Signature against every Twilio auth token.
 * Returns 0 with *f filled, or -1 after answering r (400 bad form, 403 unverified,
 * 503 not configured); f->buf is the caller's to free either way.
 */
int
hooks_twilio_check(struct hooks *h, struct http_req *r, struct hooks_form *f, const char *what)
{
	const struct config *cfg = h->app->cfg;
	const char *sig = http_header(r, "X-Twilio-Signature"), *body;
	char url[TWSIG_URL_MAX + 1], alt[TWSIG_URL_MAX + 1];
	size_t len, i;
	int ok = 0, has_alt;

	if (cfg->public_url == NULL || h->ntokens == 0) {
		log_warnx("event=hook_refused hook=%s reason=not_configured", what);
		http_error(r, 503, NULL, "webhook not configured");
		return -1;
	}
	body = http_body(r, &len);
	if (form_parse(f, body, len) < 0) {
		hooks_refuse(h, 1, what, "bad_form");
		http_error(r, 400, "body", "not a valid form-encoded body");
		return -1;
	}
	if (sig != NULL && twilio_url(cfg->public_url, r, url, sizeof(url)) == 0) {
		has_alt = twilio_url_alt(url, alt, sizeof(alt)) == 0;
		for (i = 0; i < h->ntokens && ok != 1; i++) {
			ok = twsig_verify(h->tokens[i], url, f->p, f->n, sig);
			if (ok != 1 && has_alt)
				ok = twsig_verify(h->tokens[i], alt, f->p, f->n, sig);
		}
	}
	if (ok != 1) {
		hooks_refuse(h, 0, what,
		    sig == NULL ? "no_signature" : ok < 0 ? "crypto" : "bad_signature");
		http_error(r, 403, NULL, "signature does not verify");
		return -1;
	}
	return 0;
}

/* ---- start and stop ------------------------------------------------------------ */

struct hooks *
hooks_start(const struct app *app, struct err *err)
{
	struct hooks *h = calloc(1, sizeof(*h));
	const struct config *cfg = app->cfg;
	char kwerr[256];
	size_t i;

	if (h == NULL) {
		err_set(err, ERR_NOMEM, "no_memory", NULL, "hooks: out of memory");
		log_errorx("event=start_failed component=hooks err=\"%s\"", err ? err->msg : "");
		return NULL;
	}
	h->app = app;
	if (app->http == NULL)
		return h;
	if ((h->refused_flush = evtimer_new(app->base, hooks_refused_flush, h)) == NULL) {
		err_set(err, ERR_NOMEM, "no_memory", NULL, "hooks: out of memory");
		goto fail;
	}
	/* config_load checked both lists the same way, so this cannot fail here. */
	if ((cfg->optout_fillers != NULL && kw_extra_add(&h->words, KW_LIST_FILLER,
	    cfg->optout_fillers, kwerr, sizeof(kwerr)) < 0) ||
	    (cfg->optout_words != NULL && kw_extra_add(&h->words, KW_LIST_OPT_OUT,
	    cfg->optout_words, kwerr, sizeof(kwerr)) < 0)) {
		err_set(err, ERR_INPUT, "bad_value", "inbound.optout_words", "%s", kwerr);
		goto fail;
	}
	h->texts.program = cfg->signup_program != NULL ? cfg->signup_program :
	    "dealpush deals";
	h->texts.max_per_week = cfg->signup_max_per_week;
	h->texts.terms_url = cfg->signup_terms_url;
	if (cfg->signup_keywords != NULL) {
		/* config_load checked them too: this cannot fail here. */
		int n = signup_keywords_parse(h->signup, SIGNUP_KEYWORDS_MAX,
		    cfg->signup_keywords, kwerr, sizeof(kwerr));

		if (n < 0) {
			err_set(err, ERR_INPUT, "bad_value", "signup.keywords", "%s", kwerr);
			goto fail;
		}
		h->nsignup = (size_t)n;
	}
	for (i = 0; i < cfg->ngateways; i++) {
		const struct gw_config *g = &cfg->gateways[i];

		if (g->kind != GW_TWILIO)
			continue;
		if (g->secret != NULL && g->secret[0] != '\0')
			h->tokens[h->ntokens++] = g->secret;
		if (h->confirm_gw == NULL && g->channel == CH_SMS &&
		    (h->confirm_gw = gw_new(app->httpc, g, err)) == NULL)
			goto fail;
	}
	if (cfg->public_url == NULL)
		log_warnx("event=hooks_degraded reason=\"http.public_url not set: Twilio "
		    "webhooks answer 503\"");
	if (http_route(app->http, EVHTTP_REQ_POST, "/hooks/twilio/status", HTTP_ROLE_PUBLIC,
	    hooks_on_status, h, HTTP_EXACT) < 0 ||
	    http_route(app->http, EVHTTP_REQ_POST, "/hooks/twilio/inbound", HTTP_ROLE_PUBLIC,
	    hooks_on_sms_inbound, h, HTTP_EXACT) < 0 ||
	    http_route(app->http, EVHTTP_REQ_POST, "/hooks/inbound", HTTP_ROLE_PUBLIC,
	    hooks_on_dm_inbound, h, 0) < 0) {
		err_set(err, ERR_NOMEM, "no_memory", NULL, "hooks: cannot add routes");
		goto fail;
	}
	if (hooks_pending_start(h) < 0) {
		err_set(err, ERR_NOMEM, "no_memory", NULL, "hooks: out of memory");
		goto fail;
	}
	return h;
fail:
	log_errorx("event=start_failed component=hooks err=\"%s\"", err ? err->msg : "");
	gw_free(h->confirm_gw);
	if (h->refused_flush != NULL)
		event_free(h->refused_flush);
	hooks_pending_stop(h);
	free(h);
	return NULL;
}

void
hooks_free(struct hooks *h)
{
	struct hooks_op *op, *next;
	size_t i;

	if (h == NULL)
		return;
	/* Each op is freed when its reply comes (rconn_free runs every pending callback
	 * with NULL); its request belongs to the server, which answers it 503. */
	for (op = h->ops; op != NULL; op = next) {
		next = op->next;
		op->h = NULL;
		op->r = NULL;
		op->prev = op->next = NULL;
	}
	for (i = 0; i < HOOKS_IX_COUNT; i++)
		ix_clear(&h->ix[i]);
	hooks_refused_flush(-1, 0, h);
	if (h->refused_flush != NULL)
		event_free(h->refused_flush);
	hooks_pending_stop(h);
	gw_free(h->confirm_gw);
	free(h);
}
