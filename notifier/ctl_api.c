/*
 * ctl_api.c: dealpushctl's admin API client (stage: outside the pipeline, the
 * operator's CLI): one synchronous libcurl request per call with connect and total
 * timeouts and a cap on the answer kept, the server's error text, and subscribers
 * delete over the API. It must never print the API token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "deal.h"

#include "ctl_int.h"

/* ---- the admin API (libcurl easy: synchronous is fine in a CLI) ---- */

static size_t api_write(char *data, size_t size, size_t n, void *arg)
{
	struct ctl_buf *b = arg;
	size_t add = size * n;
	char *np;

	if (b->len + add > (size_t)CTL_API_REPLY_MAX) {
		b->over = 1;
		return 0;
	}
	if ((np = realloc(b->p, b->len + add + 1)) == NULL)
		return 0;
	b->p = np;
	memcpy(b->p + b->len, data, add);
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

/* One request: method on base URL + path (already escaped), with body (may be NULL).
 * Returns the HTTP status with the answer in *out (caller frees out->p; never NULL
 * on success), or -1 after printing why (connection, timeout, too large). */
long ctl_api_call(struct ctl_api *api, const char *method, const char *path,
    const char *body, size_t len, const char *ctype, struct ctl_buf *out)
{
	struct curl_slist *h = NULL, *nh;
	char url[4096], auth[1024], ct[128];
	size_t ul = strlen(api->url);
	long status = -1;
	CURLcode rc;

	memset(out, 0, sizeof(*out));
	while (ul > 0 && api->url[ul - 1] == '/')
		ul--;
	if (snprintf(url, sizeof(url), "%.*s%s", (int)ul, api->url, path) >= (int)sizeof(url) ||
	    snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
	    api->token ? api->token : "") >= (int)sizeof(auth)) {
		fprintf(stderr, "dealpushctl: API URL or token too long\n");
		return -1;
	}
	snprintf(ct, sizeof(ct), "Content-Type: %s", ctype ? ctype : "application/json");
	if ((nh = curl_slist_append(h, auth)) == NULL)
		goto oom;
	h = nh;
	if ((nh = curl_slist_append(h, ct)) == NULL)
		goto oom;
	h = nh;
	if ((nh = curl_slist_append(h, "Expect:")) == NULL)
		goto oom;
	h = nh;
	curl_easy_reset(api->curl);
	curl_easy_setopt(api->curl, CURLOPT_URL, url);
	curl_easy_setopt(api->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(api->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(api->curl, CURLOPT_CONNECTTIMEOUT_MS, CTL_API_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(api->curl, CURLOPT_TIMEOUT_MS, CTL_API_TIMEOUT_MS);
	curl_easy_setopt(api->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(api->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(api->curl, CURLOPT_WRITEFUNCTION, api_write);
	curl_easy_setopt(api->curl, CURLOPT_WRITEDATA, out);
	if (body != NULL) {
		curl_easy_setopt(api->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(api->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	rc = curl_easy_perform(api->curl);
	if (rc != CURLE_OK) {
		fprintf(stderr, "dealpushctl: %s %s: %s\n", method, path, out->over ?
		    "answer too large" : curl_easy_strerror(rc));
		free(out->p);
		out->p = NULL;
		goto out;
	}
	curl_easy_getinfo(api->curl, CURLINFO_RESPONSE_CODE, &status);
	if (out->p == NULL && (out->p = calloc(1, 1)) == NULL)
		goto oom;
	goto out;
oom:
	fprintf(stderr, "dealpushctl: out of memory\n");
	status = -1;
out:
	curl_slist_free_all(h);
	return status;
}

/* "/prefix/<escaped name>" into buf. 0, or -1 (printed). */
int ctl_api_path(struct ctl_api *api, char *buf, size_t size, const char *prefix,
    const char *name)
{
	char *e = curl_easy_escape(api->curl, name, 0);
	int n;

	if (e == NULL) {
		fprintf(stderr, "dealpushctl: out of memory\n");
		return -1;
	}
	n = snprintf(buf, size, "%s%s", prefix, e);
	curl_free(e);
	if (n < 0 || (size_t)n >= size) {
		fprintf(stderr, "dealpushctl: name too long\n");
		return -1;
	}
	return 0;
}

/* The server's error text "<error> (field <field>)" of an answer, into buf. */
const char *ctl_api_error_text(const struct ctl_buf *b, char *buf, size_t size)
{
	cJSON *j = cJSON_Parse(b->p ? b->p : "");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "field");

	if (cJSON_IsString(e) && cJSON_IsString(f))
		snprintf(buf, size, "%s (field %s)", e->valuestring, f->valuestring);
	else if (cJSON_IsString(e))
		snprintf(buf, size, "%s", e->valuestring);
	else
		snprintf(buf, size, "%.200s", b->p ? b->p : "");
	cJSON_Delete(j);
	return buf;
}

/* A status the command cannot go on after: 401, 403, 5xx. */
int ctl_api_fatal(long status, const struct ctl_buf *b)
{
	char msg[512];

	if (status == 401 || status == 403 || status >= 500) {
		fprintf(stderr, "dealpushctl: API answered %ld: %s\n", status,
		    ctl_api_error_text(b, msg, sizeof(msg)));
		return 1;
	}
	return 0;
}

int ctl_cmd_api_delete(struct ctl_api *api, const char *id)
{
	struct ctl_buf b;
	char p[1024], msg[512];
	long st;

	if (!deal_id_is_valid(id)) {
		fprintf(stderr, "dealpushctl: \"%s\" is not a valid subscriber id\n", id);
		return CTL_BAD_INPUT;
	}
	if (ctl_api_path(api, p, sizeof(p), "/v1/subscribers/", id) < 0 ||
	    (st = ctl_api_call(api, "DELETE", p, NULL, 0, NULL, &b)) < 0)
		return CTL_FAIL;
	if (st == 200)
		printf("deleted %s\n", id);
	else if (st == 404)
		printf("deleted %s (it was not stored)\n", id);
	else
		fprintf(stderr, "dealpushctl: %s\n", ctl_api_error_text(&b, msg, sizeof(msg)));
	free(b.p);
	return st == 200 || st == 404 ? CTL_OK : CTL_FAIL;
}

int ctl_cmd_api_get(struct ctl_api *api, const char *id)
{
	struct ctl_buf b;
	char p[1024], msg[512], *out = NULL;
	cJSON *j = NULL;
	long st;

	if (!deal_id_is_valid(id)) {
		fprintf(stderr, "dealpushctl: \"%s\" is not a valid subscriber id\n", id);
		return CTL_BAD_INPUT;
	}
	if (ctl_api_path(api, p, sizeof(p), "/v1/subscribers/", id) < 0 ||
	    (st = ctl_api_call(api, "GET", p, NULL, 0, NULL, &b)) < 0)
		return CTL_FAIL;
	if (st == 200 && (j = cJSON_ParseWithLength(b.p, b.len)) != NULL &&
	    (out = cJSON_Print(j)) != NULL)
		printf("%s\n", out);
	else
		fprintf(stderr, "dealpushctl: %s\n", st == 200 ? "the answer is not JSON" :
		    ctl_api_error_text(&b, msg, sizeof(msg)));
	free(out);
	cJSON_Delete(j);
	free(b.p);
	return out != NULL ? CTL_OK : CTL_FAIL;
}

double ctl_jnum(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

const char *ctl_jstr(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);

	return cJSON_IsString(v) ? v->valuestring : "";
}
