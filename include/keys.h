/*
 * keys.h: the names of the keys a shard owns, in the layout in force (stage: all
 * Redis I/O).
 *
 * The one place that knows these names (docs/sharding.md, section 2). In the
 * single-instance layout (layout_current() NULL) every name is as before sharding
 * ("subscribers", "texts:<sub>"); in the sharded layout it is the same name behind
 * the shard's tag ("{s1.23915}subscribers"), the tag first so that no '{' or '}' in
 * an id can change the slot. Every function writes a NUL-terminated name into buf and
 * returns its length, or -1 (buf then "") when buf is too small or shard is out of
 * range. Pure: no I/O, no allocation.
 */
#ifndef DEALPUSH_KEYS_H
#define DEALPUSH_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* Room for the longest name built from an id, a campaign and the tag. */
#define KEYS_MAX (2 * MODEL_TEXT_MAX + MODEL_ID_MAX + 64)
/* Room for a name of which a shard has one (keys_shard_key, keys_consent). */
#define KEYS_SHARD_MAX 64

/* ORDER KEYS_SHARD: the keys of which a shard has one (keys_shard_names[] in keys.c);
 * the first four in ORDER SUB_KEYS. */
enum keys_name {
	KEYS_SUBSCRIBERS = 0,         /* hash: id -> stored subscriber JSON */
	KEYS_SUB_CHANGES,             /* stream: the mirror's change feed */
	KEYS_CONSENT_EPOCH,           /* counter bumped by every consent removed */
	KEYS_CONSENT_RECORDS,         /* hash: id -> the consent record */
	KEYS_ENGAGEMENT_DECAY,        /* the decay's position in pushes:log */
	KEYS_STATS,                   /* hash: the delivery counters (summed on read) */
	KEYS_PUSHES_LOG,              /* stream: every final outcome */
	KEYS_DELAYED,                 /* zset: pushes waiting for a window */
	KEYS_RESOLVE_DUE,             /* zset: unknown SMS to look up */
	KEYS_RESOLVE_INFO,            /* hash: what the look-up needs */
	KEYS_RESOLVE_TRIES,           /* hash: look-ups tried */
	KEYS_BEHAVIOUR,               /* hash: id -> what the subscriber did (subbehav.h) */
	KEYS_PUSHES,                  /* stream: the shard's jobs, group "deliver" */
	KEYS_STOPS,                   /* hash: number -> its last SMS opt-out that reached
	                               * this shard (hook_consent.lua), read by every
	                               * store of a subscriber with that number here */
	KEYS_OWNER,                   /* hash: the notifier serving the shard, until when,
	                               * and the lease's epoch (own.lua, owner.h) */
	KEYS_NAMES
};

/* ORDER KEYS_PER: the keys of a shard named "<prefix><id>" (keys_per_prefixes[] in
 * keys.c), id a deal, code, order, rule, campaign or short link code; all about the pushes of the
 * shard's subscribers (docs/sharding.md section 2, step 2 increment 3). */
enum keys_per {
	KEYS_PUSH = 0,                /* push:<deal>: push states */
	KEYS_CODE,                    /* code:<deal>: the code each push holds */
	KEYS_PUSHINFO,                /* pushinfo:<deal>: rule and campaign of a sent push */
	KEYS_PUSHLINE,                /* pushline:<deal>: what a resend needs */
	KEYS_DELIVERY,                /* delivery:<deal>: the provider's ids and states */
	KEYS_REDELIVERED,             /* redelivered:<deal>: 30003 resends */
	KEYS_HOLDOUT,                 /* holdout:<deal>: the held-out audience */
	KEYS_RETEXT,                  /* retext:<deal>: texts rendered again */
	KEYS_CODEPUSH,                /* codepush:<code>: the push that sent the code */
	KEYS_ORDER,                   /* order:<id>: an attributed order, once */
	KEYS_REPORT_DEAL,             /* report:deal:<deal> */
	KEYS_REPORT_RULE,             /* report:rule:<rule> */
	KEYS_REPORT_CAMPAIGN,         /* report:campaign:<campaign> */
	KEYS_SERIES,                  /* series:<deal>: counts per minute (docs/api.md) */
	KEYS_LINK,                    /* link:<code>: the push a short link stands for, in
	                               * the shard the code names (shortlink.h) */
	KEYS_DEAL,                    /* deal:<deal>: the shard's plan of the deal, its
	                               * plan-once marker and the deal's state (a copy
	                               * in every shard the deal reaches, section 4a) */
	KEYS_DEALENTRY,               /* dealentry:<entry>: the deal of a push id */
	KEYS_PLANSET,                 /* planset:<deal>: recipients planned so far */
	KEYS_PER_NAMES
};

/* The number of shards: S, or 1 in the single-instance layout. */
uint32_t keys_shards(void);

/* The shard of subscriber sub (0 in the single-instance layout). */
uint32_t keys_shard_of(const char *sub);

/* Shard shard's key name. */
int keys_shard_key(uint32_t shard, enum keys_name name, char *buf, size_t size);

/* Shard shard's consent set of channel ch ("consent:sms", "consent:dm"). */
int keys_consent(uint32_t shard, enum channel ch, char *buf, size_t size);

/* ORDER SUB_KEYS (admin_sub_put.lua, admin_sub_del.lua): a subscriber's keys in
 * shard shard: subscribers, subscribers:changes, consent:epoch, consent:records,
 * then consent:<channel> in ORDER CHANNEL. Returns 0, or -1 when shard is out of
 * range. */
#define KEYS_SUB_NKEYS (4 + CH_COUNT)
int keys_sub_keys(uint32_t shard, char keys[KEYS_SUB_NKEYS][KEYS_SHARD_MAX]);

/* Subscriber sub's texts today: "texts:<sub>" in sub's shard. */
int keys_texts(const char *sub, char *buf, size_t size);

/* Subscriber sub's pushes of campaign camp in 24 h: "camp:<camp>:<sub>". */
int keys_camp(const char *camp, const char *sub, char *buf, size_t size);

/* The law's cap per campaign and per deal: "capcamp:<camp>:<sub>",
 * "capdeal:<deal>:<sub>", in sub's shard. */
int keys_capcamp(const char *camp, const char *sub, char *buf, size_t size);
int keys_capdeal(const char *deal, const char *sub, char *buf, size_t size);

/* Shard shard's prefix of name ("push:", "{s1.23915}push:"): the key of an id is the
 * prefix and the id (keys_per). */
int keys_prefix(uint32_t shard, enum keys_per name, char *buf, size_t size);

/* Every prefix of shard shard at once, for a call that names many (p[name]). */
struct keys_prefixes {
	uint32_t shard;
	char p[KEYS_PER_NAMES][KEYS_SHARD_MAX];
};
int keys_prefixes(uint32_t shard, struct keys_prefixes *out);

/* Shard shard's key "<prefix><id>" of name. */
int keys_per(uint32_t shard, enum keys_per name, const char *id, char *buf,
    size_t size);

/* The consumer group on "deals" whose reader plans shard shard: "notifier" in the
 * single-instance layout, "s<shard>" in the sharded one (docs/sharding.md 4a). */
int keys_deals_group(uint32_t shard, char *buf, size_t size);
#define KEYS_GROUP_MAX 16

/* A status callback's marker "status_seen:<sid>:<status>" in shard shard (the shard
 * of the push id the callback URL carries). */
int keys_status_seen(uint32_t shard, const char *sid, const char *status, char *buf,
    size_t size);

/*
 * A code pool shared by the shards (docs/sharding.md 4c). In the single-instance
 * layout the pushes take codes from the pool itself and none of these keys exist:
 * keys_codestash names the pool, the others "" (return 0).
 * keys_codestash: where shard shard's pushes of deal take codes from,
 *   "{sK}codestash:<deal>:<pool>" ("" when pool is "").
 * keys_codeback: its give-back in flight, "{sK}codeback:<deal>:<pool>".
 * keys_codestate: "{sK}codestate", field "<deal>\t<pool>": the shard's record of each
 *   (deal, pool) it holds codes of (lib/codestate.lua).
 * keys_pool_side: the pool's own records on its slot, "{<pool>}:res", ":marks",
 *   ":out" (out: code -> "<deal>\t<shard>\t<reservation>", which also tells a
 *   conversion by code the shard of the push that sent it). -1 for a pool whose name
 *   holds '{' or '}' (its slot would not be the name's own; deal.c refuses one).
 */
enum keys_pool_side {
	KEYS_POOL_RES = 0,
	KEYS_POOL_MARKS,
	KEYS_POOL_OUT
};
int keys_codestash(uint32_t shard, const char *deal, const char *pool, char *buf,
    size_t size);
int keys_codeback(uint32_t shard, const char *deal, const char *pool, char *buf,
    size_t size);
int keys_codestate(uint32_t shard, char *buf, size_t size);
int keys_pool_side(const char *pool, enum keys_pool_side which, char *buf, size_t size);

/*
 * A deal's quota (docs/sharding.md 4c "The quota"): sharded, a limited deal without a
 * code pool gets the implicit pool "quota:<L>:<deal>", whose "codes" are synthetic
 * tokens ("*<shard>.<L>.<n>.<i>", never put in a text) counted down from L in one
 * counter.
 * keys_quota_pool: that name for deal and L into buf; its length, or -1 when it does
 *   not fit or L < 1.
 * keys_pool_quota: L when pool is such a name, else 0 (a `codes:` pool, "", or
 *   anything malformed).
 * keys_pool_key: the Redis key the pool's codes are in: the name itself for a
 *   `codes:` pool; for a quota, the counter "quota:<deal>" (L left out, so that
 *   notifiers that computed different L still share one counter; a deal id holding
 *   '{', '}' or '%' is written "%<hex>" so the counter is on its own name's slot). Its
 *   length, or -1. keys_pool_side names a quota's records after that key.
 */
int keys_quota_pool(const char *deal, long long l, char *buf, size_t size);
long long keys_pool_quota(const char *pool);
int keys_pool_key(const char *pool, char *buf, size_t size);

/* The shard of push id "<entry>:<subscriber>:<channel>" (its subscriber's); 0 when
 * it is not one. */
uint32_t keys_shard_of_push(const char *push_id);

/* The deal of subscriber sub's last sent push on channel ch, "lastsent:<ch>:<sub>" in
 * sub's shard: record.lua sets it, a reply that is no keyword is kept with it (the
 * deal the reply answers, docs/inbound.md), an erasure deletes it. */
int keys_lastsent(const char *sub, enum channel ch, char *buf, size_t size);

/* A push's click marker "clicked:<push id>", in shard shard (its subscriber's). */
int keys_clicked(uint32_t shard, const char *push_id, char *buf, size_t size);

/* The proof of consent kept for an erased subscriber, "proof:<hash>" (hash: SHA-256
 * of the subscriber's number, or of the id when there is none, hex), in shard shard:
 * the caller passes keys_shard_of(hash), since nothing about the subscriber is left
 * to place it by (docs/compliance.md, "Erasure and export"). */
int keys_proof(uint32_t shard, const char *hash, char *buf, size_t size);

/*
 * ORDER KEYS_PHONE: the keys about one phone number (or, for a DM, one X user id),
 * on the number's own slot in the sharded layout: "{sP}<name>", P = the shard the
 * same function gives the number as it gives an id (docs/sharding.md section 2,
 * "phone"). In the single-instance layout today's global names. value is the
 * number (E.164) or the X user id; it is only part of the names that carry it.
 */
enum keys_phone {
	KEYS_PH_SUPPRESSED = 0,       /* "suppressed:sms": number -> its last SMS STOP */
	KEYS_PH_SIDS,                 /* "inbound:sids": MessageSid -> the inbound message
	                               * applied or being applied (hook_phone.lua) */
	KEYS_PH_ACK,                  /* "optout_ack:<number>": one confirmation a minute */
	KEYS_PH_SIGNUP,               /* "signup:<number>": a sign-up request open */
	KEYS_PH_SIGNUP_ASKED,         /* "signup:asked:<number>": requests today */
	KEYS_PH_PHONES,               /* "phones:<b>": number -> the ids that have it
	                               * (phone_index.lua), b = a hash of the number
	                               * modulo KEYS_PHONE_BUCKETS: many small hashes,
	                               * each a compact listpack in Redis */
	KEYS_PH_DMX,                  /* "dmx:<b>": X user id -> the ids that have it */
	KEYS_PH_PENDING,              /* "inbound:pending": MessageSid -> an opt-out or
	                               * opt-in begun and not done (hook_phone.lua) */
	KEYS_PH_NAMES
};

/* Buckets of the phone index per phone shard (a power of two): at 100M subscribers
 * on 64 shards about 24 numbers a bucket, under Redis' listpack limit (128). */
#define KEYS_PHONE_BUCKETS 65536

/* The shard of the slot of number's keys (0 in the single-instance layout). */
uint32_t keys_phone_shard(const char *value);
int keys_phone(const char *value, enum keys_phone which, char *buf, size_t size);

/* Phone shard p's key which, for a name that holds no number (KEYS_PH_SUPPRESSED,
 * KEYS_PH_SIDS, KEYS_PH_PENDING; -1 for another): for a walk over every phone shard. */
int keys_phone_at(uint32_t p, enum keys_phone which, char *buf, size_t size);

/* The name of a bucket of the phone index (which: KEYS_PH_PHONES, KEYS_PH_DMX; -1
 * for another) without a shard's tag, whatever the layout in force: for dealpushctl
 * migrate, which names the keys of a layout not in force. */
int keys_phone_untagged(const char *value, enum keys_phone which, char *buf,
    size_t size);

/* The marker of an inbound opt-out or opt-in applied in shard shard,
 * "inbound:done:<sid>" (hook_consent.lua; 30 days), so that a message retried after
 * a crash is applied once per shard. */
int keys_inbound_done(uint32_t shard, const char *sid, char *buf, size_t size);

/* "dealpush:formats": the deployment's stored format version and each notifier's
 * announcement (formats.h). Global in every layout, like dealpush:layout: never
 * behind a shard's tag. */
int keys_formats(char *buf, size_t size);

/* ORDER KEYS_AB: an A/B test's keys (docs/rules.md "A/B variants"; docs/sharding.md
 * 4h). Global in every layout, each on its own slot: "abtests" (zset: "<deal>\t<rule>"
 * of every open test, scored by the epoch s it must be decided by; ab_join.lua,
 * abtest.c) and "abtest:<deal>" (hash: each test's variants, terms, job fields and
 * decision; ab_register.lua, ab_verdict.lua). What a shard holds of a test is named
 * by keys_ab_held: "abrest:<deal>" (hash: "<sub>:<ch>" -> "<shard>" and the held
 * recipient's line in every variant, "-" once released) and "abq:<deal>:<rule>"
 * (list: the held recipients of one test in the order they were held); keys_ab
 * names those of the single-instance layout. deal and rule are ignored where the
 * name has none. */
enum keys_ab {
	KEYS_AB_TESTS = 0,
	KEYS_AB_TEST,
	KEYS_AB_REST,
	KEYS_AB_QUEUE
};
int keys_ab(enum keys_ab which, const char *deal, const char *rule, char *buf,
    size_t size);

/* What shard shard holds of a test (docs/sharding.md 4h): KEYS_AB_REST and
 * KEYS_AB_QUEUE only, as keys_ab names them in the single-instance layout, behind
 * the shard's tag in the sharded one ("{sK}abrest:<deal>", "{sK}abq:<deal>:<rule>"):
 * each shard holds its own subscribers. -1 for another which. */
int keys_ab_held(uint32_t shard, enum keys_ab which, const char *deal, const char *rule,
    char *buf, size_t size);

/* ORDER KEYS_GLOBAL: the global keys a script uses with another global key, renamed
 * in the sharded layout so that both share a slot: the second takes the first's name
 * as its tag (docs/sharding.md sections 1.5 and 2): "deals:dead" -> "{deals}:dead",
 * beside "deals"; "rules:version", "tokens", "audit" ... -> "{rules}:...", beside
 * "rules". The single-instance layout keeps today's names. */
enum keys_global {
	KEYS_G_DEALS_DEAD = 0,        /* stream: deals that can never be planned */
	KEYS_G_DEALS_TRIES,           /* hash: entry -> failed attempts (tries.lua) */
	KEYS_G_DEALS_CONFIRMED,       /* hash: deals held for a confirmation, confirmed */
	KEYS_G_CONVERSIONS_DEAD,      /* stream: conversions that can never be counted */
	KEYS_G_RULES_VERSION,         /* counter: bumped by every rule change */
	KEYS_G_TOKENS,                /* hash: the named API tokens (tokens.h) */
	KEYS_G_TOKENS_USED,           /* hash: a token's last use */
	KEYS_G_TOKENS_VERSION,        /* counter: bumped by every token change */
	KEYS_G_AUDIT,                 /* stream: who changed what (audit.h) */
	KEYS_G_NAMES
};

/* The name of g in the layout in force (a string that lives as long as the process). */
const char *keys_global(enum keys_global g);

/* The single-instance name of g, and its sharded name (for migrate and the tests). */
const char *keys_global_single(enum keys_global g);
const char *keys_global_sharded(enum keys_global g);

/* A reply's MessageSid seen (hook_reply.lua): "inbound:seen:<sid>", sharded
 * "{replies}:seen:<sid>", beside the replies stream it guards. */
int keys_reply_seen(const char *sid, char *buf, size_t size);

/* A console session's key: "session:<hex>", sharded "{rules}:session:<hex>". */
int keys_session(const char *hex, char *buf, size_t size);

#endif
