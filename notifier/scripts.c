/*
 * scripts.c: load and call the embedded Lua scripts by SHA1 (stage: plan, admit,
 * record).
 *
 * Holds only constants after scripts_init(): each script once per stored format
 * version this release writes (formats.h: a one-line prelude naming the version,
 * then the file), and the SHA1 of each, computed with OpenSSL at start-up, so an
 * EVALSHA never waits for a SCRIPT LOAD reply. A call runs the variant of the version
 * written now (formats_write()).
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "formats.h"
#include "layout.h"
#include "log.h"
#include "scripts.h"
#include "slot.h"

/* Generated from the scripts in notifier/lua by deploy/embed-lua.sh; ends with NULL. */
extern const struct { const char *name; const char *body; } lua_sources[];

struct script {
	const char *name;
	const char *body;                      /* the file, as embedded */
	char *text[FORMATS_READ_MAX];          /* prelude + body, per version (owned) */
	char sha[FORMATS_READ_MAX][41];
};

#define SCRIPTS_MAX 96

/* Every embedded script by name; the enum's names come first, in its order.
 * ORDER SCRIPT: keep script_enum_names in enum script_id's order. */
static const char *const script_enum_names[SCRIPT_COUNT] = {
	"plan", "dead", "cancel", "admit", "send", "delay", "record",
};
static struct script script_table[SCRIPTS_MAX];
static size_t script_count;

/* The embedded script named name, or -1. */
static int
script_index(const char *name)
{
	size_t i;

	for (i = 0; i < script_count; i++)
		if (strcmp(script_table[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* prelude + body in a new string, or NULL on OOM. */
static char *
script_text(int version, const char *body)
{
	const char *pre = formats_lua_prelude(version);
	size_t np, nb;
	char *t;

	if (pre == NULL)
		return NULL;
	np = strlen(pre);
	nb = strlen(body);
	if ((t = malloc(np + nb + 1)) == NULL)
		return NULL;
	memcpy(t, pre, np);
	memcpy(t + np, body, nb + 1);
	return t;
}

static void
scripts_free_texts(void)
{
	size_t i;
	int v;

	for (i = 0; i < script_count; i++)
		for (v = 0; v < FORMATS_READ_MAX; v++) {
			free(script_table[i].text[v]);
			script_table[i].text[v] = NULL;
		}
}

int
scripts_init(void)
{
	unsigned char md[SHA_DIGEST_LENGTH];
	size_t i, j, k;
	int v;

	scripts_free_texts();
	script_count = 0;
	/* The enum's scripts first, at their enum index. */
	for (i = 0; i < SCRIPT_COUNT; i++) {
		for (k = 0; lua_sources[k].name != NULL; k++)
			if (strcmp(lua_sources[k].name, script_enum_names[i]) == 0)
				break;
		if (lua_sources[k].name == NULL)
			return -1;
		script_table[script_count].name = lua_sources[k].name;
		script_table[script_count++].body = lua_sources[k].body;
	}
	for (k = 0; lua_sources[k].name != NULL; k++) {
		if (script_index(lua_sources[k].name) >= 0)
			continue;
		if (script_count == SCRIPTS_MAX)
			return -1;
		script_table[script_count].name = lua_sources[k].name;
		script_table[script_count++].body = lua_sources[k].body;
	}
	for (i = 0; i < script_count; i++)
		for (v = 0; v < FORMATS_READ_MAX; v++) {
			struct script *s = &script_table[i];
			char *t = s->text[v] = script_text(v + 1, s->body);

			if (t == NULL ||
			    SHA1((const unsigned char *)t, strlen(t), md) == NULL)
				return -1;
			for (j = 0; j < SHA_DIGEST_LENGTH; j++)
				snprintf(s->sha[v] + 2 * j, 3, "%02x", md[j]);
		}
	return 0;
}

const char *
script_source(const char *name)
{
	/* Built on first use, per version; kept for the life of the process. */
	static char *made[SCRIPTS_MAX][FORMATS_READ_MAX];
	int v = formats_write() - 1;
	size_t k;

	for (k = 0; lua_sources[k].name != NULL && k < SCRIPTS_MAX; k++) {
		if (strcmp(lua_sources[k].name, name) != 0)
			continue;
		if (made[k][v] == NULL)
			made[k][v] = script_text(v + 1, lua_sources[k].body);
		return made[k][v];
	}
	return NULL;
}

const char *
script_name(enum script_id id)
{
	return (unsigned)id < script_count ? script_table[id].name : "?";
}

/* arg: the SHA the reply must be (one variant of one script, see scripts_load). */
static void
scripts_on_load(struct rconn *rc, struct redisReply *reply, void *arg)
{
	const char *sha = arg;
	size_t i = (size_t)(sha - script_table[0].sha[0]) / sizeof(script_table[0]);
	const char *name = i < script_count ? script_table[i].name : "?";

	(void)rc;
	if (reply == NULL)
		log_warnx("script=%s event=load_failed err=\"no reply\"", name);
	else if (reply->type == REDIS_REPLY_ERROR)
		log_errorx("script=%s event=load_failed err=\"%s\"", name, reply->str);
	else if (reply->type != REDIS_REPLY_STRING || strcmp(reply->str, sha) != 0)
		log_errorx("script=%s event=load_failed err=\"sha mismatch\"", name);
}

void
scripts_load(struct rconn *rc)
{
	size_t i;
	int v;

	/* Every version's variant: the deployment's version can change while running. */
	for (i = 0; i < script_count; i++)
		for (v = 0; v < FORMATS_READ_MAX; v++) {
			const char *argv[3] = { "SCRIPT", "LOAD", script_table[i].text[v] };

			if (rconn_argv(rc, scripts_on_load, script_table[i].sha[v], 0, 3, argv,
			    NULL) < 0)
				log_warnx("script=%s event=load_failed err=\"not connected\"",
				    script_table[i].name);
		}
}

struct script_call {
	rconn_reply_fn *cb;
	void *arg;
};

static void
script_on_reply(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct script_call sc = *(struct script_call *)arg;

	free(arg);
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
	    strncmp(reply->str, "NOSCRIPT", 8) == 0) {
		log_warnx("event=noscript action=reload");
		scripts_load(rc);
	}
	if (sc.cb != NULL)
		sc.cb(rc, reply, sc.arg);
}

/* Makes room for n more bytes in b. Returns 0, or -1 on OOM. */
static int
sbuf_room(struct script_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->cap - b->len >= n)
		return 0;
	cap = b->cap != 0 ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	if ((p = realloc(b->p, cap)) == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Writes v in decimal at p; returns the number of characters. */
static size_t
put_ull(char *p, unsigned long long v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n; i++)
		p[i] = tmp[n - 1 - i];
	return n;
}

/* Appends one bulk string "$<len>\r\n<head><tail>\r\n" to b. */
static int
sbuf_bulk(struct script_buf *b, const char *head, size_t hlen, const char *tail,
    size_t tlen)
{
	char *p;

	if (sbuf_room(b, hlen + tlen + 32) < 0)
		return -1;
	p = b->p + b->len;
	*p++ = '$';
	p += put_ull(p, hlen + tlen);
	*p++ = '\r';
	*p++ = '\n';
	memcpy(p, head, hlen);
	p += hlen;
	if (tlen > 0)
		memcpy(p, tail, tlen);
	p += tlen;
	*p++ = '\r';
	*p++ = '\n';
	b->len = (size_t)(p - b->p);
	return 0;
}

static void
args_add(struct script_args *a, struct script_buf *b, int *count, const char *head,
    size_t hlen, const char *tail, size_t tlen)
{
	if (a->failed)
		return;
	if (a->nkeys + a->nargs >= SCRIPT_ARGS_MAX ||
	    sbuf_bulk(b, head, hlen, tail, tlen) < 0) {
		a->failed = 1;
		return;
	}
	(*count)++;
}

void
script_key(struct script_args *a, const char *head, const char *tail)
{
	args_add(a, &a->keys, &a->nkeys, head, strlen(head), tail,
	    tail != NULL ? strlen(tail) : 0);
}

void
script_arg(struct script_args *a, const char *head, const char *tail)
{
	args_add(a, &a->args, &a->nargs, head, strlen(head), tail,
	    tail != NULL ? strlen(tail) : 0);
}

void
script_arg_ll(struct script_args *a, long long v)
{
	char num[24];
	size_t n = 0;

	if (v < 0)
		num[n++] = '-';
	n += put_ull(num + n, v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v);
	args_add(a, &a->args, &a->nargs, num, n, NULL, 0);
}

static void
script_args_empty(struct script_args *a)
{
	a->keys.len = a->args.len = a->cmd.len = 0;
	a->nkeys = a->nargs = 0;
	a->failed = 0;
}

/*
 * The keys of a into c. A script takes "" for a key it skips ("none"); on a Redis
 * Cluster an empty name hashes to slot 0, and a call whose keys are on two slots is
 * refused (CROSSSLOT). So in the sharded layout each "" goes out as "{<tag>}\0", the
 * hashed part of the call's first named key as a tag, and a NUL byte no key name
 * ends with: the prelude of every script (formats.c) turns it back into "" before
 * the script runs. Without a named key, or with a tag a placeholder cannot repeat
 * (a brace in it), the keys go as they are. Returns 0, or -1 on OOM.
 */
static int
script_keys_out(struct script_buf *c, const struct script_args *a)
{
	const char *p = a->keys.p, *end = p + a->keys.len, *first = NULL, *q;
	size_t flen = 0, off, tn, i, nempty = 0;
	char *ph;
	int rv;

	/* One Redis without a layout: "" as it is, and nothing to look for. */
	for (q = p; q < end && layout_current() != NULL; ) {
		unsigned long long n = strtoull(q + 1, NULL, 10);
		const char *body = memchr(q, '\n', (size_t)(end - q)) + 1;

		if (n == 0)
			nempty++;
		else if (first == NULL) {
			first = body;
			flen = (size_t)n;
		}
		q = body + n + 2;
	}
	if (nempty == 0 || first == NULL) {
		if (a->keys.len > 0)
			memcpy(c->p + c->len, a->keys.p, a->keys.len);
		c->len += a->keys.len;
		return 0;
	}
	slot_hashed(first, flen, &off, &tn);
	for (i = 0; i < tn; i++)
		if (first[off + i] == '{' || first[off + i] == '}')
			break;
	if (i < tn || (ph = malloc(tn + 3)) == NULL) {
		if (i < tn) {
			memcpy(c->p + c->len, a->keys.p, a->keys.len);
			c->len += a->keys.len;
			return 0;
		}
		return -1;
	}
	ph[0] = '{';
	memcpy(ph + 1, first + off, tn);
	ph[tn + 1] = '}';
	ph[tn + 2] = '\0';
	rv = 0;
	for (q = p; q < end && rv == 0; ) {
		unsigned long long n = strtoull(q + 1, NULL, 10);
		const char *body = memchr(q, '\n', (size_t)(end - q)) + 1;

		rv = n == 0 ? sbuf_bulk(c, ph, tn + 3, NULL, 0) : sbuf_bulk(c, body, (size_t)n,
		    NULL, 0);
		q = body + n + 2;
	}
	free(ph);
	return rv;
}

int
script_args_command(enum script_id id, struct script_args *a)
{
	struct script_buf *c = &a->cmd;
	char head[32], nk[24];
	size_t n;

	if ((unsigned)id >= script_count || a->failed)
		return -1;
	/* *<count> EVALSHA <sha> <nkeys>, then the keys, then the other arguments. */
	head[0] = '*';
	n = 1 + put_ull(head + 1, (unsigned long long)(a->nkeys + a->nargs + 3));
	head[n++] = '\r';
	head[n++] = '\n';
	c->len = 0;
	if (sbuf_room(c, n + a->keys.len + a->args.len + 128) < 0)
		return -1;
	memcpy(c->p, head, n);
	c->len = n;
	n = put_ull(nk, (unsigned long long)a->nkeys);
	if (sbuf_bulk(c, "EVALSHA", 7, NULL, 0) < 0 ||
	    sbuf_bulk(c, script_table[id].sha[formats_write() - 1], 40, NULL, 0) < 0 ||
	    sbuf_bulk(c, nk, n, NULL, 0) < 0)
		return -1;
	if (script_keys_out(c, a) < 0 || sbuf_room(c, a->args.len) < 0)
		return -1;
	if (a->args.len > 0)
		memcpy(c->p + c->len, a->args.p, a->args.len);
	c->len += a->args.len;
	return 0;
}

int
script_call_args(struct rconn *rc, enum script_id id, struct script_args *a,
    rconn_reply_fn *cb, void *arg)
{
	struct script_buf *c = &a->cmd;
	struct script_call *sc = NULL;
	int r = -1;

	if (script_args_command(id, a) < 0)
		goto out;
	if ((sc = malloc(sizeof(*sc))) == NULL)
		goto out;
	sc->cb = cb;
	sc->arg = arg;
	r = rconn_formatted(rc, script_on_reply, sc, 0, c->p, c->len);
	if (r == 0)
		sc = NULL;
out:
	free(sc);
	script_args_empty(a);
	return r;
}

void
script_args_release(struct script_args *a)
{
	free(a->keys.p);
	free(a->args.p);
	free(a->cmd.p);
	memset(a, 0, sizeof(*a));
}

int
script_call(struct rconn *rc, enum script_id id, int nkeys, int nargs,
    const char **args, const size_t *lens, rconn_reply_fn *cb, void *arg)
{
	struct script_args a = { 0 };
	int i, r;

	if ((unsigned)id >= script_count || nargs < nkeys || nargs > SCRIPT_ARGS_MAX)
		return -1;
	for (i = 0; i < nargs; i++)
		args_add(&a, i < nkeys ? &a.keys : &a.args, i < nkeys ? &a.nkeys : &a.nargs,
		    args[i], lens != NULL ? lens[i] : strlen(args[i]), NULL, 0);
	r = script_call_args(rc, id, &a, cb, arg);
	script_args_release(&a);
	return r;
}

int
script_call_named(struct rconn *rc, const char *name, int nkeys, int nargs,
    const char **args, const size_t *lens, rconn_reply_fn *cb, void *arg)
{
	int i = script_index(name);

	if (i < 0)
		return -1;
	return script_call(rc, (enum script_id)i, nkeys, nargs, args, lens, cb, arg);
}
