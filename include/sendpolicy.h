/*
 * sendpolicy.h: the send stage's decisions, as pure functions (stage: send): what a
 * gateway's answer means for a push, whether a sender's lease still allows a request,
 * and how long to back off before a retry.
 *
 * No I/O and no clock of its own: callers pass the time, so unit tests cover every
 * case. The rules are docs/delivery.md's.
 */
#ifndef DEALPUSH_SENDPOLICY_H
#define DEALPUSH_SENDPOLICY_H

#include <stdint.h>

#include "gw.h"

/* What a push becomes after its gateway answered. */
enum send_answer {
	SEND_SENT = 0,        /* accepted: record "sent" */
	SEND_FAILED,          /* refused for good: record "failed" */
	SEND_OPTED_OUT,       /* the recipient opted out: record "opted_out", revoke */
	SEND_RETRY,           /* certainly not accepted: send again after a backoff */
	SEND_RATE_LIMITED,    /* 429: send again when the gateway's pause ends */
	SEND_UNKNOWN          /* may have been accepted: record "unknown", never resend */
};

/*
 * Classifies res. idempotent = 1 when the gateway takes an Idempotency-Key (a
 * webhook), so that sending again cannot make a second message: there an ambiguous
 * answer is a retry. An answer with an HTTP status is what it says (5xx: the provider
 * did not take it); without one (timeout, reset, cut-off answer) it is a retry only
 * when the request certainly never reached the provider (res->maybe_delivered 0).
 */
enum send_answer sendpolicy_classify(const struct gw_result *res, int idempotent);

/* The name of a, for logs ("sent", "unknown", ...). */
const char *sendpolicy_answer_name(enum send_answer a);

/*
 * The end of the lease (monotonic ms) a command that reset a job's idle time gives its
 * holder, when it was issued at issued_ms: no other notifier can claim the job before
 * claim_idle_ms of idle time, measured by Redis from a moment after issued_ms, so the
 * lease ends claim_idle_ms after issued_ms, less a margin for clock-rate drift.
 */
int64_t sendpolicy_lease_until(int64_t issued_ms, long claim_idle_ms);

enum send_lease {
	SEND_LEASE_OK = 0,    /* send now, with *timeout_ms as the request's deadline */
	SEND_LEASE_RENEW      /* renew the lease (and check the push again) first */
};

/*
 * May a request with deadline timeout_ms leave at now_ms under a lease ending at
 * lease_until? OK when the whole deadline fits in what is left (*timeout_ms =
 * timeout_ms), or, once renewed = 1, when any of it is left (*timeout_ms = what is
 * left): the request never outlasts the lease. Otherwise RENEW.
 */
enum send_lease sendpolicy_lease_check(int64_t lease_until, int64_t now_ms,
    long timeout_ms, int renewed, long *req_timeout_ms);

/*
 * The backoff before retry number attempts (1 = the first retry) with full jitter:
 * rnd mod (cap + 1), cap = min(max_ms, base_ms * 2^(attempts - 1)).
 */
long long sendpolicy_backoff_ms(int attempts, long base_ms, long max_ms, uint64_t rnd);

#endif
