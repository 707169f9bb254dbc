/*
 * privacy_int.h: what privacy.c (the routes, the walk of the streams, the reads, the
 * export) and privacy_erase.c (the erasure's steps) share. Private to them.
 */
#ifndef DEALPUSH_PRIVACY_INT_H
#define DEALPUSH_PRIVACY_INT_H

#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "keys.h"
#include "model.h"

struct cJSON;
struct event;

#define PRIV_SCAN_COUNT "2000"         /* pushes:log entries per XRANGE */
#define PRIV_DEALS_MAX 20000           /* deals of one subscriber's history */
#define PRIV_PUSHES_MAX 100000
#define PRIV_DEALS_PER_CALL 200        /* erase_deals.lua: 8 keys per deal */
#define PRIV_KEYS_PER_CALL 2000        /* codepush / clicked keys per call */
#define PRIV_XDEL_PER_CALL 500
#define PRIV_KEY_MAX (KEYS_SHARD_MAX + 2 * MODEL_ID_MAX + 64)  /* a per-deal or push key */

struct strv {
	char **v;
	size_t n, cap;
};

/* A stream walked for the subscriber's entries: pushes:log (field sub), audit
 * (field id), replies (field from: the number), the change feed (field id, the
 * erasure's last turn). ORDER PRIV_SCANS. */
enum { SCAN_LOG, SCAN_AUDIT, SCAN_REPLIES, SCAN_CHANGES, SCANS };

/* How long the mirrors get to read an erasure's "del" from the change feed before
 * the feed's entries about the subscriber go too (they follow it within a second;
 * one that missed it reloads everything when it starts again). */
#define PRIV_MIRROR_WAIT_MS 2500

struct priv_scan {
	char key[KEYS_SHARD_MAX];
	const char *field;
	char value[MODEL_ID_MAX + 1];      /* "" = not walked */
	struct strv entries;               /* the matching entry ids */
	struct cJSON *found;               /* export: the entries as objects */
};

struct priv_op {
	struct http_wait w;                /* first: in the module's list */
	struct privacy *pv;
	int erase;
	char id[MODEL_ID_MAX + 1];
	char phone[32];                    /* the stored subscriber's number, "" = none */
	char dm[32];                       /* its X user id, "" = none */
	int unindexing;                    /* erase: the phone index drop in flight
	                                    * (enum phoneix_kind) */
	uint32_t shard;
	struct priv_scan scan[SCANS];
	int si;                            /* the stream being walked */
	char cursor[64];                   /* the next XRANGE start */
	struct strv deals, pushes, codes, camps;
	char *stored, *record;             /* the subscriber's JSON, consent record */
	char *behav;                       /* its behaviour record (subbehav.h) */
	size_t reads_left, at;             /* replies awaited; progress of a step */
	int failed, was_stored;
	int trimming, xi;                  /* the streams' entries being deleted: which */
	int final;                         /* the change feed's turn (after the wait) */
	struct event *wait;
};

struct privacy {
	const struct app *app;
	struct http_wait *ops;
};


/* A list of strings, each its own copy. */
int priv_strv_add(struct strv *s, const char *p, size_t n);
int priv_strv_has(const struct strv *s, const char *p, size_t n);
void priv_strv_free(struct strv *s);

/* Frees op (and unlinks it); its request must be answered or gone. */
void priv_op_free(struct priv_op *op);
/* Ends op: its request answered already (or gone). */
void priv_op_done(struct priv_op *op);
/* Answers 503 ("while <what>") when the request is still there, then ends op. */
void priv_op_fail(struct priv_op *op, const char *what);

/* Lower-case hex SHA-256 of s into out. */
void priv_sha256_hex(const char *s, char out[65]);

/* Walks the next matching stream (op->si), then reads what is stored, or, in the
 * erasure's final turn, trims what it found. */
void priv_scan_next(struct priv_op *op);

/* The erasure: starts with the proof (privacy_erase.c); trims the streams' entries
 * and answers at the end. */
void priv_erase_start(struct priv_op *op);
void priv_erase_log(struct priv_op *op);

#endif
