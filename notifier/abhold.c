/*
 * abhold.c: the rest of an A/B test held back at plan time (stage: plan; docs/rules.md
 * "A/B variants").
 *
 * Before a slice's plan.lua call, on the same connection (so Redis runs them
 * first), ab_register.lua registers the slice's tests (abtest:<deal>), ab_join.lua
 * opens them (abtests) and ab_hold.lua keeps their rest in the planning shard, with
 * the recipient's line in every variant (docs/sharding.md 4h: each call on one
 * slot); the rest is then taken out of the slice, and plan.lua writes only the test
 * members (their lines naming their variant) and the recipients of other rules.
 * Must never plan a held recipient: ab_release.lua (abtest.c) releases them once a
 * test decides.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "abtest.h"
#include "clock.h"
#include "config.h"
#include "deal.h"
#include "fault.h"
#include "ingest_int.h"
#include "keys.h"
#include "log.h"
#include "match.h"
#include "rules.h"
#include "subscriber.h"

char *
abhold_line(const struct match_rcpt *r, size_t v, const char *text)
{
	const char *to = channel_contact(r->sub, r->ch);
	const char *vn = r->variant >= 0 ? rule_variant_name(r->rp, v) : NULL;
	size_t n = strlen(text) + strlen(r->sub->id) + strlen(to ? to : "") +
	    strlen(r->rule) + (vn ? strlen(vn) : 0) + 16;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%s\t%s\t%s\t%s%s%s\t%s", channel_name(r->ch), r->sub->id,
		    to ? to : "", r->rule, vn ? "/" : "", vn ? vn : "", text);
	return s;
}

/* "<shard>\30<line in variant 1>\30...": what abrest:<deal> keeps of r. */
static char *
abhold_value(const struct match_rcpt *r)
{
	char *lines[RULE_VARIANTS_MAX] = { NULL }, *s = NULL;
	size_t k, n = 32;

	for (k = 0; k < r->nalt; k++) {
		if ((lines[k] = abhold_line(r, k, r->alt[k])) == NULL)
			goto out;
		n += strlen(lines[k]) + 1;
	}
	if ((s = malloc(n)) == NULL)
		goto out;
	snprintf(s, n, "%lu", (unsigned long)keys_shard_of(r->sub->id));
	for (k = 0; k < r->nalt; k++) {
		size_t l = strlen(s);

		snprintf(s + l, n - l, "\036%s", lines[k]);
	}
out:
	for (k = 0; k < r->nalt; k++)
		free(lines[k]);
	return s;
}

void
abhold_drop_rest(struct match_list *ml)
{
	size_t i, o = 0, k;

	for (i = 0; i < ml->n; i++) {
		if (ml->v[i].variant != MATCH_AB_REST) {
			ml->v[o++] = ml->v[i];
			continue;
		}
		free(ml->v[i].text);
		for (k = 1; k < ml->v[i].nalt; k++)
			free(ml->v[i].alt[k]);
	}
	ml->n = o;
}

int
abhold_chunk(struct ingest_job *j, const struct deal *d, struct match_list *ml)
{
	const struct rule *tests[RULE_RULES_MAX + 1];
	size_t ntests = 0, nrest = 0, i, t, a = 0, nargs, fields = 0;
	const char **args = NULL, **reg = NULL, **join = NULL;
	char **vals = NULL, (*qkeys)[KEYS_MAX] = NULL, (*spec)[4][512] = NULL;
	char (*counts)[24] = NULL;
	char dkey[MODEL_ID_MAX + KEYS_SHARD_MAX], tkeys[KEYS_MAX], tkey[KEYS_MAX], rkey[KEYS_MAX];
	char rdeal[KEYS_MAX], keep[32], qpool[MODEL_TEXT_MAX + 1];
	uint32_t shard = j->in->shard;
	int64_t now = clock_now();
	int rv = -1;

	for (i = 0; i < ml->n; i++) {
		const struct match_rcpt *r = &ml->v[i];

		if (r->variant == MATCH_AB_NONE || rule_ab(r->rp) == NULL)
			continue;
		nrest += r->variant == MATCH_AB_REST;
		for (t = 0; t < ntests && tests[t] != r->rp; t++)
			;
		if (t == ntests && ntests < RULE_RULES_MAX + 1)
			tests[ntests++] = r->rp;
	}
	if (ntests == 0)
		return 0;
	nargs = 3 + ntests + 3 + 2 * ntests + 2 * nrest;
	if ((args = calloc(nargs, sizeof(*args))) == NULL ||
	    (reg = calloc(2 + 4 * ntests, sizeof(*reg))) == NULL ||
	    (join = calloc(1 + 2 * ntests, sizeof(*join))) == NULL ||
	    (vals = calloc(nrest + 1, sizeof(*vals))) == NULL ||
	    (qkeys = calloc(ntests, sizeof(*qkeys))) == NULL ||
	    (spec = calloc(ntests, sizeof(*spec))) == NULL ||
	    (counts = calloc(ntests, sizeof(*counts))) == NULL)
		goto out;
	/* The planning shard's copy of the deal, its report and what it holds. */
	keys_per(shard, KEYS_DEAL, d->id, dkey, sizeof(dkey));
	snprintf(keep, sizeof(keep), "%lld", (long long)(d->expires_at - now +
	    INGEST_KEEP_S));
	if (keys_ab(KEYS_AB_TESTS, d->id, "", tkeys, sizeof(tkeys)) < 0 ||
	    keys_ab(KEYS_AB_TEST, d->id, "", tkey, sizeof(tkey)) < 0 ||
	    keys_ab_held(shard, KEYS_AB_REST, d->id, "", rkey, sizeof(rkey)) < 0 ||
	    keys_per(shard, KEYS_REPORT_DEAL, d->id, rdeal, sizeof(rdeal)) < 0)
		goto out;
	/* ORDER AB_REGISTER (ab_register.lua), AB_JOIN (ab_join.lua) */
	reg[0] = tkey;
	reg[1] = keep;
	join[0] = tkeys;
	/* ORDER AB_HOLD_KEYS */
	args[a++] = dkey;
	args[a++] = rkey;
	args[a++] = rdeal;
	for (t = 0; t < ntests; t++) {
		if (keys_ab_held(shard, KEYS_AB_QUEUE, d->id, rule_name(tests[t]), qkeys[t],
		    sizeof(qkeys[t])) < 0)
			goto out;
		args[a++] = qkeys[t];
	}
	args[a++] = j->entry;
	args[a++] = keep;
	args[a++] = d->id;
	for (t = 0; t < ntests; t++) {
		const struct rule_ab *ab = rule_ab(tests[t]);
		long long by = (long long)abtest_decide_by(now, ab->window_s, d->expires_at);
		size_t k, held = 0, vl = 0;

		for (k = 0; k < rule_variant_count(tests[t]); k++)
			vl += (size_t)snprintf(spec[t][0] + vl, vl < sizeof(spec[t][0]) ?
			    sizeof(spec[t][0]) - vl : 0, "%s%s", k ? " " : "",
			    rule_variant_name(tests[t], k));
		snprintf(spec[t][1], sizeof(spec[t][1]), "%lld\t%ld\t%s\t%u\t%lld",
		    (long long)now, ab->window_s, ab->metric == RULE_AB_CLICKS ? "clicks" :
		    "redemptions", ab->fallback, by);
		snprintf(spec[t][2], sizeof(spec[t][2]), "%s\t%lld\t%s\t%s\t%lld", j->entry,
		    (long long)d->expires_at, d->campaign ? d->campaign : "",
		    ingest_job_pool(d, j->in->cfg->overbook, qpool, sizeof(qpool)),
		    (long long)(d->starts_at > 0 ?
		    d->starts_at : 0));
		snprintf(spec[t][3], sizeof(spec[t][3]), "%lld", by);
		for (i = 0; i < ml->n; i++)
			held += ml->v[i].variant == MATCH_AB_REST && ml->v[i].rp == tests[t];
		snprintf(counts[t], sizeof(counts[t]), "%zu", held);
		reg[2 + 4 * t] = rule_name(tests[t]);
		reg[3 + 4 * t] = spec[t][0];
		reg[4 + 4 * t] = spec[t][1];
		reg[5 + 4 * t] = spec[t][2];
		args[a++] = rule_name(tests[t]);
		args[a++] = counts[t];
	}
	fields = a;
	nrest = 0;
	for (t = 0; t < ntests; t++)
		for (i = 0; i < ml->n; i++) {
			const struct match_rcpt *r = &ml->v[i];
			char *f;
			size_t fl;

			if (r->variant != MATCH_AB_REST || r->rp != tests[t])
				continue;
			if ((vals[nrest] = abhold_value(r)) == NULL)
				goto out;
			nrest++;
			fl = strlen(r->sub->id) + 8;
			/* the field, "<sub>:<ch>", kept in vals after the value */
			if ((f = malloc(fl)) == NULL)
				goto out;
			snprintf(f, fl, "%s:%s", r->sub->id, channel_name(r->ch));
			args[a++] = f;
			args[a++] = vals[nrest - 1];
		}
	/* The tests as members of abtests, "<deal>\t<rule>", scored by when each must
	 * be decided (spec[t][3]). */
	{
		char (*member)[MODEL_ID_MAX + RULE_NAME_MAX + 2] = calloc(ntests,
		    sizeof(*member));

		if (member == NULL)
			goto out;
		for (t = 0; t < ntests; t++) {
			snprintf(member[t], sizeof(member[t]), "%s\t%s", d->id,
			    rule_name(tests[t]));
			join[1 + 2 * t] = spec[t][3];
			join[2 + 2 * t] = member[t];
		}
		/* Three calls on the same connection, in this order, each on one slot
		 * (docs/sharding.md 4h): the tests' terms, the open tests, the rest held
		 * in this shard. */
		ingest_call(j, "ab_register", 1, (int)(2 + 4 * ntests), reg, NULL, 0);
		ingest_call(j, "ab_join", 1, (int)(1 + 2 * ntests), join, NULL, 0);
		free(member);
	}
	/* fault "ab.hold_refused": one argument passed as a key, so the script refuses
	 * the call and writes nothing, as Redis may refuse a hold */
	ingest_call(j, "ab_hold", (int)(3 + ntests) + fault_hit("ab.hold_refused"),
	    (int)a, args, NULL, 0);
	if (!j->failed && j->plan != NULL)
		j->plan->holds++;       /* ingest_on_script counts it back */
	abhold_drop_rest(ml);
	rv = 1;
out:
	if (args != NULL)
		for (i = fields; fields > 0 && i < a; i += 2)
			free((char *)args[i]);
	if (vals != NULL)
		for (i = 0; i < nrest; i++)
			free(vals[i]);
	free(vals);
	free(args);
	free(reg);
	free(join);
	free(qkeys);
	free(spec);
	free(counts);
	return rv;
}
