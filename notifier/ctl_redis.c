/*
 * ctl_redis.c: dealpushctl's commands straight against Redis (stage: outside the
 * pipeline, the operator's CLI; it feeds ingest): subscribers delete, publish and
 * cancel deals (stream "deals"), post conversions (stream "conversions"). Each line is
 * checked with the daemon's own parser first. It must never write a deal or a
 * conversion the daemon's parsers would refuse (except publish --raw, which exists to
 * test the dead-letter path), nor delete a subscriber other than through the daemon's
 * own script.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "convert.h"
#include "deal.h"
#include "admin_confirm.h"
#include "err.h"
#include "formats.h"
#include "keys.h"
#include "phoneix.h"
#include "pause.h"
#include "subscriber.h"
#include "timefmt.h"

#include "ctl_int.h"

/* ---- commands ---- */

/* phone_index.lua "drop" of id at the number and X id of json, its stored subscriber.
 * CTL_OK, or CTL_FAIL after printing (the subscriber is deleted all the same). */
static int
unindex(redisContext *c, const char *id, const char *json)
{
	cJSON *o = cJSON_Parse(json);
	const cJSON *v[2];
	char sha[41];
	int i, rc = CTL_OK;

	v[0] = cJSON_GetObjectItemCaseSensitive(o, "phone");
	v[1] = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "dm"),
	    "x");
	if ((cJSON_IsString(v[0]) || cJSON_IsString(v[1])) &&
	    ctl_load_script(c, "phone_index", sha) < 0)
		rc = CTL_FAIL;
	for (i = 0; i < 2 && rc == CTL_OK; i++) {
		char ix[KEYS_SHARD_MAX], sup[KEYS_SHARD_MAX];
		const char *argv[9];
		redisReply *r;

		if (!cJSON_IsString(v[i]) || phoneix_keys(i == 0 ? PHONEIX_PHONE : PHONEIX_DM,
		    v[i]->valuestring, ix, sup) < 0)
			continue;
		argv[0] = "EVALSHA";
		argv[1] = sha;
		argv[2] = "2";
		argv[3] = sup;
		argv[4] = ix;
		argv[5] = "drop";
		argv[6] = "2";
		argv[7] = v[i]->valuestring;
		argv[8] = id;
		r = redisCommandArgv(c, 9, argv, NULL);
		if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
			fprintf(stderr, "dealpushctl: redis: taking %s off the phone index: %s\n",
			    id, r == NULL ? c->errstr : r->type == REDIS_REPLY_ERROR ? r->str :
			    "unexpected reply");
			rc = CTL_FAIL;
		}
		freeReplyObject(r);
	}
	cJSON_Delete(o);
	return rc;
}

/*
 * The same script as the API's delete (admin_sub_del.lua, keys in ORDER SUB_KEYS), so
 * that a consent it removes moves consent:epoch and a push admitted before the delete
 * is checked again before it is sent.
 */
int ctl_cmd_subscribers_delete(redisContext *c, const char *id)
{
	char sha[41], keys[KEYS_SUB_NKEYS][KEYS_SHARD_MAX], nkeys[8];
	char behav[KEYS_SHARD_MAX];
	const char *argv[3 + KEYS_SUB_NKEYS + 2];
	redisReply *r = NULL;
	int argc = 0, k, rc = CTL_FAIL;

	if (!deal_id_is_valid(id)) {
		fprintf(stderr, "dealpushctl: \"%s\" is not a valid subscriber id\n", id);
		return CTL_BAD_INPUT;
	}
	if (ctl_load_script(c, "admin_sub_del", sha) < 0)
		return CTL_FAIL;
	argv[argc++] = "EVALSHA";
	argv[argc++] = sha;
	snprintf(nkeys, sizeof(nkeys), "%d", KEYS_SUB_NKEYS + 1);
	argv[argc++] = nkeys;
	(void)keys_sub_keys(keys_shard_of(id), keys);
	(void)keys_shard_key(keys_shard_of(id), KEYS_BEHAVIOUR, behav, sizeof(behav));
	for (k = 0; k < KEYS_SUB_NKEYS; k++)
		argv[argc++] = keys[k];
	argv[argc++] = behav;   /* the header of admin_sub_del.lua */
	argv[argc++] = id;
	r = redisCommandArgv(c, argc, argv, NULL);
	if (r == NULL || (r->type != REDIS_REPLY_INTEGER && r->type != REDIS_REPLY_STRING)) {
		fprintf(stderr, "dealpushctl: redis: delete: %s\n", r == NULL ? c->errstr :
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		freeReplyObject(r);
		return CTL_FAIL;
	}
	if (r->type == REDIS_REPLY_INTEGER) {
		printf("deleted %s (it was not stored)\n", id);
		rc = CTL_OK;
	} else {
		/* Its number and X id leave the phone index (admin_sub.c does the same). */
		rc = unindex(c, id, r->str);
		if (rc == CTL_OK)
			printf("deleted %s\n", id);
	}
	freeReplyObject(r);
	return rc;
}

/* XADD stream * field <json>; prints "<verb> <id> entry=<stream id>", and copies the
 * stream id into entry (64 bytes) when it is not NULL. */
static int xadd_json(struct ctl_conn *c, const char *stream, const char *field,
    const char *json, size_t len, const char *verb, const char *id, char *entry)
{
	const char *fv = NULL, *fvv = NULL;
	redisReply *r = NULL;
	int rc = -1;

	/* The version field (formats.h) when the deployment is past format 1. */
	if (formats_entry_fields(&fv, &fvv) == 2)
		r = ctl_command(c, "XADD %s * %s %b %s %s", stream, field, json, len, fv, fvv);
	else
		r = ctl_command(c, "XADD %s * %s %b", stream, field, json, len);
	if (r == NULL) {
		fprintf(stderr, "dealpushctl: redis: XADD %s: %s\n", stream, ctl_errstr(c));
		goto out;
	}
	if (r->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "dealpushctl: redis: XADD %s: %s\n", stream,
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		goto out;
	}
	printf("%s %s entry=%s\n", verb, id, r->str);
	if (entry != NULL)
		snprintf(entry, 64, "%s", r->str);
	rc = 0;
out:
	freeReplyObject(r);
	return rc;
}

/* With --expires-in: a copy of line with expires_at = now + secs and no starts_at, or
 * NULL when line is not a NUL-free JSON object (left as it is) or is a cancel. */
static char *rewrite_expiry(const char *line, size_t len, int64_t expires_at)
{
	cJSON *root = NULL;
	char *out = NULL;

	if (memchr(line, '\0', len) != NULL)
		goto out;
	root = cJSON_ParseWithLengthOpts(line, len + 1, NULL, 1);
	if (!cJSON_IsObject(root) || cJSON_GetObjectItemCaseSensitive(root, "cancel") != NULL)
		goto out;
	cJSON_DeleteItemFromObjectCaseSensitive(root, "expires_at");
	cJSON_DeleteItemFromObjectCaseSensitive(root, "starts_at");
	if (cJSON_AddNumberToObject(root, "expires_at", (double)expires_at) == NULL)
		goto out;
	out = cJSON_PrintUnformatted(root);
out:
	cJSON_Delete(root);
	return out;
}

/* The id of a raw payload for the "published" line, or "-". */
static void raw_id(const char *line, size_t len, char *id, size_t idsz)
{
	cJSON *root = NULL;
	const cJSON *v;

	snprintf(id, idsz, "-");
	if (memchr(line, '\0', len) != NULL)
		return;
	root = cJSON_ParseWithLengthOpts(line, len + 1, NULL, 1);
	v = cJSON_GetObjectItemCaseSensitive(root, "id");
	if (cJSON_IsString(v) && deal_id_is_valid(v->valuestring))
		snprintf(id, idsz, "%s", v->valuestring);
	cJSON_Delete(root);
}

int ctl_cmd_publish(struct ctl_conn *c, const char *path, int raw, long expires_in)
{
	struct ctl_input in;
	unsigned long published = 0, bad = 0;
	int rc = CTL_FAIL, r;

	if (ctl_input_open(&in, path) < 0)
		return CTL_FAIL;
	while ((r = ctl_input_next_entry(&in, &bad)) == 1) {
		int64_t now = clock_now();
		char *rewritten = NULL, id[MODEL_ID_MAX + 1];
		const char *json = in.buf;
		size_t len = in.len;
		struct deal *d = NULL;
		struct err e;
		int sent;

		if (expires_in > 0) {
			rewritten = rewrite_expiry(in.buf, in.len, now + expires_in);
			if (rewritten != NULL) {
				json = rewritten;
				len = strlen(rewritten);
			}
		}
		if (raw) {
			raw_id(json, len, id, sizeof(id));
		} else {
			d = deal_parse(json, len, now, &e);
			if (d == NULL) {
				ctl_report_bad_line(&in, e.msg);
				bad++;
				free(rewritten);
				continue;
			}
			snprintf(id, sizeof(id), "%s", d->id);
			deal_free(d);
		}
		sent = xadd_json(c, "deals", "deal", json, len, "published", id, NULL);
		free(rewritten);
		if (sent < 0)
			goto out;
		published++;
	}
	if (r < 0)
		goto out;
	printf("published %lu deals, %lu bad lines\n", published, bad);
	rc = bad > 0 ? CTL_BAD_INPUT : CTL_OK;
out:
	ctl_input_close(&in);
	return rc;
}

/*
 * Checks each line of path as a conversion with the daemon's own parser and adds it
 * to stream "conversions". A click token's signature is checked by the notifier (the
 * CLI has no click secret): a token that does not verify is dead-lettered there.
 */
int ctl_cmd_convert(struct ctl_conn *c, const char *path, int no_wait)
{
	struct ctl_input in;
	struct ctl_posted *posted = NULL, *np;
	unsigned long bad = 0, refused = 0;
	size_t n = 0, cap = 0;
	int rc = CTL_FAIL, r;

	if (ctl_input_open(&in, path) < 0)
		return CTL_FAIL;
	while ((r = ctl_input_next_entry(&in, &bad)) == 1) {
		struct convert_in conv;
		struct err e;

		err_clear(&e);
		memset(&conv, 0, sizeof(conv));
		if (convert_parse(in.buf, in.len, NULL, 0, &conv, &e) < 0 &&
		    strcmp(e.code, "bad_token") != 0) {
			ctl_report_bad_line(&in, e.msg);
			bad++;
			continue;
		}
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			if ((np = realloc(posted, cap * sizeof(*posted))) == NULL) {
				fprintf(stderr, "dealpushctl: out of memory\n");
				goto out;
			}
			posted = np;
		}
		memset(&posted[n], 0, sizeof(posted[n]));
		snprintf(posted[n].order, sizeof(posted[n].order), "%s",
		    conv.order_id[0] != '\0' ? conv.order_id : "-");
		if (xadd_json(c, "conversions", "conversion", in.buf, in.len, "posted order",
		    posted[n].order, posted[n].entry) < 0)
			goto out;
		n++;
	}
	if (r < 0)
		goto out;
	printf("posted %zu conversions, %lu bad lines\n", n, bad);
	if (!no_wait && n > 0 &&
	    ctl_convert_wait(c, posted, n, CTL_CONVERT_WAIT_MS, &refused) != CTL_OK)
		goto out;
	rc = bad > 0 || refused > 0 ? CTL_BAD_INPUT : CTL_OK;
out:
	free(posted);
	ctl_input_close(&in);
	return rc;
}

int ctl_cmd_cancel(struct ctl_conn *c, const char *id)
{
	cJSON *root = cJSON_CreateObject();
	char *json = NULL;
	struct deal *d = NULL;
	struct err e;
	int rc = CTL_FAIL;

	if (root == NULL || cJSON_AddStringToObject(root, "id", id) == NULL ||
	    cJSON_AddTrueToObject(root, "cancel") == NULL ||
	    (json = cJSON_PrintUnformatted(root)) == NULL) {
		fprintf(stderr, "dealpushctl: out of memory\n");
		goto out;
	}
	/* The same parser as the daemon's, so the cancel is never dead-lettered. */
	d = deal_parse(json, strlen(json), clock_now(), &e);
	if (d == NULL) {
		fprintf(stderr, "dealpushctl: %s\n", e.msg);
		rc = CTL_BAD_INPUT;
		goto out;
	}
	if (xadd_json(c, "deals", "deal", json, strlen(json), "published", d->id, NULL) < 0)
		goto out;
	rc = CTL_OK;
out:
	deal_free(d);
	free(json);
	cJSON_Delete(root);
	return rc;
}

int ctl_cmd_pause(struct ctl_conn *c, int on, const char *reason)
{
	char since[24], at[40];
	long long ms = (long long)clock_now_ms();
	redisReply *r;

	if (!pause_reason_ok(reason)) {
		fprintf(stderr, "dealpushctl: the reason must be at most %d bytes of UTF-8 "
		    "text without control characters\n", PAUSE_REASON_MAX);
		return CTL_BAD_INPUT;
	}
	snprintf(since, sizeof(since), "%lld", ms);
	r = ctl_command(c, "HSET %s state %s since %s reason %s", PAUSE_KEY,
	    on ? "paused" : "running", since, reason);
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "dealpushctl: redis: HSET %s: %s\n", PAUSE_KEY,
		    r != NULL ? r->str : ctl_errstr(c));
		freeReplyObject(r);
		return CTL_FAIL;
	}
	freeReplyObject(r);
	printf("%s at %s; every notifier follows within %d ms\n", on ? "paused" :
	    "resumed", time_format_rfc3339(ms / 1000, at, sizeof(at)), PAUSE_POLL_MS);
	return CTL_OK;
}

int ctl_cmd_pause_status(struct ctl_conn *c)
{
	redisReply *r = ctl_command(c, "HMGET %s state since reason", PAUSE_KEY);
	char at[40];
	int rc = CTL_FAIL;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
		fprintf(stderr, "dealpushctl: redis: HMGET %s: %s\n", PAUSE_KEY,
		    r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : ctl_errstr(c));
		goto out;
	}
	if (r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "paused") == 0) {
		long long ms = r->element[1]->type == REDIS_REPLY_STRING ?
		    strtoll(r->element[1]->str, NULL, 10) : 0;

		printf("paused since %s%s%s\n", time_format_rfc3339(ms / 1000, at,
		    sizeof(at)), r->element[2]->type == REDIS_REPLY_STRING &&
		    r->element[2]->len > 0 ? ": " : "", r->element[2]->type ==
		    REDIS_REPLY_STRING ? r->element[2]->str : "");
	} else {
		printf("running\n");
	}
	rc = CTL_OK;
out:
	freeReplyObject(r);
	return rc;
}

/* The ids of a test send: a comma-separated list, or the list NAME stored with
 * testlist set (@NAME). Into ids (each checked); CTL_OK, CTL_BAD_INPUT or CTL_FAIL. */
static int test_ids(struct ctl_conn *c, const char *to, cJSON *ids)
{
	redisReply *r = NULL;
	char *copy, *tok, *save = NULL;
	int rc = CTL_BAD_INPUT, n = 0;

	if (to[0] == '@') {
		r = ctl_command(c, "HGET %s %s", CTL_TESTLISTS_KEY, to + 1);
		if (r == NULL || r->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "dealpushctl: redis: HGET %s: %s\n", CTL_TESTLISTS_KEY,
			    r != NULL ? r->str : ctl_errstr(c));
			freeReplyObject(r);
			return CTL_FAIL;
		}
		if (r->type != REDIS_REPLY_STRING) {
			fprintf(stderr, "dealpushctl: no test list '%s' (dealpushctl testlist "
			    "set %s ID,ID...)\n", to + 1, to + 1);
			freeReplyObject(r);
			return CTL_BAD_INPUT;
		}
		to = r->str;
	}
	if ((copy = strdup(to)) == NULL) {
		freeReplyObject(r);
		return CTL_FAIL;
	}
	for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		if (!deal_id_is_valid(tok) || ++n > DEAL_TEST_TO_MAX) {
			fprintf(stderr, "dealpushctl: test recipients: %s\n", n > DEAL_TEST_TO_MAX ?
			    "more than 20 subscribers" : "not a subscriber id (printable, no "
			    "space)");
			goto out;
		}
		cJSON_AddItemToArray(ids, cJSON_CreateString(tok));
	}
	if (n == 0) {
		fprintf(stderr, "dealpushctl: test recipients: none given\n");
		goto out;
	}
	rc = CTL_OK;
out:
	free(copy);
	freeReplyObject(r);
	return rc;
}

int ctl_cmd_test_send(struct ctl_conn *c, const char *path, const char *to)
{
	char *text = NULL, id[MODEL_ID_MAX + 1], *json = NULL;
	const cJSON *orig;
	cJSON *j = NULL, *ids;
	struct deal *d = NULL;
	struct err e;
	size_t len = 0;
	int rc = CTL_FAIL;

	if ((text = ctl_read_small_file(path, CTL_LINE_MAX, &len)) == NULL)
		return CTL_FAIL;
	if ((j = cJSON_ParseWithLength(text, len)) == NULL || !cJSON_IsObject(j) ||
	    !cJSON_IsString(orig = cJSON_GetObjectItemCaseSensitive(j, "id"))) {
		fprintf(stderr, "dealpushctl: %s: not a deal (one JSON object with an id)\n",
		    path);
		rc = CTL_BAD_INPUT;
		goto out;
	}
	/* its own id, so that its pushes and report stay apart from the deal's */
	snprintf(id, sizeof(id), "%.100s.test-%lld", orig->valuestring,
	    (long long)clock_now());
	cJSON_DeleteItemFromObjectCaseSensitive(j, "update");
	cJSON_DeleteItemFromObjectCaseSensitive(j, "quantity");
	cJSON_ReplaceItemInObjectCaseSensitive(j, "id", cJSON_CreateString(id));
	cJSON_DeleteItemFromObjectCaseSensitive(j, "campaign");
	cJSON_AddStringToObject(j, "campaign", "test");
	cJSON_DeleteItemFromObjectCaseSensitive(j, "test_to");
	if ((ids = cJSON_AddArrayToObject(j, "test_to")) == NULL)
		goto out;
	if ((rc = test_ids(c, to, ids)) != CTL_OK)
		goto out;
	rc = CTL_FAIL;
	if ((json = cJSON_PrintUnformatted(j)) == NULL)
		goto out;
	/* The daemon's own parser: what it would dead-letter is refused here. */
	if ((d = deal_parse(json, strlen(json), clock_now(), &e)) == NULL) {
		fprintf(stderr, "dealpushctl: %s: %s\n", path, e.msg);
		rc = CTL_BAD_INPUT;
		goto out;
	}
	if (xadd_json(c, "deals", "deal", json, strlen(json), "test send", d->id,
	    NULL) < 0)
		goto out;
	printf("to %zu subscribers; its report: dealpushctl report deal %s\n",
	    d->test_to.n, d->id);
	rc = CTL_OK;
out:
	deal_free(d);
	free(json);
	cJSON_Delete(j);
	free(text);
	return rc;
}

int ctl_cmd_testlist_set(struct ctl_conn *c, const char *name, const char *ids)
{
	cJSON *check = cJSON_CreateArray();
	redisReply *r;
	int rc;

	if (check == NULL)
		return CTL_FAIL;
	if (!deal_id_is_valid(name) || ids[0] == '@') {
		fprintf(stderr, "dealpushctl: testlist: '%s' is not a list name\n", name);
		cJSON_Delete(check);
		return CTL_BAD_INPUT;
	}
	rc = test_ids(c, ids, check);
	cJSON_Delete(check);
	if (rc != CTL_OK)
		return rc;
	r = ctl_command(c, "HSET %s %s %s", CTL_TESTLISTS_KEY, name, ids);
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "dealpushctl: redis: HSET %s: %s\n", CTL_TESTLISTS_KEY,
		    r != NULL ? r->str : ctl_errstr(c));
		freeReplyObject(r);
		return CTL_FAIL;
	}
	freeReplyObject(r);
	printf("test list %s: %s\n", name, ids);
	return CTL_OK;
}

int ctl_cmd_deal_confirm(struct ctl_conn *c, const char *id)
{
	char sha[41];
	const char *argv[] = { "EVALSHA", sha, "3", keys_global(KEYS_G_DEALS_DEAD), "deals",
		keys_global(KEYS_G_DEALS_CONFIRMED), id, CONFIRM_SCAN_MAX };
	redisReply *r;
	int rc = CTL_FAIL;

	if (!deal_id_is_valid(id)) {
		fprintf(stderr, "dealpushctl: \"%s\" is not a valid deal id\n", id);
		return CTL_BAD_INPUT;
	}
	if (ctl_conn_load_script(c, "deal_confirm", sha) < 0)
		return CTL_FAIL;
	r = ctl_command_argv(c, 8, argv, NULL);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
	    r->element[0]->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "dealpushctl: redis: deal_confirm: %s\n", r == NULL ?
		    ctl_errstr(c) : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		goto out;
	}
	if (strcmp(r->element[0]->str, "none") == 0) {
		fprintf(stderr, "dealpushctl: no deal '%s' held by the guards\n", id);
		rc = CTL_BAD_INPUT;
	} else if (strcmp(r->element[0]->str, "bad_payload") == 0) {
		fprintf(stderr, "dealpushctl: the held deal '%s' cannot be marked confirmed as "
		    "stored; publish it again with \"confirmed\": true\n", id);
		rc = CTL_BAD_INPUT;
	} else if (r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING) {
		printf("%s %s entry=%s\n", strcmp(r->element[0]->str, "ok") == 0 ?
		    "confirmed" : "confirmed before", id, r->element[1]->str);
		rc = CTL_OK;
	}
out:
	freeReplyObject(r);
	return rc;
}
