/*
 * hooks_inbound.c: inbound messages (stage: http): POST /hooks/twilio/inbound (SMS,
 * Twilio-signed) and POST /hooks/inbound/<channel> (a DM channel, HMAC-signed).
 * keywords.c decides what a text asks for; hook_consent.lua opts the senders out or in,
 * or keeps any other message on the replies stream; an SMS opt-out gets one
 * confirmation text. It must never change anything for a request whose signature did
 * not verify, and never answer an opt-out before the script that revoked consent
 * succeeded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "app.h"
#include "clock.h"
#include "config.h"
#include "deal.h"
#include "gw.h"
#include "hooks.h"
#include "hooks_int.h"
#include "keys.h"
#include "http.h"
#include "jsonv.h"
#include "keywords.h"
#include "log.h"
#include "model.h"
#include "signup.h"
#include "rconn.h"
#include "scripts.h"
#include "subscriber.h"
#include "substore.h"
#include "timefmt.h"

/* ---- opt-out / opt-in scripts -------------------------------------------------- */

/* Reads hook_consent.lua's { found, changed, confirm, duplicate }. Returns 0 or -1. */
static int
consent_result(const redisReply *reply, long long out[4])
{
	size_t i;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4)
		return -1;
	for (i = 0; i < 4; i++) {
		if (reply->element[i]->type != REDIS_REPLY_INTEGER)
			return -1;
		out[i] = reply->element[i]->integer;
	}
	return 0;
}

static const char *
reply_error(const redisReply *reply)
{
	if (reply == NULL)
		return "no reply";
	return reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply";
}

/* ---- POST /hooks/twilio/inbound ------------------------------------------------ */

static void
on_confirm_sent(void *arg, const struct gw_result *res, int cancelled)
{
	(void)arg;
	if (cancelled)
		log_warnx("event=optout_confirm_failed err=cancelled");
	else if (res->outcome != GW_SENT)
		log_warnx("event=optout_confirm_failed http_status=%d code=%d err=\"%s\"",
		    res->http_status, res->provider_code, res->detail);
	else
		log_info("event=optout_confirm_sent provider_id=%s", res->provider_id);
}

/* Sends the one confirmation text of an opt-out to phone (best effort, logged), in
 * the language of the keyword (loc, -1: none said) or else of the number's
 * subscribers. */
void
hooks_confirm_send(struct hooks *h, const char *phone, int loc)
{
	struct gw_message m;
	struct err err;
	char push[48], masked[32], text[SIGNUP_TEXT_MAX];
	int64_t now = clock_now();

	log_mask_phone(phone, masked, sizeof(masked));
	if (h->confirm_gw == NULL) {
		log_warnx("event=optout_confirm_failed to=%s err=\"no twilio sms gateway\"",
		    masked);
		return;
	}
	snprintf(push, sizeof(push), HOOKS_CONFIRM_PREFIX "%lld", (long long)clock_now_ms());
	memset(&m, 0, sizeof(m));
	m.push_id = push;
	m.to = phone;
	if (loc < 0)
		loc = hooks_phone_locale(h, phone);
	if (signup_text(ST_OPTOUT_ACK, loc < 0 ? SL_EN : (enum signup_locale)loc,
	    &h->texts, text, sizeof(text)) < 0)
		snprintf(text, sizeof(text), "%s", HOOKS_CONFIRM_TEXT);
	m.text = text;
	m.now = now;
	m.expires_at = now + 3600;
	err_clear(&err);
	if (gw_send(h->confirm_gw, &m, on_confirm_sent, NULL, &err) < 0)
		log_warnx("event=optout_confirm_failed to=%s err=\"%s\"", masked, err.msg);
}

void
hooks_twiml(struct http_req *r, const char *message)
{
	char buf[2048];
	size_t n = 0;
	const char *p;

	if (message == NULL) {
		http_reply(r, 200, HOOKS_TWIML_CT, HOOKS_TWIML_EMPTY,
		    strlen(HOOKS_TWIML_EMPTY));
		return;
	}
	/* Our texts hold '&' ("Msg & data rates") and the operator's program name and
	 * terms URL may hold '<' or '>': escaped as element text (quotes need not be).
	 * At most 5 bytes per byte of a text of SIGNUP_TEXT_MAX fits. */
	n = (size_t)snprintf(buf, sizeof(buf), "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	    "<Response><Message>");
	for (p = message; *p != '\0' && n + 16 < sizeof(buf); p++) {
		const char *e = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;" :
		    NULL;

		if (e != NULL) {
			memcpy(buf + n, e, strlen(e));
			n += strlen(e);
		} else {
			buf[n++] = *p;
		}
	}
	n += (size_t)snprintf(buf + n, sizeof(buf) - n, "</Message></Response>");
	http_reply(r, 200, HOOKS_TWIML_CT, buf, n);
}

void
hooks_answer_text(struct hooks *h, struct http_req *r, enum signup_text t,
    enum signup_locale loc)
{
	char text[SIGNUP_TEXT_MAX];

	hooks_twiml(r, signup_text(t, loc, &h->texts, text, sizeof(text)) < 0 ? NULL :
	    text);
}

static void
on_sms_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct hooks_op *op = arg;
	struct hooks *h = op->h;
	struct http_req *r = op->r;
	char masked[32], from[sizeof(op->from)];
	enum kw_kind kw = op->kw;
	int loc = op->locale;
	long long res[4];

	(void)rc;
	memcpy(from, op->from, sizeof(from));
	hooks_op_free(op);
	if (r == NULL)
		return;
	log_mask_phone(from, masked, sizeof(masked));
	if (consent_result(reply, res) < 0) {
		/* Not answered 2xx: Twilio tries again, and the script is idempotent. */
		log_warnx("event=hook_inbound_failed channel=sms from=%s err=\"%s\"", masked,
		    reply_error(reply));
		http_error(r, 503, NULL, "try again later");
		return;
	}
	if (res[3] == 1)
		hooks_count(h, "inbound:duplicate");
	else if (res[0] == 0 && kw != KW_NONE && h != NULL) {
		log_warnx("event=hook_inbound_unknown channel=sms from=%s kind=%s", masked,
		    kw_kind_name(kw));
		hooks_count(h, "inbound:unknown_sender");
	}
	log_info("event=hook_inbound channel=sms from=%s kind=%s found=%lld changed=%lld "
	    "confirm=%lld duplicate=%lld", masked, kw_kind_name(kw), res[0], res[1], res[2],
	    res[3]);
	if (kw == KW_OPT_IN && res[1] > 0 && h != NULL) {
		/* Consent restored (not a replay, not already in force): say so. */
		if (loc < 0)
			loc = hooks_phone_locale(h, from);
		hooks_answer_text(h, r, ST_OPTIN_ACK, loc < 0 ? SL_EN :
		    (enum signup_locale)loc);
	} else {
		hooks_twiml(r, NULL);
	}
	if (res[2] == 1)
		hooks_confirm_send(h, from, loc);
}

/* A Twilio MessageSid we can keep as a key and a field: an id ("SM" and 32 hex
 * digits), else "" (no replay check for that message). */
static const char *
sid_or_empty(const char *sid)
{
	return deal_id_is_valid(sid) && strlen(sid) <= HOOKS_SID_MAX ? sid : "";
}

void
hooks_sms_consent(struct hooks *h, struct http_req *r, const struct hooks_sms *sms)
{
	struct hooks_op *op;
	struct hooks_msg m;
	const char *ids[HOOKS_IDS_MAX];
	char masked[32], ack[KEYS_SHARD_MAX];
	enum kw_kind kw = sms->kw;
	int n = 0;

	log_mask_phone(sms->from, masked, sizeof(masked));
	memset(&m, 0, sizeof(m));
	m.ch = "sms";
	m.label = sms->matched;
	m.match = "phone";
	m.value = sms->from;
	m.ack = "";
	m.sid = sms->sid;
	if (kw == KW_NONE) {
		/* Kept for review, never dropped: answered once it is on the stream. */
		m.label = sms->matched[0] != '\0' ? sms->matched : "no_keyword";
		m.text = sms->body;
		m.text_len = sms->blen > KW_BODY_MAX ? KW_BODY_MAX : sms->blen;
		/* Its subscriber, for the deal it answers (lastsent:); none is no error. */
		if (phone_is_e164(sms->from) && h->app->ss != NULL &&
		    substore_ready(h->app->ss) && (n = hooks_ix_lookup(h, HOOKS_IX_PHONE,
		    sms->from, ids, HOOKS_IDS_MAX)) < 0)
			n = 0;
	} else if (!phone_is_e164(sms->from)) {
		log_warnx("event=hook_inbound_unknown channel=sms from=%s kind=%s", masked,
		    kw_kind_name(kw));
		hooks_count(h, "inbound:unknown_sender");
		hooks_twiml(r, NULL);
		return;
	} else {
		if (h->app->ss == NULL || !substore_ready(h->app->ss)) {
			/* A miss here would be a missed opt-out: let Twilio try again. */
			http_error(r, 503, NULL, "subscribers not loaded yet");
			return;
		}
		if ((n = hooks_ix_lookup(h, HOOKS_IX_PHONE, sms->from, ids,
		    HOOKS_IDS_MAX)) < 0) {
			http_error(r, 503, NULL, "out of memory");
			return;
		}
		/* n may be 0: the phone index is read too (hooks_consent.c), and an
		 * opt-out of no subscriber still puts the number on the suppression
		 * list, an opt-in takes it off, and the sid is remembered. */
		if (keys_phone(sms->from, KEYS_PH_ACK, ack, sizeof(ack)) < 0) {
			http_error(r, 503, NULL, "try again later");
			return;
		}
		m.ack = ack;
	}
	if ((op = hooks_op_new(h, r, HOOKS_OP_SMS)) == NULL) {
		http_error(r, 503, NULL, "out of memory");
		return;
	}
	op->kw = kw;
	snprintf(op->from, sizeof(op->from), "%s", sms->from);
	op->locale = signup_label_locale(sms->matched);
	if (hooks_consent_call(op, &m, ids, (size_t)n, on_sms_reply) < 0) {
		hooks_op_free(op);
		log_warnx("event=hook_inbound_failed channel=sms from=%s "
		    "err=\"redis not connected\"", masked);
		http_error(r, 503, NULL, "try again later");
	}
}

/* A sign-up keyword or the "Y" of one, when sign-up is configured: 1 when handled
 * (r answered or waiting), 0 when the text is not one. */
static int
sms_signup(struct hooks *h, struct http_req *r, const struct hooks_sms *sms)
{
	const struct signup_keyword *k;

	if (h->nsignup == 0 || sms->kw == KW_OPT_OUT || sms->kw == KW_HELP ||
	    !phone_is_e164(sms->from))
		return 0;
	k = signup_match(h->signup, h->nsignup, sms->body, sms->blen);
	if (k == NULL && !signup_is_yes(sms->body, sms->blen))
		return 0;
	if (h->app->ss == NULL || !substore_ready(h->app->ss)) {
		/* The number's subscribers must be known before one is made for it. */
		http_error(r, 503, NULL, "subscribers not loaded yet");
		return 1;
	}
	if (k != NULL)
		hooks_signup_ask(h, r, sms->from, sms->sid, k);
	else if (hooks_signup_yes(h, r, sms) < 0)
		http_error(r, 503, NULL, "try again later");
	return 1;
}

void
hooks_on_sms_inbound(struct http_req *r, void *arg)
{
	struct hooks *h = arg;
	struct hooks_form f;
	struct hooks_sms sms;
	const char *from, *body;
	char masked[32];
	int loc;

	memset(&f, 0, sizeof(f));
	if (hooks_twilio_check(h, r, &f, "twilio_inbound") < 0)
		goto done;
	from = hooks_form_get(&f, "From");
	body = hooks_form_get(&f, "Body");
	if (from == NULL || body == NULL) {
		http_error(r, 400, from == NULL ? "From" : "Body", "%s is missing",
		    from == NULL ? "From" : "Body");
		goto done;
	}
	memset(&sms, 0, sizeof(sms));
	sms.from = from;
	sms.sid = sid_or_empty(hooks_form_get(&f, "MessageSid"));
	sms.body = body;
	sms.blen = strlen(body);
	sms.kw = kw_classify_with(&h->words, body, sms.blen, sms.matched,
	    sizeof(sms.matched));
	log_mask_phone(from, masked, sizeof(masked));
	if (sms.kw == KW_HELP) {
		log_info("event=hook_inbound channel=sms from=%s kind=help", masked);
		if ((loc = signup_label_locale(sms.matched)) < 0)
			loc = phone_is_e164(from) ? hooks_phone_locale(h, from) : -1;
		hooks_answer_text(h, r, ST_HELP, loc < 0 ? SL_EN : (enum signup_locale)loc);
		goto done;
	}
	if (!sms_signup(h, r, &sms))
		hooks_sms_consent(h, r, &sms);
done:
	free(f.buf);
}

/* ---- POST /hooks/inbound/<channel> --------------------------------------------- */

/* Checks X-Dealpush-Timestamp (within HOOKS_SKEW_MAX_S of our clock) and
 * X-Dealpush-Signature "v1=<hex HMAC-SHA256(secret, ts "." body)>" in constant time.
 * Returns 1 verified, 0 not (why says which), -1 crypto failure. */
static int
dm_verify(const char *secret, struct http_req *r, const char *body, size_t len,
    const char **why)
{
	static const char digits[] = "0123456789abcdef";
	const char *ts = http_header(r, "X-Dealpush-Timestamp");
	const char *sig = http_header(r, "X-Dealpush-Signature");
	unsigned char mac[EVP_MAX_MD_SIZE];
	char hex[65], given[65], *msg;
	size_t maclen = 0, tlen, i;
	long long t, now = (long long)clock_now();
	int rc = -1;

	*why = "no_signature";
	if (ts == NULL || sig == NULL)
		return 0;
	*why = "bad_timestamp";
	if (!hooks_all_digits(ts, 1, 12))
		return 0;
	t = strtoll(ts, NULL, 10);
	if (t < now - HOOKS_SKEW_MAX_S || t > now + HOOKS_SKEW_MAX_S)
		return 0;
	*why = "bad_signature";
	if (strncmp(sig, "v1=", 3) != 0 || strlen(sig + 3) != 64)
		return 0;
	for (i = 0; i < 64; i++) {
		int c = (unsigned char)sig[3 + i];

		if (hooks_hexval(c) < 0)
			return 0;
		given[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
	}
	given[64] = '\0';
	tlen = strlen(ts);
	if ((msg = malloc(tlen + 1 + len + 1)) == NULL)
		return -1;
	memcpy(msg, ts, tlen);
	msg[tlen] = '.';
	memcpy(msg + tlen + 1, body, len);
	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, strlen(secret),
	    (const unsigned char *)msg, tlen + 1 + len, mac, sizeof(mac), &maclen) == NULL ||
	    maclen != 32)
		goto done;
	for (i = 0; i < 32; i++) {
		hex[2 * i] = digits[mac[i] >> 4];
		hex[2 * i + 1] = digits[mac[i] & 15];
	}
	hex[64] = '\0';
	rc = CRYPTO_memcmp(hex, given, 64) == 0 ? 1 : 0;
done:
	free(msg);
	return rc;
}

static void
dm_answer(struct http_req *r, const char *result, const char *reply)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || cJSON_AddStringToObject(o, "result", result) == NULL ||
	    (reply != NULL && cJSON_AddStringToObject(o, "reply", reply) == NULL)) {
		cJSON_Delete(o);
		http_error(r, 503, NULL, "out of memory");
		return;
	}
	http_reply_json(r, 200, o);
}

static void
on_dm_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct hooks_op *op = arg;
	struct http_req *r = op->r;
	struct hooks *op_h = op->h;
	enum kw_kind kw = op->kw;
	long long res[4];
	cJSON *o;

	(void)rc;
	hooks_op_free(op);
	if (r == NULL)
		return;
	if (consent_result(reply, res) < 0) {
		log_warnx("event=hook_inbound_failed channel=dm err=\"%s\"", reply_error(reply));
		http_error(r, 503, NULL, "try again later");
		return;
	}
	log_info("event=hook_inbound channel=dm kind=%s found=%lld changed=%lld",
	    kw_kind_name(kw), res[0], res[1]);
	if (kw == KW_NONE) {
		/* kept on the replies stream for review */
		dm_answer(r, "none", NULL);
		return;
	}
	if (res[0] == 0) {
		log_warnx("event=hook_inbound_unknown channel=dm kind=%s", kw_kind_name(kw));
		if (op_h != NULL)
			hooks_count(op_h, "inbound:unknown_sender");
		dm_answer(r, "unknown_subscriber", NULL);
		return;
	}
	if ((o = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(o, "result", res[0] == 0 ? "unknown_subscriber" :
	    kw == KW_OPT_OUT ? "opted_out" : "opted_in") == NULL ||
	    cJSON_AddNumberToObject(o, "subscribers", (double)res[0]) == NULL) {
		cJSON_Delete(o);
		http_error(r, 503, NULL, "out of memory");
		return;
	}
	http_reply_json(r, 200, o);
}

void
hooks_on_dm_inbound(struct http_req *r, void *arg)
{
	struct hooks *h = arg;
	const char *rest = http_req_rest(r), *body, *why, *ids[HOOKS_IDS_MAX];
	const char *match, *value;
	char matched[KW_MATCHED_MAX];
	static const char *const dm_fields[] = { "subscriber_id", "dm_user_id", "text" };
	cJSON *root = NULL, *sid, *uid, *text;
	struct hooks_op *op;
	struct hooks_msg m;
	enum kw_kind kw;
	struct err jerr;
	size_t len;
	int n, v;

	if (strcmp(rest, "x-dm") != 0 && strcmp(rest, "webhook") != 0) {
		http_error(r, 404, "path", "no inbound endpoint for this channel");
		return;
	}
	if (h->app->cfg->inbound_secret == NULL || h->app->cfg->inbound_secret[0] == '\0') {
		log_warnx("event=hook_refused hook=inbound reason=not_configured");
		http_error(r, 503, NULL, "inbound endpoint not configured");
		return;
	}
	body = http_body(r, &len);
	if ((v = dm_verify(h->app->cfg->inbound_secret, r, body, len, &why)) != 1) {
		hooks_refuse(h, 0, "inbound", v < 0 ? "crypto" : why);
		http_error(r, 403, NULL, "signature does not verify");
		return;
	}
	/* The deal parser's strict reading: a NUL or \u0000 would cut an id short, and a
	 * member given twice is read one way here and maybe another by the relay. */
	err_clear(&jerr);
	if ((root = deal_json_open(body, len, len, "body", &jerr)) == NULL) {
		http_error_input(r, &jerr);
		goto done;
	}
	if (jv_check_unique(root, dm_fields, sizeof(dm_fields) / sizeof(dm_fields[0]), "",
	    &jerr) < 0) {
		http_error_input(r, &jerr);
		goto done;
	}
	sid = cJSON_GetObjectItemCaseSensitive(root, "subscriber_id");
	uid = cJSON_GetObjectItemCaseSensitive(root, "dm_user_id");
	text = cJSON_GetObjectItemCaseSensitive(root, "text");
	if (!cJSON_IsString(text)) {
		http_error(r, 400, "text", "text must be a string");
		goto done;
	}
	if ((sid != NULL) == (uid != NULL)) {
		http_error(r, 400, "subscriber_id", "give exactly one of subscriber_id and "
		    "dm_user_id");
		goto done;
	}
	value = cJSON_IsString(sid) ? sid->valuestring : cJSON_IsString(uid) ?
	    uid->valuestring : NULL;
	if (value == NULL || value[0] == '\0' || strlen(value) > MODEL_ID_MAX) {
		http_error(r, 400, sid != NULL ? "subscriber_id" : "dm_user_id",
		    "must be a string of 1 to %d bytes", MODEL_ID_MAX);
		goto done;
	}
	kw = kw_classify_with(&h->words, text->valuestring, strlen(text->valuestring),
	    matched, sizeof(matched));
	if (kw == KW_HELP) {
		char help[SIGNUP_TEXT_MAX];
		int loc = signup_label_locale(matched);

		dm_answer(r, "help", signup_text(ST_HELP, loc < 0 ? SL_EN :
		    (enum signup_locale)loc, &h->texts, help, sizeof(help)) < 0 ?
		    HOOKS_HELP_TEXT : help);
		goto done;
	}
	memset(&m, 0, sizeof(m));
	m.ch = "dm";
	m.label = matched;
	m.ack = "";
	m.sid = "";
	m.value = value;
	if (kw == KW_NONE) {
		/* Kept for review on the replies stream, then answered "none". */
		m.match = sid != NULL ? "id" : "dm";
		m.label = matched[0] != '\0' ? matched : "no_keyword";
		m.text = text->valuestring;
		m.text_len = strlen(text->valuestring);
		if (m.text_len > KW_BODY_MAX)
			m.text_len = KW_BODY_MAX;
		n = 0;
		match = m.match;
		/* Its subscriber, for the deal it answers (lastsent:); none is no error. */
		if (sid != NULL) {
			ids[0] = value;
			n = 1;
		} else if (h->app->ss != NULL && substore_ready(h->app->ss) &&
		    (n = hooks_ix_lookup(h, HOOKS_IX_DM, value, ids, HOOKS_IDS_MAX)) < 0) {
			n = 0;
		}
	} else if (sid != NULL) {
		match = "id";
		ids[0] = value;
		n = 1;
	} else {
		match = "dm";
		if (h->app->ss == NULL || !substore_ready(h->app->ss)) {
			http_error(r, 503, NULL, "subscribers not loaded yet");
			goto done;
		}
		/* n may be 0: the phone index (dmx) is read too (hooks_consent.c). */
		if ((n = hooks_ix_lookup(h, HOOKS_IX_DM, value, ids, HOOKS_IDS_MAX)) < 0) {
			http_error(r, 503, NULL, "out of memory");
			goto done;
		}
	}
	if ((op = hooks_op_new(h, r, HOOKS_OP_DM)) == NULL) {
		http_error(r, 503, NULL, "out of memory");
		goto done;
	}
	op->kw = kw;
	m.match = match;
	if (hooks_consent_call(op, &m, ids, (size_t)n, on_dm_reply) < 0) {
		hooks_op_free(op);
		log_warnx("event=hook_inbound_failed channel=dm err=\"redis not connected\"");
		http_error(r, 503, NULL, "try again later");
	}
done:
	cJSON_Delete(root);
}
