/*
 * gw_int.h: what gw.c (config, requests, sending) and gw_answer.c (answers) share
 * inside the gateway clients (stage: send): one send in flight. Private to the two
 * files; the public face is include/gw.h.
 */
#ifndef DEALPUSH_GW_INT_H
#define DEALPUSH_GW_INT_H

#include <stdint.h>

#include "gw.h"

struct httpc_resp;
struct xauth;

#define XDM_ID_DIGITS_MAX 19          /* participant_id: ^[0-9]{1,19}$ */

/* Per send; owns nothing of the gateway, so gw_free may run while it is in flight. */
struct gw_call {
	enum gw_kind kind;
	int64_t now;
	struct xauth *xauth;          /* x-dm: outlives every request (xauth.h) */
	unsigned long auth_gen;       /* the token generation this request carried */
	char to[XDM_ID_DIGITS_MAX + 1]; /* x-dm: the participant id */
	gw_done_fn *done;
	void *arg;
};

/* ---- gw_answer.c ---- */

/* Fills *res (all of it) from the provider's answer r to call c: the outcome, the
 * provider's id and code, and a scrubbed detail. Classifies by the HTTP status when
 * there is one, even if the answer was cut off afterwards. */
void gw_classify(const struct gw_call *c, const struct httpc_resp *r, int cancelled,
    struct gw_result *res);

#endif
