/*
 * streampos.h: stream entry ids ("<ms>-<seq>") and the fields of an XINFO STREAM
 * reply (stage: match). The reply is borrowed; returned strings point into it.
 */
#ifndef DEALPUSH_STREAMPOS_H
#define DEALPUSH_STREAMPOS_H

struct redisReply;

/* Parses a stream id "<ms>-<seq>" into its two parts; 0, or -1 when s is not one. */
int streampos_parse(const char *s, unsigned long long *ms, unsigned long long *seq);

/* Compares two stream ids: <0, 0, >0; -2 when either is not an id. */
int streampos_cmp(const char *a, const char *b);

/* The string value of field name in an XINFO STREAM reply r (an array of pairs), or
 * NULL. When the value is an entry ([id, fields]) instead, *entry (may be NULL) gets
 * it; else *entry is NULL. */
const char *streampos_xinfo_str(const struct redisReply *r, const char *name,
    const struct redisReply **entry);

/* The integer value of field name in r into *out; 0, or -1 when absent or not an
 * integer. */
int streampos_xinfo_int(const struct redisReply *r, const char *name, long long *out);

/* 1 when r is the error Redis gives for a stream that does not exist, else 0. */
int streampos_no_such_key(const struct redisReply *r);

#endif
