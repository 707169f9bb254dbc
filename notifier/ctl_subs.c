/*
 * ctl_subs.c: dealpushctl subscribers list through the admin API (stage: outside the
 * pipeline, the operator's CLI): GET /v1/subscribers page after page, following the
 * server's cursor, one line per subscriber (or the stored JSON with --json, which
 * subscribers import reads back). It must never print the API token, and stops at
 * --limit subscribers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "ctl_int.h"

#define SUBS_PAGE_MAX 1000                /* the server's largest page */

/* Appends "&name=<escaped value>" to q (size bytes in all). 0, or -1 (printed). */
static int
query_add(struct ctl_api *api, char *q, size_t size, const char *name, const char *value)
{
	char *e;
	size_t len = strlen(q);
	int n;

	if (value == NULL)
		return 0;
	if ((e = curl_easy_escape(api->curl, value, 0)) == NULL) {
		fprintf(stderr, "dealpushctl: out of memory\n");
		return -1;
	}
	n = snprintf(q + len, size - len, "%s%s=%s", len > 0 ? "&" : "", name, e);
	curl_free(e);
	if (n < 0 || (size_t)n >= size - len) {
		fprintf(stderr, "dealpushctl: subscribers list: %s too long\n", name);
		return -1;
	}
	return 0;
}

/* The strings of array member name of o, or the member names of object member name,
 * comma-separated, into buf ("-" when none). */
static const char *
join(const cJSON *o, const char *name, char *buf, size_t size)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name), *v;
	size_t len = 0;

	buf[0] = '\0';
	cJSON_ArrayForEach(v, a) {
		/* An object's member names (consent), an array's strings (channels). */
		const char *s = cJSON_IsObject(a) ? v->string : cJSON_IsString(v) ?
		    v->valuestring : NULL;

		if (s != NULL && len < size)
			len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? "," : "", s);
	}
	return buf[0] != '\0' ? buf : "-";
}

static void
print_sub(const cJSON *s, int json)
{
	char ch[64], con[64], cat[256];

	if (json) {
		char *t = cJSON_PrintUnformatted(s);

		printf("%s\n", t != NULL ? t : "{}");
		free(t);
		return;
	}
	printf("%-24s %-20s %-8s %-8s %s\n", ctl_jstr(s, "id"), ctl_jstr(s, "timezone"),
	    join(s, "channels", ch, sizeof(ch)), join(s, "consent", con, sizeof(con)),
	    join(cJSON_GetObjectItemCaseSensitive(s, "interests"), "categories", cat,
	    sizeof(cat)));
}

/* Parses "subscribers list" options (argv after "list"). 0, or -1 (printed). */
static int
parse_args(int argc, char **argv, const char **f, unsigned long *limit, int *json)
{
	static const char *const names[3] = { "--interest", "--consent", "--tz" };
	int i, k;

	for (i = 0; i < argc; i++) {
		for (k = 0; k < 3; k++)
			if (strcmp(argv[i], names[k]) == 0 && i + 1 < argc) {
				f[k] = argv[++i];
				break;
			}
		if (k < 3)
			continue;
		if (strcmp(argv[i], "--json") == 0) {
			*json = 1;
		} else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
			char *end = NULL;

			errno = 0;
			*limit = strtoul(argv[++i], &end, 10);
			if (errno != 0 || end == argv[i] || *end != '\0' || *limit == 0 ||
			    argv[i][0] == '-') {
				fprintf(stderr, "dealpushctl: --limit wants a whole number from 1\n");
				return -1;
			}
		} else {
			fprintf(stderr, "dealpushctl: subscribers list: unexpected \"%s\" (--interest"
			    " X, --consent sms|dm, --tz ZONE, --limit N, --json)\n", argv[i]);
			return -1;
		}
	}
	return 0;
}

int
ctl_cmd_subscribers_list(struct ctl_api *api, int argc, char **argv)
{
	const char *f[3] = { NULL, NULL, NULL };
	unsigned long limit = 0, shown = 0;
	char *cursor = NULL, q[1024], path[1200], msg[512], n[24];
	int json = api->json, rc = CTL_FAIL;

	if (parse_args(argc, argv, f, &limit, &json) < 0)
		return CTL_BAD_INPUT;
	if (!json)
		printf("%-24s %-20s %-8s %-8s %s\n", "ID", "TIMEZONE", "CHANNELS", "CONSENT",
		    "INTERESTS");
	for (;;) {
		unsigned long page = limit == 0 || limit - shown > SUBS_PAGE_MAX ?
		    SUBS_PAGE_MAX : limit - shown;
		const cJSON *subs, *s, *next;
		struct ctl_buf b;
		cJSON *j;
		long st;

		q[0] = '\0';
		snprintf(n, sizeof(n), "%lu", page);
		if (query_add(api, q, sizeof(q), "limit", n) < 0 ||
		    query_add(api, q, sizeof(q), "interest", f[0]) < 0 ||
		    query_add(api, q, sizeof(q), "consent", f[1]) < 0 ||
		    query_add(api, q, sizeof(q), "tz", f[2]) < 0 ||
		    query_add(api, q, sizeof(q), "cursor", cursor) < 0)
			goto out;
		snprintf(path, sizeof(path), "/v1/subscribers?%s", q);
		if ((st = ctl_api_call(api, "GET", path, NULL, 0, NULL, &b)) < 0)
			goto out;
		if (st != 200) {
			if (!ctl_api_fatal(st, &b)) {
				fprintf(stderr, "dealpushctl: subscribers list: %s\n",
				    ctl_api_error_text(&b, msg, sizeof(msg)));
				rc = CTL_BAD_INPUT;
			}
			free(b.p);
			goto out;
		}
		j = cJSON_Parse(b.p);
		free(b.p);
		if (j == NULL) {
			fprintf(stderr, "dealpushctl: the API answered something that is not "
			    "JSON\n");
			goto out;
		}
		subs = cJSON_GetObjectItemCaseSensitive(j, "subscribers");
		cJSON_ArrayForEach(s, subs) {
			if (limit > 0 && shown >= limit)
				break;
			print_sub(s, json);
			shown++;
		}
		next = cJSON_GetObjectItemCaseSensitive(j, "cursor");
		free(cursor);
		cursor = cJSON_IsString(next) ? strdup(next->valuestring) : NULL;
		cJSON_Delete(j);
		if (cursor == NULL || (limit > 0 && shown >= limit))
			break;
	}
	if (!json)
		fprintf(stderr, "%lu subscribers\n", shown);
	rc = CTL_OK;
out:
	free(cursor);
	return rc;
}
