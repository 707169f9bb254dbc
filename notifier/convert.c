/*
 * convert.c: conversions to attributed redemptions (stage: record).
 *
 * Reads "conversions" in group "attribution" on a connection of its own, one
 * XREADGROUP at a time (the next waits until every script of the batch answered),
 * its own pending list first after every (re)connect and failure. Each entry is
 * validated (convert_parse.c) and then settled by one script, convert.lua:
 * dead-lettered and acked, or deduped, attributed inside a window (or not), counted
 * and acked. The script is given every key it
 * touches, so what names some of them (the push a code went to, the push's rule and
 * campaign, the holdout rule) is read first; the script re-checks it and answers
 * "retry" when it moved. Must never ack an entry whose effects are not written,
 * never count an order twice, never stall on an entry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "app.h"
#include "clicks.h"
#include "clicktok.h"
#include "clock.h"
#include "config.h"
#include "convert.h"
#include "greader.h"
#include "decay.h"
#include "keys.h"
#include "layout.h"
#include "log.h"
#include "rconn.h"
#include "redisutil.h"
#include "scripts.h"
#include "shortlink.h"

#define CONVERT_STREAM "conversions"
#define CONVERT_DEAD keys_global(KEYS_G_CONVERSIONS_DEAD)
#define CONVERT_GROUP "attribution"
#define CONVERT_PAYLOAD_MAX 16384
#define CONVERT_ORDER_TTL_S "7776000"      /* order:<id>: 90 days */
#define CONVERT_GAIN "0.3"                 /* e' = e + (1 - e) x 0.3 per redemption */
#define CONVERT_RETRY_MS 1000
#define CONVERT_TRIES 3                     /* reads and script, on "retry" */
#define CONVERT_KEY_MAX 512                 /* a key named from a conversion's data */
#define CONVERT_KEYS 17                     /* ORDER CONVERT_KEYS: convert.lua */
#define CONVERT_ARGS 21

struct convert_call;

struct convert {
	const struct app *app;
	struct greader *rd;            /* "conversions" in group "attribution" */
	struct decay *decay;           /* engagement decay, started with the consumer */
	const unsigned char *key;      /* click secret, borrowed; NULL: none */
	size_t keylen;
	size_t outstanding;            /* conversions of the current batch, + 1 while
	                                  queueing them */
	struct convert_call *qhead, *qtail; /* the batch's conversions not started yet */
	struct convert_call *running;  /* the one in flight: one at a time, in stream
	                                  order, so dead letters keep the entries' order */
	int pumping;
	struct convert_call *calls;    /* scripts waiting on app->cmd */
};

/* What an "attr" conversion reads before convert.lua, in this order; each only when
 * it applies (convert_next_read). */
enum convert_rd {
	CONVERT_RD_LINK,                /* GET link:<code>: a short link's push */
	CONVERT_RD_POOL,                /* sharded: HGET {s0}deal:<deal> pool */
	CONVERT_RD_CODEOUT,             /* sharded: HGET {<pool>}:out <code>: the
	                                   reservation, and so the shard, of the code */
	CONVERT_RD_CODEPUSH,            /* GET codepush:<code> (in that shard) */
	CONVERT_RD_PINFO,               /* HGET pushinfo:<deal> <sub>:<ch> (or <sub>:sms) */
	CONVERT_RD_PINFO_DM,            /* HGET pushinfo:<deal> <sub>:dm */
	CONVERT_RD_HOLDOUT,             /* HGET holdout:<deal> <sub> */
	CONVERT_RD_CAMP,                /* HGET deal:<deal> campaign */
	CONVERT_RD_ENTRY,               /* HGET deal:<deal> entry: names the pushes, and
	                                   so their clicked:<push> keys */
	CONVERT_RD_COUNT                /* none left: the script */
};

/* One conversion on the shared connection: its reads, then its script; detached (c
 * NULL) when the module is freed before a reply. */
struct convert_call {
	struct convert *c;
	struct convert_call *prev, *next;
	struct convert_call *qnext;     /* in the queue */
	int started;                    /* its first command was sent (or it failed) */
	int oom;                        /* could not be built whole: fails when its turn
	                                   comes */
	char entry[64];
	char order[129];
	int attr;                       /* an "attr" call (else "dead"), with: */
	int acking;                     /* its XACK (or the WAIT before it) is out */
	struct convert_in in;
	char revenue[64];
	char ordered_at[24];            /* epoch s: given, or when it was read */
	char *payload;                  /* copied: the stream reply is gone by then */
	size_t plen;
	char *dead[3];                  /* a "dead" call: reason, field, error */
	int tries;
	enum convert_rd rd;             /* the read in flight */
	char *val[CONVERT_RD_COUNT];    /* what each read gave; NULL = nil */
};

static void
convert_call_free(struct convert_call *k)
{
	size_t i;

	if (k == NULL)
		return;
	for (i = 0; i < CONVERT_RD_COUNT; i++)
		free(k->val[i]);
	free(k->payload);
	for (i = 0; i < 3; i++)
		free(k->dead[i]);
	free(k);
}

static void
convert_read(struct convert *c)
{
	greader_read(c->rd);
}

/* ---- the consumer ---- */

static void
convert_reread(struct convert *c, int failed)
{
	greader_reread(c->rd, failed);
}

static void
convert_unlink(struct convert_call *k)
{
	if (k->c == NULL)
		return;
	if (k->prev != NULL)
		k->prev->next = k->next;
	else
		k->c->calls = k->next;
	if (k->next != NULL)
		k->next->prev = k->prev;
}

/* Splits a push id as convert.lua does ('^([^:]+):(.+):([^:]+)$'): the entry is up
 * to the first ':', the channel after the last. Returns 0, or -1 when it is not one. */
static int
convert_split_push(const char *push, size_t *elen, const char **sub, size_t *slen)
{
	const char *a, *b;

	if (push == NULL || (a = strchr(push, ':')) == NULL || a == push ||
	    (b = strrchr(push, ':')) == NULL || b <= a + 1 || b[1] == '\0')
		return -1;
	*elen = (size_t)(a - push);
	*sub = a + 1;
	*slen = (size_t)(b - a - 1);
	return 0;
}

/* The push the conversion names: its value, or what codepush:<code> held. */
static const char *
convert_push(const struct convert_call *k)
{
	if (strcmp(k->in.kind, "code") == 0)
		return k->val[CONVERT_RD_CODEPUSH];
	if (strcmp(k->in.kind, "subscriber_id") == 0)
		return NULL;
	return k->in.value;
}

/* The shard a code was reserved for (docs/sharding.md 4c), from the pool's out
 * "<deal>\t<shard>\t<n>": only a reservation of the conversion's deal counts; 0 when
 * there is none (one shard, or an unknown code). */
static uint32_t
convert_code_shard(const struct convert_call *k)
{
	const char *o = k->val[CONVERT_RD_CODEOUT], *tab;
	size_t dlen = strlen(k->in.deal_id);
	unsigned long v;
	char *end;

	if (o == NULL || strncmp(o, k->in.deal_id, dlen) != 0 || o[dlen] != '\t')
		return 0;
	tab = o + dlen + 1;
	v = strtoul(tab, &end, 10);
	if (end == tab || *end != '\t' || v >= keys_shards())
		return 0;
	return (uint32_t)v;
}

/* The shard of the subscriber the conversion names (keys.h): the push's, or the
 * subscriber_id's; 0 when it names none yet (an unknown code: nothing is written). */
static uint32_t
convert_shard(const struct convert_call *k)
{
	const char *push = convert_push(k);

	if (strcmp(k->in.kind, "subscriber_id") == 0)
		return keys_shard_of(k->in.value);
	return push != NULL ? keys_shard_of_push(push) : 0;
}

/* The pushinfo value the script will find first ("" = none). */
static const char *
convert_info(const struct convert_call *k)
{
	if (k->val[CONVERT_RD_PINFO] != NULL)
		return k->val[CONVERT_RD_PINFO];
	if (strcmp(k->in.kind, "subscriber_id") == 0 && k->val[CONVERT_RD_PINFO_DM] != NULL)
		return k->val[CONVERT_RD_PINFO_DM];
	return "";
}

/* The first read after from that applies to k, or CONVERT_RD_COUNT. */
static enum convert_rd
convert_next_read(const struct convert_call *k, int from)
{
	const char *sub;
	size_t elen, slen;
	int subscriber = strcmp(k->in.kind, "subscriber_id") == 0;
	int i;

	for (i = from; i < CONVERT_RD_COUNT; i++) {
		switch ((enum convert_rd)i) {
		case CONVERT_RD_LINK:
			if (k->in.short_code)
				return CONVERT_RD_LINK;
			break;
		case CONVERT_RD_POOL:
			if (strcmp(k->in.kind, "code") == 0 && layout_current() != NULL)
				return CONVERT_RD_POOL;
			break;
		case CONVERT_RD_CODEOUT:
			/* A quota's tokens (docs/sharding.md 4c) are no codes: none
			 * has a codepush, so the conversion finds no push. */
			if (strcmp(k->in.kind, "code") == 0 && layout_current() != NULL &&
			    k->val[CONVERT_RD_POOL] != NULL &&
			    keys_pool_quota(k->val[CONVERT_RD_POOL]) == 0)
				return CONVERT_RD_CODEOUT;
			break;
		case CONVERT_RD_CODEPUSH:
			if (strcmp(k->in.kind, "code") == 0)
				return CONVERT_RD_CODEPUSH;
			break;
		case CONVERT_RD_PINFO:
			if (subscriber || convert_split_push(convert_push(k), &elen, &sub,
			    &slen) == 0)
				return CONVERT_RD_PINFO;
			break;
		case CONVERT_RD_PINFO_DM:
		case CONVERT_RD_HOLDOUT:
		case CONVERT_RD_CAMP:
		case CONVERT_RD_ENTRY:
			if (subscriber)
				return (enum convert_rd)i;
			break;
		case CONVERT_RD_COUNT:
			break;
		}
	}
	return CONVERT_RD_COUNT;
}

static void convert_on_reply(struct rconn *rc, struct redisReply *r, void *arg);

/* Sends k's read in flight (k->rd). Returns 0, 1 when a key would not fit, or -1
 * when Redis is not ready. */
static int
convert_send_read(struct convert_call *k)
{
	char key[CONVERT_KEY_MAX], field[CONVERT_KEY_MAX], px[KEYS_SHARD_MAX];
	const char *args[3], *push = convert_push(k), *sub;
	size_t elen, slen;
	int bad = 0;

	args[0] = "HGET";
	args[1] = key;
	args[2] = field;
	switch (k->rd) {
	case CONVERT_RD_LINK: {
		uint32_t shard = 0;

		(void)shortlink_check(k->c->key, k->c->keylen, k->in.value, SHORTLINK_LEN,
		    keys_shards(), &shard);
		bad |= keys_per(shard, KEYS_LINK, k->in.value, key, sizeof(key)) < 0;
		args[0] = "GET";
		return bad ? 1 : rconn_argv(k->c->app->cmd, convert_on_reply, k, 0, 2, args,
		    NULL);
	}
	case CONVERT_RD_POOL:
		/* A code names no subscriber: sharded, the deal's pool (in every shard's
		 * copy of the deal, so shard 0's) says which shard reserved it. */
		bad |= keys_prefix(0, KEYS_DEAL, px, sizeof(px)) < 0;
		bad |= ru_key(key, CONVERT_KEY_MAX, px, k->in.deal_id, strlen(k->in.deal_id));
		args[2] = "pool";
		break;
	case CONVERT_RD_CODEOUT:
		if (keys_pool_side(k->val[CONVERT_RD_POOL], KEYS_POOL_OUT, key,
		    sizeof(key)) <= 0)
			return 1;
		args[2] = k->in.value;
		break;
	case CONVERT_RD_CODEPUSH:
		bad |= keys_prefix(convert_code_shard(k), KEYS_CODEPUSH, px, sizeof(px)) < 0;
		bad |= ru_key(key, CONVERT_KEY_MAX, px, k->in.value, strlen(k->in.value));
		args[0] = "GET";
		return bad ? 1 : rconn_argv(k->c->app->cmd, convert_on_reply, k, 0, 2, args,
		    NULL);
	case CONVERT_RD_PINFO:
	case CONVERT_RD_PINFO_DM:
		bad |= keys_prefix(convert_shard(k), KEYS_PUSHINFO, px, sizeof(px)) < 0;
		bad |= ru_key(key, CONVERT_KEY_MAX, px, k->in.deal_id, strlen(k->in.deal_id));
		if (strcmp(k->in.kind, "subscriber_id") == 0) {
			if (snprintf(field, sizeof(field), "%s:%s", k->in.value,
			    k->rd == CONVERT_RD_PINFO ? "sms" : "dm") >= (int)sizeof(field))
				bad = 1;
		} else if (convert_split_push(push, &elen, &sub, &slen) < 0 ||
		    snprintf(field, sizeof(field), "%s", sub) >= (int)sizeof(field)) {
			bad = 1;        /* convert_next_read checked it */
		}
		break;
	case CONVERT_RD_HOLDOUT:
		bad |= keys_prefix(convert_shard(k), KEYS_HOLDOUT, px, sizeof(px)) < 0;
		bad |= ru_key(key, CONVERT_KEY_MAX, px, k->in.deal_id, strlen(k->in.deal_id));
		args[2] = k->in.value;
		break;
	case CONVERT_RD_CAMP:
	case CONVERT_RD_ENTRY:
		/* The deal's copy in the shard the conversion names: each shard plans
		 * its own, with the deal's campaign and entry. */
		bad |= keys_prefix(convert_shard(k), KEYS_DEAL, px, sizeof(px)) < 0;
		bad |= ru_key(key, CONVERT_KEY_MAX, px, k->in.deal_id, strlen(k->in.deal_id));
		args[2] = k->rd == CONVERT_RD_CAMP ? "campaign" : "entry";
		break;
	case CONVERT_RD_COUNT:
		return 1;
	}
	return bad ? 1 : rconn_argv(k->c->app->cmd, convert_on_reply, k, 0, 3, args, NULL);
}

/* The clicked:<push> keys whose values start the click windows (ORDER CONVERT_KEYS
 * 14, 15) into a and b ("" = none): the push's (a) for a code, token or push id;
 * for a subscriber, its SMS push's (a) and DM push's (b) of the deal, named from the
 * deal's entry. Returns 0, or 1 when a key would not fit. */
static int
convert_clicked_keys(const struct convert_call *k, uint32_t shard, const char *push,
    char *a, char *b)
{
	char id[CONVERT_KEY_MAX];
	const char *entry = k->val[CONVERT_RD_ENTRY];
	int i;

	a[0] = b[0] = '\0';
	if (strcmp(k->in.kind, "subscriber_id") != 0)
		return push != NULL && keys_clicked(shard, push, a, CONVERT_KEY_MAX) < 0;
	if (entry == NULL)
		return 0;
	for (i = 0; i < 2; i++) {   /* ORDER CHANNEL */
		if (snprintf(id, sizeof(id), "%s:%s:%s", entry, k->in.value,
		    i == 0 ? "sms" : "dm") >= (int)sizeof(id) ||
		    keys_clicked(shard, id, i == 0 ? a : b, CONVERT_KEY_MAX) < 0)
			return 1;
	}
	return 0;
}

/* Sends convert.lua for k with every key (ORDER CONVERT_KEYS). Returns as
 * convert_send_read. */
static int
convert_script(struct convert_call *k)
{
	char key[CONVERT_KEYS][CONVERT_KEY_MAX], skey[3][KEYS_SHARD_MAX];
	char subid[sizeof(k->in.value)] = "", cwin[24], dwin[24];
	const char *args[CONVERT_KEYS + CONVERT_ARGS], *push, *sub, *info, *t;
	const char *rule = NULL, *camp = NULL;
	const char *deal = k->in.deal_id;
	struct keys_prefixes px;
	uint32_t shard;
	size_t lens[CONVERT_KEYS + CONVERT_ARGS], elen, slen, rlen = 0, clen = 0;
	int bad = 0, i, n;

	for (i = 0; i < CONVERT_KEYS; i++)
		key[i][0] = '\0';
	if (!k->attr) {
		/* "dead": the payload's length is kept apart (it may be cut). */
		args[0] = CONVERT_STREAM;
		args[1] = CONVERT_DEAD;
		for (i = 2; i < CONVERT_KEYS; i++)
			args[i] = "";
		n = CONVERT_KEYS;
		args[n++] = "dead";
		args[n++] = k->entry;
		args[n++] = CONVERT_GROUP;
		args[n++] = k->dead[0];
		args[n++] = k->dead[1];
		args[n++] = k->dead[2];
		args[n] = k->payload != NULL ? k->payload : "";
		for (i = 0; i < n; i++)
			lens[i] = strlen(args[i]);
		lens[n] = k->payload != NULL ? k->plen : 0;
		return script_call_named(k->c->app->cmd, "convert", CONVERT_KEYS, n + 1, args,
		    lens, convert_on_reply, k);
	}
	snprintf(cwin, sizeof(cwin), "%ld", k->c->app->cfg->click_window_s);
	snprintf(dwin, sizeof(dwin), "%ld", k->c->app->cfg->delivery_window_s);
	push = convert_push(k);
	info = convert_info(k);
	/* Every key of the attribution is the named subscriber's shard's (keys.h),
	 * unattributed conversions included: they count in that subscriber's
	 * report:deal:<id> ("unattributed"), summed over the shards on read. */
	shard = convert_shard(k);
	bad |= keys_prefixes(shard, &px) < 0;
	if (strcmp(k->in.kind, "code") == 0)
		bad |= ru_key(key[4], CONVERT_KEY_MAX, px.p[KEYS_CODEPUSH], k->in.value,
		    strlen(k->in.value));
	if (push != NULL && convert_split_push(push, &elen, &sub, &slen) == 0) {
		bad |= ru_key(key[5], CONVERT_KEY_MAX, px.p[KEYS_DEALENTRY], push, elen);
		snprintf(subid, sizeof(subid), "%.*s", (int)slen, sub);
	} else if (strcmp(k->in.kind, "subscriber_id") == 0) {
		snprintf(subid, sizeof(subid), "%s", k->in.value);
	}
	/* The attributed subscriber's shard (keys.h); none (an unknown code): the keys
	 * are not used, and are the call's shard's, so that every key is on one slot. */
	bad |= keys_shard_key(subid[0] != '\0' ? keys_shard_of(subid) : shard,
	    KEYS_SUBSCRIBERS, skey[0], sizeof(skey[0])) < 0;
	bad |= keys_shard_key(subid[0] != '\0' ? keys_shard_of(subid) : shard,
	    KEYS_SUB_CHANGES, skey[1], sizeof(skey[1])) < 0;
	bad |= keys_shard_key(subid[0] != '\0' ? keys_shard_of(subid) : shard,
	    KEYS_BEHAVIOUR, skey[2], sizeof(skey[2])) < 0;
	bad |= ru_key(key[6], CONVERT_KEY_MAX, px.p[KEYS_PUSHINFO], deal, strlen(deal));
	bad |= ru_key(key[7], CONVERT_KEY_MAX, px.p[KEYS_DEAL], deal, strlen(deal));
	bad |= ru_key(key[8], CONVERT_KEY_MAX, px.p[KEYS_HOLDOUT], deal, strlen(deal));
	bad |= ru_key(key[9], CONVERT_KEY_MAX, px.p[KEYS_ORDER], k->in.order_id,
	    strlen(k->in.order_id));
	bad |= ru_key(key[10], CONVERT_KEY_MAX, px.p[KEYS_REPORT_DEAL], deal, strlen(deal));
	/* The conversion's own reports, as convert.lua picks them. */
	if (*info != '\0') {
		if ((t = strchr(info, '\t')) != NULL) {
			rule = info;
			rlen = (size_t)(t - info);
			camp = t + 1;
			clen = strlen(camp);
		}
	} else if (strcmp(k->in.kind, "subscriber_id") == 0 &&
	    k->val[CONVERT_RD_HOLDOUT] != NULL) {
		rule = k->val[CONVERT_RD_HOLDOUT];
		rlen = strlen(rule);
		if ((camp = k->val[CONVERT_RD_CAMP]) != NULL)
			clen = strlen(camp);
	}
	bad |= ru_key(key[11], CONVERT_KEY_MAX, px.p[KEYS_REPORT_RULE], rule, rlen);
	bad |= ru_key(key[12], CONVERT_KEY_MAX, px.p[KEYS_REPORT_CAMPAIGN], camp, clen);
	bad |= convert_clicked_keys(k, shard, push, key[13], key[14]);
	bad |= ru_key(key[15], CONVERT_KEY_MAX, px.p[KEYS_SERIES], deal, strlen(deal));
	if (bad)
		return 1;
	/* Not conversions nor its dead letters: the attribution is on the shard's
	 * slot, and the ack follows its answer (convert_ack). */
	args[0] = "";
	args[1] = "";
	args[2] = skey[0];
	args[3] = skey[1];
	for (i = 4; i < 16; i++)
		args[i] = key[i];
	args[16] = skey[2];             /* behaviour */
	n = CONVERT_KEYS;
	args[n++] = "attr";
	args[n++] = k->entry;
	args[n++] = CONVERT_GROUP;
	args[n++] = k->in.deal_id;
	args[n++] = k->in.order_id;
	args[n++] = k->revenue;
	args[n++] = k->in.currency;
	args[n++] = k->in.kind;
	args[n++] = k->in.value;
	args[n++] = k->payload != NULL ? k->payload : "";
	args[n++] = CONVERT_ORDER_TTL_S;
	args[n++] = CONVERT_GAIN;
	args[n++] = k->val[CONVERT_RD_CODEPUSH] != NULL ? k->val[CONVERT_RD_CODEPUSH] : "";
	args[n++] = info;
	args[n++] = k->val[CONVERT_RD_HOLDOUT] != NULL ? k->val[CONVERT_RD_HOLDOUT] : "";
	args[n++] = k->val[CONVERT_RD_CAMP] != NULL ? k->val[CONVERT_RD_CAMP] : "";
	args[n++] = k->ordered_at;
	args[n++] = cwin;
	args[n++] = dwin;
	args[n++] = k->in.product_id;
	args[n++] = k->val[CONVERT_RD_ENTRY] != NULL ? k->val[CONVERT_RD_ENTRY] : "";
	return script_call_named(k->c->app->cmd, "convert", CONVERT_KEYS, n, args, NULL,
	    convert_on_reply, k);
}

/* Sends k's next command: a read, or its script. Returns as convert_send_read. */
static int
convert_send(struct convert_call *k)
{
	if (k->attr && k->rd < CONVERT_RD_COUNT)
		return convert_send_read(k);
	return convert_script(k);
}

static void convert_pump(struct convert *c);

/* Ends conversion k: the next one starts; the next batch may be read once all
 * answered. */
static void
convert_done(struct convert_call *k)
{
	struct convert *c = k->c;

	convert_unlink(k);
	if (k == c->running)
		c->running = NULL;
	convert_call_free(k);
	if (--c->outstanding == 0)
		convert_read(c);
	convert_pump(c);
}

/* A conversion that could not be settled now: left pending, read again. */
static void
convert_failed(struct convert_call *k, const char *err)
{
	log_warnx("event=conversion_failed entry=%s err=\"%s\"", k->entry, err);
	convert_reread(k->c, 1);
	convert_done(k);
}

/* Sends k's next command; on failure ends k as convert_failed. */
static void
convert_next(struct convert_call *k)
{
	int sent = convert_send(k);

	if (sent < 0)
		convert_failed(k, "redis not ready");
	else if (sent > 0)
		convert_failed(k, "key too long");
}

/* Starts the batch's conversions one after the other, in stream order. */
static void
convert_pump(struct convert *c)
{
	struct convert_call *k;

	if (c->pumping)
		return;
	c->pumping = 1;
	while (c->running == NULL && (k = c->qhead) != NULL) {
		if ((c->qhead = k->qnext) == NULL)
			c->qtail = NULL;
		k->qnext = NULL;
		k->started = 1;
		c->running = k;
		if (k->oom)
			convert_failed(k, "out of memory");
		else
			convert_next(k);
	}
	c->pumping = 0;
}

/* The attribution answered: the entry is acked, after a WAIT in the sharded layout
 * with redis.wait_replicas (the attribution and conversions may be on two
 * primaries; on one Redis the replication stream keeps their order, as in
 * ingest.c). A lost ack reads the entry again: its order is known, "duplicate". */
static void
convert_ack(struct convert_call *k)
{
	const struct config *cfg = k->c->app->cfg;
	struct rconn *cmd = k->c->app->cmd;
	int rc;

	k->acking = 1;
	if (cfg->wait_replicas > 0 && layout_current() != NULL)
		rc = rconn_cmd(cmd, convert_on_reply, k, cfg->wait_timeout_ms +
		    rconn_timeout_ms(cmd), "WAIT %ld %ld", cfg->wait_replicas,
		    cfg->wait_timeout_ms);
	else
		rc = rconn_cmd(cmd, convert_on_reply, k, 0, "XACK %s %s %s", CONVERT_STREAM,
		    CONVERT_GROUP, k->entry);
	if (rc < 0)
		convert_failed(k, "redis not ready");
}

/* An ack step answered: the WAIT (then the XACK), or the XACK (k ends). */
static void
convert_acked(struct convert_call *k, const struct redisReply *r)
{
	long want = k->c->app->cfg->wait_replicas;

	if (r->type == REDIS_REPLY_INTEGER && k->acking == 1 && want > 0 &&
	    layout_current() != NULL) {
		if (r->integer < want) {
			convert_failed(k, "the attribution is not on enough replicas");
			return;
		}
		k->acking = 2;
		if (rconn_cmd(k->c->app->cmd, convert_on_reply, k, 0, "XACK %s %s %s",
		    CONVERT_STREAM, CONVERT_GROUP, k->entry) < 0)
			convert_failed(k, "redis not ready");
		return;
	}
	convert_done(k);
}

/* The script answered: logs the result and acks (attr), or ends k (dead). A bad
 * conversion the attribution found becomes a dead letter. */
static void
convert_settled(struct convert_call *k, const struct redisReply *r)
{
	const char *st = NULL;

	if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
	    r->element[0]->type == REDIS_REPLY_STRING)
		st = r->element[0]->str;
	if (st == NULL) {
		/* Left pending: read again from the pending list. */
		convert_failed(k, r->type == REDIS_REPLY_ERROR ? r->str : "no reply");
		return;
	}
	if (strcmp(st, "dead") == 0 && k->attr) {
		size_t i;

		k->attr = 0;
		for (i = 0; i < 3; i++)
			if (r->elements != 4 || r->element[i + 1]->type != REDIS_REPLY_STRING ||
			    (k->dead[i] = strdup(r->element[i + 1]->str)) == NULL) {
				convert_failed(k, "bad reply");
				return;
			}
		k->plen = k->payload != NULL ? strlen(k->payload) : 0;
		convert_next(k);
		return;
	}
	if (strcmp(st, "dead") == 0) {
		log_warnx("event=conversion_dead entry=%s reason=%s field=%s", k->entry,
		    r->elements > 1 && r->element[1]->type == REDIS_REPLY_STRING ?
		    r->element[1]->str : "-", r->elements > 2 &&
		    r->element[2]->type == REDIS_REPLY_STRING ? r->element[2]->str : "-");
	} else {
		const char *a1 = r->elements > 1 && r->element[1]->type ==
		    REDIS_REPLY_STRING ? r->element[1]->str : NULL;
		const char *a2 = r->elements > 2 && r->element[2]->type ==
		    REDIS_REPLY_STRING ? r->element[2]->str : NULL;

		if (strcmp(st, "unattributed") == 0)
			log_info("event=conversion entry=%s order=%s result=%s reason=%s",
			    k->entry, k->order, st, a1 != NULL && *a1 != '\0' ? a1 : "-");
		else
			log_info("event=conversion entry=%s order=%s result=%s%s%s%s%s",
			    k->entry, k->order, st, a1 ? " push=" : "", a1 ? a1 : "",
			    a2 ? " window=" : "", a2 ? a2 : "");
		convert_ack(k);
		return;
	}
	convert_done(k);
}

/* One reply of k's: the next read, its script, or the end. */
/* link:<code> answered for k's short code: k goes on with the push id it holds, or
 * becomes a dead letter unknown_push (no such link, or past its click window) and is
 * sent as one. Returns 0 to go on, -1 when k was sent or ended. */
static int
convert_link_found(struct convert_call *k)
{
	const char *push = k->val[CONVERT_RD_LINK];
	char entry[64], sub[CLICKTOK_ID_MAX + 1], ch[16];
	static const char *const why[3] = { "unknown_push", "click_token",
		"click_token: no such push (a short link unknown or past its click "
		"window)" };
	int i;

	if (push != NULL && strlen(push) < sizeof(k->in.value) &&
	    clicks_split_push_id(push, entry, sizeof(entry), sub, sizeof(sub), ch,
	    sizeof(ch)) == 0) {
		snprintf(k->in.value, sizeof(k->in.value), "%s", push);
		k->in.short_code = 0;
		return 0;
	}
	k->attr = 0;
	for (i = 0; i < 3; i++)
		if ((k->dead[i] = strdup(why[i])) == NULL) {
			convert_failed(k, "out of memory");
			return -1;
		}
	k->plen = k->payload != NULL ? strlen(k->payload) : 0;
	convert_next(k);
	return -1;
}

static void
convert_on_reply(struct rconn *rc, struct redisReply *r, void *arg)
{
	struct convert_call *k = arg;
	size_t i;

	(void)rc;
	if (k->c == NULL) {             /* the module was freed */
		convert_call_free(k);
		return;
	}
	if (r == NULL || r->type == REDIS_REPLY_ERROR) {
		convert_failed(k, r != NULL ? r->str : "no reply");
		return;
	}
	if (k->acking) {
		convert_acked(k, r);
		return;
	}
	if (k->attr && k->rd < CONVERT_RD_COUNT) {
		if (ru_copy(r, 65536, &k->val[k->rd]) < 0) {
			convert_failed(k, "bad reply");
			return;
		}
		if (k->rd == CONVERT_RD_LINK && convert_link_found(k) < 0)
			return;
		k->rd = convert_next_read(k, (int)k->rd + 1);
		convert_next(k);
		return;
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(r->element[0]->str, "retry") == 0) {
		if (++k->tries >= CONVERT_TRIES) {
			convert_failed(k, "the conversion's keys kept changing");
			return;
		}
		for (i = 0; i < CONVERT_RD_COUNT; i++) {
			free(k->val[i]);
			k->val[i] = NULL;
		}
		k->rd = convert_next_read(k, 0);
		convert_next(k);
		return;
	}
	convert_settled(k, r);
}

/* A new call of the module, linked; NULL when out of memory. */
static struct convert_call *
convert_call_new(struct convert *c, const char *entry, const char *order)
{
	struct convert_call *k = calloc(1, sizeof(*k));

	if (k == NULL)
		return NULL;
	snprintf(k->entry, sizeof(k->entry), "%s", entry ? entry : "-");
	snprintf(k->order, sizeof(k->order), "%s", order ? order : "-");
	k->c = c;
	k->next = c->calls;
	if (c->calls != NULL)
		c->calls->prev = k;
	c->calls = k;
	c->outstanding++;
	if (c->qtail != NULL)
		c->qtail->qnext = k;
	else
		c->qhead = k;
	c->qtail = k;
	return k;
}

static void
convert_dead(struct convert *c, const char *entry, const struct err *e,
    const char *payload, size_t len)
{
	struct convert_call *k = convert_call_new(c, entry, NULL);

	if (k == NULL) {
		log_warnx("event=conversion_failed entry=%s err=\"out of memory\"", entry);
		convert_reread(c, 1);
		return;
	}
	if ((k->dead[0] = strdup(e->code)) == NULL || (k->dead[1] = strdup(e->field)) == NULL ||
	    (k->dead[2] = strdup(e->msg)) == NULL) {
		k->oom = 1;
		return;
	}
	if (payload != NULL) {
		k->plen = len > CONVERT_PAYLOAD_MAX ? CONVERT_PAYLOAD_MAX : len;
		if ((k->payload = malloc(k->plen + 1)) == NULL) {
			k->oom = 1;
			return;
		}
		memcpy(k->payload, payload, k->plen);
		k->payload[k->plen] = '\0';
	}
}

static void
convert_entry(struct convert *c, const char *entry, const struct redisReply *fields)
{
	struct convert_call *k;
	struct convert_in in;
	struct err err;
	const char *payload;
	size_t len = 0;

	err_clear(&err);
	if (fields == NULL) {
		err_set(&err, ERR_INPUT, "deleted", "", "entry was deleted");
		convert_dead(c, entry, &err, NULL, 0);
		return;
	}
	if ((payload = ru_field(fields, "conversion", &len)) == NULL) {
		err_set(&err, ERR_INPUT, "missing_field", "conversion",
		    "conversion: the entry has no field 'conversion'");
		convert_dead(c, entry, &err, NULL, 0);
		return;
	}
	if (convert_parse(payload, len, c->key, c->keylen, &in, &err) < 0 ||
	    convert_check_time(&in, clock_now(), &err) < 0) {
		if (err.kind == ERR_NOMEM) {
			convert_reread(c, 1);
			return;
		}
		convert_dead(c, entry, &err, payload, len);
		return;
	}
	if ((k = convert_call_new(c, entry, in.order_id)) == NULL) {
		log_warnx("event=conversion_failed entry=%s err=\"out of memory\"", entry);
		convert_reread(c, 1);
		return;
	}
	k->attr = 1;
	k->in = in;
	snprintf(k->revenue, sizeof(k->revenue), "%.17g", in.revenue);
	/* Without ordered_at, the order is timed now, on the notifier's clock. */
	snprintf(k->ordered_at, sizeof(k->ordered_at), "%lld", (long long)(in.has_ordered_at ?
	    in.ordered_at : clock_now()));
	if ((k->payload = strndup(len > CONVERT_PAYLOAD_MAX ? "" : payload, len)) == NULL) {
		k->oom = 1;
		return;
	}
	k->rd = convert_next_read(k, 0);
}

/* greader_batch_fn: every entry of a batch; the next read once all answered. */
static void
convert_on_batch(void *arg, const struct redisReply *entries)
{
	struct convert *c = arg;
	const struct redisReply *fields;
	const char *id;
	size_t i;

	c->outstanding++; /* hold the next read until the batch is queued and started */
	for (i = 0; i < entries->elements; i++) {
		if (ru_entry(entries, i, &id, &fields) < 0) {
			log_warnx("event=read_failed stream=" CONVERT_STREAM
			    " err=\"malformed entry\"");
			continue;
		}
		convert_entry(c, id, fields);
	}
	convert_pump(c);
	c->outstanding--;
}

/* greader_gate_fn: one batch at a time, through the shared connection. */
static int
convert_gate(void *arg)
{
	struct convert *c = arg;

	return c->outstanding == 0 && rconn_is_ready(c->app->cmd);
}

struct convert *
convert_new(const struct app *app)
{
	struct convert *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		goto oom;
	c->app = app;
	if (app->cfg->click_secret != NULL &&
	    strlen(app->cfg->click_secret) >= CLICKTOK_KEY_MIN &&
	    strlen(app->cfg->click_secret) <= CLICKTOK_KEY_MAX) {
		c->key = (const unsigned char *)app->cfg->click_secret;
		c->keylen = strlen(app->cfg->click_secret);
	}
	if ((c->decay = decay_new(app)) == NULL)
		goto oom;
	{
		/* From "0": conversions posted before the first notifier count too. */
		struct greader_config gc = { "convert", CONVERT_STREAM, CONVERT_GROUP,
			app->cfg->consumer, app->cfg->ingest_batch, app->cfg->block_ms,
			app->cfg->redis_command_timeout_ms, CONVERT_RETRY_MS,
			app->cfg->claim_idle_ms, NULL, NULL, 0 };

		if ((c->rd = greader_new(app->base, app->rcfg, &gc, convert_on_batch,
		    convert_gate, c)) == NULL)
			goto oom;
		greader_set_cmd(c->rd, app->cmd);
	}
	return c;
oom:
	log_errorx("event=start_failed component=convert err=\"out of memory\"");
	convert_free(c);
	return NULL;
}

void
convert_free(struct convert *c)
{
	struct convert_call *k, *next;

	if (c == NULL)
		return;
	for (k = c->calls; k != NULL; k = next) {
		next = k->next;
		if (!k->started) {      /* queued: no reply will come */
			convert_call_free(k);
			continue;
		}
		k->c = NULL;
		k->prev = k->next = NULL;
	}
	c->calls = NULL;
	if (c->rd != NULL)
		greader_stop(c->rd);    /* the read callback (NULL) must not read again */
	greader_free(c->rd);
	decay_free(c->decay);
	free(c);
}
