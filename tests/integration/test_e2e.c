/*
 * test_e2e.c: the walking skeleton end to end: real redis-server, real gwsim, the
 * real notifier. Deals go in on the stream; what reaches the gateway, what lands in
 * deals:dead and pushes:log is checked. Faults: bad input, gateway 500s, opt-out
 * answers, SIGKILL mid fan-out, a Redis restart, a bad config.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "itest.h"
#include "itshards.h"
#include "keys.h"

#define WAIT_MS 10000

struct fx {
	redisContext *rc;
	int port;
	struct it_gwsim gw;
	struct it_notifier nt;
	struct it_proc redis;      /* a private redis, for restart tests */
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->port = it_redis_port();
	f->rc = it_redis_connect(f->port);
	it_flush(f->rc);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rv = it_stop_clean(&f->nt.proc);

	it_stop(&f->gw.proc, SIGTERM, 2000);
	it_stop(&f->redis, SIGKILL, 2000);
	redisFree(f->rc);
	free(f);
	return rv;
}

/* A subscriber line: id, phone suffix (+1512555XXXX), category, sms consent. */
static void
sub_line(char *buf, size_t size, const char *id, int phone, const char *category,
    int consent)
{
	snprintf(buf, size,
	    "{\"id\":\"%s\",\"phone\":\"+1512555%04d\",\"channels\":[\"sms\"],"
	    "\"consent\":{%s},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"%s\"]}}\n", id, phone,
	    consent ? "\"sms\":\"2026-01-02T10:00:00Z\"" : "", category);
}

/* n subscribers s-0..s-(n-1) interested in category, all consenting. */
static char *
many_subs(int n, const char *category)
{
	size_t cap = (size_t)n * 256 + 1, len = 0;
	char *s = malloc(cap);
	int i;

	s[0] = '\0';
	for (i = 0; i < n; i++) {
		char id[32];
		snprintf(id, sizeof(id), "s-%d", i);
		sub_line(s + len, cap - len, id, 1000 + i, category, 1);
		len += strlen(s + len);
	}
	return s;
}

static void
start_all(struct fx *f, const char *const *gwflags, const char *extra)
{
	assert_int_equal(it_gwsim_start(&f->gw, gwflags), 0);
	assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-1", extra), 0);
}

struct count_arg {
	struct fx *f;
	int status;
	long long want;
	const char *outcome;
};

static int
gw_has(void *arg)
{
	struct count_arg *c = arg;

	return it_gwsim_count(&c->f->gw, c->status) >= c->want;
}

static int
log_has(void *arg)
{
	struct count_arg *c = arg;

	return it_outcomes(c->f->rc, c->outcome) >= c->want;
}

/* ---- tests ---- */

static void
bad_deals_are_dead_lettered_and_good_ones_behind_them_still_go_out(void **state)
{
	struct fx *f = *state;
	char line[512], big[20000];
	static const char bin[] = "{\"id\":\"b\0in\",\"title\":\"x\"}";
	struct count_arg c = { f, 201, 1, NULL };
	redisReply *r;
	const char *want[] = { "not_json", "missing_field", "bad_type", "expired",
		"too_large", "binary", "missing_field" };
	size_t i;
	int seen[7] = { 0 };

	sub_line(line, sizeof(line), "s-1", 100, "laptop", 1);
	assert_int_equal(it_import(f->port, line), 0);
	start_all(f, NULL, NULL);

	assert_int_equal(it_publish(f->rc, "this is not json"), 0);
	assert_int_equal(it_publish(f->rc, "{\"title\": \"no id\", \"url\": "
	    "\"https://x.example/\", \"expires_at\": 4102444800}"), 0);
	assert_int_equal(it_publish(f->rc, "{\"id\": 5, \"title\": \"t\", \"url\": "
	    "\"https://x.example/\", \"expires_at\": 4102444800}"), 0);
	assert_int_equal(it_publish(f->rc, it_deal("old", "laptop", -60)), 0);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(it_publish(f->rc, big), 0);
	r = redisCommand(f->rc, "XADD deals * deal %b", bin, sizeof(bin) - 1);
	freeReplyObject(r);
	r = redisCommand(f->rc, "XADD deals * something else");
	freeReplyObject(r);
	assert_int_equal(it_publish(f->rc, it_deal("good-1", "laptop", 600)), 0);

	assert_true(it_wait(gw_has, &c, WAIT_MS));
	assert_int_equal(it_int(f->rc, "XLEN %s", keys_global(KEYS_G_DEALS_DEAD)), 7);
	r = redisCommand(f->rc, "XRANGE %s - +", keys_global(KEYS_G_DEALS_DEAD));
	assert_int_equal(r->elements, 7);
	for (i = 0; i < r->elements; i++) {
		redisReply *fl = r->element[i]->element[1];
		const char *reason = NULL, *entry = NULL;
		size_t j;

		for (j = 0; j + 1 < fl->elements; j += 2) {
			if (strcmp(fl->element[j]->str, "reason") == 0)
				reason = fl->element[j + 1]->str;
			if (strcmp(fl->element[j]->str, "entry") == 0)
				entry = fl->element[j + 1]->str;
		}
		assert_non_null(reason);
		assert_non_null(entry);
		/* Dead letters keep the publish order. */
		assert_string_equal(reason, want[i]);
		seen[i] = 1;
	}
	freeReplyObject(r);
	for (i = 0; i < 7; i++)
		assert_true(seen[i]);
	assert_int_equal(it_deals_pending(f->rc), 0);
}

static void
right_texts_reach_exactly_the_right_numbers(void **state)
{
	struct fx *f = *state;
	char subs[4096];
	size_t n = 0;
	struct count_arg c = { f, 0, 3, "" };
	cJSON *reqs, *o;
	int i;

	sub_line(subs + n, sizeof(subs) - n, "match", 100, "laptop", 1);
	n += strlen(subs + n);
	sub_line(subs + n, sizeof(subs) - n, "no-consent", 101, "laptop", 0);
	n += strlen(subs + n);
	sub_line(subs + n, sizeof(subs) - n, "other-interest", 102, "monitor", 1);
	n += strlen(subs + n);
	snprintf(subs + n, sizeof(subs) - n,
	    "{\"id\":\"too-dear\",\"phone\":\"+15125550103\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/New_York\","
	    "\"interests\":{\"categories\":[\"laptop\"],\"max_price\":500}}\n"
	    "{\"id\":\"brand-fan\",\"phone\":\"+15125550104\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"Europe/Berlin\","
	    "\"interests\":{\"brands\":[\"dell\"]}}\n"
	    "{\"id\":\"dm-only\",\"dm\":{\"x\":\"123456789\"},\"channels\":[\"dm\"],"
	    "\"consent\":{\"dm\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n");
	assert_int_equal(it_import(f->port, subs), 0);
	start_all(f, NULL, NULL);
	assert_int_equal(it_publish(f->rc, it_deal("lap-1", "laptop", 600)), 0);

	/* match and brand-fan sent; dm-only has no dm gateway configured: failed. */
	assert_true(it_wait(log_has, &c, WAIT_MS));
	it_sleep_ms(300);
	assert_int_equal(it_outcomes(f->rc, "sent"), 2);
	assert_int_equal(it_outcomes(f->rc, "failed"), 1);
	assert_int_equal(it_outcomes(f->rc, ""), 3);
	reqs = it_gwsim_requests(&f->gw);
	assert_int_equal(cJSON_GetArraySize(reqs), 2);
	assert_int_equal(it_gwsim_accepted_to(reqs, "+15125550100"), 1);
	assert_int_equal(it_gwsim_accepted_to(reqs, "+15125550104"), 1);
	i = 0;
	cJSON_ArrayForEach(o, reqs) {
		const char *body = cJSON_GetObjectItem(o, "body")->valuestring;
		assert_non_null(strstr(body, "Deal lap-1"));
		assert_non_null(strstr(body, "SAVE20"));
		assert_non_null(strstr(body, "https://shop.example/d/lap-1"));
		assert_non_null(strstr(body, "STOP"));
		assert_string_equal(cJSON_GetObjectItem(o, "from")->valuestring, IT_FROM);
		i++;
	}
	assert_int_equal(i, 2);
	cJSON_Delete(reqs);
}

/* A report's "sent" as an integer reply (0 when absent), for it_shards_sum. */
#define SENT_OF "EVAL return(tonumber(redis.call('HGET',KEYS[1],'sent')or'0')) 1 %s"

/*
 * One deal, two rules, one job: the pushes of both are recorded in the same
 * record.lua calls, which pass each group's keys once (deliver_record.c), and each
 * rule's report counts its own pushes and no other's.
 */
static void
each_rule_report_counts_its_own_pushes(void **state)
{
	struct fx *f = *state;
	struct count_arg c = { f, 0, 8, "sent" };
	char dir[512], path[600], extra[700], *subs;
	size_t len;
	FILE *fp;
	int i;

	it_path(dir, sizeof(dir), "rules-two", "");
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/two.rules", dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs("rule vip\n  when deal.category = \"laptop\" and \"vip\" in subscriber.tags\n"
	    "  audience all\n  send sms\n  priority 10\n"
	    "  template sms \"VIP {title} Reply STOP to end\"\nend\n"
	    "rule rest\n  when deal.category = \"laptop\"\n  audience all\n  send sms\n"
	    "  template sms \"{title} Reply STOP to end\"\nend\n", fp);
	fclose(fp);
	/* s-0..s-7, every other one a vip, interleaved so the job holds both rules */
	subs = many_subs(8, "laptop");
	for (i = 0; i < 8; i += 2) {
		char from[32];
		char *p;

		snprintf(from, sizeof(from), "\"id\":\"s-%d\",", i);
		assert_non_null(p = strstr(subs, from));
		len = strlen(subs) + 32;
		assert_non_null(subs = realloc(subs, len));
		p = strstr(subs, from);
		memmove(p + strlen(from) + 15, p + strlen(from), strlen(p + strlen(from)) + 1);
		memcpy(p + strlen(from), "\"tags\":[\"vip\"],", 15);
	}
	assert_int_equal(it_import(f->port, subs), 0);
	free(subs);
	snprintf(extra, sizeof(extra), "[rules]\ndir = %s\n", dir);
	start_all(f, NULL, extra);
	assert_int_equal(it_publish(f->rc, it_deal("two-1", "laptop", 600)), 0);
	assert_true(it_wait(log_has, &c, WAIT_MS));
	it_sleep_ms(300);
	assert_int_equal(it_outcomes(f->rc, "sent"), 8);
	assert_int_equal(it_shards_sum(f->rc, SENT_OF, KEYS_REPORT_RULE, "vip"), 4);
	assert_int_equal(it_shards_sum(f->rc, SENT_OF, KEYS_REPORT_RULE, "rest"), 4);
	assert_int_equal(it_shards_sum(f->rc, SENT_OF, KEYS_REPORT_DEAL, "two-1"), 8);
}

static void
same_deal_id_twice_is_pushed_once(void **state)
{
	struct fx *f = *state;
	char line[512];
	struct count_arg c = { f, 201, 1, NULL };

	sub_line(line, sizeof(line), "s-1", 100, "laptop", 1);
	assert_int_equal(it_import(f->port, line), 0);
	start_all(f, NULL, NULL);
	assert_int_equal(it_publish(f->rc, it_deal("twice", "laptop", 600)), 0);
	assert_int_equal(it_publish(f->rc, it_deal("twice", "laptop", 600)), 0);
	assert_true(it_wait(gw_has, &c, WAIT_MS));
	it_sleep_ms(500);
	assert_int_equal(it_deals_pending(f->rc), 0);
	assert_int_equal(it_gwsim_count(&f->gw, 0), 1);
	/* Planned once: one job (acked jobs leave "pushes", so the deal hash counts). */
	{
		assert_int_equal((long long)it_shards_hget_sum(f->rc, KEYS_DEAL, "twice",
		    "jobs"), 1);
	}
}

static void
gateway_500s_are_retried_and_delivered(void **state)
{
	struct fx *f = *state;
	char *subs = many_subs(20, "laptop");
	const char *flags[] = { "--fail-rate", "0.5", "--seed", "7", NULL };
	struct count_arg c = { f, 0, 20, "sent" };
	cJSON *reqs;
	int i;

	assert_int_equal(it_import(f->port, subs), 0);
	free(subs);
	/* Retries, not the breaker, are under test: with half the answers 500s, five in
	 * a row would open it for seconds (test_failover covers the breaker). */
	start_all(f, flags, "[deliver]\nbreaker_failures = 1000\nbreaker_open_ms = 100\n");
	assert_int_equal(it_publish(f->rc, it_deal("flaky", "laptop", 600)), 0);
	assert_true(it_wait(log_has, &c, WAIT_MS));
	reqs = it_gwsim_requests(&f->gw);
	for (i = 0; i < 20; i++) {
		char to[32];
		snprintf(to, sizeof(to), "+1512555%04d", 1000 + i);
		assert_int_equal(it_gwsim_accepted_to(reqs, to), 1);
	}
	cJSON_Delete(reqs);
	assert_true(it_gwsim_count(&f->gw, 500) > 0);
	assert_int_equal(it_gwsim_count(&f->gw, 201), 20);
	assert_int_equal(it_outcomes(f->rc, ""), 20);
}

/* A push retried after a 5xx is the same push: it must not count twice against
 * the subscriber's daily cap (and be refused by it), nor be admitted twice in the
 * reports. */
static void
retried_push_counts_once_against_the_daily_cap(void **state)
{
	struct fx *f = *state;
	const char *flags[] = { "--fail-rate", "0.5", "--seed", "11", NULL };
	struct count_arg c = { f, 0, 10, "sent" };
	char subs[4096] = "", line[512];
	size_t len = 0;
	int i;

	for (i = 0; i < 10; i++) {
		snprintf(line, sizeof(line), "{\"id\":\"c-%d\",\"phone\":\"+1512555%04d\","
		    "\"channels\":[\"sms\"],\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
		    "\"timezone\":\"America/Chicago\",\"max_per_day\":1,"
		    "\"interests\":{\"categories\":[\"laptop\"]}}\n", i, 1200 + i);
		snprintf(subs + len, sizeof(subs) - len, "%s", line);
		len += strlen(line);
	}
	assert_int_equal(it_import(f->port, subs), 0);
	start_all(f, flags, "[deliver]\nbreaker_failures = 1000\nbreaker_open_ms = 100\n");
	assert_int_equal(it_publish(f->rc, it_deal("capped", "laptop", 600)), 0);
	assert_true(it_wait(log_has, &c, WAIT_MS));
	assert_true(it_gwsim_count(&f->gw, 500) > 0);
	assert_int_equal(it_gwsim_count(&f->gw, 201), 10);
	assert_int_equal(it_outcomes(f->rc, "daily_cap"), 0);
	assert_true(it_shards_hget_sum(f->rc, KEYS_REPORT_DEAL, "capped", "admitted") == 10);
	/* The cap is spent, once: the next deal today is refused for each of them. */
	assert_int_equal(it_publish(f->rc, it_deal("capped2", "laptop", 600)), 0);
	c.outcome = "daily_cap";
	assert_true(it_wait(log_has, &c, WAIT_MS));
}

/* 1 when sub's SMS consent is stored (in its shard's consent:sms). */
static long long
consent_sms(redisContext *rc, const char *sub)
{
	char key[KEYS_SHARD_MAX];

	return it_int(rc, "HEXISTS %s %s", it_key_for("consent:sms", sub, key,
	    sizeof(key)), sub);
}

static int
consent_nulled(void *arg)
{
	struct fx *f = arg;
	char key[KEYS_SHARD_MAX];
	redisReply *r = redisCommand(f->rc, "HGET %s s-1",
	    it_key_for("subscribers", "s-1", key, sizeof(key)));
	int yes = r != NULL && r->type == REDIS_REPLY_STRING &&
	    strstr(r->str, "\"consent\":{\"sms\":null") != NULL;

	freeReplyObject(r);
	return yes;
}

static int
after_stop_planned(void *arg)
{
	struct fx *f = arg;

	return it_deal_copies(f->rc, "after-stop", "planned") == (int)keys_shards();
}

static void
opt_out_answer_revokes_consent_and_is_not_retried(void **state)
{
	struct fx *f = *state;
	char line[512];
	const char *flags[] = { "--answer", "+15125550100=21610", NULL };
	struct count_arg c = { f, 0, 1, "opted_out" };

	sub_line(line, sizeof(line), "s-1", 100, "laptop", 1);
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(consent_sms(f->rc, "s-1"), 1);
	start_all(f, flags, NULL);
	assert_int_equal(it_publish(f->rc, it_deal("stop-me", "laptop", 600)), 0);
	assert_true(it_wait(log_has, &c, WAIT_MS));
	assert_int_equal(consent_sms(f->rc, "s-1"), 0);
	it_sleep_ms(300);
	assert_int_equal(it_gwsim_count(&f->gw, 0), 1);
	/* As after a STOP: the stored subscriber says no consent, and the record says
	 * who and when. */
	assert_int_equal(it_wait(consent_nulled, f, WAIT_MS), 1);
	{
		char v[64];

		assert_string_equal(it_consent_last(f->rc, "s-1", "sms", "how", v, sizeof(v)),
		    "gateway:twilio");
	}
	/* The next deal is not even tried: not planned for s-1, or refused at admit. */
	assert_int_equal(it_publish(f->rc, it_deal("after-stop", "laptop", 600)), 0);
	assert_int_equal(it_wait(after_stop_planned, f, WAIT_MS), 1);
	it_sleep_ms(500);
	assert_int_equal(it_gwsim_count(&f->gw, 0), 1);
	assert_int_equal(consent_sms(f->rc, "s-1"), 0);
}

static void
sigkill_mid_fanout_sends_nothing_twice_and_loses_nothing(void **state)
{
	struct fx *f = *state;
	const int n = 300;
	char *subs = many_subs(n, "laptop");
	const char *flags[] = { "--latency-ms", "15", NULL };
	const char *extra = "[deliver]\nmax_in_flight = 8\n[ingest]\njob_size = 20\n";
	struct count_arg c = { f, 0, 60, NULL };
	struct count_arg all = { f, 0, n, "" };
	cJSON *reqs;
	long long sent, unknown;
	int i, distinct = 0, kills;

	assert_int_equal(it_import(f->port, subs), 0);
	free(subs);
	start_all(f, flags, extra);
	assert_int_equal(it_publish(f->rc, it_deal("kill-1", "laptop", 600)), 0);
	for (kills = 0; kills < 3; kills++) {
		c.want = 60 * (kills + 1);
		assert_true(it_wait(gw_has, &c, WAIT_MS));
		it_stop(&f->nt.proc, SIGKILL, 2000);
		assert_int_equal(it_notifier_start(&f->nt, f->port, f->gw.port, "it-1",
		    extra), 0);
	}
	assert_true(it_wait(log_has, &all, 30000));
	it_sleep_ms(300);

	reqs = it_gwsim_requests(&f->gw);
	for (i = 0; i < n; i++) {
		char to[32];
		int a;
		snprintf(to, sizeof(to), "+1512555%04d", 1000 + i);
		a = it_gwsim_accepted_to(reqs, to);
		assert_true(a <= 1);     /* never a duplicate text */
		distinct += a;
	}
	cJSON_Delete(reqs);
	sent = it_outcomes(f->rc, "sent");
	unknown = it_outcomes(f->rc, "unknown");
	/* Every recipient has exactly one final outcome. */
	assert_int_equal(it_outcomes(f->rc, ""), n);
	assert_int_equal(sent + unknown, n);
	/* "sent" ones certainly arrived; "unknown" ones may or may not have. */
	assert_true(sent <= distinct && distinct <= sent + unknown);
	assert_int_equal(it_deals_pending(f->rc), 0);
}

static void
subscriber_added_while_running_receives_the_next_deal(void **state)
{
	struct fx *f = *state;
	char line[512];
	struct count_arg c = { f, 201, 2, NULL };
	cJSON *reqs;

	sub_line(line, sizeof(line), "early", 100, "laptop", 1);
	assert_int_equal(it_import(f->port, line), 0);
	start_all(f, NULL, NULL);
	it_sleep_ms(300);
	sub_line(line, sizeof(line), "late", 101, "laptop", 1);
	assert_int_equal(it_import(f->port, line), 0);
	it_sleep_ms(1000);
	assert_int_equal(it_publish(f->rc, it_deal("for-both", "laptop", 600)), 0);
	assert_true(it_wait(gw_has, &c, WAIT_MS));
	reqs = it_gwsim_requests(&f->gw);
	assert_int_equal(it_gwsim_accepted_to(reqs, "+15125550101"), 1);
	cJSON_Delete(reqs);
}

static void
redis_restart_mid_run_keeps_delivering(void **state)
{
	struct fx *f = *state;
	char dir[512], line[512];
	struct count_arg c = { f, 201, 1, NULL };
	redisContext *rc;
	int port;

	it_path(dir, sizeof(dir), "redis-restart", "");
	port = it_redis_start(&f->redis, dir, 0, 1);
	assert_true(port > 0);
	rc = it_redis_connect(port);
	sub_line(line, sizeof(line), "s-1", 100, "laptop", 1);
	assert_int_equal(it_import(port, line), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	assert_int_equal(it_notifier_start(&f->nt, port, f->gw.port, "it-r", NULL), 0);
	assert_int_equal(it_publish(rc, it_deal("before", "laptop", 600)), 0);
	assert_true(it_wait(gw_has, &c, WAIT_MS));
	redisFree(rc);

	it_stop(&f->redis, SIGKILL, 2000);
	it_sleep_ms(300);
	assert_int_equal(it_redis_start(&f->redis, dir, port, 1), port);
	rc = it_redis_connect(port);
	/* The subscriber survived in the AOF; a deal after the restart goes out. */
	assert_int_equal(it_shards_sum_key(rc, "HLEN %s", KEYS_SUBSCRIBERS), 1);
	assert_int_equal(it_publish(rc, it_deal("after", "laptop", 600)), 0);
	c.want = 2;
	assert_true(it_wait(gw_has, &c, 15000));
	redisFree(rc);
	/* Still alive and still stops cleanly. */
	assert_int_equal(it_stop(&f->nt.proc, SIGTERM, 5000), 0);
}

static void
bad_config_reports_every_bad_key(void **state)
{
	char bin[512], conf[512], out[8192];
	const char *argv[] = { bin, "--check-config", "-c", conf, NULL };
	FILE *fp;

	(void)state;
	snprintf(bin, sizeof(bin), "%s/notifier", it_build());
	it_path(conf, sizeof(conf), "bad", ".conf");
	fp = fopen(conf, "w");
	assert_non_null(fp);
	fputs("[redis]\nport = 99999\nprot = 6379\n[deliver]\nretry_base_ms = fast\n"
	    "[gateway sms1]\nchannel = fax\nsecret = hunter2\n[bogus]\n", fp);
	fclose(fp);
	assert_int_equal(it_run(argv, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "redis.port"));
	assert_non_null(strstr(out, "redis.prot: unknown key"));
	assert_non_null(strstr(out, "deliver.retry_base_ms"));
	assert_non_null(strstr(out, "gateway.sms1.channel"));
	assert_non_null(strstr(out, "gateway.sms1.secret"));
	assert_non_null(strstr(out, "gateway.sms1.kind: missing"));
	assert_non_null(strstr(out, "unknown section [bogus]"));
	assert_null(strstr(out, "hunter2")); /* never echo a secret */

	fp = fopen(conf, "w");
	fputs("[redis]\nport = 6380\n", fp);
	fclose(fp);
	assert_int_equal(it_run(argv, out, sizeof(out)), 0);

	/* The documented example is valid once its secrets are in the environment. */
	assert_non_null(getenv("DP_ROOT"));
	snprintf(conf, sizeof(conf), "%s/deploy/notifier.conf.example", getenv("DP_ROOT"));
	assert_int_equal(it_run(argv, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "TWILIO_AUTH_TOKEN is not set"));
	setenv("TWILIO_AUTH_TOKEN", "t", 1);
	setenv("X_CLIENT_SECRET", "x", 1);
	setenv("X_REFRESH_TOKEN", "x", 1);
	assert_int_equal(it_run(argv, out, sizeof(out)), 0);
}

static void
sigterm_stops_cleanly_within_five_seconds(void **state)
{
	struct fx *f = *state;
	int status;

	start_all(f, NULL, NULL);
	it_sleep_ms(300);
	status = it_stop(&f->nt.proc, SIGTERM, 5000);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    bad_deals_are_dead_lettered_and_good_ones_behind_them_still_go_out, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(right_texts_reach_exactly_the_right_numbers,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(each_rule_report_counts_its_own_pushes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(same_deal_id_twice_is_pushed_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(gateway_500s_are_retried_and_delivered, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(retried_push_counts_once_against_the_daily_cap,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    opt_out_answer_revokes_consent_and_is_not_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    sigkill_mid_fanout_sends_nothing_twice_and_loses_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    subscriber_added_while_running_receives_the_next_deal, setup, teardown),
		cmocka_unit_test_setup_teardown(redis_restart_mid_run_keeps_delivering, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(bad_config_reports_every_bad_key, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(sigterm_stops_cleanly_within_five_seconds,
		    setup, teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("e2e", tests, NULL, NULL);
}
