/*
 * ctl_rules.c: dealpushctl rules check and rules apply (stage: outside the pipeline,
 * the operator's CLI). A folder is compiled locally first and its errors printed like
 * a compiler's; apply then puts each file over the admin API, which compiles it again
 * with the server's whole set. It must never send a folder that does not compile.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "rules.h"
#include "rulesload.h"

#include "ctl_int.h"

int ctl_cmd_rules_check(const char *dir)
{
	struct rule_set *rs = rulesload_dir_print(dir, "dealpushctl");

	if (rs == NULL)
		return CTL_BAD_INPUT;
	printf("%s: %zu rules, no errors\n", dir, rule_set_count(rs));
	rule_set_free(rs);
	return CTL_OK;
}

/* Reads a whole file of at most max bytes. Returns it (caller frees) or NULL. */
char *ctl_read_small_file(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "dealpushctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(max + 1)) == NULL) {
		fprintf(stderr, "dealpushctl: out of memory\n");
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max) {
		fprintf(stderr, "dealpushctl: %s: %s\n", path, ferror(f) ? "read error" :
		    "larger than the API takes (64 KiB)");
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Prints the API's compile errors as FILE:LINE:COL: error: MESSAGE. */
static void print_api_diags(const struct ctl_buf *b)
{
	cJSON *j = cJSON_Parse(b->p ? b->p : "");
	const cJSON *errs = cJSON_GetObjectItemCaseSensitive(j, "errors"), *e;
	char msg[512];

	if (!cJSON_IsArray(errs) || cJSON_GetArraySize(errs) == 0) {
		fprintf(stderr, "dealpushctl: %s\n", ctl_api_error_text(b, msg, sizeof(msg)));
	} else {
		cJSON_ArrayForEach(e, errs) {
			const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "file");
			const cJSON *l = cJSON_GetObjectItemCaseSensitive(e, "line");
			const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "column");
			const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");

			fprintf(stderr, "%s:%d:%d: error: %s\n", cJSON_IsString(f) ?
			    f->valuestring : "?", cJSON_IsNumber(l) ? l->valueint : 0,
			    cJSON_IsNumber(c) ? c->valueint : 0, cJSON_IsString(m) ?
			    m->valuestring : "?");
		}
	}
	cJSON_Delete(j);
}

int ctl_cmd_rules_apply(struct ctl_api *api, const char *dir)
{
	struct rule_set *rs;
	struct dirent **ents = NULL;
	int n, i, rc = CTL_OK;

	/* Checked locally first, so a broken folder changes nothing on the server. */
	if ((rs = rulesload_dir_print(dir, "dealpushctl")) == NULL)
		return CTL_BAD_INPUT;
	rule_set_free(rs);
	if ((n = scandir(dir, &ents, NULL, alphasort)) < 0) {
		fprintf(stderr, "dealpushctl: %s: %s\n", dir, strerror(errno));
		return CTL_FAIL;
	}
	for (i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		size_t nl = strlen(name), len = 0;
		char path[4096], base[256], p[1024];
		struct ctl_buf b;
		char *text;
		long st;

		if (rc == CTL_FAIL || name[0] == '.' || nl <= 6 ||
		    strcmp(name + nl - 6, ".rules") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		snprintf(base, sizeof(base), "%.*s", (int)(nl - 6), name);
		if ((text = ctl_read_small_file(path, CTL_API_BODY_MAX, &len)) == NULL) {
			rc = CTL_FAIL;
			continue;
		}
		if (ctl_api_path(api, p, sizeof(p), "/v1/rules/", base) < 0 ||
		    (st = ctl_api_call(api, "PUT", p, text, len, "text/plain; charset=utf-8",
		    &b)) < 0) {
			free(text);
			rc = CTL_FAIL;
			continue;
		}
		free(text);
		if (st == 200 || st == 201) {
			printf("applied %s as rule source %s\n", path, base);
		} else if (ctl_api_fatal(st, &b)) {
			rc = CTL_FAIL;
		} else {
			fprintf(stderr, "%s: refused (%ld):\n", path, st);
			print_api_diags(&b);
			rc = CTL_BAD_INPUT;
		}
		free(b.p);
	}
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return rc;
}

/* A GET or DELETE on the rules API; the answer (status 200) parsed into *out unless
 * --json printed it. CTL_OK, CTL_BAD_INPUT (404, a bad name) or CTL_FAIL (printed). */
static int rules_call(struct ctl_api *api, const char *method, const char *name,
    cJSON **out)
{
	char p[1024], msg[512];
	struct ctl_buf b;
	long st;
	int rc = CTL_FAIL;

	*out = NULL;
	if (name != NULL ? ctl_api_path(api, p, sizeof(p), "/v1/rules/", name) < 0 :
	    snprintf(p, sizeof(p), "/v1/rules") < 0)
		return CTL_FAIL;
	if ((st = ctl_api_call(api, method, p, NULL, 0, NULL, &b)) < 0)
		return CTL_FAIL;
	if (st != 200) {
		if (!ctl_api_fatal(st, &b)) {
			fprintf(stderr, "dealpushctl: rules %s: %s\n", name != NULL ? name : "",
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

int ctl_cmd_rules_list(struct ctl_api *api)
{
	const cJSON *rules, *r, *ch, *c;
	cJSON *j;
	int rc = rules_call(api, "GET", NULL, &j);

	if (j == NULL)
		return rc;
	rules = cJSON_GetObjectItemCaseSensitive(j, "rules");
	printf("%-24s %8s  %-7s %-10s %7s  %-6s  %s\n", "RULE", "PRIORITY", "SENDS",
	    "AUDIENCE", "HOLDOUT", "SOURCE", "FILE");
	cJSON_ArrayForEach(r, rules) {
		char sends[32] = "";

		ch = cJSON_GetObjectItemCaseSensitive(r, "channels");
		cJSON_ArrayForEach(c, ch)
			if (cJSON_IsString(c))
				snprintf(sends + strlen(sends), sizeof(sends) - strlen(sends),
				    "%s%s", sends[0] ? "," : "", c->valuestring);
		printf("%-24s %8.0f  %-7s %-10s %6g%%  %-6s  %s:%.0f\n", ctl_jstr(r, "name"),
		    ctl_jnum(r, "priority"), sends, ctl_jstr(r, "audience"), ctl_jnum(r, "holdout_pct"),
		    ctl_jstr(r, "source"), ctl_jstr(r, "file"), ctl_jnum(r, "line"));
	}
	cJSON_Delete(j);
	return CTL_OK;
}

int ctl_cmd_rules_get(struct ctl_api *api, const char *name)
{
	cJSON *j;
	int rc = rules_call(api, "GET", name, &j);
	const char *text;

	if (j == NULL)
		return rc;
	text = ctl_jstr(j, "text");
	printf("%s%s", text, text[0] != '\0' && text[strlen(text) - 1] != '\n' ? "\n" :
	    "");
	cJSON_Delete(j);
	return CTL_OK;
}

int ctl_cmd_rules_delete(struct ctl_api *api, const char *name)
{
	cJSON *j;
	int rc = rules_call(api, "DELETE", name, &j);

	if (j == NULL)
		return rc;
	printf("deleted rule source %s; %.0f rules in use\n", name,
	    ctl_jnum(j, "rules_in_use"));
	cJSON_Delete(j);
	return CTL_OK;
}
