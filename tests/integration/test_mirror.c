/*
 * test_mirror.c: the notifier's subscriber mirror (notifier/substore.c) against a real
 * Redis, seen from outside through POST /v1/deals/simulate, which matches over the
 * mirror and reports its size.
 *
 * A change stream trimmed past the mirror's position while the notifier is stopped
 * (SIGSTOP) must be noticed and followed by a reload: a removed subscriber gone, a
 * changed one changed, later changes still followed. A notifier killed with SIGKILL
 * and started again on a warm store mirrors what changed while it was down.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"

#define TOKEN "mirror-test-token-0123456789"
#define WAIT_MS 15000

/* The notifier's HTTP port in the test running. */
static int http_port;

/* A subscriber in Chicago interested in one category. */
static const char *
sub_json(const char *id, int n, const char *category)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf),
	    "{\"id\":\"%s\",\"phone\":\"+1512555%04d\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
	    "\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"%s\"]}}", id, n, category);
	return buf;
}

static void
start_notifier(struct it_one *f)
{
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	http_port = it_notifier_start_http(&f->nt, f->port, f->gw.port,
	    "it-mirror", "admin_token_env = DP_TEST_ADMIN_TOKEN\n");
	assert_true(http_port > 0);
}

/* What simulate says of a laptop deal: the mirror's size, how many match and the
 * sampled ids (comma-joined). 0, or -1 when it did not answer 200 with those. */
struct view {
	long subscribers, matched;
	char ids[512];
};

static int
simulate(struct view *v)
{
	static struct it_resp resp;
	char hdr[128];
	const char *deal = it_deal("probe", "laptop", 600);
	cJSON *o, *s, *it;
	int rv = -1;

	memset(v, 0, sizeof(*v));
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", TOKEN);
	if (it_http(http_port, "POST", "/v1/deals/simulate", hdr, deal, strlen(deal),
	    &resp) != 200 || (o = cJSON_Parse(resp.body)) == NULL)
		return -1;
	if (cJSON_IsNumber(cJSON_GetObjectItem(o, "subscribers")) &&
	    cJSON_IsNumber(cJSON_GetObjectItem(o, "matched"))) {
		v->subscribers = (long)cJSON_GetObjectItem(o, "subscribers")->valuedouble;
		v->matched = (long)cJSON_GetObjectItem(o, "matched")->valuedouble;
		rv = 0;
	}
	s = cJSON_GetObjectItem(o, "sample");
	cJSON_ArrayForEach(it, s) {
		cJSON *id = cJSON_GetObjectItem(it, "subscriber");
		size_t n = strlen(v->ids);

		if (cJSON_IsString(id))
			snprintf(v->ids + n, sizeof(v->ids) - n, "%s,", id->valuestring);
	}
	cJSON_Delete(o);
	return rv;
}

struct want {
	long subscribers, matched;
	const char *has, *lacks;   /* an id in, not in, the sample ("x," form) */
	struct view last;
};

static int
mirror_is(void *arg)
{
	struct want *w = arg;

	return simulate(&w->last) == 0 && w->last.subscribers == w->subscribers &&
	    w->last.matched == w->matched &&
	    (w->has == NULL || strstr(w->last.ids, w->has) != NULL) &&
	    (w->lacks == NULL || strstr(w->last.ids, w->lacks) == NULL);
}

static void
wait_mirror(long subscribers, long matched, const char *has,
    const char *lacks)
{
	struct want w = { subscribers, matched, has, lacks, { 0, 0, "" } };

	if (!it_wait(mirror_is, &w, WAIT_MS))
		fail_msg("mirror: want subscribers=%ld matched=%ld has=%s lacks=%s, last "
		    "saw subscribers=%ld matched=%ld sample=%s", subscribers, matched,
		    has ? has : "-", lacks ? lacks : "-", w.last.subscribers, w.last.matched,
		    w.last.ids);
}

static void
cmd_ok(redisContext *rc, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(rc, fmt, ap);
	va_end(ap);
	assert_non_null(r);
	if (r->type == REDIS_REPLY_ERROR)
		fail_msg("%s: %s", fmt, r->str);
	freeReplyObject(r);
}

/* Subscriber sub's copy of a key named as in the single-instance layout, in the
 * layout in force (it_key_for); a static buffer of 4, used in turn. */
static const char *
sk(const char *name, const char *sub)
{
	static char buf[4][KEYS_MAX];
	static unsigned turn;

	return it_key_for(name, sub, buf[turn++ % 4], KEYS_MAX);
}

/* Another writer's put of subscriber id (category cat, phone suffix n) with its
 * change entry, in id's shard. */
static void
put_sub(redisContext *rc, const char *id, int n, const char *cat)
{
	cmd_ok(rc, "HSET %s %s %s", sk("subscribers", id), id, sub_json(id, n, cat));
	cmd_ok(rc, "XADD %s * id %s op put", sk("subscribers:changes", id), id);
}

/* Another writer's removal of subscriber id, with its change entry. */
static void
del_sub(redisContext *rc, const char *id)
{
	cmd_ok(rc, "HDEL %s %s", sk("subscribers", id), id);
	cmd_ok(rc, "XADD %s * id %s op del", sk("subscribers:changes", id), id);
}

/* Every shard's change stream trimmed to nothing. */
static void
trim_changes(redisContext *rc)
{
	char key[KEYS_SHARD_MAX];
	uint32_t k;

	for (k = 0; k < keys_shards(); k++) {
		keys_shard_key(k, KEYS_SUB_CHANGES, key, sizeof(key));
		cmd_ok(rc, "XTRIM %s MAXLEN 0", key);
	}
}

/* What another writer does while the notifier is away: s-b removed, s-c moved from
 * tv to laptop, each with its change entry; then the stream trimmed to nothing (past
 * the mirror's position), and s-d added after the trim. */
static void
change_and_trim(redisContext *rc)
{
	put_sub(rc, "s-c", 3, "laptop");
	del_sub(rc, "s-b");
	trim_changes(rc);
	put_sub(rc, "s-d", 4, "laptop");
}

static void
import_three(struct it_one *f)
{
	char jsonl[4096];

	snprintf(jsonl, sizeof(jsonl), "%s\n", sub_json("s-a", 1, "laptop"));
	snprintf(jsonl + strlen(jsonl), sizeof(jsonl) - strlen(jsonl), "%s\n",
	    sub_json("s-b", 2, "laptop"));
	snprintf(jsonl + strlen(jsonl), sizeof(jsonl) - strlen(jsonl), "%s\n",
	    sub_json("s-c", 3, "tv"));
	assert_int_equal(it_import(f->port, jsonl), 0);
}

static void
trimmed_stream_while_stopped_is_a_gap_and_the_mirror_reloads(void **state)
{
	struct it_one *f = *state;

	import_three(f);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	start_notifier(f);
	wait_mirror(3, 2, "s-b,", NULL);
	/* The mirror follows a change in the ordinary way first. */
	put_sub(f->rc, "s-e", 5, "tv");
	wait_mirror(4, 2, NULL, NULL);

	assert_int_equal(kill(f->nt.proc.pid, SIGSTOP), 0);
	change_and_trim(f->rc);
	assert_int_equal(kill(f->nt.proc.pid, SIGCONT), 0);

	/* s-a, s-c (now laptop), s-d (laptop), s-e (tv); s-b gone. Read only the
	 * entries left after the trim, the mirror would still hold s-b. */
	wait_mirror(4, 3, "s-c,", "s-b,");
	assert_true(it_log_line(f->nt.proc.log, "event=subscriber_feed_gap") > 0);
	assert_true(it_log_line(f->nt.proc.log,
	    "event=subscribers_reload reason=gap") > 0);
	{
		char health[4096];

		/* /healthz says so too. */
		assert_int_equal(it_http_get(http_port, "/healthz", health, sizeof(health)),
		    200);
		assert_non_null(strstr(health, "\"reloads\":1,\"last_reload_reason\":\"gap\""));
	}

	/* And it still follows the stream after the reload. */
	del_sub(f->rc, "s-a");
	wait_mirror(3, 2, "s-d,", "s-a,");
}

static void
stream_trimmed_to_nothing_does_not_reload_again_and_again(void **state)
{
	struct it_one *f = *state;
	import_three(f);
	/* Trimmed before the notifier starts: the load covers it, no gap follows. */
	trim_changes(f->rc);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	start_notifier(f);
	wait_mirror(3, 2, NULL, NULL);
	/* Several block intervals (200 ms) of an idle feed. */
	put_sub(f->rc, "s-d", 4, "laptop");
	wait_mirror(4, 3, "s-d,", NULL);
	it_sleep_ms(1000);
	assert_false(it_log_line(f->nt.proc.log, "event=subscriber_feed_gap") > 0);
	assert_false(it_log_line(f->nt.proc.log, "event=subscribers_reload") > 0);
}

/* How many subscribers a draft rule that wants a text in the last 7 days matches
 * over the mirror (POST /v1/deals/simulate with "draft": the only rule), -1 when it
 * did not answer. */
static long
texted_matched(void)
{
	static struct it_resp resp;
	static const char rule[] = "rule recent\n  when subscriber.texts_7d >= 1\n"
	    "  audience interested\n  send sms\n"
	    "  template sms \"{title} {link} Reply STOP to end\"\nend\n";
	char hdr[128], *body;
	cJSON *b = cJSON_CreateObject(), *d, *o;
	long matched = -1;

	assert_non_null(b);
	cJSON_AddItemToObject(b, "deal", cJSON_Parse(it_deal("probe", "laptop", 600)));
	d = cJSON_AddObjectToObject(b, "draft");
	cJSON_AddStringToObject(d, "name", "recent");
	cJSON_AddStringToObject(d, "text", rule);
	assert_non_null(body = cJSON_PrintUnformatted(b));
	cJSON_Delete(b);
	snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n", TOKEN);
	if (it_http(http_port, "POST", "/v1/deals/simulate", hdr, body, strlen(body),
	    &resp) == 200 && (o = cJSON_Parse(resp.body)) != NULL) {
		if (cJSON_IsNumber(cJSON_GetObjectItem(o, "matched")))
			matched = (long)cJSON_GetObjectItem(o, "matched")->valuedouble;
		cJSON_Delete(o);
	}
	free(body);
	return matched;
}

static int
texted_is(void *arg)
{
	return texted_matched() == *(long *)arg;
}

/*
 * A behaviour record removed while the mirror was not following (a subscriber erased
 * and signed up again, another writer's HDEL) must not outlive the reload that the
 * gap causes: the reload drops every record it did not find, as it drops the
 * subscribers it did not find.
 */
static void
behaviour_removed_during_a_gap_is_gone_after_the_reload(void **state)
{
	struct it_one *f = *state;
	long day = (long)(it_now() / 86400), one = 1, none = 0;

	import_three(f);
	/* s-a was texted today (docs/attribution.md, "Behaviour"). */
	cmd_ok(f->rc, "HSET %s s-a %lld|||%ld:1:0:0:0", sk("behaviour", "s-a"),
	    (long long)it_now() - 60, day);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	start_notifier(f);
	wait_mirror(3, 2, NULL, NULL);
	if (!it_wait(texted_is, &one, WAIT_MS))
		fail_msg("the mirror never had s-a's text: matched %ld", texted_matched());

	assert_int_equal(kill(f->nt.proc.pid, SIGSTOP), 0);
	cmd_ok(f->rc, "HDEL %s s-a", sk("behaviour", "s-a"));
	change_and_trim(f->rc);
	assert_int_equal(kill(f->nt.proc.pid, SIGCONT), 0);
	/* s-a, s-c and s-d (laptop now), s-b gone: the reload has run. */
	wait_mirror(3, 3, "s-c,", "s-b,");
	assert_true(it_log_line(f->nt.proc.log, "event=subscribers_reload reason=gap") > 0);
	if (!it_wait(texted_is, &none, WAIT_MS))
		fail_msg("s-a kept a removed behaviour record: matched %ld", texted_matched());
}

static void
killed_notifier_restarts_on_a_warm_store_with_what_changed_meanwhile(void **state)
{
	struct it_one *f = *state;

	import_three(f);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	start_notifier(f);
	wait_mirror(3, 2, "s-b,", NULL);
	it_stop(&f->nt.proc, SIGKILL, 5000);

	change_and_trim(f->rc);
	start_notifier(f);
	wait_mirror(3, 3, "s-c,", "s-b,");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    trimmed_stream_while_stopped_is_a_gap_and_the_mirror_reloads,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    stream_trimmed_to_nothing_does_not_reload_again_and_again,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    killed_notifier_restarts_on_a_warm_store_with_what_changed_meanwhile,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    behaviour_removed_during_a_gap_is_gone_after_the_reload,
		    it_one_setup, it_one_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
