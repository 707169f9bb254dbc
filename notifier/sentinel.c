/*
 * sentinel.c: finds the Redis primary through Redis Sentinel and follows it across
 * failovers (stage: all Redis I/O).
 *
 * Two connections to sentinels: one asks SENTINEL GET-MASTER-ADDR-BY-NAME every
 * SENTINEL_TICK_MS (and at once when a connection asks again), the other is
 * subscribed to +switch-master. A connection that is not up within the connect
 * timeout, or a sentinel that does not know the master or answers an error, is left
 * for the next sentinel of the list, round-robin: any sentinel that answers will do.
 * The address learned is only a hint: every rconn confirms it with ROLE before using
 * the connection (rconn.c). When the address changes, every watching rconn is moved
 * (rconn_moved). Never blocks the loop; never frees an rconn from its own callback.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "log.h"
#include "rconn.h"
#include "sentinel.h"

#define SENTINEL_TICK_MS 1000
#define SENTINEL_MASTER_MAX 128

/* One connection to a sentinel: the asking one or the subscribed one. */
struct sentinel_link {
	struct sentinel *s;
	struct rconn *rc;
	size_t at;                 /* index of its sentinel in addrs */
	int64_t since_ms;          /* monotonic, when it was created */
	int busy;                  /* a question awaits its answer */
	int give_up;               /* move to the next sentinel at the next tick */
	const char *what;          /* "query" or "subscribe", for logs */
};

struct sentinel {
	struct event_base *base;
	struct sentinel_addr addrs[SENTINEL_MAX];
	size_t n;
	size_t next;               /* the sentinel the next link goes to */
	char master[SENTINEL_MASTER_MAX];
	struct rconn_config cfg;   /* timeouts for the links */
	struct sentinel_link query, sub;
	struct event *tick;
	int known;
	char host[SENTINEL_HOST_MAX];
	int port;
	unsigned long switches;
	struct rconn **watch;
	size_t nwatch, capwatch;
};

static void sentinel_link_start(struct sentinel *s, struct sentinel_link *l);

/* One entry "host:port" or "[v6]:port" into a; 0 or -1 with err. */
static int
sentinel_parse_one(const char *e, size_t len, struct sentinel_addr *a, char *err,
    size_t errlen)
{
	const char *colon, *hs = e, *he;
	char port[8], *end;
	long p;

	if (len > 0 && e[0] == '[') {
		if ((he = memchr(e, ']', len)) == NULL || he + 1 >= e + len || he[1] != ':') {
			snprintf(err, errlen, "'%.*s': an IPv6 address is written [addr]:port",
			    (int)len, e);
			return -1;
		}
		hs = e + 1;
		colon = he + 1;
	} else {
		for (colon = e + len; colon > e && colon[-1] != ':'; colon--)
			;
		if (colon == e) {
			snprintf(err, errlen, "'%.*s' has no port (host:port)", (int)len, e);
			return -1;
		}
		colon--;
		he = colon;
		if (memchr(e, ':', (size_t)(colon - e)) != NULL) {
			snprintf(err, errlen, "'%.*s': an IPv6 address is written [addr]:port",
			    (int)len, e);
			return -1;
		}
	}
	if (he == hs || (size_t)(he - hs) >= sizeof(a->host)) {
		snprintf(err, errlen, "'%.*s' has no host (host:port)", (int)len, e);
		return -1;
	}
	memcpy(a->host, hs, (size_t)(he - hs));
	a->host[he - hs] = '\0';
	len -= (size_t)(colon + 1 - e);
	if (len == 0 || len >= sizeof(port)) {
		snprintf(err, errlen, "'%s': the port must be 1 to 65535", a->host);
		return -1;
	}
	memcpy(port, colon + 1, len);
	port[len] = '\0';
	errno = 0;
	p = strtol(port, &end, 10);
	if (errno != 0 || *end != '\0' || !isdigit((unsigned char)port[0]) || p < 1 ||
	    p > 65535) {
		snprintf(err, errlen, "'%s:%s': the port must be 1 to 65535", a->host, port);
		return -1;
	}
	a->port = (int)p;
	return 0;
}

int
sentinel_parse(const char *list, struct sentinel_addr *out, size_t max, char *err,
    size_t errlen)
{
	const char *p = list, *e, *b;
	size_t n = 0, len;

	for (;;) {
		e = strchr(p, ',');
		len = e != NULL ? (size_t)(e - p) : strlen(p);
		for (b = p; len > 0 && isspace((unsigned char)*b); b++, len--)
			;
		while (len > 0 && isspace((unsigned char)b[len - 1]))
			len--;
		if (len == 0) {
			snprintf(err, errlen, "entry %zu is empty (host:port,host:port,...)",
			    n + 1);
			return -1;
		}
		if (n == max) {
			snprintf(err, errlen, "more than %zu sentinels", max);
			return -1;
		}
		if (sentinel_parse_one(b, len, &out[n], err, errlen) < 0)
			return -1;
		n++;
		if (e == NULL)
			return (int)n;
		p = e + 1;
	}
}

/* Moves every watching connection to the primary at host:port (confirmed by each
 * with ROLE when it connects). */
static void
sentinel_set_primary(struct sentinel *s, const char *host, int port, const char *how)
{
	size_t i;

	if (s->known && strcmp(s->host, host) == 0 && s->port == port)
		return;
	if (s->known) {
		s->switches++;
		log_warnx("redis=sentinel event=primary_moved master=%s from=%s:%d to=%s:%d "
		    "via=%s", s->master, s->host, s->port, host, port, how);
	} else {
		log_info("redis=sentinel event=primary_found master=%s addr=%s:%d via=%s",
		    s->master, host, port, how);
	}
	snprintf(s->host, sizeof(s->host), "%s", host);
	s->port = port;
	s->known = 1;
	for (i = 0; i < s->nwatch; i++)
		rconn_moved(s->watch[i]);
}

static void
sentinel_on_addr(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct sentinel_link *l = arg;
	struct sentinel *s = l->s;
	const struct sentinel_addr *a = &s->addrs[l->at];
	char *end;
	long port;

	(void)rc;
	l->busy = 0;
	if (r == NULL)
		return;    /* dropped: the tick moves on if it stays down */
	if (r->type == REDIS_REPLY_NIL || (r->type == REDIS_REPLY_ARRAY &&
	    r->elements == 0)) {
		log_errorx("redis=sentinel event=unknown_master master=%s sentinel=%s:%d "
		    "err=\"this sentinel monitors no master named '%s' (redis.master_name)\"",
		    s->master, a->host, a->port, s->master);
		l->give_up = 1;
		return;
	}
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    r->element[1]->type != REDIS_REPLY_STRING) {
		log_errorx("redis=sentinel event=bad_answer master=%s sentinel=%s:%d err=\"%s\"",
		    s->master, a->host, a->port, r->type == REDIS_REPLY_ERROR ? r->str :
		    "not an address");
		l->give_up = 1;
		return;
	}
	errno = 0;
	port = strtol(r->element[1]->str, &end, 10);
	if (errno != 0 || *end != '\0' || port < 1 || port > 65535 ||
	    r->element[0]->len == 0 || r->element[0]->len >= SENTINEL_HOST_MAX) {
		log_errorx("redis=sentinel event=bad_answer master=%s sentinel=%s:%d "
		    "err=\"not an address\"", s->master, a->host, a->port);
		l->give_up = 1;
		return;
	}
	sentinel_set_primary(s, r->element[0]->str, (int)port, "query");
}

static void
sentinel_ask(struct sentinel *s)
{
	struct sentinel_link *l = &s->query;

	if (l->busy || !rconn_is_ready(l->rc))
		return;
	if (rconn_cmd(l->rc, sentinel_on_addr, l, 0, "SENTINEL GET-MASTER-ADDR-BY-NAME %s",
	    s->master) == 0)
		l->busy = 1;
}

/* A message on +switch-master: "<master> <old ip> <old port> <new ip> <new port>". */
static void
sentinel_on_message(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct sentinel_link *l = arg;
	struct sentinel *s = l->s;
	char name[SENTINEL_MASTER_MAX], oldh[SENTINEL_HOST_MAX], newh[SENTINEL_HOST_MAX];
	int oldp, newp;

	(void)rc;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
	    r->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(r->element[0]->str, "message") != 0 ||
	    r->element[2]->type != REDIS_REPLY_STRING)
		return;
	if (sscanf(r->element[2]->str, "%127s %255s %d %255s %d", name, oldh, &oldp, newh,
	    &newp) != 5 || strcmp(name, s->master) != 0 || newp < 1 || newp > 65535)
		return;
	sentinel_set_primary(s, newh, newp, "switch-master");
}

static void
sentinel_on_link_ready(struct rconn *rc, void *arg)
{
	struct sentinel_link *l = arg;
	struct sentinel *s = l->s;

	l->busy = 0;
	if (l == &s->query) {
		sentinel_ask(s);
		return;
	}
	if (rconn_subscribe(rc, "+switch-master", sentinel_on_message, l) < 0)
		rconn_reset(rc, "subscribe failed");
}

/* A new connection for l to the next sentinel of the list. */
static void
sentinel_link_start(struct sentinel *s, struct sentinel_link *l)
{
	struct rconn_config c = s->cfg;
	char name[24];

	rconn_free(l->rc);
	l->rc = NULL;
	l->busy = 0;
	l->give_up = 0;
	l->at = s->next;
	s->next = (s->next + 1) % s->n;
	l->since_ms = clock_mono_ms();
	c.host = s->addrs[l->at].host;
	c.port = s->addrs[l->at].port;
	snprintf(name, sizeof(name), "sentinel-%s", l->what);
	if ((l->rc = rconn_new(s->base, &c, name, sentinel_on_link_ready, l)) == NULL)
		log_warnx("redis=sentinel event=link_failed sentinel=%s:%d err=\"out of "
		    "memory\"", c.host, c.port);
}

/* A link that gave up, or is not up within the connect timeout, moves on. */
static void
sentinel_link_check(struct sentinel *s, struct sentinel_link *l)
{
	int64_t now = clock_mono_ms();

	if (l->rc != NULL && !l->give_up && (rconn_is_ready(l->rc) ||
	    now - l->since_ms < s->cfg.connect_timeout_ms))
		return;
	if (l->rc != NULL && !l->give_up)
		log_warnx("redis=sentinel event=sentinel_unreachable sentinel=%s:%d link=%s "
		    "action=next_sentinel", s->addrs[l->at].host, s->addrs[l->at].port,
		    l->what);
	sentinel_link_start(s, l);
}

static void
sentinel_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sentinel *s = arg;
	struct timeval tv = { SENTINEL_TICK_MS / 1000, (SENTINEL_TICK_MS % 1000) * 1000 };

	(void)fd;
	(void)what;
	sentinel_link_check(s, &s->query);
	sentinel_link_check(s, &s->sub);
	sentinel_ask(s);
	evtimer_add(s->tick, &tv);
}

void
sentinel_refresh(struct sentinel *s)
{
	sentinel_ask(s);
}

struct sentinel *
sentinel_new(struct event_base *base, const char *list, const char *master,
    const struct rconn_config *cfg)
{
	struct sentinel *s;
	struct timeval tv = { SENTINEL_TICK_MS / 1000, (SENTINEL_TICK_MS % 1000) * 1000 };
	char err[300];
	int n;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->base = base;
	if ((n = sentinel_parse(list, s->addrs, SENTINEL_MAX, err, sizeof(err))) < 0) {
		log_errorx("redis=sentinel event=bad_config key=redis.sentinels err=\"%s\"", err);
		goto err;
	}
	s->n = (size_t)n;
	snprintf(s->master, sizeof(s->master), "%s", master);
	s->cfg = *cfg;
	s->cfg.password = NULL;
	s->cfg.username = NULL;
	s->cfg.sentinel = NULL;
	if (s->cfg.connect_timeout_ms <= 0)
		s->cfg.connect_timeout_ms = 1000;
	s->query.s = s->sub.s = s;
	s->query.what = "query";
	s->sub.what = "subscribe";
	if ((s->tick = evtimer_new(base, sentinel_on_tick, s)) == NULL)
		goto err;
	/* Two sentinels for the two links when there are two: one down costs one. */
	sentinel_link_start(s, &s->query);
	sentinel_link_start(s, &s->sub);
	evtimer_add(s->tick, &tv);
	log_info("redis=sentinel event=start master=%s sentinels=%zu", s->master, s->n);
	return s;
err:
	sentinel_free(s);
	return NULL;
}

void
sentinel_free(struct sentinel *s)
{
	if (s == NULL)
		return;
	if (s->tick != NULL)
		event_free(s->tick);
	rconn_free(s->query.rc);
	rconn_free(s->sub.rc);
	free(s->watch);
	free(s);
}

int
sentinel_primary(const struct sentinel *s, char *host, size_t len, int *port)
{
	if (!s->known)
		return -1;
	snprintf(host, len, "%s", s->host);
	*port = s->port;
	return 0;
}

int
sentinel_watch(struct sentinel *s, struct rconn *rc)
{
	if (s->nwatch == s->capwatch) {
		size_t cap = s->capwatch ? s->capwatch * 2 : 8;
		struct rconn **w = realloc(s->watch, cap * sizeof(*w));

		if (w == NULL)
			return -1;
		s->watch = w;
		s->capwatch = cap;
	}
	s->watch[s->nwatch++] = rc;
	return 0;
}

void
sentinel_unwatch(struct sentinel *s, struct rconn *rc)
{
	size_t i;

	for (i = 0; i < s->nwatch; i++)
		if (s->watch[i] == rc) {
			s->watch[i] = s->watch[--s->nwatch];
			return;
		}
}

void
sentinel_stats(const struct sentinel *s, struct sentinel_stat *st)
{
	memset(st, 0, sizeof(*st));
	st->known = s->known;
	if (s->known)
		snprintf(st->primary, sizeof(st->primary), "%s:%d", s->host, s->port);
	st->switches = s->switches;
	snprintf(st->sentinel, sizeof(st->sentinel), "%s:%d", s->addrs[s->query.at].host,
	    s->addrs[s->query.at].port);
}
