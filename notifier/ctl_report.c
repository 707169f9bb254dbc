/*
 * ctl_report.c: dealpushctl simulate and report over the admin API (stage: outside
 * the pipeline, the operator's CLI): a deal simulated against the mirror, and a
 * deal's, rule's or campaign's funnel printed as a table (or the answer as is with
 * --json). Both only read; they must never write anything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "err.h"

#include "ctl_int.h"

int ctl_cmd_simulate(struct ctl_api *api, const char *path)
{
	struct ctl_buf b;
	char *body, msg[512];
	size_t len = 0;
	cJSON *j = NULL;
	const cJSON *s, *e, *o;
	long st;
	int rc = CTL_FAIL;

	if ((body = ctl_read_small_file(path, CTL_API_BODY_MAX, &len)) == NULL)
		return CTL_FAIL;
	st = ctl_api_call(api, "POST", "/v1/deals/simulate", body, len, NULL, &b);
	free(body);
	if (st < 0)
		return CTL_FAIL;
	if (st != 200) {
		fprintf(stderr, "dealpushctl: %s: %s\n", path, ctl_api_error_text(&b, msg,
		    sizeof(msg)));
		rc = st >= 400 && st < 500 && st != 401 && st != 403 ? CTL_BAD_INPUT : CTL_FAIL;
		goto out;
	}
	if (api->json) {
		printf("%s\n", b.p);
		rc = CTL_OK;
		goto out;
	}
	if ((j = cJSON_Parse(b.p)) == NULL) {
		fprintf(stderr, "dealpushctl: the API answered something that is not JSON\n");
		goto out;
	}
	printf("matched %.0f, held out %.0f, recipients %.0f, pushes %.0f, unrenderable"
	    " %.0f, paused %.0f\n", ctl_jnum(j, "matched"), ctl_jnum(j, "held_out"),
	    ctl_jnum(j, "recipients"), ctl_jnum(j, "pushes"), ctl_jnum(j, "unrenderable"),
	    ctl_jnum(j, "paused"));
	e = cJSON_GetObjectItemCaseSensitive(j, "excluded");
	printf("excluded (of %.0f subscribers):", ctl_jnum(j, "subscribers"));
	cJSON_ArrayForEach(s, e)
		printf(" %s %.0f%s", s->string, cJSON_IsNumber(s) ? s->valuedouble : 0,
		    s->next != NULL ? "," : "");
	printf("\ndeferred by quiet hours: %.0f\n", ctl_jnum(cJSON_GetObjectItemCaseSensitive(j,
	    "deferred"), "quiet_hours"));
	o = cJSON_GetObjectItemCaseSensitive(j, "outcomes");
	printf("outcomes: sent %.0f, delayed %.0f, skipped:", ctl_jnum(o, "sent"),
	    ctl_jnum(o, "delayed"));
	cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(o, "skipped"))
		printf(" %s %.0f%s", s->string, cJSON_IsNumber(s) ? s->valuedouble : 0,
		    s->next != NULL ? "," : "");
	o = cJSON_GetObjectItemCaseSensitive(j, "segments");
	printf("\nSMS segments: sent %.0f, delayed %.0f\n", ctl_jnum(o, "sent"),
	    ctl_jnum(o, "delayed"));
	printf("%-24s %-4s %-20s %4s %-12s %-20s  %s\n", "SUBSCRIBER", "CH", "RULE", "SEGS",
	    "OUTCOME", "SEND AT", "TEXT");
	cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(j, "sample")) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(s, "subscriber");
		const cJSON *ch = cJSON_GetObjectItemCaseSensitive(s, "channel");
		const cJSON *ru = cJSON_GetObjectItemCaseSensitive(s, "rule");
		const cJSON *tx = cJSON_GetObjectItemCaseSensitive(s, "text");
		const cJSON *sg = cJSON_GetObjectItemCaseSensitive(s, "segments");
		const cJSON *at = cJSON_GetObjectItemCaseSensitive(s, "send_at");
		const cJSON *oc = cJSON_GetObjectItemCaseSensitive(s, "outcome");
		char segs[16] = "-";

		if (cJSON_IsNumber(sg))
			snprintf(segs, sizeof(segs), "%d", sg->valueint);
		printf("%-24s %-4s %-20s %4s %-12s %-20s  %s\n", cJSON_IsString(id) ?
		    id->valuestring : "?", cJSON_IsString(ch) ? ch->valuestring : "?",
		    cJSON_IsString(ru) ? ru->valuestring : "?", segs, cJSON_IsString(oc) ?
		    oc->valuestring : "?", cJSON_IsString(at) ? at->valuestring : "now",
		    cJSON_IsString(tx) ? tx->valuestring : "");
	}
	rc = CTL_OK;
out:
	cJSON_Delete(j);
	free(b.p);
	return rc;
}

static void print_row(const char *label, const cJSON *v)
{
	if (cJSON_IsNumber(v)) {
		if (v->valuedouble == (double)(long long)v->valuedouble)
			printf("%-26s %15lld\n", label, (long long)v->valuedouble);
		else
			printf("%-26s %15.6g\n", label, v->valuedouble);
	} else {
		printf("%-26s %15s\n", label, "-");
	}
}

static const char *
jstr(const cJSON *o, const char *k)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(x) ? x->valuestring : "-";
}

/* A rate as a number, or "-" when there is none (nothing sent). */
static void
print_rate(const cJSON *o, const char *k)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);

	if (cJSON_IsNumber(x))
		printf(" %15.4f", x->valuedouble);
	else
		printf(" %15s", "-");
}

/* A deal's A/B tests (ab_tests): per test its state, then a row per variant. */
static void
print_ab(const cJSON *ab)
{
	const cJSON *t, *v, *d;

	cJSON_ArrayForEach(t, ab) {
		d = cJSON_GetObjectItemCaseSensitive(t, "decision");
		printf("A/B test %s by %s, held %.0f, released %.0f: ", t->string,
		    jstr(t, "metric"), ctl_jnum(t, "held"), ctl_jnum(t, "released"));
		if (cJSON_IsObject(d))
			printf("decided %s (%s%s) at %s, z %.2f, confidence %.4f\n",
			    jstr(d, "variant"), jstr(d, "how"), cJSON_IsTrue(
			    cJSON_GetObjectItemCaseSensitive(d, "fallback")) ? ", the fallback" :
			    "", jstr(d, "at"), ctl_jnum(d, "z"), ctl_jnum(d, "confidence"));
		else
			printf("running until %s at the latest, best so far %s, z %.2f, "
			    "confidence %.4f\n", jstr(t, "decide_by"), jstr(
			    cJSON_GetObjectItemCaseSensitive(t, "standing"), "best"),
			    ctl_jnum(cJSON_GetObjectItemCaseSensitive(t, "standing"), "z"),
			    ctl_jnum(cJSON_GetObjectItemCaseSensitive(t, "standing"),
			    "confidence"));
		printf("  %-16s %8s %8s %8s %15s %15s\n", "VARIANT", "SENT", "CLICKED",
		    "REDEEMED", "CLICK_RATE", "REDEMPTION_RATE");
		cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(t, "variants")) {
			printf("  %-16s %8.0f %8.0f %8.0f", v->string, ctl_jnum(v, "sent"),
			    ctl_jnum(v, "clicked"), ctl_jnum(v, "redeemed"));
			print_rate(v, "click_rate");
			print_rate(v, "redemption_rate");
			printf("\n");
		}
	}
}

int ctl_cmd_report(struct ctl_api *api, const char *kind, const char *name,
    const char *price)
{
	static const char *const rows[] = { "matched", "admitted", "sent", "failed",
	    "unknown", "delivered", "undelivered", "delivery_failed", "filtered",
	    "redelivery", "clicked", "redeemed", "revenue", "redeemed_by_code",
	    "revenue_by_code", "redeemed_by_click", "revenue_by_click",
	    "redeemed_by_delivery", "revenue_by_delivery", "halo_orders", "halo_revenue",
	    "unattributed", "unattributed_revenue", "outside_window", "sms_segments",
	    "sms_cost", "click_rate", "revenue_per_1000_pushes", NULL };
	static const char *const groups[] = { "skipped", "errors", "holdout", NULL };
	char p[1024], pre[64], msg[512];
	struct ctl_buf b;
	cJSON *j = NULL;
	const cJSON *o, *h;
	long st;
	int i, rc = CTL_FAIL, n;

	if (strcmp(kind, "deal") != 0 && strcmp(kind, "rule") != 0 &&
	    strcmp(kind, "campaign") != 0) {
		fprintf(stderr, "dealpushctl: report deal|rule|campaign NAME\n");
		return CTL_FAIL;
	}
	snprintf(pre, sizeof(pre), "/v1/reports/%s/", kind);
	if (ctl_api_path(api, p, sizeof(p), pre, name) < 0)
		return CTL_FAIL;
	if (price != NULL) {
		char *e = curl_easy_escape(api->curl, price, 0);

		n = (int)strlen(p);
		if (e == NULL)
			return CTL_FAIL;
		snprintf(p + n, sizeof(p) - (size_t)n, "?segment_price=%s", e);
		curl_free(e);
	}
	if ((st = ctl_api_call(api, "GET", p, NULL, 0, NULL, &b)) < 0)
		return CTL_FAIL;
	if (st != 200) {
		fprintf(stderr, "dealpushctl: %s\n", ctl_api_error_text(&b, msg, sizeof(msg)));
		rc = st == 404 || st == 400 ? CTL_BAD_INPUT : CTL_FAIL;
		goto out;
	}
	if (api->json) {
		printf("%s\n", b.p);
		rc = CTL_OK;
		goto out;
	}
	if ((j = cJSON_Parse(b.p)) == NULL) {
		fprintf(stderr, "dealpushctl: the API answered something that is not JSON\n");
		goto out;
	}
	printf("report %s %s\n", kind, name);
	printf("%-26s %15s\n", "METRIC", "VALUE");
	for (i = 0; rows[i] != NULL; i++)
		print_row(rows[i], cJSON_GetObjectItemCaseSensitive(j, rows[i]));
	if (cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(j, "template_paused")))
		printf("%-26s %15s\n", "template_paused", cJSON_IsTrue(
		    cJSON_GetObjectItemCaseSensitive(j, "template_paused")) ? "yes" : "no");
	for (i = 0; groups[i] != NULL; i++) {
		h = cJSON_GetObjectItemCaseSensitive(j, groups[i]);
		if (!cJSON_IsObject(h))
			continue;
		cJSON_ArrayForEach(o, h) {
			char label[128];

			snprintf(label, sizeof(label), "%s %s", strcmp(groups[i], "errors") == 0 ?
			    "error" : groups[i], o->string);
			print_row(label, o);
		}
	}
	/* channels: "sms sent", "dm incremental_revenue", ...; the interval as lo..hi */
	cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(j, "channels")) {
		cJSON_ArrayForEach(o, h) {
			char label[128];

			snprintf(label, sizeof(label), "%s %s", h->string, o->string);
			if (cJSON_IsArray(o) && cJSON_GetArraySize(o) == 2)
				printf("%-26s %15.6g..%.6g\n", label,
				    cJSON_GetArrayItem(o, 0)->valuedouble,
				    cJSON_GetArrayItem(o, 1)->valuedouble);
			else
				print_row(label, o);
		}
	}
	print_ab(cJSON_GetObjectItemCaseSensitive(j, "ab_tests"));
	cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(j, "notes"))
		if (cJSON_IsString(o))
			printf("note: %s\n", o->valuestring);
	rc = CTL_OK;
out:
	cJSON_Delete(j);
	free(b.p);
	return rc;
}
