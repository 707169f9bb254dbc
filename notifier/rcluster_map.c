/*
 * rcluster_map.c: the cluster client's slot map and the nodes it names (stage: all
 * Redis I/O).
 *
 * Reads CLUSTER SHARDS (CLUSTER SLOTS before Redis 7) from a connected node, at most
 * once per refresh_min_ms, and puts it in place: an rconn for each new primary, the
 * nodes no longer primaries unlinked at once and freed from a zero timer (never
 * inside their own rconn's callback). Replies are untrusted input: every element's
 * type is checked, slot numbers must be in range, addresses must fit; a shard with
 * no slots (a failed primary after its replica took over) adds no range.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "clock.h"
#include "log.h"
#include "rcluster_int.h"
#include "rconn.h"
#include "slot.h"

static void rcl_refresh_now(struct rcluster *rcl);
static void rcl_on_slots(struct rconn *rc, struct redisReply *r, void *arg);

void
rcl_map_clear(struct rcl_map *m)
{
	free(m->ranges);
	free(m->nodes);
	memset(m, 0, sizeof(*m));
}

static int
rcl_map_add_node(struct rcl_map *m, const char *addr)
{
	size_t i;

	for (i = 0; i < m->nnodes; i++)
		if (strcmp(m->nodes[i], addr) == 0)
			return 0;
	if (m->nnodes == m->nodes_cap) {
		size_t cap = m->nodes_cap ? m->nodes_cap * 2 : 8;
		void *p = realloc(m->nodes, cap * sizeof(*m->nodes));

		if (p == NULL)
			return -1;
		m->nodes = p;
		m->nodes_cap = cap;
	}
	snprintf(m->nodes[m->nnodes++], RCL_ADDR_MAX, "%s", addr);
	return 0;
}

static int
rcl_map_add_range(struct rcl_map *m, long long start, long long end, const char *addr)
{
	if (start < 0 || end < start || end >= SLOT_COUNT)
		return -1;
	if (m->nranges == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 16;
		void *p = realloc(m->ranges, cap * sizeof(*m->ranges));

		if (p == NULL)
			return -1;
		m->ranges = p;
		m->cap = cap;
	}
	m->ranges[m->nranges].start = (int)start;
	m->ranges[m->nranges].end = (int)end;
	snprintf(m->ranges[m->nranges++].addr, RCL_ADDR_MAX, "%s", addr);
	return 0;
}

/* "ip:port" into addr, the asked node's host when ip is empty; 0 or -1. */
static int
rcl_map_addr(char *addr, const char *ip, size_t iplen, long long port,
    const char *from_host)
{
	int n;

	if (port <= 0 || port > 65535)
		return -1;
	if (iplen == 0)
		n = snprintf(addr, RCL_ADDR_MAX, "%s:%lld", from_host, port);
	else
		n = snprintf(addr, RCL_ADDR_MAX, "%.*s:%lld", (int)iplen, ip, port);
	return n > 0 && n < RCL_ADDR_MAX ? 0 : -1;
}

/* The value after the string key name in a flat key/value array, or NULL. */
static const redisReply *
rcl_map_field(const redisReply *kv, const char *name)
{
	size_t i;

	if (kv == NULL || kv->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (i = 0; i + 1 < kv->elements; i += 2) {
		const redisReply *k = kv->element[i];

		if (k->type == REDIS_REPLY_STRING && strcmp(k->str, name) == 0)
			return kv->element[i + 1];
	}
	return NULL;
}

static int
rcl_map_is_str(const redisReply *r)
{
	return r != NULL && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
}

/* One CLUSTER SHARDS node entry's address; 1 when it is a primary, 0 a replica,
 * -1 malformed. */
static int
rcl_map_shard_node(const redisReply *node, const char *from_host, char *addr)
{
	const redisReply *ip = rcl_map_field(node, "ip");
	const redisReply *port = rcl_map_field(node, "port");
	const redisReply *role = rcl_map_field(node, "role");

	if (!rcl_map_is_str(ip) || port == NULL || port->type != REDIS_REPLY_INTEGER ||
	    !rcl_map_is_str(role))
		return -1;
	if (rcl_map_addr(addr, ip->str, ip->len, port->integer, from_host) < 0)
		return -1;
	return strcmp(role->str, "master") == 0;
}

int
rcl_map_from_shards(const redisReply *r, const char *from_host, struct rcl_map *m)
{
	size_t i, j;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return -1;
	for (i = 0; i < r->elements; i++) {
		const redisReply *slots = rcl_map_field(r->element[i], "slots");
		const redisReply *nodes = rcl_map_field(r->element[i], "nodes");
		char addr[RCL_ADDR_MAX], primary[RCL_ADDR_MAX] = "";

		if (slots == NULL || nodes == NULL || slots->type != REDIS_REPLY_ARRAY ||
		    nodes->type != REDIS_REPLY_ARRAY || slots->elements % 2 != 0)
			return -1;
		for (j = 0; j < nodes->elements; j++) {
			int p = rcl_map_shard_node(nodes->element[j], from_host, addr);

			if (p < 0 || rcl_map_add_node(m, addr) < 0)
				return -1;
			if (p == 1 && primary[0] == '\0')
				memcpy(primary, addr, sizeof(primary));
		}
		if (primary[0] == '\0')
			continue;
		for (j = 0; j < slots->elements; j += 2) {
			const redisReply *a = slots->element[j], *b = slots->element[j + 1];

			if (a->type != REDIS_REPLY_INTEGER || b->type != REDIS_REPLY_INTEGER ||
			    rcl_map_add_range(m, a->integer, b->integer, primary) < 0)
				return -1;
		}
	}
	return 0;
}

int
rcl_map_from_slots(const redisReply *r, const char *from_host, struct rcl_map *m)
{
	size_t i, j;

	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return -1;
	for (i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];
		char addr[RCL_ADDR_MAX], primary[RCL_ADDR_MAX];

		if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
		    e->element[0]->type != REDIS_REPLY_INTEGER ||
		    e->element[1]->type != REDIS_REPLY_INTEGER)
			return -1;
		/* [start, end, [ip, port, id ...] (the primary), replicas ...] */
		for (j = 2; j < e->elements; j++) {
			const redisReply *n = e->element[j];

			if (n->type != REDIS_REPLY_ARRAY || n->elements < 2 ||
			    !rcl_map_is_str(n->element[0]) ||
			    n->element[1]->type != REDIS_REPLY_INTEGER ||
			    rcl_map_addr(addr, n->element[0]->str, n->element[0]->len,
			    n->element[1]->integer, from_host) < 0 ||
			    rcl_map_add_node(m, addr) < 0)
				return -1;
			if (j == 2)
				memcpy(primary, addr, sizeof(primary));
		}
		if (rcl_map_add_range(m, e->element[0]->integer, e->element[1]->integer,
		    primary) < 0)
			return -1;
	}
	return 0;
}

/* Splits "ip:port" (the last ':') into host and port; 0 or -1 when malformed. */
int
rcl_split_addr(const char *addr, char *host, size_t hsize, int *port)
{
	const char *colon = strrchr(addr, ':');
	char *end;
	long p;

	if (colon == NULL || colon == addr || (size_t)(colon - addr) >= hsize)
		return -1;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || p <= 0 || p > 65535)
		return -1;
	if (addr[0] == '[' && colon[-1] == ']') {
		/* "[::1]:7000", as a seed may be written: the address inside */
		memcpy(host, addr + 1, (size_t)(colon - addr - 2));
		host[colon - addr - 2] = '\0';
	} else {
		memcpy(host, addr, (size_t)(colon - addr));
		host[colon - addr] = '\0';
	}
	*port = (int)p;
	return 0;
}

void
rcl_add_known(struct rcluster *rcl, const char *addr)
{
	size_t i;

	for (i = 0; i < rcl->nknown; i++)
		if (strcmp(rcl->known[i], addr) == 0)
			return;
	if (rcl->nknown < RCL_KNOWN_MAX)
		snprintf(rcl->known[rcl->nknown++], RCL_ADDR_MAX, "%s", addr);
}

/* ---- nodes ---- */

static void
rcl_on_node_ready(struct rconn *rc, void *arg)
{
	struct rcl_node *n = arg;
	struct rcluster *rcl = n->rcl;

	(void)rc;
	if (!rcl->have_map && !rcl->refreshing)
		rcl_refresh_now(rcl);
	rcl_kick(rcl);
}

struct rcl_node *
rcl_node_find(struct rcluster *rcl, const char *addr)
{
	struct rcl_node *n;

	for (n = rcl->nodes; n != NULL; n = n->next)
		if (strcmp(n->addr, addr) == 0)
			return n;
	return NULL;
}

/* The live node at addr, created (and connecting) when new; NULL on a bad address or
 * OOM. */
struct rcl_node *
rcl_node_get(struct rcluster *rcl, const char *addr)
{
	struct rconn_config cfg;
	struct rcl_node *n;
	char host[RCL_ADDR_MAX], name[32];
	int port;

	if ((n = rcl_node_find(rcl, addr)) != NULL)
		return n;
	if (rcl->freeing)
		return NULL;
	if (strlen(addr) >= RCL_ADDR_MAX ||
	    rcl_split_addr(addr, host, sizeof(host), &port) < 0) {
		log_warnx("redis=%s event=cluster_bad_addr addr=\"%.64s\"", rcl->name, addr);
		return NULL;
	}
	if ((n = calloc(1, sizeof(*n))) == NULL)
		return NULL;
	n->rcl = rcl;
	snprintf(n->addr, sizeof(n->addr), "%s", addr);
	memset(&cfg, 0, sizeof(cfg));
	cfg.host = host;
	cfg.port = port;
	cfg.password = rcl->password;
	cfg.connect_timeout_ms = rcl->connect_timeout_ms;
	cfg.command_timeout_ms = rcl->command_timeout_ms;
	cfg.reconnect_max_ms = rcl->reconnect_max_ms;
	snprintf(name, sizeof(name), "%.20s:%d", rcl->name, port);
	if ((n->rc = rconn_new(rcl->base, &cfg, name, rcl_on_node_ready, n)) == NULL) {
		free(n);
		return NULL;
	}
	n->next = rcl->nodes;
	rcl->nodes = n;
	rcl_add_known(rcl, addr);
	return n;
}

/* Unlinks n from the live nodes and the map; it is freed from reap_timer. */
static void
rcl_node_retire(struct rcluster *rcl, struct rcl_node *n)
{
	struct rcl_node **pp;
	struct timeval tv = { 0, 0 };
	int s;

	for (pp = &rcl->nodes; *pp != NULL; pp = &(*pp)->next)
		if (*pp == n) {
			*pp = n->next;
			break;
		}
	for (s = 0; s < SLOT_COUNT; s++)
		if (rcl->slots[s] == n)
			rcl->slots[s] = NULL;
	n->next = rcl->reap;
	rcl->reap = n;
	evtimer_add(rcl->reap_timer, &tv);
}

void
rcl_on_reap_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rcluster *rcl = arg;
	struct rcl_node *n;

	(void)fd;
	(void)what;
	/* rconn_free runs in-flight callbacks with NULL; those may send again (never to a
	 * retired node: it is in no map) but not free us. */
	while ((n = rcl->reap) != NULL) {
		rcl->reap = n->next;
		log_info("redis=%s event=cluster_node_removed addr=%s", rcl->name, n->addr);
		rconn_free(n->rc);
		free(n);
	}
}

/* Any primary, round robin, a connected one when there is one. */
struct rcl_node *
rcl_any_primary(struct rcluster *rcl)
{
	struct rcl_node *n, *pick = NULL, *ready = NULL;
	unsigned long i = 0, want = rcl->any_next++;
	int count = 0;

	for (n = rcl->nodes; n != NULL; n = n->next)
		if (n->primary)
			count++;
	if (count == 0)
		return NULL;
	want %= (unsigned long)count;
	for (n = rcl->nodes; n != NULL; n = n->next) {
		if (!n->primary)
			continue;
		if (i++ == want)
			pick = n;
		if (ready == NULL && rconn_is_ready(n->rc))
			ready = n;
	}
	return rconn_is_ready(pick->rc) || ready == NULL ? pick : ready;
}

/* ---- the slot map ---- */

/* Puts map m in place: nodes for new primaries, the old ones retired. */
static void
rcl_map_apply(struct rcluster *rcl, const struct rcl_map *m)
{
	struct rcl_node *n, *next;
	int s, primaries = 0, covered = 0, added = 0, first = !rcl->have_map;
	size_t i;

	for (i = 0; i < m->nnodes; i++)
		rcl_add_known(rcl, m->nodes[i]);
	for (n = rcl->nodes; n != NULL; n = n->next)
		n->primary = 0;
	memset(rcl->slots, 0, sizeof(rcl->slots));
	for (i = 0; i < m->nranges; i++) {
		const struct rcl_range *r = &m->ranges[i];

		if ((n = rcl_node_get(rcl, r->addr)) == NULL)
			continue;       /* logged; its slots wait for the next map */
		n->primary = 1;
		for (s = r->start; s <= r->end; s++)
			rcl->slots[s] = n;
	}
	for (n = rcl->nodes; n != NULL; n = next) {
		next = n->next;
		if (!n->primary) {
			rcl_node_retire(rcl, n);
			continue;
		}
		primaries++;
		/* New to the owner's ready callback (also when MOVED made it first). */
		added += !n->announced;
		n->announced = 1;
	}
	for (s = 0; s < SLOT_COUNT; s++)
		covered += rcl->slots[s] != NULL;
	rcl->have_map = 1;
	rcl->st.refreshes++;
	log_info("redis=%s event=cluster_map primaries=%d slots=%d new=%d refreshes=%lu",
	    rcl->name, primaries, covered, added, rcl->st.refreshes);
	rcl_kick(rcl);
	if ((first || added > 0) && rcl->on_ready != NULL)
		rcl->on_ready(rcl, rcl->arg);
}

/* The host part of a node's address. */
static void
rcl_node_host(const struct rcl_node *n, char *host, size_t size)
{
	int port;

	if (rcl_split_addr(n->addr, host, size, &port) < 0)
		snprintf(host, size, "127.0.0.1");
}

static void
rcl_on_map(struct rconn *rc, struct redisReply *r, void *arg, int shards)
{
	struct rcl_node *n = arg;
	struct rcluster *rcl = n->rcl;
	struct rcl_map m;
	char host[RCL_ADDR_MAX];
	int rv;

	memset(&m, 0, sizeof(m));
	if (rcl->freeing)
		return;
	if (r != NULL && r->type == REDIS_REPLY_ERROR && shards &&
	    rconn_cmd(rc, rcl_on_slots, n, 0, "CLUSTER SLOTS") == 0)
		return;         /* before Redis 7: still refreshing */
	rcl->refreshing = 0;
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		log_warnx("redis=%s event=cluster_map_failed addr=%s err=\"%s\"", rcl->name,
		    n->addr, r != NULL ? r->str : "no reply");
		rcluster_refresh(rcl);
		return;
	}
	rcl_node_host(n, host, sizeof(host));
	rv = shards ? rcl_map_from_shards(r, host, &m) : rcl_map_from_slots(r, host, &m);
	if (rv < 0 || m.nranges == 0) {
		log_warnx("redis=%s event=cluster_map_failed addr=%s err=\"%s\"", rcl->name,
		    n->addr, rv < 0 ? "malformed reply" : "no slot assigned");
		rcluster_refresh(rcl);
	} else {
		rcl_map_apply(rcl, &m);
	}
	rcl_map_clear(&m);
}

static void
rcl_on_shards(struct rconn *rc, struct redisReply *r, void *arg)
{
	rcl_on_map(rc, r, arg, 1);
}

static void
rcl_on_slots(struct rconn *rc, struct redisReply *r, void *arg)
{
	rcl_on_map(rc, r, arg, 0);
}

/* Asks a connected node for the map now; with none connected, connects to the next
 * known address (seeds, then nodes seen in maps) and asks when it is up. */
static void
rcl_refresh_now(struct rcluster *rcl)
{
	struct rcl_node *n, *ask = NULL;
	size_t i;

	if (rcl->refreshing || rcl->freeing)
		return;
	for (n = rcl->nodes; n != NULL; n = n->next)
		if (rconn_is_ready(n->rc) && (ask == NULL || (n->primary && !ask->primary)))
			ask = n;
	if (ask == NULL) {
		for (i = 0; i < rcl->nknown; i++) {
			const char *addr = rcl->known[rcl->probe_next++ % rcl->nknown];

			if (rcl_node_find(rcl, addr) == NULL) {
				rcl_node_get(rcl, addr);
				break;
			}
		}
		return;         /* rcl_on_node_ready asks once one is up */
	}
	rcl->last_refresh_ms = clock_mono_ms();
	if (rconn_cmd(ask->rc, rcl_on_shards, ask, 0, "CLUSTER SHARDS") == 0)
		rcl->refreshing = 1;
}

void
rcl_on_refresh_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	rcl_refresh_now(arg);
}

void
rcluster_refresh(struct rcluster *rcl)
{
	int64_t wait = rcl->last_refresh_ms + rcl->refresh_min_ms - clock_mono_ms();
	struct timeval tv;

	if (rcl->freeing || rcl->refreshing || evtimer_pending(rcl->refresh_timer, NULL))
		return;
	rcl_tv(&tv, wait > 0 ? (long)wait : 0);
	evtimer_add(rcl->refresh_timer, &tv);
}

/* Every RCL_WATCH_MS: a primary whose connection was up and is not (killed, timed
 * out), or slots without a primary, or no map yet: read the map again. */
void
rcl_on_watch_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rcluster *rcl = arg;
	struct rcl_node *n;
	int s, want = !rcl->have_map;

	(void)fd;
	(void)what;
	for (n = rcl->nodes; n != NULL && !want; n = n->next)
		if (n->primary && !rconn_is_ready(n->rc) && rconn_generation(n->rc) > 0)
			want = 1;
	for (s = 0; s < SLOT_COUNT && !want; s++)
		if (rcl->slots[s] == NULL)
			want = 1;
	if (want)
		rcluster_refresh(rcl);
}
