/*
 * simulate.c: POST /v1/deals/simulate (stage: http; include/simulate.h).
 *
 * The real matcher over the subscriber mirror, ranked at once and rendered a slice per
 * loop turn as the planner does (a broad deal at a million subscribers never holds
 * the loop), answered when done: nothing is planned, written to Redis or sent. Admit's
 * quiet hours and the legal sending window are applied as deliver applies them
 * (quiet.c, in each subscriber's own zone, on the notifier's clock); the daily,
 * campaign and law's caps are read from Redis (ZCOUNT only, simulate_caps.c) for the
 * pushes that would leave at once, slice by slice; texts carry a short link of the
 * real length. Consent changed since the mirror loaded and code pools are not
 * simulated. Must never write to Redis or send.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <event2/http.h>

#include "channel.h"
#include "admin.h"
#include "app.h"
#include "clock.h"
#include "config.h"
#include "deal.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "match.h"
#include "model.h"
#include "quiet.h"
#include "rules.h"
#include "simulate.h"
#include "simulate_caps.h"
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
	struct match_links links;         /* short links of the real length */
	struct sim_job *jobs;             /* simulations in progress */
};

/* ORDER SIM_SKIP: the final verdicts a simulated push may get, as the reports name
 * them. */
enum sim_skip { SIM_SKIP_QUIET = 0, SIM_SKIP_DAY, SIM_SKIP_CAMP, SIM_SKIP_LAW,
	SIM_SKIPS };
static const char *const sim_skip_name[SIM_SKIPS] = {
	"quiet_hours", "daily_cap", "campaign_cap", "legal_cap",
};

/* What the answer counts, beside the matcher's own figures. */
struct sim_counts {
	size_t no_consent, no_channel;    /* unreachable whatever the rules say */
	size_t recipients;                /* distinct subscribers planned */
	size_t deferred;                  /* recipients outside their window now */
	size_t past_expiry;               /* ... whose window opens after the deal ends */
	size_t by_ch[CH_COUNT];
	size_t sent, delayed;             /* pushes leaving at once, waiting a window */
	size_t skipped[SIM_SKIPS];        /* pushes ending with that verdict */
	size_t seg_sent, seg_delayed;     /* SMS segments of those sent, delayed */
};

/* One subscriber of a slice: when its pushes may leave, and its caps. What the
 * counting needs of the subscriber is copied here when the slice is rendered: the
 * mirror may replace it while the reads are out. */
struct sim_sub {
	char *id;                         /* owned */
	int64_t at;                       /* send_at() */
	struct sim_subcaps caps;          /* read only when at <= now */
};

/* A rendered slice waiting on its cap reads. Detached (sj NULL) when its job is
 * freed first: the last reply then only frees it. */
struct sim_read {
	struct sim_job *sj;
	struct match_list l;
	struct sim_sub *subs;             /* one per run of pushes of one subscriber */
	size_t nsubs;
	size_t *sub_of;                   /* per push of l: its index in subs */
	size_t waiting;                   /* ZCOUNTs unanswered */
	int failed;                       /* a read was not sent or failed */
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

/* When deliver would first send to s, looking from now (the deal's start when
 * later): that instant, a later one, or QUIET_NEVER (as deliver, an unknown zone is
 * read as UTC). */
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
sample_json(const struct match_rcpt *rc, const char *sub, int64_t at, int64_t now,
    const char *outcome)
{
	cJSON *o = cJSON_CreateObject();
	char *t = sample_text(rc->text), when[40];

	if (o == NULL)
		goto out;
	cJSON_AddStringToObject(o, "subscriber", sub);
	cJSON_AddStringToObject(o, "channel", channel_name(rc->ch));
	cJSON_AddStringToObject(o, "rule", rc->rule);
	cJSON_AddStringToObject(o, "text", t ? t : "");
	cJSON_AddStringToObject(o, "outcome", outcome);
	if (channel_def(rc->ch)->segments) {
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
	struct sim_read *read;            /* the slice waiting on Redis, or NULL */
	int more;                         /* slices remain after it */
	cJSON *sample;
	struct event *ev;
	int draft;                        /* ranked with a draft's rules */
	struct sim_job *next, *prev;      /* simulate.jobs */
};

static void
sim_read_free(struct sim_read *rd)
{
	size_t i;

	for (i = 0; i < rd->nsubs; i++) {
		free(rd->subs[i].id);
		sim_caps_clear(&rd->subs[i].caps);
	}
	free(rd->subs);
	free(rd->sub_of);
	match_list_free(&rd->l);
	free(rd);
}

static void
sim_job_free(struct sim_job *sj)
{
	struct simulate *sim = sj->sim;

	if (sj->read != NULL) {
		/* Replies still due: the last one frees it. */
		sj->read->sj = NULL;
		if (sj->read->waiting == 0)
			sim_read_free(sj->read);
		sj->read = NULL;
	}

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

/* SMS segments of one push; 0 for a DM. */
static size_t
sim_segments(const struct match_rcpt *rc)
{
	enum rule_encoding enc;
	unsigned units;

	return channel_def(rc->ch)->segments ? rule_sms_count(rc->text, strlen(rc->text), &enc,
	    &units) : 0;
}

/* Counts one slice's pushes, each judged as deliver would: quiet hours past the
 * deal's end, a window opening later, else the caps in plan order. The first
 * SIMULATE_SAMPLE_MAX go into the sample. */
static void
sim_count(struct sim_job *sj, struct sim_read *rd)
{
	const struct match_list *l = &rd->l;
	struct sim_sub *ss = NULL;
	size_t i, seg;
	int64_t at = 0;

	sj->unrenderable += l->unrenderable;
	sj->paused += l->paused;
	for (i = 0; i < l->n; i++) {
		const struct match_rcpt *rc = &l->v[i];
		const char *outcome = "sent";
		int j;

		sj->k.by_ch[rc->ch]++;
		/* rc->sub is not read here: the mirror may have replaced it. */
		if (i == 0 || rd->sub_of[i] != rd->sub_of[i - 1]) {
			ss = &rd->subs[rd->sub_of[i]];
			at = ss->at;
			sj->k.recipients++;
			if (at == QUIET_NEVER || at >= sj->d->expires_at)
				sj->k.past_expiry++;
			else if (at > sj->now)
				sj->k.deferred++;
		}
		seg = sim_segments(rc);
		if (at == QUIET_NEVER || at >= sj->d->expires_at) {
			outcome = sim_skip_name[SIM_SKIP_QUIET];
		} else if (at > sj->now) {
			outcome = "delayed";
			sj->k.delayed++;
			sj->k.seg_delayed += seg;
		} else if ((outcome = sim_caps_judge(&ss->caps)) == NULL) {
			outcome = "sent";
			sj->k.sent++;
			sj->k.seg_sent += seg;
		}
		for (j = 0; j < SIM_SKIPS; j++)
			if (strcmp(outcome, sim_skip_name[j]) == 0)
				sj->k.skipped[j]++;
		if (sj->pushes++ < SIMULATE_SAMPLE_MAX)
			cJSON_AddItemToArray(sj->sample, sample_json(rc, ss->id, at, sj->now,
			    outcome));
	}
}

/* A notifier that serves some shards only (shard ownership, docs/sharding.md 4d)
 * mirrors their subscribers only: every count of the answer is of those, and says
 * so ("partial": the shards mirrored of all). */
static void
sim_partial(cJSON *j, const struct substore *ss)
{
	struct substore_stats st;
	cJSON *p;

	substore_stats(ss, &st);
	if (st.shards_wanted >= keys_shards())
		return;
	if ((p = cJSON_AddObjectToObject(j, "partial")) != NULL) {
		cJSON_AddNumberToObject(p, "shards_mirrored", (double)st.shards_loaded);
		cJSON_AddNumberToObject(p, "shards", (double)keys_shards());
	}
}

/* The answer, once every slice is counted. */
static void
sim_answer(struct sim_job *sj)
{
	size_t subs = substore_count(sj->sim->app->ss), reachable, chosen;
	const struct sim_counts *k = &sj->k;
	cJSON *j, *ex, *bc, *df, *oc, *sk, *sg;
	int c;

	reachable = subs - k->no_consent - k->no_channel;
	chosen = sj->matched < reachable ? sj->matched : reachable;
	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "deal", sj->d->id);
	if (sj->draft)
		cJSON_AddBoolToObject(j, "draft", 1);
	cJSON_AddNumberToObject(j, "subscribers", (double)subs);
	sim_partial(j, sj->sim->app->ss);
	cJSON_AddNumberToObject(j, "matched", (double)sj->matched);
	cJSON_AddNumberToObject(j, "held_out", (double)sj->held_out);
	cJSON_AddNumberToObject(j, "unrenderable", (double)sj->unrenderable);
	cJSON_AddNumberToObject(j, "paused", (double)sj->paused);
	cJSON_AddNumberToObject(j, "recipients", (double)k->recipients);
	cJSON_AddNumberToObject(j, "pushes", (double)sj->pushes);
	bc = cJSON_AddObjectToObject(j, "by_channel");
	for (c = 0; c < CH_COUNT; c++)
		cJSON_AddNumberToObject(bc, channel_name((enum channel)c), (double)k->by_ch[c]);
	oc = cJSON_AddObjectToObject(j, "outcomes");
	cJSON_AddNumberToObject(oc, "sent", (double)k->sent);
	cJSON_AddNumberToObject(oc, "delayed", (double)k->delayed);
	sk = cJSON_AddObjectToObject(oc, "skipped");
	for (c = 0; c < SIM_SKIPS; c++)
		cJSON_AddNumberToObject(sk, sim_skip_name[c], (double)k->skipped[c]);
	sg = cJSON_AddObjectToObject(j, "segments");
	cJSON_AddNumberToObject(sg, "sent", (double)k->seg_sent);
	cJSON_AddNumberToObject(sg, "delayed", (double)k->seg_delayed);
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

/* The slice rd is counted (its reads all answered): the next turn, or the answer. */
static void
sim_read_done(struct sim_read *rd)
{
	static const struct timeval now = { 0, 0 };
	struct sim_job *sj = rd->sj;

	if (sj == NULL) {                 /* the job went first */
		sim_read_free(rd);
		return;
	}
	sj->read = NULL;
	if (rd->failed) {
		sim_read_free(rd);
		http_add_header(sj->r, "Retry-After", "5");
		http_error(sj->r, 503, NULL, "try again later: the caps are read from Redis");
		sim_job_free(sj);
		return;
	}
	sim_count(sj, rd);
	sim_read_free(rd);
	if (sj->more) {
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
sim_on_cap(void *arg, struct sim_subcaps *sc, int i, long long n)
{
	struct sim_read *rd = arg;

	if (n < 0)
		rd->failed = 1;
	else
		sc->c[i].have = n;
	if (--rd->waiting == 0)
		sim_read_done(rd);
}

/* Names the caps of every subscriber of rd's slice whose pushes would leave at once
 * and sends their reads; a read that cannot go out marks rd failed. 0, or -1 on OOM
 * before any read went out (rd is then the caller's to free). */
static int
sim_read_caps(struct sim_job *sj, struct sim_read *rd)
{
	struct simulate *sim = sj->sim;
	const struct subscriber *prev = NULL;
	struct sim_caps_in in;
	int64_t from = sj->d->starts_at > sj->now ? sj->d->starts_at : sj->now;
	size_t i, k;
	int c;

	if ((rd->subs = calloc(rd->l.n + 1, sizeof(*rd->subs))) == NULL ||
	    (rd->sub_of = calloc(rd->l.n + 1, sizeof(*rd->sub_of))) == NULL)
		return -1;
	in.d = sj->d;
	in.quiet = &sim->quiet;
	in.zones = sim->zones;
	in.campaign_cap = sim->app->cfg->campaign_cap;
	in.now = sj->now;
	for (i = 0; i < rd->l.n; i++) {
		struct sim_sub *ss;

		if (rd->l.v[i].sub == prev) {
			rd->sub_of[i] = rd->nsubs - 1;
			continue;
		}
		prev = rd->l.v[i].sub;
		rd->sub_of[i] = rd->nsubs;
		ss = &rd->subs[rd->nsubs++];
		if ((ss->id = strdup(prev->id)) == NULL)
			return -1;
		ss->at = send_at(sim, prev, from);
		if (ss->at > sj->now)
			continue;                 /* not now: caps are checked when it opens */
		if (sim_caps_fill(&in, prev, &ss->caps) < 0)
			return -1;
	}
	/* One more than the reads, so that no reply can finish rd while they go out. */
	rd->waiting = 1;
	for (k = 0; k < rd->nsubs && !rd->failed; k++)
		for (c = 0; c < SIM_CAPS && !rd->failed; c++) {
			if (rd->subs[k].caps.c[c].key == NULL)
				continue;
			rd->waiting++;
			if (sim_caps_read(sim->app->cmd, &rd->subs[k].caps, c, sim_on_cap,
			    rd) < 0) {
				rd->waiting--;
				rd->failed = 1;
			}
		}
	return 0;
}

static void
sim_turn(evutil_socket_t fd, short what, void *arg)
{
	struct sim_job *sj = arg;
	struct sim_read *rd;
	struct err e;
	int more;

	(void)fd;
	(void)what;
	err_clear(&e);
	if ((rd = calloc(1, sizeof(*rd))) == NULL) {
		http_error(sj->r, 500, NULL, "out of memory");
		sim_job_free(sj);
		return;
	}
	if ((more = match_run_next(sj->run, &sj->sim->links, SIMULATE_SLICE, &rd->l,
	    &e)) < 0) {
		free(rd);
		http_error(sj->r, 500, NULL, "%s", e.msg);
		sim_job_free(sj);
		return;
	}
	sj->more = more;
	sj->turns++;
	rd->sj = sj;
	if (sim_read_caps(sj, rd) < 0) {     /* before any read went out */
		sim_read_free(rd);
		http_error(sj->r, 500, NULL, "out of memory");
		sim_job_free(sj);
		return;
	}
	sj->read = rd;
	if (--rd->waiting == 0)
		sim_read_done(rd);
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
	if (sim->app->ss == NULL || !substore_ready(sim->app->ss)) {
		/* A count over a half-loaded mirror would be wrong, and look right; the
		 * input is checked first, so that a bad one hears what is wrong with it. */
		rule_set_free(rs);
		deal_free(d);
		http_add_header(r, "Retry-After", "1");
		http_error(r, 503, NULL, "subscribers not loaded yet");
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
	/* The push id of a code does not change its length: any entry will do. */
	sim->links.public_url = app->cfg->public_url;
	sim->links.link_base = app->cfg->link_base;
	sim->links.key = (const unsigned char *)app->cfg->click_secret;
	sim->links.keylen = app->cfg->click_secret != NULL ?
	    strlen(app->cfg->click_secret) : 0;
	sim->links.entry = "0-0";
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
