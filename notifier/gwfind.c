/*
 * gwfind.c: asks Twilio whether a message reached it: the message list (GET
 * .../Messages.json) read page by page and matched against what we sent (stage:
 * record, for pushes whose outcome is unknown).
 *
 * The list answer is hostile input: parsed with cJSON, every type checked, items and
 * pages capped, and a next_page_uri followed only when it stays under our account's
 * Messages.json path on the configured base URL. It never decides policy (the resolver
 * does), never logs, and never puts a number, a body or a token in a detail.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gw.h"
#include "httpc.h"
#include "timefmt.h"

#define FIND_TIMEOUT_DEFAULT_MS 10000
#define FIND_URL_MAX (2048 + GW_FIND_URI_MAX)

/* One lookup; owns copies of everything, so the gateway may be freed meanwhile. */
struct find_call {
	struct httpc *h;
	const struct gw_config *cfg;  /* borrowed from the config, which outlives us */
	char *to;
	char *text;
	struct gw_find_query q;       /* to and text point at the copies above */
	long connect_timeout_ms;
	struct gw_find_scan st;
	int pages;
	gw_find_fn *done;
	void *arg;
};

static int is_blank(const char *s)
{
	return s == NULL || *s == '\0';
}

/* Printable ASCII without blanks, shorter than max. */
static int token_ok(const char *s, size_t max)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (s[n] <= ' ' || s[n] > '~' || n + 1 >= max)
			return 0;
	return n > 0;
}

static const char *json_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* 1 when field key of item is the string want, or (want NULL) is null or absent. */
static int str_is(const cJSON *item, const char *key, const char *want)
{
	const char *v = json_str(item, key);

	if (want == NULL)
		return v == NULL;
	return v != NULL && strcmp(v, want) == 0;
}

/* The path every page of our list lives under: /2010-04-01/Accounts/<sid>/Messages.json */
static void list_path(const struct gw_config *cfg, char *buf, size_t size)
{
	snprintf(buf, size, "/2010-04-01/Accounts/%s/Messages.json", cfg->account_sid);
}

/* Keeps next_page_uri when it is ours: our list's path and a query, printable. */
static void scan_next(const struct gw_config *cfg, const cJSON *j, struct gw_find_scan *st)
{
	const char *next = json_str(j, "next_page_uri");
	char path[128];
	size_t plen;

	st->next[0] = '\0';
	if (next == NULL)
		return;
	list_path(cfg, path, sizeof(path));
	plen = strlen(path);
	if (strncmp(next, path, plen) != 0 || next[plen] != '?' ||
	    !token_ok(next, sizeof(st->next)))
		return;
	snprintf(st->next, sizeof(st->next), "%s", next);
}

/* Adds one list item to *st when it is the message q describes. */
static void scan_item(const struct gw_config *cfg, const struct gw_find_query *q,
    const cJSON *item, struct gw_find_scan *st)
{
	const char *created, *dir, *sid;
	int64_t t;

	if (!cJSON_IsObject(item))
		return;
	created = json_str(item, "date_created");
	dir = json_str(item, "direction");
	sid = json_str(item, "sid");
	if (created == NULL || time_parse_rfc2822(created, &t) != 0)
		return;
	if (t < q->not_before) {
		st->older_seen = 1;
		return;
	}
	if (dir != NULL && strncmp(dir, "outbound", 8) != 0)
		return;
	if (!str_is(item, "to", q->to) || !str_is(item, "body", q->text))
		return;
	if (!is_blank(cfg->from) ? !str_is(item, "from", cfg->from) :
	    !str_is(item, "messaging_service_sid", cfg->messaging_service_sid))
		return;
	if (sid == NULL || !token_ok(sid, sizeof(st->sid)))
		return;
	/* Pages may overlap when messages arrive while we read: one sid counts once. */
	if (st->matches > 0 && strcmp(st->sid, sid) == 0)
		return;
	if (st->matches++ == 0)
		snprintf(st->sid, sizeof(st->sid), "%s", sid);
}

int gw_twilio_scan_page(const struct gw_config *cfg, const struct gw_find_query *q,
    const char *body, size_t len, struct gw_find_scan *st, struct err *err)
{
	cJSON *j = body != NULL ? cJSON_ParseWithLength(body, len) : NULL;
	const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(j, "messages"), *item;
	int n = 0, rc = -1;

	st->next[0] = '\0';
	if (!cJSON_IsObject(j)) {
		err_set(err, ERR_TEMP, "bad_answer", NULL, "twilio list: not a JSON object");
		goto done;
	}
	if (!cJSON_IsArray(msgs)) {
		err_set(err, ERR_TEMP, "bad_answer", "messages",
		    "twilio list: no \"messages\" array");
		goto done;
	}
	cJSON_ArrayForEach(item, msgs) {
		if (n++ == GW_FIND_ITEMS_MAX)
			break;
		scan_item(cfg, q, item, st);
	}
	scan_next(cfg, j, st);
	rc = 0;
done:
	cJSON_Delete(j);
	return rc;
}

/* ---- the lookup ---- */

static void find_free(struct find_call *c)
{
	if (c == NULL)
		return;
	free(c->to);
	free(c->text);
	free(c);
}

/* Ends the lookup: one callback, then c is gone. */
static void find_end(struct find_call *c, enum gw_find_outcome outcome,
    const char *detail, int cancelled)
{
	struct gw_find_result res;

	memset(&res, 0, sizeof(res));
	res.outcome = outcome;
	res.matches = c->st.matches;
	res.pages = c->pages;
	if (outcome == GW_FIND_FOUND || outcome == GW_FIND_AMBIGUOUS)
		snprintf(res.sid, sizeof(res.sid), "%s", c->st.sid);
	snprintf(res.detail, sizeof(res.detail), "%s", detail != NULL ? detail : "");
	c->done(c->arg, &res, cancelled);
	find_free(c);
}

static void on_page(void *arg, const struct httpc_resp *resp, int cancelled);

/* Requests the page at path_query (our list's path and a query). 0 or -1 with *err. */
static int find_get(struct find_call *c, const char *path_query, struct err *err)
{
	struct httpc_req req;
	char url[FIND_URL_MAX];
	size_t n = strlen(c->cfg->base_url);
	int len;

	while (n > 0 && c->cfg->base_url[n - 1] == '/')
		n--;
	len = snprintf(url, sizeof(url), "%.*s%s", (int)n, c->cfg->base_url, path_query);
	if (len < 0 || (size_t)len >= sizeof(url))
		return err_set(err, ERR_INPUT, "too_long", NULL, "gw: list URL too long");
	memset(&req, 0, sizeof(req));
	req.url = url;
	req.basic_user = c->cfg->account_sid;
	req.basic_pass = c->cfg->secret;
	req.timeout_ms = c->q.timeout_ms;
	req.connect_timeout_ms = c->connect_timeout_ms;
	return httpc_get(c->h, &req, on_page, c, err);
}

static void on_page(void *arg, const struct httpc_resp *resp, int cancelled)
{
	struct find_call *c = arg;
	struct err err;
	char detail[256];

	err_clear(&err);
	if (cancelled) {
		find_end(c, GW_FIND_ERROR, "cancelled: client shut down", 1);
		return;
	}
	c->pages++;
	if (resp->status != 200) {
		if (resp->status == 0)
			snprintf(detail, sizeof(detail), "twilio list: %s%.200s",
			    resp->timed_out ? "timeout: " : "transport: ", resp->error);
		else
			snprintf(detail, sizeof(detail), "twilio list: http %d", resp->status);
		find_end(c, GW_FIND_ERROR, detail, 0);
		return;
	}
	if (resp->body_len >= HTTPC_BODY_MAX) {
		find_end(c, GW_FIND_ERROR, "twilio list: answer over the size cap", 0);
		return;
	}
	if (gw_twilio_scan_page(c->cfg, &c->q, resp->body, resp->body_len, &c->st,
	    &err) < 0) {
		find_end(c, GW_FIND_ERROR, err.msg, 0);
		return;
	}
	if (c->st.matches > 1) {
		find_end(c, GW_FIND_AMBIGUOUS, "two or more messages match", 0);
		return;
	}
	/* Newest first: past a message older than the attempt, nothing can match. */
	if (c->st.older_seen || c->st.next[0] == '\0' || c->pages >= GW_FIND_PAGES_MAX) {
		find_end(c, c->st.matches == 1 ? GW_FIND_FOUND : GW_FIND_NOT_FOUND, NULL, 0);
		return;
	}
	if (find_get(c, c->st.next, &err) < 0)
		find_end(c, GW_FIND_ERROR, err.msg, 0);
}

/* Appends "&key=<value percent-encoded>" to b (cut off: returns -1). */
static int put_param(char *b, size_t size, const char *key, const char *val)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = strlen(b);
	const unsigned char *p;
	int n = snprintf(b + o, size - o, "%s%s=", b[o - 1] == '?' ? "" : "&", key);

	if (n < 0 || (size_t)n >= size - o)
		return -1;
	o += (size_t)n;
	for (p = (const unsigned char *)val; *p != '\0'; p++) {
		if (o + 4 >= size)
			return -1;
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			b[o++] = (char)*p;
		} else {
			b[o++] = '%';
			b[o++] = hex[*p >> 4];
			b[o++] = hex[*p & 15];
		}
	}
	b[o] = '\0';
	return 0;
}

int gw_twilio_find(struct gw *g, const struct gw_find_query *q, gw_find_fn *done,
    void *arg, struct err *err)
{
	const struct gw_config *cfg = g != NULL ? gw_config_of(g) : NULL;
	struct find_call *c = NULL;
	char first[GW_FIND_URI_MAX], size[16];
	long t;

	if (cfg == NULL || cfg->kind != GW_TWILIO || done == NULL || q == NULL)
		return err_set(err, ERR_INPUT, "bad_request", NULL,
		    "gw_twilio_find: a twilio gateway, a query and done are required");
	if (is_blank(q->to) || is_blank(q->text) || q->timeout_ms < 0)
		return err_set(err, ERR_INPUT, "missing_field", NULL,
		    "gw_twilio_find: to and text are required");
	list_path(cfg, first, sizeof(first));
	snprintf(first + strlen(first), sizeof(first) - strlen(first), "?");
	snprintf(size, sizeof(size), "%d", GW_FIND_PAGE_SIZE);
	if (put_param(first, sizeof(first), "To", q->to) < 0 ||
	    (!is_blank(cfg->from) && put_param(first, sizeof(first), "From", cfg->from) < 0) ||
	    put_param(first, sizeof(first), "PageSize", size) < 0)
		return err_set(err, ERR_INPUT, "too_long", NULL, "gw: list URL too long");
	if ((c = calloc(1, sizeof(*c))) == NULL || (c->to = strdup(q->to)) == NULL ||
	    (c->text = strdup(q->text)) == NULL) {
		find_free(c);
		return err_set(err, ERR_NOMEM, "nomem", NULL, "gw_twilio_find: out of memory");
	}
	c->h = gw_client_of(g);
	c->cfg = cfg;
	c->q = *q;
	c->q.to = c->to;
	c->q.text = c->text;
	/* A read may take longer than a send is given: it is safe to wait for, and the
	 * gateway that was too slow for a send is the one being asked. The caller's
	 * deadline (its lease share) stands when it gives one. */
	t = q->timeout_ms > 0 ? q->timeout_ms : cfg->timeout_ms > 0 ? cfg->timeout_ms :
	    FIND_TIMEOUT_DEFAULT_MS;
	c->q.timeout_ms = t;
	c->connect_timeout_ms = cfg->connect_timeout_ms > 0 && cfg->connect_timeout_ms < t ?
	    cfg->connect_timeout_ms : t;
	c->done = done;
	c->arg = arg;
	if (find_get(c, first, err) < 0) {
		find_free(c);
		return -1;
	}
	return 0;
}
