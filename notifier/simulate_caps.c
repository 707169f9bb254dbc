/*
 * simulate_caps.c: the caps of simulated pushes, read from Redis (stage: http;
 * include/simulate_caps.h).
 *
 * Names the caps' keys and limits as deliver does (deliver_admit.c dl_caps_fill: the
 * subscriber's local day, deliver.campaign_cap, the strictest law of its places and
 * cap_scope) and judges as lib/outcome.lua oc_caps does. Must never send anything but
 * ZCOUNT: a simulation writes nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "deal.h"
#include "keys.h"
#include "quiet.h"
#include "rconn.h"
#include "simulate_caps.h"
#include "subscriber.h"
#include "tz.h"

/* ORDER SIM_CAP */
static const char *const sim_cap_reason[SIM_CAPS] = {
	"daily_cap", "campaign_cap", "legal_cap",
};

void
sim_caps_clear(struct sim_subcaps *sc)
{
	int i;

	for (i = 0; i < SIM_CAPS; i++)
		free(sc->c[i].key);
	memset(sc, 0, sizeof(*sc));
}

/* Sets cap i to cap texts from from in the key fill() names. -1 on OOM. */
static int
cap_set(struct sim_subcaps *sc, int i, long cap, int64_t from, const char *key)
{
	if (key[0] == '\0')
		return 0;
	if ((sc->c[i].key = strdup(key)) == NULL)
		return -1;
	sc->c[i].cap = cap;
	sc->c[i].from = from;
	return 1;
}

int
sim_caps_fill(const struct sim_caps_in *in, const struct subscriber *s,
    struct sim_subcaps *sc)
{
	const struct deal *d = in->d;
	const char *camp = d->campaign != NULL ? d->campaign : "";
	char key[KEYS_MAX];
	const struct tz *z;
	struct quiet_place place;
	struct quiet_limit law;
	int64_t day0;
	int n = 0, k;

	memset(sc, 0, sizeof(*sc));
	/* As dl_caps_fill: an unreadable zone is read as UTC. */
	if ((z = tz_get(in->zones, s->timezone, NULL)) == NULL)
		z = tz_get(in->zones, "UTC", NULL);
	key[0] = '\0';
	if (s->max_per_day > 0 && z != NULL &&
	    (day0 = quiet_day_start(z, in->now)) != TZ_TIME_ERROR &&
	    keys_texts(s->id, key, sizeof(key)) >= 0) {
		if ((k = cap_set(sc, SIM_CAP_DAY, s->max_per_day, day0, key)) < 0)
			goto oom;
		n += k;
	}
	key[0] = '\0';
	if (in->campaign_cap > 0 && camp[0] != '\0' &&
	    keys_camp(camp, s->id, key, sizeof(key)) >= 0) {
		if ((k = cap_set(sc, SIM_CAP_CAMP, in->campaign_cap, in->now - 86400 + 1,
		    key)) < 0)
			goto oom;
		n += k;
	}
	quiet_place_of(s, &place);
	law = quiet_limit_of(in->quiet, &place);
	key[0] = '\0';
	if (law.max > 0) {
		if (!in->quiet->cap_per_campaign)
			(void)keys_texts(s->id, key, sizeof(key));
		else if (camp[0] != '\0')
			(void)keys_capcamp(camp, s->id, key, sizeof(key));
		else
			(void)keys_capdeal(d->id, s->id, key, sizeof(key));
		if ((k = cap_set(sc, SIM_CAP_LAW, law.max, in->now - law.window_s + 1,
		    key)) < 0)
			goto oom;
		n += k;
	}
	return n;
oom:
	sim_caps_clear(sc);
	return -1;
}

/* What a ZCOUNT waits on. */
struct sim_caps_call {
	struct sim_subcaps *sc;
	int i;
	sim_caps_read_fn *cb;
	void *arg;
};

static void
sim_caps_on_reply(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct sim_caps_call *c = arg;
	long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

	(void)rc;
	c->cb(c->arg, c->sc, c->i, n);
	free(c);
}

int
sim_caps_read(struct rconn *rc, struct sim_subcaps *sc, int i, sim_caps_read_fn *cb,
    void *arg)
{
	struct sim_caps_call *c = malloc(sizeof(*c));
	char from[32];
	const char *argv[4];

	if (c == NULL)
		return -1;
	c->sc = sc;
	c->i = i;
	c->cb = cb;
	c->arg = arg;
	snprintf(from, sizeof(from), "%lld", (long long)sc->c[i].from);
	argv[0] = "ZCOUNT";
	argv[1] = sc->c[i].key;
	argv[2] = from;
	argv[3] = "+inf";
	if (rconn_argv(rc, sim_caps_on_reply, c, 0, 4, argv, NULL) < 0) {
		free(c);
		return -1;
	}
	return 0;
}

const char *
sim_caps_judge(struct sim_subcaps *sc)
{
	int i;

	for (i = 0; i < SIM_CAPS; i++)
		if (sc->c[i].key != NULL && sc->c[i].cap > 0 &&
		    sc->c[i].have + sc->c[i].taken >= sc->c[i].cap)
			return sim_cap_reason[i];
	/* It leaves: one member more in each key it counts in (a key shared by the day
	 * and the law, texts:<sub>, holds it once and both read it). */
	for (i = 0; i < SIM_CAPS; i++)
		if (sc->c[i].key != NULL)
			sc->c[i].taken++;
	return NULL;
}
