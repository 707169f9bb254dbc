/*
 * sendpolicy.c: what a gateway's answer means, whether a lease allows a request, and
 * the retry backoff (stage: send). Pure. Must never call an answer that may have
 * reached an SMS or DM provider a retry: a resend there is a second text.
 */
#include "sendpolicy.h"

#define SENDPOLICY_MARGIN_MS 1000   /* at most; a tenth of claim_idle_ms below that */

/* ORDER SEND_ANSWER: as enum send_answer. */
static const char *const answer_names[] = {
	"sent", "failed", "opted_out", "retry", "rate_limited", "unknown"
};

enum send_answer
sendpolicy_classify(const struct gw_result *res, int idempotent)
{
	switch (res->outcome) {
	case GW_SENT:
		return SEND_SENT;
	case GW_OPTED_OUT:
		return SEND_OPTED_OUT;
	case GW_PERMANENT:
		return SEND_FAILED;
	case GW_RATE_LIMITED:
		return SEND_RATE_LIMITED;
	case GW_RETRY:
		break;
	}
	if (res->http_status != 0 || !res->maybe_delivered || idempotent)
		return SEND_RETRY;
	return SEND_UNKNOWN;
}

const char *
sendpolicy_answer_name(enum send_answer a)
{
	return (unsigned)a < sizeof(answer_names) / sizeof(answer_names[0]) ?
	    answer_names[a] : "?";
}

int64_t
sendpolicy_lease_until(int64_t issued_ms, long claim_idle_ms)
{
	long margin = claim_idle_ms / 10 < SENDPOLICY_MARGIN_MS ? claim_idle_ms / 10 :
	    SENDPOLICY_MARGIN_MS;

	return issued_ms + claim_idle_ms - margin;
}

enum send_lease
sendpolicy_lease_check(int64_t lease_until, int64_t now_ms, long timeout_ms,
    int renewed, long *req_timeout_ms)
{
	int64_t left = lease_until - now_ms;

	if (left >= timeout_ms) {
		*req_timeout_ms = timeout_ms;
		return SEND_LEASE_OK;
	}
	if (renewed && left > 0) {
		*req_timeout_ms = (long)left;
		return SEND_LEASE_OK;
	}
	return SEND_LEASE_RENEW;
}

long long
sendpolicy_backoff_ms(int attempts, long base_ms, long max_ms, uint64_t rnd)
{
	long long cap = base_ms;
	int i;

	for (i = 1; i < attempts && cap < max_ms; i++)
		cap *= 2;
	if (cap > max_ms)
		cap = max_ms;
	if (cap < 0)
		cap = 0;
	return (long long)(rnd % (uint64_t)(cap + 1));
}
