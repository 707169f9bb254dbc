/*
 * simulate_caps.h: the caps a simulated push meets, read from Redis without writing
 * (stage: http; the simulate route, include/simulate.h).
 *
 * For each subscriber of a slice whose pushes would leave at once, the daily, the
 * campaign and the law's cap (as deliver's dl_caps_fill names them) and how many texts
 * each already counts (ZCOUNT, as lib/outcome.lua oc_cap_over reads it); then each
 * push is judged in plan order as send.lua would, a push let through taking its place
 * under every cap it counts in. Only ZCOUNT is ever sent.
 */
#ifndef DEALPUSH_SIMULATE_CAPS_H
#define DEALPUSH_SIMULATE_CAPS_H

#include <stddef.h>
#include <stdint.h>

struct deal;
struct quiet_rules;
struct rconn;
struct subscriber;
struct tz;
struct tzcache;

/* ORDER SIM_CAP: the order oc_caps checks them in, and the verdicts they give. */
enum sim_cap_kind { SIM_CAP_DAY = 0, SIM_CAP_CAMP, SIM_CAP_LAW, SIM_CAPS };

/* One subscriber's caps: key NULL = the cap does not apply. Holds nothing of the
 * subscriber's, which the mirror may replace while the reads are out. */
struct sim_subcaps {
	struct {
		char *key;              /* owned; NULL = none */
		int64_t from;           /* texts counted from this instant */
		long cap;
		long long have;         /* texts already counted (the read) */
		long long taken;        /* pushes of this deal let through since */
	} c[SIM_CAPS];
};

/* What the caps need besides the subscriber: borrowed for one call. */
struct sim_caps_in {
	const struct deal *d;
	const struct quiet_rules *quiet;
	struct tzcache *zones;
	long campaign_cap;              /* deliver.campaign_cap */
	int64_t now;                    /* the notifier's clock */
};

/* Fills sc for s (zeroed first; keys allocated). Returns the number of caps that
 * apply (0..SIM_CAPS), or -1 on OOM (sc then freed). */
int sim_caps_fill(const struct sim_caps_in *in, const struct subscriber *s,
    struct sim_subcaps *sc);

/* Frees the keys of sc and zeroes it. */
void sim_caps_clear(struct sim_subcaps *sc);

/* Sends ZCOUNT for cap i of sc on rc; its reply goes to cb(arg, sc, i, count or -1).
 * Returns 0 (cb runs exactly once) or -1 when Redis is not ready or out of memory. */
typedef void sim_caps_read_fn(void *arg, struct sim_subcaps *sc, int i, long long n);
int sim_caps_read(struct rconn *rc, struct sim_subcaps *sc, int i,
    sim_caps_read_fn *cb, void *arg);

/* The verdict of one more push of sc's subscriber: NULL (it leaves; its place is
 * taken under every cap key it counts in) or the skip reason ("daily_cap",
 * "campaign_cap", "legal_cap"), as send.lua gives it. */
const char *sim_caps_judge(struct sim_subcaps *sc);

#endif
