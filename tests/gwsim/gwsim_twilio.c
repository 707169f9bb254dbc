/*
 * gwsim_twilio.c: POST /2010-04-01/Accounts/{AccountSid}/Messages.json, to the
 * published Twilio contract (tests' stand-in for the SMS provider); GET on the same
 * path (the message list) is answered by gwsim_list.c.
 *
 * Checks path, Basic auth, the form body and each field like Twilio does, then answers
 * 201 with a message resource or Twilio's error JSON, and remembers every message it
 * accepted. Every field that reached us is logged, refused or not. It must never trust a field's length or bytes: every string
 * in an answer or a log line is cleaned to UTF-8 and bounded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/http.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gwsim.h"

#define TWILIO_PREFIX "/2010-04-01/Accounts/"
#define TWILIO_SUFFIX "/Messages.json"
#define TWILIO_BODY_MAX_CHARS 1600

/* A refusal decided by validation. */
struct twilio_refusal {
	int status;
	long code;
	char msg[256];
};

static cJSON *twilio_error_json(long code, const char *msg, int status)
{
	cJSON *o = cJSON_CreateObject();
	char url[96], *clean = gwsim_utf8_clean(msg, strlen(msg));

	snprintf(url, sizeof(url), "https://www.twilio.com/docs/errors/%ld", code);
	if (o == NULL || clean == NULL ||
	    !cJSON_AddNumberToObject(o, "code", (double)code) ||
	    !cJSON_AddStringToObject(o, "message", clean) ||
	    !cJSON_AddStringToObject(o, "more_info", url) ||
	    !cJSON_AddNumberToObject(o, "status", status)) {
		cJSON_Delete(o);
		o = NULL;
	}
	free(clean);
	return o;
}

void gwsim_twilio_fail(struct gwsim_call *c, int status, long code, const char *msg,
    int delay)
{
	c->code = code;
	gwsim_reply_json(c, status, twilio_error_json(code, msg, status), NULL, delay);
}

cJSON *gwsim_twilio_down_json(struct gwsim_call *c)
{
	c->code = 20503;
	return twilio_error_json(20503, "Service Unavailable", 503);
}

/* The message Twilio gives for an injected answer code. */
static const char *twilio_code_message(long code)
{
	switch (code) {
	case 21610: return "Attempt to send to unsubscribed recipient";
	case 21211: return "The 'To' number is not a valid phone number.";
	case 21614: return "'To' number is not a valid mobile number";
	case 21408: return "Permission to send an SMS has not been enabled for the region "
	    "indicated by the 'To' number";
	case 20403: return "Permission Denied";
	case 20404: return "The requested resource was not found";
	case 20429: return "Too Many Requests";
	case 20500: return "Internal Server Error";
	case 20503: return "Service Unavailable";
	}
	return "Simulated error";
}

/* Copies the {AccountSid} segment of path into sid. Returns 0, -1 when path is not
 * .../Accounts/{one segment}/Messages.json. */
static int twilio_path_sid(const char *path, char *sid, size_t sidlen)
{
	size_t plen = strlen(TWILIO_PREFIX), slen = strlen(TWILIO_SUFFIX), len;
	const char *seg;

	if (strncmp(path, TWILIO_PREFIX, plen) != 0)
		return -1;
	seg = path + plen;
	len = strlen(seg);
	if (len <= slen || strcmp(seg + len - slen, TWILIO_SUFFIX) != 0)
		return -1;
	len -= slen;
	if (memchr(seg, '/', len) != NULL || len >= sidlen)
		return -1;
	memcpy(sid, seg, len);
	sid[len] = '\0';
	return 0;
}

/* 1 when Authorization is Basic base64(account_sid ":" auth_token), compared in
 * constant time. */
int gwsim_twilio_auth_ok(struct gwsim *sim, struct evhttp_request *req)
{
	const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Authorization");
	size_t ulen = strlen(sim->account_sid), plen = strlen(sim->auth_token);
	unsigned char *raw, *enc;
	int ok = 0, n;

	if (h == NULL || strncasecmp(h, "Basic ", 6) != 0)
		return 0;
	h += 6;
	while (*h == ' ')
		h++;
	raw = malloc(ulen + plen + 2);
	enc = malloc(4 * ((ulen + plen + 1 + 2) / 3) + 1);
	if (raw == NULL || enc == NULL)
		goto out;
	memcpy(raw, sim->account_sid, ulen);
	raw[ulen] = ':';
	memcpy(raw + ulen + 1, sim->auth_token, plen);
	n = EVP_EncodeBlock(enc, raw, (int)(ulen + plen + 1));
	ok = n > 0 && strlen(h) == (size_t)n && CRYPTO_memcmp(h, enc, (size_t)n) == 0;
out:
	free(raw);
	free(enc);
	return ok;
}

static int twilio_is_form(struct evhttp_request *req)
{
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Type");
	size_t n = strlen("application/x-www-form-urlencoded");

	return ct != NULL && strncasecmp(ct, "application/x-www-form-urlencoded", n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Logs every field that reached us, valid or not. */
static int twilio_log_fields(struct gwsim_call *c, const struct form *f)
{
	const char *vp = form_get(f, "ValidityPeriod");
	const char *cb = form_get(f, "StatusCallback");
	char *push = NULL;
	long v = 0;
	int has_vp = gwsim_parse_long(vp, -(1L << 30), 1L << 30, &v) == 0;

	gwsim_log_str(c, "to", form_get(f, "To"));
	gwsim_log_str(c, "body", form_get(f, "Body"));
	gwsim_log_str(c, "from", form_get(f, "From"));
	gwsim_log_str(c, "messaging_service_sid", form_get(f, "MessagingServiceSid"));
	gwsim_log_str(c, "status_callback", cb);
	gwsim_log_int(c, "validity_period", v, !has_vp);
	if (gwsim_push_from_url(cb, &push, &c->landed_ms) != 0)
		return -1;
	gwsim_log_str(c, "push", push);
	gwsim_log_int(c, "landed_ms", c->landed_ms, c->landed_ms < 0);
	free(push);
	return 0;
}

static int twilio_refuse(struct twilio_refusal *r, long code, const char *fmt,
    const char *arg)
{
	r->status = 400;
	r->code = code;
	snprintf(r->msg, sizeof(r->msg), fmt, arg ? arg : "");
	return -1;
}

/* The checks Twilio makes, in order. Returns 0 when valid, else -1 with *r filled. */
static int twilio_validate(const struct form *f, struct twilio_refusal *r)
{
	const char *to = form_get(f, "To"), *body = form_get(f, "Body");
	const char *from = form_get(f, "From"), *mss = form_get(f, "MessagingServiceSid");
	const char *vp = form_get(f, "ValidityPeriod"), *cb = form_get(f, "StatusCallback");
	long v;

	if (!gwsim_is_e164(to))
		return twilio_refuse(r, 21211,
		    "The 'To' number %.64s is not a valid phone number.", to);
	if (body == NULL || body[0] == '\0')
		return twilio_refuse(r, 21602, "Message body is required.", NULL);
	if (gwsim_utf8_len(body) > TWILIO_BODY_MAX_CHARS)
		return twilio_refuse(r, 21617,
		    "The concatenated message body exceeds the 1600 character limit.", NULL);
	if ((from == NULL || from[0] == '\0') && (mss == NULL || mss[0] == '\0'))
		return twilio_refuse(r, 21603, "The 'From' phone number is required.", NULL);
	if (mss != NULL && mss[0] != '\0' && !gwsim_is_sid(mss, "MG"))
		return twilio_refuse(r, 21701,
		    "The Messaging Service Sid %.40s is invalid.", mss);
	if (from != NULL && from[0] != '\0' && !gwsim_is_e164(from))
		return twilio_refuse(r, 21212,
		    "The 'From' number %.64s is not a valid phone number.", from);
	if (vp != NULL && gwsim_parse_long(vp, 1, 36000, &v) != 0)
		return twilio_refuse(r, 21609,
		    "Invalid ValidityPeriod: %.32s is not an integer from 1 to 36000.", vp);
	if (cb != NULL && !gwsim_is_http_url(cb))
		return twilio_refuse(r, 21609, "Invalid StatusCallback", NULL);
	return 0;
}

/* After auth and validation: an injected answer, the fail rate, or 201 (and then the
 * status callbacks, when they are on). */
static void twilio_answer(struct gwsim_call *c, const struct form *f)
{
	const char *to = form_get(f, "To");
	const struct gwsim_msg *m;
	long answer = gwsim_answer_for(c->sim, to), code, latency;
	char sid[40];
	int status;

	if (answer != 0 && gwsim_answer_map(answer, &status, &code) == 0) {
		c->fault = "answer";
		if (status == 429)
			gwsim_header(c, "Retry-After", "1");
		gwsim_twilio_fail(c, status, code, twilio_code_message(code), 1);
		return;
	}
	if (gwsim_fault_fail(c->sim)) {
		c->fault = "fail_rate";
		gwsim_twilio_fail(c, 500, 20500, "Internal Server Error", 1);
		return;
	}
	gwsim_new_sid(c->sim, "SM", sid, sizeof(sid));
	/* Remembered before the answer leaves: a client that gives up waiting for it
	 * (latency over its timeout) finds the message in the list all the same. */
	if ((m = gwsim_store_add(c->sim, f, sid, c->ts_ms)) == NULL) {
		c->fault = "oom";
		gwsim_twilio_fail(c, 500, 20500, "Internal Server Error", 1);
		return;
	}
	gwsim_log_str(c, "sid", sid);
	c->print_to = strdup(to);
	c->print_text = strdup(form_get(f, "Body"));
	latency = c->sim->faults.latency_ms;   /* what this reply waits */
	if (gwsim_reply_json(c, 201, gwsim_message_json(c->sim, m), NULL, 1) == 201)
		gwsim_callback_schedule(c->sim, f, sid, latency);
}

/* Parses the form (when it is one) and logs its fields. Returns 0, or the refusal
 * status (400, 413, 500) with *msg naming why. */
static int twilio_read_form(struct gwsim_call *c, struct form *f, const char **msg)
{
	char *body = NULL;
	size_t len;
	int rc = gwsim_body(c->req, &body, &len), status = 0;

	if (rc == 1) {
		*msg = "Request body exceeds 64 KiB";
		return 413;
	}
	if (rc != 0) {
		*msg = "Out of memory";
		return 500;
	}
	if (!twilio_is_form(c->req)) {
		*msg = "Content-Type must be application/x-www-form-urlencoded";
		status = 400;
	} else if ((rc = form_parse(f, body, len)) != 0) {
		*msg = rc == -2 ? "Out of memory" : "Malformed form-urlencoded body";
		status = rc == -2 ? 500 : 400;
	} else if (twilio_log_fields(c, f) != 0) {
		*msg = "Out of memory";
		status = 500;
	}
	free(body);
	return status;
}

void gwsim_twilio_handle(struct gwsim *sim, struct evhttp_request *req, const char *path)
{
	struct gwsim_call c;
	struct form f = { NULL, 0, 0 };
	struct twilio_refusal r;
	const char *msg = NULL;
	char sid[64], nf[160];
	int status;

	gwsim_call_init(&c, sim, req, "twilio");
	c.channel = "sms";
	if (twilio_path_sid(path, sid, sizeof(sid)) != 0 ||
	    !gwsim_is_sid(sid, "AC") || strcmp(sid, sim->account_sid) != 0) {
		snprintf(nf, sizeof(nf), "The requested resource %.100s was not found", path);
		gwsim_twilio_fail(&c, 404, 20404, nf, 1);
		return;
	}
	if (evhttp_request_get_command(req) == EVHTTP_REQ_GET) {
		gwsim_twilio_list(&c);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		gwsim_twilio_fail(&c, 405, 20004, "Method not allowed", 1);
		return;
	}
	status = twilio_read_form(&c, &f, &msg);
	if (gwsim_fault_gate(&c, gwsim_twilio_down_json))
		goto out;
	c.auth_ok = gwsim_twilio_auth_ok(sim, req);
	if (!c.auth_ok) {
		gwsim_header(&c, "WWW-Authenticate", "Basic realm=\"Twilio API\"");
		gwsim_twilio_fail(&c, 401, 20003, "Authenticate", 1);
	} else if (status != 0) {
		gwsim_twilio_fail(&c, status, 20000 + status, msg, 1);
	} else if (twilio_validate(&f, &r) != 0) {
		gwsim_twilio_fail(&c, r.status, r.code, r.msg, 1);
	} else {
		twilio_answer(&c, &f);
	}
out:
	form_free(&f);
}
