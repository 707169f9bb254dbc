/*
 * test_abuse.c: the HTTP surface of a running notifier under abuse (docs/http.md).
 *
 * The attackers connect from other loopback addresses (127.0.0.2 and up) than the
 * honest client (127.0.0.1), so that the per-address cap can tell them apart. Every
 * check counts: answers, log lines, Redis writes; none measures a time.
 *   - 300 slow clients (a header byte now and then) and 300 idle kept-alive ones fill
 *     the pool, yet a signed STOP, a status callback and /healthz are answered and
 *     applied, and the refusals show per address on /metrics;
 *   - 50,000 forged webhooks cost a handful of log lines and Redis writes;
 *   - each ambiguous request head gets 400 and the connection is closed;
 *   - a declared body over the cap gets 413 and close while no byte of it was sent;
 *   - a click path in every refused form leaves no token in the debug log;
 *   - SIGTERM while a STOP waits on Redis: it is answered and applied, a new request
 *     gets 503 with Retry-After, the notifier exits 0.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "ithttp.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"
#include "twsig.h"

#define PUBLIC_URL "https://hooks.example.test"
#define PHONE1 "+15125550101"
#define ATTACK_ADDRS 10                 /* 127.0.0.2 .. 127.0.0.11 */
#define SLOW_PER_ADDR 30
#define IDLE_PER_ADDR 30
#define FLOOD 50000
#define FLOOD_CONNS 10
#define FLOOD_BATCH 250
#define TOKEN_MARK "ZqTokMark7x9Qw"    /* a click token no log may show */

struct fx {
	redisContext *rc;
	struct it_gwsim gw;
	struct it_notifier nt;
	struct it_proc redis;
	int port, http;
	int socks[ATTACK_ADDRS * (SLOW_PER_ADDR + IDLE_PER_ADDR) + FLOOD_CONNS];
	size_t nsocks;
};

static int
setup(void **state)
{
	*state = calloc(1, sizeof(struct fx));
	return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rv = it_stop_clean(&f->nt.proc);
	size_t i;

	for (i = 0; i < f->nsocks; i++)
		close(f->socks[i]);
	it_stop(&f->gw.proc, SIGTERM, 2000);
	it_stop(&f->redis, SIGKILL, 2000);
	if (f->rc != NULL)
		redisFree(f->rc);
	free(f);
	return rv;
}

static void
start(struct fx *f, const char *more)
{
	char dir[512], extra[1024];
	static const char subs[] =
	    "{\"id\":\"s-1\",\"phone\":\"" PHONE1 "\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n";

	it_path(dir, sizeof(dir), "redis-abuse", "");
	f->port = it_redis_start(&f->redis, dir, 0, 1);
	assert_true(f->port > 0);
	f->rc = it_redis_connect(f->port);
	assert_int_equal(it_import(f->port, subs), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	snprintf(extra, sizeof(extra), "public_url = " PUBLIC_URL "\n%s", more ? more : "");
	f->http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-abuse", extra);
	assert_true(f->http > 0);
	it_sleep_ms(300);       /* the mirror loads */
}

/* A blocking socket from src (127.0.0.x) to the notifier, with a 5 s receive and
 * send timeout; -1 when it cannot connect. */
static int
conn_from(struct fx *f, const char *src)
{
	struct sockaddr_in sa, me;
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&me, 0, sizeof(me));
	me.sin_family = AF_INET;
	inet_pton(AF_INET, src, &me.sin_addr);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)f->http);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&me, sizeof(me)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends req whole on fd and reads the answer until the server closes; the status,
 * or -1 when there was none. *closed says whether the server closed. */
static int
exchange(int fd, const char *req, size_t len, char *out, size_t size, int *closed)
{
	size_t got = 0;
	ssize_t n = -1;
	int status = -1;

	if (len > 0 && send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len)
		return -1;
	while (got + 1 < size && (n = recv(fd, out + got, size - 1 - got, 0)) > 0)
		got += (size_t)n;
	out[got] = '\0';
	*closed = got + 1 < size && n == 0;
	if (sscanf(out, "HTTP/%*s %d", &status) != 1)
		status = -1;
	return status;
}

/* Lines of the notifier's log, from byte from on, that hold needle (NULL: every line
 * that is not at debug level). */
static long
log_lines(struct fx *f, long from, const char *needle)
{
	FILE *fp = fopen(f->nt.proc.log, "r");
	char line[8192];
	long n = 0;

	if (fp == NULL)
		return -1;
	fseek(fp, from, SEEK_SET);
	while (fgets(line, sizeof(line), fp) != NULL)
		if (needle != NULL ? strstr(line, needle) != NULL :
		    strstr(line, "level=debug") == NULL)
			n++;
	fclose(fp);
	return n;
}

static long
log_size(struct fx *f)
{
	FILE *fp = fopen(f->nt.proc.log, "r");
	long n;

	if (fp == NULL)
		return 0;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	fclose(fp);
	return n;
}

/* "calls=N" of one command in INFO commandstats. */
static long long
cmd_calls(struct fx *f, const char *cmd)
{
	redisReply *r = redisCommand(f->rc, "INFO commandstats");
	char key[64];
	const char *p;
	long long n = 0;

	assert_non_null(r);
	snprintf(key, sizeof(key), "cmdstat_%s:calls=", cmd);
	if (r->type == REDIS_REPLY_STRING && (p = strstr(r->str, key)) != NULL)
		n = atoll(p + strlen(key));
	freeReplyObject(r);
	return n;
}

/* The request text of a signed Twilio form POST to path (into out). */
static void
signed_request(const char *path, const char *const *kv, char *out, size_t size)
{
	struct twsig_param p[8];
	char body[1024] = "", url[512], sig[64];
	size_t n = 0, o = 0;

	for (; kv[0] != NULL; kv += 2) {
		const char *s;

		o += (size_t)snprintf(body + o, sizeof(body) - o, "%s%s=", n ? "&" : "", kv[0]);
		for (s = kv[1]; *s != '\0' && o + 4 < sizeof(body); s++)
			o += (size_t)snprintf(body + o, sizeof(body) - o,
			    *s == '+' || *s == ' ' || *s == ':' ? "%%%02X" : "%c",
			    (unsigned char)*s);
		p[n].name = kv[0];
		p[n++].value = kv[1];
	}
	snprintf(url, sizeof(url), PUBLIC_URL "%s", path);
	assert_int_equal(twsig_compute(IT_AUTH_TOKEN, url, p, n, sig, sizeof(sig)), 0);
	snprintf(out, size, "POST %s HTTP/1.0\r\nHost: x\r\n"
	    "Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: %s\r\n"
	    "Content-Length: %zu\r\n\r\n%s", path, sig, strlen(body), body);
}

/* A signed Twilio form POST from the honest client: its status. */
static int
signed_post(struct fx *f, const char *path, const char *const *kv, char *resp,
    size_t rsize)
{
	char req[2048];
	int fd, closed, status;

	signed_request(path, kv, req, sizeof(req));
	assert_true((fd = conn_from(f, "127.0.0.1")) >= 0);
	status = exchange(fd, req, strlen(req), resp, rsize, &closed);
	close(fd);
	return status;
}

static void
slow_and_idle_clients_leave_room_for_a_stop_a_callback_and_healthz(void **state)
{
	struct fx *f = *state;
	static char buf[1 << 16];
	const char *stop[] = { "MessageSid", "SMabuse0001", "From", PHONE1, "To", IT_FROM,
	    "Body", "STOP", NULL };
	const char *cb[] = { "MessageSid", "SMabuse0002", "MessageStatus", "delivered",
	    "To", PHONE1, NULL };
	static const char slow_head[] = "POST /hooks/twilio/inbound HTTP/1.1\r\nHost: x\r\n";
	static const char idle_req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	char src[32], key[KEYS_SHARD_MAX];
	int a, i, fd, admitted = 0, round;
	redisReply *r;

	start(f, "max_connections = 256\nmax_per_address = 40\n");
	for (a = 0; a < ATTACK_ADDRS; a++) {
		snprintf(src, sizeof(src), "127.0.0.%d", a + 2);
		for (i = 0; i < SLOW_PER_ADDR + IDLE_PER_ADDR; i++) {
			if ((fd = conn_from(f, src)) < 0)
				continue;
			f->socks[f->nsocks++] = fd;
			if (i < SLOW_PER_ADDR) {
				(void)send(fd, slow_head, sizeof(slow_head) - 1, MSG_NOSIGNAL);
			} else if (send(fd, idle_req, sizeof(idle_req) - 1, MSG_NOSIGNAL) > 0 &&
			    recv(fd, buf, sizeof(buf), 0) > 0 && strncmp(buf, "HTTP/1.1 200", 12) == 0) {
				admitted++;     /* answered, and now idle on a kept-alive line */
			}
		}
	}
	/* The attack is real: the pool was full, and some of it was let in. */
	assert_true(admitted > 0);
	/* The slow ones trickle a byte while the honest client works. */
	for (round = 0; round < 3; round++) {
		for (i = 0; (size_t)i < f->nsocks; i++)
			(void)send(f->socks[i], "X", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		assert_int_equal(it_http_get(f->http, "/healthz", buf, sizeof(buf)), 200);
	}
	assert_int_equal(signed_post(f, "/hooks/twilio/inbound", stop, buf, sizeof(buf)), 200);
	assert_int_equal(signed_post(f, "/hooks/twilio/status?push=1-0:s-1:sms", cb, buf,
	    sizeof(buf)), 204);
	/* Applied: the consent is gone, the callback counted. */
	r = redisCommand(f->rc, "HEXISTS %s s-1", it_key_for("consent:sms", "s-1", key,
	    sizeof(key)));
	assert_non_null(r);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
	/* In the stats of the shard the push id names (summed on read). */
	assert_int_equal(it_shards_stat(f->rc, "hook:status:unknown_push"), 1);
	/* The refusals are counted per address. */
	assert_int_equal(it_http_get(f->http, "/metrics", buf, sizeof(buf)), 200);
	assert_non_null(strstr(buf, "dealpush_http_refused_total{reason=\"per_address\","
	    "addr=\"127.0.0.2\"}"));
	assert_non_null(strstr(buf, "dealpush_http_refused_total{reason=\"evicted\""));
}

static void
a_flood_of_forged_webhooks_costs_a_few_log_lines_and_redis_writes(void **state)
{
	struct fx *f = *state;
	static char req[FLOOD_BATCH * 256], buf[1 << 16];
	static const char one[] = "POST /hooks/twilio/inbound HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/x-www-form-urlencoded\r\n"
	    "X-Twilio-Signature: GvWf1cFY/Q7PnoempGyD5oXAezc=\r\n"
	    "Content-Length: 29\r\n\r\nFrom=%2B15125550101&Body=STOP";
	long from, lines;
	long long before, writes;
	size_t len = 0;
	int c, sent, answered = 0, fd;
	ssize_t n;

	start(f, NULL);
	for (c = 0; c < FLOOD_BATCH; c++) {
		memcpy(req + len, one, sizeof(one) - 1);
		len += sizeof(one) - 1;
	}
	from = log_size(f);
	before = cmd_calls(f, "hincrby");
	for (c = 0; c < FLOOD_CONNS; c++) {
		assert_true((fd = conn_from(f, "127.0.0.2")) >= 0);
		f->socks[f->nsocks++] = fd;
		for (sent = 0; sent < FLOOD / FLOOD_CONNS; sent += FLOOD_BATCH) {
			int got = 0;
			size_t keep = 0, tot;
			char *p;

			assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
			/* Read until every answer of the batch is in (403 each). A status
			 * line may be cut between two reads: the last bytes of one read,
			 * fewer than a whole status line, are searched with the next. */
			while (got < FLOOD_BATCH && (n = recv(fd, buf + keep,
			    sizeof(buf) - keep - 1, 0)) > 0) {
				tot = keep + (size_t)n;
				buf[tot] = '\0';
				for (p = buf; (p = strstr(p, "HTTP/1.1 403")) != NULL; p++)
					got++;
				keep = tot < 11 ? tot : 11;
				memmove(buf, buf + tot - keep, keep);
			}
			assert_int_equal(got, FLOOD_BATCH);
			answered += got;
		}
	}
	assert_int_equal(answered, FLOOD);
	it_sleep_ms(1500);      /* the last second's counts are written */
	writes = cmd_calls(f, "hincrby") - before;
	lines = log_lines(f, from, NULL);
	/* One write and one line a second at most, whatever the flood's length would
	 * allow: far below one per request. */
	assert_true(writes >= 1);
	assert_true(writes <= 100);
	assert_true(lines >= 1);
	assert_true(lines <= 100);
}

static void
ambiguous_request_heads_get_400_and_close(void **state)
{
	struct fx *f = *state;
	static const char *const heads[] = {
		"POST /hooks/twilio/inbound HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
		"Content-Length: 10\r\n\r\nBody=STOP1",
		"POST /hooks/twilio/inbound HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n"
		"Body=",
		"POST /hooks/twilio/inbound HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\n"
		"Body=",
		"POST /hooks/twilio/inbound HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
		"Content-Length: 5\r\n\r\n0\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n",
		"GET /healthz HTTP/1.1\nHost: x\n\n",
		"GET /healthz HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n",
		"GET /v1/rules HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\n"
		"Authorization: Bearer b\r\n\r\n",
		"POST /hooks/twilio/inbound HTTP/1.1\r\nHost: x\r\nX-Twilio-Signature: a\r\n"
		"X-Twilio-Signature: b\r\nContent-Length: 0\r\n\r\n",
		"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\001b\r\n\r\n",
	};
	static char buf[1 << 14];
	size_t i;
	int fd, closed;

	start(f, NULL);
	for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		assert_true((fd = conn_from(f, "127.0.0.1")) >= 0);
		f->socks[f->nsocks++] = fd;
		if (exchange(fd, heads[i], strlen(heads[i]), buf, sizeof(buf), &closed) != 400 ||
		    !closed)
			fail_msg("head %zu: got \"%.60s\" closed=%d", i, buf, closed);
	}
	/* A well-formed one still passes. */
	assert_int_equal(it_http_get(f->http, "/healthz", buf, sizeof(buf)), 200);
}

static void
a_declared_body_over_the_cap_gets_413_before_any_of_it_is_sent(void **state)
{
	struct fx *f = *state;
	static const char head[] = "POST /hooks/twilio/inbound HTTP/1.1\r\nHost: x\r\n"
	    "Content-Length: 100000000000\r\n\r\n";
	static char buf[4096];
	int fd, closed, i;

	start(f, NULL);
	for (i = 0; i < 3; i++) {
		assert_true((fd = conn_from(f, "127.0.0.2")) >= 0);
		f->socks[f->nsocks++] = fd;
		/* Not one body byte is sent: the answer and the close come anyway. */
		assert_int_equal(exchange(fd, head, sizeof(head) - 1, buf, sizeof(buf),
		    &closed), 413);
		assert_true(closed);
	}
}

static void
refused_click_paths_leave_no_token_in_the_debug_log(void **state)
{
	struct fx *f = *state;
	static const char *const forms[] = {
		"OPTIONS /c/" TOKEN_MARK " HTTP/1.0\r\n\r\n",
		"POST /c/" TOKEN_MARK " HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
		"PUT /c/" TOKEN_MARK " HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
		"GET /c/" TOKEN_MARK "?x HTTP/1.0\r\n\r\n",
		"GET /c/" TOKEN_MARK "%00 HTTP/1.0\r\n\r\n",
		"GET //c/" TOKEN_MARK " HTTP/1.0\r\n\r\n",
		"GET /c/../" TOKEN_MARK " HTTP/1.0\r\n\r\n",
		"GET /c/" TOKEN_MARK "/.. HTTP/1.0\r\n\r\n",
		"GET /c/" TOKEN_MARK "%2F HTTP/1.0\r\n\r\n",
		"GET /c/" TOKEN_MARK " HTTP/1.0\r\n\r\n",
		"GET http://evil.example/c/" TOKEN_MARK " HTTP/1.0\r\n\r\n",
		"GET /c/" TOKEN_MARK " HTTP/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
	};
	static char buf[1 << 14];
	size_t i;
	long from;
	int fd, closed, status, unrefused = 0;

	start(f, "click_secret_env = DP_TEST_CLICK_SECRET\n");
	from = log_size(f);
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		assert_true((fd = conn_from(f, "127.0.0.1")) >= 0);
		f->socks[f->nsocks++] = fd;
		status = exchange(fd, forms[i], strlen(forms[i]), buf, sizeof(buf), &closed);
		if (status < 400 || status > 499) {
			fprintf(stderr, "form %zu: status %d\n", i, status);
			unrefused++;
		}
	}
	it_sleep_ms(300);
	/* The requests were logged at debug level, and none with the token. */
	assert_true(log_lines(f, from, "event=http ") > 0);
	assert_int_equal(log_lines(f, from, TOKEN_MARK), 0);
	assert_int_equal(unrefused, 0);
}

/* A kept-alive connection that sends nothing after its answer is closed by the idle
 * timeout (300 ms), not the request deadline (10 s): the client waits 5 s for the
 * close. One that trickles a request (a byte every 100 ms, 12 s for the whole head)
 * is closed by that request's 2 s deadline however many bytes it sends. */
static void
idle_and_trickling_connections_are_closed_by_their_own_deadlines(void **state)
{
	struct fx *f = *state;
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char slow[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: "
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	static char buf[1 << 14];
	int idle, trickle, closed, sent = 0;
	size_t i;
	ssize_t n;

	/* The request deadline stays at its 10 s default, over the client's 5 s wait. */
	start(f, "idle_ms = 300\n");
	assert_true((idle = conn_from(f, "127.0.0.2")) >= 0);
	f->socks[f->nsocks++] = idle;
	assert_int_equal(send(idle, req, sizeof(req) - 1, MSG_NOSIGNAL),
	    (ssize_t)sizeof(req) - 1);
	n = recv(idle, buf, sizeof(buf) - 1, 0);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "HTTP/1.1 200"));
	/* Nothing more is sent: the server closes (recv 0), not the 5 s timeout (-1). */
	assert_int_equal(exchange(idle, "", 0, buf, sizeof(buf), &closed), -1);
	assert_true(closed);

	/* A request trickled a byte at a time never restarts its deadline. */
	it_stop_clean(&f->nt.proc);
	f->http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-abuse2",
	    "public_url = " PUBLIC_URL "\ntimeout_ms = 2000\nidle_ms = 60000\n");
	assert_true(f->http > 0);
	assert_true((trickle = conn_from(f, "127.0.0.3")) >= 0);
	f->socks[f->nsocks++] = trickle;
	for (i = 0; i < sizeof(slow) - 1; i++) {
		if (send(trickle, slow + i, 1, MSG_NOSIGNAL) != 1)
			break;
		sent++;
		it_sleep_ms(100);
	}
	/* Closed while it was still sending: fewer bytes went than the head has. */
	assert_true(sent > 5);
	assert_true((size_t)sent < sizeof(slow) - 1);
}

/* SIGTERM while a STOP waits on Redis: the STOP is answered and applied (Twilio does
 * not send it again), a request that comes after gets 503 with Retry-After, and the
 * notifier exits 0. */
static void
shutdown_finishes_a_stop_already_read_and_refuses_new_requests(void **state)
{
	struct fx *f = *state;
	const char *stop[] = { "MessageSid", "SMabuse0003", "From", PHONE1, "To", IT_FROM,
	    "Body", "STOP", NULL };
	static char req[2048], buf[1 << 14];
	struct it_resp *late = malloc(sizeof(*late));
	char v[64], key[KEYS_SHARD_MAX];
	int fd, closed;
	redisReply *r;

	assert_non_null(late);
	start(f, NULL);
	signed_request("/hooks/twilio/inbound", stop, req, sizeof(req));
	/* Scripts wait while Redis pauses writers; the STOP is read and then waits. */
	r = redisCommand(f->rc, "CLIENT PAUSE 1500 WRITE");
	assert_non_null(r);
	freeReplyObject(r);
	assert_true((fd = conn_from(f, "127.0.0.1")) >= 0);
	f->socks[f->nsocks++] = fd;
	assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
	it_sleep_ms(300);
	assert_int_equal(kill(f->nt.proc.pid, SIGTERM), 0);
	it_sleep_ms(200);
	assert_int_equal(it_http(f->http, "GET", "/healthz", NULL, NULL, 0, late), 503);
	assert_string_equal(it_http_header(late, "Retry-After", v, sizeof(v)), "5");
	free(late);
	assert_int_equal(exchange(fd, "", 0, buf, sizeof(buf), &closed), 200);
	r = redisCommand(f->rc, "HEXISTS %s s-1", it_key_for("consent:sms", "s-1", key,
	    sizeof(key)));
	assert_non_null(r);
	assert_int_equal(r->integer, 0);
	freeReplyObject(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    slow_and_idle_clients_leave_room_for_a_stop_a_callback_and_healthz,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_flood_of_forged_webhooks_costs_a_few_log_lines_and_redis_writes,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(ambiguous_request_heads_get_400_and_close,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    a_declared_body_over_the_cap_gets_413_before_any_of_it_is_sent,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    refused_click_paths_leave_no_token_in_the_debug_log, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    shutdown_finishes_a_stop_already_read_and_refuses_new_requests, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    idle_and_trickling_connections_are_closed_by_their_own_deadlines, setup,
		    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	setenv("DP_TEST_CLICK_SECRET", "0123456789abcdef0123456789abcdef", 1);
	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("abuse", tests, NULL, NULL);
}
