/*
 * admin_consent.c: GET /v1/consent/<id> (stage: http): a subscriber's consent record,
 * field <id> of hash consent:records, as JSON: every event kept (when, channel, state,
 * how, detail; docs/compliance.md §4) and each channel's state now (its last event).
 * It only reads. A stored line that is not five tab-separated values (written by
 * hand, say) is answered as {"raw": line}, never dropped and never trusted.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>

#include "admin_consent.h"
#include "app.h"
#include "deal.h"
#include "http.h"
#include "keys.h"
#include "rconn.h"
#include "timefmt.h"

#define CONSENT_FIELDS 5              /* when, channel, state, how, detail */

struct consent_op {
	struct http_wait w;           /* first: in the module's list */
	char id[MODEL_ID_MAX + 1];
};

struct admin_consent {
	const struct app *app;
	struct http_wait *ops;
};

static void
op_free(struct consent_op *op)
{
	http_wait_remove(&op->w);
	free(op);
}

/* One event line (len bytes, not NUL-terminated) as a JSON object; the channel and
 * state into cur (for "current") when it parses. */
static cJSON *
event_json(const char *line, size_t len, cJSON *cur)
{
	const char *f[CONSENT_FIELDS], *p = line, *end = line + len;
	size_t n[CONSENT_FIELDS];
	char buf[64], *e;
	cJSON *o = cJSON_CreateObject();
	long long when;
	int i;

	if (o == NULL)
		return NULL;
	for (i = 0; i < CONSENT_FIELDS; i++) {
		const char *t = i < CONSENT_FIELDS - 1 ? memchr(p, '\t', (size_t)(end - p)) :
		    end;

		if (t == NULL)
			break;
		f[i] = p;
		n[i] = (size_t)(t - p);
		p = t + (t < end);
	}
	if (i == CONSENT_FIELDS && n[0] > 0 && n[0] < sizeof(buf)) {
		memcpy(buf, f[0], n[0]);
		buf[n[0]] = '\0';
		when = strtoll(buf, &e, 10);
		if (*e == '\0' && when >= 0) {
			static const char *const names[CONSENT_FIELDS] = { "when", "channel",
			    "state", "how", "detail" };
			char at[40];

			cJSON_AddNumberToObject(o, "when", (double)when);
			cJSON_AddStringToObject(o, "at", time_format_rfc3339(when, at,
			    sizeof(at)));
			for (i = 1; i < CONSENT_FIELDS; i++) {
				char *v = strndup(f[i], n[i]);

				if (v == NULL) {
					cJSON_Delete(o);
					return NULL;
				}
				cJSON_AddStringToObject(o, names[i], v);
				if (i == 2 && n[1] > 0) {
					char *ch = strndup(f[1], n[1]);

					if (ch != NULL) {
						cJSON_DeleteItemFromObjectCaseSensitive(cur, ch);
						cJSON_AddStringToObject(cur, ch, v);
					}
					free(ch);
				}
				free(v);
			}
			return o;
		}
	}
	{
		char *raw = strndup(line, len);

		if (raw != NULL)
			cJSON_AddStringToObject(o, "raw", raw);
		free(raw);
	}
	return o;
}

void
admin_consent_events(const char *rec, size_t len, cJSON *events, cJSON *cur)
{
	const char *p, *end;

	for (p = rec, end = rec + len; p < end; ) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		if (n > 0)
			cJSON_AddItemToArray(events, event_json(p, n, cur));
		p += n + 1;
	}
}

static void
on_record(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct consent_op *op = arg;
	cJSON *j, *events, *cur;

	(void)rc;
	if (op->w.r == NULL)
		goto out;
	if (reply == NULL || (reply->type != REDIS_REPLY_STRING &&
	    reply->type != REDIS_REPLY_NIL)) {
		http_error(op->w.r, 503, NULL, "storage unavailable; try again");
		goto out;
	}
	if (reply->type == REDIS_REPLY_NIL) {
		http_error(op->w.r, 404, "id", "no consent record for '%s'", op->id);
		goto out;
	}
	if ((j = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(j, "id", op->id) == NULL ||
	    (events = cJSON_AddArrayToObject(j, "events")) == NULL ||
	    (cur = cJSON_AddObjectToObject(j, "current")) == NULL) {
		cJSON_Delete(j);
		http_error(op->w.r, 500, NULL, "out of memory");
		goto out;
	}
	admin_consent_events(reply->str, reply->len, events, cur);
	http_reply_json(op->w.r, 200, j);
out:
	op->w.r = NULL;
	op_free(op);
}

/* GET /v1/consent/<id> */
static void
on_consent(struct http_req *r, void *arg)
{
	struct admin_consent *ac = arg;
	const char *id = http_req_rest(r);
	char key[KEYS_SHARD_MAX];
	struct consent_op *op;

	if (!deal_id_is_valid(id)) {
		http_error(r, 400, "path", "not a subscriber id: 1 to %d printable"
		    " characters, no space", MODEL_ID_MAX);
		return;
	}
	if ((op = calloc(1, sizeof(*op))) == NULL) {
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	snprintf(op->id, sizeof(op->id), "%s", id);
	http_wait_add(&ac->ops, &op->w, r);
	(void)keys_shard_key(keys_shard_of(op->id), KEYS_CONSENT_RECORDS, key, sizeof(key));
	if (rconn_cmd(ac->app->cmd, on_record, op, 0, "HGET %s %s", key, op->id) < 0) {
		http_error(r, 503, NULL, "storage unavailable; try again");
		op_free(op);
	}
}

struct admin_consent *
admin_consent_new(const struct app *app)
{
	struct admin_consent *ac = calloc(1, sizeof(*ac));

	if (ac == NULL)
		return NULL;
	ac->app = app;
	if (app->http != NULL && http_route(app->http, EVHTTP_REQ_GET, "/v1/consent",
	    HTTP_ROLE_ADMIN, on_consent, ac, 0) < 0) {
		free(ac);
		return NULL;
	}
	return ac;
}

void
admin_consent_free(struct admin_consent *ac)
{
	if (ac == NULL)
		return;
	http_wait_detach_all(&ac->ops);   /* their callbacks only free them */
	free(ac);
}
