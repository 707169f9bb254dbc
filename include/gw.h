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
	GW_OPTED_OUT,       /* the provider says the recipient opted out (twilio 21610) */
	GW_RETRY,           /* 5xx, reset, timeout: may succeed later */
	GW_RATE_LIMITED     /* 429: wait retry_after_s, then retry */
};

struct gw_result {
	enum gw_outcome outcome;
	int http_status;              /* 0 when no response */
	int provider_code;            /* twilio "code", 0 when none */
	int maybe_delivered;          /* 1 when the request may have reached the provider */
	long retry_after_s;           /* -1 when not given */
	char provider_id[64];         /* twilio sid, DM event id; "" when none */
	char detail[256];             /* human-readable; never a secret or a full number */
};

/* Called exactly once per successful gw_send, cancelled = 1 when the client shuts
 * down before an answer. res is borrowed. */
typedef void gw_done_fn(void *arg, const struct gw_result *res, int cancelled);

/* Returns a gateway sending through h (borrowed; must outlive the gateway), or NULL
 * with *err naming the bad config key. cfg is borrowed too. */
struct gw *gw_new(struct httpc *h, const struct gw_config *cfg, struct err *err);

/* Frees the gateway; requests in flight belong to the httpc and still complete.
 * gw_free(NULL) does nothing. */
void gw_free(struct gw *g);

/* Sends msg. Returns 0 (done will be called) or -1 with *err (done never called). */
int gw_send(struct gw *g, const struct gw_message *msg, gw_done_fn *done, void *arg,
    struct err *err);

const struct gw_config *gw_config_of(const struct gw *g);

/* "twilio", "x-dm", "webhook"; -1 from gw_kind_from_name for an unknown name. */
const char *gw_kind_name(enum gw_kind k);
int gw_kind_from_name(const char *name);

#endif
