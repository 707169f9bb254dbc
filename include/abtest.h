/*
 * abtest.h: A/B tests at run time (stages: plan, report; docs/rules.md "A/B
 * variants"): when a test decides, and the timer that decides it and releases its
 * rest. The pure parts (abtest_decide_by, abtest_judge) have no I/O.
 */
#ifndef DEALPUSH_ABTEST_H
#define DEALPUSH_ABTEST_H

#include <stddef.h>
#include <stdint.h>

#include "rules.h"

struct app;
struct abtest;
struct match_rcpt;

/* The most a test is cut short before its deal expires so that its rest can still be
 * sent: a third of the time from the test's start to the expiry, at most this. */
#define ABTEST_MARGIN_S 60
#define ABTEST_TICK_MS 1000      /* how often every notifier looks at the open tests */
#define ABTEST_BATCH 1000        /* held recipients released per ab_release.lua call */

/* When a test started at start (epoch s) with a window of window_s must be decided at
 * the latest: its window's end, or earlier so that the rest goes out before
 * expires_at (<= 0: none), never before start. */
int64_t abtest_decide_by(int64_t start, long window_s, int64_t expires_at);

/* A test's terms as the planner stores them (ab_hold.lua): the variant names, space
 * separated, and "<start>\t<window_s>\t<metric>\t<fallback index>\t<decide_by>". */
struct abtest_terms {
	char vars[RULE_VARIANTS_MAX][RULE_VARIANT_NAME_MAX + 1];
	size_t nvars;
	long long start, decide_by;     /* epoch s */
	long window_s;
	char metric[16];                /* "clicks" or "redemptions" */
	unsigned fallback;              /* an index into vars */
};

/* Parses stored terms into out: 0, or -1 when they are not whole (fewer than two
 * variants, a name too long, a fallback out of range). */
int abtest_terms_parse(const char *vars, const char *terms, struct abtest_terms *out);

/* A decision, as ab_verdict.lua stores it. */
struct abtest_verdict {
	int index;                  /* the variant the rest gets */
	const char *how;            /* "early", "final", "fallback" (the window ended,
	                               none clearly better), "expiry" (the deal's end
	                               came first: the fallback unless one already won) */
	double z, confidence;       /* of the best variant against the others */
};

/*
 * Judges a test from each variant's standing st (n of them) at now (epoch s): before
 * the window's end only an early winner (rule_ab_decide, sequential) decides, or the
 * deal's expiry at decide_by (the fallback); at the end the final rule, else the
 * fallback. Returns 1 and fills *out when decided, else 0.
 */
int abtest_judge(const struct rule_ab_stat *st, size_t n, unsigned fallback,
    int64_t start, long window_s, int64_t decide_by, int64_t now,
    struct abtest_verdict *out);

/* The recipient line of r in variant v with text (pushline.h): "<ch>\t<sub>\t<to>\t
 * <rule>/<name>\t<text>" for a test member, whose sends, clicks and redemptions count
 * for its variant; "<ch>\t<sub>\t<to>\t<rule>\t<text>" for one of the rest
 * (MATCH_AB_REST), who count for the rule only. A new string, or NULL on OOM. */
char *abhold_line(const struct match_rcpt *r, size_t v, const char *text);

/* Starts the tick on app's loop and command connection (borrowed; they outlive the
 * handle). NULL when out of memory. */
struct abtest *abtest_new(const struct app *app);

/* Stops the tick; a step in flight is detached and freed by its reply. NULL: nothing. */
void abtest_free(struct abtest *t);

#endif
