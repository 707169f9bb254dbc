/*
 * test_rconn.c: the deadlines of notifier/rconn.c against the real redis-server.
 *
 * A deadline that passes while our own loop was held (the reply sitting unread in
 * the socket, or the command not yet written) is not the server's silence: the
 * command starts its deadline again and gets its reply. A server that stays silent
 * past the deadline (a blocked BLPOP on the same connection) fails the command once,
 * with NULL, and the connection comes back. Counts, never timings: the loop is held
 * longer than the deadline, the server silent ten times longer. A host name is
 * resolved (from /etc/hosts here) and an ACL user logs in; a refused login is retried
 * until the operator fixes it. rconn_close fails what is out at once, refuses what
 * comes after and never reconnects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "itest.h"
#include "rconn.h"

#define DEADLINE_MS 100

struct run {
	struct event_base *base;
	struct rconn *rc;
	int ready;                 /* ready callbacks */
	int replies;               /* callbacks with a reply */
	int nulls;                 /* callbacks with NULL */
	char last[64];             /* the last reply's text */
	int hold_ms;               /* how long the hold event blocks the loop */
	struct event *hold;
	struct event *stop;
};

static void
on_reply(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct run *t = arg;

	(void)rc;
	if (r == NULL) {
		t->nulls++;
		return;
	}
	t->replies++;
	snprintf(t->last, sizeof(t->last), "%s", r->type == REDIS_REPLY_STATUS ||
	    r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_ERROR ? r->str : "?");
	event_base_loopbreak(t->base);
}

static void
on_hold(evutil_socket_t fd, short what, void *arg)
{
	struct run *t = arg;

	(void)fd;
	(void)what;
	usleep((useconds_t)t->hold_ms * 1000);   /* a long callback holds the loop */
}

static void
on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct run *t = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(t->base);
}

static void
on_ready(struct rconn *rc, void *arg)
{
	struct run *t = arg;

	(void)rc;
	t->ready++;
	event_base_loopbreak(t->base);
}

/* Opens an rconn to the shared redis under host (an address or a name), as user with
 * password (both may be NULL); wait: run the loop until it is ready (at most 5 s). */
static void
run_open_as(struct run *t, const char *host, const char *user, const char *password,
    int wait)
{
	struct rconn_config cfg = { 0 };
	struct timeval limit = { 5, 0 };

	memset(t, 0, sizeof(*t));
	cfg.host = host;
	cfg.username = user;
	cfg.password = password;
	cfg.port = it_redis_port();
	cfg.connect_timeout_ms = 1000;
	cfg.command_timeout_ms = DEADLINE_MS;
	cfg.reconnect_max_ms = 200;
	assert_non_null(t->base = event_base_new());
	assert_non_null(t->hold = event_new(t->base, -1, 0, on_hold, t));
	assert_non_null(t->stop = evtimer_new(t->base, on_stop, t));
	assert_non_null(t->rc = rconn_new(t->base, &cfg, "test", on_ready, t));
	if (!wait)
		return;
	evtimer_add(t->stop, &limit);
	event_base_dispatch(t->base);
	assert_int_equal(t->ready, 1);
}

static void
run_open(struct run *t)
{
	run_open_as(t, "127.0.0.1", NULL, NULL, 1);
}

static void
run_close(struct run *t)
{
	rconn_free(t->rc);
	event_free(t->hold);
	event_free(t->stop);
	event_base_free(t->base);
}

/* Runs the loop until a reply arrives or limit_ms passes. */
static void
run_loop(struct run *t, long limit_ms)
{
	struct timeval limit = { limit_ms / 1000, (limit_ms % 1000) * 1000 };

	evtimer_add(t->stop, &limit);
	event_base_dispatch(t->base);
}

static void
a_held_loop_is_not_a_silent_server(void **state)
{
	struct timeval t99 = { 0, (DEADLINE_MS - 1) * 1000 };
	struct rconn_stat st;
	struct event *hold2;
	struct run t;

	(void)state;
	run_open(&t);
	assert_non_null(hold2 = evtimer_new(t.base, on_hold, &t));
	/*
	 * The server answers after 150 ms (BLPOP's own timeout), past the 100 ms
	 * deadline; but the loop is held from the start for longer than the deadline,
	 * then once more by a timer due just before it, while the answer arrives. The
	 * deadline's timer then runs late, in the same turn, with the answer unread in
	 * the socket: that is our loop's delay, not the server's silence, and the
	 * command must get its answer.
	 */
	t.hold_ms = DEADLINE_MS + DEADLINE_MS / 2;
	evtimer_add(hold2, &t99);
	assert_int_equal(rconn_cmd(t.rc, on_reply, &t, 0, "BLPOP rconn-test:never 0.15"),
	    0);
	event_active(t.hold, EV_TIMEOUT, 0);
	run_loop(&t, 5000);
	assert_int_equal(t.nulls, 0);
	assert_int_equal(t.replies, 1);
	rconn_stats(t.rc, &st);
	assert_int_equal(st.timeouts, 0);
	assert_int_equal(st.drops, 0);
	assert_int_equal(st.generation, 1);
	event_free(hold2);
	run_close(&t);
}

static void
a_silent_server_fails_the_command_once_and_the_connection_comes_back(void **state)
{
	struct rconn_stat st;
	struct run t;
	int i;

	(void)state;
	run_open(&t);
	/* BLPOP on a key nobody pushes: the server answers nothing for 1 s. The
	 * caller gives it the default deadline, ten times shorter. */
	assert_int_equal(rconn_cmd(t.rc, on_reply, &t, 0, "BLPOP rconn-test:never 1"), 0);
	for (i = 0; i < 100 && t.nulls == 0; i++)
		run_loop(&t, 20);
	assert_int_equal(t.nulls, 1);
	assert_int_equal(t.replies, 0);
	rconn_stats(t.rc, &st);
	assert_int_equal(st.timeouts, 1);
	/* it reconnects and works again */
	for (i = 0; i < 250 && !rconn_is_ready(t.rc); i++)
		run_loop(&t, 20);
	assert_true(rconn_is_ready(t.rc));
	assert_int_equal(rconn_cmd(t.rc, on_reply, &t, 0, "PING"), 0);
	run_loop(&t, 5000);
	assert_int_equal(t.replies, 1);
	assert_int_equal(t.nulls, 1);   /* exactly once */
	rconn_stats(t.rc, &st);
	assert_int_equal(st.generation, 2);
	run_close(&t);
}

static void
a_host_name_is_resolved_without_blocking(void **state)
{
	struct rconn_stat st;
	struct run t;

	(void)state;
	/* /etc/hosts: no query leaves the machine */
	run_open_as(&t, "localhost", NULL, NULL, 1);
	assert_int_equal(rconn_cmd(t.rc, on_reply, &t, 0, "ECHO %s", "by-name"), 0);
	run_loop(&t, 5000);
	assert_int_equal(t.replies, 1);
	assert_string_equal(t.last, "by-name");
	/* our resolver chose the address (the first IPv4 one), not hiredis */
	rconn_stats(t.rc, &st);
	assert_string_equal(st.addr, "127.0.0.1");
	run_close(&t);
}

/* dealpushctl logs in as the same user from its environment, and says so when it is
 * refused (exit status 2), never printing the password. */
static void
dealpushctl_logs_in_as(void)
{
	char bin[512], addr[64], out[2048];
	const char *argv[] = { bin, "--redis", addr, "cancel", "rconn-test-deal", NULL };

	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", it_redis_port());
	setenv("DEALPUSH_REDIS_USER", "rconn-test", 1);
	setenv("DEALPUSH_REDIS_PASSWORD", "new-pass", 1);
	assert_int_equal(it_run(argv, out, sizeof(out)), 0);
	setenv("DEALPUSH_REDIS_PASSWORD", "wrong-pass", 1);
	assert_int_equal(it_run(argv, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "login refused"));
	assert_null(strstr(out, "wrong-pass"));
	unsetenv("DEALPUSH_REDIS_PASSWORD");
	assert_int_equal(it_run(argv, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "DEALPUSH_REDIS_USER needs DEALPUSH_REDIS_PASSWORD"));
	unsetenv("DEALPUSH_REDIS_USER");
}

static void
an_acl_user_logs_in_and_a_refused_login_is_retried(void **state)
{
	redisContext *admin = it_redis_connect(it_redis_port());
	struct rconn_stat st;
	struct run t;
	int i;

	(void)state;
	it_int(admin, "ACL DELUSER rconn-test");
	freeReplyObject(redisCommand(admin, "ACL SETUSER rconn-test on >old-pass ~* &* +@all"));
	/* The notifier's password is not the user's yet: refused, retried, no crash. */
	run_open_as(&t, "127.0.0.1", "rconn-test", "new-pass", 0);
	for (i = 0; i < 25; i++)
		run_loop(&t, 20);
	assert_int_equal(t.ready, 0);
	assert_false(rconn_is_ready(t.rc));
	assert_int_equal(rconn_cmd(t.rc, on_reply, &t, 0, "PING"), -1);
	/* The operator sets the password: the next retry logs in. */
	freeReplyObject(redisCommand(admin, "ACL SETUSER rconn-test resetpass >new-pass"));
	for (i = 0; i < 300 && t.ready == 0; i++)
		run_loop(&t, 20);
	assert_int_equal(t.ready, 1);
	assert_int_equal(rconn_cmd(t.rc, on_reply, &t, 0, "ACL WHOAMI"), 0);
	run_loop(&t, 5000);
	assert_string_equal(t.last, "rconn-test");
	rconn_stats(t.rc, &st);
	assert_int_equal(st.generation, 1);
	run_close(&t);
	dealpushctl_logs_in_as();
	it_int(admin, "ACL DELUSER rconn-test");
	redisFree(admin);
}

/* Commands out (one the server holds) when rconn_close runs: each callback runs once,
 * with NULL, inside the call; a send after it is refused (no callback); the loop
 * then runs past the reconnect backoff and nothing connects again. */
static void
close_fails_what_is_out_and_refuses_the_rest(void **state)
{
	struct rconn_stat st;
	struct run t;

	(void)state;
	run_open(&t);
	assert_int_equal(rconn_cmd(t.rc, on_reply, &t, 2000, "BLPOP rconn-test:never 1"), 0);
	assert_int_equal(rconn_cmd(t.rc, on_reply, &t, 2000, "PING"), 0);
	rconn_close(t.rc);
	assert_int_equal(t.nulls, 2);
	assert_int_equal(t.replies, 0);
	assert_false(rconn_is_ready(t.rc));
	assert_int_equal(rconn_cmd(t.rc, on_reply, &t, 0, "PING"), -1);
	rconn_close(t.rc);             /* twice: nothing more */
	run_loop(&t, 600);             /* past reconnect_max_ms (200) */
	assert_false(rconn_is_ready(t.rc));
	assert_int_equal(t.ready, 1);
	assert_int_equal(t.nulls, 2);
	rconn_stats(t.rc, &st);
	assert_int_equal(st.generation, 1);
	run_close(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(a_held_loop_is_not_a_silent_server),
		cmocka_unit_test(a_silent_server_fails_the_command_once_and_the_connection_comes_back),
		cmocka_unit_test(a_host_name_is_resolved_without_blocking),
		cmocka_unit_test(an_acl_user_logs_in_and_a_refused_login_is_retried),
		cmocka_unit_test(close_fails_what_is_out_and_refuses_the_rest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
