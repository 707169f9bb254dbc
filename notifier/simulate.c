/*
 * simulate.c: POST /v1/deals/simulate (stage: http; include/simulate.h).
 *
 * One pass of the real matcher over the subscriber mirror, answered at once from
 * memory: nothing is planned, written to Redis or sent. Admit's quiet hours and the
 * legal sending window are applied as deliver applies them (quiet.c, in each
 * subscriber's own zone); caps, consent changes since the mirror loaded and code
 * pools are Redis state and are not simulated. Must never touch Redis or send.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/http.h>

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
#define SIMULATE_ZONES_MAX 1024

struct simulate {
	const struct app *app;            /* borrowed */
	struct tzcache *zones;
	struct quiet_rules quiet;
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

static void
on_simulate(struct http_req *r, void *arg)
{
	struct simulate *sim = arg;
	struct sim_counts k;
	struct match_list l;
	struct deal *d;
	struct err e;
	size_t blen, i, subs, reachable, chosen;
	const char *body = http_body(r, &blen);
	const struct subscriber *prev = NULL;
	int64_t now = clock_now(), at = 0;
	cJSON *j, *sample, *ex, *bc, *df;
	int c;

	err_clear(&e);
	if ((d = deal_parse(body, blen, now, &e)) == NULL) {
		http_error_input(r, &e);
		return;
	}
	if (d->cancel) {
		http_error(r, 400, "cancel", "cancel: a cancel has no recipients to simulate");
		deal_free(d);
		return;
	}
	memset(&l, 0, sizeof(l));
	memset(&k, 0, sizeof(k));
	if (match_deal(sim->app->matcher, d, now, &l, &e) < 0) {
		http_error(r, 500, NULL, "%s", e.msg);
		deal_free(d);
		return;
	}
	count_unreachable(sim->app->ss, &k);
	sample = cJSON_CreateArray();
	for (i = 0; i < l.n; i++) {
		const struct match_rcpt *rc = &l.v[i];

		k.by_ch[rc->ch]++;
		if (rc->sub != prev) {
			k.recipients++;
			at = send_at(sim, rc->sub, now);
			if (at == QUIET_NEVER || at >= d->expires_at)
				k.past_expiry++;
			else if (at > now)
				k.deferred++;
		}
		prev = rc->sub;
		if (i < SIMULATE_SAMPLE_MAX)
			cJSON_AddItemToArray(sample, sample_json(rc, at, now));
	}
	subs = substore_count(sim->app->ss);
	reachable = subs - k.no_consent - k.no_channel;
	chosen = l.matched < reachable ? l.matched : reachable;

	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "deal", d->id);
	cJSON_AddNumberToObject(j, "subscribers", (double)subs);
	cJSON_AddNumberToObject(j, "matched", (double)l.matched);
	cJSON_AddNumberToObject(j, "held_out", (double)l.held_out);
	cJSON_AddNumberToObject(j, "unrenderable", (double)l.unrenderable);
	cJSON_AddNumberToObject(j, "paused", (double)l.paused);
	cJSON_AddNumberToObject(j, "recipients", (double)k.recipients);
	cJSON_AddNumberToObject(j, "pushes", (double)l.n);
	bc = cJSON_AddObjectToObject(j, "by_channel");
	for (c = 0; c < CH_COUNT; c++)
		cJSON_AddNumberToObject(bc, channel_name((enum channel)c), (double)k.by_ch[c]);
	df = cJSON_AddObjectToObject(j, "deferred");
	cJSON_AddNumberToObject(df, "quiet_hours", (double)(k.deferred));
	ex = cJSON_AddObjectToObject(j, "excluded");
	cJSON_AddNumberToObject(ex, "no_consent", (double)k.no_consent);
	cJSON_AddNumberToObject(ex, "no_channel", (double)k.no_channel);
	cJSON_AddNumberToObject(ex, "not_chosen", (double)(reachable - chosen));
	cJSON_AddNumberToObject(ex, "held_out", (double)l.held_out);
	cJSON_AddNumberToObject(ex, "quiet_hours_until_expiry", (double)k.past_expiry);
	cJSON_AddItemToObject(j, "sample", sample);
	match_list_free(&l);
	deal_free(d);
	http_reply_json(r, 200, j);
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
	if ((sim->zones = tzcache_new(NULL, SIMULATE_ZONES_MAX)) == NULL ||
	    http_route(app->http, EVHTTP_REQ_POST, "/v1/deals/simulate", on_simulate, sim,
	    HTTP_AUTH | HTTP_EXACT) < 0)
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
	tzcache_free(sim->zones);
	free(sim);
}
