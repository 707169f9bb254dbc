/*
 * lift.h: what a push added, measured against a holdout (stage: report).
 *
 * Pure arithmetic on report counters, no I/O: a treated group (sent a push) and a
 * holdout group (kept back) each give an audience, an order count, the revenue and
 * the sum of the orders' squared revenues; from them come each group's rates, the
 * incremental redemptions and revenue, and a 95% confidence interval for the
 * revenue (docs/attribution.md §5).
 */
#ifndef DEALPUSH_LIFT_H
#define DEALPUSH_LIFT_H

struct lift_group {
	double audience;        /* members of the group */
	double orders;          /* their orders inside the window */
	double revenue;         /* the sum of those orders' revenue */
	double revenue_sq;      /* the sum of their squares */
};

struct lift {
	double treated_rate;            /* orders per treated member */
	double holdout_rate;            /* orders per held-out member */
	double incremental_redemptions; /* (treated rate - holdout rate) x treated */
	double incremental_revenue;     /* (revenue per treated member - per held-out
	                                   member) x treated audience */
	double ci_low, ci_high;         /* its 95% confidence interval */
};

/* Fills *out from treated group t and holdout group h. Returns 0, or -1 (out
 * zeroed) when either audience is 0 or a figure is not finite: nothing to compare. */
int lift_compute(const struct lift_group *t, const struct lift_group *h,
    struct lift *out);

#endif
