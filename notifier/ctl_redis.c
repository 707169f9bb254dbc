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
#include <time.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "convert.h"
#include "deal.h"
#include "err.h"
#include "keys.h"
#include "subscriber.h"

#include "ctl_int.h"

/* ---- commands ---- */

/*
 * The same script as the API's delete (admin_sub_del.lua, keys in ORDER SUB_KEYS), so
 * that a consent it removes moves consent:epoch and a push admitted before the delete
 * is checked again before it is sent.
 */
int ctl_cmd_subscribers_delete(redisContext *c, const char *id)
{
	char sha[41], keys[KEYS_SUB_NKEYS][KEYS_SHARD_MAX], nkeys[8];
	const char *argv[3 + KEYS_SUB_NKEYS + 1];
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
	snprintf(nkeys, sizeof(nkeys), "%d", KEYS_SUB_NKEYS);
	argv[argc++] = nkeys;
	(void)keys_sub_keys(keys_shard_of(id), keys);
	for (k = 0; k < KEYS_SUB_NKEYS; k++)
		argv[argc++] = keys[k];
	argv[argc++] = id;
	redisAppendCommandArgv(c, argc, argv, NULL);
	if (ctl_expect_reply(c, REDIS_REPLY_INTEGER, NULL, "delete", &r) < 0)
		return CTL_FAIL;
	if (r->integer == 0)
		printf("deleted %s (it was not stored)\n", id);
	else
		printf("deleted %s\n", id);
	rc = CTL_OK;
	freeReplyObject(r);
	return rc;
}

/* XADD stream * field <json>; prints "<verb> <id> entry=<stream id>". */
static int xadd_json(redisContext *c, const char *stream, const char *field,
    const char *json, size_t len, const char *verb, const char *id)
{
	redisReply *r = NULL;
	int rc = -1;

	r = redisCommand(c, "XADD %s * %s %b", stream, field, json, len);
	if (r == NULL) {
		fprintf(stderr, "dealpushctl: redis: XADD %s: %s\n", stream, c->errstr);
		goto out;
	}
	if (r->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "dealpushctl: redis: XADD %s: %s\n", stream,
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		goto out;
	}
	printf("%s %s entry=%s\n", verb, id, r->str);
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

int ctl_cmd_publish(redisContext *c, const char *path, int raw, long expires_in)
{
	struct ctl_input in;
	unsigned long published = 0, bad = 0;
	int rc = CTL_FAIL, r;

	if (ctl_input_open(&in, path) < 0)
		return CTL_FAIL;
	while ((r = ctl_input_next_entry(&in, &bad)) == 1) {
		int64_t now = (int64_t)time(NULL);
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
		sent = xadd_json(c, "deals", "deal", json, len, "published", id);
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
int ctl_cmd_convert(redisContext *c, const char *path)
{
	struct ctl_input in;
	unsigned long posted = 0, bad = 0;
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
		if (xadd_json(c, "conversions", "conversion", in.buf, in.len, "posted order",
		    conv.order_id[0] != '\0' ? conv.order_id : "-") < 0)
			goto out;
		posted++;
	}
	if (r < 0)
		goto out;
	printf("posted %lu conversions, %lu bad lines\n", posted, bad);
	rc = bad > 0 ? CTL_BAD_INPUT : CTL_OK;
out:
	ctl_input_close(&in);
	return rc;
}

int ctl_cmd_cancel(redisContext *c, const char *id)
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
	d = deal_parse(json, strlen(json), (int64_t)time(NULL), &e);
	if (d == NULL) {
		fprintf(stderr, "dealpushctl: %s\n", e.msg);
		rc = CTL_BAD_INPUT;
		goto out;
	}
	if (xadd_json(c, "deals", "deal", json, strlen(json), "published", d->id) < 0)
		goto out;
	rc = CTL_OK;
out:
	deal_free(d);
	free(json);
	cJSON_Delete(root);
	return rc;
}
