/*
 * test_sendpolicy.c: what a gateway's answer makes of a push (the ambiguous cases
 * above all), the lease a request leaves under, and the retry backoff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sendpolicy.h"

static struct gw_result
answer(enum gw_outcome o, int status, int maybe_delivered)
{
	struct gw_result r;

	memset(&r, 0, sizeof(r));
	r.outcome = o;
	r.http_status = status;
	r.maybe_delivered = maybe_delivered;
	r.retry_after_s = -1;
	return r;
}

static void
accepted_refused_and_opted_out_answers_are_final(void **state)
{
	struct gw_result r;

	(void)state;
	r = answer(GW_SENT, 201, 1);
	assert_int_equal(sendpolicy_classify(&r, 0), SEND_SENT);
	r = answer(GW_PERMANENT, 400, 1);
	assert_int_equal(sendpolicy_classify(&r, 0), SEND_FAILED);
	r = answer(GW_OPTED_OUT, 400, 1);
	assert_int_equal(sendpolicy_classify(&r, 0), SEND_OPTED_OUT);
	r = answer(GW_RATE_LIMITED, 429, 1);
	assert_int_equal(sendpolicy_classify(&r, 0), SEND_RATE_LIMITED);
}

static void
a_5xx_answer_is_retried_the_provider_said_it_did_not_take_it(void **state)
{
	struct gw_result r = answer(GW_RETRY, 503, 1);

	(void)state;
	assert_int_equal(sendpolicy_classify(&r, 0), SEND_RETRY);
}

static void
timeout_after_the_request_was_written_is_unknown_never_a_retry(void **state)
{
	struct gw_result r = answer(GW_RETRY, 0, 1);

	(void)state;
	assert_int_equal(sendpolicy_classify(&r, 0), SEND_UNKNOWN);
	assert_string_equal(sendpolicy_answer_name(SEND_UNKNOWN), "unknown");
}

static void
failure_before_anything_was_written_is_a_retry(void **state)
{
	struct gw_result r = answer(GW_RETRY, 0, 0);

	(void)state;
	assert_int_equal(sendpolicy_classify(&r, 0), SEND_RETRY);
}

static void
an_idempotent_gateway_retries_even_an_ambiguous_send(void **state)
{
	struct gw_result r = answer(GW_RETRY, 0, 1);

	(void)state;
	assert_int_equal(sendpolicy_classify(&r, 1), SEND_RETRY);
}

static void
lease_ends_claim_idle_after_the_call_less_a_margin(void **state)
{
	(void)state;
	assert_int_equal(sendpolicy_lease_until(1000, 60000), 1000 + 60000 - 1000);
	assert_int_equal(sendpolicy_lease_until(1000, 3000), 1000 + 3000 - 300);
}

static void
request_leaves_only_when_its_whole_deadline_fits_the_lease(void **state)
{
	long t = -1;

	(void)state;
	assert_int_equal(sendpolicy_lease_check(20000, 5000, 10000, 0, &t), SEND_LEASE_OK);
	assert_int_equal(t, 10000);
	t = -1;
	assert_int_equal(sendpolicy_lease_check(20000, 15000, 10000, 0, &t),
	    SEND_LEASE_RENEW);
	assert_int_equal(t, -1);
	/* a process frozen past its lease */
	assert_int_equal(sendpolicy_lease_check(20000, 90000, 10000, 0, &t),
	    SEND_LEASE_RENEW);
}

static void
after_a_renewal_the_deadline_is_cut_to_the_lease_left(void **state)
{
	long t = -1;

	(void)state;
	assert_int_equal(sendpolicy_lease_check(20000, 15000, 10000, 1, &t), SEND_LEASE_OK);
	assert_int_equal(t, 5000);
	/* nothing left even after a renewal (frozen again): renew again */
	assert_int_equal(sendpolicy_lease_check(20000, 20000, 10000, 1, &t),
	    SEND_LEASE_RENEW);
}

static void
backoff_doubles_to_its_cap_with_full_jitter(void **state)
{
	(void)state;
	assert_int_equal(sendpolicy_backoff_ms(1, 100, 5000, 1000), 1000 % 101);
	assert_int_equal(sendpolicy_backoff_ms(2, 100, 5000, 1000), 1000 % 201);
	assert_int_equal(sendpolicy_backoff_ms(3, 100, 5000, 1000), 1000 % 401);
	assert_int_equal(sendpolicy_backoff_ms(30, 100, 5000, 123456), 123456 % 5001);
	assert_int_equal(sendpolicy_backoff_ms(1000, 100, 5000, 5000), 5000);
	assert_int_equal(sendpolicy_backoff_ms(1, 0, 0, 77), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepted_refused_and_opted_out_answers_are_final),
		cmocka_unit_test(a_5xx_answer_is_retried_the_provider_said_it_did_not_take_it),
		cmocka_unit_test(timeout_after_the_request_was_written_is_unknown_never_a_retry),
		cmocka_unit_test(failure_before_anything_was_written_is_a_retry),
		cmocka_unit_test(an_idempotent_gateway_retries_even_an_ambiguous_send),
		cmocka_unit_test(lease_ends_claim_idle_after_the_call_less_a_margin),
		cmocka_unit_test(request_leaves_only_when_its_whole_deadline_fits_the_lease),
		cmocka_unit_test(after_a_renewal_the_deadline_is_cut_to_the_lease_left),
		cmocka_unit_test(backoff_doubles_to_its_cap_with_full_jitter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
