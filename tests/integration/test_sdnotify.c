/*
 * test_sdnotify.c: the service manager's messages (notifier/sdnotify.c, main.c),
 * heard on a NOTIFY_SOCKET the test binds, as systemd would for a Type=notify unit.
 *
 * READY=1 comes once and only when the daemon is ready (/healthz answers 200, both
 * consumer groups exist): not while Redis is down, even though the loop runs and
 * pings the watchdog. WATCHDOG=1 comes at half of WATCHDOG_USEC, only to the
 * process WATCHDOG_PID names. A socket that is gone never stops the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "itest.h"

struct heard {
	int ready, watchdog, stopping, other;
	int healthz_at_ready;       /* /healthz status the moment READY=1 was read */
	int groups_at_ready;        /* both groups existed then */
};

struct sdn {
	int fd;
	char path[108];             /* "@name" for an abstract socket */
	int http_port;
	int redis_port;
	struct heard h;
	struct it_proc nt;
};

/* Binds a datagram socket at s->path (a file, or abstract when it starts '@'). */
static void
sdn_bind(struct sdn *s)
{
	struct sockaddr_un sa;
	socklen_t len;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->path);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(s->path) + 1);
	if (s->path[0] == '@') {
		sa.sun_path[0] = '\0';
		len--;
	} else {
		unlink(s->path);
	}
	s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(s->fd >= 0);
	assert_int_equal(bind(s->fd, (struct sockaddr *)&sa, len), 0);
}

static int
groups_exist(int port)
{
	redisContext *rc = it_redis_connect(port);
	redisReply *r;
	int found = 0;
	size_t i, k;
	const char *streams[2] = { "deals", "pushes" }, *groups[2] = { "notifier", "deliver" };

	for (i = 0; i < 2; i++) {
		r = redisCommand(rc, "XINFO GROUPS %s", streams[i]);
		for (k = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && k < r->elements; k++)
			if (r->element[k]->type == REDIS_REPLY_ARRAY &&
			    r->element[k]->elements >= 2 &&
			    r->element[k]->element[1]->type == REDIS_REPLY_STRING &&
			    strcmp(r->element[k]->element[1]->str, groups[i]) == 0)
				found++;
		freeReplyObject(r);
	}
	redisFree(rc);
	return found == 2;
}

/* Reads every datagram for ms milliseconds; counts each kind of message. */
static void
sdn_listen(struct sdn *s, long ms)
{
	int64_t end = clock_mono_ms() + ms;
	char buf[512], body[2048];
	struct pollfd pfd;
	ssize_t n;

	pfd.fd = s->fd;
	pfd.events = POLLIN;
	while (clock_mono_ms() < end) {
		if (poll(&pfd, 1, (int)(end - clock_mono_ms())) <= 0)
			continue;
		while ((n = recv(s->fd, buf, sizeof(buf) - 1, 0)) > 0) {
			buf[n] = '\0';
			if (strncmp(buf, "READY=1", 7) == 0) {
				/* Before anything else: is it really ready now? */
				s->h.healthz_at_ready = it_http_get(s->http_port, "/healthz",
				    body, sizeof(body));
				s->h.groups_at_ready = groups_exist(s->redis_port);
				s->h.ready++;
			} else if (strcmp(buf, "WATCHDOG=1") == 0) {
				s->h.watchdog++;
			} else if (strcmp(buf, "STOPPING=1") == 0) {
				s->h.stopping++;
			} else {
				s->h.other++;
			}
		}
	}
}

static int
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Starts the notifier on redis port with NOTIFY_SOCKET = s->path and the extra
 * environment; waits for its HTTP port. */
static void
sdn_start(struct sdn *s, const char *const *extra_env)
{
	char conf[512], portfile[512], bin[512], sock[160], text[1024];
	const char *argv[4], *env[8];
	FILE *f;
	int i, k = 0;

	it_path(conf, sizeof(conf), "sdnotify", ".conf");
	it_path(portfile, sizeof(portfile), "sdnotify", ".port");
	snprintf(text, sizeof(text), "[notifier]\nconsumer = sdn\n[redis]\nport = %d\n"
	    "connect_timeout_ms = 200\nreconnect_max_ms = 200\n[ingest]\nblock_ms = 200\n"
	    "[http]\nport = 0\nport_file = %s\n", s->redis_port, portfile);
	f = fopen(conf, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	snprintf(bin, sizeof(bin), "%s/notifier", it_build());
	snprintf(sock, sizeof(sock), "NOTIFY_SOCKET=%s", s->path);
	argv[0] = bin;
	argv[1] = "-c";
	argv[2] = conf;
	argv[3] = NULL;
	env[k++] = sock;
	for (; extra_env != NULL && *extra_env != NULL && k < 7; extra_env++)
		env[k++] = *extra_env;
	env[k] = NULL;
	assert_int_equal(it_spawn(&s->nt, argv, env), 0);
	s->http_port = 0;
	for (i = 0; i < 400 && s->http_port <= 0; i++) {
		usleep(25000);
		if ((f = fopen(portfile, "r")) != NULL) {
			if (fscanf(f, "%d", &s->http_port) != 1)
				s->http_port = 0;
			fclose(f);
		}
	}
	assert_true(s->http_port > 0);
}

static void
ready_comes_once_only_when_ready_and_the_watchdog_pings_meanwhile(void **state)
{
	struct sdn s;
	struct it_proc redis;
	const char *env[] = { "WATCHDOG_USEC=400000", NULL };
	char dir[512], body[2048];
	int watchdog_before;

	(void)state;
	memset(&s, 0, sizeof(s));
	it_path(s.path, sizeof(s.path), "notify", ".sock");
	sdn_bind(&s);
	/* Redis is not there yet: the mirror cannot load, the groups cannot exist. */
	s.redis_port = free_port();
	sdn_start(&s, env);
	sdn_listen(&s, 1500);
	assert_int_equal(s.h.ready, 0);
	assert_int_not_equal(it_http_get(s.http_port, "/healthz", body, sizeof(body)), 200);
	/* Every 200 ms, from the loop, ready or not: about 7 in 1.5 s. */
	assert_in_range(s.h.watchdog, 4, 10);

	it_path(dir, sizeof(dir), "sdnotify-redis", "");
	assert_int_equal(it_redis_start(&redis, dir, s.redis_port, 0), s.redis_port);
	watchdog_before = s.h.watchdog;
	sdn_listen(&s, 5000);
	assert_int_equal(s.h.ready, 1);
	assert_int_equal(s.h.healthz_at_ready, 200);
	assert_true(s.h.groups_at_ready);
	assert_true(s.h.watchdog - watchdog_before >= 15);
	assert_int_equal(s.h.other, 0);

	assert_int_equal(it_stop_clean(&s.nt), 0);
	sdn_listen(&s, 100);
	assert_int_equal(s.h.stopping, 1);
	assert_int_equal(s.h.ready, 1);          /* once, never again */
	it_stop(&redis, SIGTERM, 2000);
	close(s.fd);
	unlink(s.path);
}

static void
abstract_socket_and_no_watchdog_for_another_pid(void **state)
{
	struct sdn s;
	const char *env[] = { "WATCHDOG_USEC=100000", "WATCHDOG_PID=1", NULL };
	redisContext *rc;

	(void)state;
	memset(&s, 0, sizeof(s));
	snprintf(s.path, sizeof(s.path), "@dealpush-test-%d", (int)getpid());
	sdn_bind(&s);
	s.redis_port = it_redis_port();
	rc = it_redis_connect(s.redis_port);
	it_flush(rc);
	redisFree(rc);
	sdn_start(&s, env);
	sdn_listen(&s, 3000);
	assert_int_equal(s.h.ready, 1);
	assert_int_equal(s.h.healthz_at_ready, 200);
	assert_int_equal(s.h.watchdog, 0);       /* WATCHDOG_PID is not ours */
	assert_int_equal(it_stop_clean(&s.nt), 0);
	close(s.fd);
}

static void
a_socket_that_is_gone_never_stops_the_daemon(void **state)
{
	struct sdn s;
	const char *env[] = { "WATCHDOG_USEC=100000", NULL };
	char body[2048];
	int i, status = 0;

	(void)state;
	memset(&s, 0, sizeof(s));
	it_path(s.path, sizeof(s.path), "nobody-listens", ".sock");
	s.fd = -1;
	s.redis_port = it_redis_port();
	sdn_start(&s, env);
	for (i = 0; i < 100 && status != 200; i++) {
		usleep(50000);
		status = it_http_get(s.http_port, "/healthz", body, sizeof(body));
	}
	assert_int_equal(status, 200);
	usleep(300000);                          /* a few failed pings */
	assert_int_equal(it_http_get(s.http_port, "/healthz", body, sizeof(body)), 200);
	assert_int_equal(it_stop_clean(&s.nt), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ready_comes_once_only_when_ready_and_the_watchdog_pings_meanwhile),
		cmocka_unit_test(abstract_socket_and_no_watchdog_for_another_pid),
		cmocka_unit_test(a_socket_that_is_gone_never_stops_the_daemon),
	};

	return cmocka_run_group_tests_name("sdnotify", tests, NULL, NULL);
}
