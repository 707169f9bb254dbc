/*
 * gwsim.h: the gateway simulator's internal interface (test tool, stage: send).
 *
 * gwsim stands in for Twilio, X DMs and a webhook receiver on 127.0.0.1: it checks each
 * request against the provider's published contract, answers like the provider, logs
 * every request as one JSON line and injects faults (latency, errors, down, reset).
 * Everything runs on one libevent loop. It must never sleep, never bind or connect to
 * anything but loopback (the opt-in status callbacks included) and never crash on
 * hostile input: bad input is answered with a 4xx.
 * This header is private to tests/gwsim/; nothing outside includes it.
 */
#ifndef DEALPUSH_GWSIM_H
#define DEALPUSH_GWSIM_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct event_base;
struct evhttp;
struct evhttp_request;
struct event;

#define GWSIM_BODY_MAX        (64 * 1024)    /* our cap; larger bodies get 413 */
#define GWSIM_HARD_BODY_MAX   (1024 * 1024)  /* libevent's cap; refused unlogged */
#define GWSIM_LATENCY_MAX_MS  60000L
#define GWSIM_ANSWERS_MAX     4096
#define GWSIM_IDEM_KEY_MAX    255
#define GWSIM_IDEM_MAX        200000         /* remembered keys; the store is emptied when full */
#define GWSIM_STATUS_MAX      600
#define GWSIM_CALLBACKS_MAX   10000          /* messages with callbacks still to send */
#define GWSIM_CALLBACK_TIMEOUT_MS 5000L      /* deadline of one status callback POST */
#define GWSIM_MESSAGES_MAX    1000000        /* remembered messages; the oldest half goes when full */
#define GWSIM_PAGE_SIZE_MAX   1000           /* the list's PageSize cap (Twilio's) */
#define GWSIM_PAGE_SIZE_DEFAULT 50

/* One --answer / "answers" entry: every message to key gets code. */
struct gwsim_answer {
	char *key;      /* E.164 number or X participant id; owned */
	long code;      /* Twilio code (e.g. 21610) or HTTP status (400..599) */
};

/* The fault settings; replaced as a whole by POST /_sim/faults. */
struct gwsim_faults {
	long latency_ms;
	double fail_rate;
	int down;
	int reset;
	struct gwsim_answer *answers;   /* owned array */
	size_t nanswers;
};

struct gwsim_stats {
	uint64_t received;
	uint64_t accepted;
	uint64_t refused;
	uint64_t by_status[GWSIM_STATUS_MAX];   /* 0 = connection reset, no answer */
};

/* One --deliver entry: the final status callback of every message to key. */
struct gwsim_deliver {
	char *key;              /* E.164 number; owned */
	const char *status;     /* "delivered", "undelivered", "failed" or "sent"; static */
	long error_code;        /* Twilio ErrorCode of the final callback; 0 = none */
};

/* One message answered 201, kept for GET .../Messages.json (gwsim_list.c). */
struct gwsim_msg {
	char sid[40];
	char *to;               /* owned, as sent (validated E.164) */
	char *from;             /* owned; NULL when the request had none */
	char *mss;              /* owned MessagingServiceSid; NULL when none */
	char *body;             /* owned, cleaned to UTF-8 */
	int64_t created_ms;     /* arrival of the POST, epoch ms */
	int64_t sent_ms;        /* the "sent" status callback, epoch ms; -1 = not sent */
	const char *status;     /* "queued", or the last status callback's; static */
	int segments;
};

struct gwsim_idem;     /* webhook Idempotency-Key store (gwsim_webhook.c) */
struct gwsim_pending;  /* a reply waiting on an evtimer (gwsim_reply.c) */
struct gwsim_cb;       /* one message's status callbacks (gwsim_callback.c) */
struct gwsim_xoauth;   /* X user tokens and refresh (gwsim_xoauth.c) */

/* What an X DM request's Authorization is. */
enum gwsim_xauth {
	GWSIM_XAUTH_OK = 0,     /* a user access token that has not expired */
	GWSIM_XAUTH_NONE,       /* no Bearer header */
	GWSIM_XAUTH_APP_ONLY,   /* the app-only bearer: X answers 403 */
	GWSIM_XAUTH_EXPIRED,    /* a user token past its expiry: 401 */
	GWSIM_XAUTH_UNKNOWN     /* anything else: 401 */
};

struct gwsim {
	/* configuration: strings borrowed from argv */
	long port;
	const char *port_file;
	const char *log_path;
	const char *account_sid;
	const char *auth_token;
	const char *bearer_token;       /* X app-only bearer: refused for DMs (403) */
	const char *user_token;         /* X OAuth 2.0 user token that never expires */
	const char *client_id;          /* X OAuth 2.0 client (token endpoint) */
	const char *client_secret;      /* "" = a public client */
	const char *refresh_token;      /* the first valid refresh token */
	long token_ttl_s;               /* expires_in of refreshed access tokens */
	const char *webhook_secret;
	uint64_t seed;
	int print;
	int quiet;
	int status_callbacks;           /* --status-callbacks */
	long callback_delay_ms;         /* --callback-delay-ms */
	struct gwsim_deliver *deliver;  /* --deliver entries; owned array */
	size_t ndeliver;
	struct gwsim_faults initial;    /* from the command line; /_sim/reset restores it */

	/* state */
	struct gwsim_faults faults;
	struct gwsim_stats stats;
	uint64_t rng;                   /* splitmix64 state */
	uint64_t id_mix;                /* seed and pid mixed; keeps ids unique per process */
	uint64_t id_counter;
	int log_fd;
	struct event_base *base;
	struct evhttp *http;
	struct event *sigint_ev;
	struct event *sigterm_ev;
	struct gwsim_pending *pending;  /* list of delayed replies and deferred resets */
	struct gwsim_idem *idem;
	struct gwsim_xoauth *xoauth;
	struct gwsim_cb *callbacks;     /* messages whose status callbacks are not all sent */
	size_t ncallbacks;
	struct gwsim_msg *msgs;         /* every accepted Twilio message, oldest first */
	size_t nmsgs;
	size_t capmsgs;
};

/* One request being answered. Lives on the handler's stack; the log line is written
 * by gwsim_finish(). */
struct gwsim_call {
	struct gwsim *sim;
	struct evhttp_request *req;
	const char *gateway;   /* "twilio", "x-dm", "webhook", "control", "unknown" */
	const char *channel;   /* for --print: "sms", "dm", "hook"; NULL = never printed */
	int64_t ts_ms;         /* arrival, wall clock */
	cJSON *log;            /* the log line being built; NULL after out-of-memory */
	long code;             /* provider error code; 0 = none (logged as null) */
	int auth_ok;
	const char *fault;     /* "down", "reset", "fail_rate", "answer" or NULL */
	int64_t landed_ms;     /* -1 = unknown */
	char *print_to;        /* owned: recipient for --print */
	char *print_text;      /* owned: text for --print */
};

/* ---- gwsim_form.c: application/x-www-form-urlencoded ---- */

struct form_field {
	char *key;
	char *val;
};

struct form {
	struct form_field *fields;
	size_t n;
	size_t cap;
};

#define FORM_FIELDS_MAX 1000

/* Percent-decodes in[0..len) ('+' is a space) into a new NUL-terminated string in
 * *out (caller frees). Returns 0, -1 on a malformed escape, a %00 or a raw NUL (nothing
 * allocated), -2 when out of memory. */
int form_decode(const char *in, size_t len, char **out);

/* Parses body[0..len) into f (which must be zeroed). Returns 0, -1 when malformed or
 * over FORM_FIELDS_MAX fields, -2 when out of memory; on error f holds what was parsed
 * and must still be freed with form_free(). */
int form_parse(struct form *f, const char *body, size_t len);

/* Returns the value of the first field named key, or NULL. Borrowed from f. */
const char *form_get(const struct form *f, const char *key);

/* Frees what f holds and zeroes it. */
void form_free(struct form *f);

/* ---- gwsim_check.c: validators and small text helpers (no I/O) ---- */

/* 1 when s matches ^\+[1-9]\d{1,14}$, else 0. */
int gwsim_is_e164(const char *s);

/* 1 when s is prefix (2 letters) followed by exactly 32 hex digits, else 0. */
int gwsim_is_sid(const char *s, const char *prefix);

/* 1 when s is minlen..maxlen ASCII digits, else 0. */
int gwsim_is_digits(const char *s, size_t minlen, size_t maxlen);

/* 1 when s is an absolute http:// or https:// URL with a host and no spaces. */
int gwsim_is_http_url(const char *s);

/* Number of code points in s, counting each invalid byte as one. */
size_t gwsim_utf8_len(const char *s);

/* A copy of s[0..len) with invalid UTF-8 and NULs replaced by U+FFFD, or NULL when out
 * of memory. Caller frees. */
char *gwsim_utf8_clean(const char *s, size_t len);

/* Twilio's segment count for body: GSM-7 160/153, otherwise UCS-2 70/67. */
int gwsim_segments(const char *body);

/* Writes the masked phone/id into out: first 5 and last 4 characters kept, the middle
 * replaced by "•••"; 9 characters or fewer keep the first 3. Always NUL-terminates. */
void gwsim_mask(const char *s, char *out, size_t outlen);

/* From a StatusCallback URL, the decoded "push" query value in *push (caller frees;
 * NULL when absent) and its leading decimal digits in *landed_ms (-1 when none).
 * Returns 0, or -1 when out of memory (*push NULL). */
int gwsim_push_from_url(const char *url, char **push, int64_t *landed_ms);

/* The leading decimal digits of s (at most 18) as ms, or -1 when there are none. */
int64_t gwsim_leading_ms(const char *s);

/* Parses s as a whole decimal long within [lo, hi]. Returns 0 or -1. */
int gwsim_parse_long(const char *s, long lo, long hi, long *out);

/* ---- gwsim_reply.c: answering, logging, stats, faults at answer time ---- */

/* Starts a call: arrival time, an all-null log line in the documented key order. */
void gwsim_call_init(struct gwsim_call *c, struct gwsim *sim, struct evhttp_request *req,
    const char *gateway);

/* Sets a log field: a string (sanitised to UTF-8; NULL → null), an integer or null
 * (is_null), a bool. Silently does nothing after out-of-memory. */
void gwsim_log_str(struct gwsim_call *c, const char *key, const char *val);
void gwsim_log_int(struct gwsim_call *c, const char *key, int64_t val, int is_null);
void gwsim_log_bool(struct gwsim_call *c, const char *key, int val);

/* Adds an output header to the reply. */
void gwsim_header(struct gwsim_call *c, const char *key, const char *val);

/* Answers status with the JSON in body (takes ownership; NULL = out of memory → 500)
 * as content_type (NULL = application/json). delay: 1 to apply the latency fault.
 * Returns the status answered (500 when the body could not be built). */
int gwsim_reply_json(struct gwsim_call *c, int status, cJSON *body,
    const char *content_type, int delay);

/* Closes the connection without an answer (the "reset" fault); logs status 0. */
void gwsim_reply_reset(struct gwsim_call *c);

/* Applies the down/reset faults for a message endpoint. Returns 1 when the call has
 * been answered (503 or reset), else 0. answer_503 builds the provider's 503 body. */
int gwsim_fault_gate(struct gwsim_call *c, cJSON *(*answer_503)(struct gwsim_call *));

/* 1 when the fail-rate draw says this accepted request must fail, else 0. */
int gwsim_fault_fail(struct gwsim *sim);

/* The configured answer code for key, or 0. */
long gwsim_answer_for(const struct gwsim *sim, const char *key);

/* Maps an answer code to the HTTP status and Twilio code it stands for. Returns 0, or
 * -1 when code is not an accepted answer code. */
int gwsim_answer_map(long code, int *http_status, long *twilio_code);

/* Appends line as one JSON line to the log (one write); a failure is reported on
 * stderr, never fatal. NULL writes an out-of-memory line. line stays the caller's. */
void gwsim_log_json(struct gwsim *sim, const cJSON *line);

/* Releases the call's owned data (the log line if it was not written). */
void gwsim_call_done(struct gwsim_call *c);

/* Unique ids: "SM"+32 hex, digits for DM events, "wh_"+24 hex for webhooks. */
void gwsim_new_sid(struct gwsim *sim, const char *prefix, char *out, size_t outlen);
void gwsim_new_digits(struct gwsim *sim, char *out, size_t outlen);

/* Wall clock in ms. */
int64_t gwsim_now_ms(void);

/* Answers every pending reply and reset now and frees the list (shutdown). */
void gwsim_pending_flush(struct gwsim *sim);

/* ---- the endpoints ---- */
void gwsim_twilio_handle(struct gwsim *sim, struct evhttp_request *req, const char *path);
void gwsim_xdm_handle(struct gwsim *sim, struct evhttp_request *req, const char *path);
/* X OAuth 2.0 (gwsim_xoauth.c). init: 0 or -1 (OOM); free(NULL state) does nothing.
 * control: 1 when path was one of /_sim/x, /_sim/x/expire and was answered. */
int gwsim_xoauth_init(struct gwsim *sim);
void gwsim_xoauth_free(struct gwsim *sim);
/* Classifies the request's Bearer token; who gets "app", "user-token-N" (N = 0 for
 * --user-token, else the refresh that issued it) or "" (unknown): never the token. */
enum gwsim_xauth gwsim_xoauth_check(struct gwsim *sim, struct evhttp_request *req,
    char *who, size_t wholen);
void gwsim_xoauth_token(struct gwsim *sim, struct evhttp_request *req);
int gwsim_xoauth_control(struct gwsim_call *c, const char *path);
void gwsim_webhook_handle(struct gwsim *sim, struct evhttp_request *req);
void gwsim_control_handle(struct gwsim *sim, struct evhttp_request *req, const char *path);

/* The request body as a NUL-terminated copy in *out (caller frees) with its length.
 * Returns 0, 1 when over GWSIM_BODY_MAX (nothing allocated), -1 when out of memory. */
int gwsim_body(struct evhttp_request *req, char **out, size_t *len);

/* ---- gwsim_callback.c: Twilio status callbacks (--status-callbacks) ---- */

/* Parses "NUMBER=STATUS[:ERRORCODE]" and adds it to sim->deliver, replacing an entry
 * for the same number. Returns 0, or -1 when malformed, full or out of memory (nothing
 * added). */
int gwsim_deliver_parse(struct gwsim *sim, const char *arg);

/* Frees sim->deliver. */
void gwsim_deliver_clear(struct gwsim *sim);

/* After a 201 for the message sid described by form f: when --status-callbacks is on
 * and f has a StatusCallback, schedules its callbacks, the first after_ms plus the
 * callback delay from now. A URL that is not http:// on loopback is refused and logged;
 * so is anything that cannot be scheduled. Copies what it needs from f. */
void gwsim_callback_schedule(struct gwsim *sim, const struct form *f, const char *sid,
    long after_ms);

/* Drops every callback not yet sent or still in flight, with its connection and timer
 * (shutdown; before the event base is freed). Unsent callbacks are not logged. */
void gwsim_callback_free_all(struct gwsim *sim);

/* ---- gwsim_twilio.c / gwsim_list.c: the Twilio message log ---- */

/* Answers status with Twilio's error JSON {code, message, more_info, status}; delay: 1
 * to apply the latency fault. */
void gwsim_twilio_fail(struct gwsim_call *c, int status, long code, const char *msg,
    int delay);

/* 1 when Authorization is Basic base64(account_sid ":" auth_token) (constant time). */
int gwsim_twilio_auth_ok(struct gwsim *sim, struct evhttp_request *req);

/* Twilio's 503 body for the down fault (sets c->code). */
cJSON *gwsim_twilio_down_json(struct gwsim_call *c);

/* Remembers a message answered 201 (the valid form f, sid, arrival ts_ms). Returns
 * the stored record (valid until the next add), or NULL when out of memory. When the
 * log holds GWSIM_MESSAGES_MAX messages the oldest half is forgotten first. */
const struct gwsim_msg *gwsim_store_add(struct gwsim *sim, const struct form *f,
    const char *sid, int64_t ts_ms);

/* Records a status callback about to be sent for sid ("sent" also sets date_sent).
 * Unknown sids are ignored. */
void gwsim_store_status(struct gwsim *sim, const char *sid, const char *status,
    int64_t now_ms);

/* Frees every stored message (shutdown). */
void gwsim_store_free(struct gwsim *sim);

/* The message resource of m (spec: api.v2010.account.message), or NULL (OOM). */
cJSON *gwsim_message_json(const struct gwsim *sim, const struct gwsim_msg *m);

/* GET /2010-04-01/Accounts/{AccountSid}/Messages.json once the path is known to name
 * our account: faults, auth, the query, then one page of messages, newest first. */
void gwsim_twilio_list(struct gwsim_call *c);

/* ---- gwsim_webhook.c: idempotency store ---- */
struct gwsim_idem *gwsim_idem_new(void);
void gwsim_idem_free(struct gwsim_idem *s);
void gwsim_idem_clear(struct gwsim_idem *s);

/* ---- gwsim_control.c: fault settings ---- */

/* Parses "NUMBER=CODE" into a; returns 0 or -1. a->key is allocated. */
int gwsim_answer_parse(const char *arg, struct gwsim_answer *a);

/* Deep-copies src into dst (dst's old content is not freed). Returns 0 or -1 (OOM). */
int gwsim_faults_copy(struct gwsim_faults *dst, const struct gwsim_faults *src);

/* Frees what f holds and zeroes it. */
void gwsim_faults_clear(struct gwsim_faults *f);

/* Appends a to f->answers, replacing an entry with the same key; takes ownership of
 * a->key on success. Returns 0, -1 when full or out of memory. */
int gwsim_faults_add_answer(struct gwsim_faults *f, struct gwsim_answer *a);

#endif
