/*
 * config_signup.c: the cross-checks of the [signup] keys (stage: start-up).
 *
 * A sign-up by text must say what CTIA asks of a confirmation request (the program,
 * how many messages, the terms), so once keywords are set the three are required.
 * --check-config and start-up make the same checks; each problem names its key.
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "signup.h"
#include "subscriber_int.h"

void
config_signup_check(const struct config *c, void (*report)(void *arg, const char *key,
    const char *msg), void *arg)
{
	struct signup_keyword kw[SIGNUP_KEYWORDS_MAX];
	struct signup_vars v;
	char err[256], text[SIGNUP_TEXT_MAX];
	int n;

	if (c->signup_timezone != NULL && !sub_tz_is_known(c->signup_timezone))
		report(arg, "signup.timezone", "not a time zone of the tz database");
	if (c->signup_keywords == NULL)
		return;
	if ((n = signup_keywords_parse(kw, SIGNUP_KEYWORDS_MAX, c->signup_keywords, err,
	    sizeof(err))) < 0)
		report(arg, "signup.keywords", err);
	else if (n == 0)
		report(arg, "signup.keywords", "names no keyword");
	if (c->signup_program == NULL)
		report(arg, "signup.program", "is required with signup.keywords (the "
		    "confirmation request names the program)");
	if (c->signup_max_per_week == 0)
		report(arg, "signup.max_per_week", "is required with signup.keywords (the "
		    "confirmation request says how many messages)");
	if (c->signup_terms_url == NULL)
		report(arg, "signup.terms_url", "is required with signup.keywords (the "
		    "confirmation request links the terms and privacy policy)");
	if (c->signup_program == NULL || c->signup_terms_url == NULL)
		return;
	v.program = c->signup_program;
	v.max_per_week = c->signup_max_per_week;
	v.terms_url = c->signup_terms_url;
	for (n = 0; n < SL_COUNT; n++)
		if (signup_text(ST_CONFIRM, (enum signup_locale)n, &v, text,
		    sizeof(text)) < 0)
			report(arg, "signup.program", "with signup.terms_url makes a "
			    "confirmation request too long");
}
