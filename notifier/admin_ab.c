/*
 * admin_ab.c: a deal's A/B tests as the reports and the deal's status show them
 * (stage: report; docs/api.md, docs/rules.md "A/B variants"). Pure over replies
 * already read: the deal's report hash (summed over the shards) for each variant's
 * counts, and abtest:<deal> for the terms and the decision. Must never write.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "abtest.h"
#include "admin_int.h"
#include "rules.h"
#include "timefmt.h"

static const char *const ab_counts[] = { "sent", "clicked", "redeemed", NULL };

static int
ab_is_count(const char *what)
{
	size_t i;

	for (i = 0; ab_counts[i] != NULL; i++)
		if (strcmp(ab_counts[i], what) == 0)
			return 1;
	return 0;
}

/* The object of rule in ab (made when missing), NULL on OOM. */
static cJSON *
ab_test(cJSON *ab, const char *rule)
{
	cJSON *t = cJSON_GetObjectItemCaseSensitive(ab, rule);

	if (t == NULL && (t = cJSON_AddObjectToObject(ab, rule)) != NULL) {
		cJSON_AddNumberToObject(t, "held", 0);
		cJSON_AddNumberToObject(t, "released", 0);
		cJSON_AddObjectToObject(t, "variants");
	}
	return t;
}

/* The object of variant v of test t (made with zero counts when missing). */
static cJSON *
ab_variant(cJSON *t, const char *v)
{
	cJSON *vs = cJSON_GetObjectItemCaseSensitive(t, "variants"), *o;
	size_t i;

	if (vs == NULL)
		return NULL;
	if ((o = cJSON_GetObjectItemCaseSensitive(vs, v)) == NULL &&
	    (o = cJSON_AddObjectToObject(vs, v)) != NULL)
		for (i = 0; ab_counts[i] != NULL; i++)
			cJSON_AddNumberToObject(o, ab_counts[i], 0);
	return o;
}

static void
ab_set(cJSON *o, const char *k, double x)
{
	cJSON *n = cJSON_GetObjectItemCaseSensitive(o, k);

	if (n != NULL)
		cJSON_SetNumberValue(n, x);
	else
		cJSON_AddNumberToObject(o, k, x);
}

static double
ab_get(const cJSON *o, const char *k)
{
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(n) ? n->valuedouble : 0;
}

cJSON *
admin_ab_json(const struct redisReply *h)
{
	cJSON *ab = NULL;
	size_t i;

	for (i = 0; h != NULL && i + 1 < h->elements; i += 2) {
		const struct redisReply *k = h->element[i], *v = h->element[i + 1];
		char rule[RULE_NAME_MAX + 1], var[RULE_VARIANT_NAME_MAX + 1], what[16];
		cJSON *t, *o;
		double x;

		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING ||
		    strncmp(k->str, "ab:", 3) != 0)
			continue;
		x = strtod(v->str, NULL);
		if (ab == NULL && (ab = cJSON_CreateObject()) == NULL)
			return NULL;
		if (sscanf(k->str, "ab:%64[^:]:%16[^:]:%15s", rule, var, what) == 3 &&
		    ab_is_count(what)) {
			if ((t = ab_test(ab, rule)) != NULL && (o = ab_variant(t, var)) != NULL)
				ab_set(o, what, x);
		} else if (sscanf(k->str, "ab:%64[^:]:%15s", rule, what) == 2 &&
		    (strcmp(what, "held") == 0 || strcmp(what, "released") == 0)) {
			if ((t = ab_test(ab, rule)) != NULL)
				ab_set(t, what, x);
		}
	}
	return ab;
}

/* The value of field f in a flat HGETALL reply, or NULL. */
static const char *
ab_field(const struct redisReply *t, const char *f)
{
	size_t i;

	for (i = 0; t != NULL && i + 1 < t->elements; i += 2)
		if (t->element[i]->type == REDIS_REPLY_STRING &&
		    t->element[i + 1]->type == REDIS_REPLY_STRING &&
		    strcmp(t->element[i]->str, f) == 0)
			return t->element[i + 1]->str;
	return NULL;
}

static void
ab_time(cJSON *o, const char *k, long long at)
{
	char buf[40];

	if (time_format_rfc3339(at, buf, sizeof(buf)) != NULL)
		cJSON_AddStringToObject(o, k, buf);
	else
		cJSON_AddNullToObject(o, k);
}

/* One test's terms, rates and decision (dec, NULL: running, with its standing). */
static void
ab_state_one(cJSON *t, const char *vars, const char *terms, const char *dec)
{
	long long at;
	char vn[RULE_VARIANT_NAME_MAX + 1], how[16];
	struct rule_ab_stat st[RULE_VARIANTS_MAX];
	struct rule_ab_verdict v;
	struct abtest_terms tm;
	double z, conf;
	size_t k;
	int idx;
	cJSON *o, *d;

	if (abtest_terms_parse(vars, terms, &tm) < 0)
		return;
	cJSON_AddStringToObject(t, "metric", tm.metric);
	cJSON_AddNumberToObject(t, "window_s", (double)tm.window_s);
	ab_time(t, "started_at", tm.start);
	ab_time(t, "decide_by", tm.decide_by);
	cJSON_AddStringToObject(t, "fallback", tm.vars[tm.fallback]);
	for (k = 0; k < tm.nvars; k++) {
		double sent, wins;

		if ((o = ab_variant(t, tm.vars[k])) == NULL)
			return;
		sent = ab_get(o, "sent");
		wins = ab_get(o, strcmp(tm.metric, "clicks") == 0 ? "clicked" : "redeemed");
		st[k].sent = (unsigned long)sent;
		st[k].wins = (unsigned long)wins;
		if (sent > 0) {
			ab_set(o, "click_rate", ab_get(o, "clicked") / sent);
			ab_set(o, "redemption_rate", ab_get(o, "redeemed") / sent);
		} else {
			cJSON_AddNullToObject(o, "click_rate");
			cJSON_AddNullToObject(o, "redemption_rate");
		}
	}
	if (dec != NULL && sscanf(dec, "%d\t%16[^\t]\t%15[^\t]\t%lld\t%lf\t%lf", &idx, vn,
	    how, &at, &z, &conf) == 6) {
		cJSON_AddStringToObject(t, "state", "decided");
		if ((d = cJSON_AddObjectToObject(t, "decision")) != NULL) {
			cJSON_AddStringToObject(d, "variant", vn);
			cJSON_AddStringToObject(d, "how", how);
			cJSON_AddBoolToObject(d, "fallback", strcmp(how, "fallback") == 0 ||
			    (strcmp(how, "expiry") == 0 && strcmp(vn, tm.vars[tm.fallback]) == 0));
			ab_time(d, "at", at);
			cJSON_AddNumberToObject(d, "z", z);
			cJSON_AddNumberToObject(d, "confidence", conf);
		}
		return;
	}
	cJSON_AddStringToObject(t, "state", "running");
	cJSON_AddNullToObject(t, "decision");
	if ((d = cJSON_AddObjectToObject(t, "standing")) != NULL) {
		rule_ab_decide(st, tm.nvars, 0, &v);
		if (v.best >= 0)
			cJSON_AddStringToObject(d, "best", tm.vars[v.best]);
		else
			cJSON_AddNullToObject(d, "best");
		cJSON_AddNumberToObject(d, "z", isfinite(v.z) ? v.z : 0);
		cJSON_AddNumberToObject(d, "confidence", v.confidence);
	}
}

void
admin_ab_state(cJSON *ab, const struct redisReply *t)
{
	size_t i;

	for (i = 0; ab != NULL && t != NULL && i + 1 < t->elements; i += 2) {
		const struct redisReply *k = t->element[i];
		char rule[RULE_NAME_MAX + 1], f[RULE_NAME_MAX + 16];
		const char *vars, *terms;
		cJSON *test;
		size_t l;

		if (k->type != REDIS_REPLY_STRING || (l = k->len) < 6 ||
		    strcmp(k->str + l - 6, ":terms") != 0 || l - 6 > RULE_NAME_MAX)
			continue;
		snprintf(rule, sizeof(rule), "%.*s", (int)(l - 6), k->str);
		snprintf(f, sizeof(f), "%s:vars", rule);
		vars = ab_field(t, f);
		terms = ab_field(t, k->str);
		snprintf(f, sizeof(f), "%s:decision", rule);
		if (vars == NULL || terms == NULL || (test = ab_test(ab, rule)) == NULL)
			continue;
		ab_state_one(test, vars, terms, ab_field(t, f));
	}
}
