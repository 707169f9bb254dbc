/*
 * rconn.c: an asynchronous Redis connection with deadlines and reconnects (stage: all
 * Redis I/O).
 *
 * Every command carries a struct rconn_cmd that owns its evtimer. Whichever comes
 * first, the reply or the deadline, runs the user callback; the other only frees.
 *
 * Redis answers in order, so a command's deadline counts from when it reaches the
 * head of the queue of commands awaiting a reply (when the reply before it arrived),
 * not from when it was queued: a long pipeline of plan chunks cannot time out just
 * for being long, and only the head's timer is armed. When the head's deadline
 * passes, our own part is ruled out first (rconn_excused): bytes waiting to be read,
 * a command not yet written, or a timer that fired late because our loop was held,
 * and the deadline starts again (a few times at most). Only a server silent for the
 * deadline drops the connection (a stuck connection answers nothing in order), and
 * hiredis then runs every pending callback with NULL. Never
 * blocks the loop; never calls redisAsyncFree from inside a hiredis callback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libevent.h>

#include "clock.h"
#include "log.h"
#include "rconn.h"
#include "rconn_int.h"
#include "sentinel.h"

#define RCONN_REARMS_MAX 4         /* deadlines a command may start again */
#define RCONN_LATE_MS 20           /* a timer this late: our loop was held */

struct rconn_cmd {
	struct rconn *rc;
	rconn_reply_fn *cb;
	void *arg;
	struct event *timer;
	long timeout_ms;
	int64_t armed_ms;          /* monotonic: when its deadline started */
	int rearms;                /* deadlines started again (RCONN_REARMS_MAX) */
	int done;                  /* cb has run */
	int hiredis_owns;          /* hiredis will still call rconn_on_reply */
	struct rconn_cmd *next, *prev;
};

/* One resolution of the host name; outlives the rconn when freed with it pending
 * (the callback then only frees it). */
struct rconn_lookup {
	struct rconn *rc;          /* NULL once the rconn gave it up */
	struct evdns_getaddrinfo_request *req;
};

static void rconn_connect(struct rconn *rc);
static void rconn_connect_addr(struct rconn *rc);

static void
rconn_tv(struct timeval *tv, long ms)
{
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

void
rconn_schedule_reconnect(struct rconn *rc)
{
	struct timeval tv;
	long jitter;

	rc->ready = 0;
	if (rc->closed)
		return;
	/* Backoff with jitter so that many notifiers do not reconnect in step. */
	jitter = rc->backoff_ms / 2 > 0 ? random() % (rc->backoff_ms / 2 + 1) : 0;
	rconn_tv(&tv, rc->backoff_ms / 2 + jitter + 1);
	evtimer_add(rc->retry_timer, &tv);
	rc->backoff_ms *= 2;
	if (rc->backoff_ms > rc->reconnect_max_ms)
		rc->backoff_ms = rc->reconnect_max_ms;
}

/* Frees the hiredis context now; pending callbacks run with NULL. */
void
rconn_drop(struct rconn *rc)
{
	redisAsyncContext *ac = rc->ac;

	if (rc->connect_timer != NULL)    /* NULL: made for a cluster, or not yet */
		evtimer_del(rc->connect_timer);
	if (rc->lookup != NULL) {
		struct rconn_lookup *lk = rc->lookup;

		rc->lookup = NULL;
		lk->rc = NULL;
		if (lk->req != NULL)
			evdns_getaddrinfo_cancel(lk->req);   /* its callback frees lk */
	}
	if (ac == NULL)
		return;
	rc->ac = NULL;
	rc->ready = 0;
	ac->data = NULL;           /* the disconnect callback must not touch rc */
	redisAsyncFree(ac);
}

static void
rconn_on_drop_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *rc = arg;

	(void)fd;
	(void)what;
	if (rc->ac == NULL)
		return;
	log_warnx("redis=%s event=drop reason=\"%s\"", rc->name, rc->drop_why);
	rc->drops++;
	rconn_drop(rc);
	rconn_schedule_reconnect(rc);
}

void
rconn_reset(struct rconn *rc, const char *why)
{
	if (rc->cl != NULL) {
		rconn_cluster_reset(rc);   /* the map read again; nodes keep their own */
		return;
	}
	struct timeval tv = { 0, 0 };

	if (rc->closed)
		return;
	snprintf(rc->drop_why, sizeof(rc->drop_why), "%s", why);
	rc->ready = 0;
	/* Deferred: we may be inside a hiredis callback. */
	evtimer_add(rc->drop_timer, &tv);
}

static void
rconn_on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rconn_connect(arg);
}

static void
rconn_on_connect_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *rc = arg;

	(void)fd;
	(void)what;
	log_warnx("redis=%s event=connect_timeout addr=%s:%d after_ms=%ld", rc->name,
	    rc->host, rc->port, rc->connect_timeout_ms);
	rconn_drop(rc);
	rconn_schedule_reconnect(rc);
}

void
rconn_became_ready(struct rconn *rc)
{
	rc->ready = 1;
	rc->generation++;
	rc->backoff_ms = RCONN_BACKOFF_MIN_MS;
	log_info("redis=%s event=connected host=%s addr=%s:%d generation=%lu", rc->name,
	    rc->host, rc->addr, rc->port, rc->generation);
	if (rc->on_ready != NULL)
		rc->on_ready(rc, rc->arg);
}

static void
rconn_on_auth(struct rconn *rc, struct redisReply *reply, void *arg)
{
	(void)arg;
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		log_warnx("redis=%s event=auth_failed addr=%s:%d user=%s err=\"%s\"",
		    rc->name, rc->addr, rc->port, rc->username ? rc->username : "default",
		    reply ? reply->str : "no reply");
		rconn_reset(rc, "auth failed");
		return;
	}
	rconn_handshake(rc);
}

static void
rconn_on_connect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;

	if (rc == NULL)
		return;
	evtimer_del(rc->connect_timer);
	if (status != REDIS_OK) {
		log_warnx("redis=%s event=connect_failed addr=%s:%d err=\"%s\"", rc->name,
		    rc->addr, rc->port, ac->errstr);
		/* hiredis frees the context itself after a failed connect. */
		rc->ac = NULL;
		rconn_schedule_reconnect(rc);
		return;
	}
	if (rc->password != NULL) {
		int sent;

		/* The connection is usable for AUTH before it is "ready". */
		rc->ready = 1;
		if (rc->username != NULL)
			sent = rconn_cmd(rc, rconn_on_auth, NULL, 0, "AUTH %s %s", rc->username,
			    rc->password);
		else
			sent = rconn_cmd(rc, rconn_on_auth, NULL, 0, "AUTH %s", rc->password);
		if (sent < 0)
			rconn_reset(rc, "auth send failed");
		rc->ready = 0;
		return;
	}
	rconn_handshake(rc);
}

static void
rconn_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rconn *rc = ac->data;

	if (rc == NULL)
		return;       /* we freed it ourselves */
	rc->ac = NULL;     /* hiredis frees the context after this callback */
	rc->ready = 0;
	log_warnx("redis=%s event=disconnected err=\"%s\"", rc->name,
	    status == REDIS_OK ? "closed" : ac->errstr);
	rconn_schedule_reconnect(rc);
}

/* evdns_getaddrinfo_cb: the first IPv4 address of the name, else the first IPv6. */
static void
rconn_on_lookup(int result, struct evutil_addrinfo *res, void *arg)
{
	struct rconn_lookup *lk = arg;
	struct rconn *rc = lk->rc;
	struct evutil_addrinfo *a, *pick = NULL;

	if (rc == NULL) {          /* given up: dropped or freed meanwhile */
		if (res != NULL)
			evutil_freeaddrinfo(res);
		free(lk);
		return;
	}
	rc->lookup = NULL;
	free(lk);
	for (a = res; result == 0 && a != NULL; a = a->ai_next) {
		if (a->ai_family == AF_INET) {
			pick = a;
			break;
		}
		if (a->ai_family == AF_INET6 && pick == NULL)
			pick = a;
	}
	if (pick == NULL || evutil_inet_ntop(pick->ai_family, pick->ai_family == AF_INET ?
	    (const void *)&((struct sockaddr_in *)(void *)pick->ai_addr)->sin_addr :
	    (const void *)&((struct sockaddr_in6 *)(void *)pick->ai_addr)->sin6_addr,
	    rc->addr, sizeof(rc->addr)) == NULL) {
		evtimer_del(rc->connect_timer);
		log_warnx("redis=%s event=resolve_failed host=%s err=\"%s\"", rc->name,
		    rc->host, result != 0 ? evutil_gai_strerror(result) : "no address");
		if (res != NULL)
			evutil_freeaddrinfo(res);
		rconn_schedule_reconnect(rc);
		return;
	}
	evutil_freeaddrinfo(res);
	rconn_connect_addr(rc);
}

/*
 * Connects to host: at once when it is an IP address, else after resolving the name
 * again (every reconnect), without blocking the loop. The connect deadline covers
 * both.
 */
static void
rconn_connect(struct rconn *rc)
{
	struct evdns_getaddrinfo_request *req;
	struct evutil_addrinfo hints;
	struct rconn_lookup *lk;
	struct timeval tv;

	if (rc->sentinel != NULL && rconn_locate(rc) < 0) {
		rconn_schedule_reconnect(rc);
		return;
	}
	if (rc->dns == NULL || (rc->sentinel != NULL && rconn_is_ip(rc->host))) {
		rconn_connect_addr(rc);
		return;
	}
	if ((lk = calloc(1, sizeof(*lk))) == NULL) {
		rconn_schedule_reconnect(rc);
		return;
	}
	lk->rc = rc;
	rc->lookup = lk;
	rconn_tv(&tv, rc->connect_timeout_ms);
	evtimer_add(rc->connect_timer, &tv);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_protocol = IPPROTO_TCP;
	/* NULL when it answered at once: the callback has run and freed lk. */
	req = evdns_getaddrinfo(rc->dns, rc->host, NULL, &hints, rconn_on_lookup, lk);
	if (req != NULL)
		lk->req = req;
}

static void
rconn_connect_addr(struct rconn *rc)
{
	struct timeval tv;
	redisAsyncContext *ac;

	ac = redisAsyncConnect(rc->addr, rc->port);
	if (ac == NULL || ac->err) {
		log_warnx("redis=%s event=connect_failed addr=%s:%d err=\"%s\"", rc->name,
		    rc->addr, rc->port, ac ? ac->errstr : "out of memory");
		if (ac != NULL)
			redisAsyncFree(ac);
		evtimer_del(rc->connect_timer);
		rconn_schedule_reconnect(rc);
		return;
	}
	ac->data = rc;
	if (redisLibeventAttach(ac, rc->base) != REDIS_OK) {
		redisAsyncFree(ac);
		evtimer_del(rc->connect_timer);
		rconn_schedule_reconnect(rc);
		return;
	}
	redisAsyncSetConnectCallback(ac, rconn_on_connect);
	redisAsyncSetDisconnectCallback(ac, rconn_on_disconnect);
	rc->ac = ac;
	/* One deadline for the name's resolution and the connect together: armed by
	 * rconn_connect when there was a name to resolve. */
	if (!evtimer_pending(rc->connect_timer, NULL)) {
		rconn_tv(&tv, rc->connect_timeout_ms);
		evtimer_add(rc->connect_timer, &tv);
	}
}

/* 1 when host is an IPv4 or IPv6 address (nothing to resolve). */
int
rconn_is_ip(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

struct rconn *
rconn_new(struct event_base *base, const struct rconn_config *cfg, const char *name,
    rconn_ready_fn *ready, void *arg)
{
	struct rconn *rc;

	if ((rc = calloc(1, sizeof(*rc))) == NULL)
		return NULL;
	rc->base = base;
	rc->port = cfg->port;
	rc->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 1000;
	rc->command_timeout_ms = cfg->command_timeout_ms > 0 ? cfg->command_timeout_ms : 2000;
	rc->reconnect_max_ms = cfg->reconnect_max_ms > 0 ? cfg->reconnect_max_ms : 5000;
	rc->backoff_ms = RCONN_BACKOFF_MIN_MS;
	rc->on_ready = ready;
	rc->arg = arg;
	snprintf(rc->name, sizeof(rc->name), "%s", name);
	if (cfg->cluster != NULL) {
		/* One client of its own per rconn, routing every command (rconn_cluster.c). */
		if (cfg->password != NULL && (rc->password = strdup(cfg->password)) == NULL)
			goto err;
		if ((rc->host = strdup("")) == NULL || rconn_cluster_new(rc, cfg) < 0)
			goto err;
		return rc;
	}
	rc->sentinel = cfg->sentinel;
	if ((rc->host = strdup(cfg->sentinel != NULL ? "" : cfg->host)) == NULL)
		goto err;
	if (cfg->password != NULL && (rc->password = strdup(cfg->password)) == NULL)
		goto err;
	if (cfg->username != NULL && (rc->username = strdup(cfg->username)) == NULL)
		goto err;
	if (cfg->sentinel != NULL) {
		if (sentinel_watch(cfg->sentinel, rc) < 0)
			goto err;
	} else if (rconn_is_ip(cfg->host)) {
		snprintf(rc->addr, sizeof(rc->addr), "%s", cfg->host);
	} else if ((rc->dns = evdns_base_new(base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL) {
		log_errorx("redis=%s event=resolver_failed host=%s err=\"cannot set up the "
		    "resolver (/etc/resolv.conf)\"", name, cfg->host);
		goto err;
	}
	rc->connect_timer = evtimer_new(base, rconn_on_connect_timer, rc);
	rc->retry_timer = evtimer_new(base, rconn_on_retry_timer, rc);
	rc->drop_timer = evtimer_new(base, rconn_on_drop_timer, rc);
	if (!rc->connect_timer || !rc->retry_timer || !rc->drop_timer)
		goto err;
	rconn_connect(rc);
	return rc;
err:
	rconn_free(rc);
	return NULL;
}

void
rconn_free(struct rconn *rc)
{
	if (rc == NULL)
		return;
	if (rc->cl != NULL)
		rconn_cluster_free(rc);   /* a cluster's rconn has no connection of its own */
	else
		rconn_drop(rc);
	if (rc->sentinel != NULL)
		sentinel_unwatch(rc->sentinel, rc);
	if (rc->connect_timer)
		event_free(rc->connect_timer);
	if (rc->retry_timer)
		event_free(rc->retry_timer);
	if (rc->drop_timer)
		event_free(rc->drop_timer);
	if (rc->dns != NULL)
		evdns_base_free(rc->dns, 1);
	free(rc->host);
	free(rc->username);
	if (rc->password != NULL) {
		explicit_bzero(rc->password, strlen(rc->password));
		free(rc->password);
	}
	free(rc);
}

void
rconn_close(struct rconn *rc)
{
	if (rc == NULL || rc->closed)
		return;
	rc->closed = 1;
	if (rc->retry_timer)
		evtimer_del(rc->retry_timer);
	if (rc->drop_timer)
		evtimer_del(rc->drop_timer);
	if (rc->cl != NULL)
		rconn_cluster_free(rc);   /* leaves rc->cl NULL: later sends are refused */
	else
		rconn_drop(rc);
}

int
rconn_is_ready(const struct rconn *rc)
{
	if (rc == NULL || rc->closed)
		return 0;
	if (rc->cl != NULL)
		return rconn_cluster_ready(rc);
	return rc != NULL && rc->ready && rc->ac != NULL;
}

int
rconn_last_slot(const struct rconn *rc)
{
	return rc->cl != NULL ? rc->last_slot : -1;
}

int
rconn_argv_here(struct rconn *rc, rconn_reply_fn *cb, void *arg, long timeout_ms,
    int argc, const char **argv, const size_t *argvlen)
{
	if (rc->cl == NULL)
		return rconn_argv(rc, cb, arg, timeout_ms, argc, argv, argvlen);
	return rconn_cluster_argv_here(rc, cb, arg, timeout_ms, argc, argv, argvlen);
}

int
rconn_argv_slot(struct rconn *rc, int slot, rconn_reply_fn *cb, void *arg,
    long timeout_ms, int argc, const char **argv, const size_t *argvlen)
{
	if (rc->cl == NULL)
		return rconn_argv(rc, cb, arg, timeout_ms, argc, argv, argvlen);
	if (!rconn_is_ready(rc))
		return -1;
	return rconn_cluster_argv(rc, slot, cb, arg, timeout_ms, argc, argv, argvlen);
}

long
rconn_timeout_ms(const struct rconn *rc)
{
	return rc->command_timeout_ms;
}

unsigned long
rconn_generation(const struct rconn *rc)
{
	return rc->generation;
}

static void
rconn_cmd_free(struct rconn_cmd *c)
{
	if (c->timer != NULL)
		event_free(c->timer);
	free(c);
}

/* Starts the deadline of the command now at the head of the queue. */
static void
rconn_arm_head(struct rconn *rc)
{
	struct rconn_cmd *c = rc->head;
	struct timeval tv;

	if (c == NULL || c->done || rc->ac == NULL)
		return;
	c->armed_ms = clock_mono_ms();
	rconn_tv(&tv, c->timeout_ms);
	evtimer_add(c->timer, &tv);
}

static void
rconn_unlink(struct rconn_cmd *c)
{
	struct rconn *rc = c->rc;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else if (rc->head == c)
		rc->head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else if (rc->tail == c)
		rc->tail = c->prev;
	c->next = c->prev = NULL;
}

/* hiredis' reply callback: runs once per command, with NULL on disconnect/free. */
static void
rconn_on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
	struct rconn_cmd *c = privdata;
	struct rconn *rc = c->rc;
	int was_head = rc->head == c;

	(void)ac;
	c->hiredis_owns = 0;
	rconn_unlink(c);
	if (!c->done) {
		c->done = 1;
		evtimer_del(c->timer);
		if (c->cb != NULL)
			c->cb(rc, r, c->arg);
	}
	rconn_cmd_free(c);
	if (was_head && r != NULL)
		rconn_arm_head(rc);
}

/* Bytes the server has sent that the loop has not read yet; 0 when unknown. */
static int
rconn_unread(const struct rconn *rc)
{
	int n = 0;

	if (rc->ac == NULL || rc->ac->c.fd < 0 || ioctl(rc->ac->c.fd, FIONREAD, &n) < 0)
		return 0;
	return n;
}

/* 1 when commands are still in hiredis' output buffer, not yet written (an sds
 * string, empty once written; a command never starts with a NUL byte). */
static int
rconn_unsent(const struct rconn *rc)
{
	return rc->ac != NULL && rc->ac->c.obuf != NULL && rc->ac->c.obuf[0] != '\0';
}

/*
 * Whether a passed deadline is our fault rather than the server's: the answer is
 * waiting to be read, the command was not even written yet, or the timer itself ran
 * late because our loop was held (a long callback, the process descheduled), so the
 * command may have been written late too. A few times per command at most: a server
 * that never answers still times out.
 */
static int
rconn_excused(const struct rconn_cmd *c)
{
	const struct rconn *rc = c->rc;
	int64_t late = clock_mono_ms() - c->armed_ms - c->timeout_ms;

	if (c->rearms >= RCONN_REARMS_MAX)
		return 0;
	return rconn_unread(rc) > 0 || rconn_unsent(rc) ||
	    late > (c->timeout_ms / 4 > RCONN_LATE_MS ? c->timeout_ms / 4 : RCONN_LATE_MS);
}

static void
rconn_on_cmd_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rconn_cmd *c = arg;
	struct rconn *rc = c->rc;

	(void)fd;
	(void)what;
	if (rconn_excused(c)) {
		c->rearms++;
		rconn_arm_head(rc);
		return;
	}
	c->done = 1;
	rc->timeouts++;
	log_warnx("redis=%s event=command_timeout after_ms=%ld", rc->name, c->timeout_ms);
	/* Reset first, so that a command the callback sends waits for the reconnect.
	 * hiredis still holds c; it is freed when the dropped connection flushes it. */
	rconn_reset(rc, "command timeout");
	if (c->cb != NULL)
		c->cb(rc, NULL, c->arg);
}

static struct rconn_cmd *
rconn_cmd_new(struct rconn *rc, rconn_reply_fn *cb, void *arg, long timeout_ms)
{
	struct rconn_cmd *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->rc = rc;
	c->cb = cb;
	c->arg = arg;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : rc->command_timeout_ms;
	if ((c->timer = evtimer_new(rc->base, rconn_on_cmd_timer, c)) == NULL) {
		free(c);
		return NULL;
	}
	return c;
}

/* The command was handed to hiredis: it joins the queue, and is timed if first. */
static void
rconn_queued(struct rconn *rc, struct rconn_cmd *c)
{
	c->hiredis_owns = 1;
	c->prev = rc->tail;
	if (rc->tail != NULL)
		rc->tail->next = c;
	else
		rc->head = c;
	rc->tail = c;
	if (rc->head == c)
		rconn_arm_head(rc);
}

void
rconn_stats(const struct rconn *rc, struct rconn_stat *st)
{
	const struct rconn_cmd *c;

	memset(st, 0, sizeof(*st));
	if (rc->cl != NULL) {
		rconn_cluster_stats(rc, st);
		return;
	}
	st->ready = rconn_is_ready(rc);
	st->generation = rc->generation;
	st->timeouts = rc->timeouts;
	st->drops = rc->drops;
	snprintf(st->addr, sizeof(st->addr), "%s", rc->addr);
	for (c = rc->head; c != NULL; c = c->next)
		st->waiting++;
}

int
rconn_argv(struct rconn *rc, rconn_reply_fn *cb, void *arg, long timeout_ms, int argc,
    const char **argv, const size_t *argvlen)
{
	struct rconn_cmd *c;

	if (!rconn_is_ready(rc))
		return -1;
	if (rc->cl != NULL)
		return rconn_cluster_argv(rc, -1, cb, arg, timeout_ms, argc, argv, argvlen);
	if ((c = rconn_cmd_new(rc, cb, arg, timeout_ms)) == NULL)
		return -1;
	if (redisAsyncCommandArgv(rc->ac, rconn_on_reply, c, argc, argv, argvlen) !=
	    REDIS_OK) {
		rconn_cmd_free(c);
		return -1;
	}
	rconn_queued(rc, c);
	return 0;
}

int
rconn_formatted(struct rconn *rc, rconn_reply_fn *cb, void *arg, long timeout_ms,
    const char *cmd, size_t len)
{
	struct rconn_cmd *c;

	if (!rconn_is_ready(rc))
		return -1;
	if (rc->cl != NULL)
		return rconn_cluster_formatted(rc, cb, arg, timeout_ms, cmd, len);
	if ((c = rconn_cmd_new(rc, cb, arg, timeout_ms)) == NULL)
		return -1;
	if (redisAsyncFormattedCommand(rc->ac, rconn_on_reply, c, cmd, len) != REDIS_OK) {
		rconn_cmd_free(c);
		return -1;
	}
	rconn_queued(rc, c);
	return 0;
}

int
rconn_cmd(struct rconn *rc, rconn_reply_fn *cb, void *arg, long timeout_ms,
    const char *fmt, ...)
{
	struct rconn_cmd *c;
	va_list ap;
	int r;

	if (!rconn_is_ready(rc))
		return -1;
	if (rc->cl != NULL) {
		char *cmd;
		int len;

		va_start(ap, fmt);
		len = redisvFormatCommand(&cmd, fmt, ap);
		va_end(ap);
		if (len < 0)
			return -1;
		r = rconn_cluster_formatted(rc, cb, arg, timeout_ms, cmd, (size_t)len);
		redisFreeCommand(cmd);
		return r;
	}
	if ((c = rconn_cmd_new(rc, cb, arg, timeout_ms)) == NULL)
		return -1;
	va_start(ap, fmt);
	r = redisvAsyncCommand(rc->ac, rconn_on_reply, c, fmt, ap);
	va_end(ap);
	if (r != REDIS_OK) {
		rconn_cmd_free(c);
		return -1;
	}
	rconn_queued(rc, c);
	return 0;
}
