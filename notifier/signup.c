/*
 * signup.c: sign-up keywords, the "Y" of a double opt-in, and the notifier's own
 * texts in English and Spanish (stage: http; pure). docs/inbound.md section 5.
 */
#include <stdio.h>
#include <string.h>

#include "keywords.h"
#include "kwtext.h"
#include "signup.h"

/* Joins the words of body[0..len) with one space into out. Returns the length, or -1
 * when the body is too long to be a keyword or has no word. */
static int
words_of(const char *body, size_t len, char *out, size_t size)
{
	struct kw_text t;
	size_t i, n = 0;

	kw_text_normalize(&t, (const unsigned char *)body, len);
	if (t.truncated || t.n == 0)
		return -1;
	for (i = 0; i < t.n; i++) {
		if (n + (i > 0) + t.len[i] + 1 > size)
			return -1;
		if (i > 0)
			out[n++] = ' ';
		memcpy(out + n, t.buf + t.off[i], t.len[i]);
		n += t.len[i];
	}
	out[n] = '\0';
	return (int)n;
}

static int
is_yes_words(const char *w)
{
	return strcmp(w, "y") == 0 || strcmp(w, "yes") == 0 || strcmp(w, "s") == 0 ||
	    strcmp(w, "si") == 0;
}

/* Reads one item of an entry ("laptops", "@es") into k. Returns 0 or -1 (err). */
static int
item_add(struct signup_keyword *k, const char *item, size_t len, const char *entry,
    char *err, size_t esize)
{
	size_t i;

	if (item[0] == '@') {
		if (len == 3 && strncmp(item, "@en", 3) == 0)
			k->locale = SL_EN;
		else if (len == 3 && strncmp(item, "@es", 3) == 0)
			k->locale = SL_ES;
		else {
			snprintf(err, esize, "'%s': unknown language '%.*s' (use @en or @es)",
			    entry, (int)len, item);
			return -1;
		}
		k->has_locale = 1;
		return 0;
	}
	if (len >= SIGNUP_CAT_MAX) {
		snprintf(err, esize, "'%s': category '%.*s' is longer than %d bytes", entry,
		    (int)len, item, SIGNUP_CAT_MAX - 1);
		return -1;
	}
	if (k->ncats == SIGNUP_CATS_MAX) {
		snprintf(err, esize, "'%s': more than %d categories", entry, SIGNUP_CATS_MAX);
		return -1;
	}
	for (i = 0; i < len; i++) {
		char c = item[i];

		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '_')) {
			snprintf(err, esize, "'%s': category '%.*s' may hold only letters, "
			    "digits, '-' and '_'", entry, (int)len, item);
			return -1;
		}
		k->cats[k->ncats][i] = c;
	}
	k->cats[k->ncats][len] = '\0';
	k->ncats++;
	return 0;
}

/* Parses one entry e[0..len) into k. Returns 0 or -1 (err). */
static int
entry_parse(struct signup_keyword *k, const char *e, size_t len, char *err, size_t esize)
{
	char entry[128], matched[KW_MATCHED_MAX];
	const char *colon, *p, *end;
	size_t wlen, nwords = 1, i;

	snprintf(entry, sizeof(entry), "%.*s", (int)len, e);
	memset(k, 0, sizeof(*k));
	colon = memchr(e, ':', len);
	wlen = colon != NULL ? (size_t)(colon - e) : len;
	if (words_of(e, wlen, k->words, sizeof(k->words)) < 0) {
		snprintf(err, esize, "'%s': the keyword must be 1 to 3 words of at most %d "
		    "bytes", entry, SIGNUP_WORDS_MAX - 1);
		return -1;
	}
	for (i = 0; k->words[i] != '\0'; i++)
		nwords += k->words[i] == ' ';
	if (nwords > 3) {
		snprintf(err, esize, "'%s': the keyword must be 1 to 3 words", entry);
		return -1;
	}
	if (kw_classify(k->words, strlen(k->words), matched, sizeof(matched)) != KW_NONE ||
	    matched[0] != '\0' || is_yes_words(k->words)) {
		snprintf(err, esize, "'%s': '%s' is an opt-out, opt-in, help or confirmation "
		    "word", entry, k->words);
		return -1;
	}
	if (colon == NULL)
		return 0;
	for (p = colon + 1, end = e + len; p < end;) {
		const char *q;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		for (q = p; q < end && *q != ' ' && *q != '\t'; q++)
			;
		if (q > p && item_add(k, p, (size_t)(q - p), entry, err, esize) < 0)
			return -1;
		p = q;
	}
	return 0;
}

int
signup_keywords_parse(struct signup_keyword *kw, size_t max, const char *spec,
    char *err, size_t esize)
{
	const char *p = spec, *comma;
	size_t n = 0, i;

	while (p != NULL && *p != '\0') {
		const char *e, *end;

		comma = strchr(p, ',');
		end = comma != NULL ? comma : p + strlen(p);
		for (e = p; e < end && (*e == ' ' || *e == '\t'); e++)
			;
		while (end > e && (end[-1] == ' ' || end[-1] == '\t'))
			end--;
		if (end > e) {
			if (n == max) {
				snprintf(err, esize, "more than %zu keywords", max);
				return -1;
			}
			if (entry_parse(&kw[n], e, (size_t)(end - e), err, esize) < 0)
				return -1;
			for (i = 0; i < n; i++)
				if (strcmp(kw[i].words, kw[n].words) == 0) {
					snprintf(err, esize, "'%s' is given twice", kw[n].words);
					return -1;
				}
			n++;
		}
		p = comma != NULL ? comma + 1 : NULL;
	}
	return (int)n;
}

const struct signup_keyword *
signup_match(const struct signup_keyword *kw, size_t n, const char *body, size_t len)
{
	char w[SIGNUP_WORDS_MAX];
	size_t i;

	if (n == 0 || len > 256 || words_of(body, len, w, sizeof(w)) < 0)
		return NULL;
	for (i = 0; i < n; i++)
		if (strcmp(kw[i].words, w) == 0)
			return &kw[i];
	return NULL;
}

int
signup_is_yes(const char *body, size_t len)
{
	char w[8];

	return len <= 64 && words_of(body, len, w, sizeof(w)) > 0 && is_yes_words(w);
}

enum signup_locale
signup_locale_of(const char *tag)
{
	if (tag != NULL && (tag[0] == 'e' || tag[0] == 'E') &&
	    (tag[1] == 's' || tag[1] == 'S') && (tag[2] == '\0' || tag[2] == '-' ||
	    tag[2] == '_'))
		return SL_ES;
	return SL_EN;
}

const char *
signup_locale_tag(enum signup_locale loc)
{
	return loc == SL_ES ? "es" : "en";
}

int
signup_label_locale(const char *label)
{
	/* The Spanish labels of keywords.c's tables (their canonical forms). */
	static const char *const es[] = {
		"ALTO", "PARAR", "PARE", "PARA", "CANCELAR", "DETENER", "BAJA", "FIN",
		"BASTA", "DESUSCRIBIR", "NO MAS", "DAR DE BAJA", "AYUDA",
	};
	size_t i;

	if (label == NULL)
		return -1;
	if (strncmp(label, "phrase:es_", 10) == 0)
		return SL_ES;
	for (i = 0; i < sizeof(es) / sizeof(es[0]); i++)
		if (strcmp(label, es[i]) == 0)
			return SL_ES;
	return -1;
}

/* A text in three parts: base takes the program (%s) and, for the confirmation and
 * the welcome, the messages a week (%ld); terms takes the terms URL (%s) and is left
 * out without one; tail is appended as it is. Indexed [ORDER SIGNUP_LOCALE][enum
 * signup_text]. */
struct text_form {
	const char *base;          /* program [, max_per_week] */
	const char *terms;         /* appended when a terms URL is configured */
	const char *tail;          /* appended last */
};

static const struct text_form forms[SL_COUNT][ST_COUNT] = {
	[SL_EN] = {
		[ST_CONFIRM] = { "%s: reply Y to confirm you want deal alerts. Up to %ld "
		    "msgs/week. Msg & data rates may apply.", " Terms & privacy: %s.",
		    " Reply HELP for help, STOP to cancel." },
		[ST_WELCOME] = { "%s: you're subscribed to deal alerts, up to %ld "
		    "msgs/week. Msg & data rates may apply.", "",
		    " Reply HELP for help, STOP to cancel." },
		[ST_HELP] = { "%s: reply STOP to unsubscribe, START to resubscribe. Msg and "
		    "data rates may apply.", " Terms & privacy: %s", "" },
		[ST_OPTOUT_ACK] = { "You're unsubscribed from %s. Reply START to "
		    "resubscribe.", "", "" },
		[ST_OPTIN_ACK] = { "%s: you're resubscribed. Msg & data rates may apply.",
		    "", " Reply HELP for help, STOP to cancel." },
	},
	[SL_ES] = {
		[ST_CONFIRM] = { "%s: responde S para confirmar que quieres recibir "
		    "ofertas. Hasta %ld mensajes/semana. Pueden aplicarse tarifas de "
		    "mensajes y datos.", " T\xc3\xa9rminos y privacidad: %s.",
		    " Responde AYUDA para ayuda, ALTO para cancelar." },
		[ST_WELCOME] = { "%s: ya recibes nuestras ofertas, hasta %ld "
		    "mensajes/semana. Pueden aplicarse tarifas de mensajes y datos.", "",
		    " Responde AYUDA para ayuda, ALTO para cancelar." },
		[ST_HELP] = { "%s: responde ALTO para cancelar, START para volver a "
		    "suscribirte. Pueden aplicarse tarifas de mensajes y datos.",
		    " T\xc3\xa9rminos y privacidad: %s", "" },
		[ST_OPTOUT_ACK] = { "Cancelaste tu suscripci\xc3\xb3n a %s. Responde START "
		    "para volver a suscribirte.", "", "" },
		[ST_OPTIN_ACK] = { "%s: te has vuelto a suscribir. Pueden aplicarse "
		    "tarifas de mensajes y datos.", "",
		    " Responde AYUDA para ayuda, ALTO para cancelar." },
	},
};

int
signup_text(enum signup_text t, enum signup_locale loc, const struct signup_vars *v,
    char *buf, size_t size)
{
	const struct text_form *f;
	int n, m, k;

	if ((unsigned)t >= ST_COUNT || (unsigned)loc >= SL_COUNT || size == 0)
		return -1;
	f = &forms[loc][t];
	/* Only the two sign-up texts carry the frequency (their second conversion). */
	if (t == ST_CONFIRM || t == ST_WELCOME)
		n = snprintf(buf, size, f->base, v->program, v->max_per_week);
	else
		n = snprintf(buf, size, f->base, v->program);
	if (n < 0 || (size_t)n >= size)
		return -1;
	m = 0;
	if (v->terms_url != NULL && f->terms[0] != '\0') {
		m = snprintf(buf + n, size - (size_t)n, f->terms, v->terms_url);
		if (m < 0 || (size_t)m >= size - (size_t)n)
			return -1;
	}
	k = snprintf(buf + n + m, size - (size_t)(n + m), "%s", f->tail);
	if (k < 0 || (size_t)k >= size - (size_t)(n + m))
		return -1;
	return n + m + k;
}
