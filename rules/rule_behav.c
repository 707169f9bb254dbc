/*
 * rule_behav.c: the behaviour fields of a subscriber at a given time (stage: match):
 * days since the last click, purchase, text and since joining, and the counts of the
 * last 7, 30 and 90 UTC days, from the record the funnel keeps (struct sub_behav) and
 * the subscriber's consent times (joining: a join time stored for every subscriber
 * would cost the mirror and Redis more than their memory goals leave).
 * Computed when asked, so that they age without writes. Pure: no I/O, no clock (now
 * comes in), no globals.
 */
#include <math.h>
#include <stddef.h>

#include "rules.h"

/* ORDER BEHAV */
static const char *const rule_behav_names[RB_COUNT] = {
	"days_since_click", "days_since_purchase", "days_since_text", "texts_7d",
	"clicks_30d", "purchases_90d", "revenue_90d", "days_since_join",
};

const char *
rule_behav_name(int which)
{
	return which >= 0 && which < RB_COUNT ? rule_behav_names[which] : NULL;
}

/* Whole days from t to now, or 0 (absent) when t is 0. */
static int
behav_days_since(int64_t t, int64_t now, double *out)
{
	if (t <= 0)
		return 0;
	*out = now > t ? (double)((now - t) / 86400) : 0;
	return 1;
}

int64_t
rule_behav_joined(const struct subscriber *s)
{
	int64_t joined = 0;
	int c;

	for (c = 0; c < CH_COUNT; c++)
		if (s->consent[c] > 0 && (joined == 0 || s->consent[c] < joined))
			joined = s->consent[c];
	return joined;
}

int
rule_behav_value(const struct sub_behav *b, int64_t joined, int which, int64_t now,
    double *out)
{
	int64_t today = (now >= 0 ? now : 0) / 86400, from;
	double sum = 0;
	uint32_t i;
	int window;

	*out = 0;
	switch (which) {
	case RB_DAYS_SINCE_CLICK:
		return b != NULL && behav_days_since(b->last_click, now, out);
	case RB_DAYS_SINCE_PURCHASE:
		return b != NULL && behav_days_since(b->last_purchase, now, out);
	case RB_DAYS_SINCE_TEXT:
		return b != NULL && behav_days_since(b->last_text, now, out);
	case RB_DAYS_SINCE_JOIN:
		return behav_days_since(joined, now, out);
	case RB_TEXTS_7D: window = 7; break;
	case RB_CLICKS_30D: window = 30; break;
	case RB_PURCHASES_90D:
	case RB_REVENUE_90D: window = 90; break;
	default:
		return 0;
	}
	if (b == NULL)
		return 1;
	from = today - window;   /* days after it count */
	for (i = 0; i < b->ndays; i++) {
		const struct sub_bday *d = &b->days[i];

		if ((int64_t)d->day <= from)
			continue;
		switch (which) {
		case RB_TEXTS_7D: sum += d->texts; break;
		case RB_CLICKS_30D: sum += d->clicks; break;
		case RB_PURCHASES_90D: sum += d->purchases; break;
		default: sum += d->revenue; break;
		}
	}
	/* revenue in cents, as it was stored */
	*out = which == RB_REVENUE_90D ? round(sum * 100) / 100 : sum;
	return 1;
}
