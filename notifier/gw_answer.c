/*
 * gw_answer.c: a provider's answer becomes one gw_outcome (stage: send): Twilio, X DM
 * and webhook answers classified by HTTP status and body (sent, retry, permanent,
 * opted out, paused), with the provider's id, its error code and a detail. It never
 * retries or logs, and never puts a secret, a signature or a full phone number in a
 * detail (detail_scrub masks digit runs long enough to be one).
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gw.h"
#include "gw_int.h"
#include "httpc.h"
#include "xauth.h"

#define TWILIO_OPTED_OUT 21610        /* "Attempt to send to unsubscribed recipient" */
#define DETAIL_MASK_MIN_DIGITS 7      /* a digit run this long may be a phone number */
#define XDM_AUTH_PAUSE_401_S 2        /* a refused token: pause while it is refreshed */
#define XDM_AUTH_PAUSE_403_S 60       /* app or scopes not allowed: an operator acts */
#define XDM_RESET_MAX_S 86400         /* x-rate-limit-reset further out is not trusted */
/* The recipient-specific refusal (spec: NotAuthorizedForResourceProblem, the user
 * as the resource). X has answered with both hosts in "type". */
#define XDM_TYPE_NOT_AUTHORIZED "https://api.x.com/2/problems/not-authorized-for-resource"
#define XDM_TYPE_NOT_AUTHORIZED_OLD \
	"https://api.twitter.com/2/problems/not-authorized-for-resource"

/* ---- answers ---- */

/* Blanks control characters and masks every digit but the last two of any run of
 * digits (spaces, dashes and parentheses allowed between them) long enough to be a
 * phone number. */
static void detail_scrub(char *s)
{
	size_t i, j, digits, seen;

	for (i = 0; s[i] != '\0'; i++)
		if (iscntrl((unsigned char)s[i]))
			s[i] = ' ';
	for (i = 0; s[i] != '\0'; i = j) {
		if (!isdigit((unsigned char)s[i])) {
			j = i + 1;
			continue;
		}
		digits = 0;
		for (j = i; s[j] != '\0' && (isdigit((unsigned char)s[j]) ||
		    strchr(" -()", s[j]) != NULL); j++)
			digits += isdigit((unsigned char)s[j]) != 0;
		if (digits < DETAIL_MASK_MIN_DIGITS)
			continue;
		for (seen = 0; i < j; i++)
			if (isdigit((unsigned char)s[i]) && ++seen <= digits - 2)
				s[i] = '*';
	}
}

/* detail = prefix text, cut to fit (truncation is expected), then scrubbed. */
static void detail_set(struct gw_result *res, const char *prefix, const char *text)
{
	size_t max = sizeof(res->detail) - 1;
	size_t n = strnlen(prefix, max);
	size_t m = strnlen(text, max - n);

	memcpy(res->detail, prefix, n);
	memcpy(res->detail + n, text, m);
	res->detail[n + m] = '\0';
	detail_scrub(res->detail);
}

/* Copies a provider id if it is a short printable string; otherwise leaves "". */
static void provider_id_set(struct gw_result *res, const cJSON *v)
{
	const char *p;

	if (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof(res->provider_id))
		return;
	for (p = v->valuestring; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~')
			return;
	snprintf(res->provider_id, sizeof(res->provider_id), "%s", v->valuestring);
}

static const char *json_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- a success answer's id without a tree ---- */

/*
 * A Twilio success is a message resource of some twenty members, and all we keep is
 * its "sid": building a cJSON tree of it cost more than the rest of the answer's
 * handling. js_top_string answers only when sure, and leaves everything else to
 * cJSON: it walks the whole text by RFC 8259's grammar (no nesting deeper than
 * JS_DEPTH_MAX, no number longer than JS_NUMBER_MAX, no \u escape of a surrogate,
 * no control character in a string, no byte after the object but blanks),
 * stricter than cJSON in every respect, so that any text it accepts cJSON parses to
 * the same members.
 */
#define JS_DEPTH_MAX 32
#define JS_NUMBER_MAX 32

struct jscan {
	const char *p, *end;
};

static void js_blank(struct jscan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' ||
	    *s->p == '\r'))
		s->p++;
}

static int js_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned js_hex_value(char c)
{
	return c <= '9' ? (unsigned)(c - '0') : (unsigned)((c | 0x20) - 'a' + 10);
}

/* string = '"' chars '"', at s->p. Sets [*start, *start + *len) to its raw bytes and
 * *esc when it holds an escape. Returns 0, or -1 when not a string by the grammar. */
static int js_string(struct jscan *s, const char **start, size_t *len, int *esc)
{
	const char *p = s->p + 1;
	unsigned v;
	int i;

	*start = p;
	*esc = 0;
	for (; p < s->end; p++) {
		if (*p == '"') {
			*len = (size_t)(p - *start);
			s->p = p + 1;
			return 0;
		}
		if ((unsigned char)*p < 0x20)
			return -1;
		if (*p != '\\')
			continue;
		*esc = 1;
		if (++p == s->end)
			return -1;
		switch (*p) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
			break;
		case 'u':
			if (s->end - p < 5)
				return -1;
			for (v = 0, i = 1; i <= 4; i++) {
				if (!js_hex(p[i]))
					return -1;
				v = v << 4 | js_hex_value(p[i]);
			}
			if (v >= 0xD800 && v <= 0xDFFF)
				return -1;
			p += 4;
			break;
		default:
			return -1;
		}
	}
	return -1;
}

static int js_digits(struct jscan *s)
{
	const char *from = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return s->p > from ? 0 : -1;
}

/* number = [ "-" ] ( "0" / digit1-9 *digit ) [ frac ] [ exp ] */
static int js_number_body(struct jscan *s)
{
	if (*s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (s->p == s->end || *s->p < '1' || *s->p > '9' || js_digits(s) < 0)
		return -1;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (js_digits(s) < 0)
			return -1;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (js_digits(s) < 0)
			return -1;
	}
	return 0;
}

/* A number of at most JS_NUMBER_MAX characters (cJSON reads no more than 63). */
static int js_number(struct jscan *s)
{
	const char *from = s->p;

	if (js_number_body(s) < 0)
		return -1;
	return s->p - from <= JS_NUMBER_MAX ? 0 : -1;
}

static int js_word(struct jscan *s, const char *w, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
		return -1;
	s->p += n;
	return 0;
}

static int js_value(struct jscan *s, int depth);

/* object = "{" [ member *( "," member ) ] "}"; array = "[" [ value *( "," value ) ] "]" */
static int js_container(struct jscan *s, int depth)
{
	char close = *s->p == '{' ? '}' : ']';
	const char *name;
	size_t len;
	int esc;

	if (depth > JS_DEPTH_MAX)
		return -1;
	s->p++;
	js_blank(s);
	if (s->p < s->end && *s->p == close) {
		s->p++;
		return 0;
	}
	for (;;) {
		if (close == '}') {
			if (s->p == s->end || *s->p != '"' || js_string(s, &name, &len, &esc) < 0)
				return -1;
			js_blank(s);
			if (s->p == s->end || *s->p++ != ':')
				return -1;
			js_blank(s);
		}
		if (js_value(s, depth + 1) < 0)
			return -1;
		js_blank(s);
		if (s->p == s->end)
			return -1;
		if (*s->p == close) {
			s->p++;
			return 0;
		}
		if (*s->p++ != ',')
			return -1;
		js_blank(s);
	}
}

static int js_value(struct jscan *s, int depth)
{
	const char *str;
	size_t len;
	int esc;

	if (s->p == s->end)
		return -1;
	switch (*s->p) {
	case '"':
		return js_string(s, &str, &len, &esc);
	case '{':
	case '[':
		return js_container(s, depth);
	case 't':
		return js_word(s, "true", 4);
	case 'f':
		return js_word(s, "false", 5);
	case 'n':
		return js_word(s, "null", 4);
	default:
		return js_number(s);
	}
}

/*
 * The top-level member key of the JSON object text[0..len) as a plain string: 1 with
 * its bytes copied into out (when it has no escape and fits in size), 0 when the
 * object has no such member; -1 when unsure (not an object by the grammar, a member
 * name with an escape, the value not a plain string that fits, ...): parse it with
 * cJSON then. The first of duplicate members counts, as in cJSON.
 */
static int js_top_string(const char *text, size_t len, const char *key, char *out,
    size_t size)
{
	struct jscan s = { text, text + len };
	size_t klen = strlen(key), nlen, vlen;
	const char *name, *val;
	int esc, found = 0;

	js_blank(&s);
	if (s.p == s.end || *s.p != '{')
		return -1;
	s.p++;
	js_blank(&s);
	while (s.p < s.end && *s.p != '}') {
		if (*s.p != '"' || js_string(&s, &name, &nlen, &esc) < 0 || esc)
			return -1;
		js_blank(&s);
		if (s.p == s.end || *s.p++ != ':')
			return -1;
		js_blank(&s);
		if (!found && nlen == klen && memcmp(name, key, klen) == 0) {
			if (s.p == s.end || *s.p != '"' ||
			    js_string(&s, &val, &vlen, &esc) < 0 || esc || vlen >= size)
				return -1;
			memcpy(out, val, vlen);
			out[vlen] = '\0';
			found = 1;
		} else if (js_value(&s, 2) < 0) {
			return -1;
		}
		js_blank(&s);
		if (s.p < s.end && *s.p == ',') {
			s.p++;
			js_blank(&s);
			if (s.p == s.end || *s.p != '"')
				return -1;
		} else if (s.p == s.end || *s.p != '}') {
			return -1;
		}
	}
	if (s.p == s.end)
		return -1;
	s.p++;
	js_blank(&s);
	return s.p == s.end ? found : -1;
}

/* Twilio's success: the provider id from "sid" without a tree when js_top_string is
 * sure. Returns 0 when done, -1 when the answer needs cJSON. */
static int twilio_sent_fast(const struct httpc_resp *r, struct gw_result *res)
{
	char sid[sizeof(res->provider_id)];
	const char *p;
	int got = js_top_string(r->body, r->body_len, "sid", sid, sizeof(sid));

	if (got < 0)
		return -1;
	if (got == 0)
		return 0;
	for (p = sid; *p != '\0'; p++)
		if (*p <= ' ' || *p > '~')
			return 0;
	memcpy(res->provider_id, sid, (size_t)(p - sid) + 1);
	return 0;
}

/* Twilio: {"sid": ...} on success, {"code": 21610, "message": ...} on failure. */
static void twilio_classify(const cJSON *j, int status, struct gw_result *res)
{
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(j, "code");
	const char *msg = json_str(j, "message");
	char prefix[48];

	if (res->outcome == GW_SENT) {
		provider_id_set(res, cJSON_GetObjectItemCaseSensitive(j, "sid"));
		return;
	}
	if (cJSON_IsNumber(code) && code->valuedouble > 0 && code->valuedouble < INT_MAX)
		res->provider_code = (int)code->valuedouble;
	if (res->outcome == GW_PERMANENT && res->provider_code == TWILIO_OPTED_OUT)
		res->outcome = GW_OPTED_OUT;
	snprintf(prefix, sizeof(prefix), "twilio %d/%d: ", status, res->provider_code);
	detail_set(res, prefix, msg != NULL ? msg : "no message");
}

/* 1 when p is the recipient-specific refusal: a NotAuthorizedForResourceProblem
 * whose resource is a user (and, when it names one, the participant we wrote to). */
static int xdm_recipient_refusal(const cJSON *p, const char *to)
{
	const char *type = json_str(p, "type"), *rt = json_str(p, "resource_type");
	const char *id = json_str(p, "resource_id");

	return type != NULL && (strcmp(type, XDM_TYPE_NOT_AUTHORIZED) == 0 ||
	    strcmp(type, XDM_TYPE_NOT_AUTHORIZED_OLD) == 0) && rt != NULL &&
	    strcmp(rt, "user") == 0 && (id == NULL || strcmp(id, to) == 0);
}

/* X: {"data": {"dm_event_id": ...}}; errors as a Problem {"type", "title",
 * "detail"} (application/problem+json), the Error {"code", "message"}, or
 * {"errors": [Problem]}. Only the recipient's refusal is an opt-out: a 401, and any
 * other 403 (app-only bearer, missing scope, suspended app), says nothing about the
 * recipient, so it pauses the gateway and retries the push, consent untouched. */
static void xdm_classify(const cJSON *j, const struct gw_call *c,
    const struct httpc_resp *r, struct gw_result *res)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
	const cJSON *errs = cJSON_GetObjectItemCaseSensitive(j, "errors");
	const char *msg = json_str(j, "detail");
	char prefix[40];

	if (res->outcome == GW_SENT) {
		provider_id_set(res, cJSON_GetObjectItemCaseSensitive(data, "dm_event_id"));
		return;
	}
	if (r->status == 403 && (xdm_recipient_refusal(j, c->to) ||
	    (cJSON_IsArray(errs) && xdm_recipient_refusal(cJSON_GetArrayItem(errs, 0),
	    c->to)))) {
		res->outcome = GW_OPTED_OUT;
	} else if (r->status == 401 || r->status == 403) {
		res->outcome = GW_RATE_LIMITED;
		res->auth_failed = 1;
		res->retry_after_s = r->status == 401 ? XDM_AUTH_PAUSE_401_S :
		    XDM_AUTH_PAUSE_403_S;
		if (c->xauth != NULL)
			xauth_rejected(c->xauth, c->auth_gen, r->status);
	}
	/* X's window ends at x-rate-limit-reset: it wins over Retry-After. */
	if (r->status == 429 && r->rate_limit_reset_at >= 0)
		res->retry_after_s = r->rate_limit_reset_at <= c->now ? 0 :
		    r->rate_limit_reset_at - c->now > XDM_RESET_MAX_S ? XDM_RESET_MAX_S :
		    (long)(r->rate_limit_reset_at - c->now);
	if (msg == NULL)
		msg = json_str(j, "message");
	if (msg == NULL)
		msg = json_str(j, "title");
	if (msg == NULL && cJSON_IsArray(errs))
		msg = json_str(cJSON_GetArrayItem(errs, 0), "message");
	snprintf(prefix, sizeof(prefix), res->auth_failed ? "x-dm %d auth: " : "x-dm %d: ",
	    r->status);
	detail_set(res, prefix, msg != NULL ? msg : "no message");
}

/* Webhook: 409 = already accepted under this Idempotency-Key; 410 = opted out. */
static void webhook_classify(const struct httpc_resp *r, struct gw_result *res)
{
	char prefix[32];

	if (r->status == 409) {
		res->outcome = GW_SENT;
		detail_set(res, "", "duplicate: accepted before under this Idempotency-Key");
		return;
	}
	if (r->status == 410)
		res->outcome = GW_OPTED_OUT;
	if (res->outcome != GW_SENT) {
		snprintf(prefix, sizeof(prefix), "webhook %d: ", r->status);
		detail_set(res, prefix, r->body);
	}
}

/* The common part: 2xx sent, 429 rate limited, other 4xx permanent, everything else
 * (5xx, a redirect we do not follow, 1xx) worth another try later. */
static enum gw_outcome outcome_of_status(int status)
{
	if (status >= 200 && status < 300)
		return GW_SENT;
	if (status == 429)
		return GW_RATE_LIMITED;
	if (status >= 400 && status < 500)
		return GW_PERMANENT;
	return GW_RETRY;
}

/* Classifies by the HTTP status when there is one, even if the answer was cut off
 * afterwards: a 201 whose body was lost is still accepted. */
void gw_classify(const struct gw_call *c, const struct httpc_resp *r, int cancelled,
    struct gw_result *res)
{
	cJSON *j;

	memset(res, 0, sizeof(*res));
	res->http_status = r->status;
	res->retry_after_s = r->retry_after_s;
	res->maybe_delivered = r->status != 0 || r->connected;
	if (cancelled || r->status == 0) {
		res->outcome = GW_RETRY;
		detail_set(res, cancelled ? "" : r->timed_out ? "timeout: " : "transport: ",
		    r->error);
		return;
	}
	res->outcome = outcome_of_status(r->status);
	if (c->kind == GW_TWILIO && res->outcome == GW_SENT && twilio_sent_fast(r, res) == 0)
		return;
	j = cJSON_ParseWithLength(r->body, r->body_len);
	switch (c->kind) {
	case GW_TWILIO:
		twilio_classify(j, r->status, res);
		break;
	case GW_XDM:
		xdm_classify(j, c, r, res);
		break;
	case GW_WEBHOOK:
		webhook_classify(r, res);
		break;
	}
	cJSON_Delete(j);
}
