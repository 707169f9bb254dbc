/*
 * hooks_int.h: what the webhook files share inside the hooks module (stage: http):
 * the module's state, a request waiting for Redis, the phone / DM index, the decoded
 * form, and each file's entry points. Private to hooks.c, hooks_status.c and
 * hooks_inbound.c; the public face is include/hooks.h.
 */
#ifndef DEALPUSH_HOOKS_INT_H
#define DEALPUSH_HOOKS_INT_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "durable.h"
#include "keywords.h"
#include "rconn.h"
#include "signup.h"
#include "twsig.h"

struct app;
struct event;
struct gw;
struct http_req;

#define HOOKS_INDEX_MAX_AGE_MS 1000   /* the phone / DM index is rebuilt when older */
#define HOOKS_INDEX_MIN_AGE_MS 100    /* ... and never younger */
#define HOOKS_PUSH_MAX 256            /* bytes of a push id in a status callback */
#define HOOKS_CONFIRM_PREFIX "optout-" /* push id of a confirmation text */
#define HOOKS_TWIML_EMPTY "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
#define HOOKS_TWIML_CT "text/xml; charset=utf-8"
#define HOOKS_SID_MAX 64              /* bytes of a MessageSid kept for replays */

enum hooks_ix_kind {
	HOOKS_IX_PHONE = 0,
	HOOKS_IX_DM,
	HOOKS_IX_COUNT
};

enum hooks_op_kind {
	HOOKS_OP_STATUS,
	HOOKS_OP_SMS,
	HOOKS_OP_DM
};

/* Open addressing; a slot holds the key's hash and a copy of the subscriber id. The
 * key itself is checked against the mirror on lookup, so it is not kept. */
struct hooks_ix_slot {
	uint64_t hash;
	char *id;                       /* NULL: empty slot */
};

struct hooks_ix {
	struct hooks_ix_slot *slots;
	size_t cap;                     /* a power of two; 0 before the first build */
	int64_t built_ms;               /* monotonic */
	uint64_t built_seq;             /* the mirror's change count it was built at */
};

/* One request waiting for a script's reply. h and r are NULL once hooks_free has
 * detached it: the reply then only frees the op. */
struct hooks_op {
	struct hooks *h;
	struct http_req *r;
	struct hooks_op *prev, *next;
	enum hooks_op_kind kind;
	enum kw_kind kw;
	int locale;                     /* the keyword's language (signup.h), -1: none */
	char from[24];                  /* E.164 of an SMS sender */
};

struct hooks {
	const struct app *app;
	const char *tokens[CONFIG_GATEWAYS_MAX]; /* Twilio auth tokens (borrowed) */
	size_t ntokens;
	struct gw *confirm_gw;          /* NULL: no Twilio SMS gateway, no confirmation */
	struct hooks_op *ops;
	struct hooks_ix ix[HOOKS_IX_COUNT];
	struct kw_extra words;          /* [inbound] optout_words and optout_fillers */
	struct signup_keyword signup[SIGNUP_KEYWORDS_MAX]; /* [signup] keywords */
	size_t nsignup;                 /* 0: sign-up by text is off */
	struct signup_vars texts;       /* what the notifier's own texts say */
	/* Refused webhooks: counted here, written and logged at most once a second. */
	struct event *refused_flush;
	struct event *pending_tick;     /* hooks_pending.c: the walk of the messages cut
	                                 * short */
	unsigned long refused[2];       /* ORDER HOOKS_REFUSED: bad_signature, bad_form */
	unsigned long refused_logged;   /* refusals not yet in a log line */
	int64_t refused_log_ms;
};

/* Decoded form fields; names and values point into buf. */
struct hooks_form {
	char *buf;
	struct twsig_param p[TWSIG_PARAMS_MAX];
	size_t n;
};

/* ---- hooks.c ---- */

/* Counts what in stats (hook:<what>), best effort. */
void hooks_count(struct hooks *h, const char *what);

/* A refused webhook (kind: 0 bad signature, 1 bad form), counted and logged at most
 * once a second. */
void hooks_refuse(struct hooks *h, int kind, const char *hook, const char *reason);

/* 1 when s is min to max decimal digits and nothing else, else 0. */
int hooks_all_digits(const char *s, size_t min, size_t max);

/* The value of a hex digit, or -1. */
int hooks_hexval(int c);

/* Puts into ids (at most max, borrowed from the index until its next rebuild) the
 * subscribers whose phone (or DM handle) is key in the mirror. Returns how many, or
 * -1 when the index could not be built (out of memory). */
int hooks_ix_lookup(struct hooks *h, enum hooks_ix_kind kind, const char *key,
    const char **ids, size_t max);

/* A request waiting for Redis, linked into h->ops; NULL when out of memory. */
struct hooks_op *hooks_op_new(struct hooks *h, struct http_req *r,
    enum hooks_op_kind kind);

/* Unlinks op (if still attached) and frees it. */
void hooks_op_free(struct hooks_op *op);

/* The value of form field name, or NULL. */
const char *hooks_form_get(const struct hooks_form *f, const char *name);

/* Parses the form body and checks X-Twilio-Signature against every Twilio auth token.
 * Returns 0 with *f filled, or -1 after answering r (400 bad form, 403 unverified,
 * 503 not configured); f->buf is the caller's to free either way. */
int hooks_twilio_check(struct hooks *h, struct http_req *r, struct hooks_form *f,
    const char *what);

/* ---- hooks_status.c ---- */

/* POST /hooks/twilio/status (arg: the hooks). */
void hooks_on_status(struct http_req *r, void *arg);

/* ---- hooks_inbound.c ---- */

/* POST /hooks/twilio/inbound (arg: the hooks). */
void hooks_on_sms_inbound(struct http_req *r, void *arg);

/* An inbound SMS, verified and classified. Strings borrowed. */
struct hooks_sms {
	const char *from;               /* the sender as Twilio gave it */
	const char *sid;                /* MessageSid, "" for none */
	const char *body;
	size_t blen;
	enum kw_kind kw;
	char matched[KW_MATCHED_MAX];   /* the keyword label */
};

/* What an inbound SMS does without sign-up: an opt-out, an opt-in, or a reply kept
 * for review (hook_consent.lua); answers r once it is in force. */
void hooks_sms_consent(struct hooks *h, struct http_req *r, const struct hooks_sms *sms);

/* Answers r with TwiML saying message (escaped), or with none when NULL. */
void hooks_twiml(struct http_req *r, const char *message);

/* Answers r with text t of the notifier's own, in language loc. */
void hooks_answer_text(struct hooks *h, struct http_req *r, enum signup_text t,
    enum signup_locale loc);

/* ---- hooks_signup.c ---- */

/* The language of the number's subscribers (the first that has one), or -1. */
int hooks_phone_locale(struct hooks *h, const char *phone);

/* A sign-up keyword k from the number from: the confirmation request, or nothing
 * past the day's limit. Answers r (503 when Redis fails). */
void hooks_signup_ask(struct hooks *h, struct http_req *r, const char *from,
    const char *sid, const struct signup_keyword *k);

/* A "Y" (answer: its normalized word) from sms->from: the subscriber and the welcome
 * text when a request is open, else what sms is without sign-up. Copies sms.
 * Returns 0 (r will be answered), or -1 when out of memory or Redis is not connected
 * (r untouched). */
int hooks_signup_yes(struct hooks *h, struct http_req *r, const struct hooks_sms *sms);

/* One inbound message for hook_consent.lua (ORDER HOOK_CONSENT_KEYS). */
struct hooks_msg {
	const char *ch;                 /* "sms" | "dm" */
	const char *label;              /* the keyword label, or a reply's reason */
	const char *match, *value;      /* "phone" | "dm" | "id", what it must still be */
	const char *ack;                /* the confirmation dedupe key, "" for none */
	const char *sid;                /* MessageSid, "" for none */
	const char *text;               /* the body, for a reply kept for review */
	size_t text_len;
};

/*
 * Applies m's opt-out or opt-in to the ids of its sender (hooks_consent.c:
 * hook_phone.lua on the number's slot, hook_consent.lua on each shard of the ids,
 * hook_phone.lua again; a reply kept for review is hook_reply.lua) and keeps op until
 * it is done: cb runs once, with a reply { found, changed, confirm, duplicate } of
 * the whole message (found and changed summed over the shards; duplicate when the
 * message had been applied already), or with the first failing reply (NULL for a
 * failure without one: a lost connection, a step not durable, the hooks freed
 * between two steps). It may run before this returns, when there is nothing to do.
 * Copies what it needs of m and ids. Returns 0, or -1 when Redis is not connected or
 * out of memory (op untouched, cb never runs).
 */
int hooks_consent_call(struct hooks_op *op, const struct hooks_msg *m, const char **ids,
    size_t nids, rconn_reply_fn *cb);

/* Runs the embedded script name on the connection of the hooks, with WAIT behind it
 * ([redis] wait_replicas; durable.h): the steps of an inbound message that the next
 * step or the webhook's 200 count on. 0, or -1 (cb never runs). */
int hooks_script_durable(struct hooks *h, const char *name, int nkeys, int nargs,
    const char **args, durable_fn *cb, void *arg);

/* Sends the opt-out confirmation text to phone in language loc (-1: the number's
 * subscribers' or English), through the first Twilio SMS gateway; best effort. */
void hooks_confirm_send(struct hooks *h, const char *phone, int loc);

/* The walk that finishes the inbound opt-outs and opt-ins whose steps were cut short
 * (hooks_pending.c): started with the hooks, stopped by hooks_pending_stop. */
int hooks_pending_start(struct hooks *h);
void hooks_pending_stop(struct hooks *h);

/* POST /hooks/inbound/<channel> (arg: the hooks). */
void hooks_on_dm_inbound(struct http_req *r, void *arg);

#endif
