/*
 * hooks.h: inbound webhooks (stage: http): Twilio status callbacks, inbound SMS
 * (STOP/START/HELP) and the signed inbound endpoint of the x-dm and webhook channels.
 *
 * Every request is verified before anything changes (X-Twilio-Signature against
 * http.public_url, or X-Dealpush-Signature with http.inbound_secret); each change is one
 * Lua script, and the answer goes out only after it succeeded. See docs/hooks.md.
 */
#ifndef DEALPUSH_HOOKS_H
#define DEALPUSH_HOOKS_H

#include "err.h"

struct app;
struct hooks;

/* Text of the one confirmation sent after an SMS opt-out, and the HELP answer. */
#define HOOKS_CONFIRM_TEXT \
	"You're unsubscribed from dealpush deals. Reply START to resubscribe."
#define HOOKS_HELP_TEXT \
	"dealpush deals: reply STOP to unsubscribe, START to resubscribe. " \
	"Msg and data rates may apply."

/* Seconds during which a repeated opt-out from the same number gets no second
 * confirmation. */
#define HOOKS_CONFIRM_DEDUPE_S 60
/* Allowed distance between X-Dealpush-Timestamp and our clock, in seconds. */
#define HOOKS_SKEW_MAX_S 300
/* Most subscribers one phone number or DM handle may act on in one message. */
#define HOOKS_IDS_MAX 16

/* Registers POST /hooks/twilio/status, /hooks/twilio/inbound and /hooks/inbound/<ch>
 * on app->http. app is borrowed and must outlive the handle. When app->http is NULL
 * nothing is registered and an empty handle is returned. Returns the handle, or NULL
 * with *err (ERR_NOMEM, or the gateway's error when the confirmation gateway cannot
 * be built), already logged. Routes are registered last: after a failure some may still point at
 * the freed handle, so the caller must free the server before the loop runs again
 * (main.c does: a start-up failure ends the process). */
struct hooks *hooks_start(const struct app *app, struct err *err);

/* Puts into ids (at most max, borrowed until the index is next rebuilt, so copy
 * them before returning to the loop) the subscribers whose number is phone (E.164)
 * in the mirror, by the index the inbound hooks use. Returns how many, -2 when the
 * mirror is not loaded yet, or -1 when out of memory. */
int hooks_subs_of_phone(struct hooks *h, const char *phone, const char **ids,
    size_t max);

/* Detaches every request still waiting for Redis (the server answers them 503 when it
 * is freed, which must come after this) and frees the handle and its phone index.
 * Confirmation texts in flight complete on their own. hooks_free(NULL) does nothing. */
void hooks_free(struct hooks *h);

#endif
