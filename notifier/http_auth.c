/*
 * http_auth.c: who a request comes from and whether it may do what it asks (stage:
 * http): the bearer token or the session cookie, the role a route needs, the
 * cross-site request checks of a cookie, and the security headers of every answer.
 *
 * The one place that decides; http.c routes first and calls http_authenticate with
 * the role the route needs. http.admin_token is checked here as the admin principal
 * "config"; named tokens and sessions come from the provider set with http_set_auth
 * (tokens.c). It never logs a credential, and compares secrets in constant time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "http.h"
#include "http_int.h"

/* ORDER HTTP_ROLES */
static const char *const role_names[] = { "public", "viewer", "marketer", "admin" };

const char *http_role_name(enum http_role role)
{
	if ((unsigned)role >= sizeof(role_names) / sizeof(role_names[0]))
		return "?";
	return role_names[role];
}

int http_role_parse(const char *name)
{
	int i;

	for (i = HTTP_ROLE_VIEWER; i <= HTTP_ROLE_ADMIN; i++)
		if (name != NULL && strcmp(name, role_names[i]) == 0)
			return i;
	return -1;
}

int http_sha256(const void *p, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	if (EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
		return -1;
	return 0;
}

void http_security_headers(struct evkeyvalq *out)
{
	evhttp_remove_header(out, "Cache-Control");
	evhttp_add_header(out, "Cache-Control", "no-store");
	evhttp_add_header(out, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(out, "Content-Security-Policy", HTTP_CSP);
	evhttp_add_header(out, "Referrer-Policy", "no-referrer");
	evhttp_add_header(out, "X-Frame-Options", "DENY");
}

int http_origin_set(struct http *h, const char *url)
{
	const char *host = strstr(url, "://");
	size_t n;

	if (host == NULL)
		return 0;
	host += 3;
	n = (size_t)(host - url) + strcspn(host, "/?#");
	free(h->origin);
	if ((h->origin = strndup(url, n)) == NULL)
		return -1;
	h->secure = strncasecmp(url, "https://", 8) == 0;
	return 0;
}

int http_secure(const struct http *h)
{
	return h->secure;
}

void http_set_auth(struct http *h, const struct http_auth_ops *ops, void *arg)
{
	h->auth = ops;
	h->auth_arg = arg;
}

const struct http_principal *http_req_principal(const struct http_req *r)
{
	return r->authed ? &r->principal : NULL;
}

/* The bearer token of "Authorization: Bearer <token>" (scheme case-insensitive,
 * blanks around it allowed) into *tok and *len; 0, or -1 when there is none. */
static int bearer_of(const struct http_req *r, const char **tok, size_t *len)
{
	const char *v = http_header(r, "Authorization");

	if (v == NULL)
		return -1;
	v += strspn(v, " \t");
	if (strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t'))
		return -1;
	v += 6;
	v += strspn(v, " \t");
	*len = strlen(v);
	while (*len > 0 && (v[*len - 1] == ' ' || v[*len - 1] == '\t'))
		(*len)--;
	*tok = v;
	return *len > 0 ? 0 : -1;
}

/* The session cookie's value into out (64 hex digits); 0, or -1 when absent or
 * malformed (then it is no credential). */
int http_session_cookie(const struct http_req *r, char *out, size_t size)
{
	const char *c = http_header(r, "Cookie");
	const size_t nl = strlen(HTTP_SESSION_COOKIE);
	size_t n, i;

	while (c != NULL && *c != '\0') {
		c += strspn(c, " \t;");
		if (strncmp(c, HTTP_SESSION_COOKIE, nl) == 0 && c[nl] == '=') {
			c += nl + 1;
			n = strcspn(c, "; \t");
			if (n != 64 || n >= size)
				return -1;
			for (i = 0; i < n; i++)
				if (!((c[i] >= '0' && c[i] <= '9') || (c[i] >= 'a' && c[i] <= 'f')))
					return -1;
			memcpy(out, c, n);
			out[n] = '\0';
			return 0;
		}
		c = strchr(c, ';');
	}
	return -1;
}

static void answer_401(struct http_req *r, const char *why)
{
	http_add_header(r, "WWW-Authenticate", "Bearer realm=\"dealpush\"");
	http_error(r, 401, NULL, "%s", why);
}

/* 1 when the Origin of a cookie request is ours: the public URL's origin, or without
 * one "http://" + the Host the request was sent to. No Origin: 1 (the CSRF token
 * alone decides, as for a same-origin request of an older browser). */
int http_origin_ok(const struct http_req *r)
{
	const char *o = http_header(r, "Origin"), *host;
	char mine[300];

	if (o == NULL)
		return 1;
	if (r->h->origin != NULL)
		return strcasecmp(o, r->h->origin) == 0;
	if ((host = http_header(r, "Host")) == NULL)
		return 0;
	snprintf(mine, sizeof(mine), "http://%s", host);
	return strcasecmp(o, mine) == 0;
}

/* A session's request that changes state carries the session's CSRF token in
 * X-CSRF-Token, and comes from our origin. 1 when it does (or need not). */
static int csrf_ok(const struct http_req *r, const char **why)
{
	const char *t;
	unsigned char d[32];

	if (!r->principal.session || r->method == EVHTTP_REQ_GET ||
	    r->method == EVHTTP_REQ_HEAD || r->method == EVHTTP_REQ_OPTIONS)
		return 1;
	if ((t = http_header(r, HTTP_CSRF_HEADER)) == NULL || *t == '\0') {
		*why = "a signed-in change needs the X-CSRF-Token header of its session";
		return 0;
	}
	if (http_sha256(t, strlen(t), d) < 0 ||
	    CRYPTO_memcmp(d, r->principal.csrf, sizeof(d)) != 0) {
		*why = "X-CSRF-Token is not this session's";
		return 0;
	}
	if (!http_origin_ok(r)) {
		*why = "Origin is not this server's: cross-site requests are refused";
		return 0;
	}
	return 1;
}

/* The principal is known: the cross-site and role checks, then the route. */
static void http_auth_check(struct http_req *r)
{
	const char *why = NULL;
	cJSON *j;
	char msg[200];

	r->authed = 1;
	if (!csrf_ok(r, &why)) {
		http_error(r, 403, HTTP_CSRF_HEADER, "%s", why);
		return;
	}
	if (r->principal.role < r->need) {
		snprintf(msg, sizeof(msg), "this needs the %s role; '%s' has %s",
		    http_role_name(r->need), r->principal.name,
		    http_role_name(r->principal.role));
		if ((j = cJSON_CreateObject()) == NULL ||
		    cJSON_AddStringToObject(j, "error", msg) == NULL ||
		    cJSON_AddStringToObject(j, "field", "role") == NULL ||
		    cJSON_AddStringToObject(j, "role_needed", http_role_name(r->need)) == NULL ||
		    cJSON_AddStringToObject(j, "role", http_role_name(r->principal.role)) ==
		    NULL) {
			cJSON_Delete(j);
			http_send_bare(r, 500);
			return;
		}
		http_reply_json(r, 403, j);
		return;
	}
	http_route_finish(r);
}

void http_authenticate(struct http_req *r)
{
	struct http *h = r->h;
	const char *tok;
	char sid[72];
	size_t len;
	int rc;

	if (h->token == NULL && h->auth == NULL) {
		http_error(r, 503, NULL, "admin API disabled");
		return;
	}
	memset(&r->principal, 0, sizeof(r->principal));
	if (bearer_of(r, &tok, &len) == 0) {
		/* The length is not secret; the bytes are compared in constant time. */
		if (h->token != NULL && len == h->token_len &&
		    CRYPTO_memcmp(tok, h->token, len) == 0) {
			snprintf(r->principal.name, sizeof(r->principal.name), "%s",
			    HTTP_CONFIG_PRINCIPAL);
			r->principal.role = HTTP_ROLE_ADMIN;
			http_auth_check(r);
			return;
		}
		rc = h->auth != NULL ? h->auth->bearer(h->auth_arg, tok, len,
		    &r->principal) : 0;
		if (rc < 0) {
			http_add_header(r, "Retry-After", "1");
			http_error(r, 503, NULL, "tokens not loaded yet; try again");
		} else if (rc == 0) {
			answer_401(r, "unauthorized");
		} else {
			r->principal.session = 0;
			http_auth_check(r);
		}
		return;
	}
	if (h->auth != NULL && http_session_cookie(r, sid, sizeof(sid)) == 0) {
		h->auth->session(h->auth_arg, r, sid);
		return;
	}
	answer_401(r, "unauthorized");
}

void http_auth_resume(struct http_req *r, const struct http_principal *p)
{
	if (p == NULL) {
		answer_401(r, "session expired or signed out; sign in again");
		return;
	}
	r->principal = *p;
	r->principal.session = 1;
	http_auth_check(r);
}
