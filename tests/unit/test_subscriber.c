/*
 * test_subscriber.c: the subscriber contract (notifier/subscriber.c).
 *
 * Every validation rule with the code and field path it reports, the canonical JSON
 * and its exact round trip, channel names, E.164, the tzdata check (a private TZDIR
 * proves the TZif test), and hostile input: truncations, random bytes, deep nesting
 * and huge arrays, none of which may crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "intern.h"
#include "subscriber.h"
#include "tz.h"
#include "../../notifier/subscriber_int.h"  /* the canonical reader */

static const char full_sub[] =
	"{\"id\": \"s-1001\", \"phone\": \"+15125550100\", \"dm\": {\"x\": \"123456789\"},"
	" \"channels\": [\"sms\", \"dm\"], \"consent\": {\"sms\": \"2026-01-02T10:00:00Z\"},"
	" \"timezone\": \"America/Chicago\", \"quiet_hours\": {\"start\": \"21:00\","
	" \"end\": \"08:00\"}, \"max_per_day\": 3, \"locale\": \"en-US\", \"region\": \"us\","
	" \"tags\": [\"Outlet-Follower\"], \"interests\": {\"categories\": [\"Laptop\","
	" \"monitor\"], \"brands\": [\"DELL\"], \"max_price\": 800, \"min_discount_pct\": 15,"
	" \"keywords\": [\"XPS\"]}, \"engagement\": 0.72}";

/* id, channels ["sms"], phone and timezone, then extra members (extra may be ""). */
static struct subscriber *parse_with(const char *extra, struct err *e)
{
	static char buf[MODEL_SUB_JSON_MAX * 2];

	snprintf(buf, sizeof(buf), "{\"id\": \"s-1\", \"channels\": [\"sms\"], \"phone\":"
	    " \"+15125550100\", \"timezone\": \"America/New_York\"%s%s}",
	    extra[0] != '\0' ? ", " : "", extra);
	return subscriber_parse(buf, strlen(buf), e);
}

static struct subscriber *parse(const char *json, struct err *e)
{
	return subscriber_parse(json, strlen(json), e);
}

static void check_refused(struct subscriber *s, const struct err *e, const char *code,
    const char *field)
{
	const char *prefix = field[0] != '\0' ? field : "subscriber";

	if (s != NULL) {
		subscriber_free(s);
		fail_msg("accepted, expected %s on \"%s\"", code, field);
	}
	if (strcmp(e->code, code) != 0 || strcmp(e->field, field) != 0)
		fail_msg("expected %s/%s, got %s/%s: %s", code, field, e->code, e->field,
		    e->msg);
	if (strncmp(e->msg, prefix, strlen(prefix)) != 0)
		fail_msg("message \"%s\" does not start with \"%s\"", e->msg, prefix);
	assert_int_equal(e->kind, ERR_INPUT);
}

static void refused(const char *json, const char *code, const char *field)
{
	struct err e;

	check_refused(parse(json, &e), &e, code, field);
}

static void refused_with(const char *extra, const char *code, const char *field)
{
	struct err e;

	check_refused(parse_with(extra, &e), &e, code, field);
}

static struct subscriber *accepted_with(const char *extra)
{
	struct err e;
	struct subscriber *s = parse_with(extra, &e);

	if (s == NULL)
		fail_msg("refused %s: %s", extra, e.msg);
	return s;
}

static const char *rep(char c, size_t n)
{
	static char buf[4][4096];
	static int k;
	char *b = buf[k++ % 4];

	memset(b, c, n);
	b[n] = '\0';
	return b;
}

static int str_eq(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static int list_eq(const struct strlist *a, const struct strlist *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++) {
		if (strcmp(a->v[i], b->v[i]) != 0)
			return 0;
	}
	return 1;
}

/* Every field of a and b, exactly (doubles with ==). */
static void assert_same_subscriber(const struct subscriber *a, const struct subscriber *b)
{
	int c;

	assert_true(str_eq(a->id, b->id));
	assert_true(str_eq(a->phone, b->phone));
	assert_true(str_eq(a->dm_x, b->dm_x));
	assert_int_equal(a->channels, b->channels);
	for (c = 0; c < CH_COUNT; c++)
		assert_int_equal(a->consent[c], b->consent[c]);
	assert_true(str_eq(a->timezone, b->timezone));
	assert_int_equal(a->quiet_start_min, b->quiet_start_min);
	assert_int_equal(a->quiet_end_min, b->quiet_end_min);
	assert_int_equal(a->max_per_day, b->max_per_day);
	assert_true(str_eq(a->locale, b->locale));
	assert_true(str_eq(a->region, b->region));
	assert_true(list_eq(&a->tags, &b->tags));
	assert_true(list_eq(&a->interests.categories, &b->interests.categories));
	assert_true(list_eq(&a->interests.brands, &b->interests.brands));
	assert_true(list_eq(&a->interests.keywords, &b->interests.keywords));
	assert_int_equal(a->has_max_price, b->has_max_price);
	assert_true(a->interests.max_price == b->interests.max_price);
	assert_int_equal(a->has_min_discount_pct, b->has_min_discount_pct);
	assert_true(a->interests.min_discount_pct == b->interests.min_discount_pct);
	assert_true(a->engagement == b->engagement);
}

/* parse(json) -> to_json -> parse gives the same struct, and to_json is stable. */
static void round_trip(const char *json)
{
	struct err e;
	struct subscriber *a = parse(json, &e), *b;
	char *j1, *j2;

	if (a == NULL)
		fail_msg("refused %s: %s", json, e.msg);
	j1 = subscriber_to_json(a);
	assert_non_null(j1);
	b = parse(j1, &e);
	if (b == NULL)
		fail_msg("canonical form refused: %s: %s", j1, e.msg);
	assert_same_subscriber(a, b);
	j2 = subscriber_to_json(b);
	assert_non_null(j2);
	assert_string_equal(j1, j2);
	free(j1);
	free(j2);
	subscriber_free(a);
	subscriber_free(b);
}

static void full_subscriber_is_parsed_with_every_field(void **state)
{
	struct err e;
	struct subscriber *s = parse(full_sub, &e);

	(void)state;
	assert_non_null(s);
	assert_string_equal(s->id, "s-1001");
	assert_string_equal(s->phone, "+15125550100");
	assert_string_equal(s->dm_x, "123456789");
	assert_int_equal(s->channels, CH_BIT(CH_SMS) | CH_BIT(CH_DM));
	assert_int_equal(s->consent[CH_SMS], 1767348000);
	assert_int_equal(s->consent[CH_DM], 0);
	assert_string_equal(s->timezone, "America/Chicago");
	assert_int_equal(s->quiet_start_min, 21 * 60);
	assert_int_equal(s->quiet_end_min, 8 * 60);
	assert_int_equal(s->max_per_day, 3);
	assert_string_equal(s->locale, "en-US");
	assert_string_equal(s->region, "US");
	assert_int_equal(s->tags.n, 1);
	assert_string_equal(s->tags.v[0], "outlet-follower");
	assert_int_equal(s->interests.categories.n, 2);
	assert_string_equal(s->interests.categories.v[0], "laptop");
	assert_string_equal(s->interests.brands.v[0], "dell");
	assert_string_equal(s->interests.keywords.v[0], "xps");
	assert_true(s->has_max_price && s->interests.max_price == 800);
	assert_true(s->has_min_discount_pct && s->interests.min_discount_pct == 15);
	assert_true(s->engagement == 0.72);
	subscriber_free(s);
}

static void minimal_dm_only_subscriber_gets_defaults(void **state)
{
	struct err e;
	struct subscriber *s = parse("{\"id\":\"s-2\",\"channels\":[\"dm\"],\"dm\":{\"x\":"
	    "\"42\"},\"timezone\":\"Europe/Berlin\"}", &e);

	(void)state;
	assert_non_null(s);
	assert_null(s->phone);
	assert_string_equal(s->dm_x, "42");
	assert_int_equal(s->channels, CH_BIT(CH_DM));
	assert_int_equal(s->consent[CH_SMS], 0);
	assert_int_equal(s->quiet_start_min, -1);
	assert_int_equal(s->quiet_end_min, -1);
	assert_int_equal(s->max_per_day, 0);
	assert_null(s->locale);
	assert_null(s->region);
	assert_int_equal(s->tags.n, 0);
	assert_false(s->has_max_price);
	assert_true(s->engagement == 0);
	subscriber_free(s);
}

static void missing_required_fields_are_named(void **state)
{
	(void)state;
	refused("{\"channels\":[\"dm\"],\"dm\":{\"x\":\"1\"},\"timezone\":\"UTC\"}",
	    "missing_field", "id");
	refused("{\"id\":\"a\",\"dm\":{\"x\":\"1\"},\"timezone\":\"UTC\"}",
	    "missing_field", "channels");
	refused("{\"id\":\"a\",\"channels\":[\"dm\"],\"dm\":{\"x\":\"1\"}}",
	    "missing_field", "timezone");
}

static void id_follows_the_deal_id_rules(void **state)
{
	char json[512];

	(void)state;
	refused("{\"id\":\"s 1\",\"channels\":[\"dm\"]}", "bad_value", "id");
	refused("{\"id\":\"\",\"channels\":[\"dm\"]}", "bad_value", "id");
	refused("{\"id\":1001,\"channels\":[\"dm\"]}", "bad_type", "id");
	snprintf(json, sizeof(json), "{\"id\":\"%s\"}", rep('s', 129));
	refused(json, "too_long", "id");
}

static void channels_must_be_known_distinct_and_non_empty(void **state)
{
	(void)state;
	refused("{\"id\":\"a\",\"channels\":[],\"timezone\":\"UTC\"}", "bad_value", "channels");
	refused("{\"id\":\"a\",\"channels\":[\"fax\"]}", "bad_value", "channels");
	refused("{\"id\":\"a\",\"channels\":[\"SMS\"]}", "bad_value", "channels");
	refused("{\"id\":\"a\",\"channels\":[\"dm\",\"dm\"]}", "bad_value", "channels");
	refused("{\"id\":\"a\",\"channels\":\"sms\"}", "bad_type", "channels");
	refused("{\"id\":\"a\",\"channels\":[1]}", "bad_type", "channels");
	refused("{\"id\":\"a\",\"channels\":null}", "bad_type", "channels");
}

static void sms_channel_requires_a_phone(void **state)
{
	struct err e;
	struct subscriber *s = parse("{\"id\":\"a\",\"channels\":[\"sms\"],"
	    "\"timezone\":\"UTC\"}", &e);

	(void)state;
	check_refused(s, &e, "missing_field", "phone");
}

static void dm_channel_requires_an_x_id(void **state)
{
	(void)state;
	refused("{\"id\":\"a\",\"channels\":[\"dm\"],\"timezone\":\"UTC\"}",
	    "missing_field", "dm.x");
	refused("{\"id\":\"a\",\"channels\":[\"dm\"],\"timezone\":\"UTC\",\"dm\":{}}",
	    "missing_field", "dm.x");
}

static void dm_x_is_1_to_19_digits(void **state)
{
	char extra[128];

	(void)state;
	subscriber_free(accepted_with("\"dm\": {\"x\": \"1234567890123456789\"}"));
	refused_with("\"dm\": {\"x\": \"12a\"}", "bad_value", "dm.x");
	refused_with("\"dm\": {\"x\": \"\"}", "bad_value", "dm.x");
	refused_with("\"dm\": {\"x\": 12}", "bad_type", "dm.x");
	refused_with("\"dm\": \"12\"", "bad_type", "dm");
	snprintf(extra, sizeof(extra), "\"dm\": {\"x\": \"%s\"}", rep('1', 20));
	refused_with(extra, "too_long", "dm.x");
}

static void phone_must_be_e164(void **state)
{
	(void)state;
	assert_int_equal(phone_is_e164("+15125550100"), 1);
	assert_int_equal(phone_is_e164("+4915123456789"), 1);
	assert_int_equal(phone_is_e164("+12345678"), 1);
	assert_int_equal(phone_is_e164("+123456789012345"), 1);
	assert_int_equal(phone_is_e164("+1234567"), 0);
	assert_int_equal(phone_is_e164("+1234567890123456"), 0);
	assert_int_equal(phone_is_e164("15125550100"), 0);
	assert_int_equal(phone_is_e164("+05125550100"), 0);
	assert_int_equal(phone_is_e164("+1 512 555 0100"), 0);
	assert_int_equal(phone_is_e164("+1512555010x"), 0);
	assert_int_equal(phone_is_e164("+"), 0);
	assert_int_equal(phone_is_e164(""), 0);
	assert_int_equal(phone_is_e164(NULL), 0);
	refused("{\"id\":\"a\",\"channels\":[\"sms\"],\"timezone\":\"UTC\","
	    "\"phone\":\"512-555-0100\"}", "bad_value", "phone");
	refused("{\"id\":\"a\",\"channels\":[\"sms\"],\"timezone\":\"UTC\","
	    "\"phone\":15125550100}", "bad_type", "phone");
	refused("{\"id\":\"a\",\"channels\":[\"sms\"],\"timezone\":\"UTC\","
	    "\"phone\":\"+15125550100000000\"}", "too_long", "phone");
}

static void timezone_must_exist_in_tzdata(void **state)
{
	char json[512];

	(void)state;
	refused("{\"id\":\"a\",\"channels\":[\"dm\"],\"timezone\":\"Mars/Olympus_Mons\"}",
	    "bad_value", "timezone");
	refused("{\"id\":\"a\",\"channels\":[\"dm\"],\"timezone\":\"../../etc/passwd\"}",
	    "bad_value", "timezone");
	refused("{\"id\":\"a\",\"channels\":[\"dm\"],\"timezone\":\"/etc/localtime\"}",
	    "bad_value", "timezone");
	refused("{\"id\":\"a\",\"channels\":[\"dm\"],\"timezone\":\"America//Chicago\"}",
	    "bad_value", "timezone");
	refused("{\"id\":\"a\",\"channels\":[\"dm\"],\"timezone\":\"America/\"}",
	    "bad_value", "timezone");
	refused("{\"id\":\"a\",\"channels\":[\"dm\"],\"timezone\":\"America\"}",
	    "bad_value", "timezone");             /* a directory, not a file */
	refused("{\"id\":\"a\",\"channels\":[\"dm\"],\"timezone\":\"zone.tab\"}",
	    "bad_value", "timezone");
	refused("{\"id\":\"a\",\"channels\":[\"dm\"],\"timezone\":\"\"}",
	    "bad_value", "timezone");
	refused("{\"id\":\"a\",\"channels\":[\"dm\"],\"timezone\":-6}",
	    "bad_type", "timezone");
	snprintf(json, sizeof(json), "{\"id\":\"a\",\"channels\":[\"dm\"],\"timezone\":"
	    "\"%s\"}", rep('A', 65));
	refused(json, "too_long", "timezone");
}

static void timezone_is_known_when_the_zone_cache_holds_it(void **state)
{
	const char *tmp = getenv("TMPDIR");
	char dir[200], path[256], cmd[600];
	struct tzcache *zones;
	struct err e;
	struct subscriber *s;
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/test_subscriber_tzXXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	assert_non_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s/Test' && cp /usr/share/zoneinfo/Europe/Paris "
	    "'%s/Test/Good'", dir, dir);
	assert_int_equal(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/Test/Text", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("TZif2 and then no zone at all", f);
	fclose(f);
	/* the process's zones, as the notifier loads them at start-up */
	assert_non_null(zones = tzcache_new(dir, 16));
	assert_int_equal(tzcache_load_all(zones, &e), 0);
	sub_tz_use(zones);

	s = parse("{\"id\":\"a\",\"channels\":[\"dm\"],\"dm\":{\"x\":\"1\"},"
	    "\"timezone\":\"Test/Good\"}", &e);
	assert_non_null(s);
	subscriber_free(s);
	/* a file that only starts like a zone, and a zone this tzdata does not have */
	refused("{\"id\":\"a\",\"channels\":[\"dm\"],\"timezone\":\"Test/Text\"}",
	    "bad_value", "timezone");
	refused("{\"id\":\"a\",\"channels\":[\"dm\"],\"timezone\":\"Europe/Paris\"}",
	    "bad_value", "timezone");
	/* Loaded once: removing the file does not change the answer. */
	snprintf(path, sizeof(path), "%s/Test/Good", dir);
	unlink(path);
	s = parse("{\"id\":\"a\",\"channels\":[\"dm\"],\"dm\":{\"x\":\"1\"},"
	    "\"timezone\":\"Test/Good\"}", &e);
	assert_non_null(s);
	subscriber_free(s);

	sub_tz_use(NULL);
	tzcache_free(zones);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void consent_for_an_unknown_channel_is_refused(void **state)
{
	struct err e;
	struct subscriber *s = parse_with("\"consent\": {\"fax\": \"2026-01-02T10:00:00Z\"}",
	    &e);

	(void)state;
	check_refused(s, &e, "bad_value", "consent.fax");
	assert_string_equal(e.msg, "consent.fax: unknown channel");
}

static void consent_is_an_rfc3339_time_per_channel(void **state)
{
	struct subscriber *s;

	(void)state;
	s = accepted_with("\"consent\": {\"sms\": \"2026-01-02T11:00:00+01:00\", \"dm\": null}");
	assert_int_equal(s->consent[CH_SMS], 1767348000);
	assert_int_equal(s->consent[CH_DM], 0);
	subscriber_free(s);
	refused_with("\"consent\": {\"sms\": \"yesterday\"}", "bad_value", "consent.sms");
	refused_with("\"consent\": {\"sms\": 1767348000}", "bad_type", "consent.sms");
	refused_with("\"consent\": {\"sms\": \"1970-01-01T00:00:00Z\"}", "bad_value",
	    "consent.sms");
	refused_with("\"consent\": {\"sms\": \"1969-01-01T00:00:00Z\"}", "bad_value",
	    "consent.sms");
	refused_with("\"consent\": {\"sms\": \"2026-01-02T10:00:00Z\", \"sms\": null}",
	    "bad_value", "consent.sms");
	refused_with("\"consent\": [\"sms\"]", "bad_type", "consent");
}

static void quiet_hours_need_start_and_end_that_differ(void **state)
{
	struct subscriber *s;

	(void)state;
	s = accepted_with("\"quiet_hours\": {\"start\": \"23:59\", \"end\": \"00:00\"}");
	assert_int_equal(s->quiet_start_min, 23 * 60 + 59);
	assert_int_equal(s->quiet_end_min, 0);
	subscriber_free(s);
	refused_with("\"quiet_hours\": {\"start\": \"21:00\"}", "missing_field",
	    "quiet_hours.end");
	refused_with("\"quiet_hours\": {\"end\": \"21:00\"}", "missing_field",
	    "quiet_hours.start");
	refused_with("\"quiet_hours\": {\"start\": \"21:00\", \"end\": \"21:00\"}",
	    "bad_value", "quiet_hours");
	refused_with("\"quiet_hours\": {\"start\": \"24:00\", \"end\": \"08:00\"}",
	    "bad_value", "quiet_hours.start");
	refused_with("\"quiet_hours\": {\"start\": \"21:00\", \"end\": \"8:00\"}",
	    "bad_value", "quiet_hours.end");
	refused_with("\"quiet_hours\": {\"start\": \"21:60\", \"end\": \"08:00\"}",
	    "bad_value", "quiet_hours.start");
	refused_with("\"quiet_hours\": {\"start\": 21, \"end\": \"08:00\"}",
	    "bad_type", "quiet_hours.start");
	refused_with("\"quiet_hours\": \"21:00-08:00\"", "bad_type", "quiet_hours");
}

static void max_per_day_is_a_whole_number_up_to_100(void **state)
{
	struct subscriber *s;

	(void)state;
	s = accepted_with("\"max_per_day\": 100");
	assert_int_equal(s->max_per_day, 100);
	subscriber_free(s);
	refused_with("\"max_per_day\": 101", "bad_value", "max_per_day");
	refused_with("\"max_per_day\": -1", "bad_value", "max_per_day");
	refused_with("\"max_per_day\": 2.5", "bad_value", "max_per_day");
	refused_with("\"max_per_day\": \"3\"", "bad_type", "max_per_day");
}

static void locale_is_a_short_bcp47_tag(void **state)
{
	char extra[128];

	(void)state;
	subscriber_free(accepted_with("\"locale\": \"zh-Hant-TW\""));
	refused_with("\"locale\": \"en_US\"", "bad_value", "locale");
	refused_with("\"locale\": \"en US\"", "bad_value", "locale");
	snprintf(extra, sizeof(extra), "\"locale\": \"%s\"", rep('a', 36));
	refused_with(extra, "too_long", "locale");
}

static void region_is_upper_cased_and_2_to_8_characters(void **state)
{
	struct subscriber *s;

	(void)state;
	s = accepted_with("\"region\": \"us-tx\"");
	assert_string_equal(s->region, "US-TX");
	subscriber_free(s);
	refused_with("\"region\": \"U\"", "bad_value", "region");
	refused_with("\"region\": \"ABCDEFGHI\"", "too_long", "region");
	refused_with("\"region\": \"U S\"", "bad_value", "region");
}

static void tags_are_lower_cased_and_limited(void **state)
{
	char extra[1024];
	size_t n = 0;
	int i;

	(void)state;
	n += (size_t)snprintf(extra + n, sizeof(extra) - n, "\"tags\": [");
	for (i = 0; i < 65; i++)
		n += (size_t)snprintf(extra + n, sizeof(extra) - n, "%s\"t%d\"", i ? "," : "", i);
	snprintf(extra + n, sizeof(extra) - n, "]");
	refused_with(extra, "too_long", "tags");
	snprintf(extra, sizeof(extra), "\"tags\": [\"%s\"]", rep('t', 65));
	refused_with(extra, "too_long", "tags");
	refused_with("\"tags\": [true]", "bad_type", "tags");
}

static void interests_are_checked_with_their_path(void **state)
{
	char extra[512];
	struct subscriber *s;

	(void)state;
	s = accepted_with("\"interests\": {\"keywords\": [\"OLED\"], \"max_price\": 0,"
	    " \"min_discount_pct\": 100, \"future\": 1}");
	assert_string_equal(s->interests.keywords.v[0], "oled");
	assert_true(s->has_max_price && s->interests.max_price == 0);
	subscriber_free(s);
	refused_with("\"interests\": {\"max_price\": -1}", "bad_value", "interests.max_price");
	refused_with("\"interests\": {\"max_price\": \"800\"}", "bad_type",
	    "interests.max_price");
	refused_with("\"interests\": {\"min_discount_pct\": 100.5}", "bad_value",
	    "interests.min_discount_pct");
	refused_with("\"interests\": {\"categories\": \"laptop\"}", "bad_type",
	    "interests.categories");
	refused_with("\"interests\": {\"brands\": [\"dell\", 3]}", "bad_type",
	    "interests.brands");
	snprintf(extra, sizeof(extra), "\"interests\": {\"keywords\": [\"%s\"]}",
	    rep('k', 129));
	refused_with(extra, "too_long", "interests.keywords");
	refused_with("\"interests\": [\"laptop\"]", "bad_type", "interests");
	refused_with("\"interests\": {\"brands\": [], \"brands\": [\"x\"]}", "bad_value",
	    "interests.brands");
}

static void engagement_is_between_0_and_1(void **state)
{
	(void)state;
	subscriber_free(accepted_with("\"engagement\": 1"));
	refused_with("\"engagement\": 1.01", "bad_value", "engagement");
	refused_with("\"engagement\": -0.1", "bad_value", "engagement");
	refused_with("\"engagement\": \"high\"", "bad_type", "engagement");
}

static void unknown_fields_are_ignored_and_null_is_absent(void **state)
{
	struct subscriber *s;

	(void)state;
	s = accepted_with("\"nickname\": \"x\", \"locale\": null, \"quiet_hours\": null,"
	    " \"tags\": null, \"engagement\": null");
	assert_null(s->locale);
	assert_int_equal(s->quiet_start_min, -1);
	subscriber_free(s);
	refused_with("\"phone\": \"+15125550199\"", "bad_value", "phone");  /* twice */
}

static void document_errors_name_the_subscriber(void **state)
{
	static const char nul[] = "{\"id\":\"a\0\"}";
	char *big = malloc(MODEL_SUB_JSON_MAX + 1);
	struct err e;

	(void)state;
	assert_non_null(big);
	memset(big, ' ', MODEL_SUB_JSON_MAX + 1);
	check_refused(subscriber_parse(big, MODEL_SUB_JSON_MAX + 1, &e), &e, "too_large", "");
	free(big);
	check_refused(subscriber_parse(nul, sizeof(nul) - 1, &e), &e, "binary", "");
	refused("{\"id\":\"\xfe\"}", "binary", "");
	refused("{\"id\":\"a\\u0000\"}", "binary", "");
	check_refused(parse("{\"id\":", &e), &e, "not_json", "");
	assert_string_equal(e.msg, "subscriber: not valid JSON near byte 6");
	refused("[]", "not_object", "");
	check_refused(subscriber_parse(NULL, 0, &e), &e, "not_json", "");
}

static void canonical_json_leaves_out_defaults_in_a_fixed_order(void **state)
{
	struct err e;
	struct subscriber *s = parse("{\"timezone\":\"Europe/Berlin\",\"dm\":{\"x\":\"42\"},"
	    "\"channels\":[\"dm\"],\"id\":\"s-2\"}", &e);
	char *json;

	(void)state;
	assert_non_null(s);
	json = subscriber_to_json(s);
	assert_non_null(json);
	/* Defaults are left out; consent (every channel) and engagement never are. */
	assert_string_equal(json, "{\"id\":\"s-2\",\"dm\":{\"x\":\"42\"},"
	    "\"channels\":[\"dm\"],\"consent\":{\"sms\":null,\"dm\":null},"
	    "\"timezone\":\"Europe/Berlin\",\"engagement\":0}");
	free(json);
	subscriber_free(s);
	s = parse(full_sub, &e);
	assert_non_null(s);
	json = subscriber_to_json(s);
	assert_non_null(json);
	assert_string_equal(json, "{\"id\":\"s-1001\",\"phone\":\"+15125550100\","
	    "\"dm\":{\"x\":\"123456789\"},\"channels\":[\"sms\",\"dm\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\",\"dm\":null},"
	    "\"timezone\":\"America/Chicago\",\"quiet_hours\":{\"start\":\"21:00\","
	    "\"end\":\"08:00\"},\"max_per_day\":3,\"locale\":\"en-US\",\"region\":\"US\","
	    "\"tags\":[\"outlet-follower\"],\"interests\":{\"categories\":[\"laptop\","
	    "\"monitor\"],\"brands\":[\"dell\"],\"keywords\":[\"xps\"],\"max_price\":800,"
	    "\"min_discount_pct\":15},\"engagement\":0.72}");
	free(json);
	subscriber_free(s);
	assert_null(subscriber_to_json(NULL));
}

static void canonical_json_round_trips_exactly(void **state)
{
	(void)state;
	round_trip(full_sub);
	round_trip("{\"id\":\"s-2\",\"channels\":[\"dm\"],\"dm\":{\"x\":\"42\"},"
	    "\"timezone\":\"Europe/Berlin\"}");
	round_trip("{\"id\":\"s-3\",\"channels\":[\"dm\",\"sms\"],\"phone\":\"+4915123456789\","
	    "\"dm\":{\"x\":\"9\"},\"timezone\":\"Asia/Kolkata\",\"consent\":{\"dm\":"
	    "\"2026-03-04T05:06:07.89+05:30\",\"sms\":\"2025-12-31T23:59:60Z\"},"
	    "\"engagement\":0.30000000000000004,\"interests\":{\"max_price\":1e-7,"
	    "\"min_discount_pct\":33.333333333333336,\"keywords\":[\"caf\\u00e9\","
	    "\"quote\\\"d\",\"back\\\\slash\"]},\"quiet_hours\":{\"start\":\"00:00\","
	    "\"end\":\"23:59\"},\"tags\":[\"\xe2\x82\xac-fan\"],\"region\":\"in\"}");
	round_trip("{\"id\":\"s-4\",\"channels\":[\"sms\"],\"phone\":\"+12345678\","
	    "\"timezone\":\"UTC\",\"engagement\":-0.0,\"max_per_day\":0}");
}

/* The canonical form of two of the subscribers above, pinned: the compact record
 * changed how a subscriber is kept, never what it says (members that parse back to
 * the default are left out, docs/contracts.md). */
static void canonical_json_is_what_it_was_before_the_compact_record(void **state)
{
	struct err e;
	struct subscriber *s = parse(full_sub, &e);
	char *json;

	(void)state;
	assert_non_null(s);
	json = subscriber_to_json(s);
	assert_string_equal(json, "{\"id\":\"s-1001\",\"phone\":\"+15125550100\","
	    "\"dm\":{\"x\":\"123456789\"},\"channels\":[\"sms\",\"dm\"],\"consent\":"
	    "{\"sms\":\"2026-01-02T10:00:00Z\",\"dm\":null},\"timezone\":"
	    "\"America/Chicago\",\"quiet_hours\":{\"start\":\"21:00\",\"end\":\"08:00\"},"
	    "\"max_per_day\":3,\"locale\":\"en-US\",\"region\":\"US\",\"tags\":"
	    "[\"outlet-follower\"],\"interests\":{\"categories\":[\"laptop\",\"monitor\"],"
	    "\"brands\":[\"dell\"],\"keywords\":[\"xps\"],\"max_price\":800,"
	    "\"min_discount_pct\":15},\"engagement\":0.72}");
	free(json);
	subscriber_free(s);
	s = parse("{\"id\":\"s-3\",\"channels\":[\"dm\",\"sms\"],\"phone\":\"+4915123456789\","
	    "\"dm\":{\"x\":\"9\"},\"timezone\":\"Asia/Kolkata\",\"consent\":{\"dm\":"
	    "\"2026-03-04T05:06:07.89+05:30\",\"sms\":\"2025-12-31T23:59:60Z\"},"
	    "\"engagement\":0.30000000000000004,\"interests\":{\"max_price\":1e-7,"
	    "\"min_discount_pct\":33.333333333333336,\"keywords\":[\"caf\\u00e9\","
	    "\"quote\\\"d\",\"back\\\\slash\"]},\"quiet_hours\":{\"start\":\"00:00\","
	    "\"end\":\"23:59\"},\"tags\":[\"\xe2\x82\xac-fan\"],\"region\":\"in\"}", &e);
	assert_non_null(s);
	json = subscriber_to_json(s);
	assert_string_equal(json, "{\"id\":\"s-3\",\"phone\":\"+4915123456789\",\"dm\":"
	    "{\"x\":\"9\"},\"channels\":[\"sms\",\"dm\"],\"consent\":{\"sms\":"
	    "\"2025-12-31T23:59:59Z\",\"dm\":\"2026-03-03T23:36:07Z\"},\"timezone\":"
	    "\"Asia/Kolkata\",\"quiet_hours\":{\"start\":\"00:00\",\"end\":\"23:59\"},"
	    "\"region\":\"IN\",\"tags\":"
	    "[\"\xe2\x82\xac-fan\"],\"interests\":{"
	    "\"keywords\":[\"caf\xc3\xa9\",\"quote\\\"d\",\"back\\\\slash\"],"
	    "\"max_price\":1e-07,\"min_discount_pct\":33.333333333333336},"
	    "\"engagement\":0.30000000000000004}");
	free(json);
	subscriber_free(s);
}

/* The compact record: id, phone and dm id inside the one block, the repeated strings
 * shared between subscribers, and every reference dropped by subscriber_free. */
static void parsed_subscribers_share_repeated_strings_in_one_block_each(void **state)
{
	struct err e;
	size_t base = intern_count();
	struct subscriber *a, *b;
	const char *p;

	(void)state;
	a = parse(full_sub, &e);
	b = parse("{\"id\":\"s-2\",\"channels\":[\"sms\"],\"phone\":\"+15125550199\","
	    "\"timezone\":\"America/Chicago\",\"locale\":\"en-US\",\"region\":\"US\","
	    "\"tags\":[\"outlet-follower\",\"new\"],\"interests\":{\"categories\":"
	    "[\"monitor\"],\"brands\":[\"Dell\"]}}", &e);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_equal(a->timezone, b->timezone);
	assert_ptr_equal(a->locale, b->locale);
	assert_ptr_equal(a->region, b->region);
	assert_ptr_equal(a->tags.v[0], b->tags.v[0]);
	assert_ptr_equal(a->interests.categories.v[1], b->interests.categories.v[0]);
	assert_ptr_equal(a->interests.brands.v[0], b->interests.brands.v[0]);
	assert_int_equal(intern_refs(a->timezone), 2);
	/* One block: the struct, then the pointer arrays, then id, phone, dm id. */
	for (p = (const char *)(a + 1); p != a->id; p++)
		if (p > (const char *)(a + 1) + 64 * sizeof(char *))
			fail_msg("id is not inside the subscriber's block");
	assert_ptr_equal(a->tags.v, (char **)(void *)(a + 1));
	assert_ptr_equal(a->phone, a->id + strlen(a->id) + 1);
	assert_ptr_equal(a->dm_x, a->phone + strlen(a->phone) + 1);
	assert_string_equal(a->dm_x, "123456789");
	/* tz, locale, region, outlet-follower, laptop, monitor, dell, xps, new. */
	assert_int_equal(intern_count(), base + 9);
	subscriber_free(a);
	assert_int_equal(intern_refs(b->timezone), 1);
	assert_string_equal(b->interests.brands.v[0], "dell");
	subscriber_free(b);
	assert_int_equal(intern_count(), base);
}

/* A refused subscriber takes no reference: hostile input leaves the table as it was. */
static void refused_subscribers_leave_no_interned_strings(void **state)
{
	struct err e;
	size_t base = intern_count();
	char buf[256];
	int i;

	(void)state;
	for (i = 0; i < 1000; i++) {
		snprintf(buf, sizeof(buf), "{\"id\":\"s-%d\",\"channels\":[\"sms\"],"
		    "\"timezone\":\"UTC\",\"tags\":[\"t-%d\"],\"interests\":{\"keywords\":"
		    "[\"k-%d\"]}}", i, i, i);
		assert_null(parse(buf, &e));   /* no phone for sms */
	}
	assert_int_equal(intern_count(), base);
	assert_null(subscriber_parse_stored("{\"id\":1}", 8, &e));
	assert_string_equal(e.code, "bad_type");
}

/* A varied valid subscriber number i (deterministic), as input JSON. */
static const char *varied_sub(unsigned i)
{
	static const char *const zones[] = { "America/Chicago", "Europe/Berlin", "UTC",
		"Asia/Kolkata", "America/New_York" };
	static const char *const nums[] = { "0", "1", "0.5", "0.30000000000000004", "1e-7",
		"-0.0", "0.125", "1E-3" };
	static char buf[2048];
	unsigned r = i * 2654435761u;

	snprintf(buf, sizeof(buf),
	    "{\"id\":\"s-%u\",\"channels\":[%s],\"phone\":\"+1512555%04u\","
	    "\"dm\":%s,\"consent\":{\"sms\":%s,\"dm\":%s},\"timezone\":\"%s\","
	    "\"quiet_hours\":%s,\"max_per_day\":%u,\"locale\":%s,\"region\":%s,"
	    "\"tags\":[%s],\"interests\":{\"categories\":[\"Cat%u\",\"cat%u\"],"
	    "\"brands\":[%s],\"keywords\":[%s],\"max_price\":%s,"
	    "\"min_discount_pct\":%s},\"engagement\":%s}",
	    i, r % 3 == 0 ? "\"sms\",\"dm\"" : r % 3 == 1 ? "\"dm\"" : "\"sms\"", i % 10000,
	    r % 3 != 2 ? "{\"x\":\"12345\"}" : "null",
	    r % 5 ? "\"2026-01-02T10:00:00Z\"" : "null",
	    r % 7 ? "\"2025-06-30T23:59:59.5+02:00\"" : "null", zones[r % 5],
	    r % 4 ? "{\"start\":\"21:00\",\"end\":\"08:30\"}" : "null", r % 101,
	    r % 6 ? "\"en-US\"" : "null", r % 8 ? "\"us-tx\"" : "null",
	    r % 9 ? "\"VIP\",\"outlet\"" : "", r % 200, (r / 7) % 200,
	    r % 11 ? "\"Dell\"" : "", r % 13 ? "\"xps 13\"" : "",
	    r % 2 ? nums[r % 8] == nums[5] ? "0" : nums[r % 8] : "null",
	    r % 3 ? "15" : "null", nums[(r / 3) % 8]);
	return buf;
}

/* The canonical reader against the full parser: on the canonical form of valid
 * subscribers it reads the same subscriber; on every one-byte change and every
 * truncation of them it either leaves the input to the full parser (NULL) or reads
 * exactly what the full parser reads. It never accepts what the full parser
 * refuses. */
static void canonical_reader_agrees_with_the_full_parser(void **state)
{
	static const char repl[] = "\"\\0 9aZ,:-}]{[.eE+\x01\x7f\xc3n";
	struct err e;
	unsigned i;
	size_t pos, k, fast = 0, mutants = 0;

	(void)state;
	for (i = 0; i < 300; i++) {
		const char *in = i == 0 ? full_sub : varied_sub(i);
		struct subscriber *g = parse(in, &e), *f;
		char *canon, *m, *jf, *jg;
		size_t len;

		if (g == NULL)
			fail_msg("generator made an invalid subscriber %u: %s: %s", i, in, e.msg);
		canon = subscriber_to_json(g);
		subscriber_free(g);
		len = strlen(canon);
		f = sub_parse_canonical(canon, len);
		if (f == NULL)
			fail_msg("canonical form not read: %s", canon);
		jf = subscriber_to_json(f);
		assert_string_equal(jf, canon);
		free(jf);
		subscriber_free(f);
		m = malloc(len + 1);
		assert_non_null(m);
		for (pos = 0; pos < len; pos += (i < 20 ? 1 : 7)) {
			for (k = 0; k <= sizeof(repl) - 1; k++) {
				size_t mlen = len;

				memcpy(m, canon, len + 1);
				if (k < sizeof(repl) - 1) {
					if (m[pos] == repl[k])
						continue;
					m[pos] = repl[k];
				} else {
					mlen = pos;   /* truncated */
				}
				mutants++;
				f = sub_parse_canonical(m, mlen);
				if (f == NULL)
					continue;
				fast++;
				g = subscriber_parse(m, mlen, &e);
				if (g == NULL)
					fail_msg("canonical reader took what the parser refuses "
					    "(%s): %.*s", e.msg, (int)mlen, m);
				jf = subscriber_to_json(f);
				jg = subscriber_to_json(g);
				if (strcmp(jf, jg) != 0)
					fail_msg("read differently: %s\nvs %s", jf, jg);
				free(jf);
				free(jg);
				subscriber_free(f);
				subscriber_free(g);
			}
		}
		free(m);
		free(canon);
	}
	/* Some changes keep the input valid and canonical (a digit for a digit). */
	assert_true(fast > 0);
	assert_true(mutants > fast);
}

static void canonical_form_over_the_limit_is_too_large(void **state)
{
	char *json = malloc(MODEL_SUB_JSON_MAX + 1);
	size_t n = 0;
	int i;
	struct err e;

	(void)state;
	assert_non_null(json);
	n += (size_t)snprintf(json + n, MODEL_SUB_JSON_MAX - n, "{\"id\":\"a\",\"channels\":"
	    "[\"dm\"],\"dm\":{\"x\":\"1\"},\"timezone\":\"UTC\",\"interests\":{");
	n += (size_t)snprintf(json + n, MODEL_SUB_JSON_MAX - n, "\"categories\":[");
	for (i = 0; i < 62; i++)
		n += (size_t)snprintf(json + n, MODEL_SUB_JSON_MAX - n, "%s\"%s\"",
		    i ? "," : "", rep('c', 128));
	n += (size_t)snprintf(json + n, MODEL_SUB_JSON_MAX - n, "],\"brands\":[");
	for (i = 0; i < 62; i++)
		n += (size_t)snprintf(json + n, MODEL_SUB_JSON_MAX - n, "%s\"%s\"",
		    i ? "," : "", rep('b', 128));
	n += (size_t)snprintf(json + n, MODEL_SUB_JSON_MAX - n, "]}}");
	assert_true(n <= MODEL_SUB_JSON_MAX);
	check_refused(subscriber_parse(json, n, &e), &e, "too_large", "");
	/* The store's own reader validates the same fields but does not re-serialise:
	 * what it reads is already the canonical form. */
	{
		struct subscriber *s = subscriber_parse_stored(json, n, &e);

		assert_non_null(s);
		assert_int_equal(s->interests.categories.n, 62);
		assert_ptr_equal(s->interests.categories.v[0], s->interests.categories.v[61]);
		subscriber_free(s);
	}
	free(json);
}

static void channel_names_follow_the_enum(void **state)
{
	(void)state;
	assert_string_equal(channel_name(CH_SMS), "sms");
	assert_string_equal(channel_name(CH_DM), "dm");
	assert_null(channel_name(CH_COUNT));
	assert_null(channel_name((enum channel)-1));
	assert_int_equal(channel_from_name("sms"), CH_SMS);
	assert_int_equal(channel_from_name("dm"), CH_DM);
	assert_int_equal(channel_from_name("DM"), -1);
	assert_int_equal(channel_from_name("fax"), -1);
	assert_int_equal(channel_from_name(NULL), -1);
}

static void every_truncation_of_a_valid_subscriber_is_refused(void **state)
{
	size_t len = strlen(full_sub), n;
	struct err e;
	struct subscriber *s;

	(void)state;
	for (n = 0; n < len; n++) {
		char *p = malloc(n + 1);

		assert_non_null(p);
		memcpy(p, full_sub, n);
		s = subscriber_parse(p, n, &e);
		free(p);
		if (s != NULL) {
			subscriber_free(s);
			fail_msg("accepted a prefix of %zu bytes", n);
		}
		assert_true(e.code[0] != '\0');
	}
}

static void random_bytes_never_crash(void **state)
{
	unsigned seed = 1001;
	char buf[1024];
	struct err e;
	struct subscriber *s;
	int round;
	size_t n, i;

	(void)state;
	for (round = 0; round < 20000; round++) {
		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % 512;
		for (i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (char)(seed >> 16);
		}
		if (round % 2 == 1) {
			n = strlen(full_sub);
			memcpy(buf, full_sub, n);
			seed = seed * 1103515245u + 12345u;
			buf[(seed >> 16) % n] = (char)(seed >> 8);
		}
		s = subscriber_parse(buf, n, &e);
		if (s == NULL)
			assert_true(e.code[0] != '\0');
		subscriber_free(s);
	}
}

static void deep_nesting_is_refused_without_crashing(void **state)
{
	char *json = malloc(MODEL_SUB_JSON_MAX);
	size_t n = 0, depth = 5000, i;
	struct err e;
	struct subscriber *s;

	(void)state;
	assert_non_null(json);
	n += (size_t)snprintf(json, MODEL_SUB_JSON_MAX, "{\"id\":\"a\",\"interests\":");
	for (i = 0; i < depth; i++)
		json[n++] = '[';
	for (i = 0; i < depth; i++)
		json[n++] = ']';
	json[n++] = '}';
	s = subscriber_parse(json, n, &e);
	assert_null(s);
	assert_string_equal(e.code, "not_json");
	/* Nested just under cJSON's limit parses, and is then a bad type. */
	n = (size_t)snprintf(json, MODEL_SUB_JSON_MAX, "{\"id\":\"a\",\"channels\":[\"dm\"],"
	    "\"dm\":{\"x\":\"1\"},\"timezone\":\"UTC\",\"tags\":");
	for (i = 0; i < 900; i++)
		json[n++] = '[';
	for (i = 0; i < 900; i++)
		json[n++] = ']';
	json[n++] = '}';
	check_refused(subscriber_parse(json, n, &e), &e, "bad_type", "tags");
	free(json);
}

static void huge_arrays_are_refused_without_crashing(void **state)
{
	char *json = malloc(MODEL_SUB_JSON_MAX);
	size_t n;
	struct err e;

	(void)state;
	assert_non_null(json);
	n = (size_t)snprintf(json, MODEL_SUB_JSON_MAX, "{\"id\":\"a\",\"channels\":[\"dm\"],"
	    "\"dm\":{\"x\":\"1\"},\"timezone\":\"UTC\",\"tags\":[");
	while (n + 8 < MODEL_SUB_JSON_MAX) {
		memcpy(json + n, "\"t\",", 4);
		n += 4;
	}
	memcpy(json + n, "\"t\"]}", 5);
	n += 5;
	check_refused(subscriber_parse(json, n, &e), &e, "too_long", "tags");
	n = (size_t)snprintf(json, MODEL_SUB_JSON_MAX, "{\"id\":\"a\",\"channels\":[");
	while (n + 16 < MODEL_SUB_JSON_MAX) {
		memcpy(json + n, "\"sms\",", 6);
		n += 6;
	}
	memcpy(json + n, "\"sms\"]}", 7);
	n += 7;
	check_refused(subscriber_parse(json, n, &e), &e, "bad_value", "channels");
	free(json);
}

static void free_of_null_does_nothing(void **state)
{
	(void)state;
	subscriber_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_subscriber_is_parsed_with_every_field),
		cmocka_unit_test(minimal_dm_only_subscriber_gets_defaults),
		cmocka_unit_test(missing_required_fields_are_named),
		cmocka_unit_test(id_follows_the_deal_id_rules),
		cmocka_unit_test(channels_must_be_known_distinct_and_non_empty),
		cmocka_unit_test(sms_channel_requires_a_phone),
		cmocka_unit_test(dm_channel_requires_an_x_id),
		cmocka_unit_test(dm_x_is_1_to_19_digits),
		cmocka_unit_test(phone_must_be_e164),
		cmocka_unit_test(timezone_must_exist_in_tzdata),
		cmocka_unit_test(timezone_is_known_when_the_zone_cache_holds_it),
		cmocka_unit_test(consent_for_an_unknown_channel_is_refused),
		cmocka_unit_test(consent_is_an_rfc3339_time_per_channel),
		cmocka_unit_test(quiet_hours_need_start_and_end_that_differ),
		cmocka_unit_test(max_per_day_is_a_whole_number_up_to_100),
		cmocka_unit_test(locale_is_a_short_bcp47_tag),
		cmocka_unit_test(region_is_upper_cased_and_2_to_8_characters),
		cmocka_unit_test(tags_are_lower_cased_and_limited),
		cmocka_unit_test(interests_are_checked_with_their_path),
		cmocka_unit_test(engagement_is_between_0_and_1),
		cmocka_unit_test(unknown_fields_are_ignored_and_null_is_absent),
		cmocka_unit_test(document_errors_name_the_subscriber),
		cmocka_unit_test(canonical_json_leaves_out_defaults_in_a_fixed_order),
		cmocka_unit_test(canonical_json_round_trips_exactly),
		cmocka_unit_test(canonical_json_is_what_it_was_before_the_compact_record),
		cmocka_unit_test(parsed_subscribers_share_repeated_strings_in_one_block_each),
		cmocka_unit_test(refused_subscribers_leave_no_interned_strings),
		cmocka_unit_test(canonical_reader_agrees_with_the_full_parser),
		cmocka_unit_test(canonical_form_over_the_limit_is_too_large),
		cmocka_unit_test(channel_names_follow_the_enum),
		cmocka_unit_test(every_truncation_of_a_valid_subscriber_is_refused),
		cmocka_unit_test(random_bytes_never_crash),
		cmocka_unit_test(deep_nesting_is_refused_without_crashing),
		cmocka_unit_test(huge_arrays_are_refused_without_crashing),
		cmocka_unit_test(free_of_null_does_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
