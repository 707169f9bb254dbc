/*
 * session.c: console sessions (stage: http): POST /v1/session signs in with a token
 * and sets the session cookie, GET /v1/session says who is signed in, DELETE signs
 * out; and the lookup of a cookie's session for http_auth.c (docs/api.md).
 *
 * A session is session:<SHA-256 of its id> in Redis with a TTL (http.session_ttl_s):
 * neither the id nor the CSRF token is stored, only their digests. A session lives
 * only while its token does: a revoked token's sessions are refused at once. It
 * never logs an id or a token, and never blocks the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
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

#define SESSION_BODY_MAX 4096

struct session_op {
	struct http_wait w;             /* first: w.r is NULL once detached */
	struct tokens *t;               /* valid while w.r is */
	struct http_principal p;
	char id[65];                    /* create: the new id, for the cookie */
	char csrf[65];                  /* create: the CSRF token, answered once */
	int create;
};

static void
op_free(struct session_op *op)
{
	http_wait_remove(&op->w);
	OPENSSL_cleanse(op, sizeof(*op));
	free(op);
}

/* "session:" + hex SHA-256 of id into key (keys_session); 0 or -1. */
static int
session_key(const char *id, char *key, size_t size)
{
	char hex[65];

	if (tokens_sha256_hex(id, strlen(id), hex) < 0)
		return -1;
	return keys_session(hex, key, size) < 0 ? -1 : 0;
}

/* The principal of a stored record, as its token is now: 1 and *p filled, 0 when
 * the record is bad or its token is gone. A token revoked and made again under the
 * same name is another token (its creation time differs): the old one's sessions
 * stay refused. */
static int
record_principal(struct tokens *t, const char *json, size_t len,
    struct http_principal *p)
{
	cJSON *j = cJSON_ParseWithLength(json, len);
	const cJSON *n = cJSON_GetObjectItem(j, "name"), *c = cJSON_GetObjectItem(j, "csrf"),
	    *tc = cJSON_GetObjectItem(j, "token_created_ms");
	const struct tokens_ent *e;
	int ok = 0;
	size_t i;

	memset(p, 0, sizeof(*p));
	if (!cJSON_IsString(n) || !cJSON_IsString(c) || strlen(c->valuestring) != 64)
		goto out;
	for (i = 0; i < 32; i++) {
		unsigned v;

		if (sscanf(c->valuestring + 2 * i, "%2x", &v) != 1)
			goto out;
		p->csrf[i] = (unsigned char)v;
	}
	snprintf(p->name, sizeof(p->name), "%s", n->valuestring);
	if (strcmp(n->valuestring, HTTP_CONFIG_PRINCIPAL) == 0) {
		if (t->app->cfg->admin_token == NULL || t->app->cfg->admin_token[0] == '\0')
			goto out;
		p->role = HTTP_ROLE_ADMIN;
	} else if ((e = tokens_find(t, n->valuestring)) != NULL && cJSON_IsNumber(tc) &&
	    (long long)tc->valuedouble == e->created_ms) {
		p->role = e->role;
	} else {
		goto out;
	}
	ok = 1;
out:
	cJSON_Delete(j);
	return ok;
}

static void
on_lookup(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct session_op *op = arg;
	struct http_req *r = op->w.r;
	struct http_principal p;

	(void)rc;
	http_wait_remove(&op->w);
	if (r == NULL)
		goto out;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		http_error(r, 503, NULL, "storage unavailable; try again");
		goto out;
	}
	if (reply->type != REDIS_REPLY_STRING ||
	    !record_principal(op->t, reply->str, reply->len, &p))
		http_auth_resume(r, NULL);
	else
		http_auth_resume(r, &p);
out:
	op_free(op);
}

void
session_lookup(void *arg, struct http_req *r, const char *id)
{
	struct tokens *t = arg;
	struct session_op *op;
	char key[96];

	if (!t->loaded) {
		http_add_header(r, "Retry-After", "1");
		http_error(r, 503, NULL, "tokens not loaded yet; try again");
		return;
	}
	if (session_key(id, key, sizeof(key)) < 0 ||
	    (op = calloc(1, sizeof(*op))) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	op->t = t;
	http_wait_add(&t->waits, &op->w, r);
	if (rconn_cmd(t->app->cmd, on_lookup, op, 0, "GET %s", key) < 0) {
		op_free(op);
		http_error(r, 503, NULL, "storage unavailable; try again");
	}
}

/* The Set-Cookie value: the id for max_age seconds, or expired when id is "". */
static void
cookie_set(struct http_req *r, const struct tokens *t, const char *id, long max_age)
{
	char v[256];

	snprintf(v, sizeof(v), HTTP_SESSION_COOKIE "=%s; Path=/; Max-Age=%ld; HttpOnly;"
	    " SameSite=Strict%s", id, max_age, http_secure(t->app->http) ? "; Secure" : "");
	http_add_header(r, "Set-Cookie", v);
}

static void
on_change(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct session_op *op = arg;
	struct http_req *r = op->w.r;
	long ttl;
	cJSON *j;

	(void)rc;
	if (r == NULL)
		goto out;
	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
		if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
			log_errorx("event=session_failed err=\"%.200s\"", reply->str);
		http_error(r, 503, NULL, "storage unavailable; try again");
		goto out;
	}
	ttl = op->t->app->cfg->session_ttl_s;
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "name", op->p.name);
	cJSON_AddStringToObject(j, "role", http_role_name(op->p.role));
	if (op->create) {
		log_info("event=session_created name=%s role=%s", op->p.name,
		    http_role_name(op->p.role));
		cookie_set(r, op->t, op->id, ttl);
		cJSON_AddStringToObject(j, "csrf_token", op->csrf);
		cJSON_AddNumberToObject(j, "expires_in_s", (double)ttl);
		http_reply_json(r, 201, j);
	} else {
		log_info("event=session_deleted name=%s", op->p.name);
		cookie_set(r, op->t, "", 0);
		cJSON_AddTrueToObject(j, "signed_out");
		http_reply_json(r, 200, j);
	}
out:
	op_free(op);
}

/* Sends op's change (session_change.lua) for the session of id; answers r itself
 * on failure. */
static void
change_send(struct tokens *t, struct http_req *r, struct session_op *op,
    const char *id, const char *record)
{
	char key[96], ttl[24], ms[24];
	const char *args[8];

	if (session_key(id, key, sizeof(key)) < 0) {
		op_free(op);
		http_error(r, 500, NULL, "digest failed");
		return;
	}
	snprintf(ttl, sizeof(ttl), "%ld", t->app->cfg->session_ttl_s);
	snprintf(ms, sizeof(ms), "%lld", (long long)clock_now_ms());
	args[0] = key;                  /* ORDER SESSION_KEYS: session_change.lua */
	args[1] = AUDIT_KEY;
	args[2] = op->create ? "create" : "delete";
	args[3] = record;
	args[4] = ttl;
	args[5] = op->p.name;
	args[6] = http_role_name(op->p.role);
	args[7] = ms;
	op->t = t;
	http_wait_add(&t->waits, &op->w, r);
	if (script_call_named(t->app->cmd, "session_change", 2, 8, args, NULL, on_change,
	    op) < 0) {
		op_free(op);
		http_error(r, 503, NULL, "storage unavailable; try again");
	}
}

/* The creation time of the named token (0 for the config token or none). */
static long long
token_created_ms(struct tokens *t, const char *name)
{
	const struct tokens_ent *e = tokens_find(t, name);

	return e != NULL && strcmp(name, HTTP_CONFIG_PRINCIPAL) != 0 ? e->created_ms : 0;
}

/* The principal of a token given to sign in: 1, 0 unknown, -1 not loaded. */
static int
token_principal(struct tokens *t, const char *tok, struct http_principal *p)
{
	const char *cfg = t->app->cfg->admin_token;
	size_t len = strlen(tok);

	memset(p, 0, sizeof(*p));
	if (cfg != NULL && cfg[0] != '\0' && strlen(cfg) == len &&
	    CRYPTO_memcmp(cfg, tok, len) == 0) {
		snprintf(p->name, sizeof(p->name), "%s", HTTP_CONFIG_PRINCIPAL);
		p->role = HTTP_ROLE_ADMIN;
		return 1;
	}
	if (!t->loaded)
		return -1;
	return tokens_check(t, tok, len, p);
}

/* POST /v1/session {"token": "..."} */
static void
session_create(struct tokens *t, struct http_req *r)
{
	static const char *const names[] = { "token" };
	size_t len = 0;
	const char *body = http_body(r, &len);
	unsigned char rnd[64];
	struct session_op *op = NULL;
	char rec[300], csrf_hex[65];
	const cJSON *tok, *f;
	struct err err;
	cJSON *j;
	int rc;

	if (!http_origin_ok(r)) {
		http_error(r, 403, "Origin", "Origin is not this server's: cross-site"
		    " requests are refused");
		return;
	}
	err_clear(&err);
	if ((j = deal_json_open(body, len, SESSION_BODY_MAX, "body", &err)) == NULL ||
	    jv_check_unique(j, names, 1, "", &err) < 0) {
		cJSON_Delete(j);
		http_error_input(r, &err);
		return;
	}
	for (f = j->child; f != NULL; f = f->next)
		if (strcmp(f->string, "token") != 0) {
			http_error(r, 400, f->string, "unknown field; signing in takes only"
			    " \"token\"");
			goto out;
		}
	tok = jv_field(j, "token");
	if (!cJSON_IsString(tok) || tok->valuestring[0] == '\0') {
		http_error(r, 400, "token", "token is the API token to sign in with, a"
		    " string");
		goto out;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		goto out;
	}
	op->create = 1;
	if ((rc = token_principal(t, tok->valuestring, &op->p)) <= 0) {
		op_free(op);
		if (rc < 0) {
			http_add_header(r, "Retry-After", "1");
			http_error(r, 503, NULL, "tokens not loaded yet; try again");
		} else {
			http_add_header(r, "WWW-Authenticate", "Bearer realm=\"dealpush\"");
			http_error(r, 401, "token", "unknown or revoked token");
		}
		goto out;
	}
	if (tokens_random(rnd, sizeof(rnd)) < 0) {
		op_free(op);
		http_error(r, 503, NULL, "no randomness from the system; try again");
		goto out;
	}
	/* The id and the CSRF token: 256 bits each, as hex. */
	tokens_format(rnd, rec, sizeof(rec));
	memcpy(op->id, rec + strlen(TOKENS_PREFIX), TOKENS_HEX_LEN);
	op->id[TOKENS_HEX_LEN] = '\0';
	tokens_format(rnd + 32, rec, sizeof(rec));
	memcpy(op->csrf, rec + strlen(TOKENS_PREFIX), TOKENS_HEX_LEN);
	op->csrf[TOKENS_HEX_LEN] = '\0';
	OPENSSL_cleanse(rnd, sizeof(rnd));
	if (tokens_sha256_hex(op->csrf, strlen(op->csrf), csrf_hex) < 0) {
		op_free(op);
		http_error(r, 500, NULL, "digest failed");
		goto out;
	}
	snprintf(rec, sizeof(rec), "{\"name\":\"%s\",\"role\":\"%s\",\"csrf\":\"%s\","
	    "\"created_ms\":%lld,\"token_created_ms\":%lld}", op->p.name,
	    http_role_name(op->p.role), csrf_hex, (long long)clock_now_ms(),
	    token_created_ms(t, op->p.name));
	change_send(t, r, op, op->id, rec);
out:
	cJSON_Delete(j);
}

void
session_on_request(struct http_req *r, void *arg)
{
	struct tokens *t = arg;
	const struct http_principal *p = http_req_principal(r);
	struct session_op *op;
	char id[72];
	cJSON *j;

	switch (http_req_method(r)) {
	case EVHTTP_REQ_POST:
		session_create(t, r);
		return;
	case EVHTTP_REQ_GET:
	case EVHTTP_REQ_HEAD:
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "name", p->name);
		cJSON_AddStringToObject(j, "role", http_role_name(p->role));
		cJSON_AddBoolToObject(j, "session", p->session);
		http_reply_json(r, 200, j);
		return;
	default:
		break;
	}
	if (!p->session || http_session_cookie(r, id, sizeof(id)) < 0) {
		http_error(r, 400, NULL, "not signed in with a session: a bearer token is"
		    " revoked with DELETE /v1/tokens/<name>");
		return;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	op->p = *p;
	change_send(t, r, op, id, "");
}
