/*
 * convert.c: conversions to attributed redemptions (stage: record).
 *
 * Reads "conversions" in group "attribution" on a connection of its own, one
 * XREADGROUP at a time (the next waits until every script of the batch answered),
 * its own pending list first after every (re)connect and failure. Each entry is
 * validated here and then settled by one script, convert.lua: dead-lettered and
 * acked, or deduped, attributed, counted and acked. Must never ack an entry whose
 * effects are not written, never count an order twice, never stall on an entry.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "app.h"
#include "clicks.h"
#include "clicktok.h"
#include "clock.h"
#include "config.h"
#include "convert.h"
#include "greader.h"
#include "deal.h"
#include "jsonv.h"
#include "log.h"
#include "rconn.h"
#include "redisutil.h"
#include "scripts.h"

#define CONVERT_STREAM "conversions"
#define CONVERT_DEAD "conversions:dead"
#define CONVERT_GROUP "attribution"
#define CONVERT_PAYLOAD_MAX 16384
#define CONVERT_ORDER_TTL_S "7776000"      /* order:<id>: 90 days */
#define CONVERT_GAIN "0.3"                 /* e' = e + (1 - e) x 0.3 per redemption */
#define CONVERT_REVENUE_MAX 1e9
#define CONVERT_TICK_MS 1000
#define CONVERT_RETRY_MS 1000
#define CONVERT_DECAY_WINDOW_MS "259200000" /* 72 h without a click */
#define CONVERT_DECAY_COUNT "200"           /* log entries per decay step */
#define CONVERT_DECAY_FACTOR "0.98"         /* e' = e x 0.98 per ignored push */

struct convert_call;

struct convert {
	const struct app *app;
	struct greader *rd;            /* "conversions" in group "attribution" */
	struct event *tick;            /* the decay step */
	const unsigned char *key;      /* click secret, borrowed; NULL: none */
	size_t keylen;
	size_t outstanding;            /* scripts of the current batch, + 1 while sending */
	int decaying;                  /* a decay.lua call is out */
	struct convert_call *calls;    /* scripts waiting on app->cmd */
};

/* One script call on the shared connection; detached (c NULL) when the module is
 * freed before the reply. */
struct convert_call {
	struct convert *c;
	struct convert_call *prev, *next;
	int decay;
	char entry[64];
	char order[129];
};

static void
convert_read(struct convert *c)
{
	greader_read(c->rd);
}

/* ---- validation ---- */

/* A string member of 1..max bytes without control characters, copied into buf. */
static int
convert_string(const cJSON *root, const char *name, size_t max, char *buf,
    size_t size, struct err *err)
{
	const cJSON *v = jv_field(root, name);
	size_t n;

	if (v == NULL)
		return jv_missing(err, name);
	if (!cJSON_IsString(v) || v->valuestring == NULL)
		return jv_bad_type(err, name, "string", v);
	n = strlen(v->valuestring);
	if (n == 0 || n > max || n >= size)
		return err_set(err, ERR_INPUT, "bad_value", name, "%s: must be 1..%zu bytes",
		    name, max);
	if (jv_has_control(v->valuestring))
		return jv_bad_value(err, name, "control characters are not allowed");
	memcpy(buf, v->valuestring, n + 1);
	return 0;
}

int
convert_parse(const char *json, size_t len, const unsigned char *key, size_t keylen,
    struct convert_in *out, struct err *err)
{
	static const char *const names[] = { "deal_id", "order_id", "revenue", "currency",
		"code", "click_token", "push_id", "subscriber_id" };
	static const char *const kinds[] = { "code", "click_token", "push_id",
		"subscriber_id" };
	cJSON *root = NULL;
	const cJSON *v;
	char sub[CLICKTOK_ID_MAX + 1], entry[64], ch[16];
	int rv = -1;
	size_t i, n = 0;

	memset(out, 0, sizeof(*out));
	/* The deal parser's strict reading: no NUL or \u0000 to cut a C string short, no
	 * invalid UTF-8, nothing after the object. */
	if ((root = deal_json_open(json, len, CONVERT_PAYLOAD_MAX, "conversion",
	    err)) == NULL) {
		if (err->kind != ERR_NOMEM) {
			if (strcmp(err->code, "not_object") == 0)
				snprintf(err->code, sizeof(err->code), "bad_type");
			else if (strcmp(err->code, "binary") == 0)
				snprintf(err->code, sizeof(err->code), "not_json");
			snprintf(err->field, sizeof(err->field), "conversion");
		}
		goto out;
	}
	if (jv_check_unique(root, names, sizeof(names) / sizeof(names[0]), "", err) < 0)
		goto out;
	if (convert_string(root, "deal_id", MODEL_ID_MAX, out->deal_id,
	    sizeof(out->deal_id), err) < 0)
		goto out;
	if (!deal_id_is_valid(out->deal_id)) {
		jv_bad_value(err, "deal_id", "only printable ASCII without spaces is allowed");
		goto out;
	}
	if (convert_string(root, "order_id", 128, out->order_id, sizeof(out->order_id),
	    err) < 0)
		goto out;
	if ((v = jv_field(root, "revenue")) == NULL) {
		jv_missing(err, "revenue");
		goto out;
	}
	if (!cJSON_IsNumber(v)) {
		jv_bad_type(err, "revenue", "number", v);
		goto out;
	}
	if (!isfinite(v->valuedouble) || v->valuedouble < 0 ||
	    v->valuedouble > CONVERT_REVENUE_MAX) {
		jv_bad_value(err, "revenue", "must be a finite number from 0 to 1e9");
		goto out;
	}
	out->revenue = v->valuedouble;
	if (convert_string(root, "currency", 3, out->currency, sizeof(out->currency),
	    err) < 0)
		goto out;
	for (i = 0; i < 3; i++)
		if (out->currency[i] < 'A' || out->currency[i] > 'Z')
			break;
	if (i != 3) {
		jv_bad_value(err, "currency", "must be an ISO 4217 code (three capital letters)");
		goto out;
	}
	for (i = 0; i < 4; i++) {
		if (jv_field(root, kinds[i]) == NULL)
			continue;
		if (n++ > 0) {
			err_set(err, ERR_INPUT, "ambiguous", kinds[i], "%s: only one of code, "
			    "click_token, push_id, subscriber_id may be given (also %s)",
			    kinds[i], out->kind);
			goto out;
		}
		out->kind = kinds[i];
	}
	if (n == 0) {
		err_set(err, ERR_INPUT, "missing_field", "code", "code: one of code, "
		    "click_token, push_id, subscriber_id is required");
		goto out;
	}
	if (strcmp(out->kind, "code") == 0) {
		if (convert_string(root, "code", 64, out->value, sizeof(out->value), err) < 0)
			goto out;
	} else if (strcmp(out->kind, "subscriber_id") == 0) {
		if (convert_string(root, "subscriber_id", MODEL_ID_MAX, out->value,
		    sizeof(out->value), err) < 0)
			goto out;
		if (!deal_id_is_valid(out->value)) {
			jv_bad_value(err, "subscriber_id", "only printable ASCII without spaces "
			    "is allowed");
			goto out;
		}
	} else if (strcmp(out->kind, "push_id") == 0) {
		if (convert_string(root, "push_id", CLICKTOK_ID_MAX, out->value,
		    sizeof(out->value), err) < 0)
			goto out;
	} else {
		char tok[CLICKTOK_MAX + 1];

		if (convert_string(root, "click_token", CLICKTOK_MAX, tok, sizeof(tok),
		    err) < 0)
			goto out;
		if (key == NULL || clicktok_parse(key, keylen, tok, out->value,
		    sizeof(out->value)) < 0) {
			jv_bad_value(err, "click_token", "not a valid click token");
			snprintf(err->code, sizeof(err->code), "bad_token");
			goto out;
		}
	}
	if (strcmp(out->kind, "subscriber_id") != 0 && strcmp(out->kind, "code") != 0 &&
	    clicks_split_push_id(out->value, entry, sizeof(entry), sub, sizeof(sub), ch,
	    sizeof(ch)) < 0) {
		jv_bad_value(err, out->kind, "not a push id (<entry>:<subscriber>:<channel>)");
		goto out;
	}
	rv = 0;
out:
	cJSON_Delete(root);
	return rv;
}

/* ---- the consumer ---- */

static void
convert_reread(struct convert *c, int failed)
{
	greader_reread(c->rd, failed);
}

static void
convert_unlink(struct convert_call *k)
{
	if (k->c == NULL)
		return;
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		k->c->calls = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
}

static void
convert_on_script(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct convert_call *k = arg;
	struct convert *c = k->c;
	const char *st = NULL;

	(void)rc;
	if (c == NULL)
		goto out;
	convert_unlink(k);
	if (k->decay) {
		c->decaying = 0;
		if (r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer > 0)
			log_info("event=engagement_decay pushes=%lld", (long long)r->integer);
		else if (r == NULL || r->type == REDIS_REPLY_ERROR)
			log_warnx("event=decay_failed err=\"%s\"", r ? r->str : "no reply");
		goto out;
	}
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_STRING)
		st = r->element[0]->str;
	if (st == NULL) {
		/* Left pending: read again from the pending list. */
		log_warnx("event=conversion_failed entry=%s err=\"%s\"", k->entry,
		    r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : "no reply");
		convert_reread(c, 1);
	} else if (strcmp(st, "dead") == 0) {
		log_warnx("event=conversion_dead entry=%s reason=%s field=%s", k->entry,
		    r->elements > 1 && r->element[1]->type == REDIS_REPLY_STRING ?
		    r->element[1]->str : "-", r->elements > 2 &&
		    r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str : "-");
	} else {
		log_info("event=conversion entry=%s order=%s result=%s%s%s", k->entry,
		    k->order, st, r->elements > 1 ? " push=" : "", r->elements > 1 &&
		    r->element[1]->type == REDIS_REPLY_STRING ? r->element[1]->str : "");
	}
	if (--c->outstanding == 0)
		convert_read(c);
out:
	free(k);
}

/* Sends convert.lua (or decay.lua when decay) with args; counts it outstanding. */
static int
convert_call(struct convert *c, int decay, const char *entry, const char *order,
    int nargs, const char **args, const size_t *lens)
{
	struct convert_call *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return -1;
	k->decay = decay;
	snprintf(k->entry, sizeof(k->entry), "%s", entry ? entry : "-");
	snprintf(k->order, sizeof(k->order), "%s", order ? order : "-");
	if (script_call_named(c->app->cmd, decay ? "decay" : "convert", 4, nargs, args,
	    lens, convert_on_script, k) < 0) {
		free(k);
		return -1;
	}
	k->c = c;
	k->next = c->calls;
	if (c->calls != NULL)
		c->calls->prev = k;
	c->calls = k;
	if (!decay)
		c->outstanding++;
	return 0;
}

static void
convert_dead(struct convert *c, const char *entry, const struct err *e,
    const char *payload, size_t len)
{
	const char *args[11] = { CONVERT_STREAM, CONVERT_DEAD, "subscribers",
		"subscribers:changes", "dead", entry, CONVERT_GROUP, e->code, e->field, e->msg,
		payload ? payload : "" };
	size_t lens[11];
	int i;

	for (i = 0; i < 10; i++)
		lens[i] = strlen(args[i]);
	lens[10] = payload ? (len > CONVERT_PAYLOAD_MAX ? CONVERT_PAYLOAD_MAX : len) : 0;
	if (convert_call(c, 0, entry, NULL, 11, args, lens) < 0) {
		log_warnx("event=conversion_failed entry=%s err=\"redis not ready\"", entry);
		convert_reread(c, 1);
	}
}

static void
convert_entry(struct convert *c, const char *entry, const struct redisReply *fields)
{
	struct convert_in in;
	struct err err;
	const char *payload, *args[16];
	char revenue[64];
	size_t len = 0;

	err_clear(&err);
	if (fields == NULL) {
		err_set(&err, ERR_INPUT, "deleted", "", "entry was deleted");
		convert_dead(c, entry, &err, NULL, 0);
		return;
	}
	if ((payload = ru_field(fields, "conversion", &len)) == NULL) {
		err_set(&err, ERR_INPUT, "missing_field", "conversion",
		    "conversion: the entry has no field 'conversion'");
		convert_dead(c, entry, &err, NULL, 0);
		return;
	}
	if (convert_parse(payload, len, c->key, c->keylen, &in, &err) < 0) {
		if (err.kind == ERR_NOMEM) {
			convert_reread(c, 1);
			return;
		}
		convert_dead(c, entry, &err, payload, len);
		return;
	}
	snprintf(revenue, sizeof(revenue), "%.17g", in.revenue);
	args[0] = CONVERT_STREAM;
	args[1] = CONVERT_DEAD;
	args[2] = "subscribers";
	args[3] = "subscribers:changes";
	args[4] = "attr";
	args[5] = entry;
	args[6] = CONVERT_GROUP;
	args[7] = in.deal_id;
	args[8] = in.order_id;
	args[9] = revenue;
	args[10] = in.currency;
	args[11] = in.kind;
	args[12] = in.value;
	args[13] = len > CONVERT_PAYLOAD_MAX ? "" : payload;
	args[14] = CONVERT_ORDER_TTL_S;
	args[15] = CONVERT_GAIN;
	if (convert_call(c, 0, entry, in.order_id, 16, args, NULL) < 0) {
		log_warnx("event=conversion_failed entry=%s err=\"redis not ready\"", entry);
		convert_reread(c, 1);
	}
}

/* greader_batch_fn: every entry of a batch; the next read once all answered. */
static void
convert_on_batch(void *arg, const struct redisReply *entries)
{
	struct convert *c = arg;
	const struct redisReply *fields;
	const char *id;
	size_t i;

	c->outstanding++; /* hold the next read until the batch is sent */
	for (i = 0; i < entries->elements; i++) {
		if (ru_entry(entries, i, &id, &fields) < 0) {
			log_warnx("event=read_failed stream=" CONVERT_STREAM
			    " err=\"malformed entry\"");
			continue;
		}
		convert_entry(c, id, fields);
	}
	c->outstanding--;
}

/* greader_gate_fn: one batch at a time, through the shared connection. */
static int
convert_gate(void *arg)
{
	struct convert *c = arg;

	return c->outstanding == 0 && rconn_is_ready(c->app->cmd);
}

/* Runs one decay step. */
static void
convert_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct convert *c = arg;
	const char *args[7] = { "pushes:log", "engagement:decay", "subscribers",
		"subscribers:changes", CONVERT_DECAY_WINDOW_MS, CONVERT_DECAY_COUNT,
		CONVERT_DECAY_FACTOR };

	(void)fd;
	(void)what;
	if (!c->decaying && rconn_is_ready(c->app->cmd) &&
	    convert_call(c, 1, NULL, NULL, 7, args, NULL) == 0)
		c->decaying = 1;
}

struct convert *
convert_new(const struct app *app)
{
	struct timeval tv = { CONVERT_TICK_MS / 1000, (CONVERT_TICK_MS % 1000) * 1000 };
	struct convert *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto oom;
	c->app = app;
	if (app->cfg->click_secret != NULL &&
	    strlen(app->cfg->click_secret) >= CLICKTOK_KEY_MIN &&
	    strlen(app->cfg->click_secret) <= CLICKTOK_KEY_MAX) {
		c->key = (const unsigned char *)app->cfg->click_secret;
		c->keylen = strlen(app->cfg->click_secret);
	}
	if ((c->tick = event_new(app->base, -1, EV_PERSIST, convert_on_tick, c)) == NULL)
		goto oom;
	event_add(c->tick, &tv);
	{
		/* From "0": conversions posted before the first notifier count too. */
		struct greader_config gc = { "convert", CONVERT_STREAM, CONVERT_GROUP,
			app->cfg->consumer, app->cfg->ingest_batch, app->cfg->block_ms,
			app->cfg->redis_command_timeout_ms, CONVERT_RETRY_MS,
			app->cfg->claim_idle_ms };

		if ((c->rd = greader_new(app->base, app->rcfg, &gc, convert_on_batch,
		    convert_gate, c)) == NULL)
			goto oom;
		greader_set_cmd(c->rd, app->cmd);
	}
	return c;
oom:
	log_errorx("event=start_failed component=convert err=\"out of memory\"");
	convert_free(c);
	return NULL;
}

void
convert_free(struct convert *c)
{
	struct convert_call *k, *next;

	if (c == NULL)
		return;
	for (k = c->calls; k != NULL; k = next) {
		next = k->next;
		k->c = NULL;
		k->prev = k->next = NULL;
	}
	c->calls = NULL;
	if (c->rd != NULL)
		greader_stop(c->rd);    /* the read callback (NULL) must not read again */
	greader_free(c->rd);
	if (c->tick != NULL)
		event_free(c->tick);
	free(c);
}
