/*
 * layout.h: the key layout a deployment stores in `dealpush:layout`, read and checked
 * by the notifier and dealpushctl before they touch any other key (stage: start-up).
 *
 * No key = the single-instance layout (every name as before sharding); the key
 * present = the sharded layout it describes (docs/sharding.md, section 1.1). A layout
 * that is corrupted, half-written (a migration in progress) or that disagrees with
 * the config is refused: the program must not run (exit LAYOUT_EXIT_MISMATCH).
 * The layout in force is set once at start-up, before any reader starts, and is
 * read-only afterwards.
 */
#ifndef DEALPUSH_LAYOUT_H
#define DEALPUSH_LAYOUT_H

struct err;
struct event_base;
struct rconn;
struct redisReply;
struct shard_layout;

#define LAYOUT_KEY "dealpush:layout"
#define LAYOUT_EXIT_MISMATCH 78        /* EX_CONFIG: the data and the config disagree */

/* ORDER LAYOUT_FIELDS: the fields of LAYOUT_KEY, as LAYOUT_HMGET asks for them and
 * layout_create.lua takes them in ARGV. */
enum layout_field {
	LAYOUT_VERSION = 0,
	LAYOUT_SHARDS,
	LAYOUT_HASH,
	LAYOUT_TAGS,
	LAYOUT_CREATED,
	LAYOUT_NFIELDS
};
#define LAYOUT_HMGET "HMGET " LAYOUT_KEY " version shards hash tags created"

/*
 * Checks the reply to LAYOUT_HMGET against config_shards ([redis] shards; 0 = not
 * set). Returns 0 with *out NULL for the single-instance layout (no field stored and
 * no shard count configured), 0 with *out a new layout (the caller frees it), or -1
 * with *err (ERR_INPUT, err->field naming the field at fault: a field of the layout
 * key, "shards" when the config disagrees, "layout" when the reply is not a layout)
 * or ERR_NOMEM.
 */
int layout_from_reply(const struct redisReply *r, long config_shards,
    struct shard_layout **out, struct err *err);

/* Makes l the layout in force (takes ownership; NULL = the single-instance layout).
 * Called once at start-up, before anything names a key; a second call frees the
 * first layout. */
void layout_set(struct shard_layout *l);

/* The layout in force, or NULL for the single-instance layout. Borrowed. */
const struct shard_layout *layout_current(void);

/* Frees the layout in force (at exit); the single-instance layout is then in force. */
void layout_clear(void);

/*
 * The notifier's start-up read: LAYOUT_HMGET on cmd at every connect until it is
 * answered; an error reply other than WRONGTYPE (Redis still loading its data) is
 * asked again after LAYOUT_RETRY_MS. Once answered, the layout is checked against
 * config_shards and done(arg, rv) runs once: rv 0 with the layout in force
 * (layout_set), or LAYOUT_EXIT_MISMATCH after logging event=layout_mismatch naming
 * the field (1 when out of memory). Returns NULL when out of memory.
 */
#define LAYOUT_RETRY_MS 500
typedef void layout_done_fn(void *arg, int rv);
struct layout_reader *layout_reader_new(struct event_base *base, struct rconn *cmd,
    long config_shards, layout_done_fn *done, void *arg);

/* Call from cmd's ready callback: asks for the layout unless it was read or is
 * being asked for. */
void layout_reader_connected(struct layout_reader *r);

/* Frees r; NULL does nothing. Call after freeing cmd (its reply may still be due). */
void layout_reader_free(struct layout_reader *r);

#endif
