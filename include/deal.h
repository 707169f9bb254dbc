/*
 * deal.h: parse and validate a deal from a stream entry (stage: ingest).
 *
 * The only way to build a struct deal. Input is hostile: every field of the contract
 * (docs/contracts.md) is checked for presence, type, size and form; the first problem
 * found is reported in a struct err whose code is the dead-letter reason and whose
 * message names the field. Never crashes on any byte sequence.
 */
#ifndef DEALPUSH_DEAL_H
#define DEALPUSH_DEAL_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

/*
 * Parses len bytes of JSON (need not be NUL-terminated; may contain NUL bytes, which
 * are refused as "binary"). now is the current wall time in epoch seconds: a deal whose
 * expires_at <= now is refused as "expired" (a cancel is never expired).
 * Returns a new deal owned by the caller, or NULL with *err filled. Error codes:
 *   too_large, binary, not_json, not_object, missing_field, bad_type, bad_value,
 *   too_long, expired, no_memory.
 */
struct deal *deal_parse(const char *json, size_t len, int64_t now, struct err *err);

/* Frees the deal and everything it owns; deal_free(NULL) does nothing. */
void deal_free(struct deal *d);

#endif
