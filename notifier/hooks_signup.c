/*
 * hooks_signup.c: sign-up by text with double opt-in (stage: http; docs/inbound.md
 * section 5). A text that is a [signup] keyword gets a confirmation request; a "Y"
 * within the window makes the number a subscriber with SMS consent and gets the
 * welcome text. Both answers go back as the webhook's TwiML, and only after the
 * script that made them true succeeded: a failure answers 503 and Twilio sends the
 * message again, which the MessageSid makes harmless.
 *
 * The "Y": read the request (signup:<number>) and the subscriber the number belongs
 * to, build the new document here (the parser and canonical form of every other
 * write), then signup.lua in three calls, each made durable (durable.h) before the
 * next: "yes_begin" on the number's slot (the request still the one read; the
 * MessageSid pending), "yes_store" on the subscriber's shard (stored only if it did
 * not change since read; once per sid), "yes_done" on the number's slot (off the
 * suppression list, the request closed, the sid applied). A failure between them
 * answers 503 and Twilio's retry goes through them again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>

#include "app.h"
#include "areacodes.h"
#include "clock.h"
#include "config.h"
#include "hooks.h"
#include "hooks_int.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "model.h"
#include "phoneix.h"
#include "redisutil.h"
#include "scripts.h"
#include "signup.h"
#include "subscriber.h"
#include "substore.h"
#include "timefmt.h"

/* A "Y" on its way: what the next step needs. */
struct yes_op {
	struct hooks_op *op;            /* op->r is NULL once the hooks are freed */
	char from[24];
	char sid[HOOKS_SID_MAX + 1];
	char id[MODEL_ID_MAX + 1];
	char stamp[32], locale[8];
	char cats[SIGNUP_CATS_MAX * SIGNUP_CAT_MAX];
	char keyword[SIGNUP_WORDS_MAX], asked[SIGNUP_TEXT_MAX];   /* of the request */
	char answer[16];
	char res[16];                   /* yes_store's answer: "created", "updated" */
	char began[24];                 /* when yes_begin was sent (epoch s) */
	int stopped;                    /* a STOP since the "Y" began ends it */
	enum { YES_BEGIN, YES_INDEX, YES_STORE, YES_DONE } step;   /* the call in flight */
	char *stored;                   /* the subscriber's JSON as read, NULL: none */
	char *doc;                      /* the new document, NULL before it is built */
	char *body;                     /* the text as received */
	struct hooks_sms sms;           /* for a "Y" with no request open: points into
	                                 * from, sid and body */
};

static void
yes_free(struct yes_op *y)
{
	free(y->stored);
	free(y->doc);
	free(y->body);
	free(y);
}

/* The subscribers' language for the number's texts: that of the first subscriber
 * with this number who has one, else -1. */
int
hooks_phone_locale(struct hooks *h, const char *phone)
{
	const char *ids[HOOKS_IDS_MAX];
	const struct subscriber *s;
	int i, n;

	if (h->app->ss == NULL || !substore_ready(h->app->ss) ||
	    (n = hooks_ix_lookup(h, HOOKS_IX_PHONE, phone, ids, HOOKS_IDS_MAX)) <= 0)
		return -1;
	for (i = 0; i < n; i++)
		if ((s = substore_get(h->app->ss, ids[i])) != NULL && s->locale != NULL)
			return (int)signup_locale_of(s->locale);
	return -1;
}

/* ---- the keyword: a confirmation request ---------------------------------------- */

struct ask_op {
	struct hooks_op *op;
	enum signup_locale loc;
	char from[24];
};

static void
on_ask(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct ask_op *a = arg;
	struct hooks *h = a->op->h;
	struct http_req *r = a->op->r;
	char masked[32];

	(void)rc;
	hooks_op_free(a->op);
	if (r == NULL)
		goto done;
	log_mask_phone(a->from, masked, sizeof(masked));
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 1 ||
	    reply->element[0]->type != REDIS_REPLY_STRING) {
		log_warnx("event=signup_failed step=ask from=%s err=\"%s\"", masked,
		    reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str :
		    "no reply");
		http_error(r, 503, NULL, "try again later");
		goto done;
	}
	log_info("event=signup_asked from=%s result=%s", masked, reply->element[0]->str);
	if (strcmp(reply->element[0]->str, "limited") == 0) {
		hooks_count(h, "signup:limited");
		hooks_twiml(r, NULL);
	} else {
		if (strcmp(reply->element[0]->str, "asked") == 0)
			hooks_count(h, "signup:asked");
		hooks_answer_text(h, r, ST_CONFIRM, a->loc);
	}
done:
	free(a);
}

void
hooks_signup_ask(struct hooks *h, struct http_req *r, const char *from, const char *sid,
    const struct signup_keyword *k)
{
	const struct config *cfg = h->app->cfg;
	char pending[KEYS_SHARD_MAX], asked[KEYS_SHARD_MAX], sids[KEYS_SHARD_MAX];
	char now[24], ms[24], ttl[16], most[16];
	char cats[SIGNUP_CATS_MAX * SIGNUP_CAT_MAX], text[SIGNUP_TEXT_MAX];
	const char *args[14];
	struct ask_op *a;
	size_t i, n = 0;
	int loc;

	if ((a = calloc(1, sizeof(*a))) == NULL ||
	    (a->op = hooks_op_new(h, r, HOOKS_OP_SMS)) == NULL) {
		free(a);
		http_error(r, 503, NULL, "out of memory");
		return;
	}
	loc = k->has_locale ? (int)k->locale : hooks_phone_locale(h, from);
	a->loc = loc < 0 ? SL_EN : (enum signup_locale)loc;
	snprintf(a->from, sizeof(a->from), "%s", from);
	cats[0] = '\0';
	for (i = 0; i < k->ncats; i++) {
		if (i > 0)
			strcat(cats, ",");
		strcat(cats, k->cats[i]);
	}
	if (signup_text(ST_CONFIRM, a->loc, &h->texts, text, sizeof(text)) < 0)
		text[0] = '\0';
	if (keys_phone(from, KEYS_PH_SIGNUP, pending, sizeof(pending)) < 0 ||
	    keys_phone(from, KEYS_PH_SIGNUP_ASKED, asked, sizeof(asked)) < 0 ||
	    keys_phone(from, KEYS_PH_SIDS, sids, sizeof(sids)) < 0) {
		hooks_op_free(a->op);
		free(a);
		http_error(r, 503, NULL, "try again later");
		return;
	}
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	snprintf(ms, sizeof(ms), "%lld", (long long)clock_now_ms());
	snprintf(ttl, sizeof(ttl), "%ld", cfg->signup_confirm_ttl_s);
	snprintf(most, sizeof(most), "%ld", cfg->signup_max_requests);
	args[n++] = pending;
	args[n++] = asked;
	args[n++] = sids;
	args[n++] = "ask";
	args[n++] = now;
	args[n++] = ms;
	args[n++] = sid;
	args[n++] = ttl;
	args[n++] = most;
	args[n++] = k->words;
	args[n++] = cats;
	args[n++] = signup_locale_tag(a->loc);
	args[n++] = text;
	if (script_call_named(h->app->cmd, "signup", 3, (int)n, args, NULL, on_ask, a) < 0) {
		hooks_op_free(a->op);
		free(a);
		http_error(r, 503, NULL, "try again later");
	}
}

/* ---- the "Y": the subscriber ---------------------------------------------------- */

/* A new subscriber's zone: the first of its area code's, else [signup] timezone,
 * else UTC. */
static const char *
new_zone(const struct config *cfg, const char *phone)
{
	const struct areacode *ac = areacode_of(phone);
	size_t i;

	if (ac != NULL)
		for (i = 0; i < areacode_zone_count(); i++)
			if (ac->zones & ((uint64_t)1 << i))
				return areacode_zone_name(i);
	return cfg->signup_timezone != NULL ? cfg->signup_timezone : "UTC";
}

/* Adds string s to array a unless there. Returns 0 or -1 (OOM). */
static int
set_add(cJSON *a, const char *s)
{
	cJSON *e;
	cJSON *v;

	cJSON_ArrayForEach(e, a)
		if (cJSON_IsString(e) && strcmp(e->valuestring, s) == 0)
			return 0;
	v = cJSON_CreateString(s);
	return v != NULL && cJSON_AddItemToArray(a, v) ? 0 : -1;
}

/* The member name of o, created as an object or array (array != 0) when missing
 * or null. NULL when it is of another type or out of memory. */
static cJSON *
member(cJSON *o, const char *name, int array)
{
	cJSON *m = cJSON_GetObjectItemCaseSensitive(o, name);

	if (m != NULL && !cJSON_IsNull(m))
		return (array ? cJSON_IsArray(m) : cJSON_IsObject(m)) ? m : NULL;
	if (m != NULL)
		cJSON_DeleteItemFromObjectCaseSensitive(o, name);
	m = array ? cJSON_CreateArray() : cJSON_CreateObject();
	if (m != NULL && !cJSON_AddItemToObject(o, name, m)) {
		cJSON_Delete(m);
		return NULL;
	}
	return m;
}

/* The canonical JSON of y's subscriber after the "Y": the stored one with SMS, its
 * consent now, the keyword's categories and language added; or a new one. NULL when
 * the stored one is not a subscriber of this number (or out of memory). */
static char *
yes_document(const struct yes_op *y, const struct config *cfg)
{
	cJSON *o, *ch, *consent, *interests, *cats, *v;
	char rfc[32], *text = NULL, *canon = NULL, *p, *save;
	char list[sizeof(y->cats)];
	struct subscriber *s;
	struct err err;

	time_format_rfc3339(clock_now(), rfc, sizeof(rfc));
	if (y->stored != NULL) {
		o = cJSON_Parse(y->stored);
		v = cJSON_GetObjectItemCaseSensitive(o, "phone");
		if (!cJSON_IsString(v) || strcmp(v->valuestring, y->from) != 0)
			goto done;
	} else {
		if ((o = cJSON_CreateObject()) == NULL ||
		    !cJSON_AddStringToObject(o, "id", y->id) ||
		    !cJSON_AddStringToObject(o, "phone", y->from) ||
		    !cJSON_AddStringToObject(o, "timezone", new_zone(cfg, y->from)))
			goto done;
	}
	if ((ch = member(o, "channels", 1)) == NULL || set_add(ch, "sms") < 0 ||
	    (consent = member(o, "consent", 0)) == NULL)
		goto done;
	cJSON_DeleteItemFromObjectCaseSensitive(consent, "sms");
	if (!cJSON_AddStringToObject(consent, "sms", rfc))
		goto done;
	v = cJSON_GetObjectItemCaseSensitive(o, "locale");
	if ((v == NULL || cJSON_IsNull(v)) && y->locale[0] != '\0') {
		cJSON_DeleteItemFromObjectCaseSensitive(o, "locale");
		if (!cJSON_AddStringToObject(o, "locale", y->locale))
			goto done;
	}
	if (y->cats[0] != '\0') {
		if ((interests = member(o, "interests", 0)) == NULL ||
		    (cats = member(interests, "categories", 1)) == NULL)
			goto done;
		snprintf(list, sizeof(list), "%s", y->cats);
		for (p = strtok_r(list, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save))
			if (set_add(cats, p) < 0)
				goto done;
	}
	if ((text = cJSON_PrintUnformatted(o)) == NULL)
		goto done;
	err_clear(&err);
	if ((s = subscriber_parse_canon(text, strlen(text), &canon, &err)) == NULL)
		log_warnx("event=signup_failed step=document err=\"%s\"", err.msg);
	subscriber_free(s);
done:
	cJSON_Delete(o);
	free(text);
	return canon;
}

static void yes_fallback(struct yes_op *y, struct http_req *r);
static int yes_send(struct yes_op *y, const char *op);

/* A "Y" answered (r is not NULL): the welcome text. */
static void
yes_welcome(struct yes_op *y, struct http_req *r, const char *res)
{
	struct hooks *h = y->op->h;
	char masked[32];
	int loc;

	log_mask_phone(y->from, masked, sizeof(masked));
	if (strcmp(res, "dup") != 0)
		hooks_count(h, strcmp(res, "created") == 0 ? "signup:created" :
		    "signup:updated");
	log_info("event=signup_confirmed from=%s id=%s result=%s", masked, y->id, res);
	loc = y->locale[0] != '\0' ? (int)signup_locale_of(y->locale) :
	    hooks_phone_locale(h, y->from);         /* a replay: the subscriber's */
	hooks_answer_text(h, r, ST_WELCOME, loc < 0 ? SL_EN : (enum signup_locale)loc);
}

/* One of the "Y"'s calls answered: the next, or the webhook's answer. */
static void
on_yes_step(struct rconn *rc, struct redisReply *reply, int durable, void *arg)
{
	static const char *const step_name[] = { "begin", "index", "store", "done" };
	struct yes_op *y = arg;
	struct http_req *r = y->op->r;
	const char *res;
	char masked[32];
	int sent = -1;

	(void)rc;
	if (r == NULL)
		goto done;
	log_mask_phone(y->from, masked, sizeof(masked));
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
	    reply->elements > 2 || reply->element[0]->type != REDIS_REPLY_STRING ||
	    (reply->elements == 2 && reply->element[1]->type != REDIS_REPLY_STRING) ||
	    !durable) {
		log_warnx("event=signup_failed step=%s from=%s err=\"%s\"", step_name[y->step],
		    masked, reply != NULL && reply->type == REDIS_REPLY_ERROR ? reply->str :
		    reply != NULL && !durable ? "not durable" : "no reply");
		http_error(r, 503, NULL, "try again later");
		goto done;
	}
	res = reply->element[0]->str;
	switch (y->step) {
	case YES_BEGIN:
		if (strcmp(res, "none") == 0) {
			yes_fallback(y, r);
			goto done;
		}
		if (strcmp(res, "changed") == 0) {
			/* Read again on Twilio's retry: the mirror catches up meanwhile. */
			log_info("event=signup_retry from=%s reason=changed", masked);
			http_error(r, 503, NULL, "try again later");
			goto done;
		}
		if (strcmp(res, "dup") == 0) {
			yes_welcome(y, r, res);
			goto done;
		}
		if (strcmp(res, "go") != 0 || y->doc == NULL || reply->elements != 2)
			break;
		snprintf(y->began, sizeof(y->began), "%s", reply->element[1]->str);
		/* The id in the phone index before it is stored (phoneix.h). */
		if (y->op->h != NULL) {
			struct durable_config wait;

			wait.replicas = y->op->h->app->cfg->wait_replicas;
			wait.timeout_ms = y->op->h->app->cfg->wait_timeout_ms;
			y->step = YES_INDEX;
			sent = phoneix_call(y->op->h->app->cmd, &wait, PHONEIX_PHONE, "add",
			    y->from, y->id, on_yes_step, y);
		}
		goto next;
	case YES_INDEX:
		/* The number's entry on the suppression list, read by the add: a STOP
		 * after the second the "Y" began in (its lookup missed this id, not
		 * indexed yet) ends the sign-up; one in that second is taken as before
		 * it (entries have seconds). */
		if (res[0] != '\0' && strtoll(res, NULL, 10) > strtoll(y->began, NULL, 10))
			goto stopped;
		sent = y->op->h != NULL ? yes_send(y, "yes_store") : -1;
		goto next;
	case YES_STORE:
		if (strcmp(res, "stopped") == 0)
			goto stopped;
		if (strcmp(res, "changed") == 0) {
			log_info("event=signup_retry from=%s reason=changed", masked);
			http_error(r, 503, NULL, "try again later");
			goto done;
		}
		if (strcmp(res, "created") != 0 && strcmp(res, "updated") != 0)
			break;
		snprintf(y->res, sizeof(y->res), "%s", res);
		sent = y->op->h != NULL ? yes_send(y, "yes_done") : -1;
		goto next;
	case YES_DONE:
		if (strcmp(res, "ok") != 0)
			break;
		if (y->stopped)
			goto answer_stopped;
		yes_welcome(y, r, y->res);
		goto done;
	}
	log_warnx("event=signup_failed step=%s from=%s err=\"unexpected answer %s\"",
	    step_name[y->step], masked, res);
	http_error(r, 503, NULL, "try again later");
	goto done;
stopped:
	/* Nothing stored: the STOP is the person's last word. The request is closed
	 * and the sid applied (yes_done, which leaves the STOP's entry on the list),
	 * then the answer. */
	y->stopped = 1;
	if (y->op->h != NULL && yes_send(y, "yes_done") == 0)
		return;
answer_stopped:
	log_info("event=signup_stopped from=%s", masked);
	hooks_count(y->op->h, "signup:stopped");
	hooks_twiml(r, NULL);
	goto done;
next:
	if (sent == 0)
		return;
	http_error(r, 503, NULL, "try again later");
done:
	hooks_op_free(y->op);
	yes_free(y);
}

/* Sends signup.lua's step op ("yes_begin", "yes_store", "yes_done") for y. Returns
 * 0, or -1 when it could not be sent. */
static int
yes_send(struct yes_op *y, const char *op)
{
	struct hooks *h = y->op->h;
	char sk[KEYS_SUB_NKEYS][KEYS_SHARD_MAX], pending[KEYS_SHARD_MAX],
	    sids[KEYS_SHARD_MAX], supp[KEYS_SHARD_MAX], ack[KEYS_SHARD_MAX],
	    done[KEYS_SHARD_MAX + HOOKS_SID_MAX], now[24], ttl[16], stops[KEYS_SHARD_MAX];
	const char *args[20];
	int n = 0, nkeys;

	if (keys_phone(y->from, KEYS_PH_SIGNUP, pending, sizeof(pending)) < 0 ||
	    keys_phone(y->from, KEYS_PH_SIDS, sids, sizeof(sids)) < 0 ||
	    keys_phone(y->from, KEYS_PH_SUPPRESSED, supp, sizeof(supp)) < 0 ||
	    keys_phone(y->from, KEYS_PH_ACK, ack, sizeof(ack)) < 0 ||
	    keys_sub_keys(keys_shard_of(y->id), sk) < 0)
		return -1;
	if (y->sid[0] == '\0')
		done[0] = '\0';
	else if (keys_inbound_done(keys_shard_of(y->id), y->sid, done, sizeof(done)) < 0)
		return -1;
	snprintf(now, sizeof(now), "%lld", (long long)clock_now());
	snprintf(ttl, sizeof(ttl), "%d", 30 * 86400);
	y->step = strcmp(op, "yes_begin") == 0 ? YES_BEGIN : strcmp(op, "yes_store") == 0 ?
	    YES_STORE : YES_DONE;
	if (y->step == YES_BEGIN)
		snprintf(y->began, sizeof(y->began), "%s", now);
	if (keys_shard_key(keys_shard_of(y->id), KEYS_STOPS, stops, sizeof(stops)) < 0)
		return -1;
	if (strcmp(op, "yes_store") == 0) {
		args[n++] = sk[0];
		args[n++] = sk[1];
		args[n++] = sk[3];
		args[n++] = sk[4 + CH_SMS];
		args[n++] = done;
		args[n++] = stops;
		nkeys = n;
		args[n++] = op;
		args[n++] = now;
		args[n++] = y->id;
		args[n++] = y->stored != NULL ? y->stored : "";
		args[n++] = y->doc;
		args[n++] = y->keyword;
		args[n++] = y->answer;
		args[n++] = y->asked;
		args[n++] = ttl;
		args[n++] = y->from;
		args[n++] = y->began;
	} else {
		args[n++] = pending;
		args[n++] = sids;
		if (strcmp(op, "yes_done") == 0) {
			args[n++] = supp;
			args[n++] = ack;
		}
		nkeys = n;
		args[n++] = op;
		args[n++] = now;
		args[n++] = y->sid;
		args[n++] = strcmp(op, "yes_done") == 0 ? y->from : y->stamp;
		if (strcmp(op, "yes_done") == 0)
			args[n++] = y->began;
	}
	return hooks_script_durable(h, "signup", nkeys, n, args, on_yes_step, y);
}

static void
yes_store(struct yes_op *y)
{
	if ((y->doc = yes_document(y, y->op->h->app->cfg)) == NULL) {
		/* The index was stale (the number moved), or the document is refused:
		 * answered as any other "Y". */
		yes_fallback(y, y->op->r);
		hooks_op_free(y->op);
		yes_free(y);
		return;
	}
	if (yes_send(y, "yes_begin") < 0) {
		http_error(y->op->r, 503, NULL, "try again later");
		hooks_op_free(y->op);
		yes_free(y);
	}
}

static void
on_yes_subscriber(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct yes_op *y = arg;

	(void)rc;
	if (y->op->r == NULL || reply == NULL ||
	    (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL)) {
		if (y->op->r != NULL)
			http_error(y->op->r, 503, NULL, "try again later");
		goto fail;
	}
	if (reply->type == REDIS_REPLY_STRING &&
	    (y->stored = strndup(reply->str, reply->len)) == NULL) {
		http_error(y->op->r, 503, NULL, "out of memory");
		goto fail;
	}
	yes_store(y);
	return;
fail:
	hooks_op_free(y->op);
	yes_free(y);
}

/* Copies field name of an HGETALL reply into buf; 0, or -1 when absent or too long. */
static int
hash_field(const redisReply *r, const char *name, char *buf, size_t size)
{
	size_t len = 0;
	const char *v = ru_field(r, name, &len);

	if (v == NULL || len >= size)
		return -1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	return 0;
}

static void
on_yes_pending(struct rconn *rc, struct redisReply *reply, void *arg)
{
	struct yes_op *y = arg;
	struct hooks *h = y->op->h;
	char key[KEYS_SHARD_MAX];
	const char *argv[3];

	(void)rc;
	if (y->op->r == NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
		if (y->op->r != NULL)
			http_error(y->op->r, 503, NULL, "try again later");
		goto fail;
	}
	if (reply->elements == 0 || hash_field(reply, "at", y->stamp,
	    sizeof(y->stamp)) < 0) {
		/* No request open: a replay of a "Y" applied already, or a "Y" that
		 * is no answer to anything; the script tells which. */
		y->stamp[0] = '\0';
		if (y->sid[0] != '\0' && yes_send(y, "yes_begin") == 0)
			return;
		yes_fallback(y, y->op->r);
		goto fail;
	}
	if (hash_field(reply, "locale", y->locale, sizeof(y->locale)) < 0)
		snprintf(y->locale, sizeof(y->locale), "en");
	if (hash_field(reply, "cats", y->cats, sizeof(y->cats)) < 0)
		y->cats[0] = '\0';
	if (hash_field(reply, "keyword", y->keyword, sizeof(y->keyword)) < 0)
		y->keyword[0] = '\0';
	if (hash_field(reply, "asked", y->asked, sizeof(y->asked)) < 0)
		y->asked[0] = '\0';
	keys_shard_key(keys_shard_of(y->id), KEYS_SUBSCRIBERS, key, sizeof(key));
	argv[0] = "HGET";
	argv[1] = key;
	argv[2] = y->id;
	if (rconn_argv(h->app->cmd, on_yes_subscriber, y, 0, 3, argv, NULL) == 0)
		return;
	http_error(y->op->r, 503, NULL, "try again later");
fail:
	hooks_op_free(y->op);
	yes_free(y);
}

/* No request open: the "Y" is whatever it is without sign-up (YES an opt-in, Y a
 * reply kept for review). */
static void
yes_fallback(struct yes_op *y, struct http_req *r)
{
	if (r == NULL || y->op->h == NULL)
		return;
	hooks_sms_consent(y->op->h, r, &y->sms);
}

int
hooks_signup_yes(struct hooks *h, struct http_req *r, const struct hooks_sms *m)
{
	char pending[KEYS_SHARD_MAX];
	const char *ids[HOOKS_IDS_MAX], *argv[2];
	struct yes_op *y;
	size_t i;
	int n;

	if (strlen(m->from) >= sizeof(y->from) || (y = calloc(1, sizeof(*y))) == NULL)
		return -1;
	if ((y->body = malloc(m->blen + 1)) == NULL) {
		yes_free(y);
		return -1;
	}
	memcpy(y->body, m->body, m->blen);
	y->body[m->blen] = '\0';
	snprintf(y->from, sizeof(y->from), "%s", m->from);
	snprintf(y->sid, sizeof(y->sid), "%s", m->sid);
	y->sms = *m;
	y->sms.from = y->from;
	y->sms.sid = y->sid;
	y->sms.body = y->body;
	/* The answer for the consent record: what was texted, up to 15 bytes. */
	for (i = 0; i < m->blen && i + 1 < sizeof(y->answer); i++)
		y->answer[i] = m->body[i] >= 0x20 && m->body[i] < 0x7f ? m->body[i] : '?';
	/* The number's subscriber with the least id, else a new one named by the
	 * number. */
	n = hooks_ix_lookup(h, HOOKS_IX_PHONE, m->from, ids, HOOKS_IDS_MAX);
	if (n < 0) {
		yes_free(y);
		return -1;
	}
	snprintf(y->id, sizeof(y->id), "%s", m->from);
	for (i = 0; i < (size_t)n; i++)
		if (i == 0 || strcmp(ids[i], y->id) < 0)
			snprintf(y->id, sizeof(y->id), "%s", ids[i]);
	if ((y->op = hooks_op_new(h, r, HOOKS_OP_SMS)) == NULL) {
		yes_free(y);
		return -1;
	}
	if (keys_phone(m->from, KEYS_PH_SIGNUP, pending, sizeof(pending)) < 0) {
		hooks_op_free(y->op);
		yes_free(y);
		return -1;
	}
	argv[0] = "HGETALL";
	argv[1] = pending;
	if (rconn_argv(h->app->cmd, on_yes_pending, y, 0, 2, argv, NULL) < 0) {
		hooks_op_free(y->op);
		yes_free(y);
		return -1;
	}
	return 0;
}
