/*
 * itshards.c: the harness's sharded layout, and what the shard store and STOP
 * tests share (see itshards.h).
 * Test code only: it may block and exit on harness failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "err.h"
#include "ithttp.h"
#include "itest.h"
#include "itshards.h"
#include "keys.h"
#include "layout.h"
#include "shard.h"

unsigned
it_shards(void)
{
	static long s = -1;
	const char *v;
	char *end;

	if (s >= 0)
		return (unsigned)s;
	v = getenv("DP_SHARDS");
	if (v == NULL || *v == '\0') {
		s = 0;
		return 0;
	}
	errno = 0;
	s = strtol(v, &end, 10);
	if (errno != 0 || *end != '\0' || s < 1 || s > 1024) {
		fprintf(stderr, "itest: DP_SHARDS=%s is not a shard count (1-1024)\n", v);
		exit(2);
	}
	return (unsigned)s;
}

/* Puts the layout of S shards in force in this process once (the tags are
 * deterministic, so it is the one dealpushctl stores). */
static void
in_force(unsigned s)
{
	struct shard_layout *l;
	struct err err;

	if (layout_current() != NULL)
		return;
	if ((l = shard_layout_new(s, &err)) == NULL) {
		fprintf(stderr, "itest: no layout of %u shards: %s\n", s, err.msg);
		exit(2);
	}
	layout_set(l);
}

/* 1 when the Redis at port holds a layout, 0 when not; a Redis still loading its
 * data (a restart) is asked again for up to 10 s. */
static int
has_layout(int port)
{
	struct timeval tv = { 2, 0 };
	redisContext *rc = redisConnectWithTimeout("127.0.0.1", port, tv);
	redisReply *r = NULL;
	int yes = 0, i;

	if (rc == NULL || rc->err) {
		redisFree(rc);
		return 0;
	}
	for (i = 0; i < 200; i++) {
		r = redisCommand(rc, "EXISTS dealpush:layout");
		if (r == NULL || r->type != REDIS_REPLY_ERROR)
			break;
		freeReplyObject(r);
		r = NULL;
		it_sleep_ms(50);
	}
	yes = r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	freeReplyObject(r);
	redisFree(rc);
	return yes;
}

/* The ports on which this process has seen or stored a layout: a notifier started
 * on one of them gets the config lines without asking that Redis again (it may be
 * restarting and answer LOADING, which a test may want the notifier to meet). */
#define KNOWN_MAX 64
static int known[KNOWN_MAX];
static int nknown;

static int
is_known(int port)
{
	int i;

	for (i = 0; i < nknown; i++)
		if (known[i] == port)
			return 1;
	return 0;
}

static void
remember(int port)
{
	if (!is_known(port) && nknown < KNOWN_MAX)
		known[nknown++] = port;
}

int
it_shards_ensure(int port)
{
	char bin[512], addr[64], n[16], out[512];
	const char *argv[] = { bin, "--redis", addr, "layout", "create", "--shards", n,
		NULL };
	unsigned s = it_shards();

	if (s == 0)
		return 0;
	in_force(s);
	if (has_layout(port)) {
		remember(port);
		return 1;
	}
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	snprintf(n, sizeof(n), "%u", s);
	if (it_run(argv, out, sizeof(out)) != 0)
		fprintf(stderr, "itest: layout create on %d: %s\n", port, out);
	if (!has_layout(port))
		return 0;
	remember(port);
	return 1;
}

const char *
it_shards_conf(int port)
{
	static char buf[64];

	buf[0] = '\0';
	if (it_shards() > 0 && (is_known(port) || it_shards_ensure(port)))
		snprintf(buf, sizeof(buf), "[redis]\nshards = %u\n", it_shards());
	return buf;
}

long long
it_shards_sum(redisContext *rc, const char *fmt, int name, const char *id)
{
	char key[KEYS_MAX];
	long long sum = 0, v;
	uint32_t k;

	for (k = 0; k < keys_shards(); k++) {
		if (keys_per(k, (enum keys_per)name, id, key, sizeof(key)) < 0)
			return -1;
		if ((v = it_int(rc, fmt, key)) < 0)
			return -1;
		sum += v;
	}
	return sum;
}

const char *
it_key_of(int name, const char *sub, const char *id, char *buf, size_t size)
{
	keys_per(keys_shard_of(sub), (enum keys_per)name, id, buf, size);
	return buf;
}

long long
it_shards_sum_key(redisContext *rc, const char *fmt, int name)
{
	char key[KEYS_SHARD_MAX];
	long long sum = 0, v;
	uint32_t k;

	for (k = 0; k < keys_shards(); k++) {
		if (keys_shard_key(k, (enum keys_name)name, key, sizeof(key)) < 0)
			return -1;
		if ((v = it_int(rc, fmt, key)) < 0)
			return -1;
		sum += v;
	}
	return sum;
}

double
it_shards_hget_sum(redisContext *rc, int name, const char *id, const char *field)
{
	char key[KEYS_MAX];
	double sum = 0;
	uint32_t k;

	for (k = 0; k < keys_shards(); k++) {
		redisReply *r;

		if (keys_per(k, (enum keys_per)name, id, key, sizeof(key)) < 0)
			return -1;
		r = redisCommand(rc, "HGET %s %s", key, field);
		if (r != NULL && r->type == REDIS_REPLY_STRING)
			sum += strtod(r->str, NULL);
		freeReplyObject(r);
	}
	return sum;
}

long long
it_shards_codes_held(redisContext *rc, const char *deal, const char *pool)
{
	char k[KEYS_MAX];
	long long n = 0;
	uint32_t s;

	for (s = 0; layout_current() != NULL && s < keys_shards(); s++) {
		keys_codestash(s, deal, pool, k, sizeof(k));
		n += it_int(rc, "SCARD %s", k);
		keys_codeback(s, deal, pool, k, sizeof(k));
		n += it_int(rc, "SCARD %s", k);
	}
	return n;
}

long long
it_shards_stat(redisContext *rc, const char *field)
{
	char key[KEYS_SHARD_MAX];
	long long sum = 0;
	uint32_t k;

	for (k = 0; k < keys_shards(); k++) {
		redisReply *r;

		keys_shard_key(k, KEYS_STATS, key, sizeof(key));
		r = redisCommand(rc, "HGET %s %s", key, field);
		if (r != NULL && r->type == REDIS_REPLY_STRING)
			sum += strtoll(r->str, NULL, 10);
		freeReplyObject(r);
	}
	return sum;
}

redisReply *
it_shards_zrange(redisContext *rc, int name)
{
	redisReply *all = calloc(1, sizeof(*all));
	char key[KEYS_SHARD_MAX];
	uint32_t k;
	size_t i;

	if (all == NULL)
		exit(2);
	all->type = REDIS_REPLY_ARRAY;
	for (k = 0; k < keys_shards(); k++) {
		redisReply *r, **grown;

		keys_shard_key(k, (enum keys_name)name, key, sizeof(key));
		r = redisCommand(rc, "ZRANGE %s 0 -1 WITHSCORES", key);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			continue;
		}
		grown = realloc(all->element, (all->elements + r->elements) *
		    sizeof(*grown) + 1);
		if (grown == NULL)
			exit(2);
		all->element = grown;
		for (i = 0; i < r->elements; i++) {
			all->element[all->elements++] = r->element[i];
			r->element[i] = NULL;
		}
		r->elements = 0;
		freeReplyObject(r);
	}
	return all;
}

void
it_shards_reply_free(redisReply *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->elements; i++)
		freeReplyObject(r->element[i]);
	free(r->element);
	free(r);
}

long long
it_jobs_for(const char *prefix, int n, int job_size)
{
	long long per[1024] = { 0 }, jobs = 0;
	char id[128];
	uint32_t k;
	int i;

	for (i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "%s%d", prefix, i);
		per[keys_shard_of(id)]++;
	}
	for (k = 0; k < keys_shards(); k++)
		jobs += (per[k] + job_size - 1) / job_size;
	return jobs;
}

/* name without its "{tag}" (keys.h puts the tag first). */
static const char *
untagged(const char *name)
{
	const char *end = name[0] == '{' ? strchr(name, '}') : NULL;

	return end != NULL ? end + 1 : name;
}

/* Today's name as it is in shard k, into buf; "" when keys.h does not know it. */
static const char *
key_in(const char *name, uint32_t k, char *buf, size_t size)
{
	char key[KEYS_MAX];
	int n;

	for (n = 0; n < KEYS_NAMES; n++) {
		keys_shard_key(k, (enum keys_name)n, key, sizeof(key));
		if (strcmp(untagged(key), name) == 0)
			goto found;
	}
	for (n = 0; n < CH_COUNT; n++) {
		keys_consent(k, (enum channel)n, key, sizeof(key));
		if (strcmp(untagged(key), name) == 0)
			goto found;
	}
	for (n = 0; n < KEYS_PER_NAMES; n++) {
		size_t len;

		keys_prefix(k, (enum keys_per)n, key, sizeof(key));
		len = strlen(untagged(key));
		/* No prefix of keys.h is the start of another ("push:", "pushinfo:"). */
		if (strncmp(untagged(key), name, len) == 0) {
			keys_per(k, (enum keys_per)n, name + len, key, sizeof(key));
			goto found;
		}
	}
	snprintf(buf, size, "%s", "");
	return buf;
found:
	snprintf(buf, size, "%s", key);
	return buf;
}

/* A number's key (keys.h KEYS_PHONE) by today's name: "suppressed:sms" and
 * "inbound:sids" of number, "optout_ack:<n>", "signup:<n>", "signup:asked:<n>" of
 * the number in the name; "" when name is none of them. */
static const char *
phone_key_in(const char *name, const char *number, char *buf, size_t size)
{
	static const struct {
		const char *prefix;
		enum keys_phone which;
		int named;                /* the number is in the name */
	} ph[] = {
		{ "suppressed:sms", KEYS_PH_SUPPRESSED, 0 },
		{ "inbound:sids", KEYS_PH_SIDS, 0 },
		{ "optout_ack:", KEYS_PH_ACK, 1 },
		{ "signup:asked:", KEYS_PH_SIGNUP_ASKED, 1 },
		{ "signup:", KEYS_PH_SIGNUP, 1 },
	};
	size_t i;

	buf[0] = '\0';
	for (i = 0; i < sizeof(ph) / sizeof(ph[0]); i++) {
		size_t len = strlen(ph[i].prefix);

		if (ph[i].named ? strncmp(name, ph[i].prefix, len) == 0 :
		    strcmp(name, ph[i].prefix) == 0) {
			const char *n = ph[i].named ? name + len : number;

			if (n != NULL)
				keys_phone(n, ph[i].which, buf, size);
			break;
		}
	}
	return buf;
}

const char *
it_key_for(const char *name, const char *sub, char *buf, size_t size)
{
	if (phone_key_in(name, sub, buf, size)[0] != '\0')
		return buf;
	key_in(name, sub != NULL ? keys_shard_of(sub) : 0, buf, size);
	if (buf[0] == '\0')
		snprintf(buf, size, "%s", name);
	return buf;
}

int
it_shards_hsum(redisContext *rc, const char *name, const char *field, double *sum)
{
	char key[KEYS_MAX];
	uint32_t k;
	int found = 0;

	*sum = 0;
	for (k = 0; k < keys_shards(); k++) {
		redisReply *r;

		if (key_in(name, k, key, sizeof(key))[0] == '\0')
			snprintf(key, sizeof(key), "%s", name);
		r = redisCommand(rc, "HGET %s %s", key, field);
		if (r != NULL && r->type == REDIS_REPLY_STRING) {
			*sum += strtod(r->str, NULL);
			found++;
		}
		freeReplyObject(r);
		if (key_in(name, k, key, sizeof(key))[0] == '\0')
			break;   /* a global key: once */
	}
	return found;
}

long long
it_shards_jobs_pending(redisContext *rc, const char *consumer)
{
	char key[KEYS_SHARD_MAX];
	long long n = 0;
	uint32_t k;

	for (k = 0; k < keys_shards(); k++) {
		redisReply *r;
		int ok;

		if (keys_shard_key(k, KEYS_PUSHES, key, sizeof(key)) < 0)
			return -1;
		/* the summary form counts all; the extended one lists a consumer's */
		r = consumer == NULL ? redisCommand(rc, "XPENDING %s deliver", key) :
		    redisCommand(rc, "XPENDING %s deliver - + 100000 %s", key, consumer);
		ok = r != NULL && r->type == REDIS_REPLY_ARRAY && (consumer != NULL ||
		    (r->elements >= 1 && r->element[0]->type == REDIS_REPLY_INTEGER));
		if (ok)
			n += consumer != NULL ? (long long)r->elements : r->element[0]->integer;
		freeReplyObject(r);
		if (!ok)
			return -1;
	}
	return n;
}

long long
it_deals_pending(redisContext *rc)
{
	char group[KEYS_GROUP_MAX];
	long long n = 0;
	uint32_t k;

	for (k = 0; k < keys_shards(); k++) {
		redisReply *r;
		int ok;

		if (keys_deals_group(k, group, sizeof(group)) < 0)
			return -1;
		r = redisCommand(rc, "XPENDING deals %s", group);
		ok = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
		    r->element[0]->type == REDIS_REPLY_INTEGER;
		if (ok)
			n += r->element[0]->integer;
		freeReplyObject(r);
		if (!ok)
			return -1;
	}
	return n;
}

const char *
it_deal_key(const char *deal, char *buf, size_t size)
{
	keys_per(0, KEYS_DEAL, deal, buf, size);
	return buf;
}

int
it_deal_copies(redisContext *rc, const char *deal, const char *field)
{
	char key[KEYS_MAX];
	uint32_t k;
	int n = 0;

	for (k = 0; k < keys_shards(); k++)
		if (keys_per(k, KEYS_DEAL, deal, key, sizeof(key)) >= 0)
			n += it_int(rc, "HEXISTS %s %s", key, field) == 1;
	return n;
}

const char *
it_deal_entry(redisContext *rc, const char *deal, char *buf, size_t size)
{
	char key[KEYS_MAX];
	redisReply *r = redisCommand(rc, "HGET %s entry", it_deal_key(deal, key,
	    sizeof(key)));

	snprintf(buf, size, "%s", r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "");
	freeReplyObject(r);
	return buf;
}

const char *
it_shard_sub_json(const char *id, int n)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf),
	    "{\"id\":\"%s\",\"phone\":\"+1512556%04d\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
	    "\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}", id, n);
	return buf;
}

int
it_shard_api(int port, const char *method, const char *path, const char *body,
    struct it_resp *resp)
{
	return it_http(port, method, path, "Authorization: Bearer " IT_SHARD_TOKEN "\r\n",
	    body, body != NULL ? strlen(body) : 0, resp);
}

long
it_shard_mirror_size(int port)
{
	static struct it_resp resp;
	const char *deal = it_deal("probe", "laptop", 600);
	cJSON *o, *n;
	long v = -1;

	if (it_shard_api(port, "POST", "/v1/deals/simulate", deal, &resp) != 200 ||
	    (o = cJSON_Parse(resp.body)) == NULL)
		return -1;
	if (cJSON_IsNumber(n = cJSON_GetObjectItem(o, "subscribers")))
		v = (long)n->valuedouble;
	cJSON_Delete(o);
	return v;
}

/* The mirror it_shard_mirror_wait waits for: for it_wait. */
struct mirror_want {
	int port;
	long n;
};

static int
mirror_is(void *arg)
{
	const struct mirror_want *w = arg;

	return it_shard_mirror_size(w->port) == w->n;
}

int
it_shard_mirror_wait(int port, long n)
{
	struct mirror_want w = { port, n };

	return it_wait(mirror_is, &w, IT_SHARD_WAIT_MS);
}

int
it_shard_setup_layout(void)
{
	struct err err;
	struct shard_layout *l = shard_layout_new(IT_SHARD_N, &err);
	char out[256], bin[512], addr[64], n[16];
	const char *argv[] = { bin, "--redis", addr, "layout", "create", "--shards", n,
		NULL };

	if (l == NULL)
		return -1;
	layout_set(l);
	snprintf(bin, sizeof(bin), "%s/dealpushctl", it_build());
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", it_redis_port());
	snprintf(n, sizeof(n), "%d", IT_SHARD_N);
	return it_run(argv, out, sizeof(out)) == 0 ? 0 : -1;
}

int
it_shard_setup(void **state)
{
	if (it_one_setup(state) < 0)
		return -1;
	return it_shard_setup_layout();
}

int
it_shard_teardown(void **state)
{
	layout_clear();
	return it_one_teardown(state);
}

/* Member name of j as a number, -1 when it is not one. */
static double
num_of(const cJSON *j, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

void
it_shard_report_line(int port, const char *deal, char *buf, size_t size)
{
	static struct it_resp resp;
	char path[128], *skipped;
	cJSON *j;

	snprintf(path, sizeof(path), "/v1/reports/deal/%s", deal);
	buf[0] = '\0';
	if (it_shard_api(port, "GET", path, NULL, &resp) != 200 ||
	    (j = cJSON_Parse(resp.body)) == NULL)
		return;
	skipped = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, "skipped"));
	snprintf(buf, size, "%g %g %s", num_of(j, "matched"), num_of(j, "sent"),
	    skipped != NULL ? skipped : "-");
	free(skipped);
	cJSON_Delete(j);
}
