/*
 * ctl_int.h: what dealpushctl's files share (stage: outside the pipeline, the
 * operator's CLI): exit codes, limits, the Redis reply check and the input reader of
 * dealpushctl.c, the admin API client of ctl_api.c, and each file's commands (the
 * import of ctl_import.c, ctl_redis.c, ctl_rules.c, ctl_report.c, ctl_consent.c,
 * ctl_sentinel.c), and the connection every Redis command goes through (ctl_conn.c:
 * one Redis, or a Redis Cluster routed by ctl_cluster.c).
 * Private to the CLI.
 */
#ifndef DEALPUSH_CTL_INT_H
#define DEALPUSH_CTL_INT_H

#include <stddef.h>
#include <stdio.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <hiredis/hiredis.h>

#define CTL_DEFAULT_REDIS "127.0.0.1:6379"
#define CTL_LINE_MAX (64 * 1024)          /* longer lines are bad lines */
#define CTL_CONNECT_TIMEOUT_S 2
#define CTL_COMMAND_TIMEOUT_S 5
#define CTL_CHANGES_MAXLEN "100000"
#define CTL_EXPIRES_IN_MAX (366L * 86400 - 1)
#define CTL_CLOCK_OFFSET_MAX 1000000000L     /* as notifier.clock_offset_s */
#define CTL_TESTLISTS_KEY "testlists"         /* list name -> "id,id,..." */
#define CTL_API_CONNECT_TIMEOUT_MS 2000L
#define CTL_API_TIMEOUT_MS 30000L
#define CTL_API_REPLY_MAX (8L * 1024 * 1024)  /* answer bytes kept; more fails the call */
#define CTL_API_BODY_MAX (64 * 1024)          /* the server's default body cap */
#define CTL_ERR_MAX 512                       /* a connection's last error */
#define CTL_ADDR_MAX 64                       /* "ip:port" of a cluster node */
#define CTL_CLUSTER_SEEDS_MAX 16              /* --cluster entries */

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

struct ctl_api {
	const char *url;                  /* base URL, no trailing slash needed */
	const char *token;                /* never printed */
	int json;                         /* --json: print answers as they come */
	CURL *curl;
};

struct ctl_buf {
	char *p;
	size_t len;
	int over;                         /* the answer passed CTL_API_REPLY_MAX */
};

/* A conversion dealpushctl convert posted, and what became of it (ctl_convwait.c). */
struct ctl_posted {
	char entry[64];                   /* its entry in stream conversions */
	char order[129];
	char outcome[400];                /* as printed; "" until known */
	int done, dead;
};

#define CTL_CONVERT_WAIT_MS 10000L        /* convert waits this long for outcomes */

/* ---- ctl_conn.c ---- */

/* What a Redis command of dealpushctl goes through: one Redis (c) or a Redis Cluster
 * (cl), never both. */
struct ctl_cluster;
struct ctl_conn {
	redisContext *c;
	struct ctl_cluster *cl;
	char err[CTL_ERR_MAX];            /* why the last command got no reply */
};

/* Connects to the Redis at addr (HOST:PORT, [v6]:PORT) with CTL_CONNECT_TIMEOUT_S,
 * sets CTL_COMMAND_TIMEOUT_S and logs in ($DEALPUSH_REDIS_PASSWORD, _USER). Returns
 * the context (the caller's: redisFree), or NULL with why in err (never the
 * password). ctl_redis_open prints why instead. */
redisContext *ctl_redis_connect(const char *addr, char *err, size_t errsz);
redisContext *ctl_redis_open(const char *addr);

/* Opens k on the Redis at addr, or, when seeds is not NULL, on the Redis Cluster of
 * those seeds (its slot map read at once). 0, or -1 after printing why (k holds
 * nothing then). */
int ctl_conn_open(struct ctl_conn *k, const char *addr, const char *seeds);
void ctl_conn_close(struct ctl_conn *k);

/* One command: on one Redis exactly redisCommand / redisCommandArgv; on a cluster
 * routed by its key (ctl_cluster_argv). Returns the reply (the caller frees it; an
 * error reply is a reply), or NULL with why in ctl_errstr(k). */
redisReply *ctl_command(struct ctl_conn *k, const char *fmt, ...);
redisReply *ctl_command_argv(struct ctl_conn *k, int argc, const char **argv,
    const size_t *lens);
const char *ctl_errstr(const struct ctl_conn *k);

/* r (a reply of ctl_command, may be NULL) when it has type type; else prints why
 * ("dealpushctl: redis: <what>: ..."), frees r and returns NULL. */
redisReply *ctl_command_expect(struct ctl_conn *k, redisReply *r, int type,
    const char *what);

/* Loads the daemon's script name (notifier/lua/<name>.lua as built in), so the CLI
 * writes exactly what the daemon writes; on a cluster on every primary. Fills sha (41
 * bytes). Returns 0, or -1 after printing. ctl_load_script: the same on one Redis. */
int ctl_conn_load_script(struct ctl_conn *k, const char *name, char *sha);
int ctl_load_script(redisContext *c, const char *name, char *sha);

/* The arguments of one RESP command (as hiredis formats it) in buf: at most max,
 * pointing into buf (not NUL-terminated: lens). Returns argc, or -1 when buf is not
 * exactly one such command. */
int ctl_resp_split(const char *buf, size_t len, int max, const char **argv,
    size_t *lens);

/* ---- ctl_cluster.c ---- */

/* Reads the seeds of the Redis Cluster at seeds (--cluster, $DEALPUSH_CLUSTER:
 * "ip:port,ip:port,...", IPv6 as [addr]:port) and its slot map, asked of each seed in
 * turn. Returns the router (ctl_cluster_free), or NULL with why in err. */
/* Sleeps ms milliseconds, through signals (ctl_cluster.c). */
void ctl_sleep_ms(long ms);

struct ctl_cluster *ctl_cluster_open(const char *seeds, char *err, size_t errsz);
void ctl_cluster_free(struct ctl_cluster *cl);

/* Sends one command where rroute.c places it: its key's slot's primary, any primary,
 * or every primary (the answer when all agree). MOVED, ASK, TRYAGAIN and CLUSTERDOWN
 * are followed a bounded number of times. Returns the reply (the caller's; Redis'
 * error reply when the retries ran out), or NULL with why in err naming the command:
 * refused (unknown to rroute, keys in several slots), redirected too often, or the
 * connection failed (a command sent may have run). */
redisReply *ctl_cluster_argv(struct ctl_cluster *cl, int argc, const char **argv,
    const size_t *lens, char *err, size_t errsz);

/* The seeds in list as "ip:port" ("[v6]:port") into out[0..max): IP addresses only,
 * as the notifier's redis.cluster. Returns how many, or -1 with what is wrong (empty,
 * no port, not an IP address, too many) in err. Pure. */
int ctl_cluster_seeds(const char *list, char (*out)[CTL_ADDR_MAX], int max, char *err,
    size_t errsz);

/* The primaries of the map in force, for what runs on each in turn (SCAN, DBSIZE,
 * CLIENT LIST): how many; the k-th one's "ip:port" ("" out of range); its connection
 * (opened on first use, the router's: never freed by the caller; NULL with why in
 * err). */
int ctl_cluster_nprimaries(const struct ctl_cluster *cl);
const char *ctl_cluster_primary_addr(const struct ctl_cluster *cl, int k);
redisContext *ctl_cluster_primary_conn(struct ctl_cluster *cl, int k, char *err,
    size_t errsz);

/* The connection to the node at addr ("ip:port", as ctl_cluster_primary_addr gave
 * it: the map read again may list the primaries in another order), as above. */
redisContext *ctl_cluster_conn_at(struct ctl_cluster *cl, const char *addr, char *err,
    size_t errsz);

/* The slots no primary serves in the map in force. */
int ctl_cluster_uncovered(const struct ctl_cluster *cl);

/* Reads the map again: 1 when every slot has the primary it had, 0 when one moved (a
 * failover, a reshard), -1 with why in err (the map before stays in force). */
int ctl_cluster_map_same(struct ctl_cluster *cl, char *err, size_t errsz);

enum ctl_redirect {
	CTL_REDIRECT_NONE = 0,            /* another error: Redis' answer */
	CTL_REDIRECT_MOVED,               /* the slot's owner is another node */
	CTL_REDIRECT_ASK,                 /* this command alone, after ASKING, there */
	CTL_REDIRECT_TRYAGAIN,            /* keys split by a migration: retry soon */
	CTL_REDIRECT_DOWN,                /* CLUSTERDOWN: retry soon */
	CTL_REDIRECT_BAD                  /* MOVED or ASK that cannot be read */
};

/* What the error reply msg of node from ("ip:port") asks for: for MOVED and ASK the
 * slot and the node ("ip:port"; an empty host is from's) into *slot and addr. Pure. */
enum ctl_redirect ctl_cluster_redirect(const char *msg, const char *from, int *slot,
    char *addr, size_t size);

/* ---- dealpushctl.c ---- */

/* Reads one pipelined reply and checks its type (and, for a status, its text).
 * Returns 0 (*keep, when not NULL, is the reply: the caller frees it), or -1 after
 * printing why. what names the command in the message. */
int ctl_expect_reply(redisContext *c, int type, const char *status, const char *what,
    redisReply **keep);

/* Opens path ("-" = stdin). Returns 0, or -1 after printing why. */
int ctl_input_open(struct ctl_input *in, const char *path);
void ctl_input_close(struct ctl_input *in);

/* The next line that is not blank or a # comment, in in->buf (in->lineno its number);
 * a line over CTL_LINE_MAX is reported, counted in *bad and passed over. Returns 1
 * with a line, 0 at the end, -1 on a read error (printed). */
int ctl_input_next_entry(struct ctl_input *in, unsigned long *bad);

/* Prints "FILE:LINE: error: msg" for the current line of in, on stderr. */
void ctl_report_bad_line(const struct ctl_input *in, const char *msg);

/* ---- ctl_api.c ---- */

/* One request: method on the API's base URL + path, with body (may be NULL). Returns
 * the HTTP status with the answer in *out (caller frees out->p; never NULL on
 * success), or -1 after printing why (connection, timeout, too large). */
long ctl_api_call(struct ctl_api *api, const char *method, const char *path,
    const char *body, size_t len, const char *ctype, struct ctl_buf *out);

/* The server's error text "<error> (field <field>)" of an answer, into buf. */
const char *ctl_api_error_text(const struct ctl_buf *b, char *buf, size_t size);

/* 1 (after printing) for a status the command cannot go on after: 401, 403, 5xx. */
int ctl_api_fatal(long status, const struct ctl_buf *b);

/* Member name of an API answer: its number (0 when absent or not a number), its
 * string ("" likewise). */
double ctl_jnum(const cJSON *o, const char *name);
const char *ctl_jstr(const cJSON *o, const char *name);

/* "/prefix/<escaped name>" into buf. 0, or -1 (printed). */
int ctl_api_path(struct ctl_api *api, char *buf, size_t size, const char *prefix,
    const char *name);

/* dealpushctl tokens create NAME --role R | list | revoke NAME, and dealpushctl
 * audit [--limit N], through the API (argv[0] is "tokens" or "audit"). CTL_OK,
 * CTL_BAD_INPUT (refused by the server, printed) or CTL_FAIL (printed). */
int ctl_cmd_tokens(struct ctl_api *api, int argc, char **argv);
int ctl_cmd_audit(struct ctl_api *api, int argc, char **argv);

/* dealpushctl rules list | get NAME | delete NAME through the API: a table of the
 * rules in use, one source's text, or a source deleted. --json prints the answer.
 * CTL_OK, CTL_BAD_INPUT (no such source, a folder rule) or CTL_FAIL (printed). */
int ctl_cmd_rules_list(struct ctl_api *api);
int ctl_cmd_rules_get(struct ctl_api *api, const char *name);
int ctl_cmd_rules_delete(struct ctl_api *api, const char *name);

/* dealpushctl subscribers delete ID through the API. Returns CTL_OK (deleted, or it
 * was not stored), CTL_BAD_INPUT (not a valid id) or CTL_FAIL (printed). */
int ctl_cmd_api_delete(struct ctl_api *api, const char *id);
/* GET /v1/subscribers/<id>: prints the answer (the document and "behaviour") as
 * indented JSON; CTL_OK, CTL_BAD_INPUT for a bad id, else CTL_FAIL after printing
 * the API's error. */
int ctl_cmd_api_get(struct ctl_api *api, const char *id);

/* ---- ctl_redis.c ---- */

/* dealpushctl subscribers delete ID straight to Redis (admin_sub_del.lua, as the
 * API's delete). Returns CTL_OK, CTL_BAD_INPUT or CTL_FAIL (printed). */
int ctl_cmd_subscribers_delete(redisContext *c, const char *id);

/* dealpushctl publish [--raw] [--expires-in N] FILE: each line a deal for stream
 * "deals". Returns CTL_OK, CTL_BAD_INPUT (some lines refused) or CTL_FAIL (printed). */
int ctl_cmd_publish(struct ctl_conn *c, const char *path, int raw, long expires_in);

/* dealpushctl convert [--no-wait] FILE: each line a conversion for stream
 * "conversions"; unless no_wait, then each one's outcome (ctl_convert_wait). Returns
 * CTL_OK, CTL_BAD_INPUT (some lines refused, or dead-lettered by the notifier) or
 * CTL_FAIL (printed). */
int ctl_cmd_convert(struct ctl_conn *c, const char *path, int no_wait);

/* ---- ctl_convwait.c ---- */

/* Waits up to wait_ms for the outcome of each of p[0..n) (attributed, holdout,
 * unattributed, duplicate, dead-lettered with its reason) and prints one line each
 * ("no outcome" for those still unknown). *refused: how many were dead-lettered.
 * Returns CTL_OK, or CTL_FAIL on a Redis error (printed). */
int ctl_convert_wait(struct ctl_conn *c, struct ctl_posted *p, size_t n, long wait_ms,
    unsigned long *refused);

/* dealpushctl cancel ID: a cancel for stream "deals". Returns CTL_OK,
 * CTL_BAD_INPUT or CTL_FAIL (printed). */
int ctl_cmd_cancel(struct ctl_conn *c, const char *id);

/* dealpushctl pause [REASON] (on 1), resume (on 0): writes dealpush:pause, which
 * every notifier reads within a fifth of a second. Returns CTL_OK, CTL_BAD_INPUT (a
 * bad reason) or CTL_FAIL (printed). */
int ctl_cmd_pause(struct ctl_conn *c, int on, const char *reason);

/* dealpushctl test-send DEAL.json --to ID,ID... | --to @LIST: the deal once more,
 * as "<id>.test-<now>" in campaign "test", to those subscribers alone
 * (docs/rules.md, "Test sends"). CTL_OK, CTL_BAD_INPUT or CTL_FAIL (printed). */
int ctl_cmd_test_send(struct ctl_conn *c, const char *path, const char *to);

/* dealpushctl testlist set NAME ID,ID...: a named list of test recipients in hash
 * CTL_TESTLISTS_KEY. CTL_OK, CTL_BAD_INPUT or CTL_FAIL. */
int ctl_cmd_testlist_set(struct ctl_conn *c, const char *name, const char *ids);

/* dealpushctl deals confirm ID: a deal the guards held published again, confirmed
 * (deal_confirm.lua, as POST /v1/deals/ID/confirm). CTL_OK, CTL_BAD_INPUT (none held)
 * or CTL_FAIL. */
int ctl_cmd_deal_confirm(struct ctl_conn *c, const char *id);

/* dealpushctl pause status: "paused since ... (reason)" or "running". CTL_OK or
 * CTL_FAIL. */
int ctl_cmd_pause_status(struct ctl_conn *c);

/* ---- ctl_rules.c ---- */

/* dealpushctl rules check DIR: compiles the folder, errors printed like a compiler's.
 * Returns CTL_OK, CTL_BAD_INPUT (errors) or CTL_FAIL. */
int ctl_cmd_rules_check(const char *dir);

/* Reads a whole file of at most max bytes. Returns it (caller frees) or NULL. */
char *ctl_read_small_file(const char *path, size_t max, size_t *len);

/* dealpushctl rules apply DIR: checked locally, then each file put over the API.
 * Returns CTL_OK, CTL_BAD_INPUT or CTL_FAIL (printed). */
int ctl_cmd_rules_apply(struct ctl_api *api, const char *dir);

/* ---- ctl_report.c ---- */

/* dealpushctl simulate DEAL.json: the deal simulated by the API. Returns CTL_OK,
 * CTL_BAD_INPUT or CTL_FAIL (printed). */
int ctl_cmd_simulate(struct ctl_api *api, const char *path);

/* dealpushctl report KIND NAME [--segment-price P]: the funnel as a table (price:
 * P, or NULL). Returns CTL_OK, CTL_BAD_INPUT or CTL_FAIL (printed). */
int ctl_cmd_report(struct ctl_api *api, const char *kind, const char *name,
    const char *price);

/* ---- ctl_codes.c ---- */

/* dealpushctl codes add POOL FILE (- for stdin): each line checked, bad ones named
 * FILE:LINE, the good ones posted to /v1/codes/POOL in batches. codes count POOL: the
 * codes left. CTL_OK, CTL_BAD_INPUT (bad lines or pool name) or CTL_FAIL (printed). */
int ctl_cmd_codes_add(struct ctl_api *api, const char *pool, const char *file);
int ctl_cmd_codes_count(struct ctl_api *api, const char *pool);

/* ---- ctl_dead.c ---- */

/* dealpushctl deals status ID through GET /v1/deals/ID: the state, a dead letter and
 * the counts (--json: the answer). CTL_OK, CTL_BAD_INPUT (unknown deal, bad id) or
 * CTL_FAIL (printed). */
int ctl_cmd_deal_status(struct ctl_api *api, const char *id);

/* dealpushctl dead list [--deals|--conversions] [--limit N] [--json] (argv after
 * "list"): the latest dead letters, newest first. CTL_OK, CTL_BAD_INPUT or CTL_FAIL. */
int ctl_cmd_dead_list(struct ctl_conn *c, int argc, char **argv, int json);

/* dealpushctl dead replay ENTRY: the dead letter's payload checked by the daemon's
 * parser, then published again and removed in one script (dead_replay.lua). CTL_OK,
 * CTL_BAD_INPUT (no such entry, still invalid, held: it stays) or CTL_FAIL. */
int ctl_cmd_dead_replay(struct ctl_conn *c, const char *entry);

/* ---- ctl_subs.c ---- */

/* dealpushctl subscribers list [--interest X] [--consent sms|dm] [--tz ZONE]
 * [--limit N] [--json] (argv after "list"): every page of GET /v1/subscribers, one
 * line per subscriber, or the stored JSON a line. CTL_OK, CTL_BAD_INPUT (a bad option
 * or filter) or CTL_FAIL (printed). */
int ctl_cmd_subscribers_list(struct ctl_api *api, int argc, char **argv);

/* ---- ctl_privacy.c ---- */

/* subscribers export ID: everything kept about the subscriber, as JSON (API). */
int ctl_cmd_subscribers_export(struct ctl_api *api, const char *id);

/* subscribers erase ID: their data erased, the proof of consent kept (API). */
int ctl_cmd_subscribers_erase(struct ctl_api *api, const char *id);

/* ---- ctl_import.c ---- */


/* ctl_migrate.c: dealpushctl migrate --to-shards S | --to-single (argv after
 * "migrate"): every key of one layout moved to its name in the other, on the same
 * Redis, refused while a notifier runs, resumable after a kill (docs/sharding.md 4g).
 * Returns CTL_OK, CTL_BAD_INPUT (refused) or CTL_FAIL. */
int ctl_cmd_migrate(redisContext *c, int argc, char **argv);

/* ctl_fromcluster.c: dealpushctl --redis TARGET migrate --from-cluster SEEDS: every
 * key of every primary of the Redis Cluster of seeds copied into the Redis of k (at
 * target, as given: for messages; one
 * Redis, empty or holding an unfinished copy of the same cluster), DUMP/PTTL ->
 * RESTORE REPLACE with the TTL, by SCAN batches; refused while a notifier serves the
 * cluster; counted and verified; the cluster is only read. Returns CTL_OK,
 * CTL_BAD_INPUT (refused, printed) or CTL_FAIL (printed; run it again to finish). */
int ctl_cmd_migrate_from_cluster(struct ctl_conn *k, const char *target,
    const char *seeds);

/* ctl_sentinel.c: the primary's "host:port" of Sentinel master master, asked of the
 * sentinels in list (host:port,...) in turn and confirmed with ROLE, into addr.
 * Returns 0, or -1 after printing why. */
int ctl_sentinel_primary(const char *list, const char *master, char *addr,
    size_t size);

/* dealpushctl subscribers import FILE straight to Redis: every line validated
 * (subscriber_parse), stored by admin_sub_bulk.lua in batches with a bounded number
 * in flight. Returns CTL_OK, CTL_BAD_INPUT (some lines refused, the rest stored) or
 * CTL_FAIL (printed; what was stored before stays). rd, a second
 * connection to the same Redis, reads each batch's suppression entries (subbulk.h)
 * while earlier batches are in flight on c. */
int ctl_import_redis(redisContext *c, redisContext *rd, const char *path);

/* The same through the admin API's bulk endpoint (POST /v1/subscribers/bulk). */
int ctl_import_api(struct ctl_api *api, const char *path);

/* ---- ctl_consent.c ---- */

/* dealpushctl consent migrate: every consent_history:<id> / consent_log:<id> of
 * earlier versions moved into consent:records. Returns CTL_OK or CTL_FAIL (printed;
 * what was moved stays moved, and a new run goes on). */
int ctl_consent_migrate(redisContext *c);

/* ---- ctl_layout.c ---- */

/* Reads and checks dealpush:layout and puts it in force (layout_set), before a
 * command names a key. Returns CTL_OK, LAYOUT_EXIT_MISMATCH (a corrupted or half
 * migrated layout, printed naming the field) or CTL_FAIL (printed). */
int ctl_layout_check(struct ctl_conn *c);

/* ---- ctl_formats.c ---- */

/* Reads the deployment's stored format version (dealpush:formats) and makes it the
 * version this run writes. CTL_OK; FORMATS_EXIT_MISMATCH (78) after printing when it
 * is newer than this dealpushctl reads; CTL_FAIL on a Redis error. */
int ctl_formats_check(struct ctl_conn *c);

/* formats show: the deployment's version, and each notifier: what it reads, its
 * release, whether it is live. */
int ctl_cmd_formats_show(struct ctl_conn *c);

/* formats upgrade [--to N]: raises the deployment's version to N (default: the
 * highest this dealpushctl reads) when every live notifier reads N; else refuses
 * (CTL_BAD_INPUT) naming each notifier too old. */
int ctl_cmd_formats_upgrade(struct ctl_conn *c, int argc, char **argv);

/* dealpushctl layout create --shards S (argv after "create"): writes the layout,
 * refused (CTL_BAD_INPUT) when one exists or the single-instance layout holds data.
 * Returns CTL_OK, CTL_BAD_INPUT or CTL_FAIL (printed). */
int ctl_cmd_layout_create(struct ctl_conn *c, int argc, char **argv);

/* dealpushctl layout show: the stored layout, every shard's tag and slot. Returns
 * CTL_OK, LAYOUT_EXIT_MISMATCH (an invalid layout, printed) or CTL_FAIL. */
int ctl_cmd_layout_show(struct ctl_conn *c);

/* Erases the progress line from the terminal, if one is shown, so that a message can
 * be printed on stderr. */
void ctl_progress_clear(void);

#endif
