/*
 * clicks.c: GET <link_base>/<code> and GET /c/<token>, the click links in pushes
 * (stage: http).
 *
 * A short code is checked here (shortlink_check: a forged one is refused before any
 * Redis read) and its push read from link:<code> in the shard it names; a long token
 * is checked here (clicktok, constant-time MAC) and names its push. The rest is one
 * atomic script, click.lua: the deal's URL, the click counted once per push in the
 * funnel reports, the subscriber's engagement raised. The script is given every key
 * it touches, so the deal of the push's entry and the push's rule and campaign are
 * read first (click.lua re-checks them and answers "retry" when one moved). The
 * redirect waits on those reads and that one script only. Must never redirect anywhere but the deal's own http(s) URL, never say
 * why a token was refused, and never log a token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <hiredis/hiredis.h>

#include "app.h"
#include "clicks.h"
#include "clicktok.h"
#include "clock.h"
#include "config.h"
#include "deal.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "rconn.h"
#include "redisutil.h"
#include "scripts.h"
#include "shortlink.h"

#define CLICKS_PREFIX "/c"
#define CLICKS_SCRIPT "click"
#define CLICKS_TTL_S "2592000"   /* clicked:<push id>: 30 days, past the decay window */
#define CLICKS_GAIN "0.1"        /* engagement: e' = e + (1 - e) x 0.1 per first click */
#define CLICKS_URL_MAX 8192
#define CLICKS_TRIES 3           /* reads and script, when click.lua answers "retry" */
#define CLICKS_KEY_MAX 512       /* a key named from a push's data */
#define CLICKS_ARGS 10

struct click_call;

struct clicks {
	const struct app *app;          /* borrowed */
	const unsigned char *key;       /* borrowed from the config */
	size_t keylen;
	char route[SHORTLINK_ROUTE_MAX + 1]; /* the short links' prefix ("/c") */
	struct click_call *calls;       /* waiting on Redis */
};

/* What a click waits on: the reads that name click.lua's keys, then the script. */
enum click_step {
	CLICK_LINK,                     /* GET link:<code>: a short link's push */
	CLICK_DEAL,                     /* GET dealentry:<entry> */
	CLICK_PINFO,                    /* HGET pushinfo:<deal> <sub>:<ch> */
	CLICK_CAMP,                     /* HGET deal:<deal> campaign */
	CLICK_SCRIPT
};

/* One click waiting on Redis. Detached (k NULL, r NULL) when the module is freed
 * first: the reply then only frees it. */
struct click_call {
	struct clicks *k;
	struct http_req *r;
	struct click_call *prev, *next;
	char push_id[CLICKTOK_ID_MAX + 1];
	char entry[64];
	char sub[CLICKTOK_ID_MAX + 1];
	char ch[16];
	char code[SHORTLINK_LEN + 1];   /* a short link's code; "" for a long token */
	uint32_t shard;                 /* the shard the code names */
	const char *count;              /* "1", "0" for HEAD (look up only) */
	enum click_step step;
	int tries;
	char deal[CLICKTOK_ID_MAX + 1]; /* "" = the entry names no deal */
	char *pinfo, *camp;             /* what was read; NULL = nothing */
};

static void
click_call_free(struct click_call *c)
{
	free(c->pinfo);
	free(c->camp);
	free(c);
}

static void
clicks_unlink(struct click_call *c)
{
	if (c->k == NULL)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		c->k->calls = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

int
clicks_split_push_id(const char *push_id, char *entry, size_t esize, char *sub,
    size_t ssize, char *ch, size_t csize)
{
	const char *a, *b;
	size_t el, sl, cl;

	if (push_id == NULL || (a = strchr(push_id, ':')) == NULL ||
	    (b = strrchr(push_id, ':')) == a)
		return -1;
	el = (size_t)(a - push_id);
	sl = (size_t)(b - a - 1);
	cl = strlen(b + 1);
	if (el == 0 || sl == 0 || cl == 0 || el >= esize || sl >= ssize || cl >= csize)
		return -1;
	memcpy(entry, push_id, el);
	entry[el] = '\0';
	memcpy(sub, a + 1, sl);
	sub[sl] = '\0';
	memcpy(ch, b + 1, cl);
	ch[cl] = '\0';
	return 0;
}

/* Appends s[0..n) to buf at *len; -1 when it does not fit. */
static int
clicks_put(char *buf, size_t size, size_t *len, const char *s, size_t n)
{
	if (*len + n + 1 > size)
		return -1;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
	return 0;
}

/* Appends s percent-encoded (RFC 3986 unreserved bytes kept). */
static int
clicks_put_encoded(char *buf, size_t size, size_t *len, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char e[3];

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~') {
			if (clicks_put(buf, size, len, (const char *)s, 1) < 0)
				return -1;
			continue;
		}
		e[0] = '%';
		e[1] = hex[c >> 4];
		e[2] = hex[c & 15];
		if (clicks_put(buf, size, len, e, 3) < 0)
			return -1;
	}
	return 0;
}

/* 1 when the query parameter p[0..n) is one of ours (replaced, not repeated). */
static int
clicks_is_utm(const char *p, size_t n)
{
	static const char *const names[] = { "utm_source", "utm_medium", "utm_campaign" };
	size_t i, nl;

	for (i = 0; i < 3; i++) {
		nl = strlen(names[i]);
		if (n >= nl && strncmp(p, names[i], nl) == 0 && (n == nl || p[nl] == '='))
			return 1;
	}
	return 0;
}

int
clicks_utm_url(const char *url, const char *medium, const char *campaign,
    char *buf, size_t size)
{
	const char *frag = strchr(url, '#'), *q, *end, *p;
	size_t len = 0;

	if (size == 0)
		return -1;
	buf[0] = '\0';
	end = frag != NULL ? frag : url + strlen(url);
	q = memchr(url, '?', (size_t)(end - url));
	if (clicks_put(buf, size, &len, url, (size_t)((q != NULL ? q : end) - url)) < 0)
		goto small;
	if (clicks_put(buf, size, &len, "?", 1) < 0)
		goto small;
	/* The existing parameters, in order, less empty ones and our three. */
	for (p = q != NULL ? q + 1 : end; p < end; ) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		size_t n = (size_t)((amp != NULL ? amp : end) - p);

		if (n > 0 && !clicks_is_utm(p, n)) {
			if (clicks_put(buf, size, &len, p, n) < 0 ||
			    clicks_put(buf, size, &len, "&", 1) < 0)
				goto small;
		}
		p += n + (amp != NULL ? 1 : 0);
	}
	if (clicks_put(buf, size, &len, "utm_source=dealpush&utm_medium=", 31) < 0 ||
	    clicks_put_encoded(buf, size, &len, medium) < 0 ||
	    clicks_put(buf, size, &len, "&utm_campaign=", 14) < 0 ||
	    clicks_put_encoded(buf, size, &len, campaign) < 0)
		goto small;
	if (frag != NULL && clicks_put(buf, size, &len, frag, strlen(frag)) < 0)
		goto small;
	return (int)len;
small:
	buf[0] = '\0';
	return -1;
}

/* The one answer to every refused link: no hint of why. */
static void
clicks_not_found(struct http_req *r)
{
	http_error(r, 404, NULL, "no such link");
}

/* The string element i of a script reply, or NULL. */
static const char *
clicks_elem(const struct redisReply *r, size_t i)
{
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != REDIS_REPLY_STRING)
		return NULL;
	return r->element[i]->str;
}

/* Answers 503 (Retry-After) for a click that failed on Redis, and frees it. */
static void
clicks_fail(struct click_call *c, const char *err)
{
	clicks_unlink(c);
	log_warnx("event=click_failed push=%s err=\"%s\"", c->push_id, err);
	http_add_header(c->r, "Retry-After", "5");
	http_error(c->r, 503, NULL, "try again later");
	click_call_free(c);
}

/* click.lua answered: {"gone"} or {"ok", url, campaign, deal id, first}. Answers the
 * request and frees c. */
static void
clicks_answer(struct click_call *c, const struct redisReply *reply)
{
	const char *st, *url, *camp, *deal, *first;
	char *loc = NULL;

	clicks_unlink(c);
	st = clicks_elem(reply, 0);
	url = clicks_elem(reply, 1);
	camp = clicks_elem(reply, 2);
	deal = clicks_elem(reply, 3);
	first = clicks_elem(reply, 4);
	if (st == NULL || strcmp(st, "ok") != 0 || url == NULL || camp == NULL ||
	    deal == NULL || first == NULL) {
		log_info("event=click_gone push=%s", c->push_id);
		clicks_not_found(c->r);
		goto out;
	}
	/* Only the deal's own http(s) URL, as ingest accepted it. */
	if (deal_url_scheme_len(url) == 0 ||
	    (loc = malloc(CLICKS_URL_MAX)) == NULL ||
	    clicks_utm_url(url, c->ch, camp[0] != '\0' ? camp : deal, loc,
	    CLICKS_URL_MAX) < 0 || http_add_header(c->r, "Location", loc) < 0) {
		log_warnx("event=click_failed push=%s deal=%s err=\"unusable deal url\"",
		    c->push_id, deal);
		clicks_not_found(c->r);
		goto out;
	}
	log_info("event=click push=%s deal=%s first=%s", c->push_id, deal, first);
	http_reply(c->r, 302, NULL, "", 0);
out:
	free(loc);
	click_call_free(c);
}

static void clicks_on_reply(struct rconn *rc, struct redisReply *reply, void *arg);

/* Sends c's current step: a read, or click.lua with every key. Returns 0, 1 when a
 * key would not fit (nothing sent), or -1 when Redis is not ready. */
static int
click_send(struct click_call *c)
{
	struct rconn *rc = c->k->app->cmd;
	char k[11][CLICKS_KEY_MAX], field[CLICKTOK_ID_MAX + 32], now[24];
	const char *args[11 + CLICKS_ARGS], *rule = NULL, *camp = NULL, *t;
	size_t rlen = 0, clen = 0, dlen = strlen(c->deal);
	/* The push's shard: its subscriber's, from the push id in the token. */
	uint32_t shard = keys_shard_of(c->sub);
	char px[KEYS_SHARD_MAX];
	int bad = 0;

	if (c->step == CLICK_LINK) {
		if (keys_per(c->shard, KEYS_LINK, c->code, k[0], sizeof(k[0])) < 0)
			return 1;
		args[0] = "GET";
		args[1] = k[0];
		return rconn_argv(rc, clicks_on_reply, c, 0, 2, args, NULL);
	}
	snprintf(field, sizeof(field), "%s:%s", c->sub, c->ch);
	/* The deal's keys in the push's shard too: each shard plans its own copy. */
	bad |= keys_prefix(shard, KEYS_DEALENTRY, px, sizeof(px)) < 0;
	bad |= ru_key(k[0], CLICKS_KEY_MAX, px, c->entry, strlen(c->entry));
	bad |= keys_prefix(shard, KEYS_DEAL, px, sizeof(px)) < 0;
	bad |= ru_key(k[4], CLICKS_KEY_MAX, px, c->deal, dlen);
	bad |= keys_prefix(shard, KEYS_PUSHINFO, px, sizeof(px)) < 0;
	bad |= ru_key(k[5], CLICKS_KEY_MAX, px, c->deal, dlen);
	if (bad)
		return 1;
	switch (c->step) {
	case CLICK_LINK:
	case CLICK_DEAL:
		args[0] = "GET";
		args[1] = k[0];
		return rconn_argv(rc, clicks_on_reply, c, 0, 2, args, NULL);
	case CLICK_PINFO:
		args[0] = "HGET";
		args[1] = k[5];
		args[2] = field;
		return rconn_argv(rc, clicks_on_reply, c, 0, 3, args, NULL);
	case CLICK_CAMP:
		args[0] = "HGET";
		args[1] = k[4];
		args[2] = "campaign";
		return rconn_argv(rc, clicks_on_reply, c, 0, 3, args, NULL);
	case CLICK_SCRIPT:
		break;
	}
	/* The reports' rule and campaign: the sent push's ("<rule>\t<campaign>"), else
	 * the deal's campaign; as click.lua names them. */
	if (c->pinfo != NULL) {
		if ((t = strchr(c->pinfo, '\t')) != NULL) {
			rule = c->pinfo;
			rlen = (size_t)(t - c->pinfo);
			camp = t + 1;
			clen = strlen(camp);
		}
	} else if (c->camp != NULL) {
		camp = c->camp;
		clen = strlen(camp);
	}
	/* ORDER CLICK_KEYS: the header of click.lua. */
	bad |= keys_clicked(shard, c->push_id, k[1], sizeof(k[1])) < 0;
	bad |= keys_shard_key(shard, KEYS_SUBSCRIBERS, k[2], sizeof(k[2])) < 0;
	bad |= keys_shard_key(shard, KEYS_SUB_CHANGES, k[3], sizeof(k[3])) < 0;
	bad |= keys_prefix(shard, KEYS_REPORT_DEAL, px, sizeof(px)) < 0;
	bad |= ru_key(k[6], CLICKS_KEY_MAX, px, c->deal, dlen);
	bad |= keys_prefix(shard, KEYS_REPORT_RULE, px, sizeof(px)) < 0;
	bad |= ru_key(k[7], CLICKS_KEY_MAX, px, rule, dlen > 0 ? rlen : 0);
	bad |= keys_prefix(shard, KEYS_REPORT_CAMPAIGN, px, sizeof(px)) < 0;
	bad |= ru_key(k[8], CLICKS_KEY_MAX, px, camp, dlen > 0 ? clen : 0);
	bad |= keys_prefix(shard, KEYS_SERIES, px, sizeof(px)) < 0;
	bad |= ru_key(k[9], CLICKS_KEY_MAX, px, c->deal, dlen);
	bad |= keys_shard_key(shard, KEYS_BEHAVIOUR, k[10], sizeof(k[10])) < 0;
	if (bad)
		return 1;
	args[0] = k[0];
	args[1] = k[1];
	args[2] = k[2];
	args[3] = k[3];
	args[4] = k[4];
	args[5] = k[5];
	args[6] = k[6];
	args[7] = k[7];
	args[8] = k[8];
	args[9] = k[9];
	args[10] = k[10];
	args[11] = c->push_id;
	args[12] = c->sub;
	args[13] = c->ch;
	args[14] = c->count;
	args[15] = CLICKS_TTL_S;
	args[16] = CLICKS_GAIN;
	args[17] = c->deal;
	args[18] = c->pinfo != NULL ? c->pinfo : "";
	args[19] = c->camp != NULL ? c->camp : "";
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	args[20] = now;
	return script_call_named(rc, CLICKS_SCRIPT, 11, 11 + CLICKS_ARGS, args, NULL,
	    clicks_on_reply, c);
}

/* Sends c's current step; answers 503 and frees c when it cannot. */
static void
click_next(struct click_call *c)
{
	int sent = click_send(c);

	if (sent != 0)
		clicks_fail(c, sent < 0 ? "redis not ready" : "key too long");
}

/* link:<code> answered: the push id it names, split into c. Returns 0, or -1 when c
 * was answered (404 for a code with no push, or a push of another shard than the
 * code names; 503 for a reply that is not a string) and freed. */
static int
clicks_link_found(struct click_call *c, const struct redisReply *reply)
{
	if (reply->type == REDIS_REPLY_NIL) {
		clicks_unlink(c);
		log_info("event=click_gone link=short");
		clicks_not_found(c->r);
		click_call_free(c);
		return -1;
	}
	if (reply->type != REDIS_REPLY_STRING || reply->len >= sizeof(c->push_id)) {
		clicks_fail(c, "bad reply");
		return -1;
	}
	memcpy(c->push_id, reply->str, reply->len);
	c->push_id[reply->len] = '\0';
	if (clicks_split_push_id(c->push_id, c->entry, sizeof(c->entry), c->sub,
	    sizeof(c->sub), c->ch, sizeof(c->ch)) < 0 ||
	    keys_shard_of(c->sub) != c->shard) {
		clicks_unlink(c);
		log_warnx("event=click_failed push=%s err=\"short link names another "
		    "push\"", c->push_id);
		clicks_not_found(c->r);
		click_call_free(c);
		return -1;
	}
	return 0;
}

/* One step's reply: the next step, the answer, or the reads again after "retry". */
static void
clicks_on_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct click_call *c = arg;
	const char *st;
	char *deal = NULL;

	(void)rc;
	if (c->k == NULL) {             /* the module was freed: r is gone */
		click_call_free(c);
		return;
	}
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		clicks_fail(c, reply != NULL ? reply->str : "no reply");
		return;
	}
	switch (c->step) {
	case CLICK_LINK:
		if (clicks_link_found(c, reply) < 0)
			return;
		c->step = CLICK_DEAL;
		break;
	case CLICK_DEAL:
		if (ru_copy(reply, 65536, &deal) < 0 ||
		    (deal != NULL && strlen(deal) >= sizeof(c->deal))) {
			free(deal);
			clicks_fail(c, "bad reply");
			return;
		}
		snprintf(c->deal, sizeof(c->deal), "%s", deal != NULL ? deal : "");
		free(deal);
		free(c->pinfo);
		free(c->camp);
		c->pinfo = c->camp = NULL;
		/* No deal: the script answers "gone" (or asks again). */
		c->step = c->deal[0] != '\0' ? CLICK_PINFO : CLICK_SCRIPT;
		break;
	case CLICK_PINFO:
		if (ru_copy(reply, 65536, &c->pinfo) < 0) {
			clicks_fail(c, "bad reply");
			return;
		}
		c->step = CLICK_CAMP;
		break;
	case CLICK_CAMP:
		if (ru_copy(reply, 65536, &c->camp) < 0) {
			clicks_fail(c, "bad reply");
			return;
		}
		c->step = CLICK_SCRIPT;
		break;
	case CLICK_SCRIPT:
		st = clicks_elem(reply, 0);
		if (st == NULL || strcmp(st, "retry") != 0) {
			clicks_answer(c, reply);
			return;
		}
		if (++c->tries >= CLICKS_TRIES) {
			clicks_fail(c, "the push's keys kept changing");
			return;
		}
		c->step = CLICK_DEAL;
		break;
	}
	click_next(c);
}

/* GET <link route>/<code> and GET /c/<token> (also HEAD, which redirects without
 * counting: link previews). A code is SHORTLINK_LEN characters, a token far more. */
static void
clicks_on_request(struct http_req *r, void *arg)
{
	struct clicks *k = arg;
	const char *rest = http_req_rest(r);
	struct click_call *c;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		http_error(r, 503, NULL, "try again later");
		return;
	}
	if (strlen(rest) == SHORTLINK_LEN) {
		/* A forged or mistyped code ends here: no Redis read. */
		if (shortlink_check(k->key, k->keylen, rest, SHORTLINK_LEN, keys_shards(),
		    &c->shard) != 1) {
			click_call_free(c);
			clicks_not_found(r);
			return;
		}
		memcpy(c->code, rest, SHORTLINK_LEN + 1);
		snprintf(c->push_id, sizeof(c->push_id), "link");
		c->step = CLICK_LINK;
	} else if (clicktok_parse(k->key, k->keylen, rest, c->push_id, sizeof(c->push_id)) == 0 &&
	    clicks_split_push_id(c->push_id, c->entry, sizeof(c->entry), c->sub,
	    sizeof(c->sub), c->ch, sizeof(c->ch)) == 0) {
		c->step = CLICK_DEAL;
	} else {
		click_call_free(c);
		clicks_not_found(r);
		return;
	}
	c->count = http_req_method(r) == EVHTTP_REQ_HEAD ? "0" : "1";
	c->k = k;
	c->r = r;
	c->next = k->calls;
	if (k->calls != NULL)
		k->calls->prev = c;
	k->calls = c;
	/* Redis down: the URL lives only there, so no redirect is possible. */
	click_next(c);
}

struct clicks *
clicks_new(const struct app *app)
{
	const struct config *cfg = app->cfg;
	struct clicks *k;
	size_t keylen;
	char why[160];

	if (app->http == NULL)
		return NULL;
	if (cfg->public_url == NULL || cfg->click_secret == NULL) {
		log_info("event=clicks_off reason=\"no http.public_url or http.click_secret\"");
		return NULL;
	}
	keylen = strlen(cfg->click_secret);
	if (keylen < CLICKTOK_KEY_MIN || keylen > CLICKTOK_KEY_MAX) {
		log_errorx("event=clicks_off reason=\"http.click_secret must be %d..%d bytes\"",
		    CLICKTOK_KEY_MIN, CLICKTOK_KEY_MAX);
		return NULL;
	}
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return NULL;
	k->app = app;
	k->key = (const unsigned char *)cfg->click_secret;
	k->keylen = keylen;
	/* The config checked the link base's path (config_link_check). */
	if (cfg->link_base == NULL || shortlink_route(cfg->link_base, k->route,
	    sizeof(k->route), why, sizeof(why)) < 0)
		snprintf(k->route, sizeof(k->route), "%s", CLICKS_PREFIX);
	/* Long links stay on /c for the pushes sent with them. */
	if (http_route(app->http, EVHTTP_REQ_GET, CLICKS_PREFIX, HTTP_ROLE_PUBLIC,
	    clicks_on_request, k, HTTP_SECRET_REST) < 0 ||
	    (strcmp(k->route, CLICKS_PREFIX) != 0 && http_route(app->http,
	    EVHTTP_REQ_GET, k->route, HTTP_ROLE_PUBLIC, clicks_on_request, k,
	    HTTP_SECRET_REST) < 0)) {
		log_errorx("event=clicks_off reason=\"route: out of memory\"");
		free(k);
		return NULL;
	}
	log_info("event=clicks_on short=%s/<code> long=%s/<token>", k->route,
	    CLICKS_PREFIX);
	return k;
}

void
clicks_free(struct clicks *k)
{
	struct click_call *c, *next;

	if (k == NULL)
		return;
	for (c = k->calls; c != NULL; c = next) {
		next = c->next;
		http_add_header(c->r, "Retry-After", "5");
		http_error(c->r, 503, NULL, "shutting down");
		c->k = NULL;
		c->r = NULL;
		c->prev = c->next = NULL;
	}
	free(k);
}
