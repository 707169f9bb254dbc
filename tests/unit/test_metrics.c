/*
 * test_metrics.c: the metrics registry and its Prometheus text (notifier/metrics.c,
 * stage: all).
 *
 * Renders into an evbuffer and compares whole texts or single lines; rendered texts are
 * also run through `promtool check metrics`. Without promtool (Debian package
 * prometheus) the other tests say so and go on, and rendered_text_passes_promtool is
 * skipped. The registry is freed in the teardown, also when a test fails.
 */
#include <sys/wait.h>
#include <unistd.h>

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>

#include "metrics.h"

struct fx {
	struct metrics *m;
	struct evbuffer *out;
	char *text;             /* the last render, NUL-terminated */
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct err e;

	if (f == NULL)
		return -1;
	if ((f->m = metrics_new(0, &e)) == NULL || (f->out = evbuffer_new()) == NULL) {
		metrics_free(f->m);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	metrics_free(f->m);
	evbuffer_free(f->out);
	free(f->text);
	free(f);
	return 0;
}

/* Renders f->m into f->text. */
static const char *render(struct fx *f)
{
	size_t len;

	evbuffer_drain(f->out, evbuffer_get_length(f->out));
	assert_int_equal(metrics_render(f->m, f->out), 0);
	len = evbuffer_get_length(f->out);
	free(f->text);
	f->text = malloc(len + 1);
	assert_non_null(f->text);
	assert_int_equal(evbuffer_copyout(f->out, f->text, len), (ev_ssize_t)len);
	f->text[len] = '\0';
	return f->text;
}

/* Asserts that text holds line as one whole line. */
static void assert_has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p;

	for (p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	fail_msg("line not found: %s\n--- in ---\n%s", line, text);
}

/* 1 when an executable promtool is on PATH. */
static int have_promtool(void)
{
	const char *path = getenv("PATH");
	char dir[4096], file[4200];
	const char *p, *end;

	for (p = path ? path : ""; *p != '\0'; p = *end ? end + 1 : end) {
		end = strchr(p, ':');
		if (end == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) >= sizeof(dir))
			continue;
		memcpy(dir, p, (size_t)(end - p));
		dir[end - p] = '\0';
		snprintf(file, sizeof(file), "%s/promtool", dir[0] ? dir : ".");
		if (access(file, X_OK) == 0)
			return 1;
	}
	return 0;
}

/* Runs `promtool check metrics < file` on text; fails the test with promtool's output
 * unless it exits 0. Without promtool: says so and returns -1 (the test goes on). */
static int promtool_check(const char *text)
{
	char in[] = "/tmp/dp-metrics-XXXXXX", out[64], cmd[256], msg[4096] = "";
	FILE *fp;
	size_t n;
	int fd, rc;

	if (!have_promtool()) {
		print_message("promtool not installed (Debian package prometheus): "
		    "not checking with promtool\n");
		return -1;
	}
	fd = mkstemp(in);
	assert_true(fd >= 0);
	n = strlen(text);
	assert_int_equal(write(fd, text, n), (ssize_t)n);
	close(fd);
	snprintf(out, sizeof(out), "%s.out", in);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s > %s 2>&1", in, out);
	rc = system(cmd);
	if ((fp = fopen(out, "r")) != NULL) {
		n = fread(msg, 1, sizeof(msg) - 1, fp);
		msg[n] = '\0';
		fclose(fp);
	}
	unlink(in);
	unlink(out);
	if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
		fail_msg("promtool check metrics failed (status %d):\n%s\n--- text ---\n%s",
		    rc, msg, text);
	return 0;
}

static void populate(struct metrics *m)
{
	assert_int_equal(metrics_inc(m, METRIC_DEALS_INGESTED, NULL, 3), 0);
	assert_int_equal(metrics_inc(m, METRIC_DEALS_DEAD, METRICS_L("bad_json"), 1), 0);
	assert_int_equal(metrics_inc(m, METRIC_DEALS_DEAD, METRICS_L("bad_json"), 1), 0);
	assert_int_equal(metrics_inc(m, METRIC_PUSHES, METRICS_L("sent", "sms", "twilio"),
	    1), 0);
	assert_int_equal(metrics_inc(m, METRIC_PUSHES, METRICS_L("failed", "dm", "x"), 1),
	    0);
	/* Exactly representable, so the sum prints exactly. */
	assert_int_equal(metrics_observe(m, METRIC_SEND_LATENCY, METRICS_L("twilio"),
	    0.0009765625), 0);
	assert_int_equal(metrics_observe(m, METRIC_SEND_LATENCY, METRICS_L("twilio"),
	    0.25), 0);
	assert_int_equal(metrics_observe(m, METRIC_SEND_LATENCY, METRICS_L("twilio"), 12),
	    0);
	assert_int_equal(metrics_set(m, METRIC_STREAM_LAG, METRICS_L("deals"), 7), 0);
	assert_int_equal(metrics_inc(m, METRIC_RULE_RELOADS, METRICS_L("ok"), 1), 0);
	assert_int_equal(metrics_set(m, METRIC_GATEWAY_BREAKER_STATE, METRICS_L("twilio"),
	    2), 0);
	assert_int_equal(metrics_inc(m, METRIC_GATEWAY_IN_FLIGHT, METRICS_L("twilio"), 3),
	    0);
	assert_int_equal(metrics_inc(m, METRIC_GATEWAY_IN_FLIGHT, METRICS_L("twilio"), -1),
	    0);
}

static const char small_registry_text[] =
"# HELP dealpush_deals_ingested_total Deals read from the deals stream and accepted by the parser.\n"
"# TYPE dealpush_deals_ingested_total counter\n"
"dealpush_deals_ingested_total 3\n"
"# HELP dealpush_deals_dead_total Deal entries dead-lettered to deals:dead, by reason.\n"
"# TYPE dealpush_deals_dead_total counter\n"
"dealpush_deals_dead_total{reason=\"bad_json\"} 2\n"
"# HELP dealpush_pushes_total Pushes with a final outcome, by outcome, channel and gateway.\n"
"# TYPE dealpush_pushes_total counter\n"
"dealpush_pushes_total{outcome=\"sent\",channel=\"sms\",gateway=\"twilio\"} 1\n"
"dealpush_pushes_total{outcome=\"failed\",channel=\"dm\",gateway=\"x\"} 1\n"
"# HELP dealpush_skips_total Recipients not sent to, by reason: at admission, at the claim"
" just before the request (cancelled, expired, no_consent), and deferred for quiet"
" hours.\n"
"# TYPE dealpush_skips_total counter\n"
"# HELP dealpush_send_latency_seconds Time from a gateway request's start to its answer, by gateway.\n"
"# TYPE dealpush_send_latency_seconds histogram\n"
"dealpush_send_latency_seconds_bucket{gateway=\"twilio\",le=\"0.001\"} 1\n"
"dealpush_send_latency_seconds_bucket{gateway=\"twilio\",le=\"0.0025\"} 1\n"
"dealpush_send_latency_seconds_bucket{gateway=\"twilio\",le=\"0.005\"} 1\n"
"dealpush_send_latency_seconds_bucket{gateway=\"twilio\",le=\"0.01\"} 1\n"
"dealpush_send_latency_seconds_bucket{gateway=\"twilio\",le=\"0.025\"} 1\n"
"dealpush_send_latency_seconds_bucket{gateway=\"twilio\",le=\"0.05\"} 1\n"
"dealpush_send_latency_seconds_bucket{gateway=\"twilio\",le=\"0.1\"} 1\n"
"dealpush_send_latency_seconds_bucket{gateway=\"twilio\",le=\"0.25\"} 2\n"
"dealpush_send_latency_seconds_bucket{gateway=\"twilio\",le=\"0.5\"} 2\n"
"dealpush_send_latency_seconds_bucket{gateway=\"twilio\",le=\"1\"} 2\n"
"dealpush_send_latency_seconds_bucket{gateway=\"twilio\",le=\"2.5\"} 2\n"
"dealpush_send_latency_seconds_bucket{gateway=\"twilio\",le=\"5\"} 2\n"
"dealpush_send_latency_seconds_bucket{gateway=\"twilio\",le=\"10\"} 2\n"
"dealpush_send_latency_seconds_bucket{gateway=\"twilio\",le=\"+Inf\"} 3\n"
"dealpush_send_latency_seconds_sum{gateway=\"twilio\"} 12.2509765625\n"
"dealpush_send_latency_seconds_count{gateway=\"twilio\"} 3\n"
"# HELP dealpush_stream_lag Entries waiting on a stream for this consumer group.\n"
"# TYPE dealpush_stream_lag gauge\n"
"dealpush_stream_lag{stream=\"deals\"} 7\n"
"# HELP dealpush_rule_reloads_total Rule folder reloads, by result.\n"
"# TYPE dealpush_rule_reloads_total counter\n"
"dealpush_rule_reloads_total{result=\"ok\"} 1\n"
"# HELP dealpush_gateway_breaker_state Circuit breaker state of a gateway: 0 closed, 1 open, 2 half-open.\n"
"# TYPE dealpush_gateway_breaker_state gauge\n"
"dealpush_gateway_breaker_state{gateway=\"twilio\"} 2\n"
"# HELP dealpush_gateway_in_flight Requests in flight on a gateway.\n"
"# TYPE dealpush_gateway_in_flight gauge\n"
"dealpush_gateway_in_flight{gateway=\"twilio\"} 2\n"
"# HELP dealpush_planning_deals Deals being planned now (ranked, their jobs still being written).\n"
"# TYPE dealpush_planning_deals gauge\n"
"dealpush_planning_deals 0\n"
"# HELP dealpush_planning_stalled_seconds Longest time a deal being planned has gone without a chunk written.\n"
"# TYPE dealpush_planning_stalled_seconds gauge\n"
"dealpush_planning_stalled_seconds 0\n"
"# HELP dealpush_mirror_subscribers Subscribers in this process's mirror.\n"
"# TYPE dealpush_mirror_subscribers gauge\n"
"dealpush_mirror_subscribers 0\n"
"# HELP dealpush_mirror_ready 1 once the mirror has loaded every subscriber, else 0.\n"
"# TYPE dealpush_mirror_ready gauge\n"
"dealpush_mirror_ready 0\n"
"# HELP dealpush_mirror_reloads Full loads of the mirror after the first (a reconnect, a gap in the change stream).\n"
"# TYPE dealpush_mirror_reloads gauge\n"
"dealpush_mirror_reloads 0\n"
"# HELP dealpush_redis_connects Successful connects of a Redis connection since start (1 = never reconnected).\n"
"# TYPE dealpush_redis_connects gauge\n"
"# HELP dealpush_redis_command_timeouts Commands on a Redis connection whose server stayed silent past the deadline.\n"
"# TYPE dealpush_redis_command_timeouts gauge\n"
"# HELP dealpush_xauth_events_total x-dm credentials: refreshed, refresh_failed, store_failed, rejected_401, rejected_403 (the gateway is paused; DM consent is untouched).\n"
"# TYPE dealpush_xauth_events_total counter\n"
"# HELP dealpush_http_refused_total HTTP connections and requests refused (connection caps, deadlines, bad heads, 4xx answers), by reason and client address.\n"
"# TYPE dealpush_http_refused_total counter\n"
"# HELP dealpush_paused 1 while sending is paused (POST /v1/pause, dealpushctl pause), else 0.\n"
"# TYPE dealpush_paused gauge\n"
"dealpush_paused 0\n"
"# HELP dealpush_gateway_rate_limited_total Answers 429 (rate limited) from a gateway, which pause it.\n"
"# TYPE dealpush_gateway_rate_limited_total counter\n";

static void small_registry_renders_the_exact_text(void **state)
{
	struct fx *f = *state;

	populate(f->m);
	assert_string_equal(render(f), small_registry_text);
}

static void fresh_registry_has_every_help_and_type_and_a_zero_counter(void **state)
{
	struct fx *f = *state;
	const char *t = render(f);
	int i;

	for (i = 0; i < METRIC_COUNT; i++) {
		char line[128];

		snprintf(line, sizeof(line), "# TYPE %s ", metrics_name((enum metrics_id)i));
		assert_non_null(strstr(t, line));
	}
	assert_has_line(t, "dealpush_deals_ingested_total 0");
	assert_null(metrics_name(METRIC_COUNT));
	promtool_check(t);
}

static void rendered_text_passes_promtool(void **state)
{
	struct fx *f = *state;
	int i;

	populate(f->m);
	assert_int_equal(metrics_inc(f->m, METRIC_SKIPS,
	    METRICS_L("quote \" back \\ new\nline"), 1), 0);
	assert_int_equal(metrics_set(f->m, METRIC_STREAM_LAG, METRICS_L("pushes"), 1e21),
	    0);
	assert_int_equal(metrics_set(f->m, METRIC_GATEWAY_IN_FLIGHT, METRICS_L("caf\xc3\xa9"),
	    0.1), 0);
	for (i = 0; i < 50; i++) {
		char gw[16];

		snprintf(gw, sizeof(gw), "gw%d", i);
		assert_int_equal(metrics_observe(f->m, METRIC_SEND_LATENCY, METRICS_L(gw),
		    i * 0.3), 0);
	}
	/* The one test that is skipped (not passed) when promtool is missing. */
	if (promtool_check(render(f)) < 0)
		skip();
}

static void label_values_are_escaped(void **state)
{
	struct fx *f = *state;
	double v = 0;

	assert_int_equal(metrics_inc(f->m, METRIC_DEALS_DEAD,
	    METRICS_L("a\\b \"c\"\nd"), 1), 0);
	assert_has_line(render(f),
	    "dealpush_deals_dead_total{reason=\"a\\\\b \\\"c\\\"\\nd\"} 1");
	/* The series is found again under its raw (unescaped) value. */
	assert_int_equal(metrics_value(f->m, METRIC_DEALS_DEAD,
	    METRICS_L("a\\b \"c\"\nd"), &v), 1);
	assert_true(v == 1);
}

static void invalid_utf8_and_long_values_are_cleaned(void **state)
{
	struct fx *f = *state;
	char longv[300], expect[256];
	double v = 0;

	assert_int_equal(metrics_inc(f->m, METRIC_SKIPS, METRICS_L("bad\xff x\xc3"), 1), 0);
	assert_has_line(render(f), "dealpush_skips_total{reason=\"bad? x?\"} 1");
	/* 127 ASCII bytes then a 2-byte character: the character does not fit in 128. */
	memset(longv, 'a', 127);
	memcpy(longv + 127, "\xc3\xa9zzz", 6);
	assert_int_equal(metrics_inc(f->m, METRIC_SKIPS, METRICS_L(longv), 1), 0);
	snprintf(expect, sizeof(expect), "dealpush_skips_total{reason=\"%.127s\"} 1", longv);
	assert_has_line(render(f), expect);
	assert_int_equal(metrics_value(f->m, METRIC_SKIPS, METRICS_L(longv), &v), 1);
	promtool_check(render(f));
}

static void histogram_buckets_are_cumulative_with_inf_sum_and_count(void **state)
{
	struct fx *f = *state;
	const char *t;
	double v = 0;

	/* On a bound counts in that bucket (le is "less or equal"). */
	assert_int_equal(metrics_observe(f->m, METRIC_SEND_LATENCY, METRICS_L("g"), 0.001),
	    0);
	assert_int_equal(metrics_observe(f->m, METRIC_SEND_LATENCY, METRICS_L("g"), 0.5), 0);
	assert_int_equal(metrics_observe(f->m, METRIC_SEND_LATENCY, METRICS_L("g"), 0.5), 0);
	assert_int_equal(metrics_observe(f->m, METRIC_SEND_LATENCY, METRICS_L("g"), 10), 0);
	assert_int_equal(metrics_observe(f->m, METRIC_SEND_LATENCY, METRICS_L("g"), 10.5),
	    0);
	t = render(f);
	assert_has_line(t, "dealpush_send_latency_seconds_bucket{gateway=\"g\",le=\"0.001\"} 1");
	assert_has_line(t, "dealpush_send_latency_seconds_bucket{gateway=\"g\",le=\"0.25\"} 1");
	assert_has_line(t, "dealpush_send_latency_seconds_bucket{gateway=\"g\",le=\"0.5\"} 3");
	assert_has_line(t, "dealpush_send_latency_seconds_bucket{gateway=\"g\",le=\"5\"} 3");
	assert_has_line(t, "dealpush_send_latency_seconds_bucket{gateway=\"g\",le=\"10\"} 4");
	assert_has_line(t, "dealpush_send_latency_seconds_bucket{gateway=\"g\",le=\"+Inf\"} 5");
	assert_has_line(t, "dealpush_send_latency_seconds_sum{gateway=\"g\"} 21.500999999999998");
	assert_has_line(t, "dealpush_send_latency_seconds_count{gateway=\"g\"} 5");
	assert_int_equal(metrics_value(f->m, METRIC_SEND_LATENCY, METRICS_L("g"), &v), 1);
	assert_true(v == 5);
}

static void series_past_the_bound_fold_into_other(void **state)
{
	struct fx *f = *state;
	char gw[32];
	double v = 0;
	int i;

	for (i = 0; i < METRICS_SERIES_MAX; i++) {
		snprintf(gw, sizeof(gw), "gw%d", i);
		assert_int_equal(metrics_inc(f->m, METRIC_PUSHES, METRICS_L("sent", "sms", gw),
		    1), 0);
	}
	assert_int_equal(metrics_series_count(f->m, METRIC_PUSHES), METRICS_SERIES_MAX);
	for (i = 0; i < 5; i++) {
		snprintf(gw, sizeof(gw), "late%d", i);
		assert_int_equal(metrics_inc(f->m, METRIC_PUSHES, METRICS_L("sent", "sms", gw),
		    2), 0);
	}
	/* One more series, whatever the number of late label sets. */
	assert_int_equal(metrics_series_count(f->m, METRIC_PUSHES), METRICS_SERIES_MAX + 1);
	assert_int_equal(metrics_value(f->m, METRIC_PUSHES,
	    METRICS_L(METRICS_OTHER, METRICS_OTHER, METRICS_OTHER), &v), 1);
	assert_true(v == 10);
	assert_int_equal(metrics_value(f->m, METRIC_PUSHES, METRICS_L("sent", "sms", "late0"),
	    &v), 0);
	/* Existing series keep counting on their own. */
	assert_int_equal(metrics_inc(f->m, METRIC_PUSHES, METRICS_L("sent", "sms", "gw7"), 1),
	    0);
	assert_int_equal(metrics_value(f->m, METRIC_PUSHES, METRICS_L("sent", "sms", "gw7"),
	    &v), 1);
	assert_true(v == 2);
	/* Other metrics have bounds of their own. */
	assert_int_equal(metrics_inc(f->m, METRIC_SKIPS, METRICS_L("fresh"), 1), 0);
	assert_int_equal(metrics_series_count(f->m, METRIC_SKIPS), 1);
	assert_has_line(render(f),
	    "dealpush_pushes_total{outcome=\"other\",channel=\"other\",gateway=\"other\"} 10");
}

static void small_bound_is_respected(void **state)
{
	struct fx *f = *state;
	struct metrics *m;
	struct err e;

	(void)f;
	m = metrics_new(2, &e);
	assert_non_null(m);
	assert_int_equal(metrics_set(m, METRIC_STREAM_LAG, METRICS_L("a"), 1), 0);
	assert_int_equal(metrics_set(m, METRIC_STREAM_LAG, METRICS_L("b"), 2), 0);
	assert_int_equal(metrics_set(m, METRIC_STREAM_LAG, METRICS_L("c"), 3), 0);
	assert_int_equal(metrics_set(m, METRIC_STREAM_LAG, METRICS_L("d"), 4), 0);
	assert_int_equal(metrics_series_count(m, METRIC_STREAM_LAG), 3);
	metrics_free(m);
	metrics_free(NULL);
}

static void wrong_labels_types_and_values_are_refused(void **state)
{
	struct fx *f = *state;
	double v = 0;

	/* Label count must match the metric. */
	assert_int_equal(metrics_inc(f->m, METRIC_PUSHES, METRICS_L("sent", "sms"), 1), -1);
	assert_int_equal(metrics_inc(f->m, METRIC_PUSHES,
	    METRICS_L("sent", "sms", "g", "extra"), 1), -1);
	assert_int_equal(metrics_inc(f->m, METRIC_DEALS_DEAD, NULL, 1), -1);
	assert_int_equal(metrics_inc(f->m, METRIC_DEALS_INGESTED, METRICS_L("x"), 1), -1);
	/* Operation must match the type. */
	assert_int_equal(metrics_set(f->m, METRIC_DEALS_DEAD, METRICS_L("r"), 1), -1);
	assert_int_equal(metrics_observe(f->m, METRIC_DEALS_DEAD, METRICS_L("r"), 1), -1);
	assert_int_equal(metrics_inc(f->m, METRIC_SEND_LATENCY, METRICS_L("g"), 1), -1);
	assert_int_equal(metrics_set(f->m, METRIC_SEND_LATENCY, METRICS_L("g"), 1), -1);
	/* Counters only go up; nothing takes NaN or infinity. */
	assert_int_equal(metrics_inc(f->m, METRIC_DEALS_INGESTED, NULL, -1), -1);
	assert_int_equal(metrics_inc(f->m, METRIC_DEALS_INGESTED, NULL, NAN), -1);
	assert_int_equal(metrics_observe(f->m, METRIC_SEND_LATENCY, METRICS_L("g"), INFINITY),
	    -1);
	assert_int_equal(metrics_set(f->m, METRIC_STREAM_LAG, METRICS_L("s"), NAN), -1);
	assert_int_equal(metrics_inc(f->m, METRIC_COUNT, NULL, 1), -1);
	assert_int_equal(metrics_inc(NULL, METRIC_DEALS_INGESTED, NULL, 1), -1);
	/* Nothing was created by the refusals. */
	assert_int_equal(metrics_series_count(f->m, METRIC_PUSHES), 0);
	assert_int_equal(metrics_series_count(f->m, METRIC_DEALS_DEAD), 0);
	assert_int_equal(metrics_series_count(f->m, METRIC_SEND_LATENCY), 0);
	assert_int_equal(metrics_value(f->m, METRIC_DEALS_INGESTED, NULL, &v), 1);
	assert_true(v == 0);
	/* Gauges go both ways. */
	assert_int_equal(metrics_inc(f->m, METRIC_STREAM_LAG, METRICS_L("s"), -4), 0);
	assert_int_equal(metrics_value(f->m, METRIC_STREAM_LAG, METRICS_L("s"), &v), 1);
	assert_true(v == -4);
}

static void values_print_in_their_shortest_exact_form(void **state)
{
	struct fx *f = *state;
	const char *t;

	assert_int_equal(metrics_set(f->m, METRIC_STREAM_LAG, METRICS_L("a"), 0.1), 0);
	assert_int_equal(metrics_set(f->m, METRIC_STREAM_LAG, METRICS_L("b"), 0.1 + 0.2), 0);
	assert_int_equal(metrics_set(f->m, METRIC_STREAM_LAG, METRICS_L("c"), 123456789), 0);
	assert_int_equal(metrics_set(f->m, METRIC_STREAM_LAG, METRICS_L("d"), INFINITY), 0);
	assert_int_equal(metrics_set(f->m, METRIC_STREAM_LAG, METRICS_L("e"), -2.5), 0);
	t = render(f);
	assert_has_line(t, "dealpush_stream_lag{stream=\"a\"} 0.1");
	assert_has_line(t, "dealpush_stream_lag{stream=\"b\"} 0.30000000000000004");
	assert_has_line(t, "dealpush_stream_lag{stream=\"c\"} 123456789");
	assert_has_line(t, "dealpush_stream_lag{stream=\"d\"} +Inf");
	assert_has_line(t, "dealpush_stream_lag{stream=\"e\"} -2.5");
	promtool_check(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(small_registry_renders_the_exact_text, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(fresh_registry_has_every_help_and_type_and_a_zero_counter, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(rendered_text_passes_promtool, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(label_values_are_escaped, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(invalid_utf8_and_long_values_are_cleaned, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(histogram_buckets_are_cumulative_with_inf_sum_and_count, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(series_past_the_bound_fold_into_other, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(small_bound_is_respected, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(wrong_labels_types_and_values_are_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(values_print_in_their_shortest_exact_form, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
