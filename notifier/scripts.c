/*
 * scripts.c: load and call the embedded Lua scripts by SHA1 (stage: plan, admit,
 * record).
 *
 * Holds only constants after scripts_init(): the SHA1 of each script, computed with
 * OpenSSL at start-up, so an EVALSHA never waits for a SCRIPT LOAD reply.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include "log.h"
#include "scripts.h"

/* Generated from the scripts in notifier/lua by deploy/embed-lua.sh; ends with NULL. */
extern const struct { const char *name; const char *body; } lua_sources[];

struct script {
	const char *name;
	const char *body;
	char sha[41];
};

#define SCRIPTS_MAX 64

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

int
scripts_init(void)
{
	unsigned char md[SHA_DIGEST_LENGTH];
	size_t i, j, k;

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
	for (i = 0; i < script_count; i++) {
		const char *b = script_table[i].body;

		if (SHA1((const unsigned char *)b, strlen(b), md) == NULL)
			return -1;
		for (j = 0; j < SHA_DIGEST_LENGTH; j++)
			snprintf(script_table[i].sha + 2 * j, 3, "%02x", md[j]);
	}
	return 0;
}

const char *
script_source(const char *name)
{
	size_t k;

	for (k = 0; lua_sources[k].name != NULL; k++)
		if (strcmp(lua_sources[k].name, name) == 0)
			return lua_sources[k].body;
	return NULL;
}

const char *
script_name(enum script_id id)
{
	return (unsigned)id < script_count ? script_table[id].name : "?";
}

static void
scripts_on_load(struct rconn *rc, struct redisReply *reply, void *arg)
{
	const struct script *s = arg;

	(void)rc;
	if (reply == NULL)
		log_warnx("script=%s event=load_failed err=\"no reply\"", s->name);
	else if (reply->type == REDIS_REPLY_ERROR)
		log_errorx("script=%s event=load_failed err=\"%s\"", s->name, reply->str);
	else if (reply->type != REDIS_REPLY_STRING || strcmp(reply->str, s->sha) != 0)
		log_errorx("script=%s event=load_failed err=\"sha mismatch\"", s->name);
}

void
scripts_load(struct rconn *rc)
{
	size_t i;

	for (i = 0; i < script_count; i++) {
		const char *argv[3] = { "SCRIPT", "LOAD", script_table[i].body };

		if (rconn_argv(rc, scripts_on_load, &script_table[i], 0, 3, argv, NULL) < 0)
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
	sc.cb(rc, reply, sc.arg);
}

int
script_call(struct rconn *rc, enum script_id id, int nkeys, int nargs,
    const char **args, const size_t *lens, rconn_reply_fn *cb, void *arg)
{
	const char **argv = NULL;
	size_t *argvlen = NULL;
	struct script_call *sc = NULL;
	char nk[16];
	int i, r = -1;

	if ((unsigned)id >= script_count || nargs < nkeys || nargs > SCRIPT_ARGS_MAX)
		return -1;
	argv = malloc(sizeof(*argv) * (size_t)(nargs + 3));
	argvlen = malloc(sizeof(*argvlen) * (size_t)(nargs + 3));
	sc = malloc(sizeof(*sc));
	if (argv == NULL || argvlen == NULL || sc == NULL)
		goto out;
	snprintf(nk, sizeof(nk), "%d", nkeys);
	argv[0] = "EVALSHA";
	argv[1] = script_table[id].sha;
	argv[2] = nk;
	for (i = 0; i < 3; i++)
		argvlen[i] = strlen(argv[i]);
	for (i = 0; i < nargs; i++) {
		argv[i + 3] = args[i];
		argvlen[i + 3] = lens != NULL ? lens[i] : strlen(args[i]);
	}
	sc->cb = cb;
	sc->arg = arg;
	r = rconn_argv(rc, script_on_reply, sc, 0, nargs + 3, argv, argvlen);
	if (r == 0)
		sc = NULL;
out:
	free(sc);
	free(argv);
	free(argvlen);
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
