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
 *
 * This file holds the command line and the input reader; the Redis connection (one
 * Redis, or a Redis Cluster) is ctl_conn.c and ctl_cluster.c; the commands are
 * ctl_redis.c (publish, cancel, convert, delete), ctl_api.c (the admin
 * API client), ctl_rules.c, ctl_report.c (simulate, report), ctl_import.c and
 * ctl_consent.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "layout.h"
#include "version.h"

#include "ctl_int.h"

static void usage(FILE *out)
{
	fprintf(out,
	    "usage: dealpushctl [--redis HOST:PORT | --cluster IP:PORT,...]\n"
	    "                   [--api URL [--token T]] [--json] COMMAND ...\n"
	    "       dealpushctl --version | --help\n"
	    "\n"
	    "  subscribers import FILE.jsonl|-   validate and store subscribers (one JSON\n"
	    "                                    object a line; blank and # lines skipped)\n"
	    "  subscribers delete ID             remove one subscriber and its consent\n"
	    "  subscribers get ID                the stored subscriber and its behaviour\n"
	    "                                    (days since a click, ...), as JSON (API)\n"
	    "  subscribers list [--interest X] [--consent sms|dm] [--tz ZONE] [--limit N]\n"
	    "                   [--json]         the subscribers, page after page (API)\n"
	    "  subscribers export ID             everything kept about ID, as JSON (API)\n"
	    "  subscribers erase ID              erase ID's data; the proof of consent is\n"
	    "                                    kept, the number stays suppressed (API)\n"
	    "  rules check DIR                   compile DIR/*.rules locally; errors as\n"
	    "                                    FILE:LINE:COL, exit 1 on any\n"
	    "  rules apply DIR                   put each DIR/NAME.rules as API rule NAME (API)\n"
	    "  rules list                        the rules in use, highest priority first (API)\n"
	    "  rules get NAME                    the text of rule source NAME (API)\n"
	    "  rules delete NAME                 delete API rule source NAME (API)\n"
	    "  simulate DEAL.json                who would receive the deal (API)\n"
	    "  codes add POOL FILE|-             add the file's codes (one a line) to pool\n"
	    "                                    codes:POOL, bad lines named (API)\n"
	    "  codes count POOL                  the codes left in the pool (API)\n"
	    "  tokens create NAME --role viewer|marketer|admin\n"
	    "                                    a named API token, printed once (API)\n"
	    "  tokens list                       name, role, created, last used (API)\n"
	    "  tokens revoke NAME                the token stops working (API)\n"
	    "  audit [--limit N]                 the newest changes: who, what, before and\n"
	    "                                    after (API; admin role)\n"
	    "  report deal|rule|campaign NAME [--segment-price P]\n"
	    "                                    the funnel as a table, or --json (API)\n"
	    "  publish [--raw] [--expires-in SECONDS] FILE.jsonl|-\n"
	    "                                    validate deals and add them to stream deals;\n"
	    "                                    --expires-in sets expires_at to now+SECONDS\n"
	    "                                    and drops starts_at; --raw skips validation\n"
	    "  cancel DEAL_ID                    publish {\"id\": DEAL_ID, \"cancel\": true}\n"
	    "  test-send DEAL.json --to ID,ID...|@LIST\n"
	    "                                    the deal, as <id>.test-<time>, to those\n"
	    "                                    subscribers alone, with their rule's text\n"
	    "  testlist set NAME ID,ID...        a named list of test recipients (@NAME)\n"
	    "  deals confirm DEAL_ID             send a deal the guards held (audience or\n"
	    "                                    cost over [guards])\n"
	    "  deals status DEAL_ID              the deal's state (planned, sending, paused,\n"
	    "                                    done, cancelled, expired, dead-lettered and\n"
	    "                                    why, waiting for confirmation) and counts (API)\n"
	    "  dead list [--deals|--conversions] [--limit N]\n"
	    "                                    the latest dead letters, newest first\n"
	    "  dead replay ENTRY                 check a dead letter again and publish it\n"
	    "                                    again; removed only once re-published\n"
	    "  convert [--no-wait] FILE.jsonl|-  validate conversions (deal_id, order_id,\n"
	    "                                    revenue, currency and one of code,\n"
	    "                                    click_token, push_id, subscriber_id), add\n"
	    "                                    them to stream conversions, then wait up to\n"
	    "                                    10 s for each one's outcome (attributed,\n"
	    "                                    unattributed, dead-lettered and why)\n"
	    "  pause [REASON]                    stop sending on every notifier (queued\n"
	    "                                    pushes wait; expiry still applies)\n"
	    "  resume                            send again\n"
	    "  pause status                      paused since when and why, or running\n"
	    "  consent migrate                   move consent records of earlier versions\n"
	    "                                    (consent_log:, consent_history: keys) into\n"
	    "                                    consent:records; once after an upgrade\n"
	    "  layout create --shards S          store the sharded key layout with S shards\n"
	    "                                    (1..1024) on a Redis that holds no data yet\n"
	    "  layout show                       the stored layout, each shard's tag and slot\n"
	    "  migrate --to-shards S             move every key of the single-instance layout\n"
	    "                                    to the sharded layout of S shards on the same\n"
	    "                                    Redis (every notifier stopped; run it again\n"
	    "                                    after an interruption to finish)\n"
	    "  migrate --to-single               the same walk back to the single-instance\n"
	    "                                    layout\n"
	    "  migrate --from-cluster IP:PORT[,IP:PORT...]\n"
	    "                                    copy every key of that Redis Cluster (every\n"
	    "                                    primary; DUMP/RESTORE with the TTL) into the\n"
	    "                                    --redis one, empty or holding an unfinished\n"
	    "                                    copy; the sharded layout runs there, or\n"
	    "                                    migrate --to-single after it\n"
	    "  formats show                      the stored format version and what each\n"
	    "                                    notifier reads\n"
	    "  formats upgrade [--to N]          raise the stored format version once every\n"
	    "                                    live notifier reads it\n"
	    "\n"
	    "Redis address: --redis, else $DEALPUSH_REDIS, else " CTL_DEFAULT_REDIS "; or\n"
	    "through Redis Sentinel: --sentinel HOST:PORT[,HOST:PORT...] --master NAME,\n"
	    "else $DEALPUSH_SENTINELS and $DEALPUSH_MASTER (the primary, confirmed by ROLE).\n"	    "Redis Cluster: --cluster IP:PORT[,IP:PORT...], else $DEALPUSH_CLUSTER (not with\n"
	    "--redis or --sentinel): each command goes to its key's primary. Refused on a\n"
	    "cluster: migrate, consent migrate, and subscribers import and delete without\n"
	    "--api (they walk or pipeline one Redis' keyspace). A single Redis moves to a\n"
	    "cluster with migrate --to-shards S on it, then redis-cli --cluster import\n"
	    "NODE --cluster-from SINGLE --cluster-copy; back with --redis TARGET migrate\n"
	    "--from-cluster SEEDS, then, if wanted, --redis TARGET migrate --to-single\n"
	    "(dealpushctl(1), REDIS CLUSTER).\n"
	    "Redis login: $DEALPUSH_REDIS_PASSWORD, with $DEALPUSH_REDIS_USER for an ACL\n"
	    "user (Redis 6+); unset: no AUTH.\n"
	    "Admin API: --api URL (e.g. http://127.0.0.1:8080), else $DEALPUSH_API; token\n"
	    "--token, else $DEALPUSH_TOKEN. With an API, subscribers import and delete go\n"
	    "through it; publish, cancel, test-send, testlist, deals confirm, dead,\n"
	    "convert, pause, resume, layout, migrate, formats and consent always use Redis.\n"
	    "Every command that uses Redis first checks the stored key layout and format.\n"
	    "Exit status: 0 all done, 1 some lines or arguments refused (the rest done),\n"
	    "2 usage, file or Redis error, 78 the stored layout is invalid, a migration\n"
	    "has not finished, or the stored format is newer than this release reads.\n");
}

/* ---- Redis ---- */

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

	if (argc >= 2 && strcmp(argv[0], "subscribers") == 0 && strcmp(argv[1], "list") == 0)
		*rc = ctl_cmd_subscribers_list(api, argc - 2, argv + 2);
	else if (is_sub && strcmp(argv[1], "import") == 0)
		*rc = ctl_import_api(api, argv[2]);
	else if (is_sub && strcmp(argv[1], "delete") == 0)
		*rc = ctl_cmd_api_delete(api, argv[2]);
	else if (is_sub && strcmp(argv[1], "get") == 0)
		*rc = ctl_cmd_api_get(api, argv[2]);
	else if (is_sub && strcmp(argv[1], "export") == 0)
		*rc = ctl_cmd_subscribers_export(api, argv[2]);
	else if (is_sub && strcmp(argv[1], "erase") == 0)
		*rc = ctl_cmd_subscribers_erase(api, argv[2]);
	else if (argc == 3 && strcmp(argv[0], "rules") == 0 && strcmp(argv[1], "apply") == 0)
		*rc = ctl_cmd_rules_apply(api, argv[2]);
	else if (argc == 2 && strcmp(argv[0], "rules") == 0 && strcmp(argv[1], "list") == 0)
		*rc = ctl_cmd_rules_list(api);
	else if (argc == 3 && strcmp(argv[0], "rules") == 0 && strcmp(argv[1], "get") == 0)
		*rc = ctl_cmd_rules_get(api, argv[2]);
	else if (argc == 3 && strcmp(argv[0], "rules") == 0 &&
	    strcmp(argv[1], "delete") == 0)
		*rc = ctl_cmd_rules_delete(api, argv[2]);
	else if (argc == 4 && strcmp(argv[0], "codes") == 0 && strcmp(argv[1], "add") == 0)
		*rc = ctl_cmd_codes_add(api, argv[2], argv[3]);
	else if (argc == 3 && strcmp(argv[0], "codes") == 0 &&
	    strcmp(argv[1], "count") == 0)
		*rc = ctl_cmd_codes_count(api, argv[2]);
	else if (argc == 3 && strcmp(argv[0], "deals") == 0 && strcmp(argv[1], "status") == 0)
		*rc = ctl_cmd_deal_status(api, argv[2]);
	else if (argc >= 1 && strcmp(argv[0], "tokens") == 0)
		*rc = ctl_cmd_tokens(api, argc, argv);
	else if (argc >= 1 && strcmp(argv[0], "audit") == 0)
		*rc = ctl_cmd_audit(api, argc, argv);
	else if (argc == 2 && strcmp(argv[0], "simulate") == 0)
		*rc = ctl_cmd_simulate(api, argv[1]);
	else if (argc == 3 && strcmp(argv[0], "report") == 0)
		*rc = ctl_cmd_report(api, argv[1], argv[2], NULL);
	else if (argc == 5 && strcmp(argv[0], "report") == 0 &&
	    strcmp(argv[3], "--segment-price") == 0)
		*rc = ctl_cmd_report(api, argv[1], argv[2], argv[4]);
	else
		return 0;
	return 1;
}

/* 1 when argv is a command that needs the admin API. */
static int needs_api(int argc, char **argv)
{
	return argc >= 1 && (strcmp(argv[0], "simulate") == 0 ||
	    strcmp(argv[0], "codes") == 0 || (argc >= 2 && strcmp(argv[0], "deals") == 0 &&
	    strcmp(argv[1], "status") == 0) || (argc >= 2 &&
	    strcmp(argv[0], "subscribers") == 0 && (strcmp(argv[1], "list") == 0 ||
	    strcmp(argv[1], "get") == 0 || strcmp(argv[1], "export") == 0 || strcmp(argv[1], "erase") == 0)) ||
	    strcmp(argv[0], "tokens") == 0 || strcmp(argv[0], "audit") == 0 ||
	    strcmp(argv[0], "report") == 0 || (argc >= 2 && strcmp(argv[0], "rules") == 0 &&
	    strcmp(argv[1], "check") != 0));
}

/* Runs argv[0..argc) (the command and its arguments) against Redis at addr, or
 * through the admin API when api->url is set and the command has an API form. */
enum ctl_cmd { IMPORT, DELETE, PUBLISH, CANCEL, CONVERT, MIGRATE, PAUSE, RESUME,
	PAUSE_STATUS, TEST_SEND, TESTLIST_SET, CONFIRM, LAYOUT_CREATE, LAYOUT_SHOW,
	LAYOUT_MIGRATE, DEAD_LIST, DEAD_REPLAY, FORMATS_SHOW, FORMATS_UPGRADE };

/*
 * On a Redis Cluster the commands that walk one Redis' keyspace (SCAN) or pipeline
 * many slots on one connection are refused, each with what to do instead. Returns 1
 * after printing for such a command, else 0.
 */
static int cluster_refuses(enum ctl_cmd cmd, int argc, char **argv)
{
	switch (cmd) {
	case IMPORT:
	case DELETE:
		fprintf(stderr, "dealpushctl: subscribers %s straight to Redis is refused on a "
		    "Redis Cluster (it pipelines every shard's keys on one connection); it "
		    "works through a notifier's admin API: dealpushctl --api URL subscribers "
		    "%s %s\n", argv[1], argv[1], argv[2]);
		return 1;
	case LAYOUT_MIGRATE:
		if (argc >= 2 && strcmp(argv[1], "--from-cluster") == 0) {
			fprintf(stderr, "dealpushctl: migrate --from-cluster names the cluster "
			    "itself; give the one Redis to copy it into with --redis (and no "
			    "--cluster or $DEALPUSH_CLUSTER): dealpushctl --redis TARGET migrate "
			    "--from-cluster IP:PORT,...\n");
			return 1;
		}
		if (argc >= 2 && strcmp(argv[1], "--to-single") == 0) {
			fprintf(stderr, "dealpushctl: migrate is refused on a Redis Cluster (it "
			    "walks one Redis' keyspace); copy the cluster into one Redis first: "
			    "dealpushctl --redis TARGET migrate --from-cluster IP:PORT,... (the "
			    "target empty), then dealpushctl --redis TARGET migrate --to-single "
			    "(docs/sharding.md, 4g)\n");
			return 1;
		}
		fprintf(stderr, "dealpushctl: migrate is refused on a Redis Cluster (it walks "
		    "one Redis' keyspace). To move one Redis to a cluster: dealpushctl --redis "
		    "SINGLE migrate --to-shards S on the single Redis, then redis-cli --cluster "
		    "import CLUSTER_NODE --cluster-from SINGLE --cluster-copy (every key of the "
		    "sharded layout carries its hash tag), then restart the notifiers with "
		    "[redis] cluster; back to one Redis: dealpushctl --redis TARGET migrate "
		    "--from-cluster IP:PORT,... (docs/sharding.md, 4g)\n");
		return 1;
	case MIGRATE:
		fprintf(stderr, "dealpushctl: consent migrate is refused on a Redis Cluster (it "
		    "walks one Redis' keyspace); run it on the single Redis before it moves "
		    "to a cluster\n");
		return 1;
	default:
		return 0;
	}
}

static int run_command(const char *addr, const char *cluster, struct ctl_api *api,
    int argc, char **argv)
{
	struct ctl_conn k;
	redisContext *c = NULL;
	const char *path = NULL;
	long expires_in = 0;
	int raw = 0, rc = CTL_FAIL;
	enum ctl_cmd cmd;

	memset(&k, 0, sizeof(k));
	if (argc == 3 && strcmp(argv[0], "rules") == 0 && strcmp(argv[1], "check") == 0)
		return ctl_cmd_rules_check(argv[2]);
	if (api->url != NULL && (needs_api(argc, argv) || !(argc >= 1 &&
	    (strcmp(argv[0], "publish") == 0 || strcmp(argv[0], "dead") == 0 ||
	    strcmp(argv[0], "cancel") == 0 || strcmp(argv[0], "convert") == 0 ||
	    strcmp(argv[0], "consent") == 0 || strcmp(argv[0], "pause") == 0 ||
	    strcmp(argv[0], "resume") == 0 || strcmp(argv[0], "test-send") == 0 ||
	    strcmp(argv[0], "testlist") == 0 || strcmp(argv[0], "deals") == 0 ||
	    strcmp(argv[0], "layout") == 0 || strcmp(argv[0], "migrate") == 0 ||
	    strcmp(argv[0], "formats") == 0)))) {
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
		path = argv[1];
	} else if (argc == 3 && strcmp(argv[0], "convert") == 0 &&
	    strcmp(argv[1], "--no-wait") == 0) {
		cmd = CONVERT;
		raw = 1;                /* no wait */
		path = argv[2];
	} else if (argc == 2 && strcmp(argv[0], "consent") == 0 &&
	    strcmp(argv[1], "migrate") == 0) {
		cmd = MIGRATE;
	} else if (argc == 2 && strcmp(argv[0], "pause") == 0 &&
	    strcmp(argv[1], "status") == 0) {
		cmd = PAUSE_STATUS;
	} else if (argc <= 2 && strcmp(argv[0], "pause") == 0) {
		cmd = PAUSE;
	} else if (argc == 1 && strcmp(argv[0], "resume") == 0) {
		cmd = RESUME;
	} else if (argc == 4 && strcmp(argv[0], "test-send") == 0 &&
	    strcmp(argv[2], "--to") == 0) {
		cmd = TEST_SEND;
	} else if (argc == 4 && strcmp(argv[0], "testlist") == 0 &&
	    strcmp(argv[1], "set") == 0) {
		cmd = TESTLIST_SET;
	} else if (argc == 3 && strcmp(argv[0], "deals") == 0 &&
	    strcmp(argv[1], "confirm") == 0) {
		cmd = CONFIRM;
	} else if (argc >= 2 && strcmp(argv[0], "dead") == 0 &&
	    strcmp(argv[1], "list") == 0) {
		cmd = DEAD_LIST;
	} else if (argc == 3 && strcmp(argv[0], "dead") == 0 &&
	    strcmp(argv[1], "replay") == 0) {
		cmd = DEAD_REPLAY;
	} else if (argc >= 2 && strcmp(argv[0], "layout") == 0 &&
	    strcmp(argv[1], "create") == 0) {
		cmd = LAYOUT_CREATE;
	} else if (argc == 2 && strcmp(argv[0], "layout") == 0 &&
	    strcmp(argv[1], "show") == 0) {
		cmd = LAYOUT_SHOW;
	} else if (argc >= 2 && strcmp(argv[0], "migrate") == 0) {
		cmd = LAYOUT_MIGRATE;
		if (strcmp(argv[1], "--from-cluster") == 0 && argc != 3 && cluster == NULL) {
			fprintf(stderr, "dealpushctl: migrate --from-cluster wants the cluster's "
			    "nodes: IP:PORT[,IP:PORT...]\n");
			goto out;
		}
	} else if (argc == 2 && strcmp(argv[0], "formats") == 0 &&
	    strcmp(argv[1], "show") == 0) {
		cmd = FORMATS_SHOW;
	} else if (argc >= 2 && strcmp(argv[0], "formats") == 0 &&
	    strcmp(argv[1], "upgrade") == 0) {
		cmd = FORMATS_UPGRADE;
	} else {
		usage(stderr);
		goto out;
	}
	if (cluster != NULL && cluster_refuses(cmd, argc, argv))
		goto out;
	if (ctl_conn_open(&k, addr, cluster) < 0)
		goto out;
	c = k.c;                /* one Redis: the commands refused on a cluster */
	/* layout create and show and migrate judge the stored layout themselves. */
	if (cmd != LAYOUT_CREATE && cmd != LAYOUT_SHOW && cmd != LAYOUT_MIGRATE &&
	    (rc = ctl_layout_check(&k)) != CTL_OK)
		goto out;
	/* A cluster needs the sharded layout: the single-instance layout's scripts name
	 * keys of several slots (as the notifier, which refuses to start). */
	if (cluster != NULL && cmd != LAYOUT_CREATE && cmd != LAYOUT_SHOW &&
	    layout_current() == NULL) {
		fprintf(stderr, "dealpushctl: event=layout_mismatch field=layout: the cluster "
		    "holds no sharded layout (" LAYOUT_KEY "); create it with dealpushctl "
		    "--cluster ... layout create --shards S\n");
		rc = LAYOUT_EXIT_MISMATCH;
		goto out;
	}
	/* formats show and upgrade judge the stored format themselves; the copy from a
	 * cluster judges its target (empty, or its own unfinished copy) itself. */
	if (cmd != FORMATS_SHOW && cmd != FORMATS_UPGRADE && !(cmd == LAYOUT_MIGRATE &&
	    strcmp(argv[1], "--from-cluster") == 0) &&
	    (rc = ctl_formats_check(&k)) != CTL_OK)
		goto out;
	rc = CTL_FAIL;
	switch (cmd) {
	case IMPORT: {
		/* The suppression list's entries are read on a connection of their own,
		 * while the store's calls are in flight on c (ctl_import.c). */
		redisContext *rd = ctl_redis_open(addr);

		rc = rd != NULL ? ctl_import_redis(c, rd, argv[2]) : CTL_FAIL;
		redisFree(rd);
		break;
	}
	case DELETE:
		rc = ctl_cmd_subscribers_delete(c, argv[2]);
		break;
	case PUBLISH:
		rc = ctl_cmd_publish(&k, path, raw, expires_in);
		break;
	case CANCEL:
		rc = ctl_cmd_cancel(&k, argv[1]);
		break;
	case MIGRATE:
		rc = ctl_consent_migrate(c);
		break;
	case CONVERT:
		rc = ctl_cmd_convert(&k, path, raw);
		break;
	case PAUSE:
		rc = ctl_cmd_pause(&k, 1, argc == 2 ? argv[1] : "");
		break;
	case RESUME:
		rc = ctl_cmd_pause(&k, 0, "");
		break;
	case PAUSE_STATUS:
		rc = ctl_cmd_pause_status(&k);
		break;
	case TEST_SEND:
		rc = ctl_cmd_test_send(&k, argv[1], argv[3]);
		break;
	case TESTLIST_SET:
		rc = ctl_cmd_testlist_set(&k, argv[2], argv[3]);
		break;
	case CONFIRM:
		rc = ctl_cmd_deal_confirm(&k, argv[2]);
		break;
	case LAYOUT_CREATE:
		rc = ctl_cmd_layout_create(&k, argc - 2, argv + 2);
		break;
	case LAYOUT_SHOW:
		rc = ctl_cmd_layout_show(&k);
		break;
	case DEAD_LIST:
		rc = ctl_cmd_dead_list(&k, argc - 2, argv + 2, api->json);
		break;
	case DEAD_REPLAY:
		rc = ctl_cmd_dead_replay(&k, argv[2]);
		break;
	case LAYOUT_MIGRATE:
		if (strcmp(argv[1], "--from-cluster") == 0)
			rc = ctl_cmd_migrate_from_cluster(&k, addr, argv[2]);
		else
			rc = ctl_cmd_migrate(c, argc - 1, argv + 1);
		break;
	case FORMATS_SHOW:
		rc = ctl_cmd_formats_show(&k);
		break;
	case FORMATS_UPGRADE:
		rc = ctl_cmd_formats_upgrade(&k, argc - 2, argv + 2);
		break;
	}
out:
	ctl_conn_close(&k);
	return rc;
}

/*
 * $DEALPUSH_CLOCK_OFFSET_S: the seconds a deployment's clock is moved by, as the
 * notifier's notifier.clock_offset_s (the demo runs at 17:00 UTC), so that --expires-in
 * and the times dealpushctl stamps agree with the notifier's. Returns 0, or -1 after
 * printing what is wrong.
 */
static int
clock_from_env(void)
{
	const char *v = getenv("DEALPUSH_CLOCK_OFFSET_S");
	char *end;
	long long s;

	if (v == NULL || v[0] == '\0')
		return 0;
	errno = 0;
	s = strtoll(v, &end, 10);
	if (errno != 0 || *end != '\0' || s < -CTL_CLOCK_OFFSET_MAX ||
	    s > CTL_CLOCK_OFFSET_MAX) {
		fprintf(stderr, "dealpushctl: DEALPUSH_CLOCK_OFFSET_S must be whole seconds "
		    "from -%ld to %ld, not '%.40s'\n", CTL_CLOCK_OFFSET_MAX,
		    CTL_CLOCK_OFFSET_MAX, v);
		return -1;
	}
	clock_set_offset((int64_t)s);
	return 0;
}

int main(int argc, char **argv)
{
	const char *addr = getenv("DEALPUSH_REDIS");
	const char *sentinels = getenv("DEALPUSH_SENTINELS");
	const char *master = getenv("DEALPUSH_MASTER");
	const char *cluster = getenv("DEALPUSH_CLUSTER");
	const char *cluster_from = "$DEALPUSH_CLUSTER", *sentinel_from = "$DEALPUSH_SENTINELS";
	char primary[300];
	struct ctl_api api;
	int i = 1, rc, redis_given = 0;

	if (clock_from_env() < 0)
		return CTL_FAIL;
	memset(&api, 0, sizeof(api));
	api.url = getenv("DEALPUSH_API");
	api.token = getenv("DEALPUSH_TOKEN");
	if (api.url != NULL && api.url[0] == '\0')
		api.url = NULL;

	if (addr == NULL || addr[0] == '\0')
		addr = CTL_DEFAULT_REDIS;
	if (cluster != NULL && cluster[0] == '\0')
		cluster = NULL;
	while (i < argc && argv[i][0] == '-' && argv[i][1] == '-') {
		if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return CTL_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("dealpushctl %s\n", DEALPUSH_VERSION);
			return CTL_OK;
		} else if (strcmp(argv[i], "--redis") == 0 && i + 1 < argc) {
			addr = argv[i + 1];
			redis_given = 1;
			i += 2;
		} else if (strncmp(argv[i], "--redis=", 8) == 0) {
			addr = argv[i] + 8;
			redis_given = 1;
			i++;
		} else if (strcmp(argv[i], "--cluster") == 0 && i + 1 < argc) {
			cluster = argv[i + 1];
			cluster_from = "--cluster";
			i += 2;
		} else if (strncmp(argv[i], "--cluster=", 10) == 0) {
			cluster = argv[i] + 10;
			cluster_from = "--cluster";
			i++;
		} else if (strcmp(argv[i], "--sentinel") == 0 && i + 1 < argc) {
			sentinels = argv[i + 1];
			sentinel_from = "--sentinel";
			i += 2;
		} else if (strcmp(argv[i], "--master") == 0 && i + 1 < argc) {
			master = argv[i + 1];
			i += 2;
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
	if (cluster != NULL) {
		char seeds[CTL_CLUSTER_SEEDS_MAX][CTL_ADDR_MAX], err[CTL_ERR_MAX];

		if (sentinels != NULL && *sentinels != '\0') {
			fprintf(stderr, "dealpushctl: %s and %s: a Redis Cluster fails over by "
			    "itself, without Sentinel; give one of them\n", cluster_from,
			    sentinel_from);
			return CTL_FAIL;
		}
		if (redis_given) {
			fprintf(stderr, "dealpushctl: --redis and %s: one Redis or a Redis "
			    "Cluster, not both\n", cluster_from);
			return CTL_FAIL;
		}
		if (ctl_cluster_seeds(cluster, seeds, CTL_CLUSTER_SEEDS_MAX, err,
		    sizeof(err)) < 0) {
			fprintf(stderr, "dealpushctl: %s%s\n", err, strcmp(cluster_from,
			    "--cluster") != 0 ? " (from $DEALPUSH_CLUSTER)" : "");
			return CTL_FAIL;
		}
	} else if (sentinels != NULL && *sentinels != '\0') {
		if (ctl_sentinel_primary(sentinels, master, primary, sizeof(primary)) < 0)
			return CTL_FAIL;
		addr = primary;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "dealpushctl: cannot start libcurl\n");
		return CTL_FAIL;
	}
	rc = run_command(addr, cluster, &api, argc - i, argv + i);
	layout_clear();
	curl_global_cleanup();
	if (fflush(stdout) != 0 && rc == CTL_OK)
		rc = CTL_FAIL;
	return rc;
}
