/*
 * itest.h: the integration-test harness: real redis-server, real gwsim, the real
 * notifier, all on 127.0.0.1, under the run folder tests/run.sh made.
 *
 * Processes started here die with the test (PR_SET_PDEATHSIG) and are also listed
 * in $DP_RUN_DIR/pids so that the runner can stop them after a crash.
 */
#ifndef DEALPUSH_ITEST_H
#define DEALPUSH_ITEST_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

struct it_proc {
	pid_t pid;
	char log[512];
};

/* The Twilio account the tests configure on both sides. */
#define IT_ACCOUNT_SID "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define IT_AUTH_TOKEN "test-auth-token"
#define IT_FROM "+15005550006"

/* $DP_RUN_DIR, $DP_BUILD (absolute paths) and the shared redis port. */
const char *it_run_dir(void);
const char *it_build(void);
int it_redis_port(void);

/* A path under the run dir, unique per call: "<run>/<prefix>-<n><suffix>". */
void it_path(char *buf, size_t size, const char *prefix, const char *suffix);

/* Starts argv[0] with stdout+stderr appended to a log named after it; extra
 * environment "K=V" strings in env (NULL-ended, may be NULL). 0 or -1. */
int it_spawn(struct it_proc *p, const char *const *argv, const char *const *env);

/* Sends sig; with wait_ms > 0 waits that long for exit (then SIGKILL). Returns the
 * exit status as from waitpid, or -1. */
int it_stop(struct it_proc *p, int sig, long wait_ms);

/* Stops a notifier at the end of a test: SIGTERM, then it must exit 0 within the
 * grace time (under the sanitizer build that also means no leak was found).
 * Returns 0 when it did or was not running, -1 otherwise (reason on stderr). */
int it_stop_clean(struct it_proc *p);

/* Runs a command to completion, stdout+stderr into out (may be NULL). Exit status. */
int it_run(const char *const *argv, char *out, size_t outsize);

/* A connection to the shared redis (or port); aborts the test on failure. */
redisContext *it_redis_connect(int port);

/* FLUSHALL on the shared redis. */
void it_flush(redisContext *rc);

/* Starts a private redis-server (for restart tests); returns its port. dir is its
 * data folder; appendonly chooses AOF. */
int it_redis_start(struct it_proc *p, const char *dir, int port, int appendonly);

/* A Redis Cluster of IT_CLUSTER_NODES redis-server on 127.0.0.1 (3 primaries, 3
 * replicas, cluster-node-timeout 1000 ms), made by dp_start_cluster in tests/lib.sh. */
#define IT_CLUSTER_NODES 6
struct it_cluster {
	int ports[IT_CLUSTER_NODES];
	pid_t pids[IT_CLUSTER_NODES];
	char dir[512];                 /* the nodes' state, under the run dir */
};

/* Starts a fresh cluster under the run dir and waits for cluster_state:ok; 0 or -1
 * (reason on stderr). Its pids are in $DP_RUN_DIR/pids as well, for the runner. */
int it_cluster_start(struct it_cluster *cl);

/* Starts node i again on its port with its state (after a SIGKILL: a primary that
 * was failed over rejoins as a replica). 0 or -1. */
int it_cluster_restart(struct it_cluster *cl, int i);

/* SIGKILLs every node still running (state is thrown away). */
void it_cluster_stop(struct it_cluster *cl);

/* fmt's command on the node of cl that answers it as the primary of its key's slot
 * (each running node asked in turn until one answers neither MOVED nor READONLY;
 * itcluster.c). The reply (freeReplyObject), or NULL when none does. */
struct redisReply *it_cluster_cmd(const struct it_cluster *cl, const char *fmt, ...);

/* Writes the sharded layout of shards shards on cl (the fields `dealpushctl layout
 * create` writes on one Redis). 0, or -1 (reason on stderr). */
int it_cluster_layout(const struct it_cluster *cl, unsigned shards);

/* The index in cl of the node that is the primary of key's slot now (it answers
 * TYPE, the others MOVED), or -1. */
int it_cluster_primary_of(const struct it_cluster *cl, const char *key);

/* 1 when node i of cl is a primary now (ROLE), else 0. */
int it_cluster_is_primary(const struct it_cluster *cl, int i);

/* fmt (with up to two string arguments a, b) on node i, no redirect followed. The
 * reply (freeReplyObject), or NULL. */
struct redisReply *it_cluster_on_node(const struct it_cluster *cl, int i,
    const char *fmt, const char *a, const char *b);

/* Node i's id (CLUSTER MYID) into id. 0, or -1. */
int it_cluster_node_id(const struct it_cluster *cl, int i, char *id, size_t size);

/* A primary other than node a, or -1. */
int it_cluster_other_primary(const struct it_cluster *cl, int a);

/* A reshard of slot from node a to node b, begun as redis-cli does it: IMPORTING on
 * b, MIGRATING on a, every key of the slot moved (MIGRATE); the slot stays a's.
 * it_cluster_slot_finish gives it to b on every primary. 0, or -1 (why on stderr). */
int it_cluster_slot_begin(const struct it_cluster *cl, int slot, int a, int b);
int it_cluster_slot_finish(const struct it_cluster *cl, int slot, int b);

/* Shard k's key "{tag}name" in the layout of shards shards, into buf ("" when k is
 * not a shard). Returns buf. */
const char *it_cluster_shard_key(unsigned shards, unsigned k, const char *name,
    char *buf, size_t size);

/* XADD deals * deal <json> on the primary of `deals`; the push ids' start ("<entry
 * id>:") into entry. 0, or -1 (why on stderr). */
int it_cluster_publish(const struct it_cluster *cl, const char *json, char *entry,
    size_t size);

/* A deal's push states over the shards of a layout of shards shards (each
 * {tag}push:<deal> read on its primary): final ones by kind, open ones. */
struct it_states {
	long final, open, sent, unknown, other;
};

/* Into st; 0, or -1 when a shard's hash could not be read (a failover: ask again). */
int it_cluster_states(const struct it_cluster *cl, unsigned shards, const char *deal,
    struct it_states *st);

/* The 201 answers gwsim g gave to <prefix><i> (0 <= i < n) into texts[i], of the pushes
 * whose id starts with entry (NULL: any). Returns the phones texted more than once. */
struct it_gwsim;
int it_gwsim_texts(const struct it_gwsim *g, const char *prefix, const char *entry,
    int n, int *texts);

/* From a notifier's /healthz on port: its mirror's subscribers and the shards it
 * serves (-1 without ownership). 1 when it says ok with no shard loading, 0 when
 * not, -1 when it does not answer. */
int it_notifier_health(int port, long *subs, long *served);

/* Requests of the pushes whose id starts with entry that reached g after after_ms
 * (wall clock: gwsim's ts_ms). */
long it_gwsim_requests_after(const struct it_gwsim *g, const char *entry,
    long long after_ms);

/* A primary, its replica and three sentinels on 127.0.0.1 (quorum 2, down-after
 * 1000 ms), made by dp_start_sentinel in tests/lib.sh. */
#define IT_SENTINELS 3
struct it_sentinel {
	int primary, replica;
	int sentinels[IT_SENTINELS];
	pid_t primary_pid, replica_pid;
	pid_t sentinel_pids[IT_SENTINELS];
};

/* Starts them under the run dir, the master named master; with user (and password)
 * non-NULL both servers have that ACL user. Waits until every sentinel knows the
 * primary, the replica and the others. 0 or -1 (reason on stderr). Their pids are
 * in $DP_RUN_DIR/pids as well, for the runner. */
int it_sentinel_start(struct it_sentinel *st, const char *master, const char *user,
    const char *password);

/* Starts a new replica of the Redis on port primary (after a failover: the old
 * primary's host back as a replica), in place of the dead primary_pid. Its port, or
 * -1. */
int it_sentinel_add_replica(struct it_sentinel *st, int primary);

/* SIGKILLs every process of it still running. */
void it_sentinel_stop(struct it_sentinel *st);

struct it_gwsim {
	struct it_proc proc;
	int port;
	char logfile[512];
};

/* Starts gwsim with extra flags (NULL-ended, may be NULL); waits for its port. */
int it_gwsim_start(struct it_gwsim *g, const char *const *extra);

/* Every JSON line gwsim has logged so far, as a cJSON array (caller deletes). */
cJSON *it_gwsim_requests(const struct it_gwsim *g);

/* POSTs body (JSON) to http://127.0.0.1:port/path; returns the status or -1. */
int it_http_post(int port, const char *path, const char *body);

/* GETs http://127.0.0.1:port/path; the body goes into body (NUL-terminated, cut to
 * size). Returns the status or -1. */
int it_http_get(int port, const char *path, char *body, size_t size);

/* Number of logged requests with this HTTP status (0 = any). */
int it_gwsim_count(const struct it_gwsim *g, int status);

struct it_notifier {
	struct it_proc proc;
	char config[512];
};

/* Writes a config for redis port and gwsim port (extra lines appended verbatim,
 * may be NULL) and starts the notifier with consumer name consumer. */
int it_notifier_start(struct it_notifier *n, int redis_port, int gw_port,
    const char *consumer, const char *extra);

/* it_notifier_start with the HTTP surface on a kernel-chosen loopback port
 * ("[http] port = 0", extra appended after it, so it may add [http] keys); waits
 * for the port the notifier writes and returns it, or -1. */
int it_notifier_start_http(struct it_notifier *n, int redis_port, int gw_port,
    const char *consumer, const char *extra);

/* it_notifier_start_http with gw_extra (may be NULL) written first, into the gateway's
 * section (rate_per_s, max_in_flight ...). */
int it_notifier_start_http_gw(struct it_notifier *n, int redis_port, int gw_port,
    const char *consumer, const char *gw_extra, const char *extra);
/* The local time of epoch second t in zone (an IANA name), through the C library
 * (TZ is set for the call and put back): an oracle apart from notifier/tz.c. */
void it_local_tm(const char *zone, long long t, struct tm *tm);

/* The epoch second of hour:00:00 local in zone, days after the local date of t. */
long long it_local_at(const char *zone, long long t, int days, int hour);

/* Imports JSON lines of subscribers through dealpushctl; returns its exit status. */
int it_import(int redis_port, const char *jsonl);

/* Imports the usual audience: s-0..s-(n-1), phone +1512555<phone_base + i> (4 digits),
 * SMS only, consent given, America/Chicago, interested in category. Aborts the test
 * when the import fails. */
void it_import_audience(int redis_port, int n, int phone_base, const char *category);

/* XADD deals * deal <json>; returns 0 or -1. */
int it_publish(redisContext *rc, const char *json);

/*
 * The tests' wall clock: real time moved to the nearest 17:00 UTC, when every test
 * subscriber (America/Chicago, America/New_York, Europe/Berlin) is inside the legal
 * sending window whatever the hour the suite runs at. Every notifier the harness
 * starts gets the same offset (notifier.clock_offset_s).
 */
long long it_clock_offset(void);
long long it_now(void);

/* A deal JSON with this id and category expiring secs seconds after it_now()
 * (static buffer). */
const char *it_deal(const char *id, const char *category, int secs);

/* Polls until cond(arg) is true or timeout_ms passes; returns 1 when true. */
int it_wait(int (*cond)(void *arg), void *arg, long timeout_ms);

/* EVAL of the embedded script name (scripts.h script_source: as the notifier runs
 * it) with keys then args (NULL-terminated lists, at most 60 in all). The reply is
 * the caller's; NULL only when the connection failed. */
struct redisReply *it_eval(redisContext *rc, const char *name, const char *const *keys,
    const char *const *args);

/* Integer reply of a formatted command (XLEN, HLEN ...), -1 on error. */
long long it_int(redisContext *rc, const char *fmt, ...);

/* From subscriber sub's consent record (consent:records, docs/compliance.md §4):
 * field what ("when", "state", "how" or "detail") of its last event on channel ch,
 * into out ("" when there is none). Returns out. */
const char *it_consent_last(redisContext *rc, const char *sub, const char *ch,
    const char *what, char *out, size_t size);

/* The number of events in subscriber sub's consent record (0 when none). */
long long it_consent_events(redisContext *rc, const char *sub);

/* The fixture of a test with one notifier and one gwsim on the shared redis. */
struct it_one {
	redisContext *rc;
	int port;
	struct it_gwsim gw;
	struct it_notifier nt;
};

/* cmocka setup: a struct it_one in *state, connected to the shared redis, flushed. */
int it_one_setup(void **state);

/* The same for a test's own fixture holding a struct it_one: it_one_open connects o to
 * the shared redis and flushes it; it_one_close stops o's notifier (-1 when it did
 * not stop cleanly) and gwsim and disconnects, freeing nothing else. */
void it_one_open(struct it_one *o);
int it_one_close(struct it_one *o);

/* cmocka teardown: the notifier must stop cleanly (it_stop_clean); gwsim is stopped;
 * everything freed. -1 when the notifier did not stop cleanly. */
int it_one_teardown(void **state);

/* Number of pushes:log entries with this outcome ("" = all). */
long long it_outcomes(redisContext *rc, const char *outcome);

void it_sleep_ms(long ms);
/* The number (from 1) of the first line of the log at path containing needle; 0 when
 * none does, -1 when the log cannot be read. */
long it_log_line(const char *path, const char *needle);
/* Lines of the log at path containing needle, from the first line containing from
 * (NULL: the start) until the first containing until (NULL: the end); -1 when the log
 * cannot be read. */
long it_log_count(const char *path, const char *needle, const char *from,
    const char *until);
/* Requests in reqs (it_gwsim_requests) to number `to` that gwsim accepted (201). */
int it_gwsim_accepted_to(const cJSON *reqs, const char *to);

#endif
