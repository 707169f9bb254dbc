/*
 * test_greader.c: the stream-consumer discipline (notifier/greader.c) against a real
 * redis-server, driven on its own event loop.
 *
 * A re-read asked for while a read of the pending list is in flight is kept: the
 * walk goes on, and once it ends a new walk reads the failed entry again. The read is
 * held in flight deterministically: a second process keeps Redis busy in a Lua loop
 * while the request is made.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "greader.h"
#include "itest.h"
#include "log.h"
#include "rconn.h"
#include "redisutil.h"

#define STREAM "gr:stream"
#define GROUP "gr"
#define BUSY_MS 300           /* how long the second process keeps Redis busy */

struct fx {
	struct event_base *base;
	struct greader *g;
	redisContext *rc;
	struct event *fail, *stop;
	char entry[64];          /* the entry under test */
	int seen;                /* times it was delivered */
	int busy_pid;
	int done;
};

/* Keeps Redis in a Lua loop for about BUSY_MS, from a child process. */
static int
keep_redis_busy(int port)
{
	pid_t pid = fork();

	if (pid == 0) {
		redisContext *c = redisConnect("127.0.0.1", port);
		char script[256];
		redisReply *r;

		snprintf(script, sizeof(script), "local t = redis.call('TIME') "
		    "local stop = t[1] * 1000000 + t[2] + %d "
		    "repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] >= stop "
		    "return 1", BUSY_MS * 1000);
		r = c != NULL ? redisCommand(c, "EVAL %s 0", script) : NULL;
		_exit(r != NULL && r->type == REDIS_REPLY_INTEGER ? 0 : 1);
	}
	return (int)pid;
}

/* The entry's job failed, while the walk's next pending read waits behind the busy
 * Redis. */
static void
on_fail(evutil_socket_t fd, short what, void *arg)
{
	struct fx *f = arg;

	(void)fd;
	(void)what;
	greader_reread(f->g, 1);
}

static void
on_stop(evutil_socket_t fd, short what, void *arg)
{
	struct fx *f = arg;

	(void)fd;
	(void)what;
	event_base_loopbreak(f->base);
}

static void
on_batch(void *arg, const struct redisReply *entries)
{
	struct fx *f = arg;
	const struct redisReply *fields;
	const char *id;
	size_t i;

	for (i = 0; i < entries->elements; i++) {
		if (ru_entry(entries, i, &id, &fields) < 0 || strcmp(id, f->entry) != 0)
			continue;
		f->seen++;
		if (f->seen == 1) {
			/* First seen as new and left unacked: walk the pending list. */
			greader_reread(f->g, 0);
		} else if (f->seen == 2) {
			/* Seen again by the walk: its (asynchronous) job will fail while the
			 * walk's next read is held in flight by a busy Redis. */
			struct timeval tv = { 0, 100 * 1000 };

			f->busy_pid = keep_redis_busy(it_redis_port());
			it_sleep_ms(50);          /* the Lua loop has started */
			evtimer_add(f->fail, &tv);
		} else {
			/* The failed entry read again: done. */
			struct timeval now = { 0, 0 };

			freeReplyObject(redisCommand(f->rc, "XACK %s %s %s", STREAM, GROUP, id));
			f->done = 1;
			evtimer_add(f->stop, &now);
		}
	}
}

static int
gate(void *arg)
{
	(void)arg;
	return 1;
}

static void
test_reread_during_pending_read_is_kept(void **state)
{
	struct fx f;
	struct rconn_config rcfg = { "127.0.0.1", it_redis_port(), NULL, 500, 2000, 500, NULL,
	    NULL, NULL };
	struct greader_config gc = { "gr", STREAM, GROUP, "c1", 1, 100, 2000, 50, 0, NULL,
		NULL, 0 };
	struct timeval limit = { 10, 0 };
	redisReply *r;
	int status = -1;

	(void)state;
	memset(&f, 0, sizeof(f));
	f.rc = it_redis_connect(it_redis_port());
	it_flush(f.rc);
	r = redisCommand(f.rc, "XADD %s * n 1", STREAM);
	assert_non_null(r);
	assert_int_equal(r->type, REDIS_REPLY_STRING);
	snprintf(f.entry, sizeof(f.entry), "%s", r->str);
	freeReplyObject(r);
	assert_non_null(f.base = event_base_new());
	assert_non_null(f.fail = evtimer_new(f.base, on_fail, &f));
	assert_non_null(f.stop = evtimer_new(f.base, on_stop, &f));
	assert_non_null(f.g = greader_new(f.base, &rcfg, &gc, on_batch, gate, &f));
	evtimer_add(f.stop, &limit);
	event_base_dispatch(f.base);

	if (f.busy_pid > 0)
		waitpid(f.busy_pid, &status, 0);
	greader_free(f.g);
	event_free(f.fail);
	event_free(f.stop);
	event_base_free(f.base);
	redisFree(f.rc);
	/* The busy loop really held Redis (else the test proved nothing). */
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(f.seen, 3);
	assert_true(f.done);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reread_during_pending_read_is_kept),
	};

	log_set_level(LOG_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
