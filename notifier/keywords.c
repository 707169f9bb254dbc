/*
 * keywords.c: decide whether an inbound message revokes consent, restores it or asks
 * for help.
 *
 * Stage: http (inbound Twilio messages and signed DM/webhook replies), before the
 * consent record is written. The body is normalized into lowercase ASCII words, then
 * tested in a fixed order: bare opt-out keyword, bare opt-in keyword, bare help
 * keyword, plain-language opt-out phrase. Each test is a small table; docs/inbound.md
 * explains every entry. Must never allocate, read global state, or read past len.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "keywords.h"

/* Words kept from one body; later words are ignored like bytes past KW_BODY_MAX. */
#define KW_WORDS_MAX 1024

/* A message with more words than this is never a bare keyword ("stop" plus fillers
 * such as "please stop it now thank you"). */
#define KW_BARE_WORDS_MAX 8

/* Phrase patterns have at most this many slots (plus the NULL ending the list). */
#define KW_SLOTS_MAX 6

/* A normalized body: lowercase ASCII words, each at buf + off[i], len[i] bytes. */
struct kw_text {
	char buf[KW_BODY_MAX + 1];
	uint16_t off[KW_WORDS_MAX];
	uint16_t len[KW_WORDS_MAX];
	size_t n;
	int truncated;     /* the body was longer than we looked at */
};

/* A bare keyword: one alternative of words and the label written for it. */
struct kw_bare {
	const char *words;
	const char *label;
};

/*
 * A plain-language opt-out pattern: consecutive slots, each a '|'-separated list of
 * alternatives, each alternative one or more space-separated words. A slot starting
 * with '?' is optional. The pattern must match whole words, consecutively, anywhere in
 * the message, and not right after a negation (KW_NEGATIONS).
 */
struct kw_phrase {
	const char *name;
	const char *slot[KW_SLOTS_MAX + 1];
};

static const struct kw_bare kw_opt_out[] = {
	/* multi-word entries first: the matcher is greedy, first entry wins */
	{ "stop all", "STOP ALL" },
	{ "opt out", "OPTOUT" },
	{ "stop", "STOP" },
	{ "stopall", "STOPALL" },
	{ "unsubscribe", "UNSUBSCRIBE" },
	{ "cancel", "CANCEL" },
	{ "end", "END" },
	{ "quit", "QUIT" },
	{ "revoke", "REVOKE" },
	{ "optout", "OPTOUT" },
};

static const struct kw_bare kw_opt_in[] = {
	{ "start", "START" },
	{ "unstop", "UNSTOP" },
	{ "yes", "YES" },
};

static const struct kw_bare kw_help[] = {
	{ "help", "HELP" },
	{ "info", "INFO" },
};

/* Words that may surround a bare opt-out or help keyword without changing it. Opt-in
 * takes no fillers: consent must be given plainly ("yes please" is not a START). */
#define KW_FILLERS "please|pls|plz|just|now|it|ok|okay|thanks|thank|you|thx|ty|sorry"

/* A phrase right after one of these words does not count ("don't stop texting me"). */
#define KW_NEGATIONS "dont|not|never"

#define KW_MSGS "texts|text|txts|txt|messages|message|msgs|msg|sms|spam|alerts|notifications"

static const struct kw_phrase kw_phrases[] = {
	/* "please stop texting me", "stop sending me these", "quit messaging me" */
	{ "stop_verb", { "stop|quit|cease",
	    "texting|txting|messaging|msging|sending|contacting|spamming|emailing|calling|"
	    "bothering|harassing|pinging", NULL } },
	/* "stop these texts", "stop all the messages", "stop the spam" */
	{ "stop_texts", { "stop|quit",
	    "?all these|all the|all|these|this|the|those|your|ur|them", KW_MSGS, NULL } },
	/* "unsubscribe me", "how do I unsubscribe" (and its common misspellings) */
	{ "unsubscribe", { "unsubscribe|unsub|unsuscribe|unsubcribe|unsubscibe", NULL } },
	/* "remove me", "remove me from this list", "delete me" */
	{ "remove_me", { "remove|delete|erase", "me", NULL } },
	/* "take me off your list", "take me out of this list" */
	{ "take_me_off", { "take", "me", "off|out of", NULL } },
	/* "please remove my number", "delete my data" */
	{ "remove_number", { "remove|delete|erase", "my",
	    "number|phone|info|information|details|contact|data", NULL } },
	/* "opt me out", "I want to opt out", "opting out", "optout" */
	{ "opt_out", { "opt|opting", "?me|us", "out", NULL } },
	{ "opt_out", { "optout", NULL } },
	/* "don't text me", "do not contact me", "never message me again" */
	{ "dont_contact", { "dont|do not|never",
	    "text|txt|message|msg|contact|email|sms|call|bother|spam|ping", "me|us", NULL } },
	/* "I don't want these texts", "I no longer want to receive your messages" */
	{ "dont_want", { "dont|do not|no longer", "want|need",
	    "?to receive|to get", "?any more|anymore|any|more|these|this|the|those|your|ur",
	    KW_MSGS, NULL } },
	/* "no more texts", "no further messages" */
	{ "no_more", { "no more|no further", KW_MSGS "|texting|messaging", NULL } },
	/* "cancel my subscription", "end this subscription" */
	{ "cancel_subscription", { "cancel|end|stop|terminate", "?my|the|this|your",
	    "subscription|sub", NULL } },
	/* "leave me alone" */
	{ "leave_me_alone", { "leave", "me", "alone", NULL } },
	/* "wrong number": whoever has this number now never consented */
	{ "wrong_number", { "wrong", "number|person", NULL } },
};

/* Appends one ASCII byte of a word to t; opens a word when none is open. */
static void text_put(struct kw_text *t, size_t *pos, int *inword, unsigned char c)
{
	if (!*inword) {
		if (t->n == KW_WORDS_MAX) {
			t->truncated = 1;
			return;
		}
		if (t->n > 0)
			t->buf[(*pos)++] = ' ';
		t->off[t->n] = (uint16_t)*pos;
		t->len[t->n] = 0;
		t->n++;
		*inword = 1;
	}
	t->buf[(*pos)++] = (char)c;
	t->len[t->n - 1]++;
}

/*
 * Normalizes body into t. ASCII letters and digits make words (letters lowercased);
 * apostrophes (' U+2018 U+2019 U+02BC U+FF07) are dropped inside words so that "don't"
 * and "don’t" read "dont"; full-width ASCII (U+FF01..U+FF5E) counts as its ASCII twin;
 * every other byte, including all other non-ASCII bytes, NUL and invalid UTF-8,
 * separates words. Output never exceeds the input length, so buf cannot overflow.
 */
static void text_normalize(struct kw_text *t, const unsigned char *s, size_t len)
{
	size_t i = 0, n, pos = 0;
	int inword = 0, cut = len > KW_BODY_MAX;

	t->n = 0;
	t->truncated = cut;
	n = cut ? KW_BODY_MAX : len;
	while (i < n) {
		unsigned c = s[i], step = 1;

		if (c == 0xE2 && i + 2 < n && s[i + 1] == 0x80 &&
		    (s[i + 2] == 0x98 || s[i + 2] == 0x99)) {
			c = '\'';
			step = 3;
		} else if (c == 0xCA && i + 1 < n && s[i + 1] == 0xBC) {
			c = '\'';
			step = 2;
		} else if (c == 0xEF && i + 2 < n &&
		    ((s[i + 1] == 0xBC && s[i + 2] >= 0x81 && s[i + 2] <= 0xBF) ||
		    (s[i + 1] == 0xBD && s[i + 2] >= 0x80 && s[i + 2] <= 0x9E))) {
			/* U+FF01..U+FF3F are EF BC 81..BF, U+FF40..U+FF5E are EF BD 80..9E */
			c = s[i + 1] == 0xBC ? 0x21 + (s[i + 2] - 0x81u) : 0x60 + (s[i + 2] - 0x80u);
			step = 3;
		}
		i += step;
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
			text_put(t, &pos, &inword, (unsigned char)c);
		else if (c != '\'')
			inword = 0;
	}
	/* a word cut by the byte limit is not the word that was sent */
	if (cut && inword && t->n > 0) {
		t->n--;
		pos = t->off[t->n] > 0 ? t->off[t->n] - 1u : 0;
	}
	t->buf[pos] = '\0';
}

/* Word i equals w[0..wlen). */
static int word_eq(const struct kw_text *t, size_t i, const char *w, size_t wlen)
{
	return i < t->n && t->len[i] == wlen && memcmp(t->buf + t->off[i], w, wlen) == 0;
}

/* Matches one alternative alt[0..alen) (space-separated words) at word i. Returns the
 * number of words consumed, 0 when it does not match. */
static size_t alt_match(const struct kw_text *t, size_t i, const char *alt, size_t alen)
{
	size_t k = 0, used = 0;

	while (k < alen) {
		const char *sp = memchr(alt + k, ' ', alen - k);
		size_t wlen = sp ? (size_t)(sp - (alt + k)) : alen - k;

		if (!word_eq(t, i + used, alt + k, wlen))
			return 0;
		used++;
		k += wlen + (sp ? 1 : 0);
	}
	return used;
}

/* Matches the first matching alternative of "a|b c|d" at word i; returns words used. */
static size_t alts_match_first(const struct kw_text *t, size_t i, const char *alts)
{
	while (*alts != '\0') {
		const char *bar = strchr(alts, '|');
		size_t alen = bar ? (size_t)(bar - alts) : strlen(alts);
		size_t used = alt_match(t, i, alts, alen);

		if (used > 0)
			return used;
		alts += alen + (bar ? 1 : 0);
	}
	return 0;
}

/* Slots k.. of a phrase match from word i (backtracking over alternatives and
 * optional slots; depth is at most KW_SLOTS_MAX). */
static int slots_match(const struct kw_text *t, size_t i, const char *const *slot, size_t k)
{
	const char *alts;
	int optional;

	if (k == KW_SLOTS_MAX || slot[k] == NULL)
		return 1;
	alts = slot[k];
	optional = alts[0] == '?';
	if (optional)
		alts++;
	while (*alts != '\0') {
		const char *bar = strchr(alts, '|');
		size_t alen = bar ? (size_t)(bar - alts) : strlen(alts);
		size_t used = alt_match(t, i, alts, alen);

		if (used > 0 && slots_match(t, i + used, slot, k + 1))
			return 1;
		alts += alen + (bar ? 1 : 0);
	}
	return optional && slots_match(t, i, slot, k + 1);
}

/*
 * The whole message is keywords from table kw (at least one) and, when fillers is set,
 * KW_FILLERS; without fillers it is exactly one keyword. Returns 1 and sets *label to the first keyword's label, or 0 and leaves
 * *label alone.
 */
static int bare_match(const struct kw_text *t, const struct kw_bare *kw, size_t nkw,
    int fillers, const char **label)
{
	const char *first = NULL;
	size_t i = 0, j, used;

	if (t->truncated || t->n == 0 || t->n > KW_BARE_WORDS_MAX)
		return 0;
	while (i < t->n) {
		for (j = 0; j < nkw; j++) {
			used = alt_match(t, i, kw[j].words, strlen(kw[j].words));
			if (used > 0)
				break;
		}
		if (j < nkw && (first == NULL || fillers)) {
			if (first == NULL)
				first = kw[j].label;
			i += used;
		} else if (fillers && alts_match_first(t, i, KW_FILLERS) == 1) {
			i++;
		} else {
			return 0;
		}
	}
	if (first == NULL)
		return 0;
	*label = first;
	return 1;
}

/* Some phrase of kw_phrases matches somewhere in t, not right after a negation. */
static int phrase_match(const struct kw_text *t, const char **name)
{
	size_t i, p;

	for (i = 0; i < t->n; i++) {
		if (i > 0 && alts_match_first(t, i - 1, KW_NEGATIONS) > 0)
			continue;
		for (p = 0; p < sizeof(kw_phrases) / sizeof(kw_phrases[0]); p++) {
			if (slots_match(t, i, kw_phrases[p].slot, 0)) {
				*name = kw_phrases[p].name;
				return 1;
			}
		}
	}
	return 0;
}

enum kw_kind kw_classify(const char *body, size_t len, char *matched, size_t msize)
{
	struct kw_text t;
	const char *label = "";
	const char *prefix = "";
	enum kw_kind kind = KW_NONE;

	if (body == NULL)
		len = 0;
	text_normalize(&t, (const unsigned char *)body, len);
	if (bare_match(&t, kw_opt_out, sizeof(kw_opt_out) / sizeof(kw_opt_out[0]), 1, &label))
		kind = KW_OPT_OUT;
	else if (bare_match(&t, kw_opt_in, sizeof(kw_opt_in) / sizeof(kw_opt_in[0]), 0, &label))
		kind = KW_OPT_IN;
	else if (bare_match(&t, kw_help, sizeof(kw_help) / sizeof(kw_help[0]), 1, &label))
		kind = KW_HELP;
	else if (phrase_match(&t, &label)) {
		kind = KW_OPT_OUT;
		prefix = "phrase:";
	}
	if (matched != NULL && msize > 0)
		snprintf(matched, msize, "%s%s", prefix, label);
	return kind;
}

const char *kw_kind_name(enum kw_kind kind)
{
	switch (kind) {
	case KW_OPT_OUT:
		return "opt_out";
	case KW_OPT_IN:
		return "opt_in";
	case KW_HELP:
		return "help";
	case KW_NONE:
		break;
	}
	return "none";
}
