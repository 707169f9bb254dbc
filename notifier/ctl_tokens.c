/*
 * ctl_tokens.c: dealpushctl tokens create | list | revoke and dealpushctl audit, over
 * the admin API (stage: outside the pipeline, the operator's CLI; docs/admin.md). A
 * created token is printed once, on stdout alone, so that it can be piped into a
 * secret store; nothing else ever prints one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "ctl_int.h"

/* One API call whose answer must be want; the parsed answer in *out (or printed as
 * it came with --json: *out NULL then). CTL_OK, CTL_BAD_INPUT (refused, printed) or
 * CTL_FAIL (printed). */
static int
call(struct ctl_api *api, const char *method, const char *path, const char *body,
    long want, const char *what, cJSON **out)
{
	char msg[512];
	struct ctl_buf b;
	long st;
	int rc = CTL_FAIL;

	*out = NULL;
	if ((st = ctl_api_call(api, method, path, body, body ? strlen(body) : 0, NULL,
	    &b)) < 0)
		return CTL_FAIL;
	if (st != want) {
		if (!ctl_api_fatal(st, &b)) {
			fprintf(stderr, "dealpushctl: %s: %s\n", what,
			    ctl_api_error_text(&b, msg, sizeof(msg)));
			rc = CTL_BAD_INPUT;
		}
	} else if (api->json) {
		printf("%s\n", b.p);
		rc = CTL_OK;
	} else if ((*out = cJSON_Parse(b.p)) == NULL) {
		fprintf(stderr, "dealpushctl: the API answered something that is not JSON\n");
	} else {
		rc = CTL_OK;
	}
	free(b.p);
	return rc;
}

/* Epoch ms as "2026-12-05T03:00:00Z" into buf; "-" for 0. */
static const char *
when(double ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms <= 0 || gmtime_r(&t, &tm) == NULL)
		snprintf(buf, size, "-");
	else
		strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static int
tokens_create(struct ctl_api *api, const char *name, const char *role)
{
	cJSON *req = cJSON_CreateObject(), *j;
	char *body;
	int rc;

	if (req == NULL || cJSON_AddStringToObject(req, "name", name) == NULL ||
	    cJSON_AddStringToObject(req, "role", role) == NULL ||
	    (body = cJSON_PrintUnformatted(req)) == NULL) {
		cJSON_Delete(req);
		fprintf(stderr, "dealpushctl: out of memory\n");
		return CTL_FAIL;
	}
	cJSON_Delete(req);
	rc = call(api, "POST", "/v1/tokens", body, 201, "tokens create", &j);
	cJSON_free(body);
	if (j == NULL)
		return rc;
	printf("%s\n", ctl_jstr(j, "token"));
	fprintf(stderr, "dealpushctl: token %s (%s) created; it is shown this once\n",
	    ctl_jstr(j, "name"), ctl_jstr(j, "role"));
	cJSON_Delete(j);
	return CTL_OK;
}

static int
tokens_list(struct ctl_api *api)
{
	const cJSON *t;
	char c[32], u[32];
	cJSON *j;
	int rc = call(api, "GET", "/v1/tokens", NULL, 200, "tokens list", &j);

	if (j == NULL)
		return rc;
	printf("%-24s %-9s %-21s %s\n", "NAME", "ROLE", "CREATED", "LAST USED");
	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(j, "tokens"))
		printf("%-24s %-9s %-21s %s\n", ctl_jstr(t, "name"), ctl_jstr(t, "role"),
		    when(ctl_jnum(t, "created_ms"), c, sizeof(c)),
		    when(ctl_jnum(t, "last_used_ms"), u, sizeof(u)));
	cJSON_Delete(j);
	return CTL_OK;
}

static int
tokens_revoke(struct ctl_api *api, const char *name)
{
	char p[1024];
	cJSON *j;
	int rc;

	if (ctl_api_path(api, p, sizeof(p), "/v1/tokens/", name) < 0)
		return CTL_FAIL;
	rc = call(api, "DELETE", p, NULL, 200, "tokens revoke", &j);
	if (j == NULL)
		return rc;
	printf("revoked token %s\n", name);
	cJSON_Delete(j);
	return CTL_OK;
}

int
ctl_cmd_tokens(struct ctl_api *api, int argc, char **argv)
{
	if (argc == 5 && strcmp(argv[1], "create") == 0 && strcmp(argv[3], "--role") == 0)
		return tokens_create(api, argv[2], argv[4]);
	if (argc == 2 && strcmp(argv[1], "list") == 0)
		return tokens_list(api);
	if (argc == 3 && strcmp(argv[1], "revoke") == 0)
		return tokens_revoke(api, argv[2]);
	fprintf(stderr, "dealpushctl: tokens create NAME --role viewer|marketer|admin,"
	    " tokens list, or tokens revoke NAME\n");
	return CTL_FAIL;
}

/* A before/after value on one line, cut to 60 characters. */
static void
value_line(const cJSON *v, char *buf, size_t size)
{
	char *s = v != NULL ? cJSON_PrintUnformatted(v) : NULL;

	snprintf(buf, size, "%.60s%s", s ? s : "null", s && strlen(s) > 60 ? "..." : "");
	cJSON_free(s);
}

int
ctl_cmd_audit(struct ctl_api *api, int argc, char **argv)
{
	char p[64], w[32], b[80], a[80], *end = NULL;
	const cJSON *e;
	cJSON *j;
	long limit = 50;
	int rc;

	if (argc == 3 && strcmp(argv[1], "--limit") == 0) {
		errno = 0;
		limit = strtol(argv[2], &end, 10);
		if (errno != 0 || end == argv[2] || *end != '\0' || limit < 1 || limit > 1000) {
			fprintf(stderr, "dealpushctl: audit --limit wants 1 to 1000\n");
			return CTL_FAIL;
		}
	} else if (argc != 1) {
		fprintf(stderr, "dealpushctl: audit [--limit N]\n");
		return CTL_FAIL;
	}
	snprintf(p, sizeof(p), "/v1/audit?limit=%ld", limit);
	if ((rc = call(api, "GET", p, NULL, 200, "audit", &j)) != CTL_OK || j == NULL)
		return rc;
	printf("%-21s %-16s %-9s %-18s %-20s %s -> %s\n", "WHEN", "WHO", "ROLE", "WHAT", "ID",
	    "BEFORE", "AFTER");
	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(j, "entries")) {
		value_line(cJSON_GetObjectItemCaseSensitive(e, "before"), b, sizeof(b));
		value_line(cJSON_GetObjectItemCaseSensitive(e, "after"), a, sizeof(a));
		printf("%-21s %-16s %-9s %-18s %-20s %s -> %s\n",
		    when(ctl_jnum(e, "ms"), w, sizeof(w)), ctl_jstr(e, "who"),
		    ctl_jstr(e, "role"), ctl_jstr(e, "what"), ctl_jstr(e, "id"), b, a);
	}
	cJSON_Delete(j);
	return CTL_OK;
}
