/*
 * gwsim_list.c: the Twilio message log and GET /2010-04-01/Accounts/{AccountSid}/
 * Messages.json, the list Twilio publishes (tests' stand-in for the SMS provider).
 *
 * Every message answered 201 is remembered here at the moment it is accepted, before
 * its answer leaves, so a client that never read the answer (latency over its
 * timeout) can still find it, which is exactly what the notifier's resolver asks.
 * The list filters by To, From and DateSent (by UTC day on date_sent, as Twilio
 * does), pages newest first with PageSize, Page and PageToken. It must never trust the
 * query: every value is decoded, checked and bounded, and answered 400 when bad.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/http.h>

#include "gwsim.h"
#include "timefmt.h"

#define LIST_NO_DAY   INT64_MIN
#define LIST_URI_MAX  2048

/* One list request's query, checked. */
struct list_query {
	const char *to;             /* borrowed from the parsed form; NULL = any */
	const char *from;
	const char *date_raw[3];    /* ORDER DATE_FILTERS: DateSent, DateSent<, DateSent> */
	int64_t day[3];             /* UTC days since 1970; LIST_NO_DAY = not given */
	long page_size;
	long page;
	const char *token;          /* PageToken as given, or NULL */
	int dir;                    /* 0: from the newest; 1: older than pos; -1: newer */
	size_t pos;                 /* the token's message index */
};

/* ORDER DATE_FILTERS: the query names of struct list_query's date filters. */
static const char *const list_date_keys[3] = { "DateSent", "DateSent<", "DateSent>" };

/* ---- the message log ---- */

static void msg_clear(struct gwsim_msg *m)
{
	free(m->to);
	free(m->from);
	free(m->mss);
	free(m->body);
	memset(m, 0, sizeof(*m));
}

/* Forgets the oldest half of the log. */
static void store_drop_half(struct gwsim *sim)
{
	size_t half = sim->nmsgs / 2, i;

	for (i = 0; i < half; i++)
		msg_clear(&sim->msgs[i]);
	memmove(sim->msgs, sim->msgs + half, (sim->nmsgs - half) * sizeof(*sim->msgs));
	sim->nmsgs -= half;
}

static char *dup_or_null(const char *s)
{
	return s != NULL && s[0] != '\0' ? strdup(s) : NULL;
}

const struct gwsim_msg *gwsim_store_add(struct gwsim *sim, const struct form *f,
    const char *sid, int64_t ts_ms)
{
	const char *body = form_get(f, "Body"), *from = form_get(f, "From");
	const char *mss = form_get(f, "MessagingServiceSid");
	struct gwsim_msg m, *grown;
	size_t cap;

	if (sim->nmsgs >= GWSIM_MESSAGES_MAX)
		store_drop_half(sim);
	if (sim->nmsgs == sim->capmsgs) {
		cap = sim->capmsgs ? sim->capmsgs * 2 : 256;
		if ((grown = realloc(sim->msgs, cap * sizeof(*grown))) == NULL)
			return NULL;
		sim->msgs = grown;
		sim->capmsgs = cap;
	}
	memset(&m, 0, sizeof(m));
	snprintf(m.sid, sizeof(m.sid), "%s", sid);
	m.to = strdup(form_get(f, "To"));
	m.body = gwsim_utf8_clean(body, strlen(body));
	m.from = dup_or_null(from);
	m.mss = dup_or_null(mss);
	if (m.to == NULL || m.body == NULL || (from && from[0] && m.from == NULL) ||
	    (mss && mss[0] && m.mss == NULL)) {
		msg_clear(&m);
		return NULL;
	}
	m.created_ms = ts_ms;
	m.sent_ms = -1;
	m.status = "queued";
	m.segments = gwsim_segments(body);
	sim->msgs[sim->nmsgs] = m;
	return &sim->msgs[sim->nmsgs++];
}

/* The index of sid in the log (searched from the newest), or -1. */
static long store_find(const struct gwsim *sim, const char *sid)
{
	size_t i;

	for (i = sim->nmsgs; i > 0; i--)
		if (strcmp(sim->msgs[i - 1].sid, sid) == 0)
			return (long)(i - 1);
	return -1;
}

void gwsim_store_status(struct gwsim *sim, const char *sid, const char *status,
    int64_t now_ms)
{
	long i = store_find(sim, sid);

	if (i < 0)
		return;
	sim->msgs[i].status = status;
	if (strcmp(status, "sent") == 0 && sim->msgs[i].sent_ms < 0)
		sim->msgs[i].sent_ms = now_ms;
}

void gwsim_store_free(struct gwsim *sim)
{
	size_t i;

	for (i = 0; i < sim->nmsgs; i++)
		msg_clear(&sim->msgs[i]);
	free(sim->msgs);
	sim->msgs = NULL;
	sim->nmsgs = sim->capmsgs = 0;
}

/* ---- the message resource ---- */

static int add_str_or_null(cJSON *o, const char *key, const char *val)
{
	if (val == NULL)
		return cJSON_AddNullToObject(o, key) != NULL;
	return cJSON_AddStringToObject(o, key, val) != NULL;
}

/* RFC 2822 in UTC, as Twilio writes dates: "Mon, 23 Nov 2026 17:00:00 +0000". */
static void rfc2822(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%a, %d %b %Y %H:%M:%S +0000", &tm);
}

cJSON *gwsim_message_json(const struct gwsim *sim, const struct gwsim_msg *m)
{
	cJSON *o = cJSON_CreateObject(), *sub = NULL;
	char created[64], sent[64], uri[160], media[160], segs[16];
	int ok;

	rfc2822(m->created_ms, created, sizeof(created));
	if (m->sent_ms >= 0)
		rfc2822(m->sent_ms, sent, sizeof(sent));
	snprintf(uri, sizeof(uri), "/2010-04-01/Accounts/%s/Messages/%s.json",
	    sim->account_sid, m->sid);
	snprintf(media, sizeof(media), "/2010-04-01/Accounts/%s/Messages/%s/Media.json",
	    sim->account_sid, m->sid);
	snprintf(segs, sizeof(segs), "%d", m->segments);
	ok = o != NULL &&
	    cJSON_AddStringToObject(o, "account_sid", sim->account_sid) &&
	    cJSON_AddStringToObject(o, "api_version", "2010-04-01") &&
	    cJSON_AddStringToObject(o, "body", m->body) &&
	    cJSON_AddStringToObject(o, "date_created", created) &&
	    add_str_or_null(o, "date_sent", m->sent_ms >= 0 ? sent : NULL) &&
	    cJSON_AddStringToObject(o, "date_updated", m->sent_ms >= 0 ? sent : created) &&
	    cJSON_AddStringToObject(o, "direction", "outbound-api") &&
	    cJSON_AddNullToObject(o, "error_code") &&
	    cJSON_AddNullToObject(o, "error_message") &&
	    add_str_or_null(o, "from", m->from) &&
	    add_str_or_null(o, "messaging_service_sid", m->mss) &&
	    cJSON_AddStringToObject(o, "num_media", "0") &&
	    cJSON_AddStringToObject(o, "num_segments", segs) &&
	    cJSON_AddNullToObject(o, "price") &&
	    cJSON_AddNullToObject(o, "price_unit") &&
	    cJSON_AddStringToObject(o, "sid", m->sid) &&
	    cJSON_AddStringToObject(o, "status", m->status) &&
	    (sub = cJSON_AddObjectToObject(o, "subresource_uris")) != NULL &&
	    cJSON_AddStringToObject(sub, "media", media) &&
	    cJSON_AddStringToObject(o, "to", m->to) &&
	    cJSON_AddStringToObject(o, "uri", uri);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* ---- the query ---- */

/* A DateSent value as UTC days since 1970: YYYY-MM-DD, or a full RFC 2822 or RFC 3339
 * time (its UTC day). Returns 0 or -1. */
static int parse_day(const char *s, int64_t *day)
{
	char buf[32];
	int64_t t;

	if (strlen(s) == 10) {
		snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
		if (time_parse_rfc3339(buf, &t) != 0)
			return -1;
	} else if (time_parse_rfc2822(s, &t) != 0 && time_parse_rfc3339(s, &t) != 0) {
		return -1;
	}
	*day = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	return 0;
}

/* Fills q from the decoded query f. Returns 0, or -1 with *bad naming the parameter. */
static int list_query_parse(const struct gwsim *sim, const struct form *f,
    struct list_query *q, const char **bad)
{
	const char *ps = form_get(f, "PageSize"), *pg = form_get(f, "Page");
	long i;
	int k;

	memset(q, 0, sizeof(*q));
	q->to = form_get(f, "To");
	q->from = form_get(f, "From");
	for (k = 0; k < 3; k++) {
		q->day[k] = LIST_NO_DAY;
		q->date_raw[k] = form_get(f, list_date_keys[k]);
		if (q->date_raw[k] != NULL && parse_day(q->date_raw[k], &q->day[k]) != 0) {
			*bad = list_date_keys[k];
			return -1;
		}
	}
	q->page_size = GWSIM_PAGE_SIZE_DEFAULT;
	if (ps != NULL && gwsim_parse_long(ps, 1, GWSIM_PAGE_SIZE_MAX, &q->page_size) != 0) {
		*bad = "PageSize";
		return -1;
	}
	if (pg != NULL && gwsim_parse_long(pg, 0, 1000000, &q->page) != 0) {
		*bad = "Page";
		return -1;
	}
	q->token = form_get(f, "PageToken");
	if (q->token != NULL) {
		/* Ours: "PA" + the last sid of the page before (older ones follow), or "PB"
		 * + the first sid of the page after (newer ones). */
		if (strlen(q->token) < 3 || q->token[0] != 'P' ||
		    (q->token[1] != 'A' && q->token[1] != 'B') ||
		    (i = store_find(sim, q->token + 2)) < 0) {
			*bad = "PageToken";
			return -1;
		}
		q->dir = q->token[1] == 'A' ? 1 : -1;
		q->pos = (size_t)i;
	} else if (q->page > 0 && q->page > GWSIM_MESSAGES_MAX / q->page_size) {
		*bad = "Page";
		return -1;
	}
	return 0;
}

static int list_match(const struct list_query *q, const struct gwsim_msg *m)
{
	int64_t day;
	int k;

	if (q->to != NULL && strcmp(q->to, m->to) != 0)
		return 0;
	if (q->from != NULL && (m->from == NULL || strcmp(q->from, m->from) != 0))
		return 0;
	for (k = 0; k < 3; k++) {
		if (q->day[k] == LIST_NO_DAY)
			continue;
		if (m->sent_ms < 0)
			return 0;   /* no date_sent yet: no DateSent filter matches */
		day = m->sent_ms / 86400000;
		if ((k == 0 && day != q->day[0]) || (k == 1 && day > q->day[1]) ||
		    (k == 2 && day < q->day[2]))
			return 0;
	}
	return 1;
}

/* Appends "&key=<value encoded>" (the first without '&') to uri. Returns 0 or -1. */
static int uri_param(char *uri, size_t size, const char *key, const char *val)
{
	char *enc = evhttp_uriencode(val, -1, 0);
	size_t len = strlen(uri);
	int n;

	if (enc == NULL)
		return -1;
	n = snprintf(uri + len, size - len, "%s%s=%s", uri[len - 1] == '?' ? "" : "&", key,
	    enc);
	free(enc);
	return n < 0 || (size_t)n >= size - len ? -1 : 0;
}

/* The page's URI: the filters as given, PageSize, Page, and the token when not NULL
 * (a PA/PB prefix and a sid). Returns a new cJSON string, or a null for no_page. */
static cJSON *list_uri(const struct gwsim *sim, const struct list_query *q, long page,
    const char *prefix, const char *sid, int no_page)
{
	static const char *const enc_keys[3] = { "DateSent", "DateSent%3C", "DateSent%3E" };
	char uri[LIST_URI_MAX], num[24], tok[64];
	int k, bad = 0;

	if (no_page)
		return cJSON_CreateNull();
	snprintf(uri, sizeof(uri), "/2010-04-01/Accounts/%s/Messages.json?", sim->account_sid);
	if (q->to != NULL)
		bad |= uri_param(uri, sizeof(uri), "To", q->to);
	if (q->from != NULL)
		bad |= uri_param(uri, sizeof(uri), "From", q->from);
	for (k = 0; k < 3; k++)
		if (q->date_raw[k] != NULL)
			bad |= uri_param(uri, sizeof(uri), enc_keys[k], q->date_raw[k]);
	snprintf(num, sizeof(num), "%ld", q->page_size);
	bad |= uri_param(uri, sizeof(uri), "PageSize", num);
	snprintf(num, sizeof(num), "%ld", page);
	bad |= uri_param(uri, sizeof(uri), "Page", num);
	if (prefix != NULL) {
		snprintf(tok, sizeof(tok), "%s%s", prefix, sid);
		bad |= uri_param(uri, sizeof(uri), "PageToken", tok);
	}
	return bad ? NULL : cJSON_CreateString(uri);
}

/* Indices of one page of matching messages, newest first, into idx (at least
 * q->page_size). Sets *more_older / *more_newer when matches lie beyond the page. */
static size_t list_collect(const struct gwsim *sim, const struct list_query *q,
    size_t *idx, int *more_older, int *more_newer)
{
	size_t n = 0, skip = 0, i, j, t;

	*more_older = *more_newer = 0;
	if (q->dir < 0) {
		/* Newer than pos: the page_size matches nearest to it, then newest first. */
		for (i = q->pos + 1; i < sim->nmsgs; i++) {
			if (!list_match(q, &sim->msgs[i]))
				continue;
			if (n == (size_t)q->page_size) {
				*more_newer = 1;
				break;
			}
			idx[n++] = i;
		}
		for (i = 0, j = n; i < j / 2; i++) {
			t = idx[i];
			idx[i] = idx[j - 1 - i];
			idx[j - 1 - i] = t;
		}
		*more_older = 1;   /* the token's own message, at least */
		return n;
	}
	if (q->dir == 0)
		skip = (size_t)(q->page * q->page_size);
	for (i = q->dir > 0 ? q->pos : sim->nmsgs; i > 0; i--) {
		if (!list_match(q, &sim->msgs[i - 1]))
			continue;
		if (skip > 0) {
			skip--;
			*more_newer = 1;
			continue;
		}
		if (n == (size_t)q->page_size) {
			*more_older = 1;
			break;
		}
		idx[n++] = i - 1;
	}
	if (q->dir > 0)
		*more_newer = 1;
	return n;
}

/* The 200 body for q, or NULL when out of memory. */
static cJSON *list_page(const struct gwsim *sim, const struct list_query *q)
{
	cJSON *o = cJSON_CreateObject(), *arr = NULL, *m;
	size_t *idx = malloc((size_t)q->page_size * sizeof(*idx)), n = 0, i;
	int older = 0, newer = 0, ok;
	long start = q->page * q->page_size;

	if (o == NULL || idx == NULL || (arr = cJSON_AddArrayToObject(o, "messages")) == NULL)
		goto fail;
	n = list_collect(sim, q, idx, &older, &newer);
	for (i = 0; i < n; i++) {
		if ((m = gwsim_message_json(sim, &sim->msgs[idx[i]])) == NULL)
			goto fail;
		cJSON_AddItemToArray(arr, m);
	}
	ok = cJSON_AddNumberToObject(o, "end", (double)(n > 0 ? start + (long)n - 1 : start)) &&
	    cJSON_AddItemToObject(o, "first_page_uri", list_uri(sim, q, 0, NULL, NULL, 0)) &&
	    cJSON_AddItemToObject(o, "next_page_uri", list_uri(sim, q, q->page + 1, "PA",
	    n > 0 ? sim->msgs[idx[n - 1]].sid : "", !older || n == 0)) &&
	    cJSON_AddNumberToObject(o, "page", (double)q->page) &&
	    cJSON_AddNumberToObject(o, "page_size", (double)q->page_size) &&
	    cJSON_AddItemToObject(o, "previous_page_uri", list_uri(sim, q, q->page - 1, "PB",
	    n > 0 ? sim->msgs[idx[0]].sid : "", !newer || n == 0 || q->page == 0)) &&
	    cJSON_AddNumberToObject(o, "start", (double)start) &&
	    cJSON_AddItemToObject(o, "uri", list_uri(sim, q, q->page,
	    q->token != NULL ? "" : NULL, q->token != NULL ? q->token : "", 0));
	if (!ok)
		goto fail;
	free(idx);
	return o;
fail:
	free(idx);
	cJSON_Delete(o);
	return NULL;
}

void gwsim_twilio_list(struct gwsim_call *c)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(c->req);
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL, *bad = NULL;
	struct form f = { NULL, 0, 0 };
	struct list_query q;
	char msg[128];
	int rc = form_parse(&f, query ? query : "", query ? strlen(query) : 0);

	c->channel = NULL;   /* a read, not a message: never on --print */
	if (rc == 0) {
		gwsim_log_str(c, "to", form_get(&f, "To"));
		gwsim_log_str(c, "from", form_get(&f, "From"));
	}
	if (gwsim_fault_gate(c, gwsim_twilio_down_json))
		goto out;
	c->auth_ok = gwsim_twilio_auth_ok(c->sim, c->req);
	if (!c->auth_ok) {
		gwsim_header(c, "WWW-Authenticate", "Basic realm=\"Twilio API\"");
		gwsim_twilio_fail(c, 401, 20003, "Authenticate", 1);
	} else if (rc != 0) {
		gwsim_twilio_fail(c, rc == -2 ? 500 : 400, rc == -2 ? 20500 : 20400,
		    rc == -2 ? "Out of memory" : "Malformed query string", 1);
	} else if (list_query_parse(c->sim, &f, &q, &bad) != 0) {
		snprintf(msg, sizeof(msg), "Invalid %s", bad);
		gwsim_twilio_fail(c, 400, 20400, msg, 1);
	} else if (gwsim_fault_fail(c->sim)) {
		c->fault = "fail_rate";
		gwsim_twilio_fail(c, 500, 20500, "Internal Server Error", 1);
	} else {
		gwsim_reply_json(c, 200, list_page(c->sim, &q), NULL, 1);
	}
out:
	form_free(&f);
}
