/*
 * benchlib.h: what the benchmarks share: a monotonic clock, sizes from the
 * environment, synthetic subscribers, a process's memory, a notifier's readiness,
 * stream entry ids, hash fields, and the wrk baseline of the gateway simulator. Test code: it may block.
 */
#ifndef DEALPUSH_BENCHLIB_H
#define DEALPUSH_BENCHLIB_H

#include <stddef.h>
#include <sys/types.h>

/* Monotonic milliseconds. */
long long bench_now_ms(void);

/* The environment variable name as a whole number in [min, max], def when unset
 * or empty, -1 when it is not such a number. */
long bench_env_long(const char *name, long def, long min, long max);

/* n subscribers "<prefix>-<i>" (i from 1) with sms consent, all interested in
 * category only, phones +1512 2xx xxxx from first on (Austin: legal window
 * 8:00-21:00 Central), as JSON lines. Caller frees; NULL when out of memory. */
char *bench_subscribers_jsonl(const char *prefix, long n, long first,
    const char *category);

/* A "<key>: <n> kB" line of /proc/<pid>/status ("VmRSS", "VmHWM"), in bytes; -1 when
 * absent. */
long long bench_proc_bytes(pid_t pid, const char *key);

/* Waits until the n notifiers on ports together mirror want subscribers, each
 * healthy (it_notifier_health), and (shards > 0) serve shards shards between them. 0, or -1 after
 * cap_ms. */
int bench_wait_loaded(const int *ports, int n, long want, long shards, long cap_ms);

/* The ms of a stream entry id "<ms>-<seq>"; -1 when it is not one. */
long long bench_entry_ms(const char *id);

/* An integer field of a hash (0 when absent), or -1. */
struct redisContext;
long long bench_hash_int(struct redisContext *rc, const char *key, const char *field);

/*
 * The command names our Lua scripts call (redis.call('NAME' / redis.pcall('NAME' in
 * <root>/notifier/lua and its lib/), which Redis counts under their own names in
 * INFO commandstats next to the EVALSHA that ran them. Load once: 0, or -1 when the
 * folder cannot be read. Then bench_is_script_cmd(lower-case name).
 */
int bench_script_cmds_load(const char *root);
int bench_is_script_cmd(const char *name);

/*
 * The wrk baseline: the notifier's last Twilio request in gwsim's log, sent again by
 * wrk (-t BENCH_WRK_THREADS -c BENCH_WRK_CONNS for BENCH_WRK_SECONDS) to the same
 * gwsim. Stop the notifier first: its requests would share the gateway. Requests/s,
 * or -1 (why on stderr, after "<who>: "); the form body's length into *body_len
 * when not NULL.
 */
#define BENCH_WRK_SECONDS "5"
#define BENCH_WRK_THREADS "2"
#define BENCH_WRK_CONNS "64"
struct it_gwsim;
double bench_wrk_gwsim(const struct it_gwsim *g, const char *who, size_t *body_len);

#endif
