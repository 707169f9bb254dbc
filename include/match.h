/*
 * match.h: who should hear about a deal, on which channel, with which text (stage:
 * match).
 *
 * A matcher owns the compiled targeting rules (replaced whole on reload) and the
 * interest index over the subscriber mirror, kept current one subscriber at a time.
 * It answers "who gets this deal" with ridx_query() and renders each recipient's
 * text with the matching rule's template, in the subscriber's time zone.
 */
#ifndef DEALPUSH_MATCH_H
#define DEALPUSH_MATCH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "model.h"

struct rule_set;
struct matcher;

/* A run of MATCH_CODE_WIDTH of these stands in the planned text for a per-recipient
 * code from the deal's pool (the segment count reserves that many characters);
 * deliver puts the code popped at admit in its place. CR is a GSM-7 character, and
 * never valid in deal text (control characters are refused at ingest). */
#define MATCH_CODE_MARK '\r'
#define MATCH_CODE_WIDTH 16

/* match_rcpt.variant of a recipient in the rest of an A/B test: it waits for the
 * winner, its text in each variant rendered in alt (docs/rules.md "A/B variants"). */
#define MATCH_AB_NONE (-1)
#define MATCH_AB_REST (-2)

struct match_rcpt {
	const struct subscriber *sub;  /* borrowed from the store */
	enum channel ch;
	char *text;                    /* owned by the match_list; for MATCH_AB_REST
	                                  alt[0] */
	const char *rule;              /* the rule's name, owned by the rule set */
	const struct rule *rp;         /* the rule, owned by the rule set the ranking
	                                  used (alive until the list is freed) */
	int variant;                   /* MATCH_AB_NONE, the A/B variant sent (index),
	                                  or MATCH_AB_REST */
	char *alt[4];                  /* MATCH_AB_REST: the text in each variant
	                                  (RULE_VARIANTS_MAX), owned by the list */
	size_t nalt;
};

/* A recipient a rule's holdout kept back from some or all of its channels: counted,
 * remembered, never sent on those (docs/attribution.md §5). */
struct match_held {
	const struct subscriber *sub;  /* borrowed from the store */
	const char *rule;              /* the rule that held it out, owned by the rule set */
	unsigned channels;             /* CH_BIT() mask of the channels held back */
	int whole;                     /* 1: every channel it had: it gets no push */
};

struct match_list {
	struct match_rcpt *v;
	size_t n, cap;
	size_t matched;                /* before the quantity cut */
	size_t held_out;               /* matched but kept back from a channel or more by
	                                  a holdout */
	struct match_held *held;       /* held_out of them */
	size_t held_cap;
	size_t unrenderable;           /* too long for the rule's segment cap */
	size_t paused;                 /* SMS whose rule's template a carrier filtered */
};

struct tzcache;

/* A new matcher using the built-in default rule, or NULL with *err (ERR_NOMEM).
 * overbook (>= 1) is the share of a limited deal's quantity that is planned; zones
 * (borrowed, outliving it) gives the subscribers' local times. */
struct matcher *matcher_new(double overbook, struct tzcache *zones, struct err *err);

/* Frees the matcher, its rules and index (never the subscribers). NULL: nothing. */
void matcher_free(struct matcher *m);

/* Replaces the rules; takes ownership of rs and frees the old set. rs must not be
 * NULL: a rule set that failed to compile never reaches here. */
void matcher_set_rules(struct matcher *m, struct rule_set *rs);

/* The rules in use, borrowed. */
const struct rule_set *matcher_rules(const struct matcher *m);

/* Replaces the rules whose SMS template is paused (a carrier filtered it, error
 * 30007; docs/hooks.md): their SMS recipients are counted in paused, not planned.
 * names (n of them) are copied; on out of memory the old set stays. */
void matcher_set_paused(struct matcher *m, const char *const *names, size_t n);

/* 1 when rule's SMS template is paused (matcher_set_paused), else 0. */
int matcher_is_paused(const struct matcher *m, const char *rule);

/* substore_change_fn: keeps the interest index in step with the mirror (arg is the
 * matcher). Logs and drops a subscriber the index cannot take (out of memory). */
void matcher_on_change(void *arg, const struct subscriber *old_sub,
    const struct subscriber *new_sub);

/* substore_loaded_fn: a full load has finished; gives the interest index's growth
 * room back (ridx_compact). */
void matcher_on_loaded(void *arg);

/*
 * Fills out (zeroed) with every (subscriber, channel) the deal should go to, ranked
 * by rule priority, engagement and id, cut to ceil(quantity x overbook) for a limited
 * deal, held-out recipients only counted. Returns 0, or -1 with *err on OOM (out is
 * then freed).
 */
int match_deal(struct matcher *m, const struct deal *d, int64_t now,
    struct match_list *out, struct err *err);

/* Where {link} points. With public_url and key set, each recipient's link is the
 * short "<link_base>/<code>", code = shortlink_for_push(key, "<entry>:<sub id>:
 * <channel>") (the push id deliver uses, docs/attribution.md), or without a link base
 * the long "<public_url>/c/<token>", token = clicktok_make(key, push id); otherwise
 * it is the deal's URL. All borrowed for the duration of one call. */
struct match_links {
	const char *public_url;        /* NULL or "": no click links; a trailing '/' is
	                                * ignored */
	const char *link_base;         /* NULL or "": long links; a trailing '/' is
	                                * ignored */
	const unsigned char *key;      /* click secret; NULL: no click links */
	size_t keylen;                 /* CLICKTOK_KEY_MIN..CLICKTOK_KEY_MAX, else none */
	const char *entry;             /* the deal's stream entry id; NULL: none */
};

/* match_deal with click links: links may be NULL (then exactly match_deal). A
 * recipient whose token cannot be made (push id too long) gets the deal's URL and a
 * warning. Returns 0, or -1 with *err on OOM (out is then freed). */
int match_deal_links(struct matcher *m, const struct deal *d, int64_t now,
    const struct match_links *links, struct match_list *out, struct err *err);

/*
 * A deal planned in slices, so that a broad deal never holds the loop: the ranking is
 * computed once (ridx_query) and kept as subscriber ids, and each slice looks them up
 * in the index again and renders their texts. The mirror may change between slices:
 * a subscriber removed since the ranking is skipped (counted in match_run_gone), a
 * changed one is rendered as it is now, on the channels it still has. The rule set the
 * ranking used stays alive until the run is freed, even across a rules reload.
 */
struct match_run;

/* Ranks deal d (borrowed until match_run_free) and fills summary (zeroed first) with
 * matched, held_out and held (pointers valid until the loop runs on); summary->v
 * stays empty. Returns the run, or NULL with *err (ERR_NOMEM) and summary empty. */
struct match_run *match_run_new(struct matcher *m, const struct deal *d, int64_t now,
    struct match_list *summary, struct err *err);

/* match_run_new with the rule set rs instead of the matcher's (a draft simulated
 * before it is applied: docs/api.md): takes ownership of rs, freed with the run (or
 * at once when NULL is returned). The matcher's rules are neither read nor changed. */
struct match_run *match_run_new_rules(struct matcher *m, struct rule_set *rs,
    const struct deal *d, int64_t now, struct match_list *summary, struct err *err);

/* One ranking of deal d split into a run per shard (runs[K] keeps shard K's
 * subscribers, keys.h; nshards of them, each freed with match_run_free): what every
 * shard's reader of one notifier plans from, ranked once (docs/sharding.md 4a).
 * limit > 0 cuts a limited deal's ranking lower than its own ceil(quantity x
 * overbook) (a notifier's share of the shards, 4c); 0 = the deal's own cut.
 * summary as for match_run_new (the whole audience's). 0, or -1 with *err (runs all
 * NULL). d is borrowed by every run: see match_run_rebind. */
int match_run_new_split(struct matcher *m, const struct deal *d, int64_t now,
    size_t limit, uint32_t nshards, struct match_run **runs, struct match_list *summary,
    struct err *err);

/* The deal the run renders from now on (the same deal, another copy of it, which
 * must outlive the run). */
void match_run_rebind(struct match_run *r, const struct deal *d);

/* Ranked recipients of the whole audience (subscribers, held-out ones excluded);
 * those the run holds (its shard's, or the same), and how many of those the slices
 * so far have consumed. */
size_t match_run_total(const struct match_run *r);
size_t match_run_size(const struct match_run *r);
size_t match_run_done(const struct match_run *r);

/* Ranked subscribers that had left the mirror when their slice came. */
size_t match_run_gone(const struct match_run *r);

/* Renders the next subscribers of the ranking into out (zeroed first) until out holds
 * max (subscriber, channel) recipients or the ranking ends; at least one subscriber
 * is consumed. links as for match_deal_links. Returns 1 while more remain, 0 when
 * the ranking is done, -1 on OOM with *err (out then freed). */
int match_run_next(struct match_run *r, const struct match_links *links, size_t max,
    struct match_list *out, struct err *err);

/* Frees the run and unpins its rule set. NULL does nothing. Before matcher_free. */
void match_run_free(struct match_run *r);

/* Frees what match_deal put into l and zeroes it. */
void match_list_free(struct match_list *l);

#endif
