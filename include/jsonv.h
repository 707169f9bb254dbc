/*
 * jsonv.h: checked access to the fields of an untrusted JSON object (stage: ingest,
 * admin). Shared by the deal and subscriber parsers so both refuse the same things
 * with the same words. Every function returns 0, or -1 with *err naming the field
 * (its path, e.g. "interests.max_price") and saying what was wrong.
 */
#ifndef DEALPUSH_JSONV_H
#define DEALPUSH_JSONV_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "model.h"

/* "null", "boolean", "number", "string", "array", "object" or "nothing". */
const char *jv_type_name(const cJSON *v);

/* Fill *err and return -1: out of memory; wrong JSON type; a bad value (what says
 * why); a required field missing. */
int jv_nomem(struct err *err, const char *field);
int jv_bad_type(struct err *err, const char *field, const char *want, const cJSON *v);
int jv_bad_value(struct err *err, const char *field, const char *what);
int jv_missing(struct err *err, const char *field);

/* Refuses a second occurrence in obj of any of the n names; prefix is the object's
 * path ("" at the top). */
int jv_check_unique(const cJSON *obj, const char *const *names, size_t n,
    const char *prefix, struct err *err);

/* The member name of obj, borrowed; NULL when absent or JSON null (an optional field
 * set to null counts as absent). */
const cJSON *jv_field(const cJSON *obj, const char *name);

/* 1 when s has a control character (below 0x20, or 0x7f). */
int jv_has_control(const char *s);

/* ASCII case changes in place; other bytes untouched. */
void jv_lower(char *s);
void jv_upper(char *s);

/* Copies string v of 1..max bytes into *out (the caller frees). */
int jv_take_string(const cJSON *v, const char *field, size_t max, char **out,
    struct err *err);

/* The optional array member name of obj: at most MODEL_LIST_MAX strings of 1..max
 * bytes, no control characters, lower-cased into *out (the caller frees with
 * jv_strlist_free, also on error). */
int jv_strlist(const cJSON *obj, const char *name, const char *field, size_t max,
    struct strlist *out, struct err *err);

/* Frees the strings of l and empties it. */
void jv_strlist_free(struct strlist *l);

#endif
