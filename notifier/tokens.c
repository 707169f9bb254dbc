/*
 * tokens.c: named API tokens with a role (stage: http): the in-memory table every
 * notifier checks bearer tokens against, its reload from Redis, and the routes
 * /v1/tokens, /v1/audit and /v1/routes (include/tokens.h, docs/api.md). Sessions are
 * session.c; the checks themselves are http_auth.c.
 *
 * It never stores, logs or records a token: Redis and memory hold its SHA-256, and
 * the token is written once, in the answer that creates it. It never blocks the loop.
 */
#include <sys/random.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>

#include "app.h"
#include "audit.h"
#include "clock.h"
#include "config.h"
#include "deal.h"
#include "http.h"
#include "jsonv.h"
#include "log.h"
#include "rconn.h"
#include "scripts.h"
#include "tokens.h"
#include "tokens_int.h"

#define TOKENS_BODY_MAX 4096

/* ---- pure parts ---- */

int
tokens_name_ok(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > HTTP_NAME_MAX || strcmp(name, HTTP_CONFIG_PRINCIPAL) == 0)
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

static void
hex_of(const unsigned char *p, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = hex[p[i] >> 4];
		out[2 * i + 1] = hex[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* 64 lower-case hex digits into 32 bytes; 0 or -1. */
static int
hex_to32(const char *s, unsigned char out[32])
{
	size_t i;

	if (strlen(s) != 64)
		return -1;
	for (i = 0; i < 64; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;

		if (v < 0)
			return -1;
		if (i % 2 == 0)
			out[i / 2] = (unsigned char)(v << 4);
		else
			out[i / 2] |= (unsigned char)v;
	}
	return 0;
}

void
tokens_format(const unsigned char rnd[32], char *out, size_t size)
{
	char hex[65];

	hex_of(rnd, 32, hex);
	snprintf(out, size, TOKENS_PREFIX "%s", hex);
}

int
tokens_random(unsigned char *out, size_t n)
{
	size_t got = 0;
	ssize_t k;

	while (got < n) {
		k = getrandom(out + got, n - got, 0);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

int
tokens_sha256_hex(const void *p, size_t len, char out[65])
{
	unsigned char d[32];

	if (http_sha256(p, len, d) < 0)
		return -1;
	hex_of(d, 32, out);
	return 0;
}

/* ---- the table ---- */

struct tokens_ent *
tokens_find(struct tokens *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (strcmp(t->v[i].name, name) == 0)
			return &t->v[i];
	return NULL;
}

/* Parses a stored record into e (name set by the caller); 0 or -1. */
static int
ent_parse(struct tokens_ent *e, const char *json, size_t len)
{
	cJSON *j = cJSON_ParseWithLength(json, len);
	const cJSON *h = cJSON_GetObjectItem(j, "sha256"), *r = cJSON_GetObjectItem(j, "role"),
	    *c = cJSON_GetObjectItem(j, "created_ms");
	int role = cJSON_IsString(r) ? http_role_parse(r->valuestring) : -1, rc = -1;

	if (cJSON_IsString(h) && hex_to32(h->valuestring, e->hash) == 0 && role > 0) {
		e->role = (enum http_role)role;
		e->created_ms = cJSON_IsNumber(c) ? (long long)c->valuedouble : 0;
		rc = 0;
	}
	cJSON_Delete(j);
	return rc;
}

int
tokens_check(void *arg, const char *tok, size_t len, struct http_principal *p)
{
	struct tokens *t = arg;
	unsigned char d[32];
	struct tokens_ent *hit = NULL;
	long long now = clock_mono_ms();
	char ms[24];
	const char *argv[4];
	size_t i;

	if (len != TOKENS_LEN || strncmp(tok, TOKENS_PREFIX, strlen(TOKENS_PREFIX)) != 0)
		return 0;
	if (!t->loaded)
		return -1;
	if (http_sha256(tok, len, d) < 0)
		return 0;
	for (i = 0; i < t->n; i++)
		if (CRYPTO_memcmp(d, t->v[i].hash, sizeof(d)) == 0)
			hit = &t->v[i];
	if (hit == NULL)
		return 0;
	snprintf(p->name, sizeof(p->name), "%s", hit->name);
	p->role = hit->role;
	hit->used_ms = clock_now_ms();
	/* At most one write a minute per token: a busy client does not write per
	 * request. */
	if (hit->used_written_ms == 0 || now - hit->used_written_ms >= TOKENS_USED_EVERY_MS) {
		hit->used_written_ms = now;
		snprintf(ms, sizeof(ms), "%lld", hit->used_ms);
		argv[0] = "HSET";
		argv[1] = TOKENS_USED_KEY;
		argv[2] = hit->name;
		argv[3] = ms;
		(void)rconn_argv(t->app->cmd, NULL, NULL, 0, 4, argv, NULL);
	}
	return 1;
}

static const struct http_auth_ops tokens_auth = { tokens_check, session_lookup };

/* ---- loading ---- */

struct tokens_load {
	struct tokens *t;               /* NULL once tokens_free ran */
};

static void
on_load(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct tokens_load *ld = arg;
	struct tokens *t = ld->t;
	struct tokens_ent *v = NULL, *old;
	size_t n = 0, i;

	(void)rc;
	if (t == NULL)
		goto out;
	t->loading = NULL;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    reply->element[0]->type != REDIS_REPLY_STRING) {
		if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
			log_errorx("event=tokens_load_failed err=\"%.200s\"", reply->str);
		goto out;
	}
	if (reply->elements == 1)
		goto out;       /* unchanged */
	if ((v = calloc(reply->elements / 3 + 1, sizeof(*v))) == NULL) {
		log_errorx("event=tokens_load_failed err=\"out of memory\"");
		goto out;
	}
	for (i = 2; i + 2 < reply->elements && n < TOKENS_MAX; i += 3) {
		const struct redisReply *k = reply->element[i], *r = reply->element[i + 1],
		    *u = reply->element[i + 2];

		if (k->type != REDIS_REPLY_STRING || r->type != REDIS_REPLY_STRING ||
		    !tokens_name_ok(k->str) || ent_parse(&v[n], r->str, r->len) < 0) {
			log_warnx("event=tokens_load_skipped name=\"%.64s\" err=\"bad record\"",
			    k->type == REDIS_REPLY_STRING ? k->str : "?");
			continue;
		}
		snprintf(v[n].name, sizeof(v[n].name), "%s", k->str);
		if (u->type == REDIS_REPLY_STRING)
			v[n].used_ms = strtoll(u->str, NULL, 10);
		if ((old = tokens_find(t, k->str)) != NULL) {
			v[n].used_written_ms = old->used_written_ms;
			if (old->used_ms > v[n].used_ms)
				v[n].used_ms = old->used_ms;
		}
		n++;
	}
	OPENSSL_cleanse(t->v, t->n * sizeof(*t->v));
	free(t->v);
	t->v = v;
	t->n = n;
	t->loaded = 1;
	snprintf(t->version, sizeof(t->version), "%s", reply->element[0]->str);
	log_info("event=tokens_loaded tokens=%zu version=%s", n, t->version);
out:
	free(ld);
}

/* evtimer: asks Redis for the tokens when their version moved. */
static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct tokens *t = arg;
	struct timeval tv = { TOKENS_POLL_MS / 1000, (TOKENS_POLL_MS % 1000) * 1000 };
	struct tokens_load *ld;
	const char *args[4];

	(void)fd;
	(void)what;
	evtimer_add(t->poll, &tv);
	if (t->loading != NULL || !rconn_is_ready(t->app->cmd))
		return;
	if ((ld = calloc(1, sizeof(*ld))) == NULL)
		return;
	ld->t = t;
	args[0] = TOKENS_KEY;           /* ORDER TOKENS_LOAD_KEYS: tokens_load.lua */
	args[1] = TOKENS_VERSION_KEY;
	args[2] = TOKENS_USED_KEY;
	args[3] = t->version;
	if (script_call_named(t->app->cmd, "tokens_load", 3, 4, args, NULL, on_load,
	    ld) < 0) {
		free(ld);
		return;
	}
	t->loading = ld;
}

/* ---- /v1/tokens ---- */

struct tokens_op {
	struct http_wait w;             /* first: w.r is NULL once detached */
	struct tokens *t;               /* valid while w.r is */
	int create;
	struct tokens_ent ent;
	char token[TOKENS_LEN + 1];     /* create: answered once, then wiped */
};

static void
op_free(struct tokens_op *op)
{
	http_wait_remove(&op->w);
	OPENSSL_cleanse(op, sizeof(*op));
	free(op);
}

static cJSON *
ent_json(const struct tokens_ent *e)
{
	cJSON *j = cJSON_CreateObject();

	cJSON_AddStringToObject(j, "name", e->name);
	cJSON_AddStringToObject(j, "role", http_role_name(e->role));
	cJSON_AddNumberToObject(j, "created_ms", (double)e->created_ms);
	if (e->used_ms > 0)
		cJSON_AddNumberToObject(j, "last_used_ms", (double)e->used_ms);
	else
		cJSON_AddNullToObject(j, "last_used_ms");
	return j;
}

static void
on_change(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct tokens_op *op = arg;
	struct http_req *r = op->w.r;
	struct tokens *t = op->t;
	struct tokens_ent *v, *e;
	cJSON *j;

	(void)rc;
	if (r == NULL)
		goto out;
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    reply->element[0]->type != REDIS_REPLY_INTEGER) {
		if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
			log_errorx("event=tokens_change_failed err=\"%.200s\"", reply->str);
		http_error(r, 503, NULL, "storage unavailable; try again");
		goto out;
	}
	if (reply->element[0]->integer == 0) {
		if (op->create)
			http_error(r, 409, "name", "a token named '%s' exists; revoke it first"
			    " or choose another name", op->ent.name);
		else
			http_error(r, 404, "path", "no token named '%s'", op->ent.name);
		goto out;
	}
	/* This notifier knows at once; the others at their next poll. */
	if (op->create) {
		if (tokens_find(t, op->ent.name) == NULL && t->n < TOKENS_MAX &&
		    (v = realloc(t->v, (t->n + 1) * sizeof(*v))) != NULL) {
			t->v = v;
			t->v[t->n++] = op->ent;
		}
		log_info("event=token_created name=%s role=%s", op->ent.name,
		    http_role_name(op->ent.role));
		j = ent_json(&op->ent);
		cJSON_AddStringToObject(j, "token", op->token);
		cJSON_AddStringToObject(j, "note", "the token is shown once: keep it now");
		http_reply_json(r, 201, j);
	} else {
		if ((e = tokens_find(t, op->ent.name)) != NULL) {
			*e = t->v[--t->n];
		}
		log_info("event=token_revoked name=%s", op->ent.name);
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "name", op->ent.name);
		cJSON_AddTrueToObject(j, "revoked");
		http_reply_json(r, 200, j);
	}
out:
	op_free(op);
}

/* Sends op's change (tokens_change.lua); answers r itself on failure. */
static void
change_send(struct tokens *t, struct http_req *r, struct tokens_op *op)
{
	const struct http_principal *p = http_req_principal(r);
	char rec[200], ms[24], hex[65];
	const char *args[11];

	snprintf(ms, sizeof(ms), "%lld", (long long)clock_now_ms());
	rec[0] = '\0';
	if (op->create) {
		hex_of(op->ent.hash, 32, hex);
		snprintf(rec, sizeof(rec), "{\"sha256\":\"%s\",\"role\":\"%s\","
		    "\"created_ms\":%lld}", hex, http_role_name(op->ent.role),
		    op->ent.created_ms);
	}
	args[0] = TOKENS_KEY;           /* ORDER TOKENS_CHANGE_KEYS: tokens_change.lua */
	args[1] = TOKENS_VERSION_KEY;
	args[2] = TOKENS_USED_KEY;
	args[3] = AUDIT_KEY;
	args[4] = op->create ? "create" : "revoke";
	args[5] = op->ent.name;
	args[6] = rec;
	args[7] = p != NULL ? p->name : "-";
	args[8] = p != NULL ? http_role_name(p->role) : "-";
	args[9] = ms;
	args[10] = http_role_name(op->ent.role);
	op->t = t;
	http_wait_add(&t->waits, &op->w, r);
	if (script_call_named(t->app->cmd, "tokens_change", 4, 11, args, NULL, on_change,
	    op) < 0) {
		op_free(op);
		http_error(r, 503, NULL, "storage unavailable; try again");
	}
}

/* POST /v1/tokens {"name": ..., "role": ...} */
static void
tokens_create(struct tokens *t, struct http_req *r)
{
	static const char *const names[] = { "name", "role" };
	size_t len = 0, i;
	const char *body = http_body(r, &len);
	const cJSON *n, *ro, *f;
	unsigned char rnd[32];
	struct tokens_op *op;
	struct err err;
	cJSON *j;
	int role;

	err_clear(&err);
	if ((j = deal_json_open(body, len, TOKENS_BODY_MAX, "body", &err)) == NULL ||
	    jv_check_unique(j, names, 2, "", &err) < 0) {
		cJSON_Delete(j);
		http_error_input(r, &err);
		return;
	}
	for (f = j->child; f != NULL; f = f->next)
		if (strcmp(f->string, "name") != 0 && strcmp(f->string, "role") != 0) {
			http_error(r, 400, f->string, "unknown field; a token takes \"name\" and"
			    " \"role\"");
			goto out;
		}
	n = jv_field(j, "name");
	ro = jv_field(j, "role");
	if (!cJSON_IsString(n) || !tokens_name_ok(n->valuestring)) {
		http_error(r, 400, "name", "a token's name is 1 to %d letters, digits, '_',"
		    " '-' or '.', and not \"%s\"", HTTP_NAME_MAX, HTTP_CONFIG_PRINCIPAL);
		goto out;
	}
	if (!cJSON_IsString(ro) || (role = http_role_parse(ro->valuestring)) < 0) {
		http_error(r, 400, "role", "role is \"viewer\", \"marketer\" or \"admin\"");
		goto out;
	}
	if (t->n >= TOKENS_MAX) {
		http_error(r, 409, "name", "%d tokens exist; revoke one first", TOKENS_MAX);
		goto out;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		goto out;
	}
	op->create = 1;
	snprintf(op->ent.name, sizeof(op->ent.name), "%s", n->valuestring);
	op->ent.role = (enum http_role)role;
	op->ent.created_ms = clock_now_ms();
	if (tokens_random(rnd, sizeof(rnd)) < 0) {
		log_warn("event=token_random_failed");
		free(op);
		http_error(r, 503, NULL, "no randomness from the system; try again");
		goto out;
	}
	tokens_format(rnd, op->token, sizeof(op->token));
	OPENSSL_cleanse(rnd, sizeof(rnd));
	for (i = 0; i < sizeof(op->ent.hash); i++)
		op->ent.hash[i] = 0;
	if (http_sha256(op->token, strlen(op->token), op->ent.hash) < 0) {
		op_free(op);
		http_error(r, 500, NULL, "digest failed");
		goto out;
	}
	change_send(t, r, op);
out:
	cJSON_Delete(j);
}

static void
tokens_list(struct tokens *t, struct http_req *r)
{
	cJSON *j = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(j, "tokens");
	size_t i;

	if (!t->loaded) {
		cJSON_Delete(j);
		http_add_header(r, "Retry-After", "1");
		http_error(r, 503, NULL, "tokens not loaded yet; try again");
		return;
	}
	for (i = 0; i < t->n; i++)
		cJSON_AddItemToArray(arr, ent_json(&t->v[i]));
	cJSON_AddStringToObject(j, "version", t->version);
	http_reply_json(r, 200, j);
}

/* /v1/tokens[/<name>] */
static void
tokens_on_request(struct http_req *r, void *arg)
{
	struct tokens *t = arg;
	const char *name = http_req_rest(r);
	int m = http_req_method(r);
	struct tokens_op *op;

	if (*name == '\0') {
		if (m == EVHTTP_REQ_POST)
			tokens_create(t, r);
		else if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD)
			tokens_list(t, r);
		else
			http_error(r, 405, "method", "use GET or POST /v1/tokens, or DELETE"
			    " /v1/tokens/<name>");
		return;
	}
	if (m != EVHTTP_REQ_DELETE) {
		http_error(r, 405, "method", "use DELETE /v1/tokens/<name>");
		return;
	}
	if (!tokens_name_ok(name)) {
		http_error(r, 400, "path", "a token's name is 1 to %d letters, digits, '_',"
		    " '-' or '.'%s", HTTP_NAME_MAX, strcmp(name, HTTP_CONFIG_PRINCIPAL) == 0 ?
		    "; \"config\" is http.admin_token, changed in the config" : "");
		return;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	snprintf(op->ent.name, sizeof(op->ent.name), "%s", name);
	change_send(t, r, op);
}

/* GET /v1/audit */
static void
audit_on_request(struct http_req *r, void *arg)
{
	struct tokens *t = arg;

	audit_query(t->app, &t->waits, r);
}

struct routes_list {
	cJSON *arr;
};

static void
route_json(void *arg, int methods, const char *prefix, enum http_role role,
    unsigned flags)
{
	static const struct { int m; const char *name; } ms[] = {
	    { EVHTTP_REQ_GET, "GET" }, { EVHTTP_REQ_POST, "POST" },
	    { EVHTTP_REQ_PUT, "PUT" }, { EVHTTP_REQ_DELETE, "DELETE" },
	    { EVHTTP_REQ_PATCH, "PATCH" }, { EVHTTP_REQ_OPTIONS, "OPTIONS" } };
	struct routes_list *l = arg;
	cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "methods");
	size_t i;

	for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
		if (methods & ms[i].m)
			cJSON_AddItemToArray(a, cJSON_CreateString(ms[i].name));
	cJSON_AddStringToObject(o, "prefix", prefix);
	cJSON_AddBoolToObject(o, "exact", (flags & HTTP_EXACT) != 0);
	cJSON_AddStringToObject(o, "role", http_role_name(role));
	cJSON_AddItemToArray(l->arr, o);
}

/* GET /v1/routes: every route and the role it needs. */
static void
routes_on_request(struct http_req *r, void *arg)
{
	struct tokens *t = arg;
	struct routes_list l;
	cJSON *j = cJSON_CreateObject();

	l.arr = cJSON_AddArrayToObject(j, "routes");
	http_routes_each(t->app->http, route_json, &l);
	http_reply_json(r, 200, j);
}

/* ---- the module ---- */

struct tokens *
tokens_new(const struct app *app, int *failed)
{
	struct tokens *t;
	struct http *h = app->http;
	struct timeval now = { 0, 0 };
	int rw = EVHTTP_REQ_POST | EVHTTP_REQ_DELETE;

	*failed = 0;
	if (h == NULL)
		return NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto oom;
	t->app = app;
	if ((t->poll = evtimer_new(app->base, on_poll, t)) == NULL)
		goto oom;
	if (http_route(h, EVHTTP_REQ_GET | rw, "/v1/tokens", HTTP_ROLE_ADMIN,
	    tokens_on_request, t, 0) < 0 ||
	    http_route(h, EVHTTP_REQ_GET, "/v1/audit", HTTP_ROLE_ADMIN, audit_on_request, t,
	    HTTP_EXACT) < 0 ||
	    http_route(h, EVHTTP_REQ_GET, "/v1/routes", HTTP_ROLE_VIEWER, routes_on_request,
	    t, HTTP_EXACT) < 0 ||
	    http_route(h, EVHTTP_REQ_POST, "/v1/session", HTTP_ROLE_PUBLIC,
	    session_on_request, t, HTTP_EXACT | HTTP_SIGN_IN) < 0 ||
	    http_route(h, EVHTTP_REQ_GET | EVHTTP_REQ_DELETE, "/v1/session",
	    HTTP_ROLE_VIEWER, session_on_request, t, HTTP_EXACT) < 0)
		goto oom;
	http_set_auth(h, &tokens_auth, t);
	evtimer_add(t->poll, &now);
	return t;
oom:
	log_errorx("event=start_failed component=tokens err=\"out of memory\"");
	tokens_free(t);
	*failed = 1;
	return NULL;
}

void
tokens_free(struct tokens *t)
{
	if (t == NULL)
		return;
	if (t->app->http != NULL)
		http_set_auth(t->app->http, NULL, NULL);
	http_wait_detach_all(&t->waits);
	if (t->loading != NULL)
		t->loading->t = NULL;
	if (t->poll != NULL)
		event_free(t->poll);
	if (t->v != NULL)
		OPENSSL_cleanse(t->v, t->n * sizeof(*t->v));
	free(t->v);
	free(t);
}
