/*
 * ctl_cluster.c: dealpushctl's synchronous Redis Cluster router (stage: outside the
 * pipeline, the operator's CLI; docs/architecture.md, "The cluster client", has the
 * daemon's asynchronous one).
 *
 * The slot map comes from CLUSTER SHARDS (CLUSTER SLOTS before Redis 7), asked of the
 * seeds in turn; each primary gets one blocking connection, opened at its first
 * command, with redis_open's timeouts and login. A command goes where rroute.c says:
 * its key's slot's primary, any primary, or every primary (SCRIPT LOAD: one answer,
 * when they all agree). MOVED reads the map again and retries, ASK sends ASKING and
 * the command to the node named, TRYAGAIN and CLUSTERDOWN wait a little and retry;
 * an EVALSHA answered NOSCRIPT (a primary that joined after the SCRIPT LOAD, or whose
 * scripts were flushed) loads the script there and runs again, once: NOSCRIPT means
 * nothing ran. All of it bounded. It must never send a command rroute does not know,
 * nor one whose keys span slots, and never loop: every path ends in a reply or an
 * error naming the command.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "rroute.h"
#include "sentinel.h"
#include "slot.h"

#include "ctl_int.h"
#include "rcluster_int.h"      /* the map readers, shared with the daemon's client */

#define CTL_CL_NODES_MAX 64        /* nodes the map may name */
#define CTL_CL_REDIRECTS 5         /* MOVED and ASK, per command */
#define CTL_CL_RETRIES 5           /* TRYAGAIN and CLUSTERDOWN, per command */
#define CTL_CL_RETRY_MS 50         /* their first wait, doubling */
#define CTL_CL_SCRIPTS 8           /* scripts one run keeps for NOSCRIPT (it loads 1-2) */

struct ctl_cl_node {
	char addr[RCL_ADDR_MAX];       /* "ip:port" as the map or a redirect names it */
	redisContext *c;               /* opened at its first command */
};

/* A script this run loaded on every primary (SCRIPT LOAD), kept to load it again on
 * a node that answers NOSCRIPT. */
struct ctl_cl_script {
	char sha[41];
	char *src;
};

struct ctl_cluster {
	char seeds[CTL_CLUSTER_SEEDS_MAX][CTL_ADDR_MAX];
	int nseeds;
	struct ctl_cl_node nodes[CTL_CL_NODES_MAX];
	int nnodes;
	short slots[SLOT_COUNT];       /* the primary's index in nodes, -1: none */
	int primaries[CTL_CL_NODES_MAX];   /* indexes of the nodes owning slots */
	int nprimaries;
	struct ctl_cl_script scripts[CTL_CL_SCRIPTS];
	int nscripts;
};

/* ---- pure parts (tests/unit/test_ctl_redirect.c) ---- */

int
ctl_cluster_seeds(const char *list, char (*out)[CTL_ADDR_MAX], int max, char *err,
    size_t errsz)
{
	struct sentinel_addr a[SENTINEL_MAX];
	unsigned char buf[sizeof(struct in6_addr)];
	char why[300];
	int i, n, v6, commas = 0;
	const char *p;

	if (list == NULL || list[strspn(list, " \t")] == '\0') {
		snprintf(err, errsz, "--cluster is empty (want ip:port,ip:port,...)");
		return -1;
	}
	for (p = list; *p != '\0'; p++)
		commas += *p == ',';
	if (commas >= max || commas >= SENTINEL_MAX) {
		snprintf(err, errsz, "--cluster: more than %d seeds", max < SENTINEL_MAX ?
		    max : SENTINEL_MAX);
		return -1;
	}
	if ((n = sentinel_parse(list, a, SENTINEL_MAX, why, sizeof(why))) < 0) {
		snprintf(err, errsz, "--cluster: %s", why);
		return -1;
	}
	for (i = 0; i < n; i++) {
		v6 = inet_pton(AF_INET6, a[i].host, buf) == 1;
		if (!v6 && inet_pton(AF_INET, a[i].host, buf) != 1) {
			snprintf(err, errsz, "--cluster: '%.255s' (entry %d) is not an IP "
			    "address (a cluster's nodes are addressed by IP)", a[i].host, i + 1);
			return -1;
		}
		snprintf(out[i], CTL_ADDR_MAX, v6 ? "[%s]:%d" : "%s:%d", a[i].host,
		    a[i].port);
	}
	return n;
}

enum ctl_redirect
ctl_cluster_redirect(const char *msg, const char *from, int *slot, char *addr,
    size_t size)
{
	const char *p;
	char *end;
	long v;
	int ask;

	if (strncmp(msg, "TRYAGAIN", 8) == 0)
		return CTL_REDIRECT_TRYAGAIN;
	if (strncmp(msg, "CLUSTERDOWN", 11) == 0)
		return CTL_REDIRECT_DOWN;
	if (strncmp(msg, "MOVED", 5) == 0 && (msg[5] == ' ' || msg[5] == '\0'))
		ask = 0;
	else if (strncmp(msg, "ASK", 3) == 0 && (msg[3] == ' ' || msg[3] == '\0'))
		ask = 1;
	else
		return CTL_REDIRECT_NONE;
	p = msg + (ask ? 3 : 5);
	if (*p++ != ' ')
		return CTL_REDIRECT_BAD;
	errno = 0;
	v = strtol(p, &end, 10);
	if (errno != 0 || end == p || *p < '0' || *p > '9' || *end != ' ' || v < 0 ||
	    v >= SLOT_COUNT)
		return CTL_REDIRECT_BAD;
	*slot = (int)v;
	p = end + 1;
	if (*p == ':' && strchr(p + 1, ':') == NULL) {
		/* No host: the node that answered (Redis 7 with an unknown endpoint). */
		const char *colon = strrchr(from, ':');

		if (colon == NULL || snprintf(addr, size, "%.*s%s", (int)(colon - from), from,
		    p) >= (int)size)
			return CTL_REDIRECT_BAD;
	} else if (snprintf(addr, size, "%s", p) >= (int)size) {
		return CTL_REDIRECT_BAD;
	}
	/* "host:port", the port a number from 1 to 65535, nothing after it */
	if ((p = strrchr(addr, ':')) == NULL || p == addr || p[1] < '0' || p[1] > '9' ||
	    strpbrk(addr, " \t\r\n") != NULL)
		return CTL_REDIRECT_BAD;
	errno = 0;
	v = strtol(p + 1, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > 65535)
		return CTL_REDIRECT_BAD;
	return ask ? CTL_REDIRECT_ASK : CTL_REDIRECT_MOVED;
}

/* ---- nodes and the map ---- */

/* The index of the node at addr, added when new; -1 when the table is full. */
static int
cl_node(struct ctl_cluster *cl, const char *addr)
{
	int i;

	for (i = 0; i < cl->nnodes; i++)
		if (strcmp(cl->nodes[i].addr, addr) == 0)
			return i;
	if (cl->nnodes == CTL_CL_NODES_MAX)
		return -1;
	snprintf(cl->nodes[cl->nnodes].addr, RCL_ADDR_MAX, "%s", addr);
	cl->nodes[cl->nnodes].c = NULL;
	return cl->nnodes++;
}

/* Node i's connection, opened when it has none. NULL with why in err. */
static redisContext *
cl_conn(struct ctl_cluster *cl, int i, char *err, size_t errsz)
{
	struct ctl_cl_node *n = &cl->nodes[i];

	if (n->c == NULL)
		n->c = ctl_redis_connect(n->addr, err, errsz);
	return n->c;
}

/* Node i's connection is broken (a timeout, a reset): dropped, reopened next time. */
static void
cl_drop(struct ctl_cluster *cl, int i)
{
	redisFree(cl->nodes[i].c);
	cl->nodes[i].c = NULL;
}

/* Puts map m in force. -1 (err set) when it names more nodes than the table holds. */
static int
cl_map_apply(struct ctl_cluster *cl, const struct rcl_map *m, char *err, size_t errsz)
{
	size_t r;
	int s, i, k;

	for (s = 0; s < SLOT_COUNT; s++)
		cl->slots[s] = -1;
	cl->nprimaries = 0;
	for (r = 0; r < m->nranges; r++) {
		if ((i = cl_node(cl, m->ranges[r].addr)) < 0) {
			snprintf(err, errsz, "the cluster names more than %d nodes",
			    CTL_CL_NODES_MAX);
			return -1;
		}
		for (s = m->ranges[r].start; s <= m->ranges[r].end; s++)
			cl->slots[s] = (short)i;
		for (k = 0; k < cl->nprimaries && cl->primaries[k] != i; k++)
			;
		if (k == cl->nprimaries)
			cl->primaries[cl->nprimaries++] = i;
	}
	if (cl->nprimaries == 0) {
		snprintf(err, errsz, "the cluster's map names no primary");
		return -1;
	}
	return 0;
}

/* Asks node i for the map (CLUSTER SHARDS, else CLUSTER SLOTS) and puts it in force.
 * 0, or -1 with why in err. */
static int
cl_map_from(struct ctl_cluster *cl, int i, char *err, size_t errsz)
{
	redisContext *c = cl_conn(cl, i, err, errsz);
	const char *addr = cl->nodes[i].addr;
	struct rcl_map m;
	redisReply *r;
	char host[RCL_ADDR_MAX];
	int port, rc = -1, shards = 1;

	if (c == NULL)
		return -1;
	if ((r = redisCommand(c, "CLUSTER SHARDS")) != NULL && r->type == REDIS_REPLY_ERROR &&
	    strstr(r->str, "cluster support disabled") == NULL) {
		freeReplyObject(r);    /* before Redis 7: an unknown subcommand */
		r = redisCommand(c, "CLUSTER SLOTS");
		shards = 0;
	}
	memset(&m, 0, sizeof(m));
	if (r == NULL) {
		snprintf(err, errsz, "redis at %s: CLUSTER %s: %s", addr, shards ? "SHARDS" :
		    "SLOTS", c->errstr);
		cl_drop(cl, i);
	} else if (r->type == REDIS_REPLY_ERROR &&
	    strstr(r->str, "cluster support disabled") != NULL) {
		snprintf(err, errsz, "redis at %s is not a cluster node (cluster support "
		    "disabled): give one Redis with --redis", addr);
	} else if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, errsz, "redis at %s: CLUSTER %s: %.200s", addr, shards ?
		    "SHARDS" : "SLOTS", r->str);
	} else if (rcl_split_addr(addr, host, sizeof(host), &port) < 0 ||
	    (shards ? rcl_map_from_shards(r, host, &m) : rcl_map_from_slots(r, host,
	    &m)) < 0) {
		snprintf(err, errsz, "redis at %s: the cluster's slot map cannot be read",
		    addr);
	} else {
		rc = cl_map_apply(cl, &m, err, errsz);
	}
	rcl_map_clear(&m);
	freeReplyObject(r);
	return rc;
}

/* Reads the map again: from the primaries known, then the seeds. 0, or -1 with the
 * last node's reason in err (the map in force is then the one before). */
static int
cl_map_read(struct ctl_cluster *cl, char *err, size_t errsz)
{
	int order[CTL_CL_NODES_MAX + CTL_CLUSTER_SEEDS_MAX], n = 0, i, k, s;
	short keep[SLOT_COUNT];
	int keep_p[CTL_CL_NODES_MAX], keep_np = cl->nprimaries;

	for (i = 0; i < cl->nprimaries; i++)
		order[n++] = cl->primaries[i];
	for (s = 0; s < cl->nseeds; s++) {
		if ((i = cl_node(cl, cl->seeds[s])) < 0)
			continue;
		for (k = 0; k < n && order[k] != i; k++)
			;
		if (k == n)
			order[n++] = i;
	}
	memcpy(keep, cl->slots, sizeof(keep));
	memcpy(keep_p, cl->primaries, sizeof(keep_p));
	for (k = 0; k < n; k++)
		if (cl_map_from(cl, order[k], err, errsz) == 0)
			return 0;
	memcpy(cl->slots, keep, sizeof(keep));
	memcpy(cl->primaries, keep_p, sizeof(keep_p));
	cl->nprimaries = keep_np;
	return -1;
}

struct ctl_cluster *
ctl_cluster_open(const char *seeds, char *err, size_t errsz)
{
	struct ctl_cluster *cl = calloc(1, sizeof(*cl));
	char why[CTL_ERR_MAX];
	int s;

	if (cl == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	if ((cl->nseeds = ctl_cluster_seeds(seeds, cl->seeds, CTL_CLUSTER_SEEDS_MAX, err,
	    errsz)) < 0)
		goto fail;
	for (s = 0; s < SLOT_COUNT; s++)
		cl->slots[s] = -1;
	if (cl_map_read(cl, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "no node of the cluster %.200s gave its slot map; the "
		    "last: %s", seeds, why);
		goto fail;
	}
	return cl;
fail:
	ctl_cluster_free(cl);
	return NULL;
}

void
ctl_cluster_free(struct ctl_cluster *cl)
{
	int i;

	if (cl == NULL)
		return;
	for (i = 0; i < cl->nnodes; i++)
		redisFree(cl->nodes[i].c);
	for (i = 0; i < cl->nscripts; i++)
		free(cl->scripts[i].src);
	free(cl);
}

/* ---- commands ---- */

/* The command's name for messages, into buf. */
static const char *
cl_name(int argc, const char **argv, const size_t *lens, char *buf, size_t size)
{
	size_t n = argc > 0 ? (lens != NULL ? lens[0] : strlen(argv[0])) : 0;
	size_t i;

	if (n > 24)
		n = 24;
	for (i = 0; i < n && i + 1 < size; i++)
		buf[i] = argv[0][i] >= 'a' && argv[0][i] <= 'z' ? (char)(argv[0][i] - 32) :
		    argv[0][i] >= ' ' && argv[0][i] <= '~' ? argv[0][i] : '?';
	buf[i] = '\0';
	return buf;
}

/* One command on node i (after ASKING when asking). The reply (the caller's), or
 * NULL with why in err; the connection is dropped then (it may have run). */
static redisReply *
cl_send(struct ctl_cluster *cl, int i, int asking, int argc, const char **argv,
    const size_t *lens, char *err, size_t errsz)
{
	redisContext *c = cl_conn(cl, i, err, errsz);
	redisReply *a = NULL, *r = NULL;

	if (c == NULL)
		return NULL;   /* not connected: nothing was sent */
	if ((asking && redisAppendCommand(c, "ASKING") != REDIS_OK) ||
	    redisAppendCommandArgv(c, argc, argv, lens) != REDIS_OK ||
	    (asking && redisGetReply(c, (void **)&a) != REDIS_OK) ||
	    redisGetReply(c, (void **)&r) != REDIS_OK) {
		snprintf(err, errsz, "redis at %s: %s", cl->nodes[i].addr, c->errstr[0] ?
		    c->errstr : "no reply");
		freeReplyObject(a);
		cl_drop(cl, i);
		return NULL;
	}
	freeReplyObject(a);    /* ASKING's OK; an error would show in the command's */
	return r;
}

void
ctl_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* MOVED to node i for slot: the map read again, and the slot given to i whatever
 * the node asked says (the redirect is the freshest word on it). */
static void
cl_moved(struct ctl_cluster *cl, int slot, int i)
{
	char why[CTL_ERR_MAX];
	int k;

	(void)cl_map_read(cl, why, sizeof(why));
	cl->slots[slot] = (short)i;
	for (k = 0; k < cl->nprimaries && cl->primaries[k] != i; k++)
		;
	if (k == cl->nprimaries)
		cl->primaries[cl->nprimaries++] = i;
}

/* 1 when argument k of the command is word (any case). */
static int
cl_arg_is(int argc, const char **argv, const size_t *lens, int k, const char *word)
{
	size_t n = strlen(word);

	return k < argc && (lens != NULL ? lens[k] : strlen(argv[k])) == n &&
	    strncasecmp(argv[k], word, n) == 0;
}

/* After a SCRIPT LOAD answered r by every primary: the script kept by its SHA1. */
static void
cl_script_keep(struct ctl_cluster *cl, int argc, const char **argv, const size_t *lens,
    const redisReply *r)
{
	struct ctl_cl_script *s;
	size_t n;
	int k;

	if (argc != 3 || !cl_arg_is(argc, argv, lens, 0, "SCRIPT") ||
	    !cl_arg_is(argc, argv, lens, 1, "LOAD") || r->type != REDIS_REPLY_STRING ||
	    r->len != 40)
		return;
	for (k = 0; k < cl->nscripts; k++)
		if (memcmp(cl->scripts[k].sha, r->str, 40) == 0)
			return;
	if (cl->nscripts == CTL_CL_SCRIPTS)
		return;        /* NOSCRIPT then stays an error, as without this */
	s = &cl->scripts[cl->nscripts];
	n = lens != NULL ? lens[2] : strlen(argv[2]);
	if ((s->src = malloc(n + 1)) == NULL)
		return;
	memcpy(s->src, argv[2], n);
	s->src[n] = '\0';
	memcpy(s->sha, r->str, 40);
	s->sha[40] = '\0';
	cl->nscripts++;
}

/*
 * An EVALSHA node i answered NOSCRIPT: the script this run loaded under that SHA1 is
 * loaded there. 1 when the command may be sent again (NOSCRIPT: it did not run), 0
 * when not (not an EVALSHA of ours, or the load failed).
 */
static int
cl_script_reload(struct ctl_cluster *cl, int i, int argc, const char **argv,
    const size_t *lens, const redisReply *r)
{
	const char *load[3] = { "SCRIPT", "LOAD", NULL };
	char err[CTL_ERR_MAX];
	redisReply *l;
	int k, ok;

	if (strncmp(r->str, "NOSCRIPT", 8) != 0 || argc < 2 ||
	    !cl_arg_is(argc, argv, lens, 0, "EVALSHA") ||
	    (lens != NULL ? lens[1] : strlen(argv[1])) != 40)
		return 0;
	for (k = 0; k < cl->nscripts && memcmp(cl->scripts[k].sha, argv[1], 40) != 0; k++)
		;
	if (k == cl->nscripts)
		return 0;
	load[2] = cl->scripts[k].src;
	if ((l = cl_send(cl, i, 0, 3, load, NULL, err, sizeof(err))) == NULL)
		return 0;
	ok = l->type == REDIS_REPLY_STRING && l->len == 40 &&
	    memcmp(l->str, cl->scripts[k].sha, 40) == 0;
	freeReplyObject(l);
	return ok;
}

/* A keyed command (slot >= 0) or one for any primary (slot -1), redirects and
 * retries followed. The reply (the caller's; an error reply when the retries ran
 * out), or NULL with why in err. */
static redisReply *
cl_route(struct ctl_cluster *cl, int slot, int argc, const char **argv,
    const size_t *lens, char *err, size_t errsz)
{
	char name[32], to[RCL_ADDR_MAX], why[CTL_ERR_MAX];
	int redirects = 0, retries = 0, asking = 0, reloaded = 0, i, rslot;
	long wait_ms = CTL_CL_RETRY_MS;
	redisReply *r;

	cl_name(argc, argv, lens, name, sizeof(name));
	for (;;) {
		if (asking)
			i = cl_node(cl, to);
		else
			i = slot >= 0 ? cl->slots[slot] : cl->primaries[0];
		if (i < 0) {
			/* No primary for the slot in the map: read it again, a few times. */
			if (asking || ++retries > CTL_CL_RETRIES ||
			    cl_map_read(cl, why, sizeof(why)) < 0) {
				snprintf(err, errsz, "%s: no primary serves slot %d in the cluster's "
				    "map", name, slot);
				return NULL;
			}
			continue;
		}
		if (cl_conn(cl, i, err, errsz) == NULL) {
			/* Nothing was sent: a failover may be under way; the map again. */
			if (!asking && ++retries <= CTL_CL_RETRIES &&
			    cl_map_read(cl, why, sizeof(why)) == 0 &&
			    (slot >= 0 ? cl->slots[slot] : cl->primaries[0]) != i)
				continue;
			return NULL;
		}
		if ((r = cl_send(cl, i, asking, argc, argv, lens, err, errsz)) == NULL)
			return NULL;
		asking = 0;
		if (r->type != REDIS_REPLY_ERROR)
			return r;
		switch (ctl_cluster_redirect(r->str, cl->nodes[i].addr, &rslot, to,
		    sizeof(to))) {
		case CTL_REDIRECT_MOVED:
		case CTL_REDIRECT_ASK:
			if (++redirects > CTL_CL_REDIRECTS) {
				snprintf(err, errsz, "%s: still redirected after %d redirects (the "
				    "last: %.100s); is the cluster being resharded?", name,
				    CTL_CL_REDIRECTS, r->str);
				freeReplyObject(r);
				return NULL;
			}
			if (strncmp(r->str, "ASK", 3) == 0)
				asking = 1;
			else if ((i = cl_node(cl, to)) >= 0)
				cl_moved(cl, rslot, i);
			freeReplyObject(r);
			continue;
		case CTL_REDIRECT_TRYAGAIN:
		case CTL_REDIRECT_DOWN:
			if (++retries > CTL_CL_RETRIES)
				return r;   /* the caller prints Redis' own error */
			if (strncmp(r->str, "CLUSTERDOWN", 11) == 0)
				(void)cl_map_read(cl, why, sizeof(why));
			freeReplyObject(r);
			ctl_sleep_ms(wait_ms);
			wait_ms *= 2;
			continue;
		case CTL_REDIRECT_BAD:
			snprintf(err, errsz, "%s: a redirect that cannot be read: %.100s", name,
			    r->str);
			freeReplyObject(r);
			return NULL;
		case CTL_REDIRECT_NONE:
			if (!reloaded && cl_script_reload(cl, i, argc, argv, lens, r)) {
				reloaded = 1;
				freeReplyObject(r);
				continue;
			}
			break;
		}
		return r;
	}
}

/* 1 when a and b are the same answer (type and value; arrays are not compared). */
static int
cl_same(const redisReply *a, const redisReply *b)
{
	if (a->type != b->type)
		return 0;
	switch (a->type) {
	case REDIS_REPLY_STRING:
	case REDIS_REPLY_STATUS:
	case REDIS_REPLY_ERROR:
		return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
	case REDIS_REPLY_INTEGER:
		return a->integer == b->integer;
	case REDIS_REPLY_NIL:
		return 1;
	default:
		return 0;
	}
}

/* The command on every primary: the first answer when all agree, the first error
 * reply any gave, else NULL with why. */
static redisReply *
cl_every(struct ctl_cluster *cl, int argc, const char **argv, const size_t *lens,
    char *err, size_t errsz)
{
	redisReply *first = NULL, *r;
	char name[32];
	int k;

	for (k = 0; k < cl->nprimaries; k++) {
		int i = cl->primaries[k];

		if ((r = cl_send(cl, i, 0, argc, argv, lens, err, errsz)) == NULL) {
			freeReplyObject(first);
			return NULL;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			freeReplyObject(first);
			return r;
		}
		if (first == NULL) {
			first = r;
			continue;
		}
		if (!cl_same(first, r)) {
			snprintf(err, errsz, "%s: the primaries answered differently (%s and "
			    "another)", cl_name(argc, argv, lens, name, sizeof(name)),
			    cl->nodes[i].addr);
			freeReplyObject(r);
			freeReplyObject(first);
			return NULL;
		}
		freeReplyObject(r);
	}
	return first;
}

redisReply *
ctl_cluster_argv(struct ctl_cluster *cl, int argc, const char **argv,
    const size_t *lens, char *err, size_t errsz)
{
	struct rroute rt;
	redisReply *r;
	char name[32];

	switch (rroute_of(argc, argv, lens, &rt)) {
	case RROUTE_KEY:
		return cl_route(cl, rt.slot, argc, argv, lens, err, errsz);
	case RROUTE_ANY:
		return cl_route(cl, -1, argc, argv, lens, err, errsz);
	case RROUTE_EVERY:
		if ((r = cl_every(cl, argc, argv, lens, err, errsz)) != NULL)
			cl_script_keep(cl, argc, argv, lens, r);
		return r;
	case RROUTE_CROSSSLOT:
		snprintf(err, errsz, "%s: its keys are in several hash slots, which a Redis "
		    "Cluster cannot run as one command", cl_name(argc, argv, lens, name,
		    sizeof(name)));
		return NULL;
	case RROUTE_SAME:
	case RROUTE_NODES:
	case RROUTE_UNKNOWN:
		break;
	}
	snprintf(err, errsz, "%s: not a command dealpushctl sends on a Redis Cluster "
	    "(rroute.c has no route for it)", cl_name(argc, argv, lens, name,
	    sizeof(name)));
	return NULL;
}

/* ---- the primaries one by one (the copy of ctl_fromcluster.c) ---- */

int
ctl_cluster_nprimaries(const struct ctl_cluster *cl)
{
	return cl->nprimaries;
}

const char *
ctl_cluster_primary_addr(const struct ctl_cluster *cl, int k)
{
	return k >= 0 && k < cl->nprimaries ? cl->nodes[cl->primaries[k]].addr : "";
}

redisContext *
ctl_cluster_primary_conn(struct ctl_cluster *cl, int k, char *err, size_t errsz)
{
	if (k < 0 || k >= cl->nprimaries) {
		snprintf(err, errsz, "no primary %d in the cluster's map", k);
		return NULL;
	}
	return cl_conn(cl, cl->primaries[k], err, errsz);
}

redisContext *
ctl_cluster_conn_at(struct ctl_cluster *cl, const char *addr, char *err, size_t errsz)
{
	int i = cl_node(cl, addr);

	if (i < 0) {
		snprintf(err, errsz, "the cluster names more than %d nodes", CTL_CL_NODES_MAX);
		return NULL;
	}
	return cl_conn(cl, i, err, errsz);
}

int
ctl_cluster_uncovered(const struct ctl_cluster *cl)
{
	int s, n = 0;

	for (s = 0; s < SLOT_COUNT; s++)
		n += cl->slots[s] < 0;
	return n;
}

int
ctl_cluster_map_same(struct ctl_cluster *cl, char *err, size_t errsz)
{
	short *keep = malloc(sizeof(cl->slots));
	int same;

	if (keep == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	memcpy(keep, cl->slots, sizeof(cl->slots));
	if (cl_map_read(cl, err, errsz) < 0) {
		free(keep);
		return -1;
	}
	/* A node keeps its index in nodes[] for the router's life: the same index is the
	 * same address. */
	same = memcmp(keep, cl->slots, sizeof(cl->slots)) == 0;
	free(keep);
	return same;
}
