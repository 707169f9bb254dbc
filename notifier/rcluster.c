/*
 * rcluster.c: the minimum Redis Cluster client: routing, redirects, retries (stage:
 * all Redis I/O; the map and its nodes are in rcluster_map.c).
 *
 * A command is copied so it can be sent again. It is in flight (rconn holds it and
 * calls rcl_on_reply once) or waiting in our list on its own timer (no map yet, node
 * reconnecting, a backoff). Bounded: redirects_max MOVED/ASK, retries_max
 * TRYAGAIN/CLUSTERDOWN, one script load. Never runs a user callback inside the call
 * that sent the command, and never frees a node inside its own rconn's callback.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "log.h"
#include "rcluster.h"
#include "rcluster_int.h"
#include "rconn.h"
#include "slot.h"

static void rcl_dispatch(struct rcl_cmd *c);
static void rcl_on_reply(struct rconn *rc, struct redisReply *r, void *arg);

/* ---- waiting commands ---- */

static void
rcl_unwait(struct rcl_cmd *c)
{
	struct rcluster *rcl = c->rcl;

	if (!c->waiting)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		rcl->wait_head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		rcl->wait_tail = c->prev;
	c->next = c->prev = NULL;
	c->waiting = 0;
	rcl->st.waiting--;
	evtimer_del(c->timer);
}

/* Appends c, not in the waiting list, to its tail. */
static void
rcl_wait_append(struct rcluster *rcl, struct rcl_cmd *c)
{
	c->prev = rcl->wait_tail;
	c->next = NULL;
	if (rcl->wait_tail != NULL)
		rcl->wait_tail->next = c;
	else
		rcl->wait_head = c;
	rcl->wait_tail = c;
	c->waiting = 1;
	rcl->st.waiting++;
}

/* Puts c in the waiting list; its timer looks again after delay_ms (or at its
 * deadline, whichever is first). */
static void
rcl_wait(struct rcl_cmd *c, long delay_ms)
{
	struct rcluster *rcl = c->rcl;
	int64_t left = c->give_up_ms - clock_mono_ms();
	struct timeval tv;

	if (!c->waiting)
		rcl_wait_append(rcl, c);
	if (left < delay_ms)
		delay_ms = left > 0 ? (long)left : 0;
	rcl_tv(&tv, delay_ms);
	evtimer_add(c->timer, &tv);
}

/* Finishes c from its timer, never from the call that sent it. */
static void
rcl_fail_soon(struct rcl_cmd *c)
{
	c->fail_now = 1;
	rcl_wait(c, 0);
}

/* Runs c's callback (exactly once) and frees c. */
static void
rcl_finish(struct rcl_cmd *c, redisReply *r)
{
	struct rcluster *rcl = c->rcl;
	struct rcl_each *e = c->each;

	rcl_unwait(c);
	if (e != NULL) {
		if (r == NULL || r->type == REDIS_REPLY_ERROR)
			e->failed++;
		if (e->node_cb != NULL)
			e->node_cb(rcl, c->target, r, e->arg);
		if (--e->left == 0) {
			if (e->done_cb != NULL)
				e->done_cb(rcl, e->nodes, e->failed, e->arg);
			free(e);
		}
	} else if (c->cb != NULL) {
		c->cb(rcl, r, c->arg);
	}
	rcl->reply_addr[0] = '\0';   /* only during the callback */
	event_free(c->timer);
	free(c->argv);
	free(c);
}

static void
rcl_on_cmd_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rcl_cmd *c = arg;
	struct rcluster *rcl = c->rcl;

	(void)fd;
	(void)what;
	rcl_unwait(c);
	if (c->fail_now || clock_mono_ms() >= c->give_up_ms) {
		if (!c->fail_now) {
			rcl->st.expired++;
			log_warnx("redis=%s event=cluster_command_expired slot=%d "
			    "after_ms=%ld", rcl->name, c->slot, c->timeout_ms);
		}
		rcl_finish(c, NULL);
		return;
	}
	rcl_dispatch(c);
}

/* Sends every waiting command that is not in a backoff (a node came up, a new map). */
void
rcl_kick(struct rcluster *rcl)
{
	struct rcl_cmd *list = rcl->wait_head, *c, *next;
	int64_t now = clock_mono_ms();

	if (rcl->freeing)
		return;
	/* Detach the list: rcl_dispatch may put a command back. */
	rcl->wait_head = rcl->wait_tail = NULL;
	for (c = list; c != NULL; c = next) {
		next = c->next;
		c->next = c->prev = NULL;
		c->waiting = 0;
		rcl->st.waiting--;
		if (c->fail_now || c->hold_until_ms > now) {
			rcl_wait_append(rcl, c);   /* its timer left as armed */
			continue;
		}
		evtimer_del(c->timer);
		rcl_dispatch(c);
	}
}

/* ---- sending and replies ---- */

static int
rcl_send(struct rcl_cmd *c, struct rcl_node *n)
{
	if (c->asking && rconn_cmd(n->rc, NULL, NULL, 0, "ASKING") < 0)
		return -1;
	if (rconn_argv(n->rc, rcl_on_reply, c, c->timeout_ms, c->argc,
	    (const char **)c->argv, c->argvlen) < 0)
		return -1;
	c->node = n;
	return 0;
}

/* Sends c to its node now, or puts it to wait. Never runs a user callback. */
static void
rcl_dispatch(struct rcl_cmd *c)
{
	struct rcluster *rcl = c->rcl;
	struct rcl_node *n;

	if (c->target[0] != '\0') {
		n = c->each != NULL ? rcl_node_find(rcl, c->target) :
		    rcl_node_get(rcl, c->target);
		if (n == NULL && c->each != NULL) {
			rcl_fail_soon(c);   /* the node left the map */
			return;
		}
	} else if (c->slot >= 0) {
		n = rcl->slots[c->slot];
	} else {
		n = rcl_any_primary(rcl);
	}
	if (n == NULL) {
		if (rcl->have_map)
			rcluster_refresh(rcl);
		rcl_wait(c, RCL_WAIT_MS);
		return;
	}
	if (!rconn_is_ready(n->rc) || rcl_send(c, n) < 0)
		rcl_wait(c, RCL_WAIT_MS);
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK ...": the slot and the address; 0 or -1. An
 * empty host means the host of the node that answered. */
static int
rcl_parse_redirect(const char *s, const struct rcl_node *from, int *slot, char *addr,
    size_t size)
{
	const char *p = strchr(s, ' ');
	char *end;
	long v;

	if (p == NULL)
		return -1;
	errno = 0;
	v = strtol(p + 1, &end, 10);
	if (errno != 0 || end == p + 1 || *end != ' ' || v < 0 || v >= SLOT_COUNT)
		return -1;
	*slot = (int)v;
	end++;
	if (*end == ':') {
		const char *colon = strrchr(from->addr, ':');

		if (snprintf(addr, size, "%.*s%s", (int)(colon - from->addr), from->addr,
		    end) >= (int)size)
			return -1;
	} else if (snprintf(addr, size, "%s", end) >= (int)size) {
		return -1;
	}
	return strchr(addr, ':') != NULL ? 0 : -1;
}

/* TRYAGAIN (a multi-key command mid-migration) clears fast; CLUSTERDOWN lasts about
 * a node timeout (a failover), so its backoff starts higher. */
static long
rcl_backoff_ms(int retries, int down)
{
	long ms = down ? RCL_DOWN_MIN_MS : RCL_RETRY_MIN_MS;

	while (--retries > 0 && ms < RCL_RETRY_MAX_MS)
		ms *= 2;
	return ms < RCL_RETRY_MAX_MS ? ms : RCL_RETRY_MAX_MS;
}

/* A redirect or retry bound was passed: the caller gets Redis' last error. */
static void
rcl_give_up(struct rcl_cmd *c, redisReply *r, const char *why)
{
	char err[96];

	c->rcl->st.gave_up++;
	log_warnx("redis=%s event=cluster_gave_up slot=%d why=%s err=%s", c->rcl->name,
	    c->slot, why, log_quote(r->str, err, sizeof(err)));
	rcl_finish(c, r);
}

static void
rcl_on_moved_or_ask(struct rcl_cmd *c, struct rcl_node *from, redisReply *r, int ask)
{
	struct rcluster *rcl = c->rcl;
	struct rcl_node *n;
	char addr[RCL_ADDR_MAX];
	int slot;

	if (ask)
		rcl->st.ask++;
	else
		rcl->st.moved++;
	if (rcl_parse_redirect(r->str, from, &slot, addr, sizeof(addr)) < 0) {
		rcl_finish(c, r);
		return;
	}
	if (++c->redirects > rcl->redirects_max) {
		rcl_give_up(c, r, ask ? "ask" : "moved");
		return;
	}
	log_debug("redis=%s event=cluster_%s slot=%d to=%s", rcl->name,
	    ask ? "ask" : "moved", slot, addr);
	if (ask) {
		/* This command only; the map stays as it is. */
		snprintf(c->target, sizeof(c->target), "%s", addr);
		c->asking = 1;
	} else {
		if ((n = rcl_node_get(rcl, addr)) != NULL) {
			n->primary = 1;
			rcl->slots[slot] = n;
		}
		/* A command routed by another slot (or none) follows the redirect itself. */
		if (c->slot != slot)
			snprintf(c->target, sizeof(c->target), "%s", addr);
		rcluster_refresh(rcl);
	}
	rcl_dispatch(c);
}

/* EVALSHA met NOSCRIPT: load the script on that node, then the same call again
 * (Redis answers one connection in order, so the load is done first). */
static void
rcl_on_noscript(struct rcl_cmd *c, struct rcl_node *n, redisReply *r, int asking)
{
	c->rcl->st.noscript++;
	c->reloaded = 1;
	log_debug("redis=%s event=cluster_noscript addr=%s", c->rcl->name, n->addr);
	if (rconn_cmd(n->rc, NULL, NULL, 0, "SCRIPT LOAD %s", c->script) < 0) {
		rcl_finish(c, r);
		return;
	}
	c->asking = asking;
	if (rcl_send(c, n) < 0)
		rcl_finish(c, r);
}

static void
rcl_on_reply(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct rcl_cmd *c = arg;
	struct rcluster *rcl = c->rcl;
	struct rcl_node *n = c->node;
	int asking = c->asking;

	(void)rc;
	c->node = NULL;
	c->asking = 0;
	if (c->each == NULL)
		c->target[0] = '\0';
	if (r == NULL) {
		/* Timed out or dropped: the node may have failed over. */
		if (!rcl->freeing && rcl_node_find(rcl, n->addr) == n)
			rcluster_refresh(rcl);
		rcl_finish(c, NULL);
		return;
	}
	if (rcl->freeing || r->type != REDIS_REPLY_ERROR || r->str == NULL ||
	    c->each != NULL) {
		/* The node that answered, for a command that must follow this one
		 * there (rcluster_argv_node). */
		snprintf(rcl->reply_addr, sizeof(rcl->reply_addr), "%s", n->addr);
		rcl->reply_gen = rconn_generation(n->rc);
		rcl_finish(c, r);
		return;
	}
	/* Sent again below: a new wait bound for the new attempt. */
	c->give_up_ms = clock_mono_ms() + c->timeout_ms;
	if (strncmp(r->str, "MOVED ", 6) == 0) {
		rcl_on_moved_or_ask(c, n, r, 0);
	} else if (strncmp(r->str, "ASK ", 4) == 0) {
		rcl_on_moved_or_ask(c, n, r, 1);
	} else if (strncmp(r->str, "TRYAGAIN", 8) == 0 ||
	    strncmp(r->str, "CLUSTERDOWN", 11) == 0) {
		int down = r->str[0] == 'C';

		if (down) {
			rcl->st.clusterdown++;
			rcluster_refresh(rcl);
		} else {
			rcl->st.tryagain++;
		}
		if (++c->retries > rcl->retries_max) {
			rcl_give_up(c, r, down ? "clusterdown" : "tryagain");
			return;
		}
		c->hold_until_ms = clock_mono_ms() + rcl_backoff_ms(c->retries, down);
		rcl_wait(c, rcl_backoff_ms(c->retries, down));
	} else if (strncmp(r->str, "NOSCRIPT", 8) == 0 && c->script != NULL &&
	    !c->reloaded) {
		rcl_on_noscript(c, n, r, asking);
	} else {
		rcl_finish(c, r);
	}
}

/* ---- the public face ---- */

struct rcluster *
rcluster_new(struct event_base *base, const struct rcluster_config *cfg,
    const char *name, rcluster_ready_fn *ready, void *arg)
{
	struct rcluster *rcl;
	struct timeval tv;
	const char *p, *end;
	char addr[RCL_ADDR_MAX], host[RCL_ADDR_MAX];
	int port;
	size_t i;

	if ((rcl = calloc(1, sizeof(*rcl))) == NULL)
		return NULL;
	rcl->base = base;
	snprintf(rcl->name, sizeof(rcl->name), "%s", name);
	rcl->connect_timeout_ms = cfg->connect_timeout_ms;
	rcl->command_timeout_ms = cfg->command_timeout_ms > 0 ? cfg->command_timeout_ms :
	    2000;
	rcl->reconnect_max_ms = cfg->reconnect_max_ms;
	rcl->refresh_min_ms = cfg->refresh_min_ms > 0 ? cfg->refresh_min_ms : 1000;
	rcl->redirects_max = cfg->redirects_max > 0 ? cfg->redirects_max : 5;
	rcl->retries_max = cfg->retries_max > 0 ? cfg->retries_max : 5;
	rcl->on_ready = ready;
	rcl->arg = arg;
	rcl->last_refresh_ms = clock_mono_ms() - rcl->refresh_min_ms;
	if (cfg->password != NULL && (rcl->password = strdup(cfg->password)) == NULL)
		goto err;
	rcl->refresh_timer = evtimer_new(base, rcl_on_refresh_timer, rcl);
	rcl->reap_timer = evtimer_new(base, rcl_on_reap_timer, rcl);
	rcl->watch_timer = event_new(base, -1, EV_PERSIST, rcl_on_watch_timer, rcl);
	if (!rcl->refresh_timer || !rcl->reap_timer || !rcl->watch_timer)
		goto err;
	for (p = cfg->seeds != NULL ? cfg->seeds : ""; *p != '\0'; p = *end ? end + 1 : end) {
		size_t len;

		end = p + strcspn(p, ", ");
		len = (size_t)(end - p);
		if (len == 0)
			continue;
		if (len >= sizeof(addr))
			goto bad;
		memcpy(addr, p, len);
		addr[len] = '\0';
		if (rcl_split_addr(addr, host, sizeof(host), &port) < 0)
			goto bad;
		rcl_add_known(rcl, addr);
	}
	if (rcl->nknown == 0)
		goto bad;
	for (i = 0; i < rcl->nknown; i++)
		if (rcl_node_get(rcl, rcl->known[i]) == NULL)
			goto err;
	rcl_tv(&tv, RCL_WATCH_MS);
	evtimer_add(rcl->watch_timer, &tv);
	return rcl;
bad:
	log_errorx("redis=%s event=cluster_bad_seeds seeds=\"%.200s\"", rcl->name,
	    cfg->seeds != NULL ? cfg->seeds : "");
err:
	rcluster_free(rcl);
	return NULL;
}

void
rcluster_free(struct rcluster *rcl)
{
	struct rcl_node *n;
	struct rcl_cmd *c;

	if (rcl == NULL)
		return;
	rcl->freeing = 1;
	/* In-flight commands get NULL from rconn_free; new sends are refused. */
	while ((n = rcl->nodes) != NULL) {
		rcl->nodes = n->next;
		rconn_free(n->rc);
		free(n);
	}
	while ((n = rcl->reap) != NULL) {
		rcl->reap = n->next;
		rconn_free(n->rc);
		free(n);
	}
	while ((c = rcl->wait_head) != NULL)
		rcl_finish(c, NULL);
	if (rcl->refresh_timer)
		event_free(rcl->refresh_timer);
	if (rcl->reap_timer)
		event_free(rcl->reap_timer);
	if (rcl->watch_timer)
		event_free(rcl->watch_timer);
	if (rcl->password != NULL) {
		explicit_bzero(rcl->password, strlen(rcl->password));
		free(rcl->password);
	}
	free(rcl);
}

int
rcluster_is_ready(const struct rcluster *rcl)
{
	int s;

	if (rcl == NULL || !rcl->have_map)
		return 0;
	for (s = 0; s < SLOT_COUNT; s++)
		if (rcl->slots[s] == NULL)
			return 0;
	return 1;
}

/* A command copied into one block; NULL on OOM. */
static struct rcl_cmd *
rcl_cmd_new(struct rcluster *rcl, long timeout_ms, int argc, const char **argv,
    const size_t *argvlen)
{
	struct rcl_cmd *c;
	size_t total = 0, head;
	char *data;
	int i;

	if (argc <= 0 || (c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	for (i = 0; i < argc; i++)
		total += (argvlen != NULL ? argvlen[i] : strlen(argv[i])) + 1;
	head = (size_t)argc * (sizeof(char *) + sizeof(size_t));
	if ((c->argv = malloc(head + total)) == NULL)
		goto err;
	c->argvlen = (size_t *)(c->argv + argc);
	data = (char *)(c->argvlen + argc);
	for (i = 0; i < argc; i++) {
		size_t len = argvlen != NULL ? argvlen[i] : strlen(argv[i]);

		memcpy(data, argv[i], len);
		data[len] = '\0';
		c->argv[i] = data;
		c->argvlen[i] = len;
		data += len + 1;
	}
	if ((c->timer = evtimer_new(rcl->base, rcl_on_cmd_timer, c)) == NULL)
		goto err;
	c->rcl = rcl;
	c->argc = argc;
	c->slot = -1;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : rcl->command_timeout_ms;
	c->give_up_ms = clock_mono_ms() + c->timeout_ms;
	return c;
err:
	free(c->argv);
	free(c);
	return NULL;
}

int
rcluster_argv(struct rcluster *rcl, int key, rcluster_reply_fn *cb, void *arg,
    long timeout_ms, int argc, const char **argv, const size_t *argvlen)
{
	struct rcl_cmd *c;

	if (rcl->freeing || key >= argc || key < RCLUSTER_NOKEY)
		return -1;
	if ((c = rcl_cmd_new(rcl, timeout_ms, argc, argv, argvlen)) == NULL)
		return -1;
	c->cb = cb;
	c->arg = arg;
	if (key != RCLUSTER_NOKEY)
		c->slot = slot_of(c->argv[key], c->argvlen[key]);
	rcl_dispatch(c);
	return 0;
}

int
rcluster_argv_slot(struct rcluster *rcl, int slot, rcluster_reply_fn *cb, void *arg,
    long timeout_ms, int argc, const char **argv, const size_t *argvlen)
{
	struct rcl_cmd *c;

	if (rcl->freeing || slot < 0 || slot >= SLOT_COUNT)
		return -1;
	if ((c = rcl_cmd_new(rcl, timeout_ms, argc, argv, argvlen)) == NULL)
		return -1;
	c->cb = cb;
	c->arg = arg;
	c->slot = slot;
	rcl_dispatch(c);
	return 0;
}

int
rcluster_reply_node(const struct rcluster *rcl, char *addr, size_t size,
    unsigned long *gen)
{
	if (rcl->reply_addr[0] == '\0')
		return -1;
	snprintf(addr, size, "%s", rcl->reply_addr);
	*gen = rcl->reply_gen;
	return 0;
}

int
rcluster_argv_node(struct rcluster *rcl, const char *addr, unsigned long gen,
    rcluster_reply_fn *cb, void *arg, long timeout_ms, int argc, const char **argv,
    const size_t *argvlen)
{
	struct rcl_node *n;
	struct rcl_cmd *c;

	/* The same connection, or nothing: a reconnect since lost what it had. */
	if (rcl->freeing || (n = rcl_node_find(rcl, addr)) == NULL || !n->primary ||
	    !rconn_is_ready(n->rc) || rconn_generation(n->rc) != gen)
		return -1;
	if ((c = rcl_cmd_new(rcl, timeout_ms, argc, argv, argvlen)) == NULL)
		return -1;
	c->cb = cb;
	c->arg = arg;
	snprintf(c->target, sizeof(c->target), "%s", addr);
	if (rcl_send(c, n) < 0) {
		event_free(c->timer);
		free(c->argv);
		free(c);
		return -1;
	}
	return 0;
}

int
rcluster_evalsha(struct rcluster *rcl, const char *sha, const char *body, int nkeys,
    int nargs, const char **args, const size_t *lens, rcluster_reply_fn *cb, void *arg,
    long timeout_ms)
{
	const char **argv = NULL;
	size_t *argvlen = NULL;
	char nk[16];
	int i, rv = -1;
	struct rcl_cmd *c;

	if (rcl->freeing || nkeys < 0 || nargs < nkeys || nargs > 1000000)
		return -1;
	argv = calloc((size_t)nargs + 3, sizeof(*argv));
	argvlen = calloc((size_t)nargs + 3, sizeof(*argvlen));
	if (argv == NULL || argvlen == NULL)
		goto end;
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[0] = "EVALSHA";
	argv[1] = sha;
	argv[2] = nk;
	for (i = 0; i < 3; i++)
		argvlen[i] = strlen(argv[i]);
	for (i = 0; i < nargs; i++) {
		argv[3 + i] = args[i];
		argvlen[3 + i] = lens != NULL ? lens[i] : strlen(args[i]);
	}
	if ((c = rcl_cmd_new(rcl, timeout_ms, nargs + 3, argv, argvlen)) == NULL)
		goto end;
	c->cb = cb;
	c->arg = arg;
	c->script = body;
	if (nkeys > 0)
		c->slot = slot_of(c->argv[3], c->argvlen[3]);
	rcl_dispatch(c);
	rv = 0;
end:
	free(argv);
	free(argvlen);
	return rv;
}

int
rcluster_each(struct rcluster *rcl, rcluster_node_fn *node_cb, rcluster_done_fn *done_cb,
    void *arg, long timeout_ms, int argc, const char **argv, const size_t *argvlen)
{
	struct rcl_cmd *cmds[RCL_KNOWN_MAX], *c;
	struct rcl_each *e;
	struct rcl_node *n;
	int i, count = 0;

	if (rcl->freeing || !rcl->have_map || (e = calloc(1, sizeof(*e))) == NULL)
		return -1;
	for (n = rcl->nodes; n != NULL; n = n->next) {
		if (!n->primary)
			continue;
		if (count == RCL_KNOWN_MAX ||
		    (c = rcl_cmd_new(rcl, timeout_ms, argc, argv, argvlen)) == NULL)
			goto err;
		c->each = e;
		snprintf(c->target, sizeof(c->target), "%s", n->addr);
		cmds[count++] = c;
	}
	if (count == 0)
		goto err;
	e->node_cb = node_cb;
	e->done_cb = done_cb;
	e->arg = arg;
	e->nodes = e->left = count;
	for (i = 0; i < count; i++)
		rcl_dispatch(cmds[i]);
	return 0;
err:
	for (i = 0; i < count; i++) {
		event_free(cmds[i]->timer);
		free(cmds[i]->argv);
		free(cmds[i]);
	}
	free(e);
	return -1;
}

const char *
rcluster_slot_owner(const struct rcluster *rcl, int slot)
{
	if (slot < 0 || slot >= SLOT_COUNT || rcl->slots[slot] == NULL)
		return NULL;
	return rcl->slots[slot]->addr;
}

void
rcluster_stats(const struct rcluster *rcl, struct rcluster_stat *st)
{
	const struct rcl_node *n;
	int s;

	*st = rcl->st;
	st->primaries = st->ready = st->slots_covered = 0;
	for (n = rcl->nodes; n != NULL; n = n->next)
		if (n->primary) {
			st->primaries++;
			st->ready += rconn_is_ready(n->rc);
		}
	for (s = 0; s < SLOT_COUNT; s++)
		st->slots_covered += rcl->slots[s] != NULL;
}
