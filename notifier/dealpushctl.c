/*
 * dealpushctl.c: the operator CLI: import and delete subscribers, publish and cancel
 * deals, straight against Redis (usage: dealpushctl --help; docs/contracts.md).
 *
 * Stage: outside the pipeline; it feeds ingest (stream "deals") and the subscriber
 * keys the notifier loads and tails. Synchronous hiredis is fine here: this is a CLI,
 * not the event loop. It must never write a subscriber or a deal that the daemon's
 * own parsers would refuse (except with publish --raw, which exists to test the
 * dead-letter path), never write one subscriber in more than one MULTI/EXEC, and never
 * crash or allocate without bound on a hostile input file.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "deal.h"
#include "err.h"
#include "subscriber.h"

#define CTL_DEFAULT_REDIS "127.0.0.1:6379"
#define CTL_LINE_MAX (64 * 1024)          /* longer lines are bad lines */
#define CTL_BATCH 500                     /* subscribers per pipelined round trip */
#define CTL_CONNECT_TIMEOUT_S 2
#define CTL_COMMAND_TIMEOUT_S 5
#define CTL_CHANGES_MAXLEN "100000"
#define CTL_EXPIRES_IN_MAX (366L * 86400 - 1)

/* Exit codes (documented in usage and docs/contracts.md). */
#define CTL_OK 0
#define CTL_BAD_INPUT 1                   /* some lines or arguments were refused */
#define CTL_FAIL 2                        /* usage, file or Redis error */

/* One input file read line by line into a fixed buffer. */
struct ctl_input {
	FILE *f;
	const char *name;                 /* as shown in messages */
	char *buf;                        /* CTL_LINE_MAX + 1 bytes */
	size_t len;
	unsigned long lineno;
	int too_long;                     /* the current line was cut: a bad line */
};

static void usage(FILE *out)
{
	fprintf(out,
	    "usage: dealpushctl [--redis HOST:PORT] COMMAND ...\n"
	    "\n"
	    "  subscribers import FILE.jsonl|-   validate and store subscribers (one JSON\n"
	    "                                    object a line; blank and # lines skipped)\n"
	    "  subscribers delete ID             remove one subscriber and its consent\n"
	    "  publish [--raw] [--expires-in SECONDS] FILE.jsonl|-\n"
	    "                                    validate deals and add them to stream deals;\n"
	    "                                    --expires-in sets expires_at to now+SECONDS\n"
	    "                                    and drops starts_at; --raw skips validation\n"
	    "  cancel DEAL_ID                    publish {\"id\": DEAL_ID, \"cancel\": true}\n"
	    "\n"
	    "Redis address: --redis, else $DEALPUSH_REDIS, else " CTL_DEFAULT_REDIS ".\n"
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
static int expect_reply(redisContext *c, int type, const char *status, const char *what,
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

/* Reads the replies of one MULTI ... EXEC of nqueued commands. On success *exec is the
 * EXEC reply (caller frees) when exec is not NULL. Returns 0, or -1 after printing. */
static int expect_transaction(redisContext *c, size_t nqueued, redisReply **exec)
{
	redisReply *r = NULL;
	size_t i;
	int rc = -1;

	if (expect_reply(c, REDIS_REPLY_STATUS, "OK", "MULTI", NULL) < 0)
		goto out;
	for (i = 0; i < nqueued; i++) {
		if (expect_reply(c, REDIS_REPLY_STATUS, "QUEUED", "queued command", NULL) < 0)
			goto out;
	}
	if (expect_reply(c, REDIS_REPLY_ARRAY, NULL, "EXEC", &r) < 0)
		goto out;
	for (i = 0; i < r->elements; i++) {
		if (r->element[i]->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "dealpushctl: redis: EXEC: %s\n", r->element[i]->str);
			goto out;
		}
	}
	rc = 0;
	if (exec != NULL) {
		*exec = r;
		r = NULL;
	}
out:
	freeReplyObject(r);
	return rc;
}

/* Appends (does not send) the one transaction that stores s; returns the number of
 * queued commands between MULTI and EXEC. The keys: docs/contracts.md. */
static size_t append_subscriber_put(redisContext *c, const struct subscriber *s,
    const char *json)
{
	size_t n = 0;
	int ch;

	redisAppendCommand(c, "MULTI");
	redisAppendCommand(c, "HSET subscribers %s %s", s->id, json);
	n++;
	for (ch = 0; ch < CH_COUNT; ch++) {
		if (s->consent[ch] != 0 && (s->channels & CH_BIT(ch)))
			redisAppendCommand(c, "HSET consent:%s %s %lld", channel_name(ch), s->id,
			    (long long)s->consent[ch]);
		else
			redisAppendCommand(c, "HDEL consent:%s %s", channel_name(ch), s->id);
		n++;
	}
	redisAppendCommand(c, "XADD subscribers:changes MAXLEN ~ " CTL_CHANGES_MAXLEN
	    " * id %s op put", s->id);
	n++;
	redisAppendCommand(c, "EXEC");
	return n;
}

/* ---- input files ---- */

/* Opens path ("-" = stdin). Returns 0, or -1 after printing why. */
static int input_open(struct ctl_input *in, const char *path)
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

static void input_close(struct ctl_input *in)
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
	ch = getc(in->f);
	if (ch == EOF)
		goto end;
	for (; ch != EOF && ch != '\n'; ch = getc(in->f)) {
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

static void report_bad_line(const struct ctl_input *in, const char *msg)
{
	fprintf(stderr, "%s:%lu: error: %s\n", in->name, in->lineno, msg);
}

/* ---- commands ---- */

/* Sends the pipelined batch and checks every reply. Returns 0 or -1 (printed). */
static int flush_batch(redisContext *c, const size_t *queued, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (expect_transaction(c, queued[i], NULL) < 0)
			return -1;
	}
	return 0;
}

static int cmd_subscribers_import(redisContext *c, const char *path)
{
	struct ctl_input in;
	size_t queued[CTL_BATCH], nbatch = 0;
	unsigned long imported = 0, bad = 0;
	int rc = CTL_FAIL, r;

	if (input_open(&in, path) < 0)
		return CTL_FAIL;
	while ((r = input_next(&in)) == 1) {
		struct subscriber *s;
		struct err e;
		char *json;

		if (input_skippable(&in))
			continue;
		if (in.too_long) {
			report_bad_line(&in, "line longer than 65536 bytes");
			bad++;
			continue;
		}
		s = subscriber_parse(in.buf, in.len, &e);
		if (s == NULL) {
			if (e.kind == ERR_NOMEM) {
				fprintf(stderr, "dealpushctl: out of memory\n");
				goto out;
			}
			report_bad_line(&in, e.msg);
			bad++;
			continue;
		}
		json = subscriber_to_json(s);
		if (json == NULL) {
			subscriber_free(s);
			fprintf(stderr, "dealpushctl: out of memory\n");
			goto out;
		}
		queued[nbatch++] = append_subscriber_put(c, s, json);
		free(json);
		subscriber_free(s);
		if (nbatch == CTL_BATCH) {
			if (flush_batch(c, queued, nbatch) < 0)
				goto out;
			imported += nbatch;
			nbatch = 0;
		}
	}
	if (r < 0)
		goto out;
	if (flush_batch(c, queued, nbatch) < 0)
		goto out;
	imported += nbatch;
	nbatch = 0;
	printf("imported %lu subscribers, %lu bad lines\n", imported, bad);
	rc = bad > 0 ? CTL_BAD_INPUT : CTL_OK;
out:
	if (rc == CTL_FAIL)
		fprintf(stderr, "dealpushctl: stopped; at least %lu subscribers were stored before the"
		    " error\n", imported);
	input_close(&in);
	return rc;
}

static int cmd_subscribers_delete(redisContext *c, const char *id)
{
	redisReply *exec = NULL;
	size_t n = 1;
	int ch, rc = CTL_FAIL;

	if (!deal_id_is_valid(id)) {
		fprintf(stderr, "dealpushctl: \"%s\" is not a valid subscriber id\n", id);
		return CTL_BAD_INPUT;
	}
	redisAppendCommand(c, "MULTI");
	redisAppendCommand(c, "HDEL subscribers %s", id);
	for (ch = 0; ch < CH_COUNT; ch++, n++)
		redisAppendCommand(c, "HDEL consent:%s %s", channel_name(ch), id);
	redisAppendCommand(c, "XADD subscribers:changes MAXLEN ~ " CTL_CHANGES_MAXLEN
	    " * id %s op del", id);
	n++;
	redisAppendCommand(c, "EXEC");
	if (expect_transaction(c, n, &exec) < 0)
		goto out;
	if (exec->elements > 0 && exec->element[0]->type == REDIS_REPLY_INTEGER &&
	    exec->element[0]->integer == 0)
		printf("deleted %s (it was not stored)\n", id);
	else
		printf("deleted %s\n", id);
	rc = CTL_OK;
out:
	freeReplyObject(exec);
	return rc;
}

/* XADD deals * deal <json>; prints "published <id> entry=<stream id>". */
static int xadd_deal(redisContext *c, const char *json, size_t len, const char *id)
{
	redisReply *r = NULL;
	int rc = -1;

	r = redisCommand(c, "XADD deals * deal %b", json, len);
	if (r == NULL) {
		fprintf(stderr, "dealpushctl: redis: XADD deals: %s\n", c->errstr);
		goto out;
	}
	if (r->type != REDIS_REPLY_STRING) {
		fprintf(stderr, "dealpushctl: redis: XADD deals: %s\n",
		    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
		goto out;
	}
	printf("published %s entry=%s\n", id, r->str);
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

	if (input_open(&in, path) < 0)
		return CTL_FAIL;
	while ((r = input_next(&in)) == 1) {
		int64_t now = (int64_t)time(NULL);
		char *rewritten = NULL, id[MODEL_ID_MAX + 1];
		const char *json = in.buf;
		size_t len = in.len;
		struct deal *d = NULL;
		struct err e;
		int sent;

		if (input_skippable(&in))
			continue;
		if (in.too_long) {
			report_bad_line(&in, "line longer than 65536 bytes");
			bad++;
			continue;
		}
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
				report_bad_line(&in, e.msg);
				bad++;
				free(rewritten);
				continue;
			}
			snprintf(id, sizeof(id), "%s", d->id);
			deal_free(d);
		}
		sent = xadd_deal(c, json, len, id);
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
	input_close(&in);
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
	if (xadd_deal(c, json, strlen(json), d->id) < 0)
		goto out;
	rc = CTL_OK;
out:
	deal_free(d);
	free(json);
	cJSON_Delete(root);
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

/* Runs argv[0..argc) (the command and its arguments) against Redis at addr. */
static int run_command(const char *addr, int argc, char **argv)
{
	redisContext *c = NULL;
	const char *path = NULL;
	long expires_in = 0;
	int raw = 0, rc = CTL_FAIL;
	enum { IMPORT, DELETE, PUBLISH, CANCEL } cmd;

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
	} else {
		usage(stderr);
		goto out;
	}
	c = redis_open(addr);
	if (c == NULL)
		goto out;
	switch (cmd) {
	case IMPORT:
		rc = cmd_subscribers_import(c, argv[2]);
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
	}
out:
	redisFree(c);
	return rc;
}

int main(int argc, char **argv)
{
	const char *addr = getenv("DEALPUSH_REDIS");
	int i = 1, rc;

	if (addr == NULL || addr[0] == '\0')
		addr = CTL_DEFAULT_REDIS;
	while (i < argc && argv[i][0] == '-' && argv[i][1] == '-') {
		if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return CTL_OK;
		} else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc) {
			addr = argv[i + 1];
			i += 2;
		} else if (strncmp(argv[i], "--redis=", 8) == 0) {
			addr = argv[i] + 8;
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
	rc = run_command(addr, argc - i, argv + i);
	if (fflush(stdout) != 0 && rc == CTL_OK)
		rc = CTL_FAIL;
	return rc;
}
