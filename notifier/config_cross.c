/*
 * config_cross.c: the checks of config keys against each other that belong to no
 * one section (stage: start-up): the inbound words, the retry bounds, the plan
 * chunk's script arguments, the send lease against the gateways' timeouts and the
 * short link base against the public URL.
 * --check-config and start-up make the same checks; each problem names its key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "ingest.h"
#include "keywords.h"
#include "scripts.h"
#include "shortlink.h"

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

void
config_link_check(struct config *c, void (*report)(void *arg, const char *key,
    const char *msg), void *arg)
{
	char route[SHORTLINK_ROUTE_MAX + 1], why[160], msg[256];
	size_t n;

	if (c->link_base == NULL && c->public_url != NULL) {
		/* The default: the long links' own prefix, on the public URL. */
		n = strlen(c->public_url);
		while (n > 0 && c->public_url[n - 1] == '/')
			n--;
		if ((c->link_base = malloc(n + 3)) == NULL) {
			report(arg, "http.link_base", "out of memory");
			return;
		}
		memcpy(c->link_base, c->public_url, n);
		memcpy(c->link_base + n, "/c", 3);
	}
	if (c->link_base == NULL)
		return;
	if (shortlink_route(c->link_base, route, sizeof(route), why, sizeof(why)) < 0) {
		snprintf(msg, sizeof(msg), "not usable as the base of short links: %s", why);
		report(arg, "http.link_base", msg);
	}
}
