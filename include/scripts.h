/*
 * scripts.h: the Lua scripts that make each pipeline step atomic in Redis (stage:
 * plan, admit, record).
 *
 * The scripts live in notifier/lua/ and are embedded at build time. Their SHA1 is
 * computed locally; scripts_load() sends SCRIPT LOAD for all of them (call it from
 * every connection's ready callback: a restarted Redis has forgotten them), and
 * script_call() runs one by EVALSHA.
 */
#ifndef DEALPUSH_SCRIPTS_H
#define DEALPUSH_SCRIPTS_H

#include <stddef.h>

#include "rconn.h"

/* Arguments (keys included) of one script call; script_call refuses more. A plan
 * chunk is the largest call: config.c keeps ingest.plan_chunk and ingest.job_size
 * within this (ingest_plan_args_max). */
#define SCRIPT_ARGS_MAX 65536

/* ORDER SCRIPT: keep script_table[] in scripts.c in this order. */
enum script_id {
	SCRIPT_PLAN = 0,
	SCRIPT_DEAD,
	SCRIPT_CANCEL,
	SCRIPT_ADMIT,
	SCRIPT_SEND,
	SCRIPT_DELAY,
	SCRIPT_RECORD,
	SCRIPT_COUNT
};

/* Computes the SHA1 of every embedded script. Returns 0, or -1 if OpenSSL fails or
 * a script of enum script_id is missing. */
int scripts_init(void);

/* Sends SCRIPT LOAD for every script on rc (replies are checked and logged). */
void scripts_load(struct rconn *rc);

/*
 * EVALSHA id with nkeys keys followed by the other arguments: args[0..nargs) where the
 * first nkeys are keys; lens may be NULL for NUL-terminated strings. The callback runs
 * exactly once as for rconn_argv. A NOSCRIPT reply makes this connection load the
 * scripts again (the callback still sees the error). Returns 0 or -1 as rconn_argv.
 */
int script_call(struct rconn *rc, enum script_id id, int nkeys, int nargs,
    const char **args, const size_t *lens, rconn_reply_fn *cb, void *arg);

/*
 * The arguments of one script call, built one by one straight into Redis' wire format:
 * keys and the other arguments go to two buffers, so a caller adds each recipient's
 * keys and arguments together and no argument needs a buffer of its own. Start from
 * all zeros; script_call_args sends and empties it, keeping its memory for the next
 * call; script_args_release frees it. The first failure (out of memory, more than
 * SCRIPT_ARGS_MAX arguments) sticks until the next script_call_args, which refuses.
 */
struct script_buf {
	char *p;
	size_t len, cap;
};
struct script_args {
	struct script_buf keys, args, cmd;
	int nkeys, nargs;
	int failed;
};

/* Appends a key: head followed by tail (tail may be NULL). */
void script_key(struct script_args *a, const char *head, const char *tail);
/* Appends an argument: head followed by tail (tail may be NULL). */
void script_arg(struct script_args *a, const char *head, const char *tail);
/* Appends an argument: v in decimal. */
void script_arg_ll(struct script_args *a, long long v);

/* EVALSHA id with a's keys and arguments, as script_call; a is emptied whatever the
 * outcome. Returns 0 (cb runs exactly once), or -1 (cb never runs). */
int script_call_args(struct rconn *rc, enum script_id id, struct script_args *a,
    rconn_reply_fn *cb, void *arg);

/* The EVALSHA command of a call built in a, in Redis' wire format, into a->cmd (a
 * is not emptied). In the sharded layout a key "" (a key the script skips) is
 * written as "{<tag>}\0", the tag of the call's first named key: a Redis Cluster
 * would hash "" to slot 0 and refuse the call (CROSSSLOT); every script's prelude
 * makes it "" again. 0, or -1 (OOM, a failed build, no such script). For
 * script_call_args and the tests. */
int script_args_command(enum script_id id, struct script_args *a);

/* Frees a's memory and leaves it empty. */
void script_args_release(struct script_args *a);

/* Like script_call for the script in notifier/lua/<name>.lua (any embedded script,
 * not only those in enum script_id). Returns -1 for an unknown name. */
int script_call_named(struct rconn *rc, const char *name, int nkeys, int nargs,
    const char **args, const size_t *lens, rconn_reply_fn *cb, void *arg);

/* The text of the embedded script notifier/lua/<name>.lua (with its --#include
 * libraries inlined) behind the prelude of the format version written now
 * (formats.h), or NULL: for a synchronous client (dealpushctl) that runs the
 * daemon's own scripts. */
const char *script_source(const char *name);

/* The script's name, for logs. */
const char *script_name(enum script_id id);

#endif
