/*
 * channel.h: the channels a subscriber is reached on, in one table (rules/channel.c):
 * what differs between SMS and a direct message is a field of its row, so that code
 * asks the table instead of testing for a channel by name. Adding a channel is a new
 * value of enum channel (model.h), a row here, a gateway kind for it (gw.c) and its
 * contact member in the subscriber document (subscriber.c); docs/architecture.md
 * "Adding a channel" has the whole list.
 */
#ifndef DEALPUSH_CHANNEL_H
#define DEALPUSH_CHANNEL_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

struct channel_def {
	const char *name;         /* "sms": push ids, stream fields, key names, JSON */
	const char *contact;      /* the subscriber document's member that reaches it */
	size_t contact_off;       /* where struct subscriber holds it (a char *) */
	int segments;             /* texts are counted in SMS segments, capped by rules */
	int optout_text;          /* every template must say how to opt out (STOP) */
	uint64_t holdout_salt;    /* XORed into a rule's holdout hash (0: SMS's, as it was) */
	const char *template;     /* the text of a rule that names none */
};

/* The row of channel c; NULL when c is no channel. */
const struct channel_def *channel_def(enum channel c);

/* Channel c's name ("sms", "dm"); NULL when c is no channel. */
const char *channel_name(enum channel c);

/* Every channel's name, indexed by enum channel (CH_COUNT of them). */
const char *const *channel_names(void);

/* The channel named name, or -1. */
int channel_from_name(const char *name);

/* What reaches subscriber s on channel c (its phone, its X user id); NULL when it has
 * none or c is no channel. */
const char *channel_contact(const struct subscriber *s, enum channel c);

#endif
