/*
 * subscriber.c: parse, validate and serialise one subscriber (contract:
 * docs/contracts.md).
 *
 * Stage: match and admin (dealpushctl import, the admin API, the load at start-up).
 * Input is hostile; the first problem found is reported with the field path at fault.
 * subscriber_to_json() writes the canonical form kept in Redis, and parsing it gives
 * back the same struct. Must never crash on any input, never accept a timezone that
 * is not a TZif file under TZDIR, and never log (the caller decides).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "deal.h"
#include "intern.h"
#include "jsonv.h"
#include "subscriber.h"
#include "subscriber_int.h"
#include "timefmt.h"
#include "tz.h"

#define SUB_ZONES_MAX 4096        /* zones of the cache loaded here (tz.h) */


/* Contract fields per object; a second occurrence of any of them is refused. */
static const char *const top_fields[] = {
	"id", "phone", "dm", "channels", "consent", "timezone", "quiet_hours",
	"max_per_day", "locale", "region", "tags", "interests", "engagement",
};
static const char *const dm_fields[] = { "x" };
static const char *const quiet_fields[] = { "start", "end" };
static const char *const interest_fields[] = {
	"categories", "brands", "keywords", "max_price", "min_discount_pct",
};
#define NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

/*
 * jv_check_unique() for obj, with a fast path for what the store holds: when every
 * member is a contract field and they come in the order of names (the canonical
 * order), no field can appear twice, which takes one pass instead of one per name.
 */
static int check_unique(const cJSON *obj, const char *const *names, size_t n,
    const char *prefix, struct err *err)
{
	const cJSON *c;
	size_t j = 0;

	for (c = obj->child; c != NULL; c = c->next, j++) {
		while (j < n && c->string != NULL && strcmp(c->string, names[j]) != 0)
			j++;
		if (j >= n || c->string == NULL)
			return jv_check_unique(obj, names, n, prefix, err);
	}
	return 0;
}

int phone_is_e164(const char *phone)
{
	size_t n;

	if (phone == NULL || phone[0] != '+' || phone[1] < '1' || phone[1] > '9')
		return 0;
	n = strspn(phone + 1, "0123456789");
	return phone[1 + n] == '\0' && n >= 8 && n <= 15;
}

/* ---- timezone names ---- */

/*
 * The zones a subscriber's timezone is checked against: the process's own cache when
 * it has one (the notifier's, loaded at start-up: sub_tz_use), else one loaded here
 * the first time a name is checked (dealpushctl, the tests) and kept for the process.
 * Either way a bulk import opens no file per subscriber for a zone tzdata has.
 */
static struct tzcache *sub_zones;

void sub_tz_use(struct tzcache *zones)
{
	sub_zones = zones;
}

/* [A-Za-z0-9_+-] segments joined by '/', 1..SUB_TZ_NAME_MAX bytes. No '.', so no
 * "..", and no leading, trailing or doubled '/'. */
int sub_tz_name_is_well_formed(const char *name)
{
	size_t n = strlen(name), i;

	if (n == 0 || n > SUB_TZ_NAME_MAX || name[0] == '/' || name[n - 1] == '/')
		return 0;
	for (i = 0; i < n; i++) {
		char c = name[i];

		if (c == '/' && name[i + 1] == '/')
			return 0;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '+' || c == '-' || c == '/'))
			return 0;
	}
	return 1;
}

/* 1 when name is a well-formed zone that exists in tzdata, else 0. */
int sub_tz_is_known(const char *name)
{
	static struct tzcache *own;

	if (!sub_tz_name_is_well_formed(name))
		return 0;
	if (sub_zones == NULL) {
		if (own == NULL && (own = tzcache_new(NULL, SUB_ZONES_MAX)) != NULL &&
		    tzcache_load_all(own, NULL) < 0)
			return 0;   /* out of memory: refused now, checked again next time */
		if ((sub_zones = own) == NULL)
			return 0;
	}
	return tz_get(sub_zones, name, NULL) != NULL;
}

/* ---- field helpers: each returns 0, or -1 with *err naming the field path ---- */

/* A string of 1..max bytes whose every byte is in allowed (NULL: any but controls). */
static int take_checked(const cJSON *v, const char *field, size_t max, const char *allowed,
    const char *rule, char **out, struct err *err)
{
	if (jv_take_string(v, field, max, out, err) < 0)
		return -1;
	if (allowed != NULL ? strspn(*out, allowed) != strlen(*out) : jv_has_control(*out))
		return jv_bad_value(err, field, rule);
	return 0;
}

/* An optional finite number in [min, max]. */
static int opt_number(const cJSON *obj, const char *name, const char *field, double min,
    double max, int *has, double *out, struct err *err)
{
	const cJSON *v = jv_field(obj, name);

	if (v == NULL)
		return 0;
	if (!cJSON_IsNumber(v))
		return jv_bad_type(err, field, "a number", v);
	if (!isfinite(v->valuedouble) || v->valuedouble < min || v->valuedouble > max)
		return err_set(err, ERR_INPUT, "bad_value", field, "%s: must be from %g to %g",
		    field, min, max);
	*has = 1;
	*out = v->valuedouble;
	return 0;
}

/* "HH:MM" (00:00..23:59) into minutes after midnight. */
static int parse_hhmm(const cJSON *v, const char *field, int16_t *out, struct err *err)
{
	const char *s;

	if (!cJSON_IsString(v) || v->valuestring == NULL)
		return jv_bad_type(err, field, "a string \"HH:MM\"", v);
	s = v->valuestring;
	if (strlen(s) != 5 || s[2] != ':' || s[0] < '0' || s[0] > '2' || s[1] < '0' ||
	    s[1] > '9' || s[3] < '0' || s[3] > '5' || s[4] < '0' || s[4] > '9' ||
	    (s[0] - '0') * 10 + (s[1] - '0') > 23)
		return jv_bad_value(err, field, "expected \"HH:MM\" from 00:00 to 23:59");
	*out = ((s[0] - '0') * 10 + (s[1] - '0')) * 60 + (s[3] - '0') * 10 + (s[4] - '0');
	return 0;
}

/* ---- the fields of the contract ---- */

static int parse_channels(const cJSON *root, struct subscriber *s, struct err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "channels"), *c;
	size_t i = 0;

	if (v == NULL)
		return jv_missing(err, "channels");
	if (!cJSON_IsArray(v))
		return jv_bad_type(err, "channels", "an array of channel names", v);
	if (v->child == NULL)
		return jv_bad_value(err, "channels", "at least one channel is needed");
	for (c = v->child; c != NULL; c = c->next, i++) {
		int ch;

		if (!cJSON_IsString(c))
			return err_set(err, ERR_INPUT, "bad_type", "channels",
			    "channels[%zu]: expected a string, got %s", i, jv_type_name(c));
		ch = channel_from_name(c->valuestring);
		if (ch < 0)
			return err_set(err, ERR_INPUT, "bad_value", "channels",
			    "channels[%zu]: unknown channel \"%.32s\"", i, c->valuestring);
		if (s->channels & CH_BIT(ch))
			return err_set(err, ERR_INPUT, "bad_value", "channels",
			    "channels[%zu]: \"%s\" is listed twice", i, c->valuestring);
		s->channels |= CH_BIT(ch);
	}
	return 0;
}

static int parse_timezone(const cJSON *root, struct subscriber *s, struct err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "timezone");

	if (v == NULL)
		return jv_missing(err, "timezone");
	if (jv_take_string(v, "timezone", SUB_TZ_NAME_MAX, &s->timezone, err) < 0)
		return -1;
	if (!sub_tz_name_is_well_formed(s->timezone))
		return jv_bad_value(err, "timezone", "not an IANA zone name");
	if (!sub_tz_is_known(s->timezone))
		return err_set(err, ERR_INPUT, "bad_value", "timezone",
		    "timezone: \"%s\" is not in tzdata", s->timezone);
	return 0;
}

static int parse_dm(const cJSON *root, struct subscriber *s, struct err *err)
{
	const cJSON *v = jv_field(root, "dm"), *x;

	if (v == NULL)
		return 0;
	if (!cJSON_IsObject(v))
		return jv_bad_type(err, "dm", "an object", v);
	if (check_unique(v, dm_fields, NFIELDS(dm_fields), "dm", err) < 0)
		return -1;
	x = jv_field(v, "x");
	if (x == NULL)
		return 0;
	return take_checked(x, "dm.x", SUB_DM_X_MAX, "0123456789", "an X user id is digits",
	    &s->dm_x, err);
}

static int parse_consent(const cJSON *root, struct subscriber *s, struct err *err)
{
	const cJSON *v = jv_field(root, "consent"), *c;
	char path[64];

	if (v == NULL)
		return 0;
	if (!cJSON_IsObject(v))
		return jv_bad_type(err, "consent", "an object", v);
	if (check_unique(v, channel_names(), CH_COUNT, "consent", err) < 0)
		return -1;
	for (c = v->child; c != NULL; c = c->next) {
		int ch = channel_from_name(c->string);

		snprintf(path, sizeof(path), "consent.%.32s", c->string ? c->string : "");
		if (ch < 0)
			return jv_bad_value(err, path, "unknown channel");
		if (cJSON_IsNull(c))
			continue;
		if (!cJSON_IsString(c))
			return jv_bad_type(err, path, "an RFC 3339 string", c);
		if (time_parse_rfc3339(c->valuestring, &s->consent[ch]) < 0)
			return jv_bad_value(err, path, "not an RFC 3339 time");
		if (s->consent[ch] <= 0)
			return jv_bad_value(err, path, "must be after 1970-01-01T00:00:00Z");
	}
	return 0;
}

static int parse_quiet_hours(const cJSON *root, struct subscriber *s, struct err *err)
{
	const cJSON *v = jv_field(root, "quiet_hours"), *start, *end;

	if (v == NULL)
		return 0;
	if (!cJSON_IsObject(v))
		return jv_bad_type(err, "quiet_hours", "an object", v);
	if (check_unique(v, quiet_fields, NFIELDS(quiet_fields), "quiet_hours", err) < 0)
		return -1;
	start = cJSON_GetObjectItemCaseSensitive(v, "start");
	end = cJSON_GetObjectItemCaseSensitive(v, "end");
	if (start == NULL)
		return jv_missing(err, "quiet_hours.start");
	if (end == NULL)
		return jv_missing(err, "quiet_hours.end");
	if (parse_hhmm(start, "quiet_hours.start", &s->quiet_start_min, err) < 0 ||
	    parse_hhmm(end, "quiet_hours.end", &s->quiet_end_min, err) < 0)
		return -1;
	if (s->quiet_start_min == s->quiet_end_min)
		return jv_bad_value(err, "quiet_hours", "start and end must differ");
	return 0;
}

static int parse_interests(const cJSON *root, struct subscriber *s, struct err *err)
{
	const cJSON *v = jv_field(root, "interests");
	struct interests *in = &s->interests;
	int has_max = 0, has_min = 0;

	if (v == NULL)
		return 0;
	if (!cJSON_IsObject(v))
		return jv_bad_type(err, "interests", "an object", v);
	if (check_unique(v, interest_fields, NFIELDS(interest_fields), "interests", err) < 0)
		return -1;
	if (jv_strlist(v, "categories", "interests.categories", SUB_INTEREST_MAX,
	    &in->categories, err) < 0 ||
	    jv_strlist(v, "brands", "interests.brands", SUB_INTEREST_MAX, &in->brands,
	    err) < 0 ||
	    jv_strlist(v, "keywords", "interests.keywords", SUB_INTEREST_MAX, &in->keywords,
	    err) < 0 ||
	    opt_number(v, "max_price", "interests.max_price", 0, SUB_PRICE_MAX,
	    &has_max, &in->max_price, err) < 0 ||
	    opt_number(v, "min_discount_pct", "interests.min_discount_pct", 0, 100,
	    &has_min, &in->min_discount_pct, err) < 0)
		return -1;
	s->has_max_price = (uint8_t)has_max;
	s->has_min_discount_pct = (uint8_t)has_min;
	return 0;
}

/* Scalars and lists at the top level that have no structure of their own. */
static int parse_plain(const cJSON *root, struct subscriber *s, struct err *err)
{
	const cJSON *v;
	double d = 0;
	int has = 0;

	v = jv_field(root, "phone");
	if (v != NULL) {
		if (jv_take_string(v, "phone", 16, &s->phone, err) < 0)
			return -1;
		if (!phone_is_e164(s->phone))
			return jv_bad_value(err, "phone", "not E.164 (+ and 8 to 15 digits)");
	}
	if (opt_number(root, "max_per_day", "max_per_day", 0, SUB_MAX_PER_DAY, &has, &d,
	    err) < 0)
		return -1;
	if (has && d != (double)(int)d)
		return jv_bad_value(err, "max_per_day", "must be a whole number");
	s->max_per_day = (int)d;
	v = jv_field(root, "locale");
	if (v != NULL && take_checked(v, "locale", SUB_LOCALE_MAX,
	    SUB_LOCALE_CHARS, "letters, digits and '-' only (BCP 47)", &s->locale, err) < 0)
		return -1;
	v = jv_field(root, "region");
	if (v != NULL) {
		if (take_checked(v, "region", SUB_REGION_MAX,
		    SUB_LOCALE_CHARS, "letters, digits and '-' only", &s->region, err) < 0)
			return -1;
		if (strlen(s->region) < SUB_REGION_MIN)
			return jv_bad_value(err, "region", "2 to 8 characters");
		jv_upper(s->region);
	}
	if (jv_strlist(root, "tags", "tags", SUB_TAG_MAX, &s->tags, err) < 0)
		return -1;
	if (opt_number(root, "engagement", "engagement", 0, 1, &has, &s->engagement, err) < 0)
		return -1;
	return 0;
}

static int parse_id(const cJSON *root, struct subscriber *s, struct err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "id");

	if (v == NULL)
		return jv_missing(err, "id");
	if (jv_take_string(v, "id", MODEL_ID_MAX, &s->id, err) < 0)
		return -1;
	if (!deal_id_is_valid(s->id))
		return jv_bad_value(err, "id", "only printable ASCII without spaces is allowed");
	return 0;
}

static int parse_subscriber(const cJSON *root, struct subscriber *s, struct err *err)
{
	int c;

	if (check_unique(root, top_fields, NFIELDS(top_fields), "", err) < 0 ||
	    parse_id(root, s, err) < 0)
		return -1;
	if (parse_channels(root, s, err) < 0 || parse_timezone(root, s, err) < 0 ||
	    parse_plain(root, s, err) < 0 || parse_dm(root, s, err) < 0 ||
	    parse_consent(root, s, err) < 0 || parse_quiet_hours(root, s, err) < 0 ||
	    parse_interests(root, s, err) < 0)
		return -1;
	for (c = 0; c < CH_COUNT; c++)
		if ((s->channels & CH_BIT(c)) && channel_contact(s, (enum channel)c) == NULL)
			return err_set(err, ERR_INPUT, "missing_field",
			    channel_def((enum channel)c)->contact, "%s: required when channels has "
			    "\"%s\"", channel_def((enum channel)c)->contact,
			    channel_name((enum channel)c));
	return 0;
}

/* ---- the compact record ---- */

/* Frees a draft: a struct whose every string was allocated on its own by the field
 * parsers above. */
static void draft_free(struct subscriber *s)
{
	if (s == NULL)
		return;
	free(s->id);
	free(s->phone);
	free(s->dm_x);
	free(s->timezone);
	free(s->locale);
	free(s->region);
	jv_strlist_free(&s->tags);
	jv_strlist_free(&s->interests.categories);
	jv_strlist_free(&s->interests.brands);
	jv_strlist_free(&s->interests.keywords);
	free(s);
}

/* Drops the references a compact record holds on interned strings. */
static void compact_release(struct subscriber *s)
{
	struct strlist *l[4] = { &s->tags, &s->interests.categories, &s->interests.brands,
		&s->interests.keywords };
	size_t i, j;

	intern_put(s->timezone);
	intern_put(s->locale);
	intern_put(s->region);
	for (i = 0; i < 4; i++)
		for (j = 0; j < l[i]->n; j++)
			intern_put(l[i]->v[j]);
}

/* Interns every item of src into dst, whose pointer array starts at *next; advances
 * *next. dst->n counts the items taken, also on failure (-1, out of memory). */
static int compact_list(struct strlist *dst, const struct strlist *src, char ***next)
{
	size_t i;

	dst->n = 0;
	dst->v = src->n > 0 ? *next : NULL;
	*next += src->n;
	for (i = 0; i < src->n; i++) {
		const char *p = intern_get(src->v[i], strlen(src->v[i]));

		if (p == NULL)
			return -1;
		dst->v[i] = (char *)p;
		dst->n = i + 1;
	}
	return 0;
}

static int compact_str(char **dst, const char *src)
{
	*dst = NULL;
	if (src == NULL)
		return 0;
	*dst = (char *)intern_get(src, strlen(src));
	return *dst != NULL ? 0 : -1;
}

/* Copies d (a validated draft) into one allocation: the struct, the lists' pointer
 * arrays, then id, phone and dm_x; the other strings interned. Returns the record,
 * or NULL with *err "no_memory" (d is never changed). */
struct subscriber *sub_compact_of(const struct subscriber *d, struct err *err)
{
	size_t nptr = d->tags.n + d->interests.categories.n + d->interests.brands.n +
	    d->interests.keywords.n;
	size_t idlen = strlen(d->id) + 1;
	size_t plen = d->phone != NULL ? strlen(d->phone) + 1 : 0;
	size_t xlen = d->dm_x != NULL ? strlen(d->dm_x) + 1 : 0;
	struct subscriber *s;
	char **next, *str;

	/* sizeof(struct subscriber) is a multiple of the pointer size: the arrays that
	 * follow it are aligned. */
	s = malloc(sizeof(*s) + nptr * sizeof(char *) + idlen + plen + xlen);
	if (s == NULL) {
		jv_nomem(err, "subscriber");
		return NULL;
	}
	*s = *d;
	s->timezone = s->locale = s->region = NULL;
	s->tags.n = s->interests.categories.n = s->interests.brands.n =
	    s->interests.keywords.n = 0;
	next = (char **)(void *)(s + 1);
	str = (char *)(next + nptr);
	s->id = str;
	memcpy(str, d->id, idlen);
	str += idlen;
	if (d->phone != NULL) {
		s->phone = str;
		memcpy(str, d->phone, plen);
		str += plen;
	}
	if (d->dm_x != NULL) {
		s->dm_x = str;
		memcpy(str, d->dm_x, xlen);
	}
	if (compact_str(&s->timezone, d->timezone) < 0 ||
	    compact_str(&s->locale, d->locale) < 0 ||
	    compact_str(&s->region, d->region) < 0 ||
	    compact_list(&s->tags, &d->tags, &next) < 0 ||
	    compact_list(&s->interests.categories, &d->interests.categories, &next) < 0 ||
	    compact_list(&s->interests.brands, &d->interests.brands, &next) < 0 ||
	    compact_list(&s->interests.keywords, &d->interests.keywords, &next) < 0) {
		compact_release(s);
		free(s);
		jv_nomem(err, "subscriber");
		return NULL;
	}
	return s;
}

/* Parses and validates; check_canon also refuses a subscriber whose canonical form
 * would be over the limit (needed for new input, not for what the store holds, which
 * is that canonical form already), and hands that form over in *canon_out when not
 * NULL. */
static struct subscriber *parse_common(const char *json, size_t len, int check_canon,
    char **canon_out, struct err *err)
{
	cJSON *root;
	struct subscriber *d = NULL, *s = NULL;
	char *canon = NULL;

	err_clear(err);
	root = deal_json_open(json, len, MODEL_SUB_JSON_MAX, "subscriber", err);
	if (root == NULL)
		goto out;
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		jv_nomem(err, "subscriber");
		goto out;
	}
	d->quiet_start_min = d->quiet_end_min = -1;
	if (parse_subscriber(root, d, err) < 0)
		goto out;
	if (check_canon) {
		/* What is stored is the canonical form; it must fit the same limit so that
		 * the daemon can always read back what was accepted. */
		canon = subscriber_to_json(d);
		if (canon == NULL) {
			jv_nomem(err, "subscriber");
			goto out;
		}
		if (strlen(canon) > MODEL_SUB_JSON_MAX) {
			err_set(err, ERR_INPUT, "too_large", NULL,
			    "subscriber: canonical form is %zu bytes, over the limit of %d",
			    strlen(canon), MODEL_SUB_JSON_MAX);
			goto out;
		}
	}
	if ((s = sub_compact_of(d, err)) != NULL && canon_out != NULL) {
		*canon_out = canon;
		canon = NULL;
	}
out:
	free(canon);
	cJSON_Delete(root);
	draft_free(d);
	return s;
}

struct subscriber *subscriber_parse(const char *json, size_t len, struct err *err)
{
	return parse_common(json, len, 1, NULL, err);
}

struct subscriber *subscriber_parse_canon(const char *json, size_t len, char **canon_out,
    struct err *err)
{
	return parse_common(json, len, 1, canon_out, err);
}

struct subscriber *subscriber_parse_stored(const char *json, size_t len, struct err *err)
{
	struct subscriber *s = sub_parse_canonical(json, len);

	if (s != NULL) {
		err_clear(err);
		return s;
	}
	return parse_common(json, len, 0, NULL, err);
}

/* ---- canonical JSON ---- */

/* A number as the shortest decimal that reads back as exactly d (cJSON's own printer
 * may drop the last bit, which would break the round trip). */
static cJSON *exact_number(double d)
{
	char buf[40];
	int prec;

	if (!isfinite(d))
		return cJSON_CreateNull();
	if (d == trunc(d) && fabs(d) < 1e15) {
		snprintf(buf, sizeof(buf), "%.0f", d);
		return cJSON_CreateRaw(buf);
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	return cJSON_CreateRaw(buf);
}

static cJSON *string_or_null(const char *s)
{
	return s != NULL ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static cJSON *string_array(const struct strlist *l)
{
	cJSON *a = cJSON_CreateArray();
	size_t i;

	for (i = 0; a != NULL && i < l->n; i++) {
		if (!cJSON_AddItemToArray(a, cJSON_CreateString(l->v[i]))) {
			cJSON_Delete(a);
			a = NULL;
		}
	}
	return a;
}

/* Adds item to obj under name; deletes item and returns 0 when either is NULL or
 * adding fails, else 1. */
static int put(cJSON *obj, const char *name, cJSON *item)
{
	if (obj == NULL || item == NULL || !cJSON_AddItemToObject(obj, name, item)) {
		cJSON_Delete(item);
		return 0;
	}
	return 1;
}

static cJSON *hhmm(int min)
{
	char buf[8];

	snprintf(buf, sizeof(buf), "%02d:%02d", (min / 60) % 24, min % 60);
	return cJSON_CreateString(buf);
}

const char *
subscriber_consent_arg(const struct subscriber *s, enum channel c, char *buf, size_t size)
{
	buf[0] = '\0';
	if (s->consent[c] != 0 && (s->channels & CH_BIT(c)))
		snprintf(buf, size, "%lld", (long long)s->consent[c]);
	return buf;
}

/* Adds name: strings of l to obj unless l is empty (the canonical form leaves out
 * what parses back to the default). Returns 1, or 0 when out of memory. */
static int put_list(cJSON *obj, const char *name, const struct strlist *l)
{
	return l->n == 0 || put(obj, name, string_array(l));
}

/*
 * The canonical form leaves out every member whose absence parses back to the same
 * value (null, [], max_per_day 0, an empty interests), so that what Redis keeps per
 * subscriber is small; "consent" (every channel, null included) and "engagement"
 * (last) are always there: the Lua scripts edit them in place (lib/subjson.lua).
 */
char *subscriber_to_json(const struct subscriber *s)
{
	cJSON *root = cJSON_CreateObject(), *o;
	char *out = NULL, ts[32];
	int ok = root != NULL, c;

	if (s == NULL || !ok)
		goto out;
	ok &= put(root, "id", cJSON_CreateString(s->id ? s->id : ""));
	if (s->phone != NULL)
		ok &= put(root, "phone", cJSON_CreateString(s->phone));
	if (s->dm_x != NULL) {
		o = cJSON_CreateObject();
		ok &= put(o, "x", cJSON_CreateString(s->dm_x));
		ok &= put(root, "dm", o);
	}
	o = cJSON_CreateArray();
	for (c = 0; c < CH_COUNT; c++) {
		if ((s->channels & CH_BIT(c)) && o != NULL &&
		    !cJSON_AddItemToArray(o, cJSON_CreateString(channel_name((enum channel)c))))
			ok = 0;
	}
	ok &= put(root, "channels", o);
	o = cJSON_CreateObject();
	for (c = 0; c < CH_COUNT; c++) {
		ok &= put(o, channel_name((enum channel)c), s->consent[c] != 0 ?
		    cJSON_CreateString(time_format_rfc3339(s->consent[c], ts, sizeof(ts))) :
		    cJSON_CreateNull());
	}
	ok &= put(root, "consent", o);
	ok &= put(root, "timezone", string_or_null(s->timezone));
	if (s->quiet_start_min >= 0 && s->quiet_end_min >= 0) {
		o = cJSON_CreateObject();
		ok &= put(o, "start", hhmm(s->quiet_start_min));
		ok &= put(o, "end", hhmm(s->quiet_end_min));
		ok &= put(root, "quiet_hours", o);
	}
	if (s->max_per_day != 0)
		ok &= put(root, "max_per_day", cJSON_CreateNumber(s->max_per_day));
	if (s->locale != NULL)
		ok &= put(root, "locale", cJSON_CreateString(s->locale));
	if (s->region != NULL)
		ok &= put(root, "region", cJSON_CreateString(s->region));
	ok &= put_list(root, "tags", &s->tags);
	if (s->interests.categories.n > 0 || s->interests.brands.n > 0 ||
	    s->interests.keywords.n > 0 || s->has_max_price ||
	    s->has_min_discount_pct) {
		o = cJSON_CreateObject();
		ok &= o != NULL;
		ok &= put_list(o, "categories", &s->interests.categories);
		ok &= put_list(o, "brands", &s->interests.brands);
		ok &= put_list(o, "keywords", &s->interests.keywords);
		if (s->has_max_price)
			ok &= put(o, "max_price", exact_number(s->interests.max_price));
		if (s->has_min_discount_pct)
			ok &= put(o, "min_discount_pct",
			    exact_number(s->interests.min_discount_pct));
		ok &= put(root, "interests", o);
	}
	ok &= put(root, "engagement", exact_number(s->engagement));
	if (ok)
		out = cJSON_PrintUnformatted(root);
out:
	cJSON_Delete(root);
	return out;
}

void subscriber_free(struct subscriber *s)
{
	if (s == NULL)
		return;
	free(s->behav);
	compact_release(s);
	free(s);
}
