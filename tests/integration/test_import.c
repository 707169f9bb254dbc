/*
 * test_import.c: bulk subscriber import (issue 13 item 5) and the consent record in
 * consent:records (item 3), through the user's entry points on a running notifier:
 * dealpushctl subscribers import straight to Redis and with --api, and
 * POST /v1/bulk/subscribers (docs/admin.md). Bad lines are named by number with the
 * reason, what is stored is what single puts store, every subscriber stored gets its
 * change entry and reaches the notifier's mirror, and the consent record stays
 * complete and bounded.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"

#define TOKEN "import-test-token-0123456789"
#define AUTH "Authorization: Bearer " TOKEN "\r\n"
#define WAIT_MS 10000

static struct it_resp resp;

/* Starts gwsim and a notifier with the admin API; f->port is its redis. */
static int
start(struct it_one *f)
{
	int http;

	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-import",
	    "admin_token_env = DP_TEST_ADMIN_TOKEN\n");
	assert_true(http > 0);
	return http;
}

/* A subscriber line: sms (and dm when dm is set), consent given at time t. */
static const char *
sub_line(const char *id, int n, int dm, const char *t)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "{\"id\":\"%s\",\"phone\":\"+1512555%04d\",%s"
	    "\"channels\":[\"sms\"%s],\"consent\":{\"sms\":\"%s\"%s%s%s},"
	    "\"timezone\":\"America/Chicago\",\"quiet_hours\":{\"start\":\"21:00\","
	    "\"end\":\"08:00\"},\"tags\":[\"VIP\"],\"interests\":{\"categories\":"
	    "[\"laptop\"],\"max_price\":900}}", id, n % 10000,
	    dm ? "\"dm\":{\"x\":\"4242\"}," : "", dm ? ",\"dm\"" : "", t,
	    dm ? ",\"dm\":\"" : "", dm ? t : "", dm ? "\"" : "");
	return buf;
}

/* Writes text into a new file under the run dir; its path into path. */
static void
write_file(char *path, size_t size, const char *text)
{
	FILE *fp;

	it_path(path, size, "import", ".jsonl");
	assert_non_null(fp = fopen(path, "w"));
	fputs(text, fp);
	fclose(fp);
}

/* Runs dealpushctl (straight to redis, or with --api when http > 0) subscribers
 * import path; output into out. Returns its exit status. */
static int
ctl_import(const struct it_one *f, int http, const char *path, char *out, size_t size)
{
	char bin[600], addr[64], url[64];
	const char *redis_argv[] = { bin, "--redis", addr, "subscribers", "import", path,
	    NULL };
	const char *api_argv[] = { bin, "--api", url, "--token", TOKEN, "subscribers",
	    "import", path, NULL };

	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", http);
	return it_run(http > 0 ? api_argv : redis_argv, out, size);
}

/* A string reply, copied into out ("" when none). */
static const char *
str(redisContext *rc, char *out, size_t size, const char *cmd, const char *a,
    const char *b)
{
	redisReply *r = redisCommand(rc, cmd, a, b);

	out[0] = '\0';
	if (r != NULL && r->type == REDIS_REPLY_STRING)
		snprintf(out, size, "%s", r->str);
	freeReplyObject(r);
	return out;
}

struct mirror_wait {
	int http;
	int n;
};

/* 1 when the notifier's mirror holds w->n subscribers (what simulate counts). */
static int
mirror_has(void *arg)
{
	struct mirror_wait *w = arg;
	char want[64];
	const char *deal = it_deal("probe", "laptop", 600);

	snprintf(want, sizeof(want), "\"subscribers\":%d,", w->n);
	return it_http(w->http, "POST", "/v1/deals/simulate", AUTH, deal, strlen(deal),
	    &resp) == 200 && strstr(resp.body, want) != NULL;
}

/*
 * A file of good and bad lines, across several batches: the bad ones are named by
 * line with the reason, the good ones are all stored, byte for byte what a single PUT
 * stores, each with its change entry, and the running notifier's mirror sees them.
 */
static void
import_names_bad_lines_and_stores_what_single_puts_store(void **state)
{
	struct it_one *f = *state;
	static char text[1 << 20], out[1 << 16];
	char path[512], want[600], before[2048], after[2048], v[64];
	struct mirror_wait w;
	size_t n = 0;
	int http = start(f), i;

	n += (size_t)snprintf(text + n, sizeof(text) - n, "# export\n%s\n",
	    sub_line("s-a", 1, 1, "2026-01-02T10:00:00Z"));         /* lines 1, 2 */
	n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"id\":\n");   /* 3 */
	n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\n\n",
	    sub_line("s-b", 2, 0, "2026-01-03T10:00:00Z"));         /* 4, 5 */
	n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"id\":\"s-bad\",\"channels\":"
	    "[\"sms\"],\"phone\":\"+15125550000\"}\n");             /* 6: no timezone */
	for (i = 0; i < 600; i++) {                              /* 7 .. 606 */
		char id[32];

		snprintf(id, sizeof(id), "s-%04d", i);
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\n",
		    sub_line(id, 100 + i, i % 3 == 0, "2026-01-04T10:00:00Z"));
	}
	assert_true(n < sizeof(text) - 1);
	write_file(path, sizeof(path), text);

	assert_int_equal(ctl_import(f, 0, path, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "imported 602 subscribers, 2 bad lines"));
	snprintf(want, sizeof(want), "%s:3: error: subscriber: not valid JSON", path);
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof(want), "%s:6: error: timezone", path);
	assert_non_null(strstr(out, want));
	assert_null(strstr(out, ":1: error"));
	assert_null(strstr(out, ":5: error"));
	assert_int_equal(it_int(f->rc, "HLEN subscribers"), 602);
	assert_int_equal(it_int(f->rc, "HLEN consent:sms"), 602);
	assert_int_equal(it_int(f->rc, "HLEN consent:dm"), 201);
	assert_int_equal(it_int(f->rc, "HEXISTS subscribers s-bad"), 0);
	/* One change entry per subscriber stored, in file order (what the mirror
	 * follows), and the mirror has every one. */
	assert_int_equal(it_int(f->rc, "XLEN subscribers:changes"), 602);
	{
		redisReply *r = redisCommand(f->rc, "XREVRANGE subscribers:changes + - COUNT 1");

		assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1);
		assert_string_equal(r->element[0]->element[1]->element[1]->str, "s-0599");
		assert_string_equal(r->element[0]->element[1]->element[3]->str, "put");
		freeReplyObject(r);
	}
	w.http = http;
	w.n = 602;
	assert_true(it_wait(mirror_has, &w, WAIT_MS));

	/* The record: one granted event per channel, how = import, the consent time. */
	assert_int_equal(it_consent_events(f->rc, "s-a"), 2);
	assert_string_equal(it_consent_last(f->rc, "s-a", "dm", "state", v, sizeof(v)),
	    "granted");
	assert_string_equal(it_consent_last(f->rc, "s-a", "sms", "how", v, sizeof(v)),
	    "import");
	assert_string_equal(it_consent_last(f->rc, "s-a", "sms", "detail", v, sizeof(v)),
	    "1767348000");

	/* A single PUT of the same line stores the same bytes and records nothing new
	 * (the consent is unchanged). */
	str(f->rc, before, sizeof(before), "HGET subscribers %s", "s-a", NULL);
	assert_non_null(strstr(before, "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\""));
	assert_null(strstr(before, "null,\"timezone\""));
	{
		const char *doc = sub_line("s-a", 1, 1, "2026-01-02T10:00:00Z");

		assert_int_equal(it_http(http, "PUT", "/v1/subscribers/s-a", AUTH, doc,
		    strlen(doc), &resp), 200);
	}
	str(f->rc, after, sizeof(after), "HGET subscribers %s", "s-a", NULL);
	assert_string_equal(before, after);
	assert_string_equal(str(f->rc, v, sizeof(v), "HGET consent:sms %s", "s-a", NULL),
	    "1767348000");
	assert_int_equal(it_consent_events(f->rc, "s-a"), 2);
	assert_int_equal(it_int(f->rc, "XLEN subscribers:changes"), 603);
}

/* Sends body to the bulk endpoint with header lines hdr; the answer in resp. */
static int
bulk(int http, const char *hdr, const char *body, size_t len)
{
	return it_http(http, "POST", "/v1/bulk/subscribers", hdr, body, len, &resp);
}

/*
 * POST /v1/bulk/subscribers: bad lines reported by number with the reason, the good
 * ones stored; no token, a wrong token, a body over the cap and too many subscribers
 * store nothing. dealpushctl --api sends a file through it in pieces and names the
 * file's own line numbers.
 */
static void
api_bulk_reports_bad_lines_and_refuses_oversize_and_bad_auth(void **state)
{
	struct it_one *f = *state;
	static char text[1 << 20], out[1 << 16];
	char path[512], want[600];
	size_t n = 0;
	int http = start(f), i;

	n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\n",
	    sub_line("s-1", 1, 0, "2026-01-02T10:00:00Z"));
	n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"id\":\"s-2\"}\n\n# note\n");
	n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\r\n",
	    sub_line("s-3", 3, 1, "2026-01-02T10:00:00Z"));
	n += (size_t)snprintf(text + n, sizeof(text) - n, "not json");

	assert_int_equal(bulk(http, NULL, text, n), 401);
	assert_int_equal(bulk(http, "Authorization: Bearer wrong\r\n", text, n), 401);
	assert_int_equal(it_int(f->rc, "HLEN subscribers"), 0);
	assert_int_equal(it_http(http, "GET", "/v1/bulk/subscribers", AUTH, NULL, 0, &resp),
	    405);

	assert_int_equal(bulk(http, AUTH, text, n), 200);
	assert_non_null(strstr(resp.body, "\"stored\":2"));
	assert_non_null(strstr(resp.body, "\"created\":2"));
	assert_non_null(strstr(resp.body, "\"bad_lines\":2"));
	assert_non_null(strstr(resp.body, "{\"line\":2,\"error\":\"channels: required field is"
	    " missing\",\"field\":\"channels\"}"));
	assert_non_null(strstr(resp.body, "{\"line\":6,\"error\":\"subscriber: not valid"
	    " JSON"));
	assert_int_equal(it_int(f->rc, "HLEN subscribers"), 2);
	assert_int_equal(it_int(f->rc, "HEXISTS consent:dm s-3"), 1);
	assert_int_equal(it_int(f->rc, "XLEN subscribers:changes"), 2);
	{
		char v[64];

		assert_string_equal(it_consent_last(f->rc, "s-3", "dm", "how", v, sizeof(v)),
		    "api");
	}

	/* Over the body cap (64 KiB): 413, nothing stored. */
	for (n = 0, i = 0; n < 70000; i++) {
		char id[32];

		snprintf(id, sizeof(id), "o-%d", i);
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\n",
		    sub_line(id, i, 0, "2026-01-02T10:00:00Z"));
	}
	assert_int_equal(bulk(http, AUTH, text, n), 413);
	/* Over 500 subscribers (small lines within the cap): 400, nothing stored. */
	for (n = 0, i = 0; i < 501; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"id\":\"m-%d\",\"channels\":"
		    "[\"dm\"],\"dm\":{\"x\":\"1\"},\"timezone\":\"UTC\"}\n", i);
	assert_true(n < 65536);
	assert_int_equal(bulk(http, AUTH, text, n), 400);
	assert_non_null(strstr(resp.body, "more than 500 subscribers"));
	assert_int_equal(it_int(f->rc, "HLEN subscribers"), 2);
	assert_int_equal(it_int(f->rc, "XLEN subscribers:changes"), 2);

	/* dealpushctl --api: 700 good lines in several requests, two bad ones; the
	 * file's line numbers, not the request's. */
	for (n = 0, i = 0; i < 702; i++) {
		char id[32];

		snprintf(id, sizeof(id), "c-%d", i);
		if (i == 2)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"id\":\"x\"\n");
		else if (i == 650)
			n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"id\":\"c-650\","
			    "\"channels\":[\"fax\"],\"timezone\":\"UTC\"}\n");
		else
			n += (size_t)snprintf(text + n, sizeof(text) - n, "%s\n",
			    sub_line(id, i, i % 2, "2026-01-02T10:00:00Z"));
	}
	write_file(path, sizeof(path), text);
	assert_int_equal(ctl_import(f, http, path, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "imported 700 subscribers, 2 bad lines"));
	snprintf(want, sizeof(want), "%s:3: error: subscriber: not valid JSON", path);
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof(want), "%s:651: error: channels", path);
	assert_non_null(strstr(out, want));
	assert_int_equal(it_int(f->rc, "HLEN subscribers"), 702);
	assert_int_equal(it_int(f->rc, "XLEN subscribers:changes"), 702);

	/* A bad token stops the CLI with exit status 2, saying so. */
	{
		char bin[600], url[64];
		const char *argv[] = { bin, "--api", url, "--token", "wrong", "subscribers",
		    "import", path, NULL };

		snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
		snprintf(url, sizeof(url), "http://127.0.0.1:%d", http);
		assert_int_equal(it_run(argv, out, sizeof(out)), 2);
		assert_non_null(strstr(out, "API answered 401"));
	}
}

/* The i-th event (0-based) of sub's record, "" when there is none. */
static const char *
event(redisContext *rc, const char *sub, int i, char *out, size_t size)
{
	static char rec[16384];
	const char *p = str(rc, rec, sizeof(rec), "HGET consent:records %s", sub, NULL);
	const char *e;

	while (i-- > 0 && p != NULL)
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	out[0] = '\0';
	if (p != NULL) {
		e = strchr(p, '\n');
		snprintf(out, size, "%.*s", (int)(e != NULL ? e - p : (long)strlen(p)), p);
	}
	return out;
}

/*
 * The record keeps every event up to 32; past that the oldest go, except the
 * channel's first consent given, last consent given and last event: the proof of the
 * consent first given and of the one in force stay.
 */
static void
consent_record_is_bounded_and_keeps_the_proofs(void **state)
{
	struct it_one *f = *state;
	const char *given = sub_line("s-1", 1, 0, "2026-01-02T10:00:00Z");
	const char *none = "{\"id\":\"s-1\",\"phone\":\"+15125550001\",\"channels\":[\"sms\"],"
	    "\"timezone\":\"America/Chicago\"}";
	char e[256], first[256];
	int http = start(f), i;

	/* granted, removed, granted, ... : 41 events */
	for (i = 0; i <= 40; i++) {
		const char *doc = i % 2 == 0 ? given : none;

		assert_int_equal(it_http(http, "PUT", "/v1/subscribers/s-1", AUTH, doc,
		    strlen(doc), &resp), i == 0 ? 201 : 200);
		if (i == 0)
			event(f->rc, "s-1", 0, first, sizeof(first));
	}
	assert_non_null(strstr(first, "\tsms\tgranted\tapi\t1767348000"));
	assert_int_equal(it_consent_events(f->rc, "s-1"), 32);
	/* The first grant is still first; the last event is the 41st, a grant. */
	assert_string_equal(event(f->rc, "s-1", 0, e, sizeof(e)), first);
	assert_non_null(strstr(event(f->rc, "s-1", 31, e, sizeof(e)), "\tsms\tgranted\t"));
	assert_non_null(strstr(event(f->rc, "s-1", 30, e, sizeof(e)), "\tsms\tremoved\t"));
	/* After it, the last 31 of the 41: events 2 to 10 went (11 is a grant). */
	assert_non_null(strstr(event(f->rc, "s-1", 1, e, sizeof(e)), "\tsms\tgranted\t"));
	assert_non_null(strstr(event(f->rc, "s-1", 2, e, sizeof(e)), "\tsms\tremoved\t"));
	assert_int_equal(it_int(f->rc, "HEXISTS consent:sms s-1"), 1);
	/* Deleting the subscriber keeps the record: it is the proof of consent. */
	assert_int_equal(it_http(http, "DELETE", "/v1/subscribers/s-1", AUTH, NULL, 0,
	    &resp), 200);
	assert_int_equal(it_int(f->rc, "HEXISTS consent:sms s-1"), 0);
	assert_int_equal(it_consent_events(f->rc, "s-1"), 32);
	/* The admin API reads it back: every event, and each channel's state now. */
	assert_int_equal(it_http(http, "GET", "/v1/consent/s-1", AUTH, NULL, 0, &resp), 200);
	assert_non_null(strstr(resp.body, "{\"id\":\"s-1\",\"events\":[{\"when\":"));
	assert_non_null(strstr(resp.body, "\"channel\":\"sms\",\"state\":\"granted\","
	    "\"how\":\"api\",\"detail\":\"1767348000\"}"));
	assert_non_null(strstr(resp.body, "\"current\":{\"sms\":\"granted\"}}"));
	assert_int_equal(it_http(http, "GET", "/v1/consent/s-1", NULL, NULL, 0, &resp), 401);
	assert_int_equal(it_http(http, "GET", "/v1/consent/nobody", AUTH, NULL, 0, &resp),
	    404);
	assert_int_equal(it_http(http, "GET", "/v1/consent/a%20b", AUTH, NULL, 0, &resp),
	    400);
	/* A line not in the record's form (written by hand) is shown raw, not dropped. */
	freeReplyObject(redisCommand(f->rc, "HSET consent:records s-x %s",
	    "garbage\n1700000000\tdm\topted_out\tdm:STOP\tSTOP"));
	assert_int_equal(it_http(http, "GET", "/v1/consent/s-x", AUTH, NULL, 0, &resp), 200);
	assert_non_null(strstr(resp.body, "[{\"raw\":\"garbage\"},{\"when\":1700000000,"
	    "\"at\":\"2023-11-14T22:13:20Z\",\"channel\":\"dm\",\"state\":\"opted_out\""));
	assert_non_null(strstr(resp.body, "\"current\":{\"dm\":\"opted_out\"}"));
	/* No key per subscriber: the whole consent state is in fixed keys. */
	assert_int_equal(it_int(f->rc, "EXISTS consent_log:s-1 consent_history:s-1"), 0);
}

/*
 * An upgrade: records of earlier versions (consent_history:<id> newest first,
 * consent_log:<id>) move into consent:records by dealpushctl consent migrate, oldest
 * first and before what was recorded since, the old keys go, and the STOP they held
 * still outranks an older consent time on the next import.
 */
static void
consent_migrate_moves_old_records_and_keeps_the_opt_out(void **state)
{
	struct it_one *f = *state;
	char bin[600], addr[64], out[4096], e[256], line[1100];
	const char *argv[] = { bin, "--redis", addr, "consent", "migrate", NULL };

	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", f->port);
	freeReplyObject(redisCommand(f->rc, "LPUSH consent_history:s-1 %s %s",
	    "1700000000\tsms\tgranted\timport\tconsent time 1690000000",
	    "1700000100\tsms\topted_out\tsms:STOP\tSTOP"));
	freeReplyObject(redisCommand(f->rc, "HSET consent_log:s-1 sms:state opted_out "
	    "sms:when 1700000100 sms:how sms:STOP sms:detail STOP"));
	freeReplyObject(redisCommand(f->rc, "HSET consent:records s-1 %s",
	    "1700000200\tdm\tgranted\tapi\t1700000150"));
	freeReplyObject(redisCommand(f->rc, "HSET consent_log:s-2 dm:state revoked "
	    "dm:when 1700000300 dm:how twilio:30006 dm:detail x sms:state granted "
	    "sms:when 1700000000 sms:how api sms:detail y"));
	assert_int_equal(it_run(argv, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "migrated 2 consent records, 4 events"));
	assert_int_equal(it_int(f->rc, "EXISTS consent_history:s-1 consent_log:s-1 "
	    "consent_log:s-2"), 0);
	assert_int_equal(it_consent_events(f->rc, "s-1"), 3);
	assert_string_equal(event(f->rc, "s-1", 0, e, sizeof(e)),
	    "1700000000\tsms\tgranted\timport\tconsent time 1690000000");
	assert_string_equal(event(f->rc, "s-1", 1, e, sizeof(e)),
	    "1700000100\tsms\topted_out\tsms:STOP\tSTOP");
	assert_string_equal(event(f->rc, "s-1", 2, e, sizeof(e)),
	    "1700000200\tdm\tgranted\tapi\t1700000150");
	assert_string_equal(event(f->rc, "s-2", 0, e, sizeof(e)),
	    "1700000000\tsms\tgranted\tapi\ty");
	assert_string_equal(event(f->rc, "s-2", 1, e, sizeof(e)),
	    "1700000300\tdm\trevoked\ttwilio:30006\tx");
	/* Run again: nothing left to move. */
	assert_int_equal(it_run(argv, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "migrated 0 consent records, 0 events"));
	/* The STOP outranks a consent time before it (2023-11-14 22:13:00 UTC). */
	snprintf(line, sizeof(line), "%s\n", sub_line("s-1", 1, 0, "2023-11-14T22:13:00Z"));
	assert_int_equal(it_import(f->port, line), 0);
	assert_int_equal(it_int(f->rc, "HEXISTS consent:sms s-1"), 0);
	assert_non_null(strstr(str(f->rc, out, sizeof(out), "HGET subscribers %s", "s-1",
	    NULL), "\"consent\":{\"sms\":null"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    import_names_bad_lines_and_stores_what_single_puts_store,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    api_bulk_reports_bad_lines_and_refuses_oversize_and_bad_auth,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(consent_record_is_bounded_and_keeps_the_proofs,
		    it_one_setup, it_one_teardown),
		cmocka_unit_test_setup_teardown(
		    consent_migrate_moves_old_records_and_keeps_the_opt_out,
		    it_one_setup, it_one_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
