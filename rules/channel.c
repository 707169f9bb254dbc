/*
 * channel.c: the channel table (channel.h). ORDER CHANNEL: indexed by enum channel.
 */
#include <stddef.h>
#include <string.h>

#include "channel.h"
#include "rules.h"

static const char *const names[CH_COUNT] = { [CH_SMS] = "sms", [CH_DM] = "dm" };

static const struct channel_def channel_defs[CH_COUNT] = {
	[CH_SMS] = {
		.name = "sms",
		.contact = "phone",
		.contact_off = offsetof(struct subscriber, phone),
		.segments = 1,
		.optout_text = 1,
		.holdout_salt = 0,
		.template = "{title}: {price} ({discount_pct}% off), ends {expires_local}. "
		    "{link} Reply STOP to end",
	},
	[CH_DM] = {
		.name = "dm",
		.contact = "dm.x",
		.contact_off = offsetof(struct subscriber, dm_x),
		.segments = 0,
		.optout_text = 0,
		.holdout_salt = RULE_HOLDOUT_DM_SALT,
		.template = "{title}: {price} ({discount_pct}% off), ends {expires_local}. "
		    "{link}",
	},
};

const struct channel_def *
channel_def(enum channel c)
{
	return (unsigned)c < CH_COUNT ? &channel_defs[c] : NULL;
}

const char *const *
channel_names(void)
{
	return names;
}

const char *
channel_name(enum channel c)
{
	return (unsigned)c < CH_COUNT ? channel_defs[c].name : NULL;
}

int
channel_from_name(const char *name)
{
	int c;

	if (name == NULL)
		return -1;
	for (c = 0; c < CH_COUNT; c++)
		if (strcmp(name, channel_defs[c].name) == 0)
			return c;
	return -1;
}

const char *
channel_contact(const struct subscriber *s, enum channel c)
{
	if (s == NULL || (unsigned)c >= CH_COUNT)
		return NULL;
	return *(char *const *)(const void *)((const char *)s + channel_defs[c].contact_off);
}
