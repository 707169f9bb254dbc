/*
 * gw.h: gateway clients, one wire format each (stage: send).
 *
 * A gateway turns one message into one HTTP request in its provider's format (twilio:
 * form-encoded + Basic auth; x-dm: JSON + Bearer; webhook: JSON + Idempotency-Key +
 * HMAC-SHA256 signature) and classifies the answer. It never retries, queues or
 * decides policy: deliver.c does. It never logs a token, a signature or a full number.
 */
#ifndef DEALPUSH_GW_H
#define DEALPUSH_GW_H

#include <stdint.h>

#include "err.h"
#include "model.h"

struct httpc;
struct gw;
struct xauth;

enum gw_kind {
	GW_TWILIO = 0,
	GW_XDM,
	GW_WEBHOOK
};

/* Filled by config.c; strings are owned by the config and outlive the gateway. */
struct gw_config {
	char *name;                   /* config section name, e.g. "twilio" */
	enum gw_kind kind;
	enum channel channel;
	int priority;                 /* lower = tried first */
	char *base_url;               /* twilio, x-dm: "http://127.0.0.1:8025" */
	char *url;                    /* webhook: full URL */
	char *account_sid;            /* twilio */
	char *from;                   /* twilio: From (E.164) ... */
	char *messaging_service_sid;  /* ... or MessagingServiceSid */
	char *status_callback_base;   /* twilio: public base URL of our /hooks/twilio/status */
	char *secret;                 /* twilio auth token, x-dm bearer, webhook HMAC key */
	long timeout_ms;
	long connect_timeout_ms;
	double rate_per_s;            /* token bucket; 0 = unlimited */
	double burst;
	long max_in_flight;
	long daily_budget;            /* requests per UTC day, whole app; 0 = none */
	long recipient_daily_budget;  /* per recipient per UTC day; 0 = none */
	/* x-dm user-context auth (xauth.h). */
	char *auth;                   /* "static" (NULL): secret is a user access token;
	                               * "oauth2": a refreshed pair shared in Redis */
	char *token_url;              /* oauth2; NULL = {base_url}/2/oauth2/token */
	char *client_id;              /* oauth2 */
	char *client_secret;          /* oauth2, secret; NULL = a public client */
	char *refresh_token;          /* oauth2, secret: the first refresh token, used
	                               * only while Redis holds no pair */
	long refresh_margin_s;        /* oauth2: refresh this long before the expiry;
	                               * 0 = XAUTH_MARGIN_DEFAULT_S */
	struct xauth *xauth;          /* not from the file: set by the daemon before any
	                               * gw_new; NULL = secret as the bearer */
};

/* One message to one recipient. Strings are borrowed for the duration of gw_send. */
struct gw_message {
	const char *push_id;          /* "<deal entry id>:<subscriber id>:<channel>" */
	const char *to;               /* E.164 phone (sms) or provider user id (dm) */
	const char *text;
	int64_t expires_at;           /* epoch seconds */
	int64_t now;                  /* epoch seconds */
	long timeout_cap_ms;          /* > 0: the request's deadline never exceeds this
	                               * (the sender's lease left); 0 = none */
};

enum gw_outcome {
	GW_SENT = 0,        /* 2xx: accepted by the provider */
	GW_PERMANENT,       /* 4xx: will never succeed */
	GW_OPTED_OUT,       /* the provider says the recipient opted out (twilio 21610;
	                     * x-dm: the recipient does not take DMs from us) */
	GW_RETRY,           /* 5xx, reset, timeout: may succeed later */
	GW_RATE_LIMITED     /* 429, or x-dm credentials refused (auth_failed): the
	                     * gateway pauses retry_after_s, the push is retried */
};

struct gw_result {
	enum gw_outcome outcome;
	int http_status;              /* 0 when no response */
	int provider_code;            /* twilio "code", 0 when none */
	int maybe_delivered;          /* 1 when the request may have reached the provider */
	long retry_after_s;           /* -1 when not given */
	int auth_failed;              /* 1: the provider refused our credentials (x-dm
	                               * 401, or a 403 that is not the recipient's);
	                               * never a statement about the recipient */
	char provider_id[64];         /* twilio sid, DM event id; "" when none */
	char detail[256];             /* human-readable; never a secret or a full number */
};

/* Called exactly once per successful gw_send, cancelled = 1 when the client shuts
 * down before an answer. res is borrowed. */
typedef void gw_done_fn(void *arg, const struct gw_result *res, int cancelled);

/* The checks of one gateway's keys that need no running daemon (kind and channel
 * agree, URLs are http(s) URIs (uri.h), sids, sender, secret): config.c runs them for
 * --check-config and start-up alike, gw_new again. 0, or -1 with *err naming the
 * first bad key as "gateway.NAME.KEY". */
int gw_config_check(const struct gw_config *cfg, struct err *err);

/* Returns a gateway sending through h (borrowed; must outlive the gateway), or NULL
 * with *err naming the bad config key. cfg is borrowed too. */
struct gw *gw_new(struct httpc *h, const struct gw_config *cfg, struct err *err);

/* Frees the gateway; requests in flight belong to the httpc and still complete.
 * gw_free(NULL) does nothing. */
void gw_free(struct gw *g);

/* Sends msg. Returns 0 (done will be called) or -1 with *err (done never called);
 * err kind ERR_TEMP (code "auth_paused") when an x-dm gateway has no usable token
 * now: nothing was sent, try again later. */
int gw_send(struct gw *g, const struct gw_message *msg, gw_done_fn *done, void *arg,
    struct err *err);

const struct gw_config *gw_config_of(const struct gw *g);

/* The HTTP client g sends through (borrowed, as given to gw_new). */
struct httpc *gw_client_of(const struct gw *g);

/* "twilio", "x-dm", "webhook"; -1 from gw_kind_from_name for an unknown name. */
const char *gw_kind_name(enum gw_kind k);
int gw_kind_from_name(const char *name);

/* ---- Twilio lookups (notifier/gwfind.c): did a message reach Twilio? ----
 * GET .../Messages.json?To=<to>&From=<from> (or To alone, matching the messaging
 * service, when the gateway has no From), newest first, a few pages at most. A message
 * matches when it is outbound, to exactly q.to, from the gateway's From (or its
 * messaging service), has exactly the body q.text and was created at or after
 * q.not_before. The answer is hostile input: parsed with cJSON, every type checked,
 * pages and items capped, next_page_uri followed only under our own account's path. */

#define GW_FIND_PAGE_SIZE 20          /* messages per page (keeps a page under the cap
                                       * of an httpc answer) */
#define GW_FIND_PAGES_MAX 3
#define GW_FIND_ITEMS_MAX 1000        /* items looked at on one page */
#define GW_FIND_URI_MAX 1024

struct gw_find_query {
	const char *to;               /* E.164 */
	const char *text;             /* the body exactly as sent; not empty */
	int64_t not_before;           /* epoch s, the provider's clock: when the attempt
	                               * started, less the clock skew allowed */
	long timeout_ms;              /* deadline of each page's request; 0 = the
	                               * gateway's timeout_ms */
};

enum gw_find_outcome {
	GW_FIND_FOUND = 0,            /* exactly one message matches: sid */
	GW_FIND_NOT_FOUND,            /* none on the pages looked at (never proof) */
	GW_FIND_AMBIGUOUS,            /* two or more match: which one is ours is unknown */
	GW_FIND_ERROR                 /* no usable answer: look again later */
};

struct gw_find_result {
	enum gw_find_outcome outcome;
	int matches;
	int pages;                    /* pages read */
	char sid[64];                 /* the first match (newest); "" when none */
	char detail[256];             /* why, for an error; never a number or a token */
};

/* What the pages read so far say; zero it before the first page. */
struct gw_find_scan {
	int matches;                  /* distinct sids matching */
	char sid[64];                 /* the first match seen (the newest) */
	int older_seen;               /* a message created before not_before was seen:
	                               * the pages after it are older still */
	char next[GW_FIND_URI_MAX];   /* next_page_uri to follow; "" = none */
};

/* Pure: reads one list page (body[0..len)) for q against the gateway cfg (its
 * account_sid, from, messaging_service_sid) and adds to *st. Items that are not
 * objects, lack a field or have a date that does not parse are skipped. Returns 0, or
 * -1 with *err when the page is not a JSON object with a "messages" array. */
int gw_twilio_scan_page(const struct gw_config *cfg, const struct gw_find_query *q,
    const char *body, size_t len, struct gw_find_scan *st, struct err *err);

/* Called exactly once per successful gw_twilio_find; cancelled = 1 when the client
 * shuts down first (res->outcome is then GW_FIND_ERROR). res is borrowed. */
typedef void gw_find_fn(void *arg, const struct gw_find_result *res, int cancelled);

/* Looks q up through the Twilio gateway g (strings are copied). Returns 0 (done will
 * be called) or -1 with *err (done never called): not a Twilio gateway, bad query,
 * out of memory. g may be freed while the lookup runs. */
int gw_twilio_find(struct gw *g, const struct gw_find_query *q, gw_find_fn *done,
    void *arg, struct err *err);

#endif
