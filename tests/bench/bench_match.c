/*
 * bench_match.c: the interest index against the plain scan (stage: match).
 *
 * 1,000,000 synthetic subscribers with Zipf skew over categories, brands, keywords,
 * tags and regions, skewed engagement and prices; 20 realistic rules; 1,000 deals from
 * very selective to very broad. Times ridx_query() for every deal and rule_scan() (the
 * reference: rule_match() on every subscriber, then ranking) on a sample of the deals
 * of each class, checks both return the same recipients, and prints per-class p50/p99,
 * recipients per deal and the index's bytes per subscriber. Ends with the BENCH lines.
 * Usage: bench_match [subscribers] [deals] [scanned deals per class]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rules.h"

#define NOW 1795370400LL
#define NCAT 200
#define NBRAND 500
#define NKW 1000
#define NTAG 300
#define NREGION 30

static const char *rules_text =
    "# 20 rules as marketers would write them\n"
    "rule first_codes\n  when deal.quantity > 0 and deal.quantity <= 50\n"
    "   and subscriber.engagement >= 0.6\n  audience interested\n  send sms\n"
    "  priority 20\n  template sms \"First {title}: code {code} {link} STOP to end\"\nend\n"
    "rule vip_tag\n  when \"vip\" in subscriber.tags and deal.discount_pct >= 30\n"
    "  audience interested\n  send sms, dm\n  priority 15\nend\n"
    "rule high_value\n  when deal.price >= 1000 and subscriber.engagement >= 0.8\n"
    "  audience interested\n  send sms\n  priority 13\nend\n"
    "rule early_adopter\n  when deal.campaign = \"launch\" and \"early-adopter\" in "
    "subscriber.tags\n  audience all\n  send sms, dm\n  priority 12\nend\n"
    "rule restock_alert\n  when deal.campaign = \"restock\" and deal.title contains "
    "\"limited\"\n  audience interested\n  send sms\n  priority 11\nend\n"
    "rule outlet_vip\n  when deal.campaign = \"outlet\" and deal.discount_pct >= 20\n"
    "   and subscriber.engagement >= 0.5 and \"outlet-follower\" in subscriber.tags\n"
    "  audience interested\n  send sms, dm\n  priority 10\n  holdout 5%\nend\n"
    "rule flash_sale\n  when deal.campaign = \"flash\" and hours_until_expiry <= 3\n"
    "  audience interested\n  send sms\n  priority 9\nend\n"
    "rule price_drop\n  when deal.campaign = \"price-drop\"\n"
    "   and deal.price <= subscriber.interests.max_price\n  audience interested\n"
    "  send sms\n  priority 8\nend\n"
    "rule brand_fans\n  when deal.campaign = \"launch\" and deal.brand in "
    "subscriber.interests.brands\n  audience all\n  send dm\n  priority 7\nend\n"
    "rule regional\n  when deal.campaign = \"regional\" and subscriber.region = "
    "deal.region\n  audience interested\n  send sms\n  priority 6\nend\n"
    "rule student_laptops\n  when \"student\" in subscriber.tags and deal.category in "
    "(\"cat-0\", \"cat-1\", \"cat-2\")\n   and deal.price <= 800\n"
    "  audience interested\n  send sms\n  priority 6\nend\n"
    "rule gaming\n  when deal.category in (\"cat-5\", \"cat-9\") and \"gamer\" in "
    "subscriber.tags\n  audience all\n  send sms, dm\n  priority 5\nend\n"
    "rule intl\n  when deal.campaign = \"intl\" and subscriber.region != \"R0\"\n"
    "  audience interested\n  send dm\n  priority 5\nend\n"
    "rule black_friday\n  when deal.campaign = \"black-friday\" and deal.discount_pct "
    ">= 25\n  audience interested\n  send sms, dm\n  priority 4\n  holdout 10%\nend\n"
    "rule winback\n  when subscriber.engagement < 0.1 and deal.discount_pct >= 50\n"
    "  audience interested\n  send sms\n  priority 3\n  holdout 20%\nend\n"
    "rule weekly_dm\n  when deal.campaign = \"weekly\" and \"newsletter\" in "
    "subscriber.tags\n  audience all\n  send dm\n  priority 2\nend\n"
    "rule ios_only\n  when \"ios\" in deal.tags and \"ios\" in subscriber.tags\n"
    "  audience interested\n  send sms\n  priority 2\nend\n"
    "rule clearance\n  when deal.campaign = \"clearance\"\n  audience all\n"
    "  send sms, dm\n  priority 1\nend\n"
    "rule sms_only_region\n  when subscriber.region in (\"R1\", \"R2\") and "
    "deal.campaign = \"regional\"\n  audience interested\n  send sms\n  priority 1\nend\n"
    "rule interested_default\n  audience interested\n  send sms, dm\n  priority 0\nend\n";

static uint64_t rng = 0x243f6a8885a308d3ULL;

static uint64_t
rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double
unif(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

struct zipf {
	double *cdf;
	unsigned n;
};

static void
zipf_init(struct zipf *z, unsigned n, double s)
{
	double sum = 0;
	unsigned i;

	z->n = n;
	z->cdf = malloc(n * sizeof(double));
	if (z->cdf == NULL)
		exit(1);
	for (i = 0; i < n; i++)
		z->cdf[i] = (sum += 1.0 / pow(i + 1, s));
	for (i = 0; i < n; i++)
		z->cdf[i] /= sum;
}

static unsigned
zipf(const struct zipf *z)
{
	double u = unif();
	unsigned lo = 0, hi = z->n - 1, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (z->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static char **
names(const char *prefix, unsigned n)
{
	char **v = malloc(n * sizeof(char *)), buf[32];
	unsigned i;

	if (v == NULL)
		exit(1);
	for (i = 0; i < n; i++) {
		snprintf(buf, sizeof(buf), "%s%u", prefix, i);
		if ((v[i] = strdup(buf)) == NULL)
			exit(1);
	}
	return v;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double *v, size_t n, double p)
{
	size_t k;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), dcmp);
	k = (size_t)ceil(p * (double)n) - 1;
	return v[k < n ? k : n - 1];
}

/* Fills l with k distinct draws from z over vocab, pointers taken from *pool. */
static void
draw(struct strlist *l, char ***pool, unsigned k, const struct zipf *z, char **vocab)
{
	unsigned i, j, x;

	l->v = *pool;
	l->n = 0;
	for (i = 0; i < k; i++) {
		x = zipf(z);
		for (j = 0; j < l->n; j++)
			if (l->v[j] == vocab[x])
				break;
		if (j == l->n)
			l->v[l->n++] = vocab[x];
	}
	*pool += l->n;
}

int
main(int argc, char **argv)
{
	size_t nsub = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	size_t ndeal = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000;
	size_t nscan = argc > 3 ? strtoul(argv[3], NULL, 10) : 20;
	static char *special[] = { "vip", "outlet-follower", "gamer", "newsletter",
		"student", "ios", "early-adopter" };
	static const double special_p[] = { 0.05, 0.08, 0.03, 0.35, 0.04, 0.2, 0.02 };
	static const char *campaigns[] = { "", "", "", "", "", "", "", "", "flash", "flash",
		"outlet", "outlet", "price-drop", "price-drop", "regional", "regional",
		"black-friday", "launch", "weekly", "restock", "intl", "clearance" };
	char **cat = names("cat-", NCAT), **brand = names("brand-", NBRAND),
	    **kw = names("kw", NKW), **tag = names("tag-", NTAG), **region = names("R", NREGION);
	struct zipf zc, zb, zk, zt, zr;
	struct subscriber *subs;
	const struct subscriber **sp;
	char *ids, **pool, **pool_end;
	struct deal *deals;
	struct ridx *ix;
	struct rule_set *rs;
	struct rule_source src = { "bench.rules", rules_text, strlen(rules_text) };
	struct rule_diags dg;
	struct rule_recipients out, ref;
	struct err e;
	double t0, t_build, *ix_ms, *frac, *sel_ms, *brd_ms, *sel_scan, *brd_scan;
	size_t *rcpt, i, j, nsel = 0, nbrd = 0, nsel_scan = 0, nbrd_scan = 0, mem;
	size_t sel_rcpt_max = 0, brd_rcpt_max = 0, mid = 0;
	char buf[4096];

	setvbuf(stdout, NULL, _IOLBF, 0);
	zipf_init(&zc, NCAT, 1.1);
	zipf_init(&zb, NBRAND, 1.05);
	zipf_init(&zk, NKW, 1.0);
	zipf_init(&zt, NTAG, 1.0);
	zipf_init(&zr, NREGION, 1.3);
	rule_diags_init(&dg);
	if ((rs = rule_compile(&src, 1, &dg, &e)) == NULL) {
		rule_diags_format(&dg, buf, sizeof(buf));
		fprintf(stderr, "%s", buf);
		return 1;
	}
	printf("bench_match: %zu subscribers, %zu deals, %zu rules\n", nsub, ndeal,
	    rule_set_count(rs));

	/* subscribers: all strings shared from the vocabularies, ids in one block */
	subs = calloc(nsub, sizeof(*subs));
	sp = calloc(nsub, sizeof(*sp));
	ids = malloc(nsub * 24);
	pool = malloc(nsub * 20 * sizeof(char *));
	if (subs == NULL || sp == NULL || ids == NULL || pool == NULL)
		return 1;
	pool_end = pool;
	t0 = now_ms();
	for (i = 0; i < nsub; i++) {
		struct subscriber *s = &subs[i];
		unsigned k;

		snprintf(ids + i * 24, 24, "s-%zu", i);
		s->id = ids + i * 24;
		s->phone = unif() < 0.92 ? "+15125550100" : NULL;
		s->dm_x = unif() < 0.45 ? "123456789" : NULL;
		s->channels = (s->phone ? CH_BIT(CH_SMS) : 0) | (s->dm_x ? CH_BIT(CH_DM) : 0);
		s->consent[CH_SMS] = unif() < 0.88 ? 1767348000 : 0;
		s->consent[CH_DM] = unif() < 0.9 ? 1767348000 : 0;
		s->timezone = "America/Chicago";
		s->locale = "en-US";
		s->region = region[zipf(&zr)];
		draw(&s->interests.categories, &pool_end, 1 + (unsigned)(unif() * 3), &zc, cat);
		draw(&s->interests.brands, &pool_end, (unsigned)(unif() * 3), &zb, brand);
		draw(&s->interests.keywords, &pool_end, unif() < 0.2 ?
		    1 + (unsigned)(unif() * 2) : 0, &zk, kw);
		draw(&s->tags, &pool_end, (unsigned)(unif() * 3), &zt, tag);
		for (k = 0; k < sizeof(special) / sizeof(special[0]); k++)
			if (unif() < special_p[k])
				*pool_end++ = special[k], s->tags.n++;
		s->has_max_price = unif() < 0.6;
		s->interests.max_price = floor(50 + 3000 * pow(unif(), 2));
		s->has_min_discount_pct = unif() < 0.3;
		s->interests.min_discount_pct = 10 + 5 * floor(unif() * 8);
		s->engagement = pow(unif(), 2.5);
		sp[i] = s;
	}
	printf("  generated subscribers in %.0f ms\n", now_ms() - t0);

	if ((ix = ridx_new(&e)) == NULL)
		return 1;
	t0 = now_ms();
	for (i = 0; i < nsub; i++)
		if (ridx_put(ix, &subs[i], &e) != 0) {
			fprintf(stderr, "ridx_put: %s\n", e.msg);
			return 1;
		}
	t_build = now_ms() - t0;
	mem = ridx_memory(ix);
	printf("  index built in %.0f ms (%.2f us per subscriber), %zu bytes, %.1f bytes "
	    "per subscriber\n", t_build, t_build * 1e3 / (double)nsub, mem,
	    (double)mem / (double)nsub);

	/* deals, from a rare category and brand to a clearance for everyone */
	deals = calloc(ndeal, sizeof(*deals));
	if (deals == NULL)
		return 1;
	for (i = 0; i < ndeal; i++) {
		struct deal *d = &deals[i];
		static char *dtags_ios[] = { "ios" }, *dtags_none[] = { "misc" };
		char *title = malloc(96);
		int popular = unif() < 0.25;

		d->id = "bench";
		d->category = cat[popular ? zipf(&zc) : (unsigned)(unif() * NCAT)];
		d->brand = brand[popular ? zipf(&zb) : (unsigned)(unif() * NBRAND)];
		if (title == NULL)
			return 1;
		snprintf(title, 96, "%s %s %s edition%s",
		    d->brand, kw[(unsigned)(unif() * NKW)], kw[(unsigned)(unif() * NKW)],
		    unif() < 0.3 ? " limited" : "");
		d->title = title;
		d->tags.v = unif() < 0.1 ? dtags_ios : dtags_none;
		d->tags.n = 1;
		d->region = region[zipf(&zr)];
		d->has_price = 1;
		d->price = floor(20 + 2500 * pow(unif(), 2));
		d->has_list_price = 1;
		d->list_price = d->price * (1 + unif());
		d->discount_pct = 100 * (d->list_price - d->price) / d->list_price;
		memcpy(d->currency, "USD", 4);
		d->url = "https://shop.example/d";
		d->code = "SAVE";
		d->quantity = unif() < 0.3 ? 5 + (long)(unif() * 95) : 0;
		d->expires_at = NOW + 3600 * (1 + (int64_t)(unif() * 24));
		d->campaign = (char *)campaigns[(unsigned)(unif() *
		    (sizeof(campaigns) / sizeof(campaigns[0])))];
	}

	ix_ms = calloc(ndeal, sizeof(double));
	frac = calloc(ndeal, sizeof(double));
	rcpt = calloc(ndeal, sizeof(size_t));
	sel_ms = calloc(ndeal, sizeof(double));
	brd_ms = calloc(ndeal, sizeof(double));
	sel_scan = calloc(nscan + 1, sizeof(double));
	brd_scan = calloc(nscan + 1, sizeof(double));
	if (!ix_ms || !frac || !rcpt || !sel_ms || !brd_ms || !sel_scan || !brd_scan)
		return 1;
	rule_recipients_init(&out);
	rule_recipients_init(&ref);
	/* As the daemon's buffers are once a broad deal has been matched: the
	 * answer and scratch buffers are sized for the whole index before any deal, so
	 * no deal pays for growing them. Printed, not hidden in a deal's time. */
	t0 = now_ms();
	if (ridx_warm(ix, &out, &e) != 0) {
		fprintf(stderr, "ridx_warm: %s\n", e.msg);
		return 1;
	}
	printf("warm-up of the answer buffers (once, at start-up): %.1f ms\n", now_ms() - t0);
	t0 = now_ms();
	for (i = 0; i < ndeal; i++) {
		double t = now_ms();

		if (ridx_query(ix, rs, &deals[i], NOW, RULE_OVERBOOK_DEFAULT, &out, &e) != 0) {
			fprintf(stderr, "ridx_query: %s\n", e.msg);
			return 1;
		}
		ix_ms[i] = now_ms() - t;
		rcpt[i] = out.n;
		frac[i] = (double)out.matched / (double)nsub;
		if (frac[i] <= 0.01) {
			sel_ms[nsel++] = ix_ms[i];
			if (out.n > sel_rcpt_max)
				sel_rcpt_max = out.n;
		} else if (frac[i] >= 0.30) {
			brd_ms[nbrd++] = ix_ms[i];
			if (out.n > brd_rcpt_max)
				brd_rcpt_max = out.n;
		} else {
			mid++;
		}
	}
	printf("  %zu deals matched through the index in %.0f ms\n", ndeal, now_ms() - t0);

	/* the plain scan on a sample of each class, checked against the index */
	t0 = now_ms();
	for (i = 0; i < ndeal && (nsel_scan < nscan || nbrd_scan < nscan); i++) {
		int sel = frac[i] <= 0.01, brd = frac[i] >= 0.30;
		double t;

		if ((sel && nsel_scan >= nscan) || (brd && nbrd_scan >= nscan) || (!sel && !brd))
			continue;
		t = now_ms();
		if (rule_scan(rs, sp, nsub, &deals[i], NOW, RULE_OVERBOOK_DEFAULT, &ref, &e)) {
			fprintf(stderr, "rule_scan: %s\n", e.msg);
			return 1;
		}
		t = now_ms() - t;
		ridx_query(ix, rs, &deals[i], NOW, RULE_OVERBOOK_DEFAULT, &out, &e);
		if (out.n != ref.n || out.matched != ref.matched) {
			fprintf(stderr, "deal %zu: index %zu/%zu, scan %zu/%zu recipients\n", i,
			    out.n, out.matched, ref.n, ref.matched);
			return 1;
		}
		for (j = 0; j < out.n; j++)
			if (out.v[j].sub != ref.v[j].sub || out.v[j].rule != ref.v[j].rule ||
			    out.v[j].channels != ref.v[j].channels ||
			    out.v[j].held_out != ref.v[j].held_out) {
				fprintf(stderr, "deal %zu: recipient %zu differs\n", i, j);
				return 1;
			}
		if (sel)
			sel_scan[nsel_scan++] = t;
		else
			brd_scan[nbrd_scan++] = t;
	}
	printf("  plain scan of %zu selective and %zu broad deals in %.0f ms, same "
	    "recipients as the index\n", nsel_scan, nbrd_scan, now_ms() - t0);

	/* updates in place */
	t0 = now_ms();
	for (i = 0; i < 10000; i++) {
		size_t k = (size_t)(unif() * (double)nsub);

		ridx_put(ix, &subs[k], &e);
	}
	printf("  10000 in-place updates: %.2f us each\n", (now_ms() - t0) * 1e3 / 10000);

	{
		double sp50 = pct(sel_ms, nsel, 0.5), sp99 = pct(sel_ms, nsel, 0.99);
		double bp50 = pct(brd_ms, nbrd, 0.5), bp99 = pct(brd_ms, nbrd, 0.99);
		double ssp50 = pct(sel_scan, nsel_scan, 0.5), ssp99 = pct(sel_scan, nsel_scan, 0.99);
		double bsp50 = pct(brd_scan, nbrd_scan, 0.5), bsp99 = pct(brd_scan, nbrd_scan, 0.99);
		double *rs_sel = calloc(ndeal, sizeof(double)), *rs_brd = calloc(ndeal,
		    sizeof(double));
		size_t a = 0, b = 0;

		for (i = 0; i < ndeal; i++) {
			if (frac[i] <= 0.01)
				rs_sel[a++] = (double)rcpt[i];
			else if (frac[i] >= 0.30)
				rs_brd[b++] = (double)rcpt[i];
		}
		printf("\n  class      deals  index p50/p99 ms   scan p50/p99 ms    ratio(p99)  "
		    "recipients p50/p99/max\n");
		printf("  selective  %5zu  %7.3f / %7.3f  %7.1f / %7.1f  %9.0fx  %7.0f / %7.0f / %zu\n",
		    nsel, sp50, sp99, ssp50, ssp99, sp99 > 0 ? ssp99 / sp99 : 0,
		    pct(rs_sel, a, 0.5), pct(rs_sel, a, 0.99), sel_rcpt_max);
		printf("  broad      %5zu  %7.3f / %7.3f  %7.1f / %7.1f  %9.1fx  %7.0f / %7.0f / %zu\n",
		    nbrd, bp50, bp99, bsp50, bsp99, bp99 > 0 ? bsp99 / bp99 : 0,
		    pct(rs_brd, b, 0.5), pct(rs_brd, b, 0.99), brd_rcpt_max);
		printf("  (%zu deals between 1%% and 30%%; scan timed on %zu + %zu deals; "
		    "recipients after the quantity cut, overbook %.1f)\n\n", mid, nsel_scan,
		    nbrd_scan, RULE_OVERBOOK_DEFAULT);
		printf("BENCH name=match_selective p50_ms=%.3f p99_ms=%.3f scan_p99_ms=%.1f "
		    "ratio=%.0f\n", sp50, sp99, ssp99, sp99 > 0 ? ssp99 / sp99 : 0);
		printf("BENCH name=match_broad p50_ms=%.3f p99_ms=%.3f scan_p99_ms=%.1f "
		    "ratio=%.1f\n", bp50, bp99, bsp99, bp99 > 0 ? bsp99 / bp99 : 0);
		printf("BENCH name=index_memory bytes_per_subscriber=%.0f\n",
		    (double)mem / (double)nsub);
		free(rs_sel);
		free(rs_brd);
	}
	rule_recipients_free(&out);
	rule_recipients_free(&ref);
	ridx_free(ix);
	rule_set_free(rs);
	return 0;
}
