/*
 * privacy_erase.c: the steps of an erasure (stage: http; part of privacy.c, whose
 * header says the order and why): the proof, the subscriber, the push history, the
 * streams, the change feed after the mirrors' wait, then the answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "app.h"
#include "audit.h"
#include "clock.h"
#include "config.h"
#include "http.h"
#include "keys.h"
#include "phoneix.h"
#include "log.h"
#include "model.h"
#include "privacy_int.h"
#include "rconn.h"
#include "scripts.h"

/* ---- erase --------------------------------------------------------------------- */

static void erase_deals(struct priv_op *op);

/* 1 when op goes on after a step's reply (ok: the reply is what the step wants);
 * else op has ended: its client is gone, or it failed at what. */
static int
priv_step(struct priv_op *op, int ok, const char *what)
{
	if (op->w.r == NULL) {
		priv_op_done(op);
		return 0;
	}
	if (!ok) {
		priv_op_fail(op, what);
		return 0;
	}
	return 1;
}

static void
on_erased_sub(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct priv_op *op = arg;

	(void)rc;
	if (!priv_step(op, reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
	    reply->elements == 1 && reply->element[0]->type == REDIS_REPLY_INTEGER,
	    "erasing the subscriber"))
		return;
	op->was_stored = reply->element[0]->integer == 1;
	op->at = 0;
	erase_deals(op);
}

static void
erase_sub_script(struct priv_op *op)
{
	char sk[KEYS_SUB_NKEYS][KEYS_SHARD_MAX];
	char texts[KEYS_SHARD_MAX + MODEL_ID_MAX], now[24], behav[KEYS_SHARD_MAX];
	char last[CH_COUNT][KEYS_SHARD_MAX + MODEL_ID_MAX + 16];
	const char **args = NULL;
	char (*caps)[KEYS_SHARD_MAX + 2 * MODEL_TEXT_MAX + MODEL_ID_MAX + 16] = NULL;
	size_t ncaps = 2 * op->camps.n + op->deals.n, n = 0, i, c = 0;
	int rc = -1;

	caps = calloc(ncaps + 1, sizeof(*caps));
	args = calloc(8 + ncaps + CH_COUNT + 3, sizeof(*args));
	if (caps == NULL || args == NULL || keys_sub_keys(op->shard, sk) < 0 ||
	    keys_texts(op->id, texts, sizeof(texts)) < 0 ||
	    keys_shard_key(op->shard, KEYS_BEHAVIOUR, behav, sizeof(behav)) < 0)
		goto out;
	/* ORDER ERASE_SUB_KEYS: the header of erase_sub.lua. */
	for (i = 0; i < 6; i++)
		args[n++] = sk[i];
	args[n++] = texts;
	args[n++] = behav;
	for (i = 0; i < op->camps.n; i++) {
		if (keys_camp(op->camps.v[i], op->id, caps[c], sizeof(caps[c])) >= 0)
			args[n++] = caps[c++];
		if (keys_capcamp(op->camps.v[i], op->id, caps[c], sizeof(caps[c])) >= 0)
			args[n++] = caps[c++];
	}
	for (i = 0; i < op->deals.n; i++)
		if (keys_capdeal(op->deals.v[i], op->id, caps[c], sizeof(caps[c])) >= 0)
			args[n++] = caps[c++];
	/* The deal of the last push per channel (lastsent:<ch>:<id>), for the replies. */
	for (i = 0; i < CH_COUNT; i++)
		if (keys_lastsent(op->id, (enum channel)i, last[i], sizeof(last[i])) > 0)
			args[n++] = last[i];
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	args[n++] = op->id;
	args[n++] = op->phone;
	args[n++] = now;
	rc = script_call_named(op->pv->app->cmd, "erase_sub", (int)(n - 3), (int)n, args,
	    NULL, on_erased_sub, op);
out:
	free(caps);
	free(args);
	if (rc < 0)
		priv_op_fail(op, "erasing the subscriber");
}

static void erase_unindex(struct priv_op *op, enum phoneix_kind kind);

/* The id is off the phone index of its number or X id: the next, or the
 * subscriber's own data. */
static void
on_unindexed(struct rconn *rc, struct redisReply *reply, int durable, void *arg)
{
	struct priv_op *op = arg;

	(void)rc;
	if (!priv_step(op, reply != NULL && reply->type == REDIS_REPLY_INTEGER && durable,
	    "taking the id off the phone index"))
		return;
	if (op->unindexing == PHONEIX_PHONE)
		erase_unindex(op, PHONEIX_DM);
	else
		erase_sub_script(op);
}

/* phone_index.lua "drop" of the id at its number (kind PHONEIX_PHONE) or X id, when
 * it has one: the index names no erased id; then the next. */
static void
erase_unindex(struct priv_op *op, enum phoneix_kind kind)
{
	const struct config *cfg = op->pv->app->cfg;
	const char *value = kind == PHONEIX_PHONE ? op->phone : op->dm;
	struct durable_config wait;

	if (value[0] == '\0') {
		if (kind == PHONEIX_PHONE)
			erase_unindex(op, PHONEIX_DM);
		else
			erase_sub_script(op);
		return;
	}
	wait.replicas = cfg->wait_replicas;
	wait.timeout_ms = cfg->wait_timeout_ms;
	op->unindexing = kind;
	if (phoneix_call(op->pv->app->cmd, &wait, kind, "drop", value, op->id,
	    on_unindexed, op) < 0)
		priv_op_fail(op, "taking the id off the phone index");
}

/* The number is on the suppression list: off the phone index next. */
static void
on_suppressed(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct priv_op *op = arg;

	(void)rc;
	if (!priv_step(op, reply != NULL && reply->type != REDIS_REPLY_ERROR,
	    "keeping the number on the suppression list"))
		return;
	erase_unindex(op, PHONEIX_PHONE);
}

/* The number first on the suppression list (a key of its own slot; early is safe:
 * it only keeps consent out), so that a later import of it is kept out
 * (lib/subput.lua) until it opts in again; then erase_sub.lua on the subscriber's
 * shard. A failure between them leaves the subscriber stored: the erasure is asked
 * again, and both run again. */
static void
erase_sub(struct priv_op *op)
{
	char v[64], key[KEYS_SHARD_MAX];
	const char *args[4] = { "HSET", key, op->phone, v };

	if (op->phone[0] == '\0') {
		erase_unindex(op, PHONEIX_DM);
		return;
	}
	snprintf(v, sizeof(v), "%lld\terased\tdata_rights", (long long)clock_now());
	if (keys_phone(op->phone, KEYS_PH_SUPPRESSED, key, sizeof(key)) < 0 ||
	    rconn_argv(op->pv->app->cmd, on_suppressed, op, 0, 4, args, NULL) < 0)
		priv_op_fail(op, "keeping the number on the suppression list");
}

static void
on_proof(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct priv_op *op = arg;

	(void)rc;
	if (!priv_step(op, reply != NULL && reply->type == REDIS_REPLY_ARRAY,
	    "keeping the proof of consent"))
		return;
	erase_sub(op);
}

/* The proof first (while the record is there to be kept), then the subscriber. */
void
priv_erase_start(struct priv_op *op)
{
	char id_hash[65], phone_hash[65], proof[KEYS_SHARD_MAX + 80], now[24], keep[24];
	const char *args[6];

	if (op->record == NULL && op->stored == NULL) {
		erase_sub(op);                  /* erased before: only the history is left */
		return;
	}
	priv_sha256_hex(op->id, id_hash);
	if (op->phone[0] != '\0')
		priv_sha256_hex(op->phone, phone_hash);
	else
		phone_hash[0] = '\0';
	/* Named by the number's hash (the id's without one), in the slot of that hash. */
	if (keys_proof(keys_shard_of(phone_hash[0] ? phone_hash : id_hash),
	    phone_hash[0] ? phone_hash : id_hash, proof, sizeof(proof)) < 0) {
		priv_op_fail(op, "keeping the proof of consent");
		return;
	}
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	snprintf(keep, sizeof(keep), "%lld",
	    (long long)op->pv->app->cfg->proof_retention_days * 86400LL);
	args[0] = proof;
	args[1] = id_hash;
	args[2] = phone_hash;
	args[3] = now;
	args[4] = op->record != NULL ? op->record : "";
	args[5] = keep;
	if (script_call_named(op->pv->app->cmd, "erase_proof", 1, 6, args, NULL, on_proof,
	    op) < 0)
		priv_op_fail(op, "keeping the proof of consent");
}

static void
on_erased_part(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct priv_op *op = arg;

	(void)rc;
	if (!priv_step(op, reply != NULL && reply->type != REDIS_REPLY_ERROR,
	    "erasing the push history"))
		return;
	if (op->at < op->deals.n + op->codes.n + op->pushes.n)
		erase_deals(op);
	else
		priv_erase_log(op);
}

/* One erase_deals.lua call: the next codepush / clicked keys, else the next deals.
 * op->at counts what was sent: codes, then pushes, then deals. The keys found
 * through another key go before it: a codepush:<code> is found only through the
 * code:<deal> field of the push that held the code, so the codes go before the
 * per-deal hashes; then an erasure that failed half-way still finds, when asked
 * again, every key it did not erase (the pushes come from the log, erased last). */
static void
erase_deals(struct priv_op *op)
{
	size_t nd = 0, nk = 0, n = 0, i, nref = op->codes.n + op->pushes.n;
	size_t total = nref + op->deals.n;
	char (*keys)[PRIV_KEY_MAX];
	const char **args;
	char snd[16], snc[16];
	int rc = -1;

	if (op->at >= total) {
		priv_erase_log(op);
		return;
	}
	keys = calloc(PRIV_KEYS_PER_CALL + 8 * PRIV_DEALS_PER_CALL, sizeof(*keys));
	args = calloc(PRIV_KEYS_PER_CALL + 8 * PRIV_DEALS_PER_CALL + 3, sizeof(*args));
	if (keys == NULL || args == NULL)
		goto out;
	if (op->at < nref) {
		for (; op->at < nref && nk < PRIV_KEYS_PER_CALL; op->at++, nk++) {
			size_t k = op->at;
			int r = k < op->codes.n ? keys_per(op->shard, KEYS_CODEPUSH,
			    op->codes.v[k], keys[n], sizeof(keys[n])) : keys_clicked(op->shard,
			    op->pushes.v[k - op->codes.n], keys[n], sizeof(keys[n]));

			if (r < 0)
				goto out;
			args[n] = keys[n];
			n++;
		}
	} else {
		static const enum keys_per per[8] = { KEYS_PUSH, KEYS_PUSHINFO, KEYS_DELIVERY,
		    KEYS_PUSHLINE, KEYS_CODE, KEYS_REDELIVERED, KEYS_RETEXT, KEYS_HOLDOUT };

		/* ORDER ERASE_DEAL_KEYS: the header of erase_deals.lua. */
		for (; op->at < total && nd < PRIV_DEALS_PER_CALL; op->at++, nd++)
			for (i = 0; i < 8; i++) {
				if (keys_per(op->shard, per[i], op->deals.v[op->at - nref],
				    keys[n], sizeof(keys[n])) < 0)
					goto out;
				args[n] = keys[n];
				n++;
			}
	}
	snprintf(snd, sizeof(snd), "%zu", nd);
	snprintf(snc, sizeof(snc), "%zu", nk);
	args[n] = op->id;
	args[n + 1] = snd;
	args[n + 2] = snc;
	rc = script_call_named(op->pv->app->cmd, "erase_deals", (int)n, (int)n + 3, args,
	    NULL, on_erased_part, op);
out:
	free(keys);
	free(args);
	if (rc < 0)
		priv_op_fail(op, "erasing the push history");
}

static void
erased_answer(struct priv_op *op)
{
	cJSON *j = cJSON_CreateObject();

	if (j == NULL) {
		http_error(op->w.r, 500, NULL, "out of memory");
		priv_op_done(op);
		return;
	}
	cJSON_AddStringToObject(j, "id", op->id);
	cJSON_AddBoolToObject(j, "erased", 1);
	cJSON_AddBoolToObject(j, "was_stored", op->was_stored);
	cJSON_AddNumberToObject(j, "pushes", (double)op->scan[SCAN_LOG].entries.n);
	cJSON_AddNumberToObject(j, "deals", (double)op->deals.n);
	cJSON_AddNumberToObject(j, "proof_kept_days",
	    (double)op->pv->app->cfg->proof_retention_days);
	log_info("event=subscriber_erased was_stored=%d pushes=%zu deals=%zu",
	    op->was_stored, op->scan[SCAN_LOG].entries.n, op->deals.n);
	/* The audit names the erased subscriber by a hash only: the audit's earlier
	 * entries about them are gone with the rest. */
	{
		char h[65], name[80];

		priv_sha256_hex(op->id, h);
		snprintf(name, sizeof(name), "sha256:%.16s", h);
		audit_record(op->pv->app->cmd, http_req_principal(op->w.r),
		    "subscribers.erase", name, NULL, "{\"erased\":true}");
	}
	http_reply_json(op->w.r, 200, j);
	priv_op_done(op);
}

static void
on_xdel(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct priv_op *op = arg;

	(void)rc;
	if (!priv_step(op, reply != NULL && reply->type == REDIS_REPLY_INTEGER,
	    "erasing the push log"))
		return;
	priv_erase_log(op);
}

static void
on_wait(evutil_socket_t fd, short what, void *arg)
{
	struct priv_op *op = arg;

	(void)fd;
	(void)what;
	if (op->w.r == NULL) {
		priv_op_done(op);
		return;
	}
	op->si = SCAN_CHANGES;
	op->xi = SCAN_CHANGES;
	op->at = 0;
	snprintf(op->cursor, sizeof(op->cursor), "-");
	priv_scan_next(op);
}

/* XDEL of the next matching entries of each walked stream in turn (op->xi, op->at
 * counting within it); the answer after the last. */
void
priv_erase_log(struct priv_op *op)
{
	const char *argv[2 + PRIV_XDEL_PER_CALL];
	struct priv_scan *sc;
	size_t n = 0;

	if (!op->trimming) {
		op->trimming = 1;               /* the history is erased: the streams now */
		op->xi = 0;
		op->at = 0;
	}
	while (op->xi < SCANS && op->at >= op->scan[op->xi].entries.n) {
		op->xi++;
		op->at = 0;
	}
	if (op->xi == SCANS && !op->final) {
		struct timeval tv = { PRIV_MIRROR_WAIT_MS / 1000,
		    (PRIV_MIRROR_WAIT_MS % 1000) * 1000 };

		/* The change feed last, once the mirrors have read the "del". */
		op->final = 1;
		snprintf(op->scan[SCAN_CHANGES].value, sizeof(op->scan[SCAN_CHANGES].value),
		    "%s", op->id);
		if ((op->wait = evtimer_new(op->pv->app->base, on_wait, op)) == NULL ||
		    evtimer_add(op->wait, &tv) < 0)
			priv_op_fail(op, "waiting for the mirrors");
		return;
	}
	if (op->xi == SCANS) {
		erased_answer(op);
		return;
	}
	sc = &op->scan[op->xi];
	argv[n++] = "XDEL";
	argv[n++] = sc->key;
	for (; op->at < sc->entries.n && n < 2 + PRIV_XDEL_PER_CALL; op->at++)
		argv[n++] = sc->entries.v[op->at];
	if (rconn_argv(op->pv->app->cmd, on_xdel, op, 0, (int)n, argv, NULL) < 0)
		priv_op_fail(op, "erasing the entries of the streams");
}
