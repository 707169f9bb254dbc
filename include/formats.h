/*
 * formats.h: the version of the stored formats (stage: all Redis I/O).
 *
 * A deployment is at one format version, stored in hash `dealpush:formats` (field
 * `format`; absent = 1, what release 1.0.0 writes). Every stream entry the notifier
 * writes carries its version in field FORMATS_FIELD (absent = 1), every per-deal hash
 * too (`deal:<id>`); a reader takes versions FORMATS_READ_MIN..FORMATS_READ_MAX and
 * refuses a newer one without losing it. Each notifier writes the deployment's
 * version and announces, under a lease, the highest it reads; `dealpushctl formats
 * upgrade` raises the deployment only when every live notifier reads the new version
 * (docs/contracts.md, "Stored formats and their versions").
 */
#ifndef DEALPUSH_FORMATS_H
#define DEALPUSH_FORMATS_H

#include <stddef.h>

#define FORMATS_READ_MIN 1
#define FORMATS_READ_MAX 2            /* the highest version this release reads */
#define FORMATS_VERSION_MAX 999       /* a larger number is not a version */
#define FORMATS_FIELD "fv"            /* an entry's or a deal hash's version */
#define FORMATS_KEY_FIELD "format"    /* the deployment's version in FORMATS_KEY */
#define FORMATS_READER_PREFIX "reader:"   /* + consumer: one announcement */
#define FORMATS_BEAT_MS 1000          /* announcement and re-read interval */
#define FORMATS_LEASE_MS 5000         /* an announcement's life */
#define FORMATS_EXIT_MISMATCH 78      /* EX_CONFIG, as the layout's refusal */
#define FORMATS_RELEASE_MAX 32        /* bytes of a release name announced */

struct event_base;
struct rconn;
struct redisReply;

/* What a reader does with a version (formats_classify). */
enum formats_verdict {
	FORMATS_OK = 0,               /* read it */
	FORMATS_TOO_NEW,              /* newer than this release reads: leave it */
	FORMATS_BAD                   /* not a version: the entry is malformed */
};

/* The version in s[0..len): decimal 1..FORMATS_VERSION_MAX, no sign, space or
 * leading zero. Returns it, or -1. */
int formats_parse(const char *s, size_t len);

/* The version of a stream entry's flat field/value array: its FORMATS_FIELD, 1 when
 * absent. Returns the version, or -1 when the field is there but not a version or
 * appears twice. Sets *verdict (may be NULL). */
int formats_of_entry(const struct redisReply *fields, enum formats_verdict *verdict);

/* FORMATS_OK for FORMATS_READ_MIN..FORMATS_READ_MAX, FORMATS_TOO_NEW above it,
 * FORMATS_BAD for anything else (-1, 0). */
enum formats_verdict formats_classify(int version);

/* The version this process writes: the deployment's, never above FORMATS_READ_MAX;
 * 1 until formats_set_write is called. */
int formats_write(void);

/* Sets the version written from now on (clamped to FORMATS_READ_MIN..MAX). */
void formats_set_write(int version);

/*
 * The fields to add to a stream entry written now: *name = FORMATS_FIELD and
 * *value = the version as text, returning 2; or 0 in format 1 (an entry of 1.0.0
 * has no such field, and format 1 is written byte for byte as 1.0.0 wrote it).
 */
int formats_entry_fields(const char **name, const char **value);

/* The Lua prelude of the scripts written in version v: one line without a newline
 * (line numbers in errors stay those of the file), defining FMT_N (the version) and
 * FMT (the entry fields: {} or {'fv', '<v>'}). NULL for a version out of range. */
const char *formats_lua_prelude(int version);

/*
 * An announcement, the value of field "reader:<consumer>":
 * "<highest version read>\t<release>\t<lease end, epoch ms of Redis' clock>".
 * Parses v into its parts. Returns 0, or -1 when malformed.
 */
int formats_reader_parse(const char *v, int *reads, char *release, size_t release_size,
    long long *until_ms);

/* ---- the running notifier (formats_watch.c) ---- */

struct formats_watch;

/* Called once with 0 when the deployment's version is read and readable (it is then
 * the version written), or FORMATS_EXIT_MISMATCH after logging event=format_mismatch
 * when it is newer than this release reads or not a version. */
typedef void formats_ready_fn(void *arg, int rv);

/*
 * Every FORMATS_BEAT_MS, formats_beat.lua on cmd (borrowed, outliving w): announce
 * that consumer reads up to FORMATS_READ_MAX (lease FORMATS_LEASE_MS) and read the
 * deployment's version, which becomes the version written; a change is logged
 * (event=format_changed). ready runs once, after the first answer. Returns NULL
 * when out of memory.
 */
struct formats_watch *formats_watch_new(struct event_base *base, struct rconn *cmd,
    const char *consumer, formats_ready_fn *ready, void *arg);

/* Stops the beat and ends this notifier's lease at once (at shutdown: an older
 * release may take its name next). Safe to call twice. */
void formats_watch_leave(struct formats_watch *w);

/* Frees w; NULL does nothing. A beat still waiting on Redis is detached. */
void formats_watch_free(struct formats_watch *w);

#endif
