/*
 * itest.c: the integration-test harness (see itest.h).
 * Test code only: it may block, sleep and exit on harness failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ithttp.h"
#include "itest.h"
#include "scripts.h"
#include "itshards.h"
#include "keys.h"

static int it_seq;

long long
it_clock_offset(void)
{
	static long long offset = -1;
	long long now, day, target;

	if (offset == -1) {
		now = (long long)time(NULL);
		day = now - now % 86400;
		target = day + 17 * 3600;
		if (target - now > 12 * 3600)
			target -= 86400;
		else if (now - target > 12 * 3600)
			target += 86400;
		offset = target - now;
	}
	return offset;
}

long long
it_now(void)
{
	return (long long)time(NULL) + it_clock_offset();
}

static const char *
env_or_die(const char *name)
{
	const char *v = getenv(name);

	if (v == NULL || *v == '\0') {
		fprintf(stderr, "itest: %s is not set: run through tests/run.sh\n", name);
		exit(2);
	}
	return v;
}

const char *
it_run_dir(void)
{
	return env_or_die("DP_RUN_DIR");
}

const char *
it_build(void)
{
	return env_or_die("DP_BUILD");
}

int
it_redis_port(void)
{
	return (int)strtol(env_or_die("DP_REDIS_PORT"), NULL, 10);
}

void
it_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void
it_path(char *buf, size_t size, const char *prefix, const char *suffix)
{
	snprintf(buf, size, "%s/%s-%d-%d%s", it_run_dir(), prefix, (int)getpid(), ++it_seq,
	    suffix);
}

static void
it_register_pid(pid_t pid)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/pids", it_run_dir());
	if ((f = fopen(path, "a")) != NULL) {
		fprintf(f, "%d\n", (int)pid);
		fclose(f);
	}
}

int
it_spawn(struct it_proc *p, const char *const *argv, const char *const *env)
{
	const char *base = strrchr(argv[0], '/');
	pid_t parent = getpid(), pid;
	int fd;

	it_path(p->log, sizeof(p->log), base ? base + 1 : argv[0], ".log");
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		for (; env != NULL && *env != NULL; env++)
			putenv((char *)*env);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	p->pid = pid;
	it_register_pid(pid);
	return 0;
}

int
it_stop(struct it_proc *p, int sig, long wait_ms)
{
	int status = -1;
	long waited = 0;

	if (p->pid <= 0)
		return -1;
	kill(p->pid, sig);
	for (;;) {
		pid_t r = waitpid(p->pid, &status, WNOHANG);
		if (r == p->pid)
			break;
		if (r < 0)
			return -1;
		if (wait_ms > 0 && waited >= wait_ms) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &status, 0);
			status = -1;
			break;
		}
		it_sleep_ms(10);
		waited += 10;
	}
	p->pid = 0;
	return status;
}

int
it_stop_clean(struct it_proc *p)
{
	int running = p->pid > 0, status;

	status = it_stop(p, SIGTERM, 5000);
	if (running && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		fprintf(stderr, "notifier did not stop cleanly: status %d\n", status);
		return -1;
	}
	return 0;
}

int
it_run(const char *const *argv, char *out, size_t outsize)
{
	int pipefd[2], status;
	pid_t pid;
	size_t n = 0;
	ssize_t r;

	if (pipe(pipefd) < 0)
		return -1;
	if ((pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		char tmp[4096];
		r = read(pipefd[0], tmp, sizeof(tmp));
		if (r <= 0)
			break;
		if (out != NULL && n + 1 < outsize) {
			size_t c = (size_t)r < outsize - 1 - n ? (size_t)r : outsize - 1 - n;
			memcpy(out + n, tmp, c);
			n += c;
		}
	}
	if (out != NULL && outsize > 0)
		out[n] = '\0';
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

redisContext *
it_redis_connect(int port)
{
	struct timeval tv = { 2, 0 }, cmd = { 10, 0 };
	redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);

	if (rc == NULL || rc->err) {
		fprintf(stderr, "itest: cannot connect to redis on %d\n", port);
		exit(2);
	}
	/* Generous: four lanes share two cores, and a lane's Redis may be forking for
	 * its AOF after a big test (test_broad's XADD once waited over 2 s in CI). */
	redisSetTimeout(rc, cmd);
	return rc;
}

void
it_flush(redisContext *rc)
{
	redisReply *r = redisCommand(rc, "FLUSHALL");

	freeReplyObject(r);
	it_shards_ensure(rc->tcp.port);
}

/* Starts redis-server on port and waits until it answers PING; 0 or -1 (the process
 * is stopped on failure, e.g. when the port was taken). */
static int
it_redis_try(struct it_proc *p, const char *dir, int port, int appendonly)
{
	char portbuf[16];
	const char *argv[] = { "/usr/bin/redis-server", "--port", portbuf, "--bind",
		"127.0.0.1", "--save", "", "--appendonly", appendonly ? "yes" : "no",
		"--appendfsync", "always", "--dir", dir, NULL };
	int i, status;

	snprintf(portbuf, sizeof(portbuf), "%d", port);
	if (it_spawn(p, argv, NULL) < 0)
		return -1;
	for (i = 0; i < 200; i++) {
		struct timeval tv = { 0, 200000 };
		redisContext *rc;

		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			p->pid = 0;   /* exited: the port was probably taken */
			return -1;
		}
		rc = redisConnectWithTimeout("127.0.0.1", port, tv);
		if (rc != NULL && !rc->err) {
			/* Ours only when the server answering is the child just started: a
			 * server of another run on this machine may hold the port (our child
			 * then exits, unable to bind), and must never be taken for ours.
			 * Ready once it has loaded its AOF: until then it answers INFO, and
			 * -LOADING to everything a test reads. */
			redisReply *r = redisCommand(rc, "INFO");
			const char *pid = r != NULL && r->type == REDIS_REPLY_STRING ?
			    strstr(r->str, "process_id:") : NULL;
			int ok = pid != NULL && strtol(pid + 11, NULL, 10) == (long)p->pid &&
			    strstr(r->str, "\r\nloading:0\r\n") != NULL;

			freeReplyObject(r);
			redisFree(rc);
			if (ok)
				return 0;
		} else if (rc != NULL) {
			redisFree(rc);
		}
		it_sleep_ms(25);
	}
	it_stop(p, SIGKILL, 1000);
	return -1;
}

int
it_redis_start(struct it_proc *p, const char *dir, int port, int appendonly)
{
	int attempt;

	mkdir(dir, 0755);
	if (port != 0) {
		if (it_redis_try(p, dir, port, appendonly) < 0)
			return -1;
		it_shards_ensure(port);
		return port;
	}
	srandom((unsigned)getpid() ^ (unsigned)time(NULL));
	for (attempt = 0; attempt < 10; attempt++) {
		port = 20000 + (int)(random() % 40000);
		if (it_redis_try(p, dir, port, appendonly) == 0) {
			it_shards_ensure(port);
			return port;
		}
	}
	return -1;
}

int
it_cluster_start(struct it_cluster *cl)
{
	char dir[512], script[1200], nodes[600], out[4096];
	const char *argv[] = { "/bin/bash", "-c", script, NULL };
	FILE *f;
	int i, rc;

	memset(cl, 0, sizeof(*cl));
	it_path(dir, sizeof(dir), "cluster", "");
	snprintf(cl->dir, sizeof(cl->dir), "%s", dir);
	snprintf(script, sizeof(script), ". '%s/tests/lib.sh' && dp_start_cluster '%s'",
	    env_or_die("DP_ROOT"), dir);
	if ((rc = it_run(argv, out, sizeof(out))) != 0) {
		fprintf(stderr, "itest: dp_start_cluster exited %d: %s\n", rc, out);
		return -1;
	}
	snprintf(nodes, sizeof(nodes), "%s/nodes", dir);
	if ((f = fopen(nodes, "r")) == NULL)
		return -1;
	for (i = 0; i < IT_CLUSTER_NODES; i++) {
		int port, pid;

		if (fscanf(f, "%d %d", &port, &pid) != 2)
			break;
		cl->ports[i] = port;
		cl->pids[i] = (pid_t)pid;
	}
	fclose(f);
	return i == IT_CLUSTER_NODES ? 0 : -1;
}

int
it_cluster_restart(struct it_cluster *cl, int i)
{
	char script[1200], out[256];
	const char *argv[] = { "/bin/bash", "-c", script, NULL };
	long pid;

	snprintf(script, sizeof(script), ". '%s/tests/lib.sh' && dp_cluster_node '%s' %d",
	    env_or_die("DP_ROOT"), cl->dir, cl->ports[i]);
	if (it_run(argv, out, sizeof(out)) != 0 || (pid = strtol(out, NULL, 10)) <= 0) {
		fprintf(stderr, "itest: node %d did not start again: %s\n", cl->ports[i], out);
		return -1;
	}
	cl->pids[i] = (pid_t)pid;
	return 0;
}

void
it_cluster_stop(struct it_cluster *cl)
{
	int i;

	for (i = 0; i < IT_CLUSTER_NODES; i++)
		if (cl->pids[i] > 0) {
			kill(cl->pids[i], SIGCONT);
			kill(cl->pids[i], SIGKILL);
			cl->pids[i] = 0;
		}
}

int
it_gwsim_start(struct it_gwsim *g, const char *const *extra)
{
	char bin[512], portfile[512];
	const char *argv[64];
	int n = 0, i;
	FILE *f;

	snprintf(bin, sizeof(bin), "%s/gwsim", it_build());
	it_path(portfile, sizeof(portfile), "gwsim", ".port");
	it_path(g->logfile, sizeof(g->logfile), "gwsim", ".jsonl");
	argv[n++] = bin;
	argv[n++] = "--port";
	argv[n++] = "0";
	argv[n++] = "--port-file";
	argv[n++] = portfile;
	argv[n++] = "--log";
	argv[n++] = g->logfile;
	argv[n++] = "--quiet";
	for (; extra != NULL && *extra != NULL && n < 62; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	if (it_spawn(&g->proc, argv, NULL) < 0)
		return -1;
	for (i = 0; i < 400; i++) {
		if ((f = fopen(portfile, "r")) != NULL) {
			int ok = fscanf(f, "%d", &g->port) == 1;
			fclose(f);
			if (ok)
				return 0;
		}
		it_sleep_ms(10);
	}
	return -1;
}

cJSON *
it_gwsim_requests(const struct it_gwsim *g)
{
	cJSON *arr = cJSON_CreateArray();
	char *line = NULL;
	size_t cap = 0;
	FILE *f = fopen(g->logfile, "r");

	if (f == NULL)
		return arr;
	while (getline(&line, &cap, f) > 0) {
		cJSON *o = cJSON_Parse(line);
		if (o != NULL)
			cJSON_AddItemToArray(arr, o);
	}
	free(line);
	fclose(f);
	return arr;
}

int
it_gwsim_count(const struct it_gwsim *g, int status)
{
	cJSON *arr = it_gwsim_requests(g), *o;
	int n = 0;

	cJSON_ArrayForEach(o, arr) {
		cJSON *st = cJSON_GetObjectItem(o, "status");
		if (status == 0 || (cJSON_IsNumber(st) && st->valueint == status))
			n++;
	}
	cJSON_Delete(arr);
	return n;
}

int
it_notifier_start(struct it_notifier *n, int redis_port, int gw_port,
    const char *consumer, const char *extra)
{
	char bin[512];
	static const char *const env[] = { "DP_TEST_TWILIO_TOKEN=" IT_AUTH_TOKEN, NULL };
	const char *argv[] = { bin, "-c", n->config, NULL };
	FILE *f;

	snprintf(bin, sizeof(bin), "%s/notifier", it_build());
	it_path(n->config, sizeof(n->config), "notifier", ".conf");
	if ((f = fopen(n->config, "w")) == NULL)
		return -1;
	fprintf(f,
	    "[notifier]\nconsumer = %s\nlog_level = debug\nshutdown_grace_ms = 3000\n"
	    "clock_offset_s = %lld\n"
	    "[redis]\nhost = 127.0.0.1\nport = %d\nconnect_timeout_ms = 500\n"
	    "command_timeout_ms = 2000\nreconnect_max_ms = 500\n"
	    "[ingest]\nblock_ms = 200\n"
	    "[deliver]\nretry_base_ms = 50\nretry_max_ms = 400\n"
	    "[gateway twilio]\nkind = twilio\nchannel = sms\n"
	    "base_url = http://127.0.0.1:%d\naccount_sid = " IT_ACCOUNT_SID "\n"
	    "from = " IT_FROM "\nsecret_env = DP_TEST_TWILIO_TOKEN\n"
	    "status_callback_base = http://127.0.0.1:1\n"
	    "timeout_ms = 10000\nconnect_timeout_ms = 500\n%s\n%s",
	    consumer, it_clock_offset(), redis_port, gw_port, extra ? extra : "",
	    it_shards_conf(redis_port));
	fclose(f);
	return it_spawn(&n->proc, argv, env);
}

int
it_notifier_start_http(struct it_notifier *n, int redis_port, int gw_port,
    const char *consumer, const char *extra)
{
	return it_notifier_start_http_gw(n, redis_port, gw_port, consumer, NULL, extra);
}

int
it_notifier_start_http_gw(struct it_notifier *n, int redis_port, int gw_port,
    const char *consumer, const char *gw_extra, const char *extra)
{
	char portfile[512], *conf;
	size_t len = (extra ? strlen(extra) : 0) + (gw_extra ? strlen(gw_extra) : 0) +
	    sizeof(portfile) + 64;
	FILE *fp;
	int port = 0, i, rc;

	it_path(portfile, sizeof(portfile), "http", ".port");
	if ((conf = malloc(len)) == NULL)
		return -1;
	snprintf(conf, len, "%s[http]\nport = 0\nport_file = %s\n%s",
	    gw_extra ? gw_extra : "", portfile, extra ? extra : "");
	rc = it_notifier_start(n, redis_port, gw_port, consumer, conf);
	free(conf);
	if (rc < 0)
		return -1;
	for (i = 0; i < 500 && port == 0; i++) {
		if ((fp = fopen(portfile, "r")) != NULL) {
			if (fscanf(fp, "%d", &port) != 1)
				port = 0;
			fclose(fp);
		}
		if (port == 0)
			it_sleep_ms(10);
	}
	return port > 0 ? port : -1;
}

/* Sets TZ to zone (NULL: puts back what *saved holds and frees it). */
static void
it_tz_swap(const char *zone, char **saved)
{
	if (zone != NULL) {
		*saved = getenv("TZ") != NULL ? strdup(getenv("TZ")) : NULL;
		setenv("TZ", zone, 1);
	} else if (*saved != NULL) {
		setenv("TZ", *saved, 1);
		free(*saved);
		*saved = NULL;
	} else {
		unsetenv("TZ");
	}
	tzset();
}

void
it_local_tm(const char *zone, long long t, struct tm *tm)
{
	time_t tt = (time_t)t;
	char *saved = NULL;

	it_tz_swap(zone, &saved);
	localtime_r(&tt, tm);
	it_tz_swap(NULL, &saved);
}

long long
it_local_at(const char *zone, long long t, int days, int hour)
{
	char *saved = NULL;
	time_t tt = (time_t)t, out;
	struct tm tm;

	it_tz_swap(zone, &saved);
	localtime_r(&tt, &tm);
	tm.tm_mday += days;
	tm.tm_hour = hour;
	tm.tm_min = 0;
	tm.tm_sec = 0;
	tm.tm_isdst = -1;
	out = mktime(&tm);
	it_tz_swap(NULL, &saved);
	return (long long)out;
}

int
it_import(int redis_port, const char *jsonl)
{
	char bin[512], file[512], addr[64], out[8192];
	const char *argv[] = { bin, "--redis", addr, "subscribers", "import", file, NULL };
	FILE *f;
	int rc;

	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", redis_port);
	it_shards_ensure(redis_port);
	it_path(file, sizeof(file), "subs", ".jsonl");
	if ((f = fopen(file, "w")) == NULL)
		return -1;
	fputs(jsonl, f);
	fclose(f);
	rc = it_run(argv, out, sizeof(out));
	if (rc != 0)
		fprintf(stderr, "itest: import exited %d: %s\n", rc, out);
	return rc;
}

void
it_import_audience(int redis_port, int n, int phone_base, const char *category)
{
	size_t cap = (size_t)n * 256 + 1, len = 0;
	char *s = malloc(cap);
	int i;

	if (s == NULL) {
		fprintf(stderr, "itest: out of memory\n");
		abort();
	}
	s[0] = '\0';
	for (i = 0; i < n; i++) {
		snprintf(s + len, cap - len,
		    "{\"id\":\"s-%d\",\"phone\":\"+1512555%04d\",\"channels\":[\"sms\"],"
		    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
		    "\"timezone\":\"America/Chicago\","
		    "\"interests\":{\"categories\":[\"%s\"]}}\n", i, phone_base + i, category);
		len += strlen(s + len);
	}
	if (it_import(redis_port, s) != 0) {
		fprintf(stderr, "itest: importing %d subscribers failed\n", n);
		abort();
	}
	free(s);
}

int
it_publish(redisContext *rc, const char *json)
{
	redisReply *r = redisCommand(rc, "XADD deals * deal %b", json, strlen(json));
	int ok = r != NULL && r->type == REDIS_REPLY_STRING;

	freeReplyObject(r);
	return ok ? 0 : -1;
}

const char *
it_deal(const char *id, const char *category, int secs)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf),
	    "{\"id\": \"%s\", \"title\": \"Deal %s\", \"category\": \"%s\", "
	    "\"brand\": \"dell\", \"region\": \"US\", \"price\": 649.0, "
	    "\"list_price\": 1099.0, \"currency\": \"USD\", "
	    "\"url\": \"https://shop.example/d/%s\", \"code\": \"SAVE20\", "
	    "\"expires_at\": %lld}", id, id, category, id, it_now() + secs);
	return buf;
}

int
it_wait(int (*cond)(void *arg), void *arg, long timeout_ms)
{
	long waited = 0;

	for (;;) {
		if (cond(arg))
			return 1;
		if (waited >= timeout_ms)
			return 0;
		it_sleep_ms(20);
		waited += 20;
	}
}

struct redisReply *
it_eval(redisContext *rc, const char *name, const char *const *keys,
    const char *const *args)
{
	const char *argv[64];
	char nk[8];
	int argc = 0, n = 0;

	argv[argc++] = "EVAL";
	argv[argc++] = script_source(name);
	if (argv[1] == NULL)
		return NULL;
	argv[argc++] = nk;
	for (; keys[n] != NULL && argc < 63; n++)
		argv[argc++] = keys[n];
	snprintf(nk, sizeof(nk), "%d", n);
	for (; *args != NULL && argc < 64; args++)
		argv[argc++] = *args;
	return redisCommandArgv(rc, argc, argv, NULL);
}

long long
it_int(redisContext *rc, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;
	long long v = -1;

	va_start(ap, fmt);
	r = redisvCommand(rc, fmt, ap);
	va_end(ap);
	if (r != NULL && r->type == REDIS_REPLY_INTEGER)
		v = r->integer;
	freeReplyObject(r);
	return v;
}

long long
it_outcomes(redisContext *rc, const char *outcome)
{
	char key[KEYS_SHARD_MAX];
	long long n = 0;
	uint32_t k;
	size_t i, j;

	/* Every shard's pushes:log in the layout the test put in force (keys.h). */
	for (k = 0; k < keys_shards(); k++) {
		redisReply *r;

		keys_shard_key(k, KEYS_PUSHES_LOG, key, sizeof(key));
		r = redisCommand(rc, "XRANGE %s - +", key);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return -1;
		}
		for (i = 0; i < r->elements; i++) {
			redisReply *f = r->element[i]->element[1];
			for (j = 0; j + 1 < f->elements; j += 2)
				if (strcmp(f->element[j]->str, "outcome") == 0 &&
				    (*outcome == '\0' ||
				    strcmp(f->element[j + 1]->str, outcome) == 0))
					n++;
		}
		freeReplyObject(r);
	}
	return n;
}

int
it_http_post(int port, const char *path, const char *body)
{
	struct it_resp *r = malloc(sizeof(*r));
	int status;

	if (r == NULL)
		return -1;
	status = it_http(port, "POST", path, "Content-Type: application/json\r\n", body,
	    strlen(body), r);
	free(r);
	return status;
}

int
it_http_get(int port, const char *path, char *body, size_t size)
{
	struct it_resp *r = malloc(sizeof(*r));
	int status;

	if (size > 0)
		body[0] = '\0';
	if (r == NULL)
		return -1;
	status = it_http(port, "GET", path, NULL, NULL, 0, r);
	if (size > 0)
		snprintf(body, size, "%s", r->body);
	free(r);
	return status;
}

void
it_one_open(struct it_one *o)
{
	o->port = it_redis_port();
	o->rc = it_redis_connect(o->port);
	it_flush(o->rc);
}

int
it_one_close(struct it_one *o)
{
	int rv = it_stop_clean(&o->nt.proc);

	it_stop(&o->gw.proc, SIGTERM, 2000);
	redisFree(o->rc);
	return rv;
}

int
it_one_setup(void **state)
{
	struct it_one *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	it_one_open(f);
	*state = f;
	return 0;
}

int
it_one_teardown(void **state)
{
	struct it_one *f = *state;
	int rv = it_one_close(f);

	free(f);
	return rv;
}

/* The record text of sub, or NULL (caller frees the reply *r). */
static const char *
consent_record(redisContext *rc, const char *sub, redisReply **r)
{
	char key[KEYS_SHARD_MAX];

	keys_shard_key(keys_shard_of(sub), KEYS_CONSENT_RECORDS, key, sizeof(key));
	*r = redisCommand(rc, "HGET %s %s", key, sub);
	return *r != NULL && (*r)->type == REDIS_REPLY_STRING ? (*r)->str : NULL;
}

const char *
it_consent_last(redisContext *rc, const char *sub, const char *ch, const char *what,
    char *out, size_t size)
{
	static const char *const names[] = { "when", "channel", "state", "how", "detail" };
	redisReply *r;
	const char *rec = consent_record(rc, sub, &r), *line;
	size_t i, col = 0;

	out[0] = '\0';
	for (i = 0; i < 5; i++)
		if (strcmp(what, names[i]) == 0)
			col = i;
	for (line = rec; line != NULL && *line != '\0'; ) {
		const char *end = strchr(line, '\n'), *f = line;
		size_t n = end != NULL ? (size_t)(end - line) : strlen(line);
		const char *c = memchr(line, '\t', n);

		/* "<when>\t<ch>\t<state>\t<how>\t<detail>" */
		if (c != NULL && strncmp(c + 1, ch, strlen(ch)) == 0 &&
		    c[1 + strlen(ch)] == '\t') {
			for (i = 0; i < col && f != NULL; i++) {
				f = memchr(f, '\t', n - (size_t)(f - line));
				f = f != NULL ? f + 1 : NULL;
			}
			if (f != NULL) {
				const char *t = memchr(f, '\t', n - (size_t)(f - line));
				size_t fl = t != NULL ? (size_t)(t - f) : n - (size_t)(f - line);

				snprintf(out, size, "%.*s", (int)fl, f);
			}
		}
		line = end != NULL ? end + 1 : NULL;
	}
	freeReplyObject(r);
	return out;
}

long long
it_consent_events(redisContext *rc, const char *sub)
{
	redisReply *r;
	const char *rec = consent_record(rc, sub, &r), *p;
	long long n = rec != NULL && *rec != '\0';

	for (p = rec; p != NULL && (p = strchr(p, '\n')) != NULL; p++)
		n++;
	freeReplyObject(r);
	return n;
}

long
it_log_count(const char *path, const char *needle, const char *from, const char *until)
{
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	long n = 0;
	int on = from == NULL;

	if (fp == NULL)
		return -1;
	while (getline(&line, &cap, fp) > 0) {
		if (!on && strstr(line, from) != NULL)
			on = 1;
		if (until != NULL && strstr(line, until) != NULL)
			break;
		if (on && strstr(line, needle) != NULL)
			n++;
	}
	free(line);
	fclose(fp);
	return n;
}

long
it_log_line(const char *path, const char *needle)
{
	FILE *fp = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	long n = 0, at = 0;

	if (fp == NULL)
		return -1;
	while (at == 0 && getline(&line, &cap, fp) > 0) {
		n++;
		if (strstr(line, needle) != NULL)
			at = n;
	}
	free(line);
	fclose(fp);
	return at;
}

int
it_gwsim_accepted_to(const cJSON *reqs, const char *to)
{
	const cJSON *o;
	int n = 0;

	cJSON_ArrayForEach(o, reqs) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "to");
		const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");

		if (cJSON_IsString(t) && strcmp(t->valuestring, to) == 0 &&
		    cJSON_IsNumber(st) && st->valueint == 201)
			n++;
	}
	return n;
}
