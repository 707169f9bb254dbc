/*
 * bench_script_cost.c: where Redis' time per push goes, script by script (issue 11,
 * deliver_throughput). INFO commandstats counts EVALSHA as one name; this bench runs
 * bench_deliver's workload (as a child: BENCH_DELIVER_SUBS passes through) with the
 * slow log recording every command of 10 µs or more (BENCH_COST_SLOWER_US; 0 = all:
 * see COST_SLOWER_US) and drains it every
 * 50 ms with MULTI / SLOWLOG GET / SLOWLOG RESET / EXEC, so no entry is lost. Each
 * EVALSHA entry's duration (the script with every command it runs) is added to the
 * script whose SHA1 it names: every .lua file of notifier/lua, loaded with SCRIPT LOAD from
 * the build's embedded text. The commands a script runs are logged too (client
 * "?:0", each just before its script's own entry): they are added to that script by
 * name, and a script's time minus its commands' is the Lua interpreter's own
 * (argument tables, string operations, building the command calls).
 * Per push = over the entries on pushes:log at the end (the measured deal and the
 * warm-up deal; bench_deliver flushes Redis first). The slow log's own bookkeeping
 * lies outside the durations it records but slows the run: read pushes/s from
 * bench_deliver alone. Test code: it blocks, sleeps and forks. Restores the two slow
 * log settings at the end. Ends with one BENCH line; exits non-zero when the setup or
 * bench_deliver fails.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "itest.h"
#include "scripts.h"

#define COST_NAMES_MAX 96
#define COST_DRAIN_MS 50
#define COST_SLOWLOG_LEN "200000"
/* Logged: every command of at least this many µs (BENCH_COST_SLOWER_US). 10 logs every
 * script call (batches of 30-100 pushes: 300 µs and more) and almost none of the
 * commands inside them, whose log entries would be made inside the script's time;
 * 0 logs those too, for the breakdown of a script by command. */
#define COST_SLOWER_US "10"

#define COST_INNER_MAX 24

struct inner {
	char name[32];
	long long calls, usec;
};

struct cost {
	char name[64];          /* script name, or "cmd:<command>" for a top-level one */
	char sha[41];           /* "" for a command */
	long long calls, usec;
	struct inner in[COST_INNER_MAX];        /* the commands it ran, by name */
	int nin;
};

/* Commands run inside a script are logged (client "?:0") before the script's own
 * entry: they wait here until it comes. */
static struct inner pending[COST_INNER_MAX];
static int npending;

static struct cost costs[COST_NAMES_MAX];
static int ncost;

static struct cost *
cost_find(const char *name, const char *sha)
{
	int i;

	for (i = 0; i < ncost; i++)
		if ((sha != NULL && strcmp(costs[i].sha, sha) == 0) ||
		    (sha == NULL && strcmp(costs[i].name, name) == 0))
			return &costs[i];
	if (sha != NULL || ncost == COST_NAMES_MAX)
		return NULL;
	snprintf(costs[ncost].name, sizeof(costs[0].name), "%s", name);
	return &costs[ncost++];
}

/* SCRIPT LOAD of every embedded notifier/lua/<name>.lua found in dir. 0 or -1. */
static int
load_scripts(redisContext *rc, const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	redisReply *r;
	const char *body;
	char name[64];
	size_t len;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL && ncost < COST_NAMES_MAX) {
		len = strlen(e->d_name);
		if (len <= 4 || len - 4 >= sizeof(name) ||
		    strcmp(e->d_name + len - 4, ".lua") != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - 4), e->d_name);
		if ((body = script_source(name)) == NULL)
			continue;
		r = redisCommand(rc, "SCRIPT LOAD %s", body);
		if (r == NULL || r->type != REDIS_REPLY_STRING || r->len != 40) {
			fprintf(stderr, "bench_script_cost: SCRIPT LOAD %s failed\n", name);
			freeReplyObject(r);
			closedir(d);
			return -1;
		}
		snprintf(costs[ncost].name, sizeof(costs[0].name), "%s", name);
		snprintf(costs[ncost].sha, sizeof(costs[0].sha), "%s", r->str);
		ncost++;
		freeReplyObject(r);
	}
	closedir(d);
	return 0;
}

static void
inner_add(struct inner *t, int *n, const char *name, long long calls, long long usec)
{
	int i;

	for (i = 0; i < *n; i++)
		if (strcmp(t[i].name, name) == 0)
			break;
	if (i == *n) {
		if (*n == COST_INNER_MAX)
			return;
		snprintf(t[i].name, sizeof(t[i].name), "%s", name);
		t[i].calls = t[i].usec = 0;
		(*n)++;
	}
	t[i].calls += calls;
	t[i].usec += usec;
}

/* One slow log entry: [id, time, usec, [args...], client, name]. */
static void
add_entry(const redisReply *e)
{
	const redisReply *args;
	struct cost *c;
	char cmd[64];
	size_t i;

	if (e->type != REDIS_REPLY_ARRAY || e->elements < 4 ||
	    e->element[2]->type != REDIS_REPLY_INTEGER ||
	    e->element[3]->type != REDIS_REPLY_ARRAY || e->element[3]->elements == 0)
		return;
	args = e->element[3];
	snprintf(cmd, sizeof(cmd), "%s", args->element[0]->str ? args->element[0]->str : "?");
	for (i = 0; cmd[i]; i++)
		cmd[i] = (char)(cmd[i] >= 'A' && cmd[i] <= 'Z' ? cmd[i] - 'A' + 'a' : cmd[i]);
	if (e->elements > 4 && e->element[4]->type == REDIS_REPLY_STRING &&
	    e->element[4]->str[0] == '?') {
		inner_add(pending, &npending, cmd, 1, e->element[2]->integer);
		return;
	}
	/* Our own draining and stats reads are not the notifier's. */
	if (strcmp(cmd, "slowlog") == 0 || strcmp(cmd, "multi") == 0 ||
	    strcmp(cmd, "exec") == 0 || strcmp(cmd, "info") == 0)
		return;
	c = NULL;
	if (strcmp(cmd, "evalsha") == 0 && args->elements > 1 && args->element[1]->str)
		c = cost_find(NULL, args->element[1]->str);
	if (c == NULL) {
		char key[72];

		snprintf(key, sizeof(key), "cmd:%s", cmd);
		c = cost_find(key, NULL);
	}
	if (c == NULL)
		return;
	c->calls++;
	c->usec += e->element[2]->integer;
	for (i = 0; i < (size_t)npending; i++)
		inner_add(c->in, &c->nin, pending[i].name, pending[i].calls, pending[i].usec);
	npending = 0;
}

/* Moves the slow log into costs, atomically. 0 or -1. */
static int
drain(redisContext *rc)
{
	redisReply *r, *g;
	size_t i;

	redisAppendCommand(rc, "MULTI");
	redisAppendCommand(rc, "SLOWLOG GET -1");
	redisAppendCommand(rc, "SLOWLOG RESET");
	redisAppendCommand(rc, "EXEC");
	for (i = 0; i < 3; i++) {
		if (redisGetReply(rc, (void **)&r) != REDIS_OK)
			return -1;
		freeReplyObject(r);
	}
	if (redisGetReply(rc, (void **)&r) != REDIS_OK)
		return -1;
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
	    (g = r->element[0])->type == REDIS_REPLY_ARRAY)
		for (i = g->elements; i > 0; i--)
			add_entry(g->element[i - 1]);
	freeReplyObject(r);
	return 0;
}

static int
cost_cmp(const void *a, const void *b)
{
	const struct cost *x = a, *y = b;

	return (x->usec < y->usec) - (x->usec > y->usec);
}

static void
config_set(redisContext *rc, const char *name, const char *value)
{
	freeReplyObject(redisCommand(rc, "CONFIG SET %s %s", name, value));
}

int
main(void)
{
	const char *build = getenv("DP_BUILD"), *root = getenv("DP_ROOT");
	const char *rundir = getenv("DP_RUN_DIR");
	char dir[1024], bin[1024], out[1024], slower[32] = "10000", maxlen[32] = "128";
	redisContext *rc;
	redisReply *r;
	long long pushes = 0, total = 0, scripts = 0, inner = 0;
	int i, j, status = 0;
	struct timespec ts = { 0, COST_DRAIN_MS * 1000000L };
	pid_t pid;
	const char *threshold = getenv("BENCH_COST_SLOWER_US");

	if (threshold == NULL || threshold[0] == '\0')
		threshold = COST_SLOWER_US;
	if (build == NULL || root == NULL || rundir == NULL) {
		fprintf(stderr, "bench_script_cost: run me from tests/bench/run.sh\n");
		return 2;
	}
	if ((rc = it_redis_connect(it_redis_port())) == NULL)
		return 2;
	snprintf(dir, sizeof(dir), "%s/notifier/lua", root);
	if (load_scripts(rc, dir) != 0)
		return 2;
	r = redisCommand(rc, "CONFIG GET slowlog-*");
	if (r != NULL && r->type == REDIS_REPLY_ARRAY)
		for (i = 0; i + 1 < (int)r->elements; i += 2) {
			if (strcmp(r->element[i]->str, "slowlog-log-slower-than") == 0)
				snprintf(slower, sizeof(slower), "%s", r->element[i + 1]->str);
			else if (strcmp(r->element[i]->str, "slowlog-max-len") == 0)
				snprintf(maxlen, sizeof(maxlen), "%s", r->element[i + 1]->str);
		}
	freeReplyObject(r);
	config_set(rc, "slowlog-max-len", COST_SLOWLOG_LEN);
	config_set(rc, "slowlog-log-slower-than", threshold);
	freeReplyObject(redisCommand(rc, "SLOWLOG RESET"));

	snprintf(bin, sizeof(bin), "%s/bench/bench_deliver", build);
	snprintf(out, sizeof(out), "%s/bench_script_cost.deliver.log", rundir);
	if ((pid = fork()) < 0)
		return 2;
	if (pid == 0) {
		if (freopen(out, "w", stdout) == NULL)
			_exit(2);
		dup2(fileno(stdout), 2);
		execl(bin, bin, (char *)NULL);
		_exit(127);
	}
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (drain(rc) != 0) {
			fprintf(stderr, "bench_script_cost: SLOWLOG drain failed\n");
			kill(pid, SIGTERM);
			waitpid(pid, &status, 0);
			return 2;
		}
		if (w == pid)
			break;
		nanosleep(&ts, NULL);
	}
	drain(rc);
	config_set(rc, "slowlog-log-slower-than", slower);
	config_set(rc, "slowlog-max-len", maxlen);
	r = redisCommand(rc, "XLEN pushes:log");
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		pushes = r->integer;
	freeReplyObject(r);
	printf("  bench_deliver (its output in %s):\n", out);
	{
		FILE *fp = fopen(out, "r");
		char line[512];

		while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
			if (strncmp(line, "BENCH ", 6) == 0)
				printf("    %s", line + 6);
		if (fp != NULL)
			fclose(fp);
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || pushes <= 0) {
		fprintf(stderr, "bench_script_cost: bench_deliver failed (status %d)\n", status);
		return 1;
	}

	qsort(costs, (size_t)ncost, sizeof(costs[0]), cost_cmp);
	for (i = 0; i < ncost; i++) {
		total += costs[i].usec;
		if (costs[i].sha[0])
			scripts += costs[i].usec;
	}
	printf("  per push: over %lld entries on pushes:log; slow log durations of the "
	    "commands of %s us or more\n", pushes, threshold);
	printf("  %-20s %10s %10s %10s %10s %7s\n", "script / command", "calls",
	    "per push", "us/call", "us/push", "share");
	for (i = 0; i < ncost; i++) {
		if (costs[i].calls == 0)
			continue;
		printf("  %-20s %10lld %10.4f %10.2f %10.3f %6.1f%%\n", costs[i].name,
		    costs[i].calls, (double)costs[i].calls / (double)pushes,
		    (double)costs[i].usec / (double)costs[i].calls,
		    (double)costs[i].usec / (double)pushes,
		    total ? 100.0 * (double)costs[i].usec / (double)total : 0.0);
	}
	printf("  %-20s %10s %10s %10s %10.3f\n", "all", "", "", "",
	    (double)total / (double)pushes);
	printf("  inside each script, per call of it: the commands it ran (slow log), "
	    "then the rest (Lua)\n");
	for (i = 0; i < ncost; i++) {
		long long in_us = 0;

		if (costs[i].calls == 0 || costs[i].nin == 0)
			continue;
		printf("  %s (%.2f us/call):", costs[i].name,
		    (double)costs[i].usec / (double)costs[i].calls);
		for (j = 0; j < costs[i].nin; j++) {
			in_us += costs[i].in[j].usec;
			printf(" %s %.1fx %.2fus", costs[i].in[j].name,
			    (double)costs[i].in[j].calls / (double)costs[i].calls,
			    (double)costs[i].in[j].usec / (double)costs[i].calls);
		}
		printf("; Lua %.2fus (%.0f%%)\n",
		    (double)(costs[i].usec - in_us) / (double)costs[i].calls,
		    100.0 * (double)(costs[i].usec - in_us) / (double)costs[i].usec);
		inner += in_us;
	}
	printf("  in scripts: %.3f us per push, of it %.3f in the commands they run "
	    "and %.3f in Lua\n",
	    (double)scripts / (double)pushes, (double)inner / (double)pushes,
	    (double)(scripts - inner) / (double)pushes);
	printf("BENCH name=script_cost us_per_push=%.2f scripts_us_per_push=%.2f "
	    "lua_us_per_push=%.2f\n", (double)total / (double)pushes,
	    (double)scripts / (double)pushes, (double)(scripts - inner) / (double)pushes);
	redisFree(rc);
	return 0;
}
