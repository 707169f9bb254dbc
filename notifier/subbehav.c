/*
 * subbehav.c: parse a subscriber's behaviour record and show it as JSON (stage:
 * match, admin). The record comes from Redis (lib/behav.lua writes it): every number
 * is checked, a value that does not parse is refused whole, never half applied.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "rules.h"
#include "subbehav.h"
#include "timefmt.h"

struct bh_cur {
	const char *p, *end;
};

/* An unsigned decimal up to the next byte of stop (or the end); "" is 0. Returns 0,
 * or -1 when it is not one or exceeds max. */
static int
bh_uint(struct bh_cur *c, const char *stop, long long max, long long *out)
{
	long long v = 0;

	while (c->p < c->end && strchr(stop, *c->p) == NULL) {
		if (*c->p < '0' || *c->p > '9' || v > (max - (*c->p - '0')) / 10)
			return -1;
		v = v * 10 + (*c->p - '0');
		c->p++;
	}
	*out = v;
	return 0;
}

/* As bh_uint, but "" is refused: a day's fields are never empty (lib/behav.lua reads
 * a day only when each has a digit, and drops it otherwise). */
static int
bh_digits(struct bh_cur *c, const char *stop, long long max, long long *out)
{
	const char *start = c->p;

	return bh_uint(c, stop, max, out) < 0 || c->p == start ? -1 : 0;
}

/* A revenue "123" or "123.45" (at most 2 decimals), up to the next byte of stop. */
static int
bh_money(struct bh_cur *c, const char *stop, double *out)
{
	long long whole, cents = 0;

	if (bh_digits(c, ".,:|", 1000000000000LL, &whole) < 0)
		return -1;
	if (c->p < c->end && *c->p == '.') {
		const char *d = ++c->p;

		if (bh_uint(c, stop, 99, &cents) < 0 || c->p - d < 1 || c->p - d > 2)
			return -1;
		if (c->p - d == 1)
			cents *= 10;
	}
	if (c->p < c->end && strchr(stop, *c->p) == NULL)
		return -1;
	*out = (double)whole + (double)cents / 100;
	return 0;
}

static int
bh_expect(struct bh_cur *c, char ch)
{
	if (c->p >= c->end || *c->p != ch)
		return -1;
	c->p++;
	return 0;
}

struct sub_behav *
subbehav_parse(const char *v, size_t len)
{
	struct bh_cur c = { v, v + len };
	struct sub_behav *b;
	uint32_t *times[3];
	long long x, prev = -1;
	size_t i, n = 0;

	if (v == NULL)
		return NULL;
	for (i = 0; i < len; i++)
		n += v[i] == ',';
	if (n + 1 > SUBBEHAV_DAYS_MAX)
		return NULL;
	if ((b = calloc(1, sizeof(*b) + (n + 1) * sizeof(b->days[0]))) == NULL)
		return NULL;
	times[0] = &b->last_text;
	times[1] = &b->last_click;
	times[2] = &b->last_purchase;
	for (i = 0; i < 3; i++) {
		if (bh_uint(&c, "|", UINT32_MAX, &x) < 0 || bh_expect(&c, '|') < 0)
			goto bad;
		*times[i] = (uint32_t)x;
	}
	while (c.p < c.end) {
		struct sub_bday *d = &b->days[b->ndays];
		long long t, k, p;
		double rev;

		if (bh_digits(&c, ":", UINT32_MAX, &x) < 0 || x <= prev ||
		    bh_expect(&c, ':') < 0 ||
		    bh_digits(&c, ":", 1LL << 40, &t) < 0 || bh_expect(&c, ':') < 0 ||
		    bh_digits(&c, ":", 1LL << 40, &k) < 0 || bh_expect(&c, ':') < 0 ||
		    bh_digits(&c, ":", 1LL << 40, &p) < 0 || bh_expect(&c, ':') < 0 ||
		    bh_money(&c, ",", &rev) < 0)
			goto bad;
		prev = x;
		d->day = (uint32_t)x;
		d->texts = t > UINT16_MAX ? UINT16_MAX : (uint16_t)t;
		d->clicks = k > UINT8_MAX ? UINT8_MAX : (uint8_t)k;
		d->purchases = p > UINT8_MAX ? UINT8_MAX : (uint8_t)p;
		d->revenue = (float)rev;
		b->ndays++;
		/* "," and another day, or the end */
		if (c.p < c.end && (bh_expect(&c, ',') < 0 || c.p == c.end))
			goto bad;
	}
	return b;
bad:
	free(b);
	return NULL;
}

/* Appends to the buffer [*p, end) ; -1 when it does not fit. */
static int
bh_put(char **p, char *end, const char *s, size_t n)
{
	if ((size_t)(end - *p) <= n)
		return -1;
	memcpy(*p, s, n);
	*p += n;
	**p = '\0';
	return 0;
}

/* An unsigned number in decimal ("" for 0 when empty_zero). */
static int
bh_put_u(char **p, char *end, uint64_t v, int empty_zero)
{
	char t[24];
	size_t n = sizeof(t);

	if (v == 0 && empty_zero)
		return bh_put(p, end, "", 0);
	do
		t[--n] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	return bh_put(p, end, t + n, sizeof(t) - n);
}

/* A revenue as behav_money writes it: at most two decimals, no trailing zeros.
 * -1 when the float does not hold it to the cent. */
static int
bh_put_money(char **p, char *end, float rev)
{
	char t[48];
	double cents = round((double)rev * 100);
	size_t n;

	if (rev == 0)
		return bh_put(p, end, "0", 1);
	if (!(rev > 0) || rev >= 1e5f || fabs((double)rev * 100 - cents) > 1e-3)
		return -1;
	n = (size_t)snprintf(t, sizeof(t), "%.2f", (double)rev);
	while (n > 0 && t[n - 1] == '0')
		n--;
	if (n > 0 && t[n - 1] == '.')
		n--;
	return bh_put(p, end, t, n);
}

/* "<last text>|<last click>|<last purchase>|" with last_text as given. */
static int
bh_put_head(char **p, char *end, const struct sub_behav *b, uint64_t last_text)
{
	return bh_put_u(p, end, last_text, 1) < 0 || bh_put(p, end, "|", 1) < 0 ||
	    bh_put_u(p, end, b != NULL ? b->last_click : 0, 1) < 0 ||
	    bh_put(p, end, "|", 1) < 0 ||
	    bh_put_u(p, end, b != NULL ? b->last_purchase : 0, 1) < 0 ||
	    bh_put(p, end, "|", 1) < 0 ? -1 : 0;
}

/* "<day>:<texts>:<clicks>:<purchases>:<revenue>", a comma first unless first. */
static int
bh_put_day(char **p, char *end, const struct sub_bday *d, unsigned texts, int first)
{
	return (!first && bh_put(p, end, ",", 1) < 0) ||
	    bh_put_u(p, end, d->day, 0) < 0 || bh_put(p, end, ":", 1) < 0 ||
	    bh_put_u(p, end, texts, 0) < 0 || bh_put(p, end, ":", 1) < 0 ||
	    bh_put_u(p, end, d->clicks, 0) < 0 || bh_put(p, end, ":", 1) < 0 ||
	    bh_put_u(p, end, d->purchases, 0) < 0 || bh_put(p, end, ":", 1) < 0 ||
	    bh_put_money(p, end, d->revenue) < 0 ? -1 : 0;
}

int
subbehav_text(const struct sub_behav *b, int64_t now, char *old, size_t oldcap,
    char *new, size_t newcap)
{
	char *o = old, *oe = old + oldcap, *w = new, *we = new + newcap;
	int64_t today = now / 86400;
	uint32_t i, n = b != NULL ? b->ndays : 0;
	const struct sub_bday *last = n > 0 ? &b->days[n - 1] : NULL;
	struct sub_bday t = { (uint32_t)today, 0, 0, 0, 0 };

	if (oldcap == 0 || newcap == 0 || now <= 0 || now > UINT32_MAX)
		return -1;
	*o = *w = '\0';
	if (b == NULL)
		goto text;
	if ((n > 0 && ((int64_t)b->days[0].day <= today - 7 || last->day > today)) ||
	    bh_put_head(&o, oe, b, b->last_text) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		/* a saturated count is not the stored one */
		if (b->days[i].texts == UINT16_MAX || b->days[i].clicks == UINT8_MAX ||
		    b->days[i].purchases == UINT8_MAX ||
		    bh_put_day(&o, oe, &b->days[i], b->days[i].texts, i == 0) < 0)
			return -1;
	}
text:
	if (bh_put_head(&w, we, b, b != NULL && b->last_text > now ? b->last_text :
	    (uint64_t)now) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned texts = b->days[i].texts + (&b->days[i] == last && last->day == today);

		if (bh_put_day(&w, we, &b->days[i], texts, i == 0) < 0)
			return -1;
	}
	if (last == NULL || last->day != today)
		return bh_put_day(&w, we, &t, 1, n == 0);
	return 0;
}

static int
bh_add_time(cJSON *obj, const char *name, int64_t t)
{
	char buf[40];

	if (t <= 0)
		return cJSON_AddNullToObject(obj, name) != NULL ? 0 : -1;
	if (time_format_rfc3339(t, buf, sizeof(buf)) == NULL)
		return -1;
	return cJSON_AddStringToObject(obj, name, buf) != NULL ? 0 : -1;
}

int64_t
subbehav_joined_of_json(const cJSON *doc)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(doc, "consent"), *t;
	int64_t joined = 0, v;

	cJSON_ArrayForEach(t, c) {
		if (cJSON_IsString(t) && time_parse_rfc3339(t->valuestring, &v) == 0 && v > 0 &&
		    (joined == 0 || v < joined))
			joined = v;
	}
	return joined;
}

int
subbehav_to_json(const struct sub_behav *b, int64_t joined, int64_t now, cJSON *obj)
{
	double v;
	int i;

	for (i = 0; i < RB_COUNT; i++) {
		const char *name = rule_behav_name(i);

		if (rule_behav_value(b, joined, i, now, &v)) {
			if (cJSON_AddNumberToObject(obj, name, v) == NULL)
				return -1;
		} else if (cJSON_AddNullToObject(obj, name) == NULL) {
			return -1;
		}
	}
	if (bh_add_time(obj, "joined_at", joined) < 0 ||
	    bh_add_time(obj, "last_text_at", b != NULL ? b->last_text : 0) < 0 ||
	    bh_add_time(obj, "last_click_at", b != NULL ? b->last_click : 0) < 0 ||
	    bh_add_time(obj, "last_purchase_at", b != NULL ? b->last_purchase : 0) < 0)
		return -1;
	return 0;
}
