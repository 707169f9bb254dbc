/*
 * bench_cluster_scale.c: what a push costs a Redis Cluster against one Redis, through
 * the real notifiers and gwsim (issue 14 item 7; docs/performance.md, docs/operations.md
 * "Sizing a cluster").
 *
 * The same deal to BENCH_CLUSTER_SUBS subscribers (default 20,000) five times, each
 * time with the gateway limits lifted:
 *   single   one redis-server (the runner's), the single-instance layout, one notifier:
 *            the baseline, today's default deployment;
 *   replicated  the same with a replica attached (REPLICAOF), as every cluster
 *            primary has one: what replication costs the primary per push, which
 *            the cluster pays and the single run does not;
 *   sharded  the same Redis with the sharded layout of the same shards, two notifiers
 *            sharing them: what the layout and the ownership cost without a cluster;
 *   cluster  a Redis Cluster on 127.0.0.1 (3 primaries, 3 replicas), the sharded
 *            layout of BENCH_CLUSTER_SHARDS shards (default 16), two notifiers sharing
 *            the shards ([cluster] ownership = balanced);
 *   wait     the same cluster and notifiers restarted with redis.wait_replicas = 1: a
 *            WAIT behind every claim batch (what durability on a replica costs).
 * Subscribers go in through the admin API's bulk import in every run (the same path
 * and the same lines), each run to phones of its own so that no law cap counts an
 * earlier run's text. A warm-up deal to 50 others first (connections and scripts).
 *
 * Measured from the deal's XADD until the deal's report counts every push sent:
 *   pushes_per_s             recipients over the time until gwsim accepted the last;
 *   redis_us_per_push_total  the Redis CPU (INFO cpu: used_cpu_sys + used_cpu_user, the
 *                            whole server) of every primary, summed, over recipients;
 *                            the replicas' is printed apart (the single run has none);
 *   node_balance             the busiest primary's CPU over the primaries' mean;
 *   rss_bytes_per_sub_per_notifier  the busier notifier's RSS growth from before the
 *                            import to after it, over the whole audience;
 *   ratio                    redis_us_per_push_total of cluster over single's;
 *   sharded_ratio            the same of sharded over single's;
 *   replicated_ratio         the same of cluster over replicated's: sharding and the
 *                            cluster against one Redis with the same replication.
 * The Redis CPU is taken net of what each node uses idle (measured for CS_IDLE_MS
 * before each deal: the cluster bus, the lease renewals, the mirror's polls), so
 * that it is per push; both are printed. BENCH_CLUSTER_VERBOSE=1 prints every
 * node's INFO commandstats of each run.
 * Goals (reported, never asserted): ratio <= 1.2, node_balance <= 1.2. Everything runs
 * on one machine: six redis-server, two notifiers and gwsim share its cores, so
 * pushes_per_s here is not what three hosts would send (docs/performance.md says it).
 * Test code: it blocks, sleeps and forks. Ends with one BENCH line; exits non-zero
 * when a setup fails or a run does not send every push.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "benchlib.h"
#include "ithttp.h"
#include "itest.h"
#include "itshards.h"

#define CS_SUBS_DEFAULT 20000L
#define CS_SHARDS_DEFAULT 16L
#define CS_WARM 50
#define CS_BATCH 250                   /* subscribers per bulk request */
#define CS_LINE_MAX 400
#define CS_READY_CAP_MS 120000
#define CS_SEND_CAP_MS 180000
#define CS_POLL_MS 20                  /* gwsim's counter */
#define CS_REPORT_POLL_MS 100
#define CS_IDLE_MS 2000
#define CS_NOTIFIERS 2
#define CS_GOAL_RATIO 1.2
#define CS_GOAL_BALANCE 1.2

/* The gateway's own in-flight limit (its section), then the notifier's, as
 * bench_redis_cost.c: the gateway is not what limits a run. */
#define CS_GW "max_in_flight = 256\n"
#define CS_CONF "admin_token_env = DP_TEST_ADMIN_TOKEN\n" \
	"[deliver]\nmax_in_flight = 256\nbatch = 64\n" \
	"[ingest]\njob_size = 100\nplan_chunk = 1000\n" \
	"[notifier]\nlog_level = warn\n"
#define CS_BALANCED "[cluster]\nownership = balanced\nlease_ms = 3000\n" \
	"lease_margin_ms = 300\nsettle_ms = 1500\n"

/* One measured run. */
struct run {
	const char *name;
	int nodes[IT_CLUSTER_NODES], nnodes;
	int primary[IT_CLUSTER_NODES];
	double cpu0[IT_CLUSTER_NODES], cpu1[IT_CLUSTER_NODES];
	double sys0[IT_CLUSTER_NODES], sys1[IT_CLUSTER_NODES];
	double sys_us;                     /* per push in the primaries' kernel time */
	double idle_us_ms[IT_CLUSTER_NODES];  /* CPU µs per ms while no deal runs */
	double idle_us_per_s;              /* every node's, summed */
	double pushes_per_s, us_primaries, us_replicas, balance;
	double raw_us;                     /* per push, every node, idle not taken off */
	double cmds, cmd_us;               /* commandstats per push, the primaries' */
	long long rss_empty[CS_NOTIFIERS], rss_loaded[CS_NOTIFIERS];
	double rss_per_sub;                /* the busier notifier's growth per subscriber */
};

static long subs_n;
static int verbose;             /* BENCH_CLUSTER_VERBOSE=1: every command's stats */

/* The CPU seconds the Redis on port has used (of them in the kernel into *sys_s),
 * and 1 into *primary when it is one.
 * 0, or -1 when it does not answer. */
static int
redis_cpu(int port, double *cpu_s, double *sys_s, int *primary)
{
	redisContext *c = it_redis_connect(port);
	redisReply *r = c != NULL ? redisCommand(c, "INFO") : NULL;
	const char *sys, *user;
	int rc = -1;

	if (r != NULL && r->type == REDIS_REPLY_STRING && (sys = strstr(r->str, "used_cpu_sys:")) != NULL &&
	    (user = strstr(r->str, "used_cpu_user:")) != NULL) {
		*sys_s = strtod(sys + 13, NULL);
		*cpu_s = *sys_s + strtod(user + 14, NULL);
		*primary = strstr(r->str, "role:master") != NULL;
		rc = 0;
	}
	freeReplyObject(r);
	if (c != NULL)
		redisFree(c);
	return rc;
}

/* Sums INFO commandstats of the Redis on port into *calls and *usec, the
 * benchmark's own INFO and CONFIG calls left out. 0 or -1. */
static int
redis_cmds(int port, double *calls, double *usec)
{
	redisContext *c = it_redis_connect(port);
	redisReply *r = c != NULL ? redisCommand(c, "INFO commandstats") : NULL;
	const char *p;
	int rc = -1;

	*calls = *usec = 0;
	if (r != NULL && r->type == REDIS_REPLY_STRING) {
		for (p = r->str; (p = strstr(p, "cmdstat_")) != NULL; p++) {
			const char *cl = strstr(p, "calls="), *us = strstr(p, "usec=");

			if (strncmp(p, "cmdstat_info:", 13) == 0 ||
			    strncmp(p, "cmdstat_config|", 15) == 0 || cl == NULL || us == NULL)
				continue;
			*calls += strtod(cl + 6, NULL);
			*usec += strtod(us + 5, NULL);
			if (verbose)
				printf("    %d %.*s\n", port, (int)(strchr(p, '\r') != NULL ?
				    strchr(p, '\r') - p : 80), p);
		}
		rc = 0;
	}
	freeReplyObject(r);
	if (c != NULL)
		redisFree(c);
	return rc;
}

/* CONFIG RESETSTAT on the Redis on port. */
static void
redis_resetstat(int port)
{
	redisContext *c = it_redis_connect(port);

	if (c != NULL) {
		freeReplyObject(redisCommand(c, "CONFIG RESETSTAT"));
		redisFree(c);
	}
}

/* Puts n subscribers "<prefix>-1".. of category (phones from first on) through the
 * admin API's bulk import on port. 0 or -1. */
static int
load(int port, const char *prefix, long n, long first, const char *category)
{
	char *jsonl = bench_subscribers_jsonl(prefix, n, first, category), *p, *end;
	struct it_resp *resp = malloc(sizeof(*resp));
	int rc = -1;

	if (jsonl == NULL || resp == NULL)
		goto out;
	for (p = jsonl; *p != '\0'; p = end) {
		char save;
		int lines;

		for (end = p, lines = 0; *end != '\0' && lines < CS_BATCH; end++)
			if (*end == '\n')
				lines++;
		save = *end;
		*end = '\0';
		if (it_shard_api(port, "POST", "/v1/bulk/subscribers", p, resp) / 100 != 2) {
			fprintf(stderr, "bench_cluster_scale: bulk import: %d %.200s\n",
			    resp->status, resp->body);
			goto out;
		}
		*end = save;
	}
	rc = 0;
out:
	free(jsonl);
	free(resp);
	return rc;
}

/* GET /v1/deals/<id> on port: counts.sent, or -1. */
static long
deal_sent(int port, const char *id)
{
	struct it_resp *resp = malloc(sizeof(*resp));
	char path[128];
	cJSON *j = NULL, *sent;
	long n = -1;

	snprintf(path, sizeof(path), "/v1/deals/%s", id);
	if (resp != NULL && it_shard_api(port, "GET", path, NULL, resp) == 200 &&
	    (j = cJSON_Parse(resp->body)) != NULL &&
	    cJSON_IsNumber(sent = cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetObjectItemCaseSensitive(j, "counts"), "sent")))
		n = (long)sent->valuedouble;
	cJSON_Delete(j);
	free(resp);
	return n;
}

/* gwsim's count of accepted messages, or -1. */
static long
gw_accepted(int gw_port)
{
	char body[2048];
	cJSON *j;
	long n = -1;

	if (it_http_get(gw_port, "/_sim/stats", body, sizeof(body)) < 0 ||
	    (j = cJSON_Parse(body)) == NULL)
		return -1;
	if (cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "accepted")))
		n = (long)cJSON_GetObjectItemCaseSensitive(j, "accepted")->valuedouble;
	cJSON_Delete(j);
	return n;
}

/* XADD of a deal to category on `deals` (on its primary when cl is not NULL). */
static int
publish(redisContext *rc, const struct it_cluster *cl, const char *id,
    const char *category)
{
	redisReply *r = cl != NULL ?
	    it_cluster_cmd(cl, "XADD deals * deal %s", it_deal(id, category, 3600)) :
	    redisCommand(rc, "XADD deals * deal %s", it_deal(id, category, 3600));
	int ok = r != NULL && r->type == REDIS_REPLY_STRING;

	freeReplyObject(r);
	return ok ? 0 : -1;
}

/* The CPU each node of run uses while nothing is sent (CS_IDLE_MS): the cluster bus,
 * the notifiers' lease renewals, heartbeats and mirror polls. Into idle_us_ms[]. */
static int
idle(struct run *run)
{
	double a[IT_CLUSTER_NODES], b, sys;
	int i, primary;

	for (i = 0; i < run->nnodes; i++)
		if (redis_cpu(run->nodes[i], &a[i], &sys, &primary) < 0)
			return -1;
	it_sleep_ms(CS_IDLE_MS);
	run->idle_us_per_s = 0;
	for (i = 0; i < run->nnodes; i++) {
		if (redis_cpu(run->nodes[i], &b, &sys, &primary) < 0)
			return -1;
		run->idle_us_ms[i] = (b - a[i]) * 1e6 / CS_IDLE_MS;
		run->idle_us_per_s += run->idle_us_ms[i] * 1000;
	}
	return 0;
}

/* Publishes deal id to n subscribers of category and waits until the deal's report
 * on api_port counts them all sent. With measure: the nodes' idle CPU first, then
 * their CPU and commands from the XADD to that moment, less what they would have
 * used idle, per push; the pushes per second until gwsim accepted the last. 0, or -1
 * after saying why. */
static int
deliver(struct run *run, redisContext *rc, const struct it_cluster *cl, int api_port,
    int gw_port, const char *id, const char *category, long n, int measure)
{
	long long t0, t_acc, window, until;
	long base, acc = 0, sent = -1;
	double sum = 0, top = 0;
	int i, primaries = 0;

	if (measure && idle(run) < 0)
		return -1;
	for (i = 0; measure && i < run->nnodes; i++) {
		redis_resetstat(run->nodes[i]);
		if (redis_cpu(run->nodes[i], &run->cpu0[i], &run->sys0[i],
		    &run->primary[i]) < 0)
			return -1;
	}
	base = gw_accepted(gw_port);
	t0 = bench_now_ms();
	until = t0 + CS_SEND_CAP_MS;
	if (base < 0 || publish(rc, cl, id, category) < 0) {
		fprintf(stderr, "bench_cluster_scale: %s: publishing %s failed\n", run->name,
		    id);
		return -1;
	}
	while (bench_now_ms() < until && (acc = gw_accepted(gw_port) - base) < n)
		it_sleep_ms(CS_POLL_MS);
	t_acc = bench_now_ms();
	/* The report reads every shard's counters: asked less often, so that the
	 * benchmark's own reads weigh little in the Redis CPU it measures. */
	while (bench_now_ms() < until && (sent = deal_sent(api_port, id)) < n)
		it_sleep_ms(CS_REPORT_POLL_MS);
	if (acc < n || sent != n) {
		fprintf(stderr, "bench_cluster_scale: %s: deal %s: %ld accepted at the "
		    "gateway, %ld sent in its report, of %ld\n", run->name, id, acc, sent, n);
		return -1;
	}
	if (!measure)
		return 0;
	window = bench_now_ms() - t0;
	if (verbose)
		printf("  -- %s: INFO commandstats, node by node\n", run->name);
	for (i = 0; i < run->nnodes; i++) {
		double calls, usec, us;

		if (redis_cpu(run->nodes[i], &run->cpu1[i], &run->sys1[i],
		    &run->primary[i]) < 0 ||
		    redis_cmds(run->nodes[i], &calls, &usec) < 0)
			return -1;
		if (run->primary[i]) {
			run->sys_us += (run->sys1[i] - run->sys0[i]) * 1e6 / (double)n;
			run->cmds += calls / (double)n;
			run->cmd_us += usec / (double)n;
		}
		us = (run->cpu1[i] - run->cpu0[i]) * 1e6;
		run->raw_us += us / (double)n;
		us -= run->idle_us_ms[i] * (double)window;
		if (us < 0)
			us = 0;
		if (run->primary[i]) {
			primaries++;
			sum += us;
			if (us > top)
				top = us;
		} else {
			run->us_replicas += us / (double)n;
		}
	}
	run->pushes_per_s = (double)n * 1000.0 / (double)(t_acc > t0 ? t_acc - t0 : 1);
	run->us_primaries = sum / (double)n;
	run->balance = primaries > 0 && sum > 0 ? top / (sum / primaries) : 0;
	return 0;
}

/* Starts n notifiers (names "cs-<i>") on redis_port with conf and waits for them to
 * be healthy (serving shards between them when shards > 0) with want subscribers.
 * Their admin ports into ports. 0 or -1. */
static int
start(struct it_notifier *nt, int *ports, int n, int redis_port, int gw_port,
    const char *conf, long want, long shards)
{
	char name[32];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "cs-%d", i);
		if ((ports[i] = it_notifier_start_http_gw(&nt[i], redis_port, gw_port, name,
		    CS_GW, conf)) < 0)
			return -1;
	}
	if (bench_wait_loaded(ports, n, want, shards, CS_READY_CAP_MS) < 0) {
		fprintf(stderr, "bench_cluster_scale: the notifiers did not serve %ld "
		    "subscribers within %d s (see %s)\n", want, CS_READY_CAP_MS / 1000,
		    nt[0].proc.log);
		return -1;
	}
	return 0;
}

/* After the import: waits for want subscribers, then the RSS growth per subscriber of
 * the busier notifier. 0 or -1. */
static int
loaded(struct run *run, struct it_notifier *nt, const int *ports, int n, long want,
    long shards)
{
	double top = 0;
	int i;

	if (bench_wait_loaded(ports, n, want, shards, CS_READY_CAP_MS) < 0) {
		fprintf(stderr, "bench_cluster_scale: %s: the mirrors did not reach %ld "
		    "subscribers (see %s)\n", run->name, want, nt[0].proc.log);
		return -1;
	}
	it_sleep_ms(500);             /* the loads' freed pages given back */
	for (i = 0; i < n; i++) {
		double per;

		run->rss_loaded[i] = bench_proc_bytes(nt[i].proc.pid, "VmRSS");
		if (run->rss_loaded[i] < 0 || run->rss_empty[i] < 0) {
			fprintf(stderr, "bench_cluster_scale: %s: no RSS of notifier %d (see "
			    "%s)\n", run->name, i, nt[i].proc.log);
			return -1;
		}
		per = (double)(run->rss_loaded[i] - run->rss_empty[i]) / (double)subs_n;
		if (per > top)
			top = per;
	}
	run->rss_per_sub = top;
	return 0;
}

/* The subscribers of a run, through the notifier on ports[0] (have: the mirrors'
 * subscribers before): CS_WARM of category warm (phones from wfirst), a warm-up deal
 * to them (every connection and buffer in use), the RSS of each notifier, then
 * subs_n of category (phones from first) and the RSS growth (loaded()). 0 or -1. */
static int
prepare(struct run *run, struct it_notifier *nt, const int *ports, int n,
    redisContext *rc, const struct it_cluster *cl, int gw_port, long have,
    long shards, const char *prefix, long first, const char *category, long wfirst,
    const char *warm)
{
	char wprefix[32], wdeal[48];
	int i;

	snprintf(wprefix, sizeof(wprefix), "%sw", prefix);
	snprintf(wdeal, sizeof(wdeal), "cs-warm-%s", run->name);
	if (load(ports[0], wprefix, CS_WARM, wfirst, warm) < 0 ||
	    bench_wait_loaded(ports, n, have + CS_WARM, shards, CS_READY_CAP_MS) < 0 ||
	    deliver(run, rc, cl, ports[0], gw_port, wdeal, warm, CS_WARM, 0) < 0)
		return -1;
	it_sleep_ms(300);
	for (i = 0; i < n; i++)
		run->rss_empty[i] = bench_proc_bytes(nt[i].proc.pid, "VmRSS");
	if (load(ports[0], prefix, subs_n, first, category) < 0)
		return -1;
	return loaded(run, nt, ports, n, have + CS_WARM + subs_n, shards);
}

static void
stop_all(struct it_notifier *nt, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (nt[i].proc.pid > 0)
			it_stop(&nt[i].proc, SIGTERM, 10000);
}

static void
report(const struct run *r, int notifiers)
{
	printf("  %-10s %6.0f pushes/s; Redis per push: %5.1f us on the primaries (%4.1f "
	    "in the kernel), %5.1f on the replicas (idle taken off; %5.1f us before, every node); on the primaries "
	    "%4.1f commands run, %4.1f us inside them; idle %5.0f us/s; busiest primary %.2f x the mean; "
	    "notifier RSS +%.0f B/sub (%d notifier%s)\n", r->name, r->pushes_per_s,
	    r->us_primaries, r->sys_us, r->us_replicas, r->raw_us, r->cmds, r->cmd_us,
	    r->idle_us_per_s, r->balance, r->rss_per_sub, notifiers,
	    notifiers > 1 ? "s" : "");
}

/* A replica of the runner's Redis on port, started and in sync: its port, or -1. */
static int
replica_start(struct it_proc *p, int port)
{
	char dir[512], info[4096];
	redisContext *c;
	redisReply *r;
	int rport, i;

	it_path(dir, sizeof(dir), "cs-replica", "");
	if ((rport = it_redis_start(p, dir, 0, 0)) < 0 || (c = it_redis_connect(rport)) ==
	    NULL)
		return -1;
	freeReplyObject(redisCommand(c, "REPLICAOF 127.0.0.1 %d", port));
	for (i = 0; i < 600; i++) {
		r = redisCommand(c, "INFO replication");
		snprintf(info, sizeof(info), "%s", r != NULL && r->type == REDIS_REPLY_STRING ?
		    r->str : "");
		freeReplyObject(r);
		if (strstr(info, "master_link_status:up") != NULL &&
		    strstr(info, "master_sync_in_progress:0") != NULL)
			break;
		it_sleep_ms(50);
	}
	redisFree(c);
	if (i == 600) {
		fprintf(stderr, "bench_cluster_scale: the replica on %d did not sync\n", rport);
		return -1;
	}
	return rport;
}

/* A run on the runner's one Redis: with shards 0 the single-instance layout and one
 * notifier (the baseline; with a replica attached when replicated); else the sharded
 * layout of shards shards shared by CS_NOTIFIERS notifiers (what sharding costs
 * without a cluster). 0 or -1. */
static int
run_one(struct run *run, int gw_port, long shards, int replicated)
{
	struct it_notifier nt[CS_NOTIFIERS];
	struct it_proc replica;
	redisContext *rc;
	char conf[512], n_shards[24];
	int ports[CS_NOTIFIERS], port = it_redis_port(), rv = -1;
	int n = shards > 0 ? CS_NOTIFIERS : 1;

	memset(nt, 0, sizeof(nt));
	memset(&replica, 0, sizeof(replica));
	run->name = shards > 0 ? "sharded" : replicated ? "replicated" : "single";
	run->nodes[0] = port;
	run->nnodes = 1;
	snprintf(conf, sizeof(conf), "%s%s", CS_CONF, shards > 0 ? CS_BALANCED : "");
	if ((rc = it_redis_connect(port)) == NULL)
		goto out;
	it_flush(rc);
	if (replicated) {
		if ((run->nodes[1] = replica_start(&replica, port)) < 0)
			goto out;
		run->nnodes = 2;
	}
	if (shards > 0) {
		char bin[512], addr[32], out[1024];
		const char *argv[] = { bin, "--redis", addr, "layout", "create", "--shards",
			n_shards, NULL };

		snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
		snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
		snprintf(n_shards, sizeof(n_shards), "%ld", shards);
		if (it_run(argv, out, sizeof(out)) != 0) {
			fprintf(stderr, "bench_cluster_scale: layout create: %s\n", out);
			goto out;
		}
	}
	if (start(nt, ports, n, port, gw_port, conf, 0, shards) < 0 ||
	    prepare(run, nt, ports, n, rc, NULL, gw_port, 0, shards, "cs", 0, "laptop",
	    3 * subs_n, "warm") < 0 ||
	    deliver(run, rc, NULL, ports[0], gw_port, "cs-one", "laptop", subs_n, 1) < 0)
		goto out;
	rv = 0;
out:
	stop_all(nt, n);
	if (replica.pid > 0)
		it_stop(&replica, SIGTERM, 5000);
	if (rc != NULL) {
		it_flush(rc);
		redisFree(rc);
	}
	return rv;
}

/* The cluster runs: without WAIT, then with. 0 or -1. */
static int
run_cluster(struct run *plain, struct run *waited, int gw_port, long shards)
{
	struct it_cluster cl;
	struct it_notifier nt[CS_NOTIFIERS];
	char conf[1024];
	int ports[CS_NOTIFIERS], i, rv = -1;
	long all = subs_n + CS_WARM;

	memset(nt, 0, sizeof(nt));
	if (it_cluster_start(&cl) < 0 || it_cluster_layout(&cl, (unsigned)shards) < 0) {
		fprintf(stderr, "bench_cluster_scale: the cluster did not start\n");
		goto out;
	}
	plain->name = "cluster";
	waited->name = "wait";
	for (i = 0; i < IT_CLUSTER_NODES; i++)
		plain->nodes[i] = waited->nodes[i] = cl.ports[i];
	plain->nnodes = waited->nnodes = IT_CLUSTER_NODES;
	snprintf(conf, sizeof(conf), CS_CONF CS_BALANCED "[redis]\ncluster = "
	    "127.0.0.1:%d,127.0.0.1:%d\nshards = %ld\n", cl.ports[0], cl.ports[1], shards);
	if (start(nt, ports, CS_NOTIFIERS, it_redis_port(), gw_port, conf, 0, shards) < 0 ||
	    prepare(plain, nt, ports, CS_NOTIFIERS, NULL, &cl, gw_port, 0, shards, "cs", 0,
	    "laptop", 3 * subs_n, "warm") < 0 ||
	    deliver(plain, NULL, &cl, ports[0], gw_port, "cs-cluster", "laptop", subs_n,
	    1) < 0)
		goto out;

	/* The same with a WAIT behind every claim batch, to phones of their own. */
	stop_all(nt, CS_NOTIFIERS);
	memset(nt, 0, sizeof(nt));
	snprintf(conf + strlen(conf), sizeof(conf) - strlen(conf),
	    "[redis]\nwait_replicas = 1\nwait_timeout_ms = 200\n");
	if (start(nt, ports, CS_NOTIFIERS, it_redis_port(), gw_port, conf, all, shards) < 0 ||
	    prepare(waited, nt, ports, CS_NOTIFIERS, NULL, &cl, gw_port, all, shards, "csx",
	    subs_n, "phone", 3 * subs_n + CS_WARM, "warm2") < 0 ||
	    deliver(waited, NULL, &cl, ports[0], gw_port, "cs-wait", "phone", subs_n, 1) < 0)
		goto out;
	rv = 0;
out:
	stop_all(nt, CS_NOTIFIERS);
	it_cluster_stop(&cl);
	return rv;
}

int
main(void)
{
	struct run single, replicated, sharded, cluster, waited;
	struct it_gwsim gw;
	long shards;
	double ratio;

	memset(&single, 0, sizeof(single));
	memset(&replicated, 0, sizeof(replicated));
	memset(&sharded, 0, sizeof(sharded));
	memset(&cluster, 0, sizeof(cluster));
	memset(&waited, 0, sizeof(waited));
	memset(&gw, 0, sizeof(gw));
	setvbuf(stdout, NULL, _IOLBF, 0);
	subs_n = bench_env_long("BENCH_CLUSTER_SUBS", CS_SUBS_DEFAULT, 1000, 1000000);
	shards = bench_env_long("BENCH_CLUSTER_SHARDS", CS_SHARDS_DEFAULT, 3, 1024);
	if (subs_n < 0 || shards < 0) {
		fprintf(stderr, "bench_cluster_scale: BENCH_CLUSTER_SUBS must be 1000.."
		    "1000000 and BENCH_CLUSTER_SHARDS 3..1024\n");
		return 2;
	}
	verbose = getenv("BENCH_CLUSTER_VERBOSE") != NULL;
	unsetenv("DP_SHARDS");         /* the single run is the single-instance layout */
	setenv("DP_TEST_ADMIN_TOKEN", IT_SHARD_TOKEN, 1);
	if (it_gwsim_start(&gw, NULL) < 0) {
		fprintf(stderr, "bench_cluster_scale: gwsim did not start\n");
		return 1;
	}
	printf("bench_cluster_scale: %ld subscribers; one Redis and one notifier against "
	    "a cluster of 3 primaries (3 replicas), %ld shards, %d notifiers\n", subs_n,
	    shards, CS_NOTIFIERS);
	if (run_one(&single, gw.port, 0, 0) < 0 || run_one(&replicated, gw.port, 0, 1) < 0 ||
	    run_one(&sharded, gw.port, shards, 0) < 0 ||
	    run_cluster(&cluster, &waited, gw.port, shards) < 0) {
		it_stop(&gw.proc, SIGTERM, 2000);
		return 1;
	}
	it_stop(&gw.proc, SIGTERM, 2000);
	report(&single, 1);
	report(&replicated, 1);
	report(&sharded, CS_NOTIFIERS);
	report(&cluster, CS_NOTIFIERS);
	report(&waited, CS_NOTIFIERS);
	ratio = single.us_primaries > 0 ? cluster.us_primaries / single.us_primaries : 0;
	printf("  WAIT behind every claim batch: %+.1f us/push on the primaries, %+.1f on "
	    "the replicas, %.0f%% of the pushes per second\n",
	    waited.us_primaries - cluster.us_primaries,
	    waited.us_replicas - cluster.us_replicas,
	    cluster.pushes_per_s > 0 ? 100.0 * waited.pushes_per_s / cluster.pushes_per_s :
	    0);
	printf("  goals: ratio <= %.1f, node_balance <= %.1f (2 cores: every process "
	    "shares them)\n", CS_GOAL_RATIO, CS_GOAL_BALANCE);
	printf("BENCH name=cluster_scale shards=%ld primaries=3 notifiers=%d "
	    "pushes_per_s=%.0f redis_us_per_push_total=%.1f node_balance=%.2f "
	    "rss_bytes_per_sub_per_notifier=%.0f single_us_per_push=%.1f "
	    "sharded_us_per_push=%.1f wait_us_per_push=%.1f sharded_ratio=%.3f "
	    "replicated_us_per_push=%.1f replicated_ratio=%.3f ratio=%.3f\n", shards,
	    CS_NOTIFIERS, cluster.pushes_per_s, cluster.us_primaries, cluster.balance,
	    cluster.rss_per_sub, single.us_primaries, sharded.us_primaries,
	    waited.us_primaries - cluster.us_primaries,
	    single.us_primaries > 0 ? sharded.us_primaries / single.us_primaries : 0,
	    replicated.us_primaries, replicated.us_primaries > 0 ?
	    cluster.us_primaries / replicated.us_primaries : 0, ratio);
	return 0;
}
