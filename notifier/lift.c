/*
 * lift.c: the incremental figures of a holdout comparison (stage: report).
 *
 * Each group is taken as its audience of members, each with the revenue of their
 * orders (0 for most). The mean revenue per member and its variance come from the
 * sums the reports keep (revenue and revenue_sq), counting each order as a member's
 * whole revenue: a member who ordered twice is counted as two (an approximation
 * that makes the interval slightly narrow for repeat buyers). The difference of the
 * two means, times the treated audience, is the incremental revenue; its 95%
 * interval is that +- 1.96 standard errors (the normal approximation of Welch's
 * test). Pure: must never do I/O.
 */
#include <math.h>
#include <string.h>

#include "lift.h"

#define LIFT_Z95 1.959963984540054

/* The variance of the mean per member of group g. */
static double
lift_var_mean(const struct lift_group *g)
{
	double mean = g->revenue / g->audience;
	double var = g->revenue_sq / g->audience - mean * mean;

	return (var > 0 ? var : 0) / g->audience;
}

int
lift_compute(const struct lift_group *t, const struct lift_group *h, struct lift *out)
{
	double se;

	memset(out, 0, sizeof(*out));
	if (!(t->audience > 0) || !(h->audience > 0) || !isfinite(t->audience) ||
	    !isfinite(h->audience) || !isfinite(t->revenue) || !isfinite(h->revenue) ||
	    !isfinite(t->revenue_sq) || !isfinite(h->revenue_sq))
		return -1;
	out->treated_rate = t->orders / t->audience;
	out->holdout_rate = h->orders / h->audience;
	out->incremental_redemptions = (out->treated_rate - out->holdout_rate) *
	    t->audience;
	out->incremental_revenue = (t->revenue / t->audience - h->revenue / h->audience) *
	    t->audience;
	se = sqrt(lift_var_mean(t) + lift_var_mean(h)) * t->audience;
	out->ci_low = out->incremental_revenue - LIFT_Z95 * se;
	out->ci_high = out->incremental_revenue + LIFT_Z95 * se;
	return 0;
}
