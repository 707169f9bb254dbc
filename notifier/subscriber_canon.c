/*
 * subscriber_canon.c: a fast reader of the canonical JSON that subscriber_to_json()
 * writes (stage: match: the mirror's load at start-up and after a reload), as it
 * writes it now (members that parse back to the default left out) and as it wrote it
 * before (every member present).
 *
 * The mirror reads every stored subscriber at start, and cJSON with the generic field
 * parsers was most of that time. What the store holds is the canonical form: fixed
 * field order, no whitespace. This reader takes exactly that form, with strings of
 * printable ASCII and no escapes, and checks every value by the rules of
 * subscriber_parse(). Anything else, valid or not, is left to the full parser (NULL),
 * which names what is wrong. It must never accept what subscriber_parse() refuses nor
 * read a value differently: tests/unit/test_subscriber.c compares the two on valid
 * subscribers and on every one-byte change of them.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "deal.h"
#include "jsonv.h"
#include "subscriber.h"
#include "subscriber_int.h"
#include "timefmt.h"

/* The input, and a scratch buffer the strings are copied into, NUL-terminated
 * (never larger in total than the input). */
struct rd {
	const char *p, *end;
	char *buf;
	size_t used, cap;
};

/* Consumes s when the input continues with it: 0, else -1 (nothing consumed). */
static int lit(struct rd *r, const char *s)
{
	size_t n = strlen(s);

	if ((size_t)(r->end - r->p) < n || memcmp(r->p, s, n) != 0)
		return -1;
	r->p += n;
	return 0;
}

/* A string of printable ASCII without '"' or '\\': copied into the scratch. */
static int str(struct rd *r, char **out, size_t *len)
{
	const char *q;
	size_t n;

	if (r->p >= r->end || *r->p != '"')
		return -1;
	q = ++r->p;
	while (r->p < r->end && *r->p != '"') {
		unsigned char c = (unsigned char)*r->p;

		if (c < 0x20 || c > 0x7e || c == '\\')
			return -1;
		r->p++;
	}
	if (r->p >= r->end)
		return -1;
	n = (size_t)(r->p - q);
	if (r->used + n + 1 > r->cap)
		return -1;
	memcpy(r->buf + r->used, q, n);
	r->buf[r->used + n] = '\0';
	*out = r->buf + r->used;
	*len = n;
	r->used += n + 1;
	r->p++;
	return 0;
}

static int digit(const struct rd *r)
{
	return r->p < r->end && *r->p >= '0' && *r->p <= '9';
}

/* A JSON number (RFC 8259 grammar), read by strtod as cJSON reads it; finite. */
static int num(struct rd *r, double *out)
{
	const char *q = r->p;
	char tmp[64], *e;
	size_t n;

	if (r->p < r->end && *r->p == '-')
		r->p++;
	if (!digit(r))
		return -1;
	if (*r->p == '0')
		r->p++;
	else
		while (digit(r))
			r->p++;
	if (r->p < r->end && *r->p == '.') {
		r->p++;
		if (!digit(r))
			return -1;
		while (digit(r))
			r->p++;
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
		r->p++;
		if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
			r->p++;
		if (!digit(r))
			return -1;
		while (digit(r))
			r->p++;
	}
	n = (size_t)(r->p - q);
	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, q, n);
	tmp[n] = '\0';
	*out = strtod(tmp, &e);
	return *e == '\0' && isfinite(*out) ? 0 : -1;
}

/* num within [min, max]. */
static int num_in(struct rd *r, double min, double max, double *out)
{
	return num(r, out) == 0 && *out >= min && *out <= max ? 0 : -1;
}

/* A string of 1..max bytes (the rule of jv_take_string). */
static int str_max(struct rd *r, size_t max, char **out)
{
	size_t n;

	return str(r, out, &n) == 0 && n >= 1 && n <= max ? 0 : -1;
}

/* [] or ["a","b"...]: at most MODEL_LIST_MAX items of 1..max bytes, lower-cased. */
static int list(struct rd *r, size_t max, struct strlist *l, char **slots)
{
	l->n = 0;
	l->v = slots;
	if (lit(r, "[") < 0)
		return -1;
	if (lit(r, "]") == 0)
		return 0;
	for (;;) {
		char *s;
		size_t n;

		if (l->n >= MODEL_LIST_MAX || str(r, &s, &n) < 0 || n == 0 || n > max)
			return -1;
		jv_lower(s);
		slots[l->n++] = s;
		if (lit(r, "]") == 0)
			return 0;
		if (lit(r, ",") < 0)
			return -1;
	}
}

/* "HH:MM" from 00:00 to 23:59 (the rule of parse_hhmm in subscriber.c). */
static int hhmm(struct rd *r, int16_t *out)
{
	char *s;
	size_t n;

	if (str(r, &s, &n) < 0 || n != 5 || s[2] != ':' || s[0] < '0' || s[0] > '2' ||
	    s[1] < '0' || s[1] > '9' || s[3] < '0' || s[3] > '5' || s[4] < '0' ||
	    s[4] > '9' || (s[0] - '0') * 10 + (s[1] - '0') > 23)
		return -1;
	*out = ((s[0] - '0') * 10 + (s[1] - '0')) * 60 + (s[3] - '0') * 10 + (s[4] - '0');
	return 0;
}

/* Consumes the member name `"name":` (after a ',' unless *first) when it comes next:
 * 0, else -1 (nothing consumed: the member was left out). */
static int key(struct rd *r, const char *name, int *first)
{
	const char *p = r->p;

	if ((!*first && lit(r, ",") < 0) || lit(r, "\"") < 0 || lit(r, name) < 0 ||
	    lit(r, "\":") < 0) {
		r->p = p;
		return -1;
	}
	*first = 0;
	return 0;
}

static int head(struct rd *r, struct subscriber *d)
{
	char *s;
	size_t n;
	int c, first = 0;

	if (lit(r, "{\"id\":") < 0 || str_max(r, MODEL_ID_MAX, &d->id) < 0 ||
	    !deal_id_is_valid(d->id))
		return -1;
	if (key(r, "phone", &first) == 0 && lit(r, "null") < 0 &&
	    (str_max(r, 16, &d->phone) < 0 || !phone_is_e164(d->phone)))
		return -1;
	if (key(r, "dm", &first) == 0 && lit(r, "null") < 0 &&
	    (lit(r, "{\"x\":") < 0 || str_max(r, SUB_DM_X_MAX, &d->dm_x) < 0 ||
	    strspn(d->dm_x, "0123456789") != strlen(d->dm_x) || lit(r, "}") < 0))
		return -1;
	if (lit(r, ",\"channels\":[") < 0)
		return -1;
	do {
		if (str(r, &s, &n) < 0 || (c = channel_from_name(s)) < 0 ||
		    (d->channels & CH_BIT(c)))
			return -1;
		d->channels |= CH_BIT(c);
	} while (lit(r, ",") == 0);
	if (lit(r, "]") < 0)
		return -1;
	for (c = 0; c < CH_COUNT; c++) {
		if (lit(r, c == 0 ? ",\"consent\":{\"" : ",\"") < 0 ||
		    lit(r, channel_name((enum channel)c)) < 0 || lit(r, "\":") < 0)
			return -1;
		if (lit(r, "null") == 0)
			continue;
		if (str(r, &s, &n) < 0 || time_parse_rfc3339(s, &d->consent[c]) < 0 ||
		    d->consent[c] <= 0)
			return -1;
	}
	return lit(r, "}") == 0 ? 0 : -1;
}

/* The "interests" object's members, each of which may be left out. */
static int interests(struct rd *r, struct subscriber *d, char **slots)
{
	struct interests *in = &d->interests;
	int first = 1;

	if (lit(r, "{") < 0)
		return -1;
	if (key(r, "categories", &first) == 0) {
		if (list(r, SUB_INTEREST_MAX, &in->categories, slots) < 0)
			return -1;
		slots += in->categories.n;
	}
	if (key(r, "brands", &first) == 0) {
		if (list(r, SUB_INTEREST_MAX, &in->brands, slots) < 0)
			return -1;
		slots += in->brands.n;
	}
	if (key(r, "keywords", &first) == 0 &&
	    list(r, SUB_INTEREST_MAX, &in->keywords, slots) < 0)
		return -1;
	if (key(r, "max_price", &first) == 0 && lit(r, "null") < 0) {
		if (num_in(r, 0, SUB_PRICE_MAX, &in->max_price) < 0)
			return -1;
		d->has_max_price = 1;
	}
	if (key(r, "min_discount_pct", &first) == 0 && lit(r, "null") < 0) {
		if (num_in(r, 0, 100, &in->min_discount_pct) < 0)
			return -1;
		d->has_min_discount_pct = 1;
	}
	return lit(r, "}");
}

/* After the consent: every member but the time zone and the engagement may be left
 * out (subscriber_to_json leaves out what parses back to the default; documents
 * stored before that carry them all). */
static int body(struct rd *r, struct subscriber *d, char **slots)
{
	double v;
	int first = 0;

	if (lit(r, ",\"timezone\":") < 0 || str_max(r, SUB_TZ_NAME_MAX, &d->timezone) < 0 ||
	    !sub_tz_name_is_well_formed(d->timezone) || !sub_tz_is_known(d->timezone))
		return -1;
	if (key(r, "quiet_hours", &first) == 0 && lit(r, "null") < 0 &&
	    (lit(r, "{\"start\":") < 0 || hhmm(r, &d->quiet_start_min) < 0 ||
	    lit(r, ",\"end\":") < 0 || hhmm(r, &d->quiet_end_min) < 0 || lit(r, "}") < 0 ||
	    d->quiet_start_min == d->quiet_end_min))
		return -1;
	if (key(r, "max_per_day", &first) == 0) {
		if (num_in(r, 0, SUB_MAX_PER_DAY, &v) < 0 || v != (double)(int)v)
			return -1;
		d->max_per_day = (int)v;
	}
	if (key(r, "locale", &first) == 0 && lit(r, "null") < 0 &&
	    (str_max(r, SUB_LOCALE_MAX, &d->locale) < 0 ||
	    strspn(d->locale, SUB_LOCALE_CHARS) != strlen(d->locale)))
		return -1;
	if (key(r, "region", &first) == 0 && lit(r, "null") < 0) {
		if (str_max(r, SUB_REGION_MAX, &d->region) < 0 ||
		    strspn(d->region, SUB_LOCALE_CHARS) != strlen(d->region) ||
		    strlen(d->region) < SUB_REGION_MIN)
			return -1;
		jv_upper(d->region);
	}
	if (key(r, "tags", &first) == 0) {
		if (list(r, SUB_TAG_MAX, &d->tags, slots) < 0)
			return -1;
		slots += d->tags.n;
	}
	if (key(r, "interests", &first) == 0 && interests(r, d, slots) < 0)
		return -1;
	if (lit(r, ",\"engagement\":") < 0 || num_in(r, 0, 1, &d->engagement) < 0 ||
	    lit(r, "}") < 0 || r->p != r->end)
		return -1;
	return 0;
}

struct subscriber *sub_parse_canonical(const char *json, size_t len)
{
	char buf[MODEL_SUB_JSON_MAX + 1];
	char *slots[4 * MODEL_LIST_MAX];
	struct subscriber d;
	struct rd r;
	struct err err;
	int c;

	if (json == NULL || len > MODEL_SUB_JSON_MAX)
		return NULL;
	memset(&d, 0, sizeof(d));
	d.quiet_start_min = d.quiet_end_min = -1;
	r.p = json;
	r.end = json + len;
	r.buf = buf;
	r.used = 0;
	r.cap = sizeof(buf);
	if (head(&r, &d) < 0 || body(&r, &d, slots) < 0)
		return NULL;
	for (c = 0; c < CH_COUNT; c++)
		if ((d.channels & CH_BIT(c)) && channel_contact(&d, (enum channel)c) == NULL)
			return NULL;
	return sub_compact_of(&d, &err);
}
