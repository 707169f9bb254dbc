/*
 * ctl_privacy.c: dealpushctl subscribers export ID and subscribers erase ID, through
 * the admin API (GET /v1/export, POST /v1/erase; docs/compliance.md "Erasure and
 * export"). The export is the API's JSON as it is, for the person who asked; the
 * erasure prints what went.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ctl_int.h"
#include "deal.h"

static int
privacy_call(struct ctl_api *api, const char *method, const char *prefix,
    const char *id, const char *what, struct ctl_buf *b)
{
	char p[1024], msg[512];
	long st;

	if (!deal_id_is_valid(id)) {
		fprintf(stderr, "dealpushctl: \"%s\" is not a valid subscriber id\n", id);
		return CTL_BAD_INPUT;
	}
	if (ctl_api_path(api, p, sizeof(p), prefix, id) < 0 ||
	    (st = ctl_api_call(api, method, p, NULL, 0, NULL, b)) < 0)
		return CTL_FAIL;
	if (st == 200)
		return CTL_OK;
	if (!ctl_api_fatal(st, b))
		fprintf(stderr, "dealpushctl: subscribers %s %s: %s\n", what, id,
		    ctl_api_error_text(b, msg, sizeof(msg)));
	free(b->p);
	b->p = NULL;
	return st == 404 ? CTL_BAD_INPUT : CTL_FAIL;
}

int
ctl_cmd_subscribers_export(struct ctl_api *api, const char *id)
{
	struct ctl_buf b;
	int rc;

	memset(&b, 0, sizeof(b));
	if ((rc = privacy_call(api, "GET", "/v1/export?id=", id, "export", &b)) != CTL_OK)
		return rc;
	printf("%s\n", b.p);
	free(b.p);
	return CTL_OK;
}

int
ctl_cmd_subscribers_erase(struct ctl_api *api, const char *id)
{
	struct ctl_buf b;
	cJSON *j;
	int rc;

	memset(&b, 0, sizeof(b));
	if ((rc = privacy_call(api, "POST", "/v1/erase?id=", id, "erase", &b)) != CTL_OK)
		return rc;
	if (api->json || (j = cJSON_Parse(b.p)) == NULL) {
		printf("%s\n", b.p);
	} else {
		printf("erased %s: %s, %.0f pushes of %.0f deals; the proof of consent is kept "
		    "%.0f days, the number stays suppressed\n", id,
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "was_stored")) ?
		    "the subscriber" : "no stored subscriber",
		    ctl_jnum(j, "pushes"), ctl_jnum(j, "deals"), ctl_jnum(j, "proof_kept_days"));
		cJSON_Delete(j);
	}
	free(b.p);
	return CTL_OK;
}
