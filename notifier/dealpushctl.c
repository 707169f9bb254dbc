/*
 * dealpushctl.c: the operator CLI: import and delete subscribers, publish and cancel
 * deals, post conversions, straight against Redis, or through the admin API (usage:
 * dealpushctl --help; docs/contracts.md, docs/admin.md).
 *
 * Stage: outside the pipeline; it feeds ingest (stream "deals") and the subscriber
 * keys the notifier loads and tails. Synchronous hiredis is fine here: this is a CLI,
 * not the event loop. It must never write a subscriber or a deal that the daemon's
 * own parsers would refuse (except with publish --raw, which exists to test the
 * dead-letter path), never store a subscriber other than through the daemon's own
 * scripts (lib/subput.lua, through admin_sub_bulk.lua: the consent record and the
 * suppression list honoured; the import is ctl_import.c), and never crash or allocate
 * without bound on a hostile input file.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <hiredis/hiredis.h>

#include "convert.h"
#include "deal.h"
#include "err.h"
#include "rules.h"
#include "rulesload.h"
#include "scripts.h"
#include "subscriber.h"
#include "version.h"

#include "ctl_int.h"

static void usage(FILE *out)
{
	fprintf(out,
	    "usage: dealpushctl [--redis HOST:PORT] [--api URL [--token T]] [--json]\n"
	    "                   COMMAND ...\n"
	    "       dealpushctl --version | --help\n"
	    "\n"
	    "  subscribers import FILE.jsonl|-   validate and store subscribers (one JSON\n"
	    "                                    object a line; blank and # lines skipped)\n"
	    "  subscribers delete ID             remove one subscriber and its consent\n"
	    "  rules check DIR                   compile DIR/*.rules locally; errors as\n"
	    "                                    FILE:LINE:COL, exit 1 on any\n"
	    "  rules apply DIR                   put each DIR/NAME.rules as API rule NAME (API)\n"
	    "  simulate DEAL.json                who would receive the deal (API)\n"
	    "  report deal|rule|campaign NAME [--segment-price P]\n"
	    "                                    the funnel as a table, or --json (API)\n"
	    "  publish [--raw] [--expires-in SECONDS] FILE.jsonl|-\n"
	    "                                    validate deals and add them to stream deals;\n"
	    "                                    --expires-in sets expires_at to now+SECONDS\n"
	    "                                    and drops starts_at; --raw skips validation\n"
	    "  cancel DEAL_ID                    publish {\"id\": DEAL_ID, \"cancel\": true}\n"
	    "  convert FILE.jsonl|-              validate conversions (deal_id, order_id,\n"
	    "                                    revenue, currency and one of code,\n"
	    "                                    click_token, push_id, subscriber_id) and add\n"
	    "                                    them to stream conversions\n"
	    "  consent migrate                   move consent records of earlier versions\n"
	    "                                    (consent_log:, consent_history: keys) into\n"
	    "                                    consent:records; once after an upgrade\n"
	    "\n"
	    "Redis address: --redis, else $DEALPUSH_REDIS, else " CTL_DEFAULT_REDIS ".\n"
	    "Admin API: --api URL (e.g. http://127.0.0.1:8080), else $DEALPUSH_API; token\n"
	    "--token, else $DEALPUSH_TOKEN. With an API, subscribers import and delete go\n"
	    "through it; publish, cancel, convert and consent always use Redis.\n"
	    "Exit status: 0 all done, 1 some lines or arguments refused (the rest done),\n"
	    "2 usage, file or Redis error.\n");
}

/* ---- Redis ---- */

/* Splits "host:port" or "[v6]:port". Returns 0, or -1 on a malformed address. */
static int parse_addr(const char *addr, char *host, size_t hostsz, int *port)
{
	const char *colon = strrchr(addr, ':'), *h = addr;
	size_t hlen;
	char *end = NULL;
	long p;

	if (colon == NULL)
		return -1;
	hlen = (size_t)(colon - addr);
	if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= hostsz)
		return -1;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || p < 1 || p > 65535)
		return -1;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	*port = (int)p;
	return 0;
}

/* Connects with a 2 s connect timeout and a per-command timeout. Returns the context
 * owned by the caller (redisFree), or NULL after printing why. */
static redisContext *redis_open(const char *addr)
{
	struct timeval ctv = { CTL_CONNECT_TIMEOUT_S, 0 }, ttv = { CTL_COMMAND_TIMEOUT_S, 0 };
	redisContext *c;
	char host[256];
	int port;

	if (parse_addr(addr, host, sizeof(host), &port) < 0) {
		fprintf(stderr, "dealpushctl: bad Redis address \"%s\" (want HOST:PORT)\n", addr);
		return NULL;
	}
	c = redisConnectWithTimeout(host, port, ctv);
	if (c == NULL || c->err) {
		fprintf(stderr, "dealpushctl: cannot connect to Redis at %s: %s\n", addr,
		    c != NULL ? c->errstr : "out of memory");
		redisFree(c);
		return NULL;
	}
	if (redisSetTimeout(c, ttv) != REDIS_OK) {
		fprintf(stderr, "dealpushctl: cannot set the Redis timeout: %s\n", c->errstr);
		redisFree(c);
		return NULL;
	}
	return c;
}

/* Reads one pipelined reply and checks its type (and, for a status, its text).
 * Returns 0, or -1 after printing why. what names the command in the message. */
int ctl_expect_reply(redisContext *c, int type, const char *status, const char *what,
    redisReply **keep)
{
	redisReply *r = NULL;
	int rc = -1;

	if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
		fprintf(stderr, "dealpushctl: redis: %s: %s\n", what,
		    c->errstr[0] ? c->errstr : "no reply");
		goto out;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, "dealpushctl: redis: %s: %s\n", what, r->str);
		goto out;
	}
	if (r->type != type || (status != NULL && strcmp(r->str, status) != 0)) {
		fprintf(stderr, "dealpushctl: redis: %s: unexpected reply type %d\n", what,
		    r->type);
		goto out;
	}
	rc = 0;
	if (keep != NULL) {
		*keep = r;
		r = NULL;
	}
out:
	freeReplyObject(r);
	return rc;
}

/* ---- input files ---- */

/* Opens path ("-" = stdin). Returns 0, or -1 after printing why. */
int ctl_input_open(struct ctl_input *in, const char *path)
{
	memset(in, 0, sizeof(*in));
	in->buf = malloc(CTL_LINE_MAX + 1);
	if (in->buf == NULL) {
		fprintf(stderr, "dealpushctl: out of memory\n");
		return -1;
	}
	if (strcmp(path, "-") == 0) {
		in->f = stdin;
		in->name = "<stdin>";
		return 0;
	}
	in->name = path;
	in->f = fopen(path, "r");
	if (in->f == NULL) {
		fprintf(stderr, "dealpushctl: %s: %s\n", path, strerror(errno));
		free(in->buf);
		in->buf = NULL;
		return -1;
	}
	return 0;
}

void ctl_input_close(struct ctl_input *in)
{
	if (in->f != NULL && in->f != stdin)
		fclose(in->f);
	in->f = NULL;
	free(in->buf);
	in->buf = NULL;
}

/* Reads the next line (without its "\n" or "\r\n") into in->buf, NUL bytes included,
 * at most CTL_LINE_MAX bytes; the rest of a longer line is skipped and in->too_long
 * set. Returns 1 for a line, 0 at the end, -1 on a read error (printed). */
static int input_next(struct ctl_input *in)
{
	int ch;

	in->len = 0;
	in->too_long = 0;
	ch = getc_unlocked(in->f);
	if (ch == EOF)
		goto end;
	for (; ch != EOF && ch != '\n'; ch = getc_unlocked(in->f)) {
		if (in->len < CTL_LINE_MAX)
			in->buf[in->len++] = (char)ch;
		else
			in->too_long = 1;
	}
	if (in->len > 0 && in->buf[in->len - 1] == '\r')
		in->len--;
	in->buf[in->len] = '\0';
	in->lineno++;
	if (ch == EOF && ferror(in->f))
		goto end;
	return 1;
end:
	if (ferror(in->f)) {
		fprintf(stderr, "dealpushctl: %s: read error: %s\n", in->name, strerror(errno));
		return -1;
	}
	return 0;
}

/* 1 when the current line is blank or a # comment. */
static int input_skippable(const struct ctl_input *in)
{
	size_t i = 0;

	while (i < in->len && (in->buf[i] == ' ' || in->buf[i] == '\t'))
		i++;
	return i == in->len || in->buf[i] == '#';
}

void ctl_report_bad_line(const struct ctl_input *in, const char *msg)
{
	ctl_progress_clear();
	fprintf(stderr, "%s:%lu: error: %s\n", in->name, in->lineno, msg);
}

/* input_next, past blank and comment lines; a line over CTL_LINE_MAX is reported,
 * counted in *bad and passed over. Returns 1 with a line to use, 0 at the end, -1 on
 * a read error (printed). */
int ctl_input_next_entry(struct ctl_input *in, unsigned long *bad)
{
	int r;

	while ((r = input_next(in)) == 1) {
		if (input_skippable(in))
			continue;
		if (!in->too_long)
			return 1;
		ctl_report_bad_line(in, "line longer than 65536 bytes");
		(*bad)++;
	}
	return r;
}

/* ---- commands ---- */

/*
 * The same script as the API's delete (admin_sub_del.lua, keys in ORDER SUB_KEYS), so
 * that a consent it removes moves consent:epoch and a push admitted before the delete
 * is checked again before it is sent.
 */
static int cmd_subscribers_delete(redisContext *c, const char *id)
{
	char sha[41], ckeys[CH_COUNT][32], nkeys[8];
	const char *argv[3 + 4 + CH_COUNT + 1];
	redisReply *r = NULL;
	int argc = 0, ch, rc = CTL_FAIL;

	if (!deal_id_is_valid(id)) {
		fprintf(stderr, "dealpushctl: \"%s\" is not a valid subscriber id\n", id);
		return CTL_BAD_INPUT;
	}
	if (ctl_load_script(c, "admin_sub_del", sha) < 0)
		return CTL_FAIL;
	argv[argc++] = "EVALSHA";
	argv[argc++] = sha;
	snprintf(nkeys, sizeof(nkeys), "%d", 4 + CH_COUNT);
	argv[argc++] = nkeys;
	argv[argc++] = "subscribers";
	argv[argc++] = "subscribers:changes";
	argv[argc++] = "consent:epoch";
	argv[argc++] = "consent:records";
	for (ch = 0; ch < CH_COUNT; ch++) {
		snprintf(ckeys[ch], sizeof(ckeys[ch]), "consent:%s", channel_name(ch));
		argv[argc++] = ckeys[ch];
	}
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

static int cmd_publish(redisContext *c, const char *path, int raw, long expires_in)
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
static int cmd_convert(redisContext *c, const char *path)
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

static int cmd_cancel(redisContext *c, const char *id)
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

/* ---- the admin API (libcurl easy: synchronous is fine in a CLI) ---- */

static size_t api_write(char *data, size_t size, size_t n, void *arg)
{
	struct ctl_buf *b = arg;
	size_t add = size * n;
	char *np;

	if (b->len + add > (size_t)CTL_API_REPLY_MAX) {
		b->over = 1;
		return 0;
	}
	if ((np = realloc(b->p, b->len + add + 1)) == NULL)
		return 0;
	b->p = np;
	memcpy(b->p + b->len, data, add);
	b->len += add;
	b->p[b->len] = '\0';
	return add;
}

/* One request: method on base URL + path (already escaped), with body (may be NULL).
 * Returns the HTTP status with the answer in *out (caller frees out->p; never NULL
 * on success), or -1 after printing why (connection, timeout, too large). */
long ctl_api_call(struct ctl_api *api, const char *method, const char *path,
    const char *body, size_t len, const char *ctype, struct ctl_buf *out)
{
	struct curl_slist *h = NULL, *nh;
	char url[4096], auth[1024], ct[128];
	size_t ul = strlen(api->url);
	long status = -1;
	CURLcode rc;

	memset(out, 0, sizeof(*out));
	while (ul > 0 && api->url[ul - 1] == '/')
		ul--;
	if (snprintf(url, sizeof(url), "%.*s%s", (int)ul, api->url, path) >= (int)sizeof(url) ||
	    snprintf(auth, sizeof(auth), "Authorization: Bearer %s",
	    api->token ? api->token : "") >= (int)sizeof(auth)) {
		fprintf(stderr, "dealpushctl: API URL or token too long\n");
		return -1;
	}
	snprintf(ct, sizeof(ct), "Content-Type: %s", ctype ? ctype : "application/json");
	if ((nh = curl_slist_append(h, auth)) == NULL)
		goto oom;
	h = nh;
	if ((nh = curl_slist_append(h, ct)) == NULL)
		goto oom;
	h = nh;
	if ((nh = curl_slist_append(h, "Expect:")) == NULL)
		goto oom;
	h = nh;
	curl_easy_reset(api->curl);
	curl_easy_setopt(api->curl, CURLOPT_URL, url);
	curl_easy_setopt(api->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(api->curl, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(api->curl, CURLOPT_CONNECTTIMEOUT_MS, CTL_API_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(api->curl, CURLOPT_TIMEOUT_MS, CTL_API_TIMEOUT_MS);
	curl_easy_setopt(api->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(api->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(api->curl, CURLOPT_WRITEFUNCTION, api_write);
	curl_easy_setopt(api->curl, CURLOPT_WRITEDATA, out);
	if (body != NULL) {
		curl_easy_setopt(api->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(api->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	rc = curl_easy_perform(api->curl);
	if (rc != CURLE_OK) {
		fprintf(stderr, "dealpushctl: %s %s: %s\n", method, path, out->over ?
		    "answer too large" : curl_easy_strerror(rc));
		free(out->p);
		out->p = NULL;
		goto out;
	}
	curl_easy_getinfo(api->curl, CURLINFO_RESPONSE_CODE, &status);
	if (out->p == NULL && (out->p = calloc(1, 1)) == NULL)
		goto oom;
	goto out;
oom:
	fprintf(stderr, "dealpushctl: out of memory\n");
	status = -1;
out:
	curl_slist_free_all(h);
	return status;
}

/* "/prefix/<escaped name>" into buf. 0, or -1 (printed). */
static int api_path(struct ctl_api *api, char *buf, size_t size, const char *prefix,
    const char *name)
{
	char *e = curl_easy_escape(api->curl, name, 0);
	int n;

	if (e == NULL) {
		fprintf(stderr, "dealpushctl: out of memory\n");
		return -1;
	}
	n = snprintf(buf, size, "%s%s", prefix, e);
	curl_free(e);
	if (n < 0 || (size_t)n >= size) {
		fprintf(stderr, "dealpushctl: name too long\n");
		return -1;
	}
	return 0;
}

/* The server's error text "<error> (field <field>)" of an answer, into buf. */
const char *ctl_api_error_text(const struct ctl_buf *b, char *buf, size_t size)
{
	cJSON *j = cJSON_Parse(b->p ? b->p : "");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "field");

	if (cJSON_IsString(e) && cJSON_IsString(f))
		snprintf(buf, size, "%s (field %s)", e->valuestring, f->valuestring);
	else if (cJSON_IsString(e))
		snprintf(buf, size, "%s", e->valuestring);
	else
		snprintf(buf, size, "%.200s", b->p ? b->p : "");
	cJSON_Delete(j);
	return buf;
}

/* A status the command cannot go on after: 401, 403, 5xx. */
int ctl_api_fatal(long status, const struct ctl_buf *b)
{
	char msg[512];

	if (status == 401 || status == 403 || status >= 500) {
		fprintf(stderr, "dealpushctl: API answered %ld: %s\n", status,
		    ctl_api_error_text(b, msg, sizeof(msg)));
		return 1;
	}
	return 0;
}

static int cmd_api_delete(struct ctl_api *api, const char *id)
{
	struct ctl_buf b;
	char p[1024], msg[512];
	long st;

	if (!deal_id_is_valid(id)) {
		fprintf(stderr, "dealpushctl: \"%s\" is not a valid subscriber id\n", id);
		return CTL_BAD_INPUT;
	}
	if (api_path(api, p, sizeof(p), "/v1/subscribers/", id) < 0 ||
	    (st = ctl_api_call(api, "DELETE", p, NULL, 0, NULL, &b)) < 0)
		return CTL_FAIL;
	if (st == 200)
		printf("deleted %s\n", id);
	else if (st == 404)
		printf("deleted %s (it was not stored)\n", id);
	else
		fprintf(stderr, "dealpushctl: %s\n", ctl_api_error_text(&b, msg, sizeof(msg)));
	free(b.p);
	return st == 200 || st == 404 ? CTL_OK : CTL_FAIL;
}

/* Prints compile errors like a compiler; returns the set or NULL. */
static struct rule_set *rules_compile_dir(const char *dir)
{
	struct rule_diags diags;
	struct rule_set *rs;
	struct err err;
	char *text;
	size_t need;

	rule_diags_init(&diags);
	err_clear(&err);
	if ((rs = rulesload_dir(dir, &diags, &err)) != NULL)
		return rs;
	if (diags.n == 0) {
		fprintf(stderr, "dealpushctl: %s\n", err.msg);
		return NULL;
	}
	need = rule_diags_format(&diags, NULL, 0) + 1;
	if ((text = malloc(need)) != NULL) {
		rule_diags_format(&diags, text, need);
		fputs(text, stderr);
		free(text);
	}
	fprintf(stderr, "%zu error%s\n", diags.n, diags.n == 1 ? "" : "s");
	rule_diags_free(&diags);
	return NULL;
}

static int cmd_rules_check(const char *dir)
{
	struct rule_set *rs = rules_compile_dir(dir);

	if (rs == NULL)
		return CTL_BAD_INPUT;
	printf("%s: %zu rules, no errors\n", dir, rule_set_count(rs));
	rule_set_free(rs);
	return CTL_OK;
}

/* Reads a whole file of at most max bytes. Returns it (caller frees) or NULL. */
static char *read_small_file(const char *path, size_t max, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "dealpushctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	if ((buf = malloc(max + 1)) == NULL) {
		fprintf(stderr, "dealpushctl: out of memory\n");
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f) || n > max) {
		fprintf(stderr, "dealpushctl: %s: %s\n", path, ferror(f) ? "read error" :
		    "larger than the API takes (64 KiB)");
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* Prints the API's compile errors as FILE:LINE:COL: error: MESSAGE. */
static void print_api_diags(const struct ctl_buf *b)
{
	cJSON *j = cJSON_Parse(b->p ? b->p : "");
	const cJSON *errs = cJSON_GetObjectItemCaseSensitive(j, "errors"), *e;
	char msg[512];

	if (!cJSON_IsArray(errs) || cJSON_GetArraySize(errs) == 0) {
		fprintf(stderr, "dealpushctl: %s\n", ctl_api_error_text(b, msg, sizeof(msg)));
	} else {
		cJSON_ArrayForEach(e, errs) {
			const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "file");
			const cJSON *l = cJSON_GetObjectItemCaseSensitive(e, "line");
			const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "column");
			const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");

			fprintf(stderr, "%s:%d:%d: error: %s\n", cJSON_IsString(f) ?
			    f->valuestring : "?", cJSON_IsNumber(l) ? l->valueint : 0,
			    cJSON_IsNumber(c) ? c->valueint : 0, cJSON_IsString(m) ?
			    m->valuestring : "?");
		}
	}
	cJSON_Delete(j);
}

static int cmd_rules_apply(struct ctl_api *api, const char *dir)
{
	struct rule_set *rs;
	struct dirent **ents = NULL;
	int n, i, rc = CTL_OK;

	/* Checked locally first, so a broken folder changes nothing on the server. */
	if ((rs = rules_compile_dir(dir)) == NULL)
		return CTL_BAD_INPUT;
	rule_set_free(rs);
	if ((n = scandir(dir, &ents, NULL, alphasort)) < 0) {
		fprintf(stderr, "dealpushctl: %s: %s\n", dir, strerror(errno));
		return CTL_FAIL;
	}
	for (i = 0; i < n; i++) {
		const char *name = ents[i]->d_name;
		size_t nl = strlen(name), len = 0;
		char path[4096], base[256], p[1024];
		struct ctl_buf b;
		char *text;
		long st;

		if (rc == CTL_FAIL || name[0] == '.' || nl <= 6 ||
		    strcmp(name + nl - 6, ".rules") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		snprintf(base, sizeof(base), "%.*s", (int)(nl - 6), name);
		if ((text = read_small_file(path, CTL_API_BODY_MAX, &len)) == NULL) {
			rc = CTL_FAIL;
			continue;
		}
		if (api_path(api, p, sizeof(p), "/v1/rules/", base) < 0 ||
		    (st = ctl_api_call(api, "PUT", p, text, len, "text/plain; charset=utf-8",
		    &b)) < 0) {
			free(text);
			rc = CTL_FAIL;
			continue;
		}
		free(text);
		if (st == 200 || st == 201) {
			printf("applied %s as rule source %s\n", path, base);
		} else if (ctl_api_fatal(st, &b)) {
			rc = CTL_FAIL;
		} else {
			fprintf(stderr, "%s: refused (%ld):\n", path, st);
			print_api_diags(&b);
			rc = CTL_BAD_INPUT;
		}
		free(b.p);
	}
	for (i = 0; i < n; i++)
		free(ents[i]);
	free(ents);
	return rc;
}

static double jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int cmd_simulate(struct ctl_api *api, const char *path)
{
	struct ctl_buf b;
	char *body, msg[512];
	size_t len = 0;
	cJSON *j = NULL;
	const cJSON *s, *e;
	long st;
	int rc = CTL_FAIL;

	if ((body = read_small_file(path, CTL_API_BODY_MAX, &len)) == NULL)
		return CTL_FAIL;
	st = ctl_api_call(api, "POST", "/v1/deals/simulate", body, len, NULL, &b);
	free(body);
	if (st < 0)
		return CTL_FAIL;
	if (st != 200) {
		fprintf(stderr, "dealpushctl: %s: %s\n", path, ctl_api_error_text(&b, msg,
		    sizeof(msg)));
		rc = st >= 400 && st < 500 && st != 401 && st != 403 ? CTL_BAD_INPUT : CTL_FAIL;
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
	printf("matched %.0f, held out %.0f, recipients %.0f, pushes %.0f, unrenderable"
	    " %.0f, paused %.0f\n", jnum(j, "matched"), jnum(j, "held_out"),
	    jnum(j, "recipients"), jnum(j, "pushes"), jnum(j, "unrenderable"),
	    jnum(j, "paused"));
	e = cJSON_GetObjectItemCaseSensitive(j, "excluded");
	printf("excluded (of %.0f subscribers):", jnum(j, "subscribers"));
	cJSON_ArrayForEach(s, e)
		printf(" %s %.0f%s", s->string, cJSON_IsNumber(s) ? s->valuedouble : 0,
		    s->next != NULL ? "," : "");
	printf("\ndeferred by quiet hours: %.0f\n", jnum(cJSON_GetObjectItemCaseSensitive(j,
	    "deferred"), "quiet_hours"));
	printf("%-24s %-4s %-20s %4s %-20s  %s\n", "SUBSCRIBER", "CH", "RULE", "SEGS",
	    "SEND AT", "TEXT");
	cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(j, "sample")) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(s, "subscriber");
		const cJSON *ch = cJSON_GetObjectItemCaseSensitive(s, "channel");
		const cJSON *ru = cJSON_GetObjectItemCaseSensitive(s, "rule");
		const cJSON *tx = cJSON_GetObjectItemCaseSensitive(s, "text");
		const cJSON *sg = cJSON_GetObjectItemCaseSensitive(s, "segments");
		const cJSON *at = cJSON_GetObjectItemCaseSensitive(s, "send_at");
		char segs[16] = "-";

		if (cJSON_IsNumber(sg))
			snprintf(segs, sizeof(segs), "%d", sg->valueint);
		printf("%-24s %-4s %-20s %4s %-20s  %s\n", cJSON_IsString(id) ?
		    id->valuestring : "?", cJSON_IsString(ch) ? ch->valuestring : "?",
		    cJSON_IsString(ru) ? ru->valuestring : "?", segs, cJSON_IsString(at) ?
		    at->valuestring : "now", cJSON_IsString(tx) ? tx->valuestring : "");
	}
	rc = CTL_OK;
out:
	cJSON_Delete(j);
	free(b.p);
	return rc;
}

static void print_row(const char *label, const cJSON *v)
{
	if (cJSON_IsNumber(v)) {
		if (v->valuedouble == (double)(long long)v->valuedouble)
			printf("%-26s %15lld\n", label, (long long)v->valuedouble);
		else
			printf("%-26s %15.6g\n", label, v->valuedouble);
	} else {
		printf("%-26s %15s\n", label, "-");
	}
}

static int cmd_report(struct ctl_api *api, const char *kind, const char *name,
    const char *price)
{
	static const char *const rows[] = { "matched", "admitted", "sent", "failed",
	    "unknown", "delivered", "undelivered", "delivery_failed", "filtered",
	    "redelivery", "clicked", "redeemed", "revenue", "unattributed",
	    "unattributed_revenue", "sms_segments", "sms_cost", "click_rate",
	    "revenue_per_1000_pushes", NULL };
	static const char *const groups[] = { "skipped", "errors", "holdout", NULL };
	char p[1024], pre[64], msg[512];
	struct ctl_buf b;
	cJSON *j = NULL;
	const cJSON *o, *h;
	long st;
	int i, rc = CTL_FAIL, n;

	if (strcmp(kind, "deal") != 0 && strcmp(kind, "rule") != 0 &&
	    strcmp(kind, "campaign") != 0) {
		fprintf(stderr, "dealpushctl: report deal|rule|campaign NAME\n");
		return CTL_FAIL;
	}
	snprintf(pre, sizeof(pre), "/v1/reports/%s/", kind);
	if (api_path(api, p, sizeof(p), pre, name) < 0)
		return CTL_FAIL;
	if (price != NULL) {
		char *e = curl_easy_escape(api->curl, price, 0);

		n = (int)strlen(p);
		if (e == NULL)
			return CTL_FAIL;
		snprintf(p + n, sizeof(p) - (size_t)n, "?segment_price=%s", e);
		curl_free(e);
	}
	if ((st = ctl_api_call(api, "GET", p, NULL, 0, NULL, &b)) < 0)
		return CTL_FAIL;
	if (st != 200) {
		fprintf(stderr, "dealpushctl: %s\n", ctl_api_error_text(&b, msg, sizeof(msg)));
		rc = st == 404 || st == 400 ? CTL_BAD_INPUT : CTL_FAIL;
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
	printf("report %s %s\n", kind, name);
	printf("%-26s %15s\n", "METRIC", "VALUE");
	for (i = 0; rows[i] != NULL; i++)
		print_row(rows[i], cJSON_GetObjectItemCaseSensitive(j, rows[i]));
	if (cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(j, "template_paused")))
		printf("%-26s %15s\n", "template_paused", cJSON_IsTrue(
		    cJSON_GetObjectItemCaseSensitive(j, "template_paused")) ? "yes" : "no");
	for (i = 0; groups[i] != NULL; i++) {
		h = cJSON_GetObjectItemCaseSensitive(j, groups[i]);
		if (!cJSON_IsObject(h))
			continue;
		cJSON_ArrayForEach(o, h) {
			char label[128];

			snprintf(label, sizeof(label), "%s %s", strcmp(groups[i], "errors") == 0 ?
			    "error" : groups[i], o->string);
			print_row(label, o);
		}
	}
	cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(j, "notes"))
		if (cJSON_IsString(o))
			printf("note: %s\n", o->valuestring);
	rc = CTL_OK;
out:
	cJSON_Delete(j);
	free(b.p);
	return rc;
}

/* ---- command line ---- */

/* Parses "publish [--raw] [--expires-in N] FILE" from argv[0]. Returns 0, or -1 on a
 * usage error (printed). */
static int parse_publish_args(int argc, char **argv, int *raw, long *expires_in,
    const char **path)
{
	int i;

	*raw = 0;
	*expires_in = 0;
	*path = NULL;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--raw") == 0) {
			*raw = 1;
		} else if (strcmp(argv[i], "--expires-in") == 0 && i + 1 < argc) {
			char *end = NULL;

			errno = 0;
			*expires_in = strtol(argv[++i], &end, 10);
			if (errno != 0 || end == argv[i] || *end != '\0' || *expires_in < 1 ||
			    *expires_in > CTL_EXPIRES_IN_MAX) {
				fprintf(stderr, "dealpushctl: --expires-in wants seconds from 1 to"
				    " %ld\n", CTL_EXPIRES_IN_MAX);
				return -1;
			}
		} else if (*path == NULL && (argv[i][0] != '-' || argv[i][1] == '\0')) {
			*path = argv[i];
		} else {
			fprintf(stderr, "dealpushctl: publish: unexpected \"%s\"\n", argv[i]);
			return -1;
		}
	}
	if (*path == NULL) {
		fprintf(stderr, "dealpushctl: publish: which file? (- for stdin)\n");
		return -1;
	}
	return 0;
}

/* Runs an API command (api->url set); NULL when argv is not one. */
static int run_api_command(struct ctl_api *api, int argc, char **argv, int *rc)
{
	int is_sub = argc == 3 && strcmp(argv[0], "subscribers") == 0;

	if (is_sub && strcmp(argv[1], "import") == 0)
		*rc = ctl_import_api(api, argv[2]);
	else if (is_sub && strcmp(argv[1], "delete") == 0)
		*rc = cmd_api_delete(api, argv[2]);
	else if (argc == 3 && strcmp(argv[0], "rules") == 0 && strcmp(argv[1], "apply") == 0)
		*rc = cmd_rules_apply(api, argv[2]);
	else if (argc == 2 && strcmp(argv[0], "simulate") == 0)
		*rc = cmd_simulate(api, argv[1]);
	else if (argc == 3 && strcmp(argv[0], "report") == 0)
		*rc = cmd_report(api, argv[1], argv[2], NULL);
	else if (argc == 5 && strcmp(argv[0], "report") == 0 &&
	    strcmp(argv[3], "--segment-price") == 0)
		*rc = cmd_report(api, argv[1], argv[2], argv[4]);
	else
		return 0;
	return 1;
}

/* 1 when argv is a command that needs the admin API. */
static int needs_api(int argc, char **argv)
{
	return argc >= 1 && (strcmp(argv[0], "simulate") == 0 ||
	    strcmp(argv[0], "report") == 0 || (argc >= 2 && strcmp(argv[0], "rules") == 0 &&
	    strcmp(argv[1], "apply") == 0));
}

/* Runs argv[0..argc) (the command and its arguments) against Redis at addr, or
 * through the admin API when api->url is set and the command has an API form. */
static int run_command(const char *addr, struct ctl_api *api, int argc, char **argv)
{
	redisContext *c = NULL;
	const char *path = NULL;
	long expires_in = 0;
	int raw = 0, rc = CTL_FAIL;
	enum { IMPORT, DELETE, PUBLISH, CANCEL, CONVERT, MIGRATE } cmd;

	if (argc == 3 && strcmp(argv[0], "rules") == 0 && strcmp(argv[1], "check") == 0)
		return cmd_rules_check(argv[2]);
	if (api->url != NULL && !(argc >= 1 && (strcmp(argv[0], "publish") == 0 ||
	    strcmp(argv[0], "cancel") == 0 || strcmp(argv[0], "convert") == 0 ||
	    strcmp(argv[0], "consent") == 0))) {
		if ((api->curl = curl_easy_init()) == NULL) {
			fprintf(stderr, "dealpushctl: cannot start libcurl\n");
			return CTL_FAIL;
		}
		if (!run_api_command(api, argc, argv, &rc)) {
			usage(stderr);
			rc = CTL_FAIL;
		}
		curl_easy_cleanup(api->curl);
		api->curl = NULL;
		return rc;
	}
	if (needs_api(argc, argv)) {
		fprintf(stderr, "dealpushctl: %s needs the admin API: --api URL or"
		    " $DEALPUSH_API\n", argv[0]);
		return CTL_FAIL;
	}
	if (argc == 3 && strcmp(argv[0], "subscribers") == 0 &&
	    strcmp(argv[1], "import") == 0) {
		cmd = IMPORT;
	} else if (argc == 3 && strcmp(argv[0], "subscribers") == 0 &&
	    strcmp(argv[1], "delete") == 0) {
		cmd = DELETE;
	} else if (argc >= 1 && strcmp(argv[0], "publish") == 0) {
		if (parse_publish_args(argc, argv, &raw, &expires_in, &path) < 0)
			goto out;
		cmd = PUBLISH;
	} else if (argc == 2 && strcmp(argv[0], "cancel") == 0) {
		cmd = CANCEL;
	} else if (argc == 2 && strcmp(argv[0], "convert") == 0) {
		cmd = CONVERT;
	} else if (argc == 2 && strcmp(argv[0], "consent") == 0 &&
	    strcmp(argv[1], "migrate") == 0) {
		cmd = MIGRATE;
	} else {
		usage(stderr);
		goto out;
	}
	c = redis_open(addr);
	if (c == NULL)
		goto out;
	switch (cmd) {
	case IMPORT:
		rc = ctl_import_redis(c, argv[2]);
		break;
	case DELETE:
		rc = cmd_subscribers_delete(c, argv[2]);
		break;
	case PUBLISH:
		rc = cmd_publish(c, path, raw, expires_in);
		break;
	case CANCEL:
		rc = cmd_cancel(c, argv[1]);
		break;
	case MIGRATE:
		rc = ctl_consent_migrate(c);
		break;
	case CONVERT:
		rc = cmd_convert(c, argv[1]);
		break;
	}
out:
	redisFree(c);
	return rc;
}

int main(int argc, char **argv)
{
	const char *addr = getenv("DEALPUSH_REDIS");
	struct ctl_api api;
	int i = 1, rc;

	memset(&api, 0, sizeof(api));
	api.url = getenv("DEALPUSH_API");
	api.token = getenv("DEALPUSH_TOKEN");
	if (api.url != NULL && api.url[0] == '\0')
		api.url = NULL;

	if (addr == NULL || addr[0] == '\0')
		addr = CTL_DEFAULT_REDIS;
	while (i < argc && argv[i][0] == '-' && argv[i][1] == '-') {
		if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return CTL_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("dealpushctl %s\n", DEALPUSH_VERSION);
			return CTL_OK;
		} else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc) {
			addr = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--redis=", 8) == 0) {
			addr = argv[i] + 8;
			i++;
		} else if (strcmp(argv[i], "--api") == 0 && i + 1 < argc) {
			api.url = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc) {
			api.token = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "--json") == 0) {
			api.json = 1;
			i++;
		} else {
			usage(stderr);
			return CTL_FAIL;
		}
	}
	if (i < argc && strcmp(argv[i], "-h") == 0) {
		usage(stdout);
		return CTL_OK;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "dealpushctl: cannot start libcurl\n");
		return CTL_FAIL;
	}
	rc = run_command(addr, &api, argc - i, argv + i);
	curl_global_cleanup();
	if (fflush(stdout) != 0 && rc == CTL_OK)
		rc = CTL_FAIL;
	return rc;
}
