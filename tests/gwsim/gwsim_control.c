/*
 * gwsim_control.c: the simulator's control endpoint (/_sim/faults, /_sim/stats,
 * /_sim/reset) and the fault settings it edits.
 *
 * New fault settings are parsed whole into a copy and swapped in only when every field
 * is valid, so a bad request changes nothing. Loopback only and unauthenticated by
 * design: it must never be reachable off the host and never be delayed or faulted.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/http.h>

#include "gwsim.h"

#define ANSWER_KEY_MAX 64

void gwsim_faults_clear(struct gwsim_faults *f)
{
	size_t i;

	for (i = 0; i < f->nanswers; i++)
		free(f->answers[i].key);
	free(f->answers);
	memset(f, 0, sizeof(*f));
}

int gwsim_faults_copy(struct gwsim_faults *dst, const struct gwsim_faults *src)
{
	size_t i;

	*dst = *src;
	dst->answers = NULL;
	dst->nanswers = 0;
	if (src->nanswers == 0)
		return 0;
	dst->answers = calloc(src->nanswers, sizeof(*dst->answers));
	if (dst->answers == NULL)
		return -1;
	for (i = 0; i < src->nanswers; i++) {
		dst->answers[i].code = src->answers[i].code;
		dst->answers[i].key = strdup(src->answers[i].key);
		if (dst->answers[i].key == NULL) {
			dst->nanswers = i;
			gwsim_faults_clear(dst);
			return -1;
		}
	}
	dst->nanswers = src->nanswers;
	return 0;
}

int gwsim_faults_add_answer(struct gwsim_faults *f, struct gwsim_answer *a)
{
	struct gwsim_answer *na;
	size_t i;

	for (i = 0; i < f->nanswers; i++) {
		if (strcmp(f->answers[i].key, a->key) == 0) {
			free(f->answers[i].key);
			f->answers[i] = *a;
			return 0;
		}
	}
	if (f->nanswers >= GWSIM_ANSWERS_MAX)
		return -1;
	na = realloc(f->answers, (f->nanswers + 1) * sizeof(*na));
	if (na == NULL)
		return -1;
	f->answers = na;
	f->answers[f->nanswers++] = *a;
	return 0;
}

/* 1 when key is a usable answer key: 1..64 printable, non-space characters. */
static int control_key_ok(const char *key, size_t len)
{
	size_t i;

	if (len == 0 || len > ANSWER_KEY_MAX)
		return 0;
	for (i = 0; i < len; i++)
		if (!isgraph((unsigned char)key[i]))
			return 0;
	return 1;
}

int gwsim_answer_parse(const char *arg, struct gwsim_answer *a)
{
	const char *eq = strrchr(arg, '=');
	int status;
	long code, tw;

	if (eq == NULL || !control_key_ok(arg, (size_t)(eq - arg)) ||
	    gwsim_parse_long(eq + 1, 1, 99999, &code) != 0 ||
	    gwsim_answer_map(code, &status, &tw) != 0)
		return -1;
	a->key = strndup(arg, (size_t)(eq - arg));
	a->code = code;
	return a->key ? 0 : -1;
}

/* 1 when item is a number holding an integer within [lo, hi]. */
static int control_int(const cJSON *item, double lo, double hi)
{
	double v;

	if (!cJSON_IsNumber(item))
		return 0;
	v = item->valuedouble;
	return isfinite(v) && v == floor(v) && v >= lo && v <= hi;
}

/* "answers": {"<key>": <code>, ...} replaces f's answers. Returns 0 or -1 with
 * field naming the bad entry. */
static int control_parse_answers(const cJSON *obj, struct gwsim_faults *f, char *field,
    size_t fieldlen)
{
	const cJSON *it;
	struct gwsim_answer a;
	int status;
	long tw;

	if (!cJSON_IsObject(obj)) {
		snprintf(field, fieldlen, "answers");
		return -1;
	}
	for (; f->nanswers > 0; f->nanswers--)
		free(f->answers[f->nanswers - 1].key);
	cJSON_ArrayForEach(it, obj) {
		snprintf(field, fieldlen, "answers.%.64s", it->string);
		if (!control_key_ok(it->string, strlen(it->string)) ||
		    !control_int(it, 1, 99999) ||
		    gwsim_answer_map((long)it->valuedouble, &status, &tw) != 0)
			return -1;
		a.code = (long)it->valuedouble;
		a.key = strdup(it->string);
		if (a.key == NULL || gwsim_faults_add_answer(f, &a) != 0) {
			free(a.key);
			return -1;
		}
	}
	return 0;
}

/* Applies one top-level field of a faults request to f. Returns 0 or -1. */
static int control_parse_field(const cJSON *it, struct gwsim_faults *f, char *field,
    size_t fieldlen)
{
	const char *k = it->string;

	snprintf(field, fieldlen, "%.64s", k);
	if (strcmp(k, "latency_ms") == 0 && control_int(it, 0, GWSIM_LATENCY_MAX_MS))
		f->latency_ms = (long)it->valuedouble;
	else if (strcmp(k, "fail_rate") == 0 && cJSON_IsNumber(it) &&
	    it->valuedouble >= 0 && it->valuedouble <= 1)
		f->fail_rate = it->valuedouble;
	else if (strcmp(k, "down") == 0 && cJSON_IsBool(it))
		f->down = cJSON_IsTrue(it);
	else if (strcmp(k, "reset") == 0 && cJSON_IsBool(it))
		f->reset = cJSON_IsTrue(it);
	else if (strcmp(k, "answers") == 0)
		return control_parse_answers(it, f, field, fieldlen);
	else
		return -1;
	return 0;
}

static cJSON *control_faults_json(const struct gwsim_faults *f)
{
	cJSON *o = cJSON_CreateObject(), *ans;
	size_t i;

	if (o == NULL || !cJSON_AddNumberToObject(o, "latency_ms", (double)f->latency_ms) ||
	    !cJSON_AddNumberToObject(o, "fail_rate", f->fail_rate) ||
	    !cJSON_AddBoolToObject(o, "down", f->down) ||
	    !cJSON_AddBoolToObject(o, "reset", f->reset) ||
	    (ans = cJSON_AddObjectToObject(o, "answers")) == NULL)
		goto err;
	for (i = 0; i < f->nanswers; i++)
		if (!cJSON_AddNumberToObject(ans, f->answers[i].key, (double)f->answers[i].code))
			goto err;
	return o;
err:
	cJSON_Delete(o);
	return NULL;
}

static cJSON *control_error(const char *msg, const char *field)
{
	cJSON *o = cJSON_CreateObject();
	char *clean = gwsim_utf8_clean(field, strlen(field));

	if (o == NULL || clean == NULL || !cJSON_AddStringToObject(o, "error", msg) ||
	    !cJSON_AddStringToObject(o, "field", clean)) {
		cJSON_Delete(o);
		o = NULL;
	}
	free(clean);
	return o;
}

/* POST /_sim/faults: parse whole, then swap. */
static void control_faults_post(struct gwsim_call *c)
{
	struct gwsim *sim = c->sim;
	struct gwsim_faults nf;
	const cJSON *it;
	cJSON *json = NULL;
	char *body = NULL, field[96] = "body";
	size_t len;
	int rc = gwsim_body(c->req, &body, &len);

	if (rc == 0)
		json = cJSON_ParseWithLength(body, len);
	free(body);
	if (!cJSON_IsObject(json) || gwsim_faults_copy(&nf, &sim->faults) != 0) {
		gwsim_reply_json(c, 400, control_error("not a JSON object", "body"), NULL, 0);
		goto out;
	}
	cJSON_ArrayForEach(it, json) {
		if (control_parse_field(it, &nf, field, sizeof(field)) != 0) {
			gwsim_faults_clear(&nf);
			gwsim_reply_json(c, 400, control_error("bad field", field), NULL, 0);
			goto out;
		}
	}
	gwsim_faults_clear(&sim->faults);
	sim->faults = nf;
	gwsim_reply_json(c, 200, control_faults_json(&sim->faults), NULL, 0);
out:
	cJSON_Delete(json);
}

static cJSON *control_stats_json(const struct gwsim_stats *st)
{
	cJSON *o = cJSON_CreateObject(), *by;
	char key[16];
	int i;

	if (o == NULL || !cJSON_AddNumberToObject(o, "received", (double)st->received) ||
	    !cJSON_AddNumberToObject(o, "accepted", (double)st->accepted) ||
	    !cJSON_AddNumberToObject(o, "refused", (double)st->refused) ||
	    (by = cJSON_AddObjectToObject(o, "by_status")) == NULL)
		goto err;
	for (i = 0; i < GWSIM_STATUS_MAX; i++) {
		if (st->by_status[i] == 0)
			continue;
		snprintf(key, sizeof(key), "%d", i);
		if (!cJSON_AddNumberToObject(by, key, (double)st->by_status[i]))
			goto err;
	}
	return o;
err:
	cJSON_Delete(o);
	return NULL;
}

/* POST /_sim/reset: zero counters, restore the command-line faults, forget keys. */
static void control_reset(struct gwsim_call *c)
{
	struct gwsim *sim = c->sim;
	struct gwsim_faults nf;

	if (gwsim_faults_copy(&nf, &sim->initial) != 0) {
		gwsim_reply_json(c, 500, NULL, NULL, 0);
		return;
	}
	gwsim_faults_clear(&sim->faults);
	sim->faults = nf;
	memset(&sim->stats, 0, sizeof(sim->stats));
	sim->rng = sim->seed;
	gwsim_idem_clear(sim->idem);
	gwsim_reply_json(c, 200, cJSON_Parse("{\"ok\": true}"), NULL, 0);
}

void gwsim_control_handle(struct gwsim *sim, struct evhttp_request *req, const char *path)
{
	struct gwsim_call c;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);

	gwsim_call_init(&c, sim, req, "control");
	c.auth_ok = 1;
	if (gwsim_xoauth_control(&c, path))
		return;
	if (strcmp(path, "/_sim/faults") == 0 && m == EVHTTP_REQ_POST)
		control_faults_post(&c);
	else if (strcmp(path, "/_sim/faults") == 0 && m == EVHTTP_REQ_GET)
		gwsim_reply_json(&c, 200, control_faults_json(&sim->faults), NULL, 0);
	else if (strcmp(path, "/_sim/stats") == 0 && m == EVHTTP_REQ_GET)
		gwsim_reply_json(&c, 200, control_stats_json(&sim->stats), NULL, 0);
	else if (strcmp(path, "/_sim/reset") == 0 && m == EVHTTP_REQ_POST)
		control_reset(&c);
	else if (strcmp(path, "/_sim/faults") == 0 || strcmp(path, "/_sim/stats") == 0 ||
	    strcmp(path, "/_sim/reset") == 0)
		gwsim_reply_json(&c, 405, control_error("method not allowed", path), NULL, 0);
	else
		gwsim_reply_json(&c, 404, control_error("not found", path), NULL, 0);
}
