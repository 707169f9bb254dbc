/*
 * benchlib.c: what the benchmarks share (see benchlib.h). Test code only: it
 * blocks and forks.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include "benchlib.h"
#include "itest.h"

long long
bench_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

long
bench_env_long(const char *name, long def, long min, long max)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < min || n > max)
		return -1;
	return n;
}

char *
bench_subscribers_jsonl(const char *prefix, long n, long first,
    const char *category)
{
	size_t cap = (size_t)n * 256 + 1, off = 0;
	char *buf = malloc(cap);
	long i;
	int w;

	if (buf == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		w = snprintf(buf + off, cap - off,
		    "{\"id\":\"%s-%ld\",\"phone\":\"+1512%07ld\",\"channels\":[\"sms\"],"
		    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
		    "\"timezone\":\"America/Chicago\","
		    "\"interests\":{\"categories\":[\"%s\"]}}\n",
		    prefix, i + 1, 2000000 + first + i, category);
		if (w < 0 || (size_t)w >= cap - off) {
			free(buf);
			return NULL;
		}
		off += (size_t)w;
	}
	return buf;
}

long long
bench_entry_ms(const char *s)
{
	char *end;
	long long ms;

	errno = 0;
	ms = strtoll(s, &end, 10);
	return errno != 0 || end == s || *end != '-' ? -1 : ms;
}

long long
bench_hash_int(redisContext *rc, const char *key, const char *field)
{
	redisReply *r = redisCommand(rc, "HGET %s %s", key, field);
	long long v = -1;
	char *end;

	if (r != NULL && r->type == REDIS_REPLY_NIL)
		v = 0;
	else if (r != NULL && r->type == REDIS_REPLY_STRING) {
		errno = 0;
		v = strtoll(r->str, &end, 10);
		if (errno != 0 || end == r->str || *end != '\0')
			v = -1;
	}
	freeReplyObject(r);
	return v;
}

/* --- the wrk baseline: the notifier's own request replayed against gwsim --- */

/* Appends s percent-encoded as the notifier's gateway client does (notifier/gw.c:
 * unreserved characters as they are, everything else %XX). 0 or -1 (no room). */
static int
form_put(char *buf, size_t size, size_t *off, const char *key, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	int w = snprintf(buf + *off, size - *off, "%s%s=", *off ? "&" : "", key);

	if (w < 0 || (size_t)w >= size - *off)
		return -1;
	*off += (size_t)w;
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*off + 4 > size)
			return -1;
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
		    *p == '~') {
			buf[(*off)++] = (char)*p;
		} else {
			buf[(*off)++] = '%';
			buf[(*off)++] = hex[*p >> 4];
			buf[(*off)++] = hex[*p & 15];
		}
	}
	buf[*off] = '\0';
	return 0;
}

/* The form body of one gwsim log line if it is a Twilio message request (the
 * notifier's, rebuilt field by field in its order: To, From, Body, StatusCallback,
 * ValidityPeriod; gwsim logs the decoded values and the encoding is the
 * notifier's, so the bytes are the ones it sent). 0, or -1 when it is not one. */
static int
request_body(const char *line, char *body, size_t size)
{
	const cJSON *to, *from, *text, *cb, *vp;
	cJSON *o = cJSON_Parse(line);
	char validity[24];
	size_t off = 0;
	int rc = -1;

	if (o == NULL)
		return -1;
	to = cJSON_GetObjectItemCaseSensitive(o, "to");
	from = cJSON_GetObjectItemCaseSensitive(o, "from");
	text = cJSON_GetObjectItemCaseSensitive(o, "body");
	cb = cJSON_GetObjectItemCaseSensitive(o, "status_callback");
	vp = cJSON_GetObjectItemCaseSensitive(o, "validity_period");
	if (!cJSON_IsString(to) || !cJSON_IsString(from) || !cJSON_IsString(text) ||
	    !cJSON_IsString(cb) || !cJSON_IsNumber(vp))
		goto end;
	snprintf(validity, sizeof(validity), "%d", vp->valueint);
	body[0] = '\0';
	if (form_put(body, size, &off, "To", to->valuestring) < 0 ||
	    form_put(body, size, &off, "From", from->valuestring) < 0 ||
	    form_put(body, size, &off, "Body", text->valuestring) < 0 ||
	    form_put(body, size, &off, "StatusCallback", cb->valuestring) < 0 ||
	    form_put(body, size, &off, "ValidityPeriod", validity) < 0)
		goto end;
	rc = 0;
end:
	cJSON_Delete(o);
	return rc;
}

/* The form body of the last Twilio request in the last 64 KiB of gwsim's log (other
 * lines, e.g. X DMs, are passed over). 0 or -1. */
static int
last_request_body(const struct it_gwsim *g, char *body, size_t size)
{
	static char tail[65536];
	FILE *f = fopen(g->logfile, "r");
	char *nl;
	size_t n;
	long pos;
	int rc = -1;

	if (f == NULL)
		return -1;
	if (fseek(f, 0, SEEK_END) != 0 || (pos = ftell(f)) < 0)
		goto end;
	pos = pos > (long)sizeof(tail) - 1 ? pos - (long)sizeof(tail) + 1 : 0;
	if (fseek(f, pos, SEEK_SET) != 0)
		goto end;
	n = fread(tail, 1, sizeof(tail) - 1, f);
	tail[n] = '\0';
	while (rc < 0 && n > 0) {
		while (n > 0 && tail[n - 1] == '\n')
			tail[--n] = '\0';
		if ((nl = strrchr(tail, '\n')) == NULL)
			break;   /* the first line may be cut: never read it */
		rc = request_body(nl + 1, body, size);
		n = (size_t)(nl - tail);
		tail[n] = '\0';
	}
end:
	fclose(f);
	return rc;
}

/* The full path of an executable found on $PATH, into out. 0 or -1. */
static int
find_exe(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH"), *p, *colon;

	for (p = path != NULL ? path : "/usr/bin:/bin"; *p != '\0'; p = colon + 1) {
		int w;

		colon = strchr(p, ':');
		if (colon == NULL)
			colon = p + strlen(p);
		w = snprintf(out, size, "%.*s/%s", (int)(colon - p), p, name);
		if (w > 0 && (size_t)w < size && colon > p && access(out, X_OK) == 0)
			return 0;
		if (*colon == '\0')
			break;
	}
	return -1;
}

/* Writes the wrk script sending body with the notifier's headers into path. 0 or -1. */
static int
wrk_script(const char *path, const char *body)
{
	static const char creds[] = IT_ACCOUNT_SID ":" IT_AUTH_TOKEN;
	unsigned char b64[4 * ((sizeof(creds) - 1 + 2) / 3) + 1];
	FILE *f = fopen(path, "w");
	const char *p;

	if (f == NULL)
		return -1;
	EVP_EncodeBlock(b64, (const unsigned char *)creds, (int)sizeof(creds) - 1);
	fputs("-- written by a benchmark: the notifier's Twilio request\n"
	    "wrk.method = \"POST\"\nwrk.body = \"", f);
	for (p = body; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fputc('\\', f);
		fputc(*p, f);
	}
	fprintf(f, "\"\n"
	    "wrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n"
	    "wrk.headers[\"Authorization\"] = \"Basic %s\"\n"
	    "wrk.headers[\"User-Agent\"] = \"dealpush\"\n"
	    "wrk.headers[\"Accept\"] = \"*/*\"\n", b64);
	return fclose(f) == 0 ? 0 : -1;
}

/* Runs wrk against gwsim's Messages.json; its Requests/sec, or -1 (printed why). */
static double
run_wrk(const struct it_gwsim *g, const char *body, const char *who)
{
	char exe[512], script[512], url[256], out[8192];
	const char *argv[] = { exe, "-t", BENCH_WRK_THREADS, "-c", BENCH_WRK_CONNS, "-d",
	    BENCH_WRK_SECONDS "s", "--timeout", "2s", "-s", script, url, NULL };
	const char *rps;
	char *end;
	double v;
	int rc;

	if (find_exe("wrk", exe, sizeof(exe)) < 0) {
		fprintf(stderr, "%s: wrk not found on PATH (Debian package wrk)\n", who);
		return -1;
	}
	it_path(script, sizeof(script), "wrk", ".lua");
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/2010-04-01/Accounts/"
	    IT_ACCOUNT_SID "/Messages.json", g->port);
	if (wrk_script(script, body) < 0) {
		fprintf(stderr, "%s: cannot write %s\n", who, script);
		return -1;
	}
	rc = it_run(argv, out, sizeof(out));
	if (rc != 0 || (rps = strstr(out, "Requests/sec:")) == NULL) {
		fprintf(stderr, "%s: wrk exited %d:\n%s\n", who, rc, out);
		return -1;
	}
	if (strstr(out, "Non-2xx") != NULL || strstr(out, "Socket errors") != NULL) {
		fprintf(stderr, "%s: wrk saw errors (is the request right?):\n%s\n",
		    who, out);
		return -1;
	}
	rps += strlen("Requests/sec:");
	errno = 0;
	v = strtod(rps, &end);
	if (errno != 0 || end == rps || v <= 0) {
		fprintf(stderr, "%s: cannot read wrk's rate:\n%s\n", who, out);
		return -1;
	}
	return v;
}

double
bench_wrk_gwsim(const struct it_gwsim *g, const char *who, size_t *body_len)
{
	char body[4096];

	if (last_request_body(g, body, sizeof(body)) < 0) {
		fprintf(stderr, "%s: no Twilio request of the notifier in %s\n", who,
		    g->logfile);
		return -1;
	}
	if (body_len != NULL)
		*body_len = strlen(body);
	return run_wrk(g, body, who);
}

#define BENCH_SCRIPT_CMDS_MAX 128
static char script_cmds[BENCH_SCRIPT_CMDS_MAX][32];
static size_t nscript_cmds;

int
bench_is_script_cmd(const char *name)
{
	size_t i;

	for (i = 0; i < nscript_cmds; i++)
		if (strcmp(script_cmds[i], name) == 0)
			return 1;
	return 0;
}

/* Collects the names after "call('" in one Lua file, lower-cased. */
static void
scan_lua(const char *path)
{
	FILE *fp = fopen(path, "r");
	char line[1024], *p, name[32];
	size_t k;

	if (fp == NULL)
		return;
	while (fgets(line, sizeof(line), fp) != NULL)
		for (p = line; (p = strstr(p, "call('")) != NULL; p += 6) {
			for (k = 0; k + 1 < sizeof(name) && p[6 + k] != '\'' && p[6 + k]; k++)
				name[k] = (char)((p[6 + k] >= 'A' && p[6 + k] <= 'Z') ?
				    p[6 + k] + 32 : p[6 + k]);
			name[k] = '\0';
			if (k > 0 && !bench_is_script_cmd(name) &&
			    nscript_cmds < BENCH_SCRIPT_CMDS_MAX)
				snprintf(script_cmds[nscript_cmds++], sizeof(script_cmds[0]),
				    "%s", name);
		}
	fclose(fp);
}

/* Every .lua in dir (one level). 0, or -1 when the folder cannot be read. */
static int
scan_lua_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[1024];
	size_t len;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		len = strlen(e->d_name);
		if (len > 4 && strcmp(e->d_name + len - 4, ".lua") == 0) {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			scan_lua(path);
		}
	}
	closedir(d);
	return 0;
}

int
bench_script_cmds_load(const char *root)
{
	char dir[1024];

	snprintf(dir, sizeof(dir), "%s/notifier/lua", root);
	if (scan_lua_dir(dir) < 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s/notifier/lua/lib", root);
	return scan_lua_dir(dir);
}

long long
bench_proc_bytes(pid_t pid, const char *key)
{
	char path[64], line[256];
	size_t kl = strlen(key);
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			char *end;

			errno = 0;
			v = strtoll(line + kl + 1, &end, 10) * 1024;
			if (errno != 0 || end == line + kl + 1)
				v = -1;
			break;
		}
	fclose(f);
	return v;
}

int
bench_wait_loaded(const int *ports, int n, long want, long shards, long cap_ms)
{
	long long until = bench_now_ms() + cap_ms;
	long subs, served, sum, total;
	int i, ok;

	while (bench_now_ms() < until) {
		sum = total = 0;
		ok = 1;
		for (i = 0; i < n && ok; i++) {
			ok = it_notifier_health(ports[i], &subs, &served) == 1;
			sum += subs;
			total += served;
		}
		if (ok && sum == want && (shards == 0 || total == shards))
			return 0;
		it_sleep_ms(100);
	}
	return -1;
}
