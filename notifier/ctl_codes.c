/*
 * ctl_codes.c: dealpushctl codes add POOL FILE and codes count POOL through the admin
 * API (stage: outside the pipeline, the operator's CLI). Every line is checked with
 * the server's own check first and a bad one named FILE:LINE; the good codes go in
 * requests of CODES_BATCH, so a file of any size never makes one large request. It
 * must never send a code the server would refuse.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "admin_codes.h"

#include "ctl_int.h"

struct codes_run {
	struct ctl_api *api;
	char path[256];                   /* /v1/codes/<pool>, escaped */
	char key[CODES_POOL_NAME_MAX + 16]; /* codes:<pool> */
	char *buf;                        /* codes waiting, one a line */
	size_t len, n;
	double added, duplicates;
};

/* GET or POST on the pool; the answer parsed into *out. CTL_OK, CTL_BAD_INPUT (the
 * server refused) or CTL_FAIL, printed. */
static int
codes_call(struct codes_run *cr, const char *method, const char *body, size_t len,
    cJSON **out)
{
	struct ctl_buf b;
	char msg[512];
	long st;
	int rc = CTL_FAIL;

	*out = NULL;
	if ((st = ctl_api_call(cr->api, method, cr->path, body, len,
	    "text/plain; charset=utf-8", &b)) < 0)
		return CTL_FAIL;
	if (st != 200) {
		if (!ctl_api_fatal(st, &b)) {
			fprintf(stderr, "dealpushctl: codes: %s\n", ctl_api_error_text(&b, msg,
			    sizeof(msg)));
			rc = CTL_BAD_INPUT;
		}
	} else if ((*out = cJSON_Parse(b.p)) == NULL) {
		fprintf(stderr, "dealpushctl: the API answered something that is not JSON\n");
	} else {
		rc = CTL_OK;
	}
	free(b.p);
	return rc;
}

/* Sends the codes waiting in cr->buf. CTL_OK or what codes_call says. */
static int
codes_flush(struct codes_run *cr)
{
	cJSON *j;
	int rc;

	if (cr->n == 0)
		return CTL_OK;
	if ((rc = codes_call(cr, "POST", cr->buf, cr->len, &j)) != CTL_OK)
		return rc;
	cr->added += ctl_jnum(j, "added");
	cr->duplicates += ctl_jnum(j, "duplicates");
	cJSON_Delete(j);
	cr->len = 0;
	cr->n = 0;
	return CTL_OK;
}

static int
codes_start(struct codes_run *cr, struct ctl_api *api, const char *pool)
{
	memset(cr, 0, sizeof(*cr));
	cr->api = api;
	if (codes_pool_key(pool, cr->key, sizeof(cr->key)) < 0) {
		fprintf(stderr, "dealpushctl: \"%s\" is not a pool name: 1 to %d of A-Z a-z "
		    "0-9 _ . : - (after an optional \"codes:\")\n", pool, CODES_POOL_NAME_MAX);
		return CTL_BAD_INPUT;
	}
	if (ctl_api_path(api, cr->path, sizeof(cr->path), "/v1/codes/", cr->key + 6) < 0)
		return CTL_FAIL;
	return CTL_OK;
}

int
ctl_cmd_codes_count(struct ctl_api *api, const char *pool)
{
	struct codes_run cr;
	cJSON *j;
	int rc;

	if ((rc = codes_start(&cr, api, pool)) != CTL_OK)
		return rc;
	if ((rc = codes_call(&cr, "GET", NULL, 0, &j)) != CTL_OK)
		return rc;
	if (api->json) {
		char *s = cJSON_PrintUnformatted(j);

		printf("%s\n", s != NULL ? s : "{}");
		free(s);
	} else {
		printf("pool %s: %.0f codes left\n", ctl_jstr(j, "pool"),
		    ctl_jnum(j, "remaining"));
	}
	cJSON_Delete(j);
	return CTL_OK;
}

int
ctl_cmd_codes_add(struct ctl_api *api, const char *pool, const char *file)
{
	struct codes_run cr;
	struct ctl_input in;
	unsigned long bad = 0, good = 0;
	const char *why;
	cJSON *left = NULL;
	int rc, r;

	if ((rc = codes_start(&cr, api, pool)) != CTL_OK)
		return rc;
	if (ctl_input_open(&in, file) < 0)
		return CTL_FAIL;
	rc = CTL_FAIL;
	if ((cr.buf = malloc(CODES_BATCH * (CODES_CODE_MAX + 1))) == NULL) {
		fprintf(stderr, "dealpushctl: out of memory\n");
		goto out;
	}
	while ((r = ctl_input_next_entry(&in, &bad)) == 1) {
		if (!codes_code_ok(in.buf, in.len, &why)) {
			ctl_report_bad_line(&in, why);
			bad++;
			continue;
		}
		memcpy(cr.buf + cr.len, in.buf, in.len);
		cr.len += in.len;
		cr.buf[cr.len++] = '\n';
		cr.n++;
		good++;
		if (cr.n == CODES_BATCH && (rc = codes_flush(&cr)) != CTL_OK)
			goto out;
		rc = CTL_FAIL;
	}
	if (r < 0 || (rc = codes_flush(&cr)) != CTL_OK ||
	    (rc = codes_call(&cr, "GET", NULL, 0, &left)) != CTL_OK)
		goto out;
	printf("pool %s: %lu codes read, %.0f added, %.0f already there or repeated, "
	    "%lu bad lines; %.0f codes left\n", cr.key + 6, good, cr.added,
	    cr.duplicates, bad, ctl_jnum(left, "remaining"));
	cJSON_Delete(left);
	rc = bad > 0 ? CTL_BAD_INPUT : CTL_OK;
out:
	if (rc == CTL_FAIL && cr.added > 0)
		fprintf(stderr, "dealpushctl: %.0f codes were added before the error; adding "
		    "the file again adds each code once\n", cr.added);
	free(cr.buf);
	ctl_input_close(&in);
	return rc;
}
