/*
 * hooks.c: inbound webhooks (stage: http). Twilio status callbacks update the push's
 * delivery record and act on error codes; inbound SMS and signed DM-channel messages
 * opt subscribers out or in (keywords.c decides what a text asks for); an SMS opt-out
 * gets one confirmation text. Every state change is one Lua script (hook_*.lua).
 * It must never change anything for a request whose signature did not verify, and
 * never answer an opt-out before the script that revoked consent succeeded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "app.h"
#include "clock.h"
#include "config.h"
#include "deal.h"
#include "gw.h"
#include "hooks.h"
#include "http.h"
#include "jsonv.h"
#include "keywords.h"
#include "log.h"
#include "model.h"
#include "rconn.h"
#include "redisutil.h"
#include "scripts.h"
#include "subscriber.h"
#include "substore.h"
#include "timefmt.h"
#include "twsig.h"

#define HOOKS_INDEX_MAX_AGE_MS 1000   /* the phone / DM index is rebuilt when older */
#define HOOKS_PUSH_MAX 256            /* bytes of a push id in a status callback */
#define HOOKS_CONFIRM_PREFIX "optout-" /* push id of a confirmation text */
#define HOOKS_TWIML_EMPTY "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
#define HOOKS_TWIML_CT "text/xml; charset=utf-8"
#define HOOKS_SID_MAX 64              /* bytes of a MessageSid kept for replays */

enum hooks_ix_kind {
	HOOKS_IX_PHONE = 0,
	HOOKS_IX_DM,
	HOOKS_IX_COUNT
};

enum hooks_op_kind {
	HOOKS_OP_STATUS,
	HOOKS_OP_SMS,
	HOOKS_OP_DM
};

/* Open addressing; a slot holds the key's hash and a copy of the subscriber id. The
 * key itself is checked against the mirror on lookup, so it is not kept. */
struct hooks_ix_slot {
	uint64_t hash;
	char *id;                       /* NULL: empty slot */
};

struct hooks_ix {
	struct hooks_ix_slot *slots;
	size_t cap;                     /* a power of two; 0 before the first build */
	int64_t built_ms;               /* monotonic */
};

/* One request waiting for a script's reply. h and r are NULL once hooks_free has
 * detached it: the reply then only frees the op. */
struct hooks_op {
	struct hooks *h;
	struct http_req *r;
	struct hooks_op *prev, *next;
	enum hooks_op_kind kind;
	enum kw_kind kw;
	char from[24];                  /* E.164 of an SMS sender */
};

struct hooks {
	const struct app *app;
	const char *tokens[CONFIG_GATEWAYS_MAX]; /* Twilio auth tokens (borrowed) */
	size_t ntokens;
	struct gw *confirm_gw;          /* NULL: no Twilio SMS gateway, no confirmation */
	struct hooks_op *ops;
	struct hooks_ix ix[HOOKS_IX_COUNT];
	struct kw_extra words;          /* [inbound] optout_words and optout_fillers */
	/* Refused webhooks: counted here, written and logged at most once a second. */
	struct event *refused_flush;
	unsigned long refused[2];       /* ORDER HOOKS_REFUSED: bad_signature, bad_form */
	unsigned long refused_logged;   /* refusals not yet in a log line */
	int64_t refused_log_ms;
};

/* Decoded form fields; names and values point into buf. */
struct hooks_form {
	char *buf;
	struct twsig_param p[TWSIG_PARAMS_MAX];
	size_t n;
};

/* ---- small helpers ------------------------------------------------------------- */

static void
hooks_count(struct hooks *h, const char *what)
{
	/* Best effort: a lost counter is not worth failing a webhook for. */
	if (h->app->cmd != NULL)
		(void)rconn_cmd(h->app->cmd, NULL, NULL, 0, "HINCRBY stats hook:%s 1", what);
}

/* ORDER HOOKS_REFUSED */
static const char *const hooks_refused_names[2] = { "bad_signature", "bad_form" };

/* Writes the refusals counted since the last run, one HINCRBY per kind. */
static void
hooks_refused_flush(evutil_socket_t fd, short what, void *arg)
{
	struct hooks *h = arg;
	size_t i;

	(void)fd;
	(void)what;
	for (i = 0; i < 2; i++) {
		if (h->refused[i] != 0 && h->app->cmd != NULL)
			(void)rconn_cmd(h->app->cmd, NULL, NULL, 0, "HINCRBY stats hook:%s %lu",
			    hooks_refused_names[i], h->refused[i]);
		h->refused[i] = 0;
	}
}

/* A refused webhook (kind: 0 bad signature, 1 bad form): a flood of forgeries costs
 * a counter here, one Redis write and one log line a second, not one per request. */
static void
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

static int
all_digits(const char *s, size_t min, size_t max)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (s[n] < '0' || s[n] > '9' || n >= max)
			return 0;
	return n >= min;
}

static int
hexval(int c)
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
	return 0;
}

/*
 * Puts into ids (at most max, borrowed from the index until its next rebuild) the
 * subscribers whose phone (or DM handle) is key in the mirror. Returns how many, or
 * -1 when the index could not be built (out of memory).
 */
static int
ix_lookup(struct hooks *h, enum hooks_ix_kind kind, const char *key, const char **ids,
    size_t max)
{
	struct hooks_ix *ix = &h->ix[kind];
	const struct subscriber *s;
	const char *k;
	uint64_t hv = ix_hash(key);
	size_t j, n = 0;

	if ((ix->cap == 0 || clock_mono_ms() - ix->built_ms > HOOKS_INDEX_MAX_AGE_MS) &&
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
	return (int)n;
}

/* ---- requests waiting for Redis ----------------------------------------------- */

static struct hooks_op *
op_new(struct hooks *h, struct http_req *r, enum hooks_op_kind kind)
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
static void
op_free(struct hooks_op *op)
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
			if ((hi = hexval((unsigned char)s[1])) < 0 ||
			    (lo = hexval((unsigned char)s[2])) < 0 || (hi | lo) == 0)
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

static const char *
form_get(const struct hooks_form *f, const char *name)
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
static int
twilio_check(struct hooks *h, struct http_req *r, struct hooks_form *f, const char *what)
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

/* ---- POST /hooks/twilio/status ------------------------------------------------- */

static int
status_known(const char *s)
{
	static const char *const known[] = { "queued", "accepted", "sending", "sent",
	    "delivered", "undelivered", "failed", NULL };
	size_t i;

	for (i = 0; known[i] != NULL; i++)
		if (strcmp(s, known[i]) == 0)
			return 1;
	return 0;
}

/* Splits "<ms>-<seq>:<sub>:<channel>" into buf; returns 0 or -1 when malformed. */
static int
push_split(const char *push, char *buf, size_t size, const char **entry,
    const char **sub, const char **ch)
{
	char *c1, *c2, *dash;
	size_t len = strlen(push);

	if (len == 0 || len >= size || len > HOOKS_PUSH_MAX)
		return -1;
	memcpy(buf, push, len + 1);
	if ((c1 = strchr(buf, ':')) == NULL || (c2 = strrchr(buf, ':')) == c1)
		return -1;
	*c1 = *c2 = '\0';
	if ((dash = strchr(buf, '-')) == NULL)
		return -1;
	*dash = '\0';
	if (!all_digits(buf, 1, 20) || !all_digits(dash + 1, 1, 20))
		return -1;
	*dash = '-';
	*entry = buf;
	*sub = c1 + 1;
	*ch = c2 + 1;
	if (**sub == '\0' || strlen(*sub) > MODEL_ID_MAX || channel_from_name(*ch) < 0)
		return -1;
	return 0;
}

/*
 * A status callback in flight: hook_status.lua may only touch the keys it is given,
 * and some name what only Redis knows (the deal of the push's entry; the rule and
 * campaign its reports go to), so those are read first, on the same connection and
 * with the same deadlines, then the script runs with every key and re-checks what was
 * read: "retry" when it no longer holds, and the reads start again, at most
 * HOOKS_STATUS_TRIES times. Owns op (and through it the request) until it answers.
 */
#define HOOKS_STATUS_TRIES 3
#define HOOKS_STATUS_ARGS 11

enum hooks_status_step {
	HOOKS_ST_SEEN,                  /* hook_status_seen.lua claim: a replay? */
	HOOKS_ST_DEAL,                  /* GET dealentry:<entry> */
	HOOKS_ST_RINFO,                 /* HGET resolve:info <push id> */
	HOOKS_ST_PINFO,                 /* HGET pushinfo:<deal> <sub>:<ch> */
	HOOKS_ST_SCRIPT                 /* hook_status.lua */
};

struct hooks_status {
	struct hooks_op *op;
	enum hooks_status_step step;
	int tries;
	char push[HOOKS_PUSH_MAX + 1];  /* the push id as given */
	char pbuf[HOOKS_PUSH_MAX + 1];  /* entry, sub, ch split (push_split) */
	const char *entry, *sub, *ch;
	char status[16], code[8], to[24], now[24], sid[MODEL_ID_MAX + 1], sidq[80];
	char deal[MODEL_ID_MAX + 1];    /* "" = the entry names no deal */
	char *rinfo, *pinfo;            /* what was read; NULL = nothing */
	int claimed;                    /* (sid, status) claimed: done or release it */
};

/* (MessageSid, MessageStatus) is counted once: a claim is held this long while
 * hook_status.lua runs, and a counted pair is remembered as long as delivery:<deal>. */
#define HOOKS_SEEN_CLAIM_S 60
#define HOOKS_SEEN_DONE_S (30 * 86400)

static void
on_seen_mark(struct rconn *rc, struct redisReply *reply, void *arg)
{
	(void)rc;
	(void)arg;
	/* Best effort: a lost "done" leaves a claim that expires, a lost "release" a
	 * claim that answers 503 to Twilio's retries until it expires. */
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		log_warnx("event=hook_status_seen_failed err=\"%s\"", reply == NULL ?
		    "no reply" : reply->str);
}

/* Runs hook_status_seen.lua op ("claim", "done", "release") for st's (sid, status);
 * cb NULL: nobody waits. Returns 0, 1 when the key would not fit, -1 when Redis is not
 * connected. */
static int
status_seen(struct hooks_status *st, const char *op, rconn_reply_fn *cb)
{
	char key[MODEL_ID_MAX + 64], claim[16], done[16];
	const char *args[4];
	int n;

	n = snprintf(key, sizeof(key), "status_seen:%s:%s", st->sid, st->status);
	if (n < 0 || (size_t)n >= sizeof(key))
		return 1;
	snprintf(claim, sizeof(claim), "%d", HOOKS_SEEN_CLAIM_S);
	snprintf(done, sizeof(done), "%d", HOOKS_SEEN_DONE_S);
	args[0] = key;
	args[1] = op;
	args[2] = claim;
	args[3] = done;
	return script_call_named(st->op->h->app->cmd, "hook_status_seen", 1, 4, args, NULL,
	    cb != NULL ? cb : on_seen_mark, st);
}

static void
status_free(struct hooks_status *st)
{
	if (st == NULL)
		return;
	if (st->claimed && st->op != NULL && st->op->h != NULL)
		(void)status_seen(st, "release", NULL);
	if (st->op != NULL)
		op_free(st->op);
	free(st->rinfo);
	free(st->pinfo);
	free(st);
}

/* Answers the request 503 (try again later) and frees st. */
static void
status_fail(struct hooks_status *st, const char *err)
{
	log_warnx("event=hook_status_failed err=\"%s\"", err);
	if (st->op->r != NULL)
		http_error(st->op->r, 503, NULL, "try again later");
	status_free(st);
}

static void on_status_step(struct rconn *rc, struct redisReply *reply, void *arg);

/* A rule and a campaign from "<rule>\t<campaign>" (pushinfo: the campaign is the
 * rest) or, when resolve is set, from fields 7 and 8 of a resolve:info value
 * (ORDER RESOLVE_INFO); as hook_status.lua matches them. Returns 0, or -1 when v is
 * not in that form (no report keys then). The pointers are into v, lengths apart. */
static int
status_rule_camp(const char *v, int resolve, const char **rule, size_t *rlen,
    const char **camp, size_t *clen)
{
	const char *f[8], *t;
	int i;

	if (v == NULL)
		return -1;
	if (!resolve) {
		if ((t = strchr(v, '\t')) == NULL)
			return -1;
		*rule = v;
		*rlen = (size_t)(t - v);
		*camp = t + 1;
		*clen = strlen(t + 1);
		return 0;
	}
	f[0] = v;
	for (i = 1; i < 8; i++) {
		if ((t = strchr(f[i - 1], '\t')) == NULL)
			return -1;
		f[i] = t + 1;
	}
	*rule = f[6];
	*rlen = (size_t)(f[7] - 1 - f[6]);
	*camp = f[7];
	*clen = strcspn(f[7], "\t");
	return 0;
}

#define HOOKS_KEY_MAX 512               /* a key named from a push's data */

/* ru_key into a buffer of HOOKS_KEY_MAX bytes. */
static int
status_key(char *buf, const char *prefix, const char *v, size_t n)
{
	return ru_key(buf, HOOKS_KEY_MAX, prefix, v, n);
}

/* Sends the current step's command: a read, or hook_status.lua with every key.
 * Returns 0, 1 when a key would not fit (nothing sent), or -1 when Redis is not
 * connected. */
static int
status_send(struct hooks_status *st)
{
	/* ORDER HOOK_STATUS_KEYS: the per-deal keys, KEYS[7..12]. */
	static const char *const deal_prefix[6] = { "delivery:", "push:", "pushinfo:",
	    "pushline:", "redelivered:", "report:deal:" };
	struct rconn *rc = st->op->h->app->cmd;
	char k[14][HOOKS_KEY_MAX], field[MODEL_ID_MAX + 32];
	const char *args[24 + HOOKS_STATUS_ARGS], *rule, *camp;
	size_t rlen = 0, clen = 0, dlen = strlen(st->deal);
	int i, bad = 0;

	snprintf(field, sizeof(field), "%s:%s", st->sub, st->ch);
	bad |= status_key(k[0], "dealentry:", st->entry, strlen(st->entry));
	switch (st->step) {
	case HOOKS_ST_SEEN:
		return status_seen(st, "claim", on_status_step);
	case HOOKS_ST_DEAL:
		args[0] = "GET";
		args[1] = k[0];
		return bad ? 1 : rconn_argv(rc, on_status_step, st, 0, 2, args, NULL);
	case HOOKS_ST_RINFO:
		args[0] = "HGET";
		args[1] = "resolve:info";
		args[2] = st->push;
		return rconn_argv(rc, on_status_step, st, 0, 3, args, NULL);
	case HOOKS_ST_PINFO:
		bad |= status_key(k[1], "pushinfo:", st->deal, dlen);
		args[0] = "HGET";
		args[1] = k[1];
		args[2] = field;
		return bad ? 1 : rconn_argv(rc, on_status_step, st, 0, 3, args, NULL);
	case HOOKS_ST_SCRIPT:
		break;
	}
	/* ORDER HOOK_STATUS_KEYS: the header of hook_status.lua. */
	args[0] = k[0];
	args[1] = "stats";
	args[2] = "resolve:due";
	args[3] = "resolve:info";
	args[4] = "resolve:tries";
	args[5] = "pushes:log";
	for (i = 0; i < 6; i++) {
		bad |= status_key(k[1 + i], deal_prefix[i], st->deal, dlen);
		args[6 + i] = k[1 + i];
	}
	rule = camp = NULL;
	if (dlen > 0 && status_rule_camp(st->rinfo, 1, &rule, &rlen, &camp, &clen) < 0)
		rule = camp = NULL;
	bad |= status_key(k[7], "report:rule:", rule, rlen);
	bad |= status_key(k[8], "report:campaign:", camp, clen);
	rule = camp = NULL;
	if (dlen > 0 && status_rule_camp(st->pinfo, 0, &rule, &rlen, &camp, &clen) < 0)
		rule = camp = NULL;
	bad |= status_key(k[9], "report:rule:", rule, rlen);
	bad |= status_key(k[10], "report:campaign:", camp, clen);
	for (i = 0; i < 4; i++)
		args[12 + i] = k[7 + i];
	args[16] = "subscribers";
	args[17] = "subscribers:changes";
	args[18] = "consent:sms";
	args[19] = "consent:epoch";
	args[20] = "consent:records";
	args[21] = "";                  /* not used */
	args[22] = "paused_templates";
	args[23] = "pushes";
	args[24] = st->entry;
	args[25] = st->sub;
	args[26] = st->ch;
	args[27] = st->status;
	args[28] = st->code;
	args[29] = st->to;
	args[30] = st->now;
	args[31] = st->sid;
	args[32] = st->deal;
	args[33] = st->rinfo != NULL ? st->rinfo : "";
	args[34] = st->pinfo != NULL ? st->pinfo : "";
	if (bad)
		return 1;
	return script_call_named(rc, "hook_status", 24, 24 + HOOKS_STATUS_ARGS, args, NULL,
	    on_status_step, st);
}

/* Copies a bulk string reply (NULL for nil) into *out. Returns 0, or -1 for another
 * reply, an oversized one or out of memory (err set). */
static int
status_copy(struct redisReply *reply, char **out, const char **err)
{
	if (ru_copy(reply, 65536, out) == 0)
		return 0;
	*err = reply->type == REDIS_REPLY_ERROR ? reply->str :
	    reply->type == REDIS_REPLY_STRING && reply->len <= 65536 ? "out of memory" :
	    "bad reply";
	return -1;
}

/* Sends st's current step; on failure answers 503 and frees st. */
static void
status_next(struct hooks_status *st)
{
	int sent = status_send(st);

	if (sent < 0) {
		log_warnx("event=hook_status_failed err=\"redis not connected\" sid=%s",
		    st->sidq);
		http_error(st->op->r, 503, NULL, "try again later");
		status_free(st);
	} else if (sent > 0) {
		status_fail(st, "key too long");
	}
}

/* One step's reply: the next step, the answer, or a retry from the first read. */
static void
on_status_step(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct hooks_status *st = arg;
	const char *err = NULL;
	char *deal = NULL;

	(void)rc;
	if (st->op->r == NULL) {        /* hooks_free: nobody to answer */
		status_free(st);
		return;
	}
	if (reply == NULL) {
		status_fail(st, "no reply");
		return;
	}
	switch (st->step) {
	case HOOKS_ST_SEEN:
		if (reply->type != REDIS_REPLY_STATUS && reply->type != REDIS_REPLY_STRING) {
			status_fail(st, reply->type == REDIS_REPLY_ERROR ? reply->str :
			    "bad reply");
			return;
		}
		if (strcmp(reply->str, "duplicate") == 0) {
			/* Counted before: a replay or Twilio's retry. */
			log_info("event=hook_status result=duplicate_callback sid=%s",
			    st->sidq);
			hooks_count(st->op->h, "status:duplicate_callback");
			http_reply(st->op->r, 204, NULL, "", 0);
			status_free(st);
			return;
		}
		if (strcmp(reply->str, "new") != 0) {
			status_fail(st, "the same callback is being counted");
			return;
		}
		st->claimed = 1;
		st->step = HOOKS_ST_DEAL;
		break;
	case HOOKS_ST_DEAL:
		if (status_copy(reply, &deal, &err) < 0) {
			status_fail(st, err);
			return;
		}
		if (deal != NULL && strlen(deal) >= sizeof(st->deal)) {
			free(deal);
			status_fail(st, "bad reply");
			return;
		}
		snprintf(st->deal, sizeof(st->deal), "%s", deal != NULL ? deal : "");
		free(deal);
		free(st->rinfo);
		free(st->pinfo);
		st->rinfo = st->pinfo = NULL;
		/* No deal: the script only counts the push unknown (or asks again). */
		st->step = st->deal[0] != '\0' ? HOOKS_ST_RINFO : HOOKS_ST_SCRIPT;
		break;
	case HOOKS_ST_RINFO:
		if (status_copy(reply, &st->rinfo, &err) < 0) {
			status_fail(st, err);
			return;
		}
		st->step = HOOKS_ST_PINFO;
		break;
	case HOOKS_ST_PINFO:
		if (status_copy(reply, &st->pinfo, &err) < 0) {
			status_fail(st, err);
			return;
		}
		st->step = HOOKS_ST_SCRIPT;
		break;
	case HOOKS_ST_SCRIPT:
		if (reply->type != REDIS_REPLY_STATUS && reply->type != REDIS_REPLY_STRING) {
			status_fail(st, reply->type == REDIS_REPLY_ERROR ? reply->str :
			    "bad reply");
			return;
		}
		if (strcmp(reply->str, "retry") == 0) {
			if (++st->tries >= HOOKS_STATUS_TRIES) {
				status_fail(st, "the push's keys kept changing");
				return;
			}
			st->step = HOOKS_ST_DEAL;
			break;
		}
		log_info("event=hook_status result=%s", reply->str);
		if (st->claimed) {
			(void)status_seen(st, "done", NULL);
			st->claimed = 0;
		}
		http_reply(st->op->r, 204, NULL, "", 0);
		status_free(st);
		return;
	}
	status_next(st);
}

static void
on_status(struct http_req *r, void *arg)
{
	struct hooks *h = arg;
	struct hooks_form f;
	struct hooks_status *st;
	char pbuf[HOOKS_PUSH_MAX + 1], sidq[80];
	const char *push, *status, *code, *to, *sid, *entry, *sub, *ch;

	memset(&f, 0, sizeof(f));
	if (twilio_check(h, r, &f, "twilio_status") < 0)
		goto done;
	push = http_query(r, "push");
	status = form_get(&f, "MessageStatus");
	code = form_get(&f, "ErrorCode");
	to = form_get(&f, "To");
	sid = form_get(&f, "MessageSid");
	if (push == NULL) {
		http_error(r, 400, "push", "the push query parameter is missing");
		goto done;
	}
	if (status == NULL) {
		http_error(r, 400, "MessageStatus", "MessageStatus is missing");
		goto done;
	}
	if (code == NULL)
		code = "";
	if (*code != '\0' && !all_digits(code, 1, 6)) {
		http_error(r, 400, "ErrorCode", "ErrorCode is not a number");
		goto done;
	}
	if (to == NULL || !phone_is_e164(to))
		to = "";
	log_quote(sid ? sid : "", sidq, sizeof(sidq));
	if (strncmp(push, HOOKS_CONFIRM_PREFIX, strlen(HOOKS_CONFIRM_PREFIX)) == 0) {
		/* One of our confirmation texts: nothing to record. */
		hooks_count(h, "status:confirmation");
		http_reply(r, 204, NULL, "", 0);
		goto done;
	}
	if (push_split(push, pbuf, sizeof(pbuf), &entry, &sub, &ch) < 0 ||
	    !status_known(status)) {
		/* 2xx all the same: Twilio would only retry the same callback. */
		log_warnx("event=hook_status_ignored reason=%s sid=%s",
		    status_known(status) ? "bad_push" : "unknown_status", sidq);
		hooks_count(h, status_known(status) ? "status:bad_push" :
		    "status:unknown_status");
		http_reply(r, 204, NULL, "", 0);
		goto done;
	}
	if ((st = calloc(1, sizeof(*st))) == NULL ||
	    (st->op = op_new(h, r, HOOKS_OP_STATUS)) == NULL) {
		free(st);
		http_error(r, 503, NULL, "out of memory");
		goto done;
	}
	/* push_split checked every length against these buffers. */
	snprintf(st->push, sizeof(st->push), "%s", push);
	memcpy(st->pbuf, pbuf, sizeof(st->pbuf));
	st->entry = st->pbuf + (entry - pbuf);
	st->sub = st->pbuf + (sub - pbuf);
	st->ch = st->pbuf + (ch - pbuf);
	snprintf(st->status, sizeof(st->status), "%s", status);
	snprintf(st->code, sizeof(st->code), "%s", code);
	snprintf(st->to, sizeof(st->to), "%s", to);
	snprintf(st->now, sizeof(st->now), "%lld", (long long)clock_now());
	/* A Twilio message SID ("SM" and 32 hex digits) is an id like a deal's; one that
	 * is not is passed as "" and only loses the stale-attempt check (and resolves
	 * no unknown push). */
	snprintf(st->sid, sizeof(st->sid), "%s",
	    deal_id_is_valid(sid) && strlen(sid) < sizeof(st->sid) ? sid : "");
	snprintf(st->sidq, sizeof(st->sidq), "%s", sidq);
	/* Counted once per (MessageSid, MessageStatus); without a sid, no replay check. */
	st->step = st->sid[0] != '\0' ? HOOKS_ST_SEEN : HOOKS_ST_DEAL;
	status_next(st);
done:
	free(f.buf);
}

/* ---- opt-out / opt-in scripts -------------------------------------------------- */

/* One inbound message for hook_consent.lua (ORDER HOOK_CONSENT_KEYS). */
struct hooks_msg {
	const char *ch;                 /* "sms" | "dm" */
	const char *label;              /* the keyword label, or a reply's reason */
	const char *match, *value;      /* "phone" | "dm" | "id", what it must still be */
	const char *ack;                /* the confirmation dedupe key, "" for none */
	const char *sid;                /* MessageSid, "" for none */
	const char *text;               /* the body, for a reply kept for review */
	size_t text_len;
};

/*
 * Runs hook_consent.lua for ids and keeps op until it answers (cb): an opt-out or
 * opt-in (op->kw), or, for KW_NONE, the message put on the replies stream. Every key
 * the script touches is passed in KEYS (consent:records holds every id's record).
 * Returns 0, or -1 when Redis is not connected or out of memory (op untouched).
 */
static int
consent_call(struct hooks *h, struct hooks_op *op, const struct hooks_msg *m,
    const char **ids, size_t nids, rconn_reply_fn *cb)
{
	const char *args[10 + 11 + HOOKS_IDS_MAX];
	size_t lens[10 + 11 + HOOKS_IDS_MAX];
	char how[64], now[24], rfc[32], ttl[16], consent[32], seen[HOOKS_SID_MAX + 16];
	int64_t t = clock_now();
	size_t i, n = 0, nkeys;

	if (nids > HOOKS_IDS_MAX)
		nids = HOOKS_IDS_MAX;
	snprintf(consent, sizeof(consent), "consent:%s", m->ch);
	snprintf(how, sizeof(how), "%s:%s", op->kind == HOOKS_OP_SMS ? "sms" : "dm",
	    op->kw == KW_OPT_OUT ? "STOP" : "START");
	snprintf(now, sizeof(now), "%lld", (long long)t);
	time_format_rfc3339(t, rfc, sizeof(rfc));
	snprintf(ttl, sizeof(ttl), "%d", HOOKS_CONFIRM_DEDUPE_S);
	snprintf(seen, sizeof(seen), "inbound:seen:%s", m->sid);
	/* ORDER HOOK_CONSENT_KEYS: the header of hook_consent.lua. */
	args[n++] = "subscribers";
	args[n++] = "subscribers:changes";
	args[n++] = consent;
	args[n++] = "consent:epoch";
	args[n++] = m->ack[0] != '\0' ? m->ack : "optout_ack:";
	args[n++] = "inbound:sids";
	args[n++] = "suppressed:sms";
	args[n++] = "replies";
	args[n++] = seen;
	args[n++] = "consent:records";
	nkeys = n;
	args[n++] = op->kw == KW_OPT_OUT ? "out" : op->kw == KW_OPT_IN ? "in" : "reply";
	args[n++] = m->ch;
	args[n++] = how;
	args[n++] = m->label;
	args[n++] = now;
	args[n++] = rfc;
	args[n++] = m->match;
	args[n++] = m->value;
	args[n++] = m->ack[0] != '\0' ? ttl : "";
	args[n++] = m->sid;
	args[n++] = m->text != NULL ? m->text : "";
	for (i = 0; i < n; i++)
		lens[i] = strlen(args[i]);
	if (m->text != NULL)
		lens[n - 1] = m->text_len;
	for (i = 0; i < nids; i++) {
		lens[n] = strlen(ids[i]);
		args[n++] = ids[i];
	}
	return script_call_named(h->app->cmd, "hook_consent", (int)nkeys, (int)n, args, lens,
	    cb, op);
}

/* Reads hook_consent.lua's { found, changed, confirm, duplicate }. Returns 0 or -1. */
static int
consent_result(const redisReply *reply, long long out[4])
{
	size_t i;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4)
		return -1;
	for (i = 0; i < 4; i++) {
		if (reply->element[i]->type != REDIS_REPLY_INTEGER)
			return -1;
		out[i] = reply->element[i]->integer;
	}
	return 0;
}

static const char *
reply_error(const redisReply *reply)
{
	if (reply == NULL)
		return "no reply";
	return reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply";
}

/* ---- POST /hooks/twilio/inbound ------------------------------------------------ */

static void
on_confirm_sent(void *arg, const struct gw_result *res, int cancelled)
{
	(void)arg;
	if (cancelled)
		log_warnx("event=optout_confirm_failed err=cancelled");
	else if (res->outcome != GW_SENT)
		log_warnx("event=optout_confirm_failed http_status=%d code=%d err=\"%s\"",
		    res->http_status, res->provider_code, res->detail);
	else
		log_info("event=optout_confirm_sent provider_id=%s", res->provider_id);
}

/* Sends the one confirmation text of an opt-out to phone (best effort, logged). */
static void
confirm_send(struct hooks *h, const char *phone)
{
	struct gw_message m;
	struct err err;
	char push[48], masked[32];
	int64_t now = clock_now();

	log_mask_phone(phone, masked, sizeof(masked));
	if (h->confirm_gw == NULL) {
		log_warnx("event=optout_confirm_failed to=%s err=\"no twilio sms gateway\"",
		    masked);
		return;
	}
	snprintf(push, sizeof(push), HOOKS_CONFIRM_PREFIX "%lld", (long long)clock_now_ms());
	memset(&m, 0, sizeof(m));
	m.push_id = push;
	m.to = phone;
	m.text = HOOKS_CONFIRM_TEXT;
	m.now = now;
	m.expires_at = now + 3600;
	err_clear(&err);
	if (gw_send(h->confirm_gw, &m, on_confirm_sent, NULL, &err) < 0)
		log_warnx("event=optout_confirm_failed to=%s err=\"%s\"", masked, err.msg);
}

static void
twiml_reply(struct http_req *r, const char *message)
{
	char buf[512];
	int n;

	if (message == NULL) {
		http_reply(r, 200, HOOKS_TWIML_CT, HOOKS_TWIML_EMPTY,
		    strlen(HOOKS_TWIML_EMPTY));
		return;
	}
	/* message is one of our constants: no XML escaping needed. */
	n = snprintf(buf, sizeof(buf), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	    "<Response><Message>%s</Message></Response>", message);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = 0;
	http_reply(r, 200, HOOKS_TWIML_CT, buf, (size_t)n);
}

static void
on_sms_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct hooks_op *op = arg;
	struct hooks *h = op->h;
	struct http_req *r = op->r;
	char masked[32], from[sizeof(op->from)];
	enum kw_kind kw = op->kw;
	long long res[4];

	(void)rc;
	memcpy(from, op->from, sizeof(from));
	op_free(op);
	if (r == NULL)
		return;
	log_mask_phone(from, masked, sizeof(masked));
	if (consent_result(reply, res) < 0) {
		/* Not answered 2xx: Twilio tries again, and the script is idempotent. */
		log_warnx("event=hook_inbound_failed channel=sms from=%s err=\"%s\"", masked,
		    reply_error(reply));
		http_error(r, 503, NULL, "try again later");
		return;
	}
	if (res[3] == 1)
		hooks_count(h, "inbound:duplicate");
	log_info("event=hook_inbound channel=sms from=%s kind=%s found=%lld changed=%lld "
	    "confirm=%lld duplicate=%lld", masked, kw_kind_name(kw), res[0], res[1], res[2],
	    res[3]);
	twiml_reply(r, NULL);
	if (res[2] == 1)
		confirm_send(h, from);
}

/* A Twilio MessageSid we can keep as a key and a field: an id ("SM" and 32 hex
 * digits), else "" (no replay check for that message). */
static const char *
sid_or_empty(const char *sid)
{
	return deal_id_is_valid(sid) && strlen(sid) <= HOOKS_SID_MAX ? sid : "";
}

static void
on_sms_inbound(struct http_req *r, void *arg)
{
	struct hooks *h = arg;
	struct hooks_form f;
	struct hooks_op *op;
	struct hooks_msg m;
	const char *from, *body, *ids[HOOKS_IDS_MAX];
	char matched[KW_MATCHED_MAX], masked[32], ack[64];
	enum kw_kind kw;
	size_t blen;
	int n = 0;

	memset(&f, 0, sizeof(f));
	if (twilio_check(h, r, &f, "twilio_inbound") < 0)
		goto done;
	from = form_get(&f, "From");
	body = form_get(&f, "Body");
	if (from == NULL || body == NULL) {
		http_error(r, 400, from == NULL ? "From" : "Body", "%s is missing",
		    from == NULL ? "From" : "Body");
		goto done;
	}
	blen = strlen(body);
	kw = kw_classify_with(&h->words, body, blen, matched, sizeof(matched));
	log_mask_phone(from, masked, sizeof(masked));
	memset(&m, 0, sizeof(m));
	m.ch = "sms";
	m.label = matched;
	m.match = "phone";
	m.value = from;
	m.ack = "";
	m.sid = sid_or_empty(form_get(&f, "MessageSid"));
	if (kw == KW_HELP) {
		log_info("event=hook_inbound channel=sms from=%s kind=help", masked);
		twiml_reply(r, HOOKS_HELP_TEXT);
		goto done;
	}
	if (kw == KW_NONE) {
		/* Kept for review, never dropped: answered once it is on the stream. */
		m.label = matched[0] != '\0' ? matched : "no_keyword";
		m.text = body;
		m.text_len = blen > KW_BODY_MAX ? KW_BODY_MAX : blen;
	} else if (!phone_is_e164(from)) {
		log_warnx("event=hook_inbound_unknown channel=sms from=%s kind=%s", masked,
		    kw_kind_name(kw));
		hooks_count(h, "inbound:unknown_sender");
		twiml_reply(r, NULL);
		goto done;
	} else {
		if (h->app->ss == NULL || !substore_ready(h->app->ss)) {
			/* A miss here would be a missed opt-out: let Twilio try again. */
			http_error(r, 503, NULL, "subscribers not loaded yet");
			goto done;
		}
		if ((n = ix_lookup(h, HOOKS_IX_PHONE, from, ids, HOOKS_IDS_MAX)) < 0) {
			http_error(r, 503, NULL, "out of memory");
			goto done;
		}
		if (n == 0) {
			/* Still run: an opt-out puts the number on the suppression list,
			 * an opt-in takes it off, and the sid is remembered. */
			log_warnx("event=hook_inbound_unknown channel=sms from=%s kind=%s",
			    masked, kw_kind_name(kw));
			hooks_count(h, "inbound:unknown_sender");
		}
		snprintf(ack, sizeof(ack), "optout_ack:%s", from);
		m.ack = ack;
	}
	if ((op = op_new(h, r, HOOKS_OP_SMS)) == NULL) {
		http_error(r, 503, NULL, "out of memory");
		goto done;
	}
	op->kw = kw;
	snprintf(op->from, sizeof(op->from), "%s", from);
	if (consent_call(h, op, &m, ids, (size_t)n, on_sms_reply) < 0) {
		op_free(op);
		log_warnx("event=hook_inbound_failed channel=sms from=%s "
		    "err=\"redis not connected\"", masked);
		http_error(r, 503, NULL, "try again later");
	}
done:
	free(f.buf);
}

/* ---- POST /hooks/inbound/<channel> --------------------------------------------- */

/* Checks X-Dealpush-Timestamp (within HOOKS_SKEW_MAX_S of our clock) and
 * X-Dealpush-Signature "v1=<hex HMAC-SHA256(secret, ts "." body)>" in constant time.
 * Returns 1 verified, 0 not (why says which), -1 crypto failure. */
static int
dm_verify(const char *secret, struct http_req *r, const char *body, size_t len,
    const char **why)
{
	static const char digits[] = "0123456789abcdef";
	const char *ts = http_header(r, "X-Dealpush-Timestamp");
	const char *sig = http_header(r, "X-Dealpush-Signature");
	unsigned char mac[EVP_MAX_MD_SIZE];
	char hex[65], given[65], *msg;
	size_t maclen = 0, tlen, i;
	long long t, now = (long long)clock_now();
	int rc = -1;

	*why = "no_signature";
	if (ts == NULL || sig == NULL)
		return 0;
	*why = "bad_timestamp";
	if (!all_digits(ts, 1, 12))
		return 0;
	t = strtoll(ts, NULL, 10);
	if (t < now - HOOKS_SKEW_MAX_S || t > now + HOOKS_SKEW_MAX_S)
		return 0;
	*why = "bad_signature";
	if (strncmp(sig, "v1=", 3) != 0 || strlen(sig + 3) != 64)
		return 0;
	for (i = 0; i < 64; i++) {
		int c = (unsigned char)sig[3 + i];

		if (hexval(c) < 0)
			return 0;
		given[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
	}
	given[64] = '\0';
	tlen = strlen(ts);
	if ((msg = malloc(tlen + 1 + len + 1)) == NULL)
		return -1;
	memcpy(msg, ts, tlen);
	msg[tlen] = '.';
	memcpy(msg + tlen + 1, body, len);
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, strlen(secret),
	    (const unsigned char *)msg, tlen + 1 + len, mac, sizeof(mac), &maclen) == NULL ||
	    maclen != 32)
		goto done;
	for (i = 0; i < 32; i++) {
		hex[2 * i] = digits[mac[i] >> 4];
		hex[2 * i + 1] = digits[mac[i] & 15];
	}
	hex[64] = '\0';
	rc = CRYPTO_memcmp(hex, given, 64) == 0 ? 1 : 0;
done:
	free(msg);
	return rc;
}

static void
dm_answer(struct http_req *r, const char *result, const char *reply)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || cJSON_AddStringToObject(o, "result", result) == NULL ||
	    (reply != NULL && cJSON_AddStringToObject(o, "reply", reply) == NULL)) {
		cJSON_Delete(o);
		http_error(r, 503, NULL, "out of memory");
		return;
	}
	http_reply_json(r, 200, o);
}

static void
on_dm_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct hooks_op *op = arg;
	struct http_req *r = op->r;
	enum kw_kind kw = op->kw;
	long long res[4];
	cJSON *o;

	(void)rc;
	op_free(op);
	if (r == NULL)
		return;
	if (consent_result(reply, res) < 0) {
		log_warnx("event=hook_inbound_failed channel=dm err=\"%s\"", reply_error(reply));
		http_error(r, 503, NULL, "try again later");
		return;
	}
	log_info("event=hook_inbound channel=dm kind=%s found=%lld changed=%lld",
	    kw_kind_name(kw), res[0], res[1]);
	if (kw == KW_NONE) {
		/* kept on the replies stream for review */
		dm_answer(r, "none", NULL);
		return;
	}
	if ((o = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(o, "result", res[0] == 0 ? "unknown_subscriber" :
	    kw == KW_OPT_OUT ? "opted_out" : "opted_in") == NULL ||
	    cJSON_AddNumberToObject(o, "subscribers", (double)res[0]) == NULL) {
		cJSON_Delete(o);
		http_error(r, 503, NULL, "out of memory");
		return;
	}
	http_reply_json(r, 200, o);
}

static void
on_dm_inbound(struct http_req *r, void *arg)
{
	struct hooks *h = arg;
	const char *rest = http_req_rest(r), *body, *why, *ids[HOOKS_IDS_MAX];
	const char *match, *value;
	char matched[KW_MATCHED_MAX];
	static const char *const dm_fields[] = { "subscriber_id", "dm_user_id", "text" };
	cJSON *root = NULL, *sid, *uid, *text;
	struct hooks_op *op;
	struct hooks_msg m;
	enum kw_kind kw;
	struct err jerr;
	size_t len;
	int n, v;

	if (strcmp(rest, "x-dm") != 0 && strcmp(rest, "webhook") != 0) {
		http_error(r, 404, "path", "no inbound endpoint for this channel");
		return;
	}
	if (h->app->cfg->inbound_secret == NULL || h->app->cfg->inbound_secret[0] == '\0') {
		log_warnx("event=hook_refused hook=inbound reason=not_configured");
		http_error(r, 503, NULL, "inbound endpoint not configured");
		return;
	}
	body = http_body(r, &len);
	if ((v = dm_verify(h->app->cfg->inbound_secret, r, body, len, &why)) != 1) {
		hooks_refuse(h, 0, "inbound", v < 0 ? "crypto" : why);
		http_error(r, 403, NULL, "signature does not verify");
		return;
	}
	/* The deal parser's strict reading: a NUL or \u0000 would cut an id short, and a
	 * member given twice is read one way here and maybe another by the relay. */
	err_clear(&jerr);
	if ((root = deal_json_open(body, len, len, "body", &jerr)) == NULL) {
		http_error_input(r, &jerr);
		goto done;
	}
	if (jv_check_unique(root, dm_fields, sizeof(dm_fields) / sizeof(dm_fields[0]), "",
	    &jerr) < 0) {
		http_error_input(r, &jerr);
		goto done;
	}
	sid = cJSON_GetObjectItemCaseSensitive(root, "subscriber_id");
	uid = cJSON_GetObjectItemCaseSensitive(root, "dm_user_id");
	text = cJSON_GetObjectItemCaseSensitive(root, "text");
	if (!cJSON_IsString(text)) {
		http_error(r, 400, "text", "text must be a string");
		goto done;
	}
	if ((sid != NULL) == (uid != NULL)) {
		http_error(r, 400, "subscriber_id", "give exactly one of subscriber_id and "
		    "dm_user_id");
		goto done;
	}
	value = cJSON_IsString(sid) ? sid->valuestring : cJSON_IsString(uid) ?
	    uid->valuestring : NULL;
	if (value == NULL || value[0] == '\0' || strlen(value) > MODEL_ID_MAX) {
		http_error(r, 400, sid != NULL ? "subscriber_id" : "dm_user_id",
		    "must be a string of 1 to %d bytes", MODEL_ID_MAX);
		goto done;
	}
	kw = kw_classify_with(&h->words, text->valuestring, strlen(text->valuestring),
	    matched, sizeof(matched));
	if (kw == KW_HELP) {
		dm_answer(r, "help", HOOKS_HELP_TEXT);
		goto done;
	}
	memset(&m, 0, sizeof(m));
	m.ch = "dm";
	m.label = matched;
	m.ack = "";
	m.sid = "";
	m.value = value;
	if (kw == KW_NONE) {
		/* Kept for review on the replies stream, then answered "none". */
		m.match = sid != NULL ? "id" : "dm";
		m.label = matched[0] != '\0' ? matched : "no_keyword";
		m.text = text->valuestring;
		m.text_len = strlen(text->valuestring);
		if (m.text_len > KW_BODY_MAX)
			m.text_len = KW_BODY_MAX;
		n = 0;
		match = m.match;
	} else if (sid != NULL) {
		match = "id";
		ids[0] = value;
		n = 1;
	} else {
		match = "dm";
		if (h->app->ss == NULL || !substore_ready(h->app->ss)) {
			http_error(r, 503, NULL, "subscribers not loaded yet");
			goto done;
		}
		if ((n = ix_lookup(h, HOOKS_IX_DM, value, ids, HOOKS_IDS_MAX)) < 0) {
			http_error(r, 503, NULL, "out of memory");
			goto done;
		}
		if (n == 0) {
			log_warnx("event=hook_inbound_unknown channel=dm kind=%s",
			    kw_kind_name(kw));
			hooks_count(h, "inbound:unknown_sender");
			dm_answer(r, "unknown_subscriber", NULL);
			goto done;
		}
	}
	if ((op = op_new(h, r, HOOKS_OP_DM)) == NULL) {
		http_error(r, 503, NULL, "out of memory");
		goto done;
	}
	op->kw = kw;
	m.match = match;
	if (consent_call(h, op, &m, ids, (size_t)n, on_dm_reply) < 0) {
		op_free(op);
		log_warnx("event=hook_inbound_failed channel=dm err=\"redis not connected\"");
		http_error(r, 503, NULL, "try again later");
	}
done:
	cJSON_Delete(root);
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
	if (http_route(app->http, EVHTTP_REQ_POST, "/hooks/twilio/status", on_status, h,
	    HTTP_EXACT) < 0 ||
	    http_route(app->http, EVHTTP_REQ_POST, "/hooks/twilio/inbound", on_sms_inbound,
	    h, HTTP_EXACT) < 0 ||
	    http_route(app->http, EVHTTP_REQ_POST, "/hooks/inbound", on_dm_inbound, h, 0) < 0) {
		err_set(err, ERR_NOMEM, "no_memory", NULL, "hooks: cannot add routes");
		goto fail;
	}
	return h;
fail:
	log_errorx("event=start_failed component=hooks err=\"%s\"", err ? err->msg : "");
	gw_free(h->confirm_gw);
	if (h->refused_flush != NULL)
		event_free(h->refused_flush);
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
	gw_free(h->confirm_gw);
	free(h);
}
