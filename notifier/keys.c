/*
 * keys.c: the names of shard-owned keys in the layout in force (stage: all Redis I/O).
 *
 * Built on the layout (layout.h) and the shard's tags (shard.h). Must never name a
 * key any other way than "{tag}<name>" in the sharded layout and "<name>" in the
 * single-instance one: the migration and the tests rely on that one rule.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "keys.h"
#include "rules.h"
#include "layout.h"
#include "shard.h"

/* ORDER KEYS_SHARD */
static const char *const keys_shard_names[KEYS_NAMES] = {
	"subscribers", "subscribers:changes", "consent:epoch", "consent:records",
	"engagement:decay", "stats", "pushes:log", "delayed", "resolve:due", "resolve:info",
	"resolve:tries", "behaviour", "pushes", "stops", "owner",
};

/* ORDER KEYS_PER */
static const char *const keys_per_prefixes[KEYS_PER_NAMES] = {
	"push:", "code:", "pushinfo:", "pushline:", "delivery:", "redelivered:", "holdout:",
	"retext:", "codepush:", "order:", "report:deal:", "report:rule:",
	"report:campaign:", "series:", "link:", "deal:", "dealentry:", "planset:",
};

/* ORDER CHANNEL */

/* "{tag of shard}" + the formatted name, or the name alone in the single-instance
 * layout. */
static int
keys_format(uint32_t shard, char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
keys_format(uint32_t shard, char *buf, size_t size, const char *fmt, ...)
{
	const struct shard_layout *l = layout_current();
	size_t pos = 0;
	va_list ap;
	int k;

	if (size == 0)
		return -1;
	buf[0] = '\0';
	if (l != NULL) {
		const char *tag = shard_layout_tag(l, shard);

		if (tag == NULL)
			return -1;
		k = snprintf(buf, size, "{%s}", tag);
		if (k < 0 || (size_t)k >= size)
			goto bad;
		pos = (size_t)k;
	} else if (shard != 0) {
		return -1;
	}
	va_start(ap, fmt);
	k = vsnprintf(buf + pos, size - pos, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= size - pos)
		goto bad;
	return (int)(pos + (size_t)k);
bad:
	buf[0] = '\0';
	return -1;
}

uint32_t
keys_shards(void)
{
	const struct shard_layout *l = layout_current();

	return l != NULL ? shard_layout_count(l) : 1;
}

uint32_t
keys_shard_of(const char *sub)
{
	const struct shard_layout *l = layout_current();

	return l != NULL ? shard_of(sub, shard_layout_count(l)) : 0;
}

int
keys_shard_key(uint32_t shard, enum keys_name name, char *buf, size_t size)
{
	if ((unsigned)name >= KEYS_NAMES) {
		if (size > 0)
			buf[0] = '\0';
		return -1;
	}
	return keys_format(shard, buf, size, "%s", keys_shard_names[name]);
}

int
keys_consent(uint32_t shard, enum channel ch, char *buf, size_t size)
{
	if ((unsigned)ch >= CH_COUNT) {
		if (size > 0)
			buf[0] = '\0';
		return -1;
	}
	return keys_format(shard, buf, size, "consent:%s", channel_name(ch));
}

int
keys_sub_keys(uint32_t shard, char keys[KEYS_SUB_NKEYS][KEYS_SHARD_MAX])
{
	int i, bad = 0;

	for (i = 0; i < 4; i++)
		bad |= keys_shard_key(shard, (enum keys_name)i, keys[i], KEYS_SHARD_MAX) < 0;
	for (i = 0; i < CH_COUNT; i++)
		bad |= keys_consent(shard, (enum channel)i, keys[4 + i], KEYS_SHARD_MAX) < 0;
	return bad ? -1 : 0;
}

int
keys_texts(const char *sub, char *buf, size_t size)
{
	return keys_format(keys_shard_of(sub), buf, size, "texts:%s", sub);
}

int
keys_camp(const char *camp, const char *sub, char *buf, size_t size)
{
	return keys_format(keys_shard_of(sub), buf, size, "camp:%s:%s", camp, sub);
}

int
keys_capcamp(const char *camp, const char *sub, char *buf, size_t size)
{
	return keys_format(keys_shard_of(sub), buf, size, "capcamp:%s:%s", camp, sub);
}

int
keys_capdeal(const char *deal, const char *sub, char *buf, size_t size)
{
	return keys_format(keys_shard_of(sub), buf, size, "capdeal:%s:%s", deal, sub);
}

int
keys_prefix(uint32_t shard, enum keys_per name, char *buf, size_t size)
{
	if ((unsigned)name >= KEYS_PER_NAMES) {
		if (size > 0)
			buf[0] = '\0';
		return -1;
	}
	return keys_format(shard, buf, size, "%s", keys_per_prefixes[name]);
}

int
keys_prefixes(uint32_t shard, struct keys_prefixes *out)
{
	int i, bad = 0;

	out->shard = shard;
	for (i = 0; i < KEYS_PER_NAMES; i++)
		bad |= keys_prefix(shard, (enum keys_per)i, out->p[i], KEYS_SHARD_MAX) < 0;
	return bad ? -1 : 0;
}

int
keys_per(uint32_t shard, enum keys_per name, const char *id, char *buf, size_t size)
{
	if ((unsigned)name >= KEYS_PER_NAMES) {
		if (size > 0)
			buf[0] = '\0';
		return -1;
	}
	return keys_format(shard, buf, size, "%s%s", keys_per_prefixes[name], id);
}

int
keys_deals_group(uint32_t shard, char *buf, size_t size)
{
	int k;

	if (size == 0)
		return -1;
	buf[0] = '\0';
	if (shard >= keys_shards())
		return -1;
	k = layout_current() == NULL ? snprintf(buf, size, "notifier") :
	    snprintf(buf, size, "s%u", (unsigned)shard);
	if (k < 0 || (size_t)k >= size) {
		buf[0] = '\0';
		return -1;
	}
	return k;
}

int
keys_status_seen(uint32_t shard, const char *sid, const char *status, char *buf,
    size_t size)
{
	return keys_format(shard, buf, size, "status_seen:%s:%s", sid, status);
}

int
keys_codestash(uint32_t shard, const char *deal, const char *pool, char *buf,
    size_t size)
{
	int k;

	if (size == 0)
		return -1;
	buf[0] = '\0';
	if (pool[0] == '\0')
		return 0;
	if (layout_current() != NULL)
		return keys_format(shard, buf, size, "codestash:%s:%s", deal, pool);
	k = snprintf(buf, size, "%s", pool);
	if (k < 0 || (size_t)k >= size) {
		buf[0] = '\0';
		return -1;
	}
	return k;
}

int
keys_codeback(uint32_t shard, const char *deal, const char *pool, char *buf,
    size_t size)
{
	if (size == 0)
		return -1;
	buf[0] = '\0';
	if (layout_current() == NULL)
		return 0;
	return keys_format(shard, buf, size, "codeback:%s:%s", deal, pool);
}

int
keys_codestate(uint32_t shard, char *buf, size_t size)
{
	if (size == 0)
		return -1;
	buf[0] = '\0';
	if (layout_current() == NULL)
		return 0;
	return keys_format(shard, buf, size, "codestate");
}

int
keys_quota_pool(const char *deal, long long l, char *buf, size_t size)
{
	int k;

	if (size == 0)
		return -1;
	buf[0] = '\0';
	if (l < 1 || deal[0] == '\0')
		return -1;
	k = snprintf(buf, size, "quota:%lld:%s", l, deal);
	if (k < 0 || (size_t)k >= size) {
		buf[0] = '\0';
		return -1;
	}
	return k;
}

/* The deal of quota pool name, or NULL; *l its L. */
static const char *
quota_split(const char *pool, long long *l)
{
	const char *p;
	char *end;

	if (strncmp(pool, "quota:", 6) != 0 || pool[6] < '1' || pool[6] > '9')
		return NULL;
	errno = 0;
	*l = strtoll(pool + 6, &end, 10);
	if (errno != 0 || *end != ':' || *l < 1 || end[1] == '\0')
		return NULL;
	p = end + 1;
	return p;
}

long long
keys_pool_quota(const char *pool)
{
	long long l;

	return quota_split(pool, &l) != NULL ? l : 0;
}

int
keys_pool_key(const char *pool, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	const char *deal;
	long long l;
	size_t o, i;
	int k;

	if (size == 0)
		return -1;
	buf[0] = '\0';
	if ((deal = quota_split(pool, &l)) == NULL)
		k = snprintf(buf, size, "%s", pool);
	else if (strpbrk(deal, "{}%") == NULL)
		k = snprintf(buf, size, "quota:%s", deal);
	else {
		if (size < 8 + 2 * strlen(deal))
			return -1;
		memcpy(buf, "quota:%", 7);
		for (o = 7, i = 0; deal[i] != '\0'; i++) {
			buf[o++] = hex[(unsigned char)deal[i] >> 4];
			buf[o++] = hex[(unsigned char)deal[i] & 15];
		}
		buf[o] = '\0';
		return (int)o;
	}
	if (k < 0 || (size_t)k >= size) {
		buf[0] = '\0';
		return -1;
	}
	return k;
}

int
keys_pool_side(const char *pool, enum keys_pool_side which, char *buf, size_t size)
{
	static const char *const suffix[] = { ":res", ":marks", ":out" };
	char key[KEYS_MAX];
	int k;

	if (size == 0)
		return -1;
	buf[0] = '\0';
	if (layout_current() == NULL)
		return 0;
	if (keys_pool_key(pool, key, sizeof(key)) < 0 || strpbrk(key, "{}") != NULL ||
	    (unsigned)which > KEYS_POOL_OUT)
		return -1;
	k = snprintf(buf, size, "{%s}%s", key, suffix[which]);
	if (k < 0 || (size_t)k >= size) {
		buf[0] = '\0';
		return -1;
	}
	return k;
}

uint32_t
keys_shard_of_push(const char *push_id)
{
	const char *a = strchr(push_id, ':'), *b = strrchr(push_id, ':');
	char sub[MODEL_ID_MAX + 1];

	if (layout_current() == NULL || a == NULL || b <= a + 1 ||
	    (size_t)(b - a - 1) >= sizeof(sub))
		return 0;
	memcpy(sub, a + 1, (size_t)(b - a - 1));
	sub[b - a - 1] = '\0';
	return keys_shard_of(sub);
}

int
keys_lastsent(const char *sub, enum channel ch, char *buf, size_t size)
{
	if ((unsigned)ch >= CH_COUNT) {
		if (size > 0)
			buf[0] = '\0';
		return -1;
	}
	return keys_format(keys_shard_of(sub), buf, size, "lastsent:%s:%s", channel_name(ch),
	    sub);
}

int
keys_clicked(uint32_t shard, const char *push_id, char *buf, size_t size)
{
	return keys_format(shard, buf, size, "clicked:%s", push_id);
}

int
keys_proof(uint32_t shard, const char *hash, char *buf, size_t size)
{
	return keys_format(shard, buf, size, "proof:%s", hash);
}

uint32_t
keys_phone_shard(const char *value)
{
	return keys_shard_of(value);
}

/* The bucket of the phone index that holds value: bits of the same hash as the
 * shard's, far from the ones the shard takes (a modulo of the low ones), so that a
 * shard's numbers spread over every bucket. */
static unsigned
keys_phone_bucket(const char *value)
{
	return (unsigned)((rule_fmix64(rule_fnv1a(value)) >> 40) & (KEYS_PHONE_BUCKETS - 1));
}

int
keys_phone(const char *value, enum keys_phone which, char *buf, size_t size)
{
	uint32_t p = keys_phone_shard(value);

	switch (which) {
	case KEYS_PH_SUPPRESSED:
	case KEYS_PH_SIDS:
	case KEYS_PH_PENDING:
		return keys_phone_at(p, which, buf, size);
	case KEYS_PH_ACK:
		return keys_format(p, buf, size, "optout_ack:%s", value);
	case KEYS_PH_SIGNUP:
		return keys_format(p, buf, size, "signup:%s", value);
	case KEYS_PH_SIGNUP_ASKED:
		return keys_format(p, buf, size, "signup:asked:%s", value);
	case KEYS_PH_PHONES:
		return keys_format(p, buf, size, "phones:%u", keys_phone_bucket(value));
	case KEYS_PH_DMX:
		return keys_format(p, buf, size, "dmx:%u", keys_phone_bucket(value));
	default:
		break;
	}
	if (size > 0)
		buf[0] = '\0';
	return -1;
}

int
keys_phone_at(uint32_t p, enum keys_phone which, char *buf, size_t size)
{
	switch (which) {
	case KEYS_PH_SUPPRESSED:
		return keys_format(p, buf, size, "suppressed:sms");
	case KEYS_PH_SIDS:
		return keys_format(p, buf, size, "inbound:sids");
	case KEYS_PH_PENDING:
		return keys_format(p, buf, size, "inbound:pending");
	default:
		break;
	}
	if (size > 0)
		buf[0] = '\0';
	return -1;
}

int
keys_phone_untagged(const char *value, enum keys_phone which, char *buf, size_t size)
{
	int k;

	if (which != KEYS_PH_PHONES && which != KEYS_PH_DMX)
		return -1;
	k = snprintf(buf, size, "%s:%u", which == KEYS_PH_DMX ? "dmx" : "phones",
	    keys_phone_bucket(value));
	if (k < 0 || (size_t)k >= size) {
		if (size > 0)
			buf[0] = '\0';
		return -1;
	}
	return k;
}

int
keys_inbound_done(uint32_t shard, const char *sid, char *buf, size_t size)
{
	return keys_format(shard, buf, size, "inbound:done:%s", sid);
}

int
keys_formats(char *buf, size_t size)
{
	int k;

	if (size == 0)
		return -1;
	k = snprintf(buf, size, "dealpush:formats");
	if (k < 0 || (size_t)k >= size) {
		buf[0] = '\0';
		return -1;
	}
	return k;
}

int
keys_ab(enum keys_ab which, const char *deal, const char *rule, char *buf, size_t size)
{
	int k = -1;

	if (size == 0)
		return -1;
	switch (which) {
	case KEYS_AB_TESTS:
		k = snprintf(buf, size, "abtests");
		break;
	case KEYS_AB_TEST:
		k = snprintf(buf, size, "abtest:%s", deal);
		break;
	case KEYS_AB_REST:
		k = snprintf(buf, size, "abrest:%s", deal);
		break;
	case KEYS_AB_QUEUE:
		k = snprintf(buf, size, "abq:%s:%s", deal, rule);
		break;
	}
	if (k < 0 || (size_t)k >= size) {
		buf[0] = '\0';
		return -1;
	}
	return k;
}

int
keys_ab_held(uint32_t shard, enum keys_ab which, const char *deal, const char *rule,
    char *buf, size_t size)
{
	if (which == KEYS_AB_REST)
		return keys_format(shard, buf, size, "abrest:%s", deal);
	if (which == KEYS_AB_QUEUE)
		return keys_format(shard, buf, size, "abq:%s:%s", deal, rule);
	if (size > 0)
		buf[0] = '\0';
	return -1;
}

/* ORDER KEYS_GLOBAL */
static const char *const keys_global_names[KEYS_G_NAMES][2] = {
	{ "deals:dead", "{deals}:dead" },
	{ "deals:tries", "{deals}:tries" },
	{ "deals:confirmed", "{deals}:confirmed" },
	{ "conversions:dead", "{conversions}:dead" },
	{ "rules:version", "{rules}:version" },
	{ "tokens", "{rules}:tokens" },
	{ "tokens:used", "{rules}:tokens:used" },
	{ "tokens:version", "{rules}:tokens:version" },
	{ "audit", "{rules}:audit" },
};

const char *
keys_global_single(enum keys_global g)
{
	return (unsigned)g < KEYS_G_NAMES ? keys_global_names[g][0] : "";
}

const char *
keys_global_sharded(enum keys_global g)
{
	return (unsigned)g < KEYS_G_NAMES ? keys_global_names[g][1] : "";
}

const char *
keys_global(enum keys_global g)
{
	return layout_current() != NULL ? keys_global_sharded(g) : keys_global_single(g);
}

int
keys_reply_seen(const char *sid, char *buf, size_t size)
{
	int k;

	if (size == 0)
		return -1;
	k = snprintf(buf, size, "%s%s", layout_current() != NULL ? "{replies}:seen:" :
	    "inbound:seen:", sid);
	if (k < 0 || (size_t)k >= size) {
		buf[0] = '\0';
		return -1;
	}
	return k;
}

int
keys_session(const char *hex, char *buf, size_t size)
{
	int k;

	if (size == 0)
		return -1;
	k = snprintf(buf, size, "%ssession:%s", layout_current() != NULL ? "{rules}:" : "",
	    hex);
	if (k < 0 || (size_t)k >= size) {
		buf[0] = '\0';
		return -1;
	}
	return k;
}
