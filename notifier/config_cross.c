/*
 * config_cross.c: the checks of config keys against each other that belong to no
 * one section (stage: start-up): the inbound words, the retry bounds, the plan
 * chunk's script arguments and the send lease against the gateways' timeouts.
 * --check-config and start-up make the same checks; each problem names its key.
 */
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "ingest.h"
#include "keywords.h"
#include "scripts.h"

void
config_cross_check(const struct config *c, long gw_timeout_max, void (*report)(void *arg,
    const char *key, const char *msg), void *arg)
{
	struct kw_extra *kwx;
	char kwerr[256], msg[512];

	/* The inbound words are compiled once here so that --check-config names a bad
	 * entry; hooks.c compiles them again the same way at start-up. */
	if ((c->optout_words != NULL || c->optout_fillers != NULL) &&
	    (kwx = calloc(1, sizeof(*kwx))) != NULL) {
		if (c->optout_fillers != NULL && kw_extra_add(kwx, KW_LIST_FILLER,
		    c->optout_fillers, kwerr, sizeof(kwerr)) < 0)
			report(arg, "inbound.optout_fillers", kwerr);
		else if (c->optout_words != NULL && kw_extra_add(kwx, KW_LIST_OPT_OUT,
		    c->optout_words, kwerr, sizeof(kwerr)) < 0)
			report(arg, "inbound.optout_words", kwerr);
		free(kwx);
	}
	if (c->retry_base_ms > c->retry_max_ms)
		report(arg, "deliver.retry_base_ms", "is larger than deliver.retry_max_ms");
	/* A plan chunk is one script call: its arguments must fit what script_call
	 * sends, or every deal fails at the first chunk. */
	if (ingest_plan_args_max(c->plan_chunk, c->job_size) > SCRIPT_ARGS_MAX) {
		snprintf(msg, sizeof(msg), "plan_chunk = %ld with job_size = %ld needs %ld "
		    "script arguments, over the limit of %d: lower ingest.plan_chunk or raise "
		    "ingest.job_size", c->plan_chunk, c->job_size,
		    ingest_plan_args_max(c->plan_chunk, c->job_size), SCRIPT_ARGS_MAX);
		report(arg, "ingest.plan_chunk", msg);
	}
	/* A push is sent under a lease refreshed every claim_idle_ms / 3: a request must
	 * fit in what is left of it, or another notifier may take the push over while
	 * the request is still out (a second text). */
	if (c->ngateways > 0 && c->claim_idle_ms < 3 * gw_timeout_max) {
		snprintf(msg, sizeof(msg), "%ld: claim_idle_ms must be \xe2\x89\xa5 3 "
		    "\xc3\x97 the largest gateway timeout_ms (%ld), because a push is sent under "
		    "a lease refreshed every claim_idle_ms/3 and a request must fit in what is "
		    "left", c->claim_idle_ms, gw_timeout_max);
		report(arg, "deliver.claim_idle_ms", msg);
	}
}
