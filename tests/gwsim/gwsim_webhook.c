/*
 * gwsim_webhook.c: POST /webhook, the signed JSON webhook receiver, and its
 * Idempotency-Key store.
 *
 * Verifies X-Dealpush-Signature (v1 = hex HMAC-SHA256 over "<timestamp>.<body>") in
 * constant time, requires a JSON object body and answers a repeated Idempotency-Key
 * with the first answer. It must never accept an unsigned request, never compare a
 * signature with memcmp, and never let the key store grow past GWSIM_IDEM_MAX.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gwsim.h"

#define IDEM_BUCKETS 65536

struct gwsim_idem_entry {
	struct gwsim_idem_entry *next;
	char *key;
	char id[48];
};

struct gwsim_idem {
	struct gwsim_idem_entry **buckets;
	size_t n;
};

struct gwsim_idem *gwsim_idem_new(void)
{
	struct gwsim_idem *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->buckets = calloc(IDEM_BUCKETS, sizeof(*s->buckets));
	if (s->buckets == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

void gwsim_idem_clear(struct gwsim_idem *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < IDEM_BUCKETS; i++) {
		while (s->buckets[i] != NULL) {
			struct gwsim_idem_entry *e = s->buckets[i];

			s->buckets[i] = e->next;
			free(e->key);
			free(e);
		}
	}
	s->n = 0;
}

void gwsim_idem_free(struct gwsim_idem *s)
{
	if (s == NULL)
		return;
	gwsim_idem_clear(s);
	free(s->buckets);
	free(s);
}

static size_t idem_hash(const char *key)
{
	uint64_t h = 1469598103934665603ULL;   /* FNV-1a */

	for (; *key; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ULL;
	return (size_t)(h % IDEM_BUCKETS);
}

/* The id first answered for key, or NULL. Borrowed from the store. */
static const char *idem_find(const struct gwsim_idem *s, const char *key)
{
	const struct gwsim_idem_entry *e;

	for (e = s->buckets[idem_hash(key)]; e != NULL; e = e->next)
		if (strcmp(e->key, key) == 0)
			return e->id;
	return NULL;
}

/* Remembers key → id; a full store is emptied first. Out of memory forgets it. */
static void idem_put(struct gwsim_idem *s, const char *key, const char *id)
{
	struct gwsim_idem_entry *e;
	size_t b = idem_hash(key);

	if (s->n >= GWSIM_IDEM_MAX)
		gwsim_idem_clear(s);
	e = calloc(1, sizeof(*e));
	if (e == NULL || (e->key = strdup(key)) == NULL) {
		free(e);
		return;
	}
	snprintf(e->id, sizeof(e->id), "%s", id);
	e->next = s->buckets[b];
	s->buckets[b] = e;
	s->n++;
}

static cJSON *webhook_error(const char *msg)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || !cJSON_AddStringToObject(o, "error", msg)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *webhook_down_json(struct gwsim_call *c)
{
	(void)c;
	return webhook_error("service unavailable");
}

static cJSON *webhook_ok(const char *id)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || !cJSON_AddTrueToObject(o, "ok") ||
	    !cJSON_AddStringToObject(o, "id", id)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* 1 when sig is "v1=" + lowercase hex HMAC-SHA256(secret, ts "." body). */
static int webhook_sig_ok(const char *secret, const char *ts, const char *sig,
    const char *body, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	char want[2 * EVP_MAX_MD_SIZE + 1];
	size_t tslen = strlen(ts);
	unsigned char *msg;
	int ok;

	if (strncmp(sig, "v1=", 3) != 0)
		return 0;
	sig += 3;
	msg = malloc(tslen + 1 + len);
	if (msg == NULL)
		return 0;
	memcpy(msg, ts, tslen);
	msg[tslen] = '.';
	memcpy(msg + tslen + 1, body, len);
	ok = HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, tslen + 1 + len, md,
	    &mdlen) != NULL;
	free(msg);
	if (!ok)
		return 0;
	for (i = 0; i < mdlen; i++) {
		want[2 * i] = hex[md[i] >> 4];
		want[2 * i + 1] = hex[md[i] & 15];
	}
	want[2 * mdlen] = '\0';
	return strlen(sig) == 2 * (size_t)mdlen &&
	    CRYPTO_memcmp(sig, want, 2 * (size_t)mdlen) == 0;
}

/* Logs what the body says about the recipient and push, when it is a JSON object. */
static void webhook_log_fields(struct gwsim_call *c, const cJSON *json)
{
	const cJSON *to = cJSON_GetObjectItemCaseSensitive(json, "to");
	const cJSON *push = cJSON_GetObjectItemCaseSensitive(json, "push_id");
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(json, "text");

	if (!cJSON_IsString(push))
		push = cJSON_GetObjectItemCaseSensitive(json, "push");
	if (cJSON_IsString(to))
		gwsim_log_str(c, "to", to->valuestring);
	if (cJSON_IsString(push)) {
		gwsim_log_str(c, "push", push->valuestring);
		c->landed_ms = gwsim_leading_ms(push->valuestring);
		gwsim_log_int(c, "landed_ms", c->landed_ms, c->landed_ms < 0);
	}
	if (cJSON_IsString(to))
		c->print_to = strdup(to->valuestring);
	if (cJSON_IsString(text))
		c->print_text = strdup(text->valuestring);
}

/* After the signature: duplicates, an injected answer for the body's "to", the fail
 * rate, or a new 200. */
static void webhook_answer(struct gwsim_call *c, const char *key, const cJSON *json)
{
	const char *seen = idem_find(c->sim->idem, key);
	const cJSON *to = cJSON_GetObjectItemCaseSensitive(json, "to");
	long answer = gwsim_answer_for(c->sim, cJSON_IsString(to) ? to->valuestring : NULL);
	long code;
	int status;
	char id[48];

	if (seen != NULL) {
		gwsim_log_bool(c, "duplicate", 1);
		gwsim_log_str(c, "sid", seen);
		c->channel = NULL;   /* already printed the first time */
		gwsim_reply_json(c, 200, webhook_ok(seen), NULL, 1);
		return;
	}
	if (answer != 0 && gwsim_answer_map(answer, &status, &code) == 0) {
		c->fault = "answer";
		c->code = answer;
		if (status == 429)
			gwsim_header(c, "Retry-After", "1");
		gwsim_reply_json(c, status, webhook_error("simulated error"), NULL, 1);
		return;
	}
	if (gwsim_fault_fail(c->sim)) {
		c->fault = "fail_rate";
		gwsim_reply_json(c, 500, webhook_error("internal error"), NULL, 1);
		return;
	}
	gwsim_new_sid(c->sim, "wh_", id, sizeof(id));
	idem_put(c->sim->idem, key, id);
	gwsim_log_str(c, "sid", id);
	gwsim_reply_json(c, 200, webhook_ok(id), NULL, 1);
}

/* Checks the headers and signature, then the body; answers the call. */
static void webhook_check(struct gwsim_call *c, const char *body, size_t len,
    const cJSON *json)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(c->req);
	const char *key = evhttp_find_header(h, "Idempotency-Key");
	const char *ts = evhttp_find_header(h, "X-Dealpush-Timestamp");
	const char *sig = evhttp_find_header(h, "X-Dealpush-Signature");

	c->auth_ok = key != NULL && key[0] != '\0' && gwsim_is_digits(ts, 1, 19) &&
	    sig != NULL && webhook_sig_ok(c->sim->webhook_secret, ts, sig, body, len);
	if (!c->auth_ok)
		gwsim_reply_json(c, 401, webhook_error(key == NULL || key[0] == '\0' ?
		    "missing Idempotency-Key" : "bad or missing signature"), NULL, 1);
	else if (strlen(key) > GWSIM_IDEM_KEY_MAX)
		gwsim_reply_json(c, 400, webhook_error("Idempotency-Key too long"), NULL, 1);
	else if (!cJSON_IsObject(json))
		gwsim_reply_json(c, 400, webhook_error("body must be a JSON object"), NULL, 1);
	else
		webhook_answer(c, key, json);
}

void gwsim_webhook_handle(struct gwsim *sim, struct evhttp_request *req)
{
	struct gwsim_call c;
	cJSON *json = NULL;
	char *body = NULL;
	size_t len = 0;
	int rc;

	gwsim_call_init(&c, sim, req, "webhook");
	c.channel = "hook";
	gwsim_log_str(&c, "idempotency_key", evhttp_find_header(
	    evhttp_request_get_input_headers(req), "Idempotency-Key"));
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		gwsim_reply_json(&c, 405, webhook_error("method not allowed"), NULL, 1);
		return;
	}
	rc = gwsim_body(req, &body, &len);
	if (rc == 0) {
		gwsim_log_str(&c, "body", body);
		json = cJSON_ParseWithLength(body, len);
		webhook_log_fields(&c, json);
	}
	if (gwsim_fault_gate(&c, webhook_down_json))
		goto out;
	if (rc == 1)
		gwsim_reply_json(&c, 413, webhook_error("body exceeds 64 KiB"), NULL, 1);
	else if (rc != 0)
		gwsim_reply_json(&c, 500, NULL, NULL, 0);
	else
		webhook_check(&c, body, len, json);
out:
	cJSON_Delete(json);
	free(body);
}
