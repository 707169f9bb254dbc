/*
 * match.c: the built-in default rule and the default message text (stage: match).
 *
 * Pure over its inputs: reads the deal and the subscriber mirror, writes only the
 * list it returns. Must never send, never touch Redis, never decide admit-time
 * questions (caps, quiet hours): those belong to admit, which sees the shared state.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "match.h"
#include "substore.h"

#define MATCH_TEXT_MAX 1600

static int
list_has(const struct strlist *l, const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return 1;
	return 0;
}

/* Case-insensitive substring search; needle is lower case. */
static int
contains_ci(const char *hay, const char *needle)
{
	size_t i, j, nl = strlen(needle);

	if (nl == 0)
		return 1;
	for (i = 0; hay[i] != '\0'; i++) {
		for (j = 0; j < nl && hay[i + j] != '\0'; j++)
			if (tolower((unsigned char)hay[i + j]) != needle[j])
				break;
		if (j == nl)
			return 1;
	}
	return 0;
}

int
match_interested(const struct deal *d, const struct subscriber *s)
{
	const struct interests *in = &s->interests;
	int topical = 0;
	size_t i;

	if (list_has(&in->categories, d->category) || list_has(&in->brands, d->brand))
		topical = 1;
	for (i = 0; !topical && i < in->keywords.n; i++)
		if (contains_ci(d->title, in->keywords.v[i]))
			topical = 1;
	if (!topical)
		return 0;
	if (in->has_max_price && (!d->has_price || d->price > in->max_price))
		return 0;
	if (in->has_min_discount_pct && d->discount_pct < in->min_discount_pct)
		return 0;
	if (s->region != NULL && d->region != NULL && strcmp(s->region, d->region) != 0)
		return 0;
	return 1;
}

static char *
match_render_default(const struct deal *d)
{
	char price[64] = "", code[96] = "", ends[32];
	char *text;
	struct tm tm;
	time_t t = (time_t)d->expires_at;

	if ((text = malloc(MATCH_TEXT_MAX + 1)) == NULL)
		return NULL;
	if (d->has_price && d->discount_pct > 0)
		snprintf(price, sizeof(price), " %.2f %s (%.0f%% off)", d->price,
		    d->currency[0] ? d->currency : "", d->discount_pct);
	else if (d->has_price)
		snprintf(price, sizeof(price), " %.2f %s", d->price,
		    d->currency[0] ? d->currency : "");
	if (d->code_pool != NULL)
		snprintf(code, sizeof(code), ", your code %c", MATCH_CODE_MARK);
	else if (d->code != NULL)
		snprintf(code, sizeof(code), ", code %s", d->code);
	gmtime_r(&t, &tm);
	strftime(ends, sizeof(ends), "%H:%M UTC", &tm);
	snprintf(text, MATCH_TEXT_MAX + 1, "%.400s:%s%s. Ends %s. %s Reply STOP to end",
	    d->title, price, code, ends, d->url);
	return text;
}

static int
match_push(struct match_list *l, const struct subscriber *s, enum channel ch,
    const char *text)
{
	if (l->n == l->cap) {
		size_t c = l->cap ? l->cap * 2 : 64;
		struct match_rcpt *v = realloc(l->v, c * sizeof(*v));
		if (v == NULL)
			return -1;
		l->v = v;
		l->cap = c;
	}
	if ((l->v[l->n].text = strdup(text)) == NULL)
		return -1;
	l->v[l->n].sub = s;
	l->v[l->n].ch = ch;
	l->n++;
	return 0;
}

static int
match_cmp(const void *a, const void *b)
{
	const struct match_rcpt *x = a, *y = b;
	int c = strcmp(x->sub->id, y->sub->id);

	return c != 0 ? c : (int)x->ch - (int)y->ch;
}

int
match_deal(const struct substore *ss, const struct deal *d, int64_t now,
    struct match_list *out, struct err *err)
{
	char *text = NULL;
	size_t i, n = substore_count(ss);
	int c;

	(void)now;
	if ((text = match_render_default(d)) == NULL)
		goto oom;
	for (i = 0; i < n; i++) {
		const struct subscriber *s = substore_at(ss, i);

		if (!match_interested(d, s))
			continue;
		for (c = 0; c < CH_COUNT; c++) {
			if (!(s->channels & CH_BIT(c)) || s->consent[c] == 0)
				continue;
			if (match_push(out, s, (enum channel)c, text) < 0)
				goto oom;
		}
	}
	free(text);
	qsort(out->v, out->n, sizeof(*out->v), match_cmp);
	return 0;
oom:
	free(text);
	match_list_free(out);
	return err_set(err, ERR_NOMEM, "no_memory", NULL, "match: out of memory");
}

void
match_list_free(struct match_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].text);
	free(l->v);
	memset(l, 0, sizeof(*l));
}
