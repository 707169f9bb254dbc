/*
 * rule_ab.c: A/B variants (stage: match and deliver; pure): who is in a rule's test
 * and with which variant, and whether a variant has won (docs/rules.md "A/B variants").
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "rule_int.h"

size_t
rule_variant_count(const struct rule *r)
{
	return r->nvariants;
}

const char *
rule_variant_name(const struct rule *r, size_t i)
{
	return i < r->nvariants ? r->variants[i].name : NULL;
}

const struct rule_template *
rule_variant_template(const struct rule *r, size_t i)
{
	return i < r->nvariants ? r->variants[i].t : NULL;
}

const struct rule_ab *
rule_ab(const struct rule *r)
{
	return r->nvariants >= 2 && r->ab.share_bp > 0 ? &r->ab : NULL;
}

/* splitmix64's finalizer: every bit of x moves every bit of the result. */
static uint64_t
mix(uint64_t x)
{
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

int
rule_ab_assign(const struct rule *r, const char *deal, const char *sub)
{
	uint64_t h = UINT64_C(14695981039346656037);
	const unsigned char *s;
	double u;

	if (rule_ab(r) == NULL || deal == NULL || sub == NULL)
		return -1;
	/* FNV-1a of deal, a NUL, sub: the two never run into each other */
	for (s = (const unsigned char *)deal; *s != '\0'; s++)
		h = (h ^ *s) * UINT64_C(1099511628211);
	h *= UINT64_C(1099511628211);
	for (s = (const unsigned char *)sub; *s != '\0'; s++)
		h = (h ^ *s) * UINT64_C(1099511628211);
	h = mix(h);
	u = (double)(h >> 11) / 9007199254740992.0;          /* [0, 1), 53 bits */
	if (u * 10000.0 >= (double)r->ab.share_bp)
		return -1;
	return (int)(mix(h ^ UINT64_C(0x9e3779b97f4a7c15)) % r->nvariants);
}

void
rule_ab_decide(const struct rule_ab_stat *st, size_t n, int final,
    struct rule_ab_verdict *out)
{
	double best_rate = -1.0, zmin = INFINITY;
	size_t i;
	int enough = 1;

	memset(out, 0, sizeof(*out));
	out->winner = out->best = -1;
	for (i = 0; i < n; i++) {
		double rate;

		if (st[i].sent == 0) {
			enough = 0;
			continue;
		}
		rate = (double)(st[i].wins > st[i].sent ? st[i].sent : st[i].wins) /
		    (double)st[i].sent;
		if (rate > best_rate) {
			best_rate = rate;
			out->best = (int)i;
		}
		if (st[i].sent < RULE_AB_MIN_SENT)
			enough = 0;
	}
	if (out->best < 0 || n < 2)
		return;
	/* The best against each other variant: a two-proportion z-test, pooled. */
	for (i = 0; i < n; i++) {
		const struct rule_ab_stat *b = &st[out->best], *o = &st[i];
		double nb, no, wb, wo, pool, se, z;

		if ((int)i == out->best)
			continue;
		if (o->sent == 0) {
			zmin = 0;
			continue;
		}
		nb = (double)b->sent;
		no = (double)o->sent;
		wb = (double)(b->wins > b->sent ? b->sent : b->wins);
		wo = (double)(o->wins > o->sent ? o->sent : o->wins);
		pool = (wb + wo) / (nb + no);
		se = sqrt(pool * (1.0 - pool) * (1.0 / nb + 1.0 / no));
		z = se > 0 ? (wb / nb - wo / no) / se : 0;
		if (z < zmin)
			zmin = z;
	}
	out->z = zmin;
	out->confidence = 1.0 - 0.5 * erfc(zmin / sqrt(2.0));
	if (enough && zmin >= (final ? RULE_AB_Z_FINAL : RULE_AB_Z_EARLY))
		out->winner = out->best;
}
