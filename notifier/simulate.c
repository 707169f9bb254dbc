/*
 * simulate.c: POST /v1/deals/simulate (stage: http; include/simulate.h).
 *
 * The real matcher over the subscriber mirror, ranked at once and rendered a slice per
 * loop turn as the planner does (a broad deal at a million subscribers never holds
 * the loop), answered from memory when done: nothing is planned, written to Redis or sent. Admit's quiet hours and the
 * legal sending window are applied as deliver applies them (quiet.c, in each
 * subscriber's own zone); caps, consent changes since the mirror loaded and code
 * pools are Redis state and are not simulated. Must never touch Redis or send.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/http.h>

#include "admin.h"
#include "app.h"
#include "clock.h"
#include "config.h"
#include "deal.h"
#include "http.h"
#include "log.h"
#include "match.h"
#include "model.h"
#include "quiet.h"
#include "rules.h"
#include "simulate.h"
#include "subscriber.h"
#include "substore.h"
#include "timefmt.h"
#include "tz.h"

#define SIMULATE_SAMPLE_MAX 100       /* pushes shown, in plan order */
#define SIMULATE_SLICE 2000           /* pushes rendered per loop turn */

struct sim_job;

struct simulate {
	const struct app *app;            /* borrowed */
	struct tzcache *zones;
	struct quiet_rules quiet;
	struct sim_job *jobs;             /* simulations in progress */
};

/* What the answer counts, beside the matcher's own figures. */
struct sim_counts {
	size_t no_consent, no_channel;    /* unreachable whatever the rules say */
	size_t recipients;                /* distinct subscribers planned */
	size_t deferred;                  /* recipients outside their window now */
	size_t past_expiry;               /* ... whose window opens after the deal ends */
	size_t by_ch[CH_COUNT];
};

/* The text with each run of per-recipient code marks shown as "{code}". */
static char *
sample_text(const char *s)
{
	size_t n = strlen(s), i, o = 0;
	char *out = malloc(n + 1);

	if (out == NULL)
		return NULL;
	for (i = 0; i < n; ) {
		if (s[i] == MATCH_CODE_MARK) {
			while (i < n && s[i] == MATCH_CODE_MARK)
				i++;
			memcpy(out + o, "{code}", 6);   /* 6 <= MATCH_CODE_WIDTH */
			o += 6;
			continue;
		}
		out[o++] = s[i++];
	}
	out[o] = '\0';
	return out;
}

/* Counts who could never be reached, whatever the rules say: one pass over the
 * mirror, no rule evaluated. */
static void
count_unreachable(const struct substore *ss, struct sim_counts *k)
{
	size_t i, n = substore_count(ss);
	int c;

	for (i = 0; i < n; i++) {
		const struct subscriber *s = substore_at(ss, i);
		int consented = 0;

		if (rule_reachable(s) != 0)
			continue;
		for (c = 0; c < CH_COUNT; c++)
			consented |= (s->channels & CH_BIT(c)) && s->consent[c] != 0;
		if (s->channels != 0 && !consented)
			k->no_consent++;
		else
			k->no_channel++;
	}
}

/* When deliver would first send to s: now, a later instant, or QUIET_NEVER (as
 * deliver, an unknown zone is read as UTC). */
static int64_t
send_at(struct simulate *sim, const struct subscriber *s, int64_t now)
{
	const struct tz *z = tz_get(sim->zones, s->timezone, NULL);
	int64_t nb;

	if (z == NULL)
		z = tz_get(sim->zones, "UTC", NULL);
	nb = z != NULL ? quiet_next_allowed(&sim->quiet, sim->zones, z, s, now) :
	    TZ_TIME_ERROR;
	return nb == TZ_TIME_ERROR || nb == QUIET_NO_WINDOW ? QUIET_NEVER : nb;
}

static cJSON *
sample_json(const struct match_rcpt *rc, int64_t at, int64_t now)
{
	cJSON *o = cJSON_CreateObject();
	char *t = sample_text(rc->text), when[40];

	if (o == NULL)
		goto out;
	cJSON_AddStringToObject(o, "subscriber", rc->sub->id);
	cJSON_AddStringToObject(o, "channel", channel_name(rc->ch));
	cJSON_AddStringToObject(o, "rule", rc->rule);
	cJSON_AddStringToObject(o, "text", t ? t : "");
	if (rc->ch == CH_SMS) {
		enum rule_encoding enc;
		unsigned units, segs = rule_sms_count(rc->text, strlen(rc->text), &enc, &units);

		cJSON_AddNumberToObject(o, "segments", segs);
		cJSON_AddStringToObject(o, "encoding", enc == RULE_ENC_GSM7 ? "gsm7" : "ucs2");
	} else {
		cJSON_AddNullToObject(o, "segments");
		cJSON_AddNullToObject(o, "encoding");
	}
	/* null: sent at once; else when the subscriber's window opens. */
	if (at > now && at != QUIET_NEVER && time_format_rfc3339(at, when, sizeof(when)))
		cJSON_AddStringToObject(o, "send_at", when);
	else
		cJSON_AddNullToObject(o, "send_at");
out:
	free(t);
	return o;
}

/* A simulation in progress: ranked at once, rendered a slice per loop turn (as the
 * planner does), answered when the ranking is done. */
struct sim_job {
	struct simulate *sim;
	struct http_req *r;
	struct deal *d;                   /* owned */
	struct match_run *run;
	struct sim_counts k;
	size_t matched, held_out, unrenderable, paused, pushes;
	size_t turns;                     /* loop turns that rendered a slice */
	int64_t now;
	cJSON *sample;
	struct event *ev;
	int draft;                        /* ranked with a draft's rules */
	struct sim_job *next, *prev;      /* simulate.jobs */
};

static void
sim_job_free(struct sim_job *sj)
{
	struct simulate *sim = sj->sim;

	if (sj->prev != NULL)
		sj->prev->next = sj->next;
	else
		sim->jobs = sj->next;
	if (sj->next != NULL)
		sj->next->prev = sj->prev;
	if (sj->ev != NULL)
		event_free(sj->ev);
	match_run_free(sj->run);
	deal_free(sj->d);
	cJSON_Delete(sj->sample);
	free(sj);
}

/* Counts one slice's pushes; the first SIMULATE_SAMPLE_MAX go into the sample. */
static void
sim_count(struct sim_job *sj, const struct match_list *l)
{
	const struct subscriber *prev = NULL;
	int64_t at = 0;
	size_t i;

	sj->unrenderable += l->unrenderable;
	sj->paused += l->paused;
	for (i = 0; i < l->n; i++) {
		const struct match_rcpt *rc = &l->v[i];

		sj->k.by_ch[rc->ch]++;
		if (rc->sub != prev) {
			sj->k.recipients++;
			at = send_at(sj->sim, rc->sub, sj->now);
			if (at == QUIET_NEVER || at >= sj->d->expires_at)
				sj->k.past_expiry++;
			else if (at > sj->now)
				sj->k.deferred++;
		}
		prev = rc->sub;
		if (sj->pushes++ < SIMULATE_SAMPLE_MAX)
			cJSON_AddItemToArray(sj->sample, sample_json(rc, at, sj->now));
	}
}

/* The answer, once every slice is counted. */
static void
sim_answer(struct sim_job *sj)
{
	size_t subs = substore_count(sj->sim->app->ss), reachable, chosen;
	const struct sim_counts *k = &sj->k;
	cJSON *j, *ex, *bc, *df;
	int c;

	reachable = subs - k->no_consent - k->no_channel;
	chosen = sj->matched < reachable ? sj->matched : reachable;
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "deal", sj->d->id);
	if (sj->draft)
		cJSON_AddBoolToObject(j, "draft", 1);
	cJSON_AddNumberToObject(j, "subscribers", (double)subs);
	cJSON_AddNumberToObject(j, "matched", (double)sj->matched);
	cJSON_AddNumberToObject(j, "held_out", (double)sj->held_out);
	cJSON_AddNumberToObject(j, "unrenderable", (double)sj->unrenderable);
	cJSON_AddNumberToObject(j, "paused", (double)sj->paused);
	cJSON_AddNumberToObject(j, "recipients", (double)k->recipients);
	cJSON_AddNumberToObject(j, "pushes", (double)sj->pushes);
	bc = cJSON_AddObjectToObject(j, "by_channel");
	for (c = 0; c < CH_COUNT; c++)
		cJSON_AddNumberToObject(bc, channel_name((enum channel)c), (double)k->by_ch[c]);
	df = cJSON_AddObjectToObject(j, "deferred");
	cJSON_AddNumberToObject(df, "quiet_hours", (double)(k->deferred));
	ex = cJSON_AddObjectToObject(j, "excluded");
	cJSON_AddNumberToObject(ex, "no_consent", (double)k->no_consent);
	cJSON_AddNumberToObject(ex, "no_channel", (double)k->no_channel);
	cJSON_AddNumberToObject(ex, "not_chosen", (double)(reachable - chosen));
	cJSON_AddNumberToObject(ex, "held_out", (double)sj->held_out);
	cJSON_AddNumberToObject(ex, "quiet_hours_until_expiry", (double)k->past_expiry);
	cJSON_AddItemToObject(j, "sample", sj->sample);
	sj->sample = NULL;
	http_reply_json(sj->r, 200, j);
}

static void
sim_turn(evutil_socket_t fd, short what, void *arg)
{
	static const struct timeval now = { 0, 0 };
	struct sim_job *sj = arg;
	struct match_list l;
	struct err e;
	int more;

	(void)fd;
	(void)what;
	err_clear(&e);
	if ((more = match_run_next(sj->run, NULL, SIMULATE_SLICE, &l, &e)) < 0) {
		http_error(sj->r, 500, NULL, "%s", e.msg);
		sim_job_free(sj);
		return;
	}
	sim_count(sj, &l);
	match_list_free(&l);
	sj->turns++;
	if (more) {
		event_add(sj->ev, &now);
		return;
	}
	log_info("event=simulated deal=%s pushes=%zu turns=%zu", sj->d->id, sj->pushes,
	    sj->turns);
	sim_answer(sj);
	sim_job_free(sj);
}

/* A draft simulation's body: {"deal": {...}, "draft": {"name", "text"}}. Puts the
 * deal's JSON (to free) into *deal and the rules with the draft into *rs. Returns 0,
 * or -1 after answering r. */
static int
sim_draft(struct simulate *sim, struct http_req *r, cJSON *body, char **deal,
    struct rule_set **rs)
{
	const cJSON *m, *d = NULL, *dr = NULL, *name, *text;

	cJSON_ArrayForEach(m, body) {
		if (strcmp(m->string, "deal") == 0 && d == NULL)
			d = m;
		else if (strcmp(m->string, "draft") == 0 && dr == NULL)
			dr = m;
		else {
			http_error(r, 400, m->string, "%s: a draft simulation has only \"deal\" "
			    "and \"draft\"", m->string);
			return -1;
		}
	}
	if (!cJSON_IsObject(d)) {
		http_error(r, 400, "deal", "deal: the deal to simulate, an object");
		return -1;
	}
	if (!cJSON_IsObject(dr) || cJSON_GetArraySize(dr) != 2 ||
	    !cJSON_IsString(name = cJSON_GetObjectItemCaseSensitive(dr, "name")) ||
	    !cJSON_IsString(text = cJSON_GetObjectItemCaseSensitive(dr, "text"))) {
		http_error(r, 400, "draft", "draft: {\"name\": the rule source, \"text\": its "
		    "text}");
		return -1;
	}
	if (sim->app->admin == NULL) {
		http_error(r, 503, NULL, "the rules are not loaded yet");
		return -1;
	}
	if ((*rs = admin_rules_draft(sim->app->admin, r, name->valuestring,
	    text->valuestring, strlen(text->valuestring))) == NULL)
		return -1;
	if ((*deal = cJSON_PrintUnformatted(d)) == NULL) {
		rule_set_free(*rs);
		*rs = NULL;
		http_error(r, 500, NULL, "out of memory");
		return -1;
	}
	return 0;
}

static void
on_simulate(struct http_req *r, void *arg)
{
	static const struct timeval now = { 0, 0 };
	struct simulate *sim = arg;
	struct match_list summary;
	struct rule_set *rs = NULL;
	struct sim_job *sj;
	struct deal *d;
	struct err e;
	size_t blen;
	const char *body = http_body(r, &blen);
	char *draft_deal = NULL;
	cJSON *j;

	err_clear(&e);
	/* A draft: the rules with a source's text not applied yet (the console's editor). */
	if (blen > 0 && memchr(body, '\0', blen) == NULL &&
	    (j = cJSON_ParseWithLength(body, blen)) != NULL) {
		int draft = cJSON_IsObject(j) &&
		    cJSON_GetObjectItemCaseSensitive(j, "draft") != NULL;

		if (draft && sim_draft(sim, r, j, &draft_deal, &rs) < 0) {
			cJSON_Delete(j);
			return;
		}
		cJSON_Delete(j);
		if (draft) {
			body = draft_deal;
			blen = strlen(draft_deal);
		}
	}
	d = deal_parse(body, blen, clock_now(), &e);
	free(draft_deal);
	if (d == NULL) {
		rule_set_free(rs);
		http_error_input(r, &e);
		return;
	}
	if (d->cancel) {
		http_error(r, 400, "cancel", "cancel: a cancel has no recipients to simulate");
		rule_set_free(rs);
		deal_free(d);
		return;
	}
	if ((sj = calloc(1, sizeof(*sj))) == NULL) {
		rule_set_free(rs);
		deal_free(d);
		http_error(r, 500, NULL, "out of memory");
		return;
	}
	sj->sim = sim;
	sj->r = r;
	sj->d = d;
	sj->now = clock_now();
	sj->draft = rs != NULL;
	if ((sj->next = sim->jobs) != NULL)
		sj->next->prev = sj;
	sim->jobs = sj;
	if ((sj->sample = cJSON_CreateArray()) == NULL ||
	    (sj->ev = event_new(sim->app->base, -1, 0, sim_turn, sj)) == NULL) {
		rule_set_free(rs);
		http_error(r, 500, NULL, "out of memory");
		sim_job_free(sj);
		return;
	}
	sj->run = rs != NULL ?
	    match_run_new_rules(sim->app->matcher, rs, d, sj->now, &summary, &e) :
	    match_run_new(sim->app->matcher, d, sj->now, &summary, &e);
	if (sj->run == NULL) {
		http_error(r, 500, NULL, "%s", e.msg);
		sim_job_free(sj);
		return;
	}
	sj->matched = summary.matched;
	sj->held_out = summary.held_out;
	match_list_free(&summary);
	count_unreachable(sim->app->ss, &sj->k);
	event_add(sj->ev, &now);
}

struct simulate *
simulate_new(const struct app *app)
{
	struct simulate *sim;

	if (app->http == NULL)
		return NULL;
	if ((sim = calloc(1, sizeof(*sim))) == NULL)
		goto oom;
	sim->app = app;
	sim->quiet = app->cfg->quiet;
	sim->zones = app->zones;
	if (http_route(app->http, EVHTTP_REQ_POST, "/v1/deals/simulate",
	    HTTP_ROLE_MARKETER, on_simulate, sim, HTTP_EXACT) < 0)
		goto oom;
	return sim;
oom:
	log_errorx("event=start_failed component=simulate err=\"out of memory\"");
	simulate_free(sim);
	return NULL;
}

void
simulate_free(struct simulate *sim)
{
	if (sim == NULL)
		return;
	/* Their requests are answered 503 by http_free, which comes after. */
	while (sim->jobs != NULL)
		sim_job_free(sim->jobs);
	free(sim);
}
