/*
 * match.h: who should hear about a deal, on which channel, with which text (stage:
 * match).
 *
 * The seam between the daemon and the targeting rules: today the built-in default
 * rule (the subscriber's interests, channel chosen by the subscriber, consent held);
 * the rule language plugs in here without the planner changing.
 */
#ifndef DEALPUSH_MATCH_H
#define DEALPUSH_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

struct substore;

/* Stands in the planned text for a per-recipient code from the deal's pool; deliver
 * puts the code popped at admit in its place. Never valid in deal text (control
 * characters are refused at ingest). */
#define MATCH_CODE_MARK '\x1a'

struct match_rcpt {
	const struct subscriber *sub;  /* borrowed from the store */
	enum channel ch;
	char *text;                    /* owned by the match_list */
};

struct match_list {
	struct match_rcpt *v;
	size_t n, cap;
};

/* 1 when the subscriber's interests match the deal, else 0 (the default rule). */
int match_interested(const struct deal *d, const struct subscriber *s);

/*
 * Fills out (which must be zeroed or freed before) with every (subscriber, channel)
 * the deal should go to, in a deterministic order (subscriber id, then channel).
 * Returns 0, or -1 with *err on OOM (out is then freed).
 */
int match_deal(const struct substore *ss, const struct deal *d, int64_t now,
    struct match_list *out, struct err *err);

/* Frees what match_deal put into l and zeroes it. */
void match_list_free(struct match_list *l);

#endif
