/*
 * admin_report.c: GET /v1/reports of the admin API (stage: report): a deal's, rule's
 * or campaign's funnel read from its report hash (one HGETALL; one per shard in the
 * sharded layout, summed) and answered as JSON:
 * counters, skips, errors, the holdout, the channel split ("ch:<channel>:<counter>"
 * fields, each channel against its own holdout) and the rates derived from them
 * (docs/admin.md#reports). It only reads; it must never write to Redis.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "admin_int.h"
#include "app.h"
#include "config.h"
#include "deal.h"
#include "durable.h"
#include "http.h"
#include "keys.h"
#include "lift.h"
#include "match.h"
#include "rconn.h"
#include "rules.h"

/* ---- reports ---- */

/* The counters a report shows by name, in this order (docs/admin.md#reports); the
 * holdout ones go into "holdout", error:<code> into "errors", every other number is
 * a skip outcome and goes into "skipped". */
static const char *const report_counters[] = {
	"admitted", "sent", "failed", "unknown", "delivered", "undelivered",
	"delivery_failed", "clicked", "redeemed", "revenue", "sms_segments",
	"unattributed", "unattributed_revenue", "filtered", "redelivery",
	"redeemed_by_code", "revenue_by_code", "redeemed_by_click", "revenue_by_click",
	"redeemed_by_delivery", "revenue_by_delivery", "outside_window", "halo_orders",
	"halo_revenue", NULL
};
static const char *const report_holdout[] = {
	"planned", "holdout_audience", "holdout_redeemed", "holdout_revenue",
	"treated_audience", NULL
};

static int
report_in(const char *const *list, const char *f)
{
	size_t i;

	for (i = 0; list[i] != NULL; i++)
		if (strcmp(list[i], f) == 0)
			return 1;
	return 0;
}

/* A number from a hash value, or NAN when it is none. */
static double
report_num(const struct redisReply *v)
{
	char *end = NULL;
	double x;

	if (v == NULL || v->type != REDIS_REPLY_STRING || v->len == 0)
		return NAN;
	errno = 0;
	x = strtod(v->str, &end);
	if (errno != 0 || *end != '\0' || !isfinite(x))
		return NAN;
	return x;
}

static const struct redisReply *
report_get(const struct redisReply *h, const char *f)
{
	size_t i;

	for (i = 0; i + 1 < h->elements; i += 2)
		if (h->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(h->element[i]->str, f) == 0)
			return h->element[i + 1];
	return NULL;
}

/* The counter f, 0 when absent or not a number. */
static double
report_val(const struct redisReply *h, const char *f)
{
	double x = report_num(report_get(h, f));

	return isnan(x) ? 0 : x;
}

static void
add_num_or_null(cJSON *j, const char *k, double x)
{
	if (isnan(x))
		cJSON_AddNullToObject(j, k);
	else
		cJSON_AddNumberToObject(j, k, x);
}

/* a / b, or NAN when b is 0. */
static double
report_rate(double a, double b)
{
	return b > 0 ? a / b : NAN;
}

/*
 * The holdout comparison (docs/attribution.md §5): the treated audience (subscribers
 * sent at least one push) against the held-out audience (matched, never sent). Each
 * conversion rate is orders per audience member; the incremental redemptions are
 * (treated rate - holdout rate) x treated audience, and the incremental revenue those
 * redemptions at the treated average order value. NULL when nobody was held out.
 */
static cJSON *
report_holdout_json(const struct redisReply *h, cJSON *notes)
{
	double ha = report_val(h, "holdout_audience"), hr = report_val(h,
	    "holdout_redeemed"), ta = report_num(report_get(h, "treated_audience"));
	double redeemed = report_val(h, "redeemed"), revenue = report_val(h, "revenue");
	double tr, hrate, inc;
	cJSON *o;

	if (isnan(ta))                  /* counted since treated_audience existed */
		ta = report_val(h, "sent");
	if (ha <= 0 || ta <= 0) {
		cJSON_AddItemToArray(notes, cJSON_CreateString(ha <= 0 ?
		    "holdout: null, nobody was held out" :
		    "holdout: null, nobody was sent a push to compare with"));
		return NULL;
	}
	tr = redeemed / ta;
	hrate = hr / ha;
	inc = (tr - hrate) * ta;
	if ((o = cJSON_CreateObject()) == NULL)
		return NULL;
	cJSON_AddNumberToObject(o, "audience", ha);
	cJSON_AddNumberToObject(o, "redeemed", hr);
	cJSON_AddNumberToObject(o, "revenue", report_val(h, "holdout_revenue"));
	cJSON_AddNumberToObject(o, "treated_audience", ta);
	cJSON_AddNumberToObject(o, "treated_conversion_rate", tr);
	cJSON_AddNumberToObject(o, "holdout_conversion_rate", hrate);
	cJSON_AddNumberToObject(o, "incremental_redemptions", inc);
	add_num_or_null(o, "incremental_revenue", redeemed > 0 ?
	    inc * revenue / redeemed : NAN);
	if (redeemed <= 0)
		cJSON_AddItemToArray(notes, cJSON_CreateString("holdout: incremental_revenue"
		    " is null, no treated order gives an average order value"));
	return o;
}

/* ---- the channel split (docs/attribution.md §5) ---- */

/* Counter f of channel ch ("ch:<ch>:<f>"), 0 when absent. */
static double
report_ch(const struct redisReply *h, const char *ch, const char *f)
{
	char name[64];

	snprintf(name, sizeof(name), "ch:%s:%s", ch, f);
	return report_val(h, name);
}

/* One channel's figures: what was sent and credited on it, and its treated group
 * (sent a push on it) against its holdout group (held out of it), with the
 * incremental revenue and its 95% interval, or null figures and a note when one
 * group is empty. */
static cJSON *
report_channel_json(const struct redisReply *h, const char *ch, cJSON *notes)
{
	struct lift_group t, g;
	struct lift l;
	cJSON *o = cJSON_CreateObject(), *ci;
	char note[160];

	if (o == NULL)
		return NULL;
	cJSON_AddNumberToObject(o, "sent", report_ch(h, ch, "sent"));
	cJSON_AddNumberToObject(o, "redeemed", report_ch(h, ch, "redeemed"));
	cJSON_AddNumberToObject(o, "revenue", report_ch(h, ch, "revenue"));
	cJSON_AddNumberToObject(o, "halo_orders", report_ch(h, ch, "halo_orders"));
	cJSON_AddNumberToObject(o, "halo_revenue", report_ch(h, ch, "halo_revenue"));
	t.audience = report_ch(h, ch, "sent");
	t.orders = report_ch(h, ch, "treated_redeemed");
	t.revenue = report_ch(h, ch, "treated_revenue");
	t.revenue_sq = report_ch(h, ch, "treated_revenue_sq");
	g.audience = report_ch(h, ch, "holdout_audience");
	g.orders = report_ch(h, ch, "holdout_redeemed");
	g.revenue = report_ch(h, ch, "holdout_revenue");
	g.revenue_sq = report_ch(h, ch, "holdout_revenue_sq");
	cJSON_AddNumberToObject(o, "treated_audience", t.audience);
	cJSON_AddNumberToObject(o, "treated_redeemed", t.orders);
	cJSON_AddNumberToObject(o, "treated_revenue", t.revenue);
	cJSON_AddNumberToObject(o, "holdout_audience", g.audience);
	cJSON_AddNumberToObject(o, "holdout_redeemed", g.orders);
	cJSON_AddNumberToObject(o, "holdout_revenue", g.revenue);
	if (lift_compute(&t, &g, &l) < 0) {
		cJSON_AddNullToObject(o, "treated_conversion_rate");
		cJSON_AddNullToObject(o, "holdout_conversion_rate");
		cJSON_AddNullToObject(o, "incremental_redemptions");
		cJSON_AddNullToObject(o, "incremental_revenue");
		cJSON_AddNullToObject(o, "incremental_revenue_ci95");
		if (t.audience > 0 || g.audience > 0) {
			snprintf(note, sizeof(note), "channels.%s: incremental figures are null, "
			    "%s", ch, g.audience > 0 ? "nobody was sent a push on it" :
			    "nobody was held out of it");
			cJSON_AddItemToArray(notes, cJSON_CreateString(note));
		}
		return o;
	}
	cJSON_AddNumberToObject(o, "treated_conversion_rate", l.treated_rate);
	cJSON_AddNumberToObject(o, "holdout_conversion_rate", l.holdout_rate);
	cJSON_AddNumberToObject(o, "incremental_redemptions", l.incremental_redemptions);
	cJSON_AddNumberToObject(o, "incremental_revenue", l.incremental_revenue);
	if ((ci = cJSON_AddArrayToObject(o, "incremental_revenue_ci95")) != NULL) {
		cJSON_AddItemToArray(ci, cJSON_CreateNumber(l.ci_low));
		cJSON_AddItemToArray(ci, cJSON_CreateNumber(l.ci_high));
	}
	return o;
}

/* ---- a deal's codes left (docs/admin.md#reports) ---- */

/* Answers op with its report op->json, "codes_left" set from reply (SCARD of the
 * deal's pool; anything else: null). */
static void
on_codes_left(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct admin_op *op = arg;
	cJSON *j = op->json;

	(void)rc;
	if (op->r == NULL)
		goto out;
	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
		cJSON_AddNumberToObject(j, "codes_left", (double)reply->integer);
	else
		cJSON_AddNullToObject(j, "codes_left");
	op->json = NULL;
	http_reply_json(op->r, 200, j);
	op->r = NULL;
out:
	admin_op_free(op);
}

/* The deal's pool (deal:<id> field "pool", written when it was planned): counted by
 * on_codes_left, or "codes_left": null when it names none. */
static void
on_pool(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct admin_op *op = arg;

	/* A quota's implicit pool (docs/sharding.md 4c) holds no codes: null. */
	if (op->r != NULL && reply != NULL && reply->type == REDIS_REPLY_STRING &&
	    reply->len > 0 && keys_pool_quota(reply->str) == 0 &&
	    rconn_cmd(rc, on_codes_left, op, 0, "SCARD %b", reply->str, reply->len) == 0)
		return;
	on_codes_left(rc, NULL, op);
}

/* The deal's A/B tests' terms and decisions (abtest:<deal>) added to its
 * "ab_tests", then its pool read (on_pool). */
static void
on_abtest(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct admin_op *op = arg;
	char key[KEYS_MAX];

	if (op->r != NULL && reply != NULL && reply->type == REDIS_REPLY_ARRAY)
		admin_ab_state(cJSON_GetObjectItemCaseSensitive(op->json, "ab_tests"), reply);
	if (op->r != NULL && keys_per(0, KEYS_DEAL, op->name, key, sizeof(key)) >= 0 &&
	    rconn_cmd(rc, on_pool, op, 0, "HGET %s pool", key) == 0)
		return;
	on_codes_left(rc, NULL, op);
}

/* A deal's report goes out with its A/B tests' state and its pool's remaining codes:
 * takes ownership of j and returns 0 (op is answered and freed later), or -1
 * (nothing sent; j still the caller's). */
static int
report_codes_left(struct admin_op *op, cJSON *j)
{
	char key[KEYS_MAX];

	op->json = j;
	/* The pool from shard 0's copy of the deal: every shard plans every deal. */
	if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "ab_tests")) ?
	    (keys_per(0, KEYS_DEAL, op->name, key, sizeof(key)) < 0 ||
	    rconn_cmd(op->a->app->cmd, on_pool, op, 0, "HGET %s pool", key) < 0) :
	    (keys_ab(KEYS_AB_TEST, op->name, "", key, sizeof(key)) < 0 ||
	    rconn_cmd(op->a->app->cmd, on_abtest, op, 0, "HGETALL %s", key) < 0)) {
		op->json = NULL;
		return -1;
	}
	return 0;
}

static void
on_report(struct rconn *rc, struct redisReply *h, void *arg)
{
	struct admin_op *op = arg;
	double sent, revenue, price = op->price;
	cJSON *j, *skips, *errors, *hold, *notes, *chans;
	size_t i;

	(void)rc;
	if (op->r == NULL)
		goto out;
	if (h == NULL || h->type != REDIS_REPLY_ARRAY) {
		admin_op_redis_failed(op, h);
		goto out;
	}
	if (h->elements == 0) {
		http_error(op->r, 404, "path", "no report for %s '%s'", op->kindname,
		    op->name);
		op->r = NULL;
		goto out;
	}
	j = cJSON_CreateObject();
	notes = cJSON_CreateArray();
	cJSON_AddStringToObject(j, "kind", op->kindname);
	cJSON_AddStringToObject(j, "name", op->name);
	cJSON_AddNumberToObject(j, "matched", report_val(h, "planned"));
	for (i = 0; report_counters[i] != NULL; i++)
		cJSON_AddNumberToObject(j, report_counters[i],
		    report_val(h, report_counters[i]));
	sent = report_val(h, "sent");
	revenue = report_val(h, "revenue");
	if (!isnan(price)) {
		cJSON_AddNumberToObject(j, "sms_cost", report_val(h, "sms_segments") * price);
	} else {
		cJSON_AddNullToObject(j, "sms_cost");
		cJSON_AddItemToArray(notes, cJSON_CreateString("sms_cost is null: no"
		    " per-segment price (report.sms_segment_price, or ?segment_price=)"));
	}
	add_num_or_null(j, "click_rate", report_rate(report_val(h, "clicked"), sent));
	add_num_or_null(j, "revenue_per_1000_pushes", sent > 0 ? revenue * 1000 / sent :
	    NAN);
	skips = cJSON_AddObjectToObject(j, "skipped");
	errors = cJSON_AddObjectToObject(j, "errors");
	for (i = 0; i + 1 < h->elements; i += 2) {
		const struct redisReply *k = h->element[i];
		double x = report_num(h->element[i + 1]);

		if (k->type != REDIS_REPLY_STRING || isnan(x) ||
		    report_in(report_counters, k->str) || report_in(report_holdout, k->str) ||
		    strncmp(k->str, "ch:", 3) == 0 ||   /* in "channels" */
		    strncmp(k->str, "ab:", 3) == 0)     /* in "ab_tests" */
			continue;
		if (strncmp(k->str, "error:", 6) == 0 && k->str[6] != '\0')
			cJSON_AddNumberToObject(errors, k->str + 6, x);
		else
			cJSON_AddNumberToObject(skips, k->str, x);
	}
	if (strcmp(op->kindname, "rule") == 0) {
		int paused = matcher_is_paused(op->a->app->matcher, op->name);

		cJSON_AddBoolToObject(j, "template_paused", paused);
		if (paused)
			cJSON_AddItemToArray(notes, cJSON_CreateString("template_paused: a carrier"
			    " filtered this rule's SMS (Twilio 30007, counted in filtered); no SMS"
			    " is planned for it until its template is fixed and the pause lifted"
			    " (HDEL paused_templates <rule>)"));
	}
	if ((hold = report_holdout_json(h, notes)) != NULL)
		cJSON_AddItemToObject(j, "holdout", hold);
	else
		cJSON_AddNullToObject(j, "holdout");
	if ((chans = cJSON_AddObjectToObject(j, "channels")) != NULL) {
		cJSON_AddItemToObject(chans, "sms", report_channel_json(h, "sms", notes));
		cJSON_AddItemToObject(chans, "dm", report_channel_json(h, "dm", notes));
	}
	cJSON_AddItemToObject(j, "notes", notes);
	if (strcmp(op->kindname, "deal") == 0) {
		cJSON *ab = admin_ab_json(h);

		if (ab != NULL)
			cJSON_AddItemToObject(j, "ab_tests", ab);
		else
			cJSON_AddNullToObject(j, "ab_tests");
	}
	if (strcmp(op->kindname, "deal") == 0 && report_codes_left(op, j) == 0)
		return;                 /* the pool's count answers it */
	http_reply_json(op->r, 200, j);
	op->r = NULL;
out:
	admin_op_free(op);
}

/*
 * The sharded layout (keys.h): a report is S hashes, {sK}report:<kind>:<name>, one
 * per shard, read with S pipelined HGETALLs and summed field by field (integers as
 * integers, anything else with a decimal point as a double; a field that is no
 * number keeps the first shard's value) into one reply that on_report reads as if it
 * were the one hash of the single-instance layout (docs/sharding.md, section 4f).
 */
struct report_field {
	char *name;
	char *str;                    /* not a number: the first value seen */
	long long n;                  /* the sum while every part is an integer */
	double x;                     /* the sum as a double */
	int isint;
};

struct report_sum {
	struct admin_op *op;
	uint32_t left;                /* HGETALLs not answered yet */
	int failed;
	struct report_field *f;
	size_t n, cap;
};

static void
report_sum_add(struct report_sum *rs, const struct redisReply *h)
{
	size_t i, k;

	for (i = 0; i + 1 < h->elements; i += 2) {
		const struct redisReply *kr = h->element[i], *v = h->element[i + 1];
		struct report_field *f = NULL;
		char *end = NULL;
		long long n;
		double x;

		if (kr->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		for (k = 0; k < rs->n; k++)
			if (strcmp(rs->f[k].name, kr->str) == 0) {
				f = &rs->f[k];
				break;
			}
		if (f == NULL) {
			if (rs->n == rs->cap) {
				size_t cap = rs->cap ? 2 * rs->cap : 32;
				struct report_field *nf = realloc(rs->f, cap * sizeof(*nf));

				if (nf == NULL) {
					rs->failed = 1;
					return;
				}
				rs->f = nf;
				rs->cap = cap;
			}
			f = &rs->f[rs->n];
			memset(f, 0, sizeof(*f));
			f->isint = 1;
			if ((f->name = strdup(kr->str)) == NULL) {
				rs->failed = 1;
				return;
			}
			rs->n++;
		}
		x = report_num(v);
		if (isnan(x)) {
			if (f->str == NULL && (f->str = strdup(v->str)) == NULL)
				rs->failed = 1;
			continue;
		}
		errno = 0;
		n = strtoll(v->str, &end, 10);
		if (errno != 0 || *end != '\0')
			f->isint = 0;
		else
			f->n += n;
		f->x += x;
	}
}

/* The summed hash as a reply of 2n strings; NULL when out of memory. Freed with
 * report_merged_free. */
static struct redisReply *
report_merged(const struct report_sum *rs)
{
	struct redisReply *h = calloc(1, sizeof(*h));
	size_t i;

	if (h == NULL)
		return NULL;
	h->type = REDIS_REPLY_ARRAY;
	if (rs->n > 0 && (h->element = calloc(2 * rs->n, sizeof(*h->element))) == NULL) {
		free(h);
		return NULL;
	}
	for (i = 0; i < rs->n; i++) {
		const struct report_field *f = &rs->f[i];
		struct redisReply *k = calloc(1, sizeof(*k)), *v = calloc(1, sizeof(*v));
		char num[64];

		h->element[h->elements++] = k;
		h->element[h->elements++] = v;
		if (k == NULL || v == NULL)
			return h;       /* the caller sees a short reply: frees it */
		if (f->str != NULL)
			snprintf(num, sizeof(num), "%s", f->str);
		else if (f->isint)
			snprintf(num, sizeof(num), "%lld", f->n);
		else
			snprintf(num, sizeof(num), "%.17g", f->x);
		k->type = v->type = REDIS_REPLY_STRING;
		k->str = strdup(f->name);
		v->str = f->str != NULL ? strdup(f->str) : strdup(num);
		if (k->str == NULL || v->str == NULL)
			return h;
		k->len = strlen(k->str);
		v->len = strlen(v->str);
	}
	return h;
}

static void
report_merged_free(struct redisReply *h)
{
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < h->elements; i++) {
		if (h->element[i] != NULL)
			free(h->element[i]->str);
		free(h->element[i]);
	}
	free(h->element);
	free(h);
}

static void
report_fields_free(struct report_sum *rs)
{
	size_t i;

	for (i = 0; i < rs->n; i++) {
		free(rs->f[i].name);
		free(rs->f[i].str);
	}
	free(rs->f);
}

static void
report_sum_free(struct report_sum *rs)
{
	report_fields_free(rs);
	free(rs);
}

/* m when every string of it was made, else NULL (m freed). */
static struct redisReply *
report_merged_whole(struct redisReply *m)
{
	size_t i;

	for (i = 0; m != NULL && i < m->elements; i++)
		if (m->element[i] == NULL || m->element[i]->str == NULL) {
			report_merged_free(m);
			return NULL;
		}
	return m;
}

struct redisReply *
admin_report_sum(struct redisReply *const *parts, size_t n)
{
	struct report_sum rs;
	struct redisReply *m;
	size_t i;

	for (i = 0; i < n; i++)
		if (parts[i] == NULL || parts[i]->type != REDIS_REPLY_ARRAY)
			return NULL;
	if (n == 1)
		return durable_reply_dup(parts[0]);
	memset(&rs, 0, sizeof(rs));
	for (i = 0; i < n && !rs.failed; i++)
		report_sum_add(&rs, parts[i]);
	m = rs.failed ? NULL : report_merged_whole(report_merged(&rs));
	report_fields_free(&rs);
	return m;
}

static void
on_report_part(struct rconn *rc, struct redisReply *h, void *arg)
{
	struct report_sum *rs = arg;
	struct redisReply *m;

	if (h == NULL || h->type != REDIS_REPLY_ARRAY)
		rs->failed = 1;
	else if (!rs->failed)
		report_sum_add(rs, h);
	if (--rs->left > 0)
		return;
	m = rs->failed ? NULL : report_merged_whole(report_merged(rs));
	on_report(rc, m, rs->op);       /* NULL: 503 */
	report_merged_free(m);
	report_sum_free(rs);
}

/* Sends the report's HGETALL: one in the single-instance layout, one per shard in
 * the sharded one (summed by on_report_part). Returns 0, or -1 (nothing sent). */
static int
report_read(struct admin *a, struct admin_op *op)
{
	char prefix[KEYS_SHARD_MAX], key[MODEL_ID_MAX + 2 * KEYS_SHARD_MAX];
	enum keys_per name = strcmp(op->kindname, "deal") == 0 ? KEYS_REPORT_DEAL :
	    strcmp(op->kindname, "rule") == 0 ? KEYS_REPORT_RULE : KEYS_REPORT_CAMPAIGN;
	uint32_t k, nshards = keys_shards();
	struct report_sum *rs;

	if (nshards == 1) {
		if (keys_prefix(0, name, prefix, sizeof(prefix)) < 0)
			return -1;
		return rconn_cmd(a->app->cmd, on_report, op, 0, "HGETALL %s%s", prefix,
		    op->name);
	}
	if ((rs = calloc(1, sizeof(*rs))) == NULL)
		return -1;
	rs->op = op;
	for (k = 0; k < nshards; k++) {
		if (keys_per(k, name, op->name, key, sizeof(key)) < 0 ||
		    rconn_cmd(a->app->cmd, on_report_part, rs, 0, "HGETALL %s", key) < 0) {
			if (k == 0) {
				report_sum_free(rs);
				return -1;
			}
			/* The parts sent answer; the missing ones count as failed. */
			rs->failed = 1;
			break;
		}
		rs->left++;
	}
	return 0;
}

/* /v1/reports/<deal|rule|campaign>/<name> */
void
admin_on_reports(struct http_req *r, void *arg)
{
	struct admin *a = arg;
	const char *rest = http_req_rest(r), *slash = strchr(rest, '/'), *price;
	struct admin_op *op;
	size_t kl = slash ? (size_t)(slash - rest) : 0;

	if (slash == NULL || !((kl == 4 && strncmp(rest, "deal", 4) == 0) ||
	    (kl == 4 && strncmp(rest, "rule", 4) == 0) ||
	    (kl == 8 && strncmp(rest, "campaign", 8) == 0))) {
		http_error(r, 404, "path", "reports are /v1/reports/deal|rule|campaign/<name>");
		return;
	}
	if (!deal_id_is_valid(slash + 1)) {
		http_error(r, 400, "path", "not a name: 1 to %d printable characters, no"
		    " space", MODEL_ID_MAX);
		return;
	}
	if ((op = admin_op_new(a, r, OP_REPORT)) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	snprintf(op->kindname, sizeof(op->kindname), "%.*s", (int)kl, rest);
	snprintf(op->name, sizeof(op->name), "%s", slash + 1);
	op->price = a->app->cfg->sms_segment_price >= 0 ? a->app->cfg->sms_segment_price :
	    NAN;
	if ((price = http_query(r, "segment_price")) != NULL) {
		char *end = NULL;
		double x;

		errno = 0;
		x = strtod(price, &end);
		/* Plain decimals only: strtod would also take " 1", "0x10" and "1e2". */
		if (*price == '\0' || strspn(price, "0123456789.") != strlen(price) ||
		    *end != '\0' || errno != 0 || !isfinite(x) || x < 0 || x > 100) {
			http_error(r, 400, "segment_price", "segment_price: not a price"
			    " (a number from 0 to 100)");
			op->r = NULL;
			admin_op_free(op);
			return;
		}
		op->price = x;
	}
	if (report_read(a, op) < 0) {
		admin_op_redis_failed(op, NULL);
		admin_op_free(op);
	}
}
