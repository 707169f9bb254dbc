/*
 * config.h: the notifier's configuration file (stage: start-up and reload).
 *
 * An INI-style file: "[section]" or "[gateway NAME]" headers, "key = value" lines,
 * '#' comments. Every key is documented in docs/operations.md. Secrets are never in
 * the file itself: "<key>_env = VAR" names an environment variable and
 * "<key>_file = PATH" a file whose first line is the secret.
 */
#ifndef DEALPUSH_CONFIG_H
#define DEALPUSH_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "gw.h"
#include "quiet.h"

#define CONFIG_GATEWAYS_MAX 16
#define CONFIG_GW_TIMEOUT_DEFAULT_MS 10000  /* a gateway's timeout_ms when not set */

struct config {
	char *consumer;              /* consumer name in both groups; stable across restarts */
	int log_level;
	long shutdown_grace_ms;
	long clock_offset_s;         /* for tests: moves the wall clock */

	char *redis_host;            /* an IP address or a host name (resolved without
	                              * blocking, again at every connect) */
	char *redis_username;        /* Redis 6 ACL user, with redis_password; may be NULL */
	int redis_port;
	char *redis_password;        /* secret, may be NULL */
	long redis_connect_timeout_ms;
	long redis_command_timeout_ms;
	long redis_reconnect_max_ms;
	char *redis_sentinels;       /* "host:port,...": the primary is found through
	                              * these (redis.host/port unused); may be NULL */
	char *redis_master_name;     /* the Sentinel master name, with redis_sentinels */
	char *redis_cluster;         /* "ip:port,...": seeds of a Redis Cluster (host and
	                              * port unused); NULL: one Redis */
	long wait_replicas;          /* replicas a claim must reach before its request
	                              * leaves (WAIT); 0 = no WAIT */
	long wait_timeout_ms;        /* WAIT's timeout */
	long redis_shards;           /* the shard count the stored layout must have
	                              * (docs/sharding.md); 0: not set, any layout */

	char *cluster_ownership;     /* "off", "configured" or "balanced" (owner.h);
	                              * NULL: off */
	char *cluster_shards;        /* ownership = configured: "0-15,40" */
	long cluster_lease_ms;       /* a shard's lease (own.lua) */
	long cluster_lease_margin_ms; /* the local lease ends this much earlier */
	long cluster_settle_ms;      /* balanced: no acquire this soon after start;
	                              * -1 until config_cluster_check: 2/3 of the lease */

	long ingest_batch;           /* entries per XREADGROUP on "deals" */
	long block_ms;               /* XREADGROUP BLOCK for both streams */
	long plan_chunk;             /* recipients per atomic plan step */
	long plan_stall_ms;          /* a deal planning without progress this long:
	                              * /healthz unhealthy */
	long job_size;               /* recipients per job on "pushes" */
	long max_tries;              /* failures of one deal entry before it is
	                              * dead-lettered (reason max_tries) */

	long deliver_batch;          /* jobs per XREADGROUP on "pushes" */
	long retry_base_ms;
	long retry_max_ms;
	long max_in_flight;          /* HTTP requests in flight, all gateways */
	long claim_idle_ms;          /* a pending entry idle this long belongs to a dead
	                              * consumer and is claimed (XAUTOCLAIM) */
	long breaker_failures;       /* consecutive failures that open a breaker */
	long breaker_open_ms;        /* first cool-down of an open breaker */
	long campaign_cap;           /* pushes per subscriber per rolling 24 h on one
	                              * campaign; 0 = none (the law's caps by place are
	                              * in quiet, below) */
	long resolve_after_s;        /* an unknown SMS is first looked up at Twilio this
	                              * long after it was recorded (resolve.c) */
	long resolve_tries;          /* lookups before an unknown push is given up */

	int http_port;               /* -1: no HTTP surface; 0: a kernel-chosen port */
	char *http_listen;           /* an IP address */
	char *http_port_file;        /* the bound port is written here (tests, tools) */
	char *admin_token;           /* secret; NULL: the admin API answers 503 */
	char *public_url;            /* how the internet reaches our HTTP surface, e.g.
	                              * "https://notify.example.com": click links and
	                              * the URL Twilio signs; NULL: links are the deal's */
	char *link_base;             /* short links are "<link_base>/<code>"; NULL until
	                              * config_cross_check makes it "<public_url>/c" */
	char *click_secret;          /* secret: HMAC key of click tokens and short link
	                              * codes */
	char *inbound_secret;        /* secret: HMAC key of the x-dm and webhook inbound
	                              * opt-out endpoint */
	long http_timeout_ms;
	long session_ttl_s;          /* a console session's life (tokens.c); 8 h */
	long http_idle_ms;           /* 0: HTTP_IDLE_MS_DEFAULT */
	long http_max_connections;   /* 0: from the fd limit (docs/http.md) */
	long http_max_per_address;   /* 0: an eighth of the above */

	char *rules_dir;             /* NULL: the built-in default rule */
	double overbook;

	double sms_segment_price;    /* reports' SMS cost per segment; < 0: not set */
	/* [attribution] (docs/attribution.md §2): how long after a push's click, or
	 * after it was sent, an order is credited to it */
	long click_window_s;
	long delivery_window_s;
	long guard_audience;         /* [guards] a deal for more recipients waits for a
	                              * confirmation; 0: no limit */
	double guard_cost;           /* [guards] likewise above this SMS cost (one segment
	                              * a recipient at sms_segment_price); 0: no limit */

	long inbound_finish_after_s; /* [inbound] finish_after_s: an opt-out or opt-in
	                              * whose steps were cut short (docs/sharding.md 4f)
	                              * is finished by the notifier this long after it
	                              * began, retried by Twilio or not */
	char *optout_words;          /* [inbound] more opt-out keywords, comma-separated
	                              * (kw_extra_add); NULL: the built-in ones only */
	char *optout_fillers;        /* [inbound] more words allowed around them */

	/* [signup] sign-up by text (docs/inbound.md section 5); keywords NULL: off. */
	char *signup_keywords;       /* "JOIN, DEALS LAPTOP: laptops, OFERTAS: @es" */
	char *signup_program;        /* the program's name in every text; NULL: default */
	char *signup_terms_url;      /* terms and privacy, in the confirmation request */
	char *signup_timezone;       /* a new subscriber's zone when its number has none */
	long signup_max_per_week;    /* the message frequency the texts promise */
	long signup_max_requests;    /* confirmation requests a number gets in 24 h */
	long signup_confirm_ttl_s;   /* how long a "Y" is waited for */

	long proof_retention_days;   /* [privacy] an erased subscriber's proof of consent */

	struct quiet_rules quiet;    /* [compliance]: the built-in rows of windows and caps
	                              * by place, and the operator's rows (quiet.h) */

	struct gw_config gateways[CONFIG_GATEWAYS_MAX];
	size_t ngateways;
};

/*
 * Reads and validates path. Every problem is written to errout (when not NULL) as
 * "path:line: key: message", all of them, not just the first. Returns the config,
 * or NULL when the file cannot be read or any key is bad. The caller frees it.
 */
struct config *config_load(const char *path, FILE *errout);

/* Frees c and every string it owns (secrets are wiped first). NULL does nothing. */
void config_free(struct config *c);

/* The checks of keys against each other that belong to no one section, given the
 * largest gateway timeout (config_cross.c, called by config_load). */
void config_cross_check(const struct config *c, long gw_timeout_max,
    void (*report)(void *arg, const char *key, const char *msg), void *arg);

/* http.link_base: made "<public_url>/c" when not set (public_url set), and its path
 * checked as a route of its own (shortlink_route). report as above; on OOM the key
 * is reported (config_cross.c, called by config_load). */
void config_link_check(struct config *c, void (*report)(void *arg, const char *key,
    const char *msg), void *arg);

/* The cross-checks of the [signup] keys (config_signup.c, called by config_load). */
void config_signup_check(const struct config *c, void (*report)(void *arg,
    const char *key, const char *msg), void *arg);

/* The [cluster] keys against each other, and settle_ms's default (config_cluster.c,
 * called by config_load). The shards of cluster.shards are checked against the
 * stored layout's count at start-up. */
void config_cluster_check(struct config *c, void (*report)(void *arg,
    const char *key, const char *msg), void *arg);

/* The defaults of the [redis] keys (0, or -1 on OOM), and their cross-checks:
 * report(arg, key, message) for each problem found (config_redis.c, called by
 * config_load). */
int config_redis_defaults(struct config *c);
void config_redis_check(const struct config *c, void (*report)(void *arg,
    const char *key, const char *msg), void *arg);

#endif
