/*
 * xauth.h: the user-context credentials of one x-dm gateway (stage: send).
 *
 * X sends a DM only for a user: an OAuth 2.0 user access token (scopes dm.write,
 * tweet.read, users.read, and offline.access for a refresh token). With auth = oauth2
 * the pair lives in Redis (notifier/lua/xauth.lua), shared by every notifier: the one
 * that finds the access token near its expiry takes a lock, asks X's token endpoint
 * for a new pair (the refresh token rotates: the old one stops working), stores the
 * pair and only then uses it; the others pick the stored pair up. With auth = static
 * the gateway's secret is the access token, as is. Nothing here ever logs a token.
 */
#ifndef DEALPUSH_XAUTH_H
#define DEALPUSH_XAUTH_H

#include <stdint.h>

#include "err.h"
#include "gw.h"

struct event_base;
struct httpc;
struct metrics;
struct rconn;
struct xauth;

#define XAUTH_TOKEN_MAX 2048          /* longer tokens from the endpoint are refused */
#define XAUTH_MARGIN_DEFAULT_S 300    /* refresh this long before the expiry */
#define XAUTH_TICK_MS 1000            /* how often the pair is looked at */

/* Returns the credentials of the x-dm gateway cfg (borrowed, must outlive it), or NULL
 * with *err naming the bad key. oauth2 needs rc (commands; borrowed) and h (borrowed);
 * m may be NULL. Starts its timer at once: the first look at Redis seeds the
 * configured refresh token when no pair is stored. */
struct xauth *xauth_new(struct event_base *base, struct rconn *rc, struct httpc *h,
    const struct gw_config *cfg, struct metrics *m, struct err *err);

/* Frees x. Call after the httpc and the rconn it uses are freed (their callbacks
 * still reach x). NULL does nothing. */
void xauth_free(struct xauth *x);

/* The access token to send now (borrowed: valid until control returns to the loop),
 * or NULL while none is usable (not fetched yet, expired, or refused by X and not yet
 * refreshed). *gen is its generation, for xauth_rejected. */
const char *xauth_token(struct xauth *x, int64_t now, unsigned long *gen);

/* X refused a request sent with generation gen: status 401 (the token is invalid or
 * expired: refresh now) or 403 (the app or token may not send DMs: no refresh helps,
 * an operator must act). Logs once per generation and status, counts every call. */
void xauth_rejected(struct xauth *x, unsigned long gen, int status);

/* 1 when the gateway is paused for want of a usable token, else 0. */
int xauth_paused(const struct xauth *x, int64_t now);

#endif
