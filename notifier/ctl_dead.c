/*
 * ctl_dead.c: a publisher's view of deals and dead letters (stage: outside the
 * pipeline, the operator's CLI): deals status ID through the admin API; dead list
 * and dead replay ENTRY straight against Redis. A replay checks the payload with the
 * daemon's own parser (deal_parse, convert_parse) first and publishes it again with
 * dead_replay.lua, which removes the dead letter only in the step that re-publishes
 * it. It must never replay what ingest or attribution would refuse, nor remove a dead
 * letter it has not re-published.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "keys.h"
#include "clock.h"
#include "convert.h"
#include "deal.h"
#include "err.h"

#include "ctl_int.h"
#include "streampos.h"
#include "redisutil.h"

#define DEAD_LIST_DEFAULT 20
#define DEAD_LIST_MAX 10000

/* ---- deals status (API) ---- */

int
ctl_cmd_deal_status(struct ctl_api *api, const char *id)
{
	const cJSON *c, *d, *v;
	char p[1024], msg[512];
	struct ctl_buf b;
	cJSON *j;
	long st;
	int rc = CTL_FAIL;

	if (!deal_id_is_valid(id)) {
		fprintf(stderr, "dealpushctl: \"%s\" is not a valid deal id\n", id);
		return CTL_BAD_INPUT;
	}
	if (ctl_api_path(api, p, sizeof(p), "/v1/deals/", id) < 0 ||
	    (st = ctl_api_call(api, "GET", p, NULL, 0, NULL, &b)) < 0)
		return CTL_FAIL;
	if (st != 200) {
		if (!ctl_api_fatal(st, &b)) {
			fprintf(stderr, "dealpushctl: deals status %s: %s\n", id,
			    ctl_api_error_text(&b, msg, sizeof(msg)));
			rc = CTL_BAD_INPUT;
		}
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
	printf("deal %s: %s\n", id, ctl_jstr(j, "state"));
	if ((d = cJSON_GetObjectItemCaseSensitive(j, "dead_letter")) != NULL)
		printf("dead letter %s: %s (field %s): %s%s%s\n", ctl_jstr(d, "id"),
		    ctl_jstr(d, "reason"), ctl_jstr(d, "field"), ctl_jstr(d, "error"),
		    ctl_jstr(d, "confirmed_as")[0] ? "; confirmed as entry " : "",
		    ctl_jstr(d, "confirmed_as"));
	if (ctl_jstr(j, "pause_reason")[0] != '\0')
		printf("paused: %s\n", ctl_jstr(j, "pause_reason"));
	if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "expires_at")))
		printf("expires_at %.0f\n", ctl_jnum(j, "expires_at"));
	c = cJSON_GetObjectItemCaseSensitive(j, "counts");
	cJSON_ArrayForEach(v, c) {
		if (cJSON_IsNumber(v))
			printf("%-24s %12g\n", v->string, v->valuedouble);
		else if (cJSON_IsObject(v)) {
			const cJSON *s;

			cJSON_ArrayForEach(s, v)
				printf("skipped %-16s %12g\n", s->string, s->valuedouble);
		}
	}
	cJSON_Delete(j);
	rc = CTL_OK;
out:
	free(b.p);
	return rc;
}

/* ---- dead letters (Redis) ---- */

/* The payload's member name as text into buf ("-" when none). */
static const char *
payload_member(const char *p, const char *name, char *buf, size_t size)
{
	cJSON *j = p != NULL ? cJSON_Parse(p) : NULL;
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);

	snprintf(buf, size, "%s", cJSON_IsString(v) ? v->valuestring : "-");
	cJSON_Delete(j);
	return buf;
}

/* Prints the last n dead letters of stream (payload field pf). CTL_OK or CTL_FAIL. */
static int
dead_list_one(struct ctl_conn *c, const char *stream, const char *pf, long n, int json)
{
	redisReply *r = ctl_command(c, "XREVRANGE %s + - COUNT %ld", stream, n);
	size_t i, k;
	char id[MODEL_ID_MAX + 1];

	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		fprintf(stderr, "dealpushctl: redis: XREVRANGE %s: %s\n", stream,
		    r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : ctl_errstr(c));
		freeReplyObject(r);
		return CTL_FAIL;
	}
	for (i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i], *f;
		const char *pay;

		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
			continue;
		f = e->element[1];
		pay = ru_field(f, pf, NULL);
		if (json) {
			cJSON *o = cJSON_CreateObject();
			char *s;

			cJSON_AddStringToObject(o, "stream", stream);
			cJSON_AddStringToObject(o, "id", e->element[0]->str);
			for (k = 0; k + 1 < f->elements; k += 2)
				if (f->element[k]->type == REDIS_REPLY_STRING &&
				    f->element[k + 1]->type == REDIS_REPLY_STRING)
					cJSON_AddStringToObject(o, f->element[k]->str,
					    f->element[k + 1]->str);
			s = cJSON_PrintUnformatted(o);
			printf("%s\n", s != NULL ? s : "{}");
			free(s);
			cJSON_Delete(o);
			continue;
		}
		printf("%-16s %-22s %-14s %-12s %-20s %s\n", stream, e->element[0]->str,
		    ru_field(f, "reason", NULL) ? ru_field(f, "reason", NULL) : "-",
		    ru_field(f, "field", NULL) && *ru_field(f, "field", NULL) ?
		    ru_field(f, "field", NULL) : "-",
		    payload_member(pay, strcmp(pf, "deal") == 0 ? "id" : "order_id", id,
		    sizeof(id)), ru_field(f, "error", NULL) ? ru_field(f, "error", NULL) : "");
	}
	freeReplyObject(r);
	return CTL_OK;
}

int
ctl_cmd_dead_list(struct ctl_conn *c, int argc, char **argv, int json)
{
	int deals = 1, convs = 1, i, rc;
	long n = DEAD_LIST_DEFAULT;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--deals") == 0) {
			convs = 0;
		} else if (strcmp(argv[i], "--conversions") == 0) {
			deals = 0;
		} else if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc) {
			char *end = NULL;

			errno = 0;
			n = strtol(argv[++i], &end, 10);
			if (errno != 0 || end == argv[i] || *end != '\0' || n < 1 ||
			    n > DEAD_LIST_MAX) {
				fprintf(stderr, "dealpushctl: --limit wants 1 to %d\n",
				    DEAD_LIST_MAX);
				return CTL_BAD_INPUT;
			}
		} else {
			fprintf(stderr, "dealpushctl: dead list: unexpected \"%s\" (--deals, "
			    "--conversions, --limit N, --json)\n", argv[i]);
			return CTL_BAD_INPUT;
		}
	}
	if (!deals && !convs) {
		fprintf(stderr, "dealpushctl: dead list: --deals or --conversions, not both\n");
		return CTL_BAD_INPUT;
	}
	if (!json)
		printf("%-16s %-22s %-14s %-12s %-20s %s\n", "STREAM", "ENTRY", "REASON",
		    "FIELD", "DEAL/ORDER", "ERROR");
	if (deals && (rc = dead_list_one(c, keys_global(KEYS_G_DEALS_DEAD), "deal", n, json)) != CTL_OK)
		return rc;
	if (convs && (rc = dead_list_one(c, keys_global(KEYS_G_CONVERSIONS_DEAD), "conversion", n,
	    json)) !=
	    CTL_OK)
		return rc;
	return CTL_OK;
}

/* 1 when s is a stream entry id "<ms>-<seq>". */
static int
entry_id_ok(const char *s)
{
	unsigned long long ms, seq;

	return streampos_parse(s, &ms, &seq) == 0;
}

/* Checks payload as the consumer of target would. 0, or -1 with the reason in msg. */
static int
replay_valid(int is_deal, const char *p, size_t len, char *msg, size_t size)
{
	struct err e;

	err_clear(&e);
	if (is_deal) {
		struct deal *d = deal_parse(p, len, clock_now(), &e);

		if (d != NULL) {
			deal_free(d);
			return 0;
		}
	} else {
		struct convert_in conv;

		memset(&conv, 0, sizeof(conv));
		/* No click secret here: the notifier checks a token's signature. */
		if (convert_parse(p, len, NULL, 0, &conv, &e) == 0 ||
		    strcmp(e.code, "bad_token") == 0)
			return 0;
	}
	snprintf(msg, size, "%s", e.msg);
	return -1;
}

int
ctl_cmd_dead_replay(struct ctl_conn *c, const char *entry)
{
	const char *const streams[2][3] = {
		{ keys_global(KEYS_G_DEALS_DEAD), "deals", "deal" },
		{ keys_global(KEYS_G_CONVERSIONS_DEAD), "conversions", "conversion" },
	};
	redisReply *r = NULL, *x = NULL;
	const char *pay, *reason;
	char sha[41], msg[512];
	size_t len = 0;
	int s, rc = CTL_FAIL;

	if (!entry_id_ok(entry)) {
		fprintf(stderr, "dealpushctl: \"%s\" is not a stream entry id (like "
		    "1764900000000-0; see dead list)\n", entry);
		return CTL_BAD_INPUT;
	}
	for (s = 0; s < 2; s++) {
		freeReplyObject(r);
		r = ctl_command(c, "XRANGE %s %s %s", streams[s][0], entry, entry);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			fprintf(stderr, "dealpushctl: redis: XRANGE %s: %s\n", streams[s][0],
			    r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : ctl_errstr(c));
			goto out;
		}
		if (r->elements == 1 && r->element[0]->elements == 2)
			break;
	}
	if (s == 2) {
		fprintf(stderr, "dealpushctl: no dead letter %s in deals:dead or "
		    "conversions:dead\n", entry);
		rc = CTL_BAD_INPUT;
		goto out;
	}
	reason = ru_field(r->element[0]->element[1], "reason", NULL);
	pay = ru_field(r->element[0]->element[1], streams[s][2], &len);
	rc = CTL_BAD_INPUT;
	if (reason != NULL && strcmp(reason, "held") == 0) {
		fprintf(stderr, "dealpushctl: %s: a deal held by the guards; send it with "
		    "dealpushctl deals confirm ID\n", entry);
		goto out;
	}
	if (pay == NULL) {
		fprintf(stderr, "dealpushctl: %s: the dead letter (reason %s) holds no %s to "
		    "replay; it stays in %s\n", entry, reason ? reason : "?", streams[s][2],
		    streams[s][0]);
		goto out;
	}
	if (replay_valid(s == 0, pay, len, msg, sizeof(msg)) < 0) {
		fprintf(stderr, "dealpushctl: %s is still invalid: %s; it stays in %s "
		    "(reason %s)\n", entry, msg, streams[s][0], reason ? reason : "?");
		goto out;
	}
	rc = CTL_FAIL;
	if (ctl_conn_load_script(c, "dead_replay", sha) < 0)
		goto out;
	/* ORDER REPLAY_KEYS: the header of dead_replay.lua. */
	x = ctl_command(c, "EVALSHA %s 2 %s %s %s %s %b", sha, streams[s][0],
	    streams[s][1], entry, streams[s][2], pay, len);
	if (x == NULL || x->type != REDIS_REPLY_ARRAY || x->elements < 1 ||
	    x->element[0]->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "dealpushctl: redis: dead_replay: %s\n", x == NULL ?
		    ctl_errstr(c) : x->type == REDIS_REPLY_ERROR ? x->str : "unexpected reply");
		goto out;
	}
	if (strcmp(x->element[0]->str, "ok") != 0 || x->elements < 2) {
		fprintf(stderr, "dealpushctl: %s: %s while replaying; nothing changed, try "
		    "again\n", entry, x->element[0]->str);
		rc = CTL_BAD_INPUT;
		goto out;
	}
	printf("replayed %s from %s as %s entry=%s\n", entry, streams[s][0], streams[s][1],
	    x->element[1]->str);
	rc = CTL_OK;
out:
	freeReplyObject(x);
	freeReplyObject(r);
	return rc;
}
