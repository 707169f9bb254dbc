/*
 * keywords.c: decide whether an inbound message revokes consent, restores it or asks
 * for help, in English, Spanish and the languages an operator adds in config.
 *
 * Stage: http (inbound Twilio messages and signed DM/webhook replies), before the
 * consent record is written. The body is normalized into lowercase ASCII words
 * (accents folded, letters spelled apart joined, clause and sentence breaks kept),
 * then tested in a fixed order: bare opt-out keyword, bare opt-in keyword, bare help
 * keyword, a clause that is a bare opt-out keyword, plain-language opt-out phrase.
 * Each test is a small table; docs/inbound.md explains every entry. Must never
 * allocate, read global state, or read past len.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "keywords.h"
#include "kwtext.h"

/* A message (or clause) with more words than this is never a bare keyword ("stop"
 * plus fillers such as "please stop it now thank you"). */
#define KW_BARE_WORDS_MAX 8

/* Phrase patterns have at most this many slots (plus the NULL ending the list). */
#define KW_SLOTS_MAX 6

/* A bare keyword: one alternative of words and the label written for it. */
struct kw_bare {
	const char *words;
	const char *label;
};

/*
 * A plain-language opt-out pattern: consecutive slots, each a '|'-separated list of
 * alternatives, each alternative one or more space-separated words, or "$": the end of
 * the clause (only fillers left before a break or the end). A slot starting with '?'
 * is optional. The pattern must match whole words, consecutively, anywhere in the
 * message, and not right after a negation (KW_NEGATIONS).
 */
struct kw_phrase {
	const char *name;
	const char *slot[KW_SLOTS_MAX + 1];
};

static const struct kw_bare kw_opt_out[] = {
	/* the longest entry that matches wins; among equals, the first */
	{ "stop all", "STOP ALL" },
	{ "opt out", "OPTOUT" },
	{ "no more", "NO MORE" },
	{ "no mas", "NO MAS" },
	{ "dar de baja", "BAJA" },
	{ "darme de baja", "BAJA" },
	{ "dame de baja", "BAJA" },
	{ "denme de baja", "BAJA" },
	{ "stop", "STOP" },
	{ "stopall", "STOPALL" },
	{ "unsubscribe", "UNSUBSCRIBE" },
	{ "unsub", "UNSUBSCRIBE" },
	{ "cancel", "CANCEL" },
	{ "end", "END" },
	{ "quit", "QUIT" },
	{ "revoke", "REVOKE" },
	{ "optout", "OPTOUT" },
	/* Spanish */
	{ "alto", "ALTO" },
	{ "parar", "PARAR" },
	{ "pare", "PARE" },
	{ "paren", "PARE" },
	{ "pares", "PARE" },
	{ "para", "PARA" },
	{ "cancelar", "CANCELAR" },
	{ "cancela", "CANCELAR" },
	{ "detener", "DETENER" },
	{ "detente", "DETENER" },
	{ "baja", "BAJA" },
	{ "fin", "FIN" },
	{ "basta", "BASTA" },
	{ "desuscribir", "DESUSCRIBIR" },
	{ "desuscribirme", "DESUSCRIBIR" },
};

static const struct kw_bare kw_opt_in[] = {
	{ "start", "START" },
	{ "unstop", "UNSTOP" },
	{ "yes", "YES" },
};

static const struct kw_bare kw_help[] = {
	{ "help", "HELP" },
	{ "info", "INFO" },
	{ "ayuda", "AYUDA" },
};

/* Words that may surround a bare opt-out or help keyword without changing it, in
 * English and Spanish. Opt-in takes no fillers: consent must be given plainly ("yes
 * please" is not a START). */
#define KW_FILLERS "please|pls|plz|plez|just|now|it|ok|okay|thanks|thank|you|u|thx|ty|" \
	"sorry|i|said|say|told|to|already|again|right|asap|immediately|seriously|hey|hi|" \
	"hello|por favor|porfa|porfavor|favor|xfa|plis|gracias|muchas|ya|ahora|vale|" \
	"bueno|te dije|les dije|dije|de una vez|inmediatamente"

/* A phrase right after one of these words does not count ("don't stop texting me"). */
#define KW_NEGATIONS "dont|not|never"

#define KW_MSGS "texts|text|txts|txt|messages|message|msgs|msg|sms|spam|alerts|" \
	"notifications"
#define KW_ES_MSGS "mensajes|mensaje|msjs|msj|sms|textos|texto|promociones|" \
	"notificaciones|alertas|ofertas|correos|spam|publicidad"

static const struct kw_phrase kw_phrases[] = {
	/* "please stop texting me", "stop sending me these", "quit messaging me" */
	{ "stop_verb", { "stop|quit|cease",
	    "texting|txting|messaging|msging|sending|contacting|spamming|emailing|calling|"
	    "bothering|harassing|pinging|receiving|getting", NULL } },
	/* "stop these texts", "stop all the messages", "stop the spam" */
	{ "stop_texts", { "stop|quit",
	    "?all these|all the|all|these|this|the|those|your|ur|them", KW_MSGS, NULL } },
	/* "unsubscribe me", "how do I unsubscribe" (and its common misspellings) */
	{ "unsubscribe", { "unsubscribe|unsub|unsuscribe|unsubcribe|unsubscibe|unsubscrib|"
	    "unsubsribe|unsubscribed|unsubscribing|unscribe|unsusbcribe", NULL } },
	/* "remove me", "remove me from this list", "delete me" */
	{ "remove_me", { "remove|delete|erase|drop", "me|us", NULL } },
	/* "take me off your list", "take me out of this list", "get me off this list" */
	{ "take_me_off", { "take|get", "me|us", "off|out of", NULL } },
	/* "please remove my number", "delete my data", "lose my number" */
	{ "remove_number", { "remove|delete|erase|lose|forget", "my|this",
	    "number|phone|info|information|details|contact|data", NULL } },
	/* "opt me out", "I want to opt out", "opting out", "optout" */
	{ "opt_out", { "opt|opting", "?me|us", "out", NULL } },
	{ "opt_out", { "optout", NULL } },
	/* "don't text me", "do not contact me", "never message me again" */
	{ "dont_contact", { "dont|do not|never",
	    "text|txt|message|msg|contact|email|sms|call|bother|spam|ping",
	    "me|us|this number|my number", NULL } },
	/* "I don't want these texts", "I no longer want to receive your messages" */
	{ "dont_want", { "dont|do not|no longer", "want|need",
	    "?to receive|to get", "?any more|anymore|any|more|these|this|the|those|your|ur",
	    KW_MSGS, NULL } },
	/* "no more texts", "no further messages", "no texts please" */
	{ "no_more", { "no more|no further", KW_MSGS "|texting|messaging", NULL } },
	{ "no_more", { "no", KW_MSGS, "$", NULL } },
	/* "cancel my subscription", "end this subscription" */
	{ "cancel_subscription", { "cancel|end|stop|terminate", "?my|the|this|your",
	    "subscription|sub", NULL } },
	/* "leave me alone" */
	{ "leave_me_alone", { "leave", "me|us", "alone", NULL } },
	/* "wrong number": whoever has this number now never consented */
	{ "wrong_number", { "wrong", "number|person|phone", NULL } },
	/* "I never signed up for this": no consent, so no texts */
	{ "never_signed_up", { "never|didnt|did not",
	    "sign up|signed up|signup|subscribe|subscribed|opt in|opted in|consent|"
	    "consented|agreed to|asked for this|asked for these|asked for them", NULL } },
	/* "how do I stop these?", "how to unsubscribe" */
	{ "how_stop", { "how", "do i|can i|to|do we|can we|do you",
	    "stop|quit|opt out|cancel",
	    "?this|these|them|it|these texts|this thing|getting these|receiving these", "$",
	    NULL } },
	/* "I want out" */
	{ "want_out", { "want|wants", "out", "$", NULL } },
	/* Spanish: "no me envíen más mensajes", "no me vuelvan a escribir" */
	{ "es_no_enviar", { "no", "?me|nos|le|les", "?vuelvan a|vuelvas a|vuelva a",
	    "envien|envies|envie|enviar|manden|mandes|mande|mandar|escriban|escribas|"
	    "escriba|escribir|contacten|contactes|contacte|llamen|molesten|molestes|"
	    "moleste|texteen|textees", NULL } },
	/* "dejen de enviarme mensajes", "para ya de escribirme", "dejar de recibir" */
	{ "es_dejen_de", { "dejen|deja|dejad|deje|dejar|paren|para|pare|parar", "?ya", "de",
	    "enviar|enviarme|enviarnos|mandar|mandarme|escribir|escribirme|molestar|"
	    "molestarme|contactar|contactarme|textear|textearme|llamar|llamarme|recibir|"
	    "spamear", NULL } },
	/* "no quiero recibir más mensajes", "ya no quiero sus promociones" */
	{ "es_no_quiero", { "no", "quiero|deseo|necesito", "?recibir",
	    "?mas|ningun|ninguna|ningunos|estos|estas|sus|tus|los|las|mas de sus", KW_ES_MSGS,
	    NULL } },
	{ "es_no_quiero", { "no", "quiero|deseo", "mas", "$", NULL } },
	/* "no más mensajes", "basta de mensajes" */
	{ "es_no_mas", { "no mas|basta de|nada mas de", KW_ES_MSGS, NULL } },
	/* "quiero darme de baja", "me doy de baja", "denme de baja" */
	{ "es_baja", { "dar|darme|dame|denme|deme|doy|darnos|darse|den",
	    "de baja", NULL } },
	/* "bórrenme de la lista", "sáquenme de aquí", "quítame" */
	{ "es_quitar", { "saquenme|sacame|sacarme|saqueme|quitenme|quitame|quitarme|"
	    "quiteme|borrenme|borrame|borrarme|borreme|eliminenme|eliminame|eliminarme|"
	    "elimineme|remuevanme|removerme", "de|del|$", NULL } },
	/* "quiero desuscribirme", "cancelar mi suscripción" */
	{ "es_desuscribir", { "desuscribir|desuscribirme|desuscribanme|desuscribeme|"
	    "desinscribir|desinscribirme|desubscribir|desubscribirme", NULL } },
	{ "es_desuscribir", { "cancelar|cancela|cancelen|anular|anula",
	    "?mi|la|esta|su|tu", "suscripcion|subscripcion", NULL } },
	/* "número equivocado", "se equivocaron de número" */
	{ "es_numero_equivocado", { "numero", "equivocado|incorrecto|errado", NULL } },
	{ "es_numero_equivocado", { "equivocado|equivocada|equivocados|equivocaron",
	    "de numero", NULL } },
};


/* ---- matching ------------------------------------------------------------------ */

/* a and b are equal once runs of one letter are read as one ("stooop" = "stop"). */
static int squeeze_eq(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i = 0, j = 0;

	while (i < alen && j < blen) {
		char c = a[i];

		if (b[j] != c)
			return 0;
		while (i < alen && a[i] == c)
			i++;
		while (j < blen && b[j] == c)
			j++;
	}
	return i == alen && j == blen;
}

/* Word i equals w[0..wlen); loosely: repeated letters count once. */
static int word_eq(const struct kw_text *t, size_t i, const char *w, size_t wlen,
    int loose)
{
	if (i >= t->n)
		return 0;
	if (t->len[i] == wlen && memcmp(t->buf + t->off[i], w, wlen) == 0)
		return 1;
	return loose && squeeze_eq(t->buf + t->off[i], t->len[i], w, wlen);
}

/* Words i..end are fillers only, built in or extra. */
static size_t fillers_at(const struct kw_text *t, size_t i, const struct kw_extra *x);

/* The clause ends at word i: i is past the end, starts a new clause, or only fillers
 * are left before that. */
static int clause_end(const struct kw_text *t, size_t i, const struct kw_extra *x)
{
	size_t used;

	while (i < t->n && t->brk[i] == KW_BRK_NONE) {
		if ((used = fillers_at(t, i, x)) == 0)
			return 0;
		i += used;
	}
	return 1;
}

/* Matches one alternative alt[0..alen) (space-separated words, or "$") at word i.
 * Returns the number of words consumed, or -1 when it does not match. */
static long alt_match(const struct kw_text *t, size_t i, const char *alt, size_t alen,
    int loose, const struct kw_extra *x)
{
	size_t k = 0, used = 0;

	if (alen == 1 && alt[0] == '$')
		return clause_end(t, i, x) ? 0 : -1;
	while (k < alen) {
		const char *sp = memchr(alt + k, ' ', alen - k);
		size_t wlen = sp ? (size_t)(sp - (alt + k)) : alen - k;

		if (!word_eq(t, i + used, alt + k, wlen, loose))
			return -1;
		used++;
		k += wlen + (sp ? 1 : 0);
	}
	return (long)used;
}

/* Matches the first matching alternative of "a|b c|d" at word i; returns words used
 * (0 when none matches: alternatives here are never "$"). */
static size_t alts_match_first(const struct kw_text *t, size_t i, const char *alts,
    int loose)
{
	while (*alts != '\0') {
		const char *bar = strchr(alts, '|');
		size_t alen = bar ? (size_t)(bar - alts) : strlen(alts);
		long used = alt_match(t, i, alts, alen, loose, NULL);

		if (used > 0)
			return (size_t)used;
		alts += alen + (bar ? 1 : 0);
	}
	return 0;
}

/* The extra entry e of list l matches at word i: returns words used, or 0. */
static size_t extra_match(const struct kw_text *t, size_t i, const struct kw_extra *x,
    enum kw_list l, size_t e)
{
	long used = alt_match(t, i, x->buf + x->off[l][e], x->len[l][e], 1, NULL);

	return used > 0 ? (size_t)used : 0;
}

static size_t fillers_at(const struct kw_text *t, size_t i, const struct kw_extra *x)
{
	size_t used = alts_match_first(t, i, KW_FILLERS, 1), e;

	if (used > 0 || x == NULL)
		return used;
	for (e = 0; e < x->n[KW_LIST_FILLER]; e++)
		if ((used = extra_match(t, i, x, KW_LIST_FILLER, e)) > 0)
			return used;
	return 0;
}

/* Slots k.. of a phrase match from word i (backtracking over alternatives and
 * optional slots; depth is at most KW_SLOTS_MAX). */
static int slots_match(const struct kw_text *t, size_t i, const char *const *slot,
    size_t k, const struct kw_extra *x)
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
		long used = alt_match(t, i, alts, alen, 1, x);

		if (used >= 0 && slots_match(t, i + (size_t)used, slot, k + 1, x))
			return 1;
		alts += alen + (bar ? 1 : 0);
	}
	return optional && slots_match(t, i, slot, k + 1, x);
}

/* The longest keyword of table kw, or (when x is given) extra opt-out word, at word i
 * ("cancelar inscricao" over "cancelar"). Returns words used and sets *label (a table
 * label, or "" for an extra word with *xe set to its entry), or returns 0. */
static size_t keyword_at(const struct kw_text *t, size_t i, const struct kw_bare *kw,
    size_t nkw, int loose, const struct kw_extra *x, const char **label, size_t *xe)
{
	size_t j, used, best = 0;
	long u;

	for (j = 0; j < nkw; j++) {
		u = alt_match(t, i, kw[j].words, strlen(kw[j].words), loose, NULL);
		if (u > 0 && (size_t)u > best) {
			best = (size_t)u;
			*label = kw[j].label;
		}
	}
	for (j = 0; x != NULL && j < x->n[KW_LIST_OPT_OUT]; j++) {
		if ((used = extra_match(t, i, x, KW_LIST_OPT_OUT, j)) > best) {
			best = used;
			*label = "";
			*xe = j;
		}
	}
	return best;
}

/* What decided a match: a label, or an extra entry to print upper-cased. */
struct kw_hit {
	const char *label;
	const char *prefix;
	const struct kw_extra *x;
	size_t xe;
};

/*
 * Words [from, to) are keywords from table kw (and x's opt-out words when x is given;
 * at least one) and, when fillers is set, fillers; without fillers they are exactly
 * one keyword. Returns 1 and fills *hit with the first keyword, or 0.
 */
static int bare_match(const struct kw_text *t, size_t from, size_t to,
    const struct kw_bare *kw, size_t nkw, int fillers, int loose,
    const struct kw_extra *x, struct kw_hit *hit)
{
	const char *label = NULL, *first = NULL;
	size_t i = from, used, xe = 0, first_xe = 0;

	if (t->truncated || to <= from || to - from > KW_BARE_WORDS_MAX)
		return 0;
	while (i < to) {
		used = keyword_at(t, i, kw, nkw, loose, x, &label, &xe);
		if (used > 0 && i + used <= to && (first == NULL || fillers)) {
			if (first == NULL) {
				first = label;
				first_xe = xe;
			}
			i += used;
		} else if (fillers && (used = fillers_at(t, i, x)) > 0 && i + used <= to) {
			i += used;
		} else {
			return 0;
		}
	}
	if (first == NULL)
		return 0;
	hit->label = first;
	hit->prefix = "";
	hit->x = *first == '\0' ? x : NULL;
	hit->xe = first_xe;
	return 1;
}

#define NKW(a) (sizeof(a) / sizeof((a)[0]))

/* Some clause of the message (words between breaks) is a bare opt-out keyword with
 * fillers: "Not interested, STOP", "who is this? stop". */
static int clause_match(const struct kw_text *t, const struct kw_extra *x,
    struct kw_hit *hit)
{
	size_t from = 0, to;

	while (from < t->n) {
		for (to = from + 1; to < t->n && t->brk[to] == KW_BRK_NONE; to++)
			;
		if (bare_match(t, from, to, kw_opt_out, NKW(kw_opt_out), 1, 1, x, hit))
			return 1;
		from = to;
	}
	return 0;
}

/* Some phrase of kw_phrases matches somewhere in t, not right after a negation. */
static int phrase_match(const struct kw_text *t, const struct kw_extra *x,
    struct kw_hit *hit)
{
	size_t i, p;

	for (i = 0; i < t->n; i++) {
		if (i > 0 && t->brk[i] == KW_BRK_NONE &&
		    alts_match_first(t, i - 1, KW_NEGATIONS, 1) > 0)
			continue;
		for (p = 0; p < NKW(kw_phrases); p++) {
			if (slots_match(t, i, kw_phrases[p].slot, 0, x)) {
				hit->label = kw_phrases[p].name;
				hit->prefix = "phrase:";
				hit->x = NULL;
				return 1;
			}
		}
	}
	return 0;
}

/* A word of the message is an opt-out keyword although the message is not an
 * opt-out ("stop by the store"): the hit names that word. */
static int unclear_match(const struct kw_text *t, const struct kw_extra *x,
    struct kw_hit *hit)
{
	const char *label = NULL;
	size_t i, xe = 0;

	for (i = 0; i < t->n; i++) {
		if (keyword_at(t, i, kw_opt_out, NKW(kw_opt_out), 1, x, &label, &xe) == 0)
			continue;
		hit->label = "";
		hit->prefix = KW_UNCLEAR_PREFIX;
		hit->x = NULL;
		hit->xe = i;            /* the word itself is printed */
		return 1;
	}
	return 0;
}

/* Writes prefix and the label (or the extra entry upper-cased) into matched. */
static void hit_write(const struct kw_text *t, const struct kw_hit *hit, char *matched,
    size_t msize)
{
	const char *src = hit->label;
	size_t slen, o, k;
	int upper = 0;

	if (matched == NULL || msize == 0)
		return;
	if (hit->x != NULL) {
		src = hit->x->buf + hit->x->off[KW_LIST_OPT_OUT][hit->xe];
		slen = hit->x->len[KW_LIST_OPT_OUT][hit->xe];
		upper = 1;
	} else if (*hit->prefix != '\0' && strcmp(hit->prefix, KW_UNCLEAR_PREFIX) == 0) {
		src = t->buf + t->off[hit->xe];
		slen = t->len[hit->xe];
	} else {
		slen = strlen(src);
	}
	o = (size_t)snprintf(matched, msize, "%s", hit->prefix);
	if (o >= msize)
		return;
	for (k = 0; k < slen && o + 1 < msize; k++) {
		char c = src[k];

		if (upper && c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		matched[o++] = c;
	}
	matched[o] = '\0';
}

enum kw_kind kw_classify_with(const struct kw_extra *extra, const char *body,
    size_t len, char *matched, size_t msize)
{
	struct kw_text t;
	struct kw_hit hit = { "", "", NULL, 0 };
	enum kw_kind kind = KW_NONE;

	if (body == NULL)
		len = 0;
	kw_text_normalize(&t, (const unsigned char *)body, len);
	if (bare_match(&t, 0, t.n, kw_opt_out, NKW(kw_opt_out), 1, 1, extra, &hit))
		kind = KW_OPT_OUT;
	else if (bare_match(&t, 0, t.n, kw_opt_in, NKW(kw_opt_in), 0, 0, NULL, &hit))
		kind = KW_OPT_IN;
	else if (bare_match(&t, 0, t.n, kw_help, NKW(kw_help), 1, 1, NULL, &hit))
		kind = KW_HELP;
	else if (clause_match(&t, extra, &hit) || phrase_match(&t, extra, &hit))
		kind = KW_OPT_OUT;
	else if (!unclear_match(&t, extra, &hit))
		hit.label = "";
	hit_write(&t, &hit, matched, msize);
	return kind;
}

enum kw_kind kw_classify(const char *body, size_t len, char *matched, size_t msize)
{
	return kw_classify_with(NULL, body, len, matched, msize);
}

/* ---- words from config --------------------------------------------------------- */

int kw_extra_add(struct kw_extra *x, enum kw_list which, const char *csv, char *err,
    size_t esize)
{
	struct kw_text one;
	struct kw_hit hit;
	const char *p = csv, *entry, *comma;
	size_t n, k, need;

	if ((unsigned)which >= KW_LIST_COUNT) {
		snprintf(err, esize, "unknown word list");
		return -1;
	}
	while (*p != '\0') {
		entry = p;
		comma = strchr(p, ',');
		n = comma ? (size_t)(comma - p) : strlen(p);
		p += n + (comma ? 1 : 0);
		kw_text_normalize(&one, (const unsigned char *)entry, n);
		if (one.n == 0) {
			if (strspn(entry, " \t") < n) {
				snprintf(err, esize, "'%.*s' has no letters or digits", (int)n,
				    entry);
				return -1;
			}
			continue;   /* an empty entry: ",," or a trailing comma */
		}
		if (one.n > 3 || strlen(one.buf) > KW_EXTRA_ENTRY_MAX) {
			snprintf(err, esize, "'%.*s': an entry is 1 to 3 words of at most %d "
			    "letters", (int)n, entry, KW_EXTRA_ENTRY_MAX);
			return -1;
		}
		if (which == KW_LIST_OPT_OUT) {
			if (bare_match(&one, 0, one.n, kw_opt_in, NKW(kw_opt_in), 0, 0, NULL,
			    &hit) || bare_match(&one, 0, one.n, kw_help, NKW(kw_help), 0, 1,
			    NULL, &hit)) {
				snprintf(err, esize, "'%s' is an opt-in or help keyword", one.buf);
				return -1;
			}
			if (fillers_at(&one, 0, x) == one.n) {
				snprintf(err, esize, "'%s' is a filler word", one.buf);
				return -1;
			}
		}
		need = strlen(one.buf);
		if (x->n[which] == KW_EXTRA_MAX || x->used + need > KW_EXTRA_BYTES) {
			snprintf(err, esize, "more than %d entries or %d bytes of words",
			    KW_EXTRA_MAX, KW_EXTRA_BYTES);
			return -1;
		}
		k = x->n[which]++;
		x->off[which][k] = (uint16_t)x->used;
		x->len[which][k] = (uint8_t)need;
		memcpy(x->buf + x->used, one.buf, need);
		x->used += need;
	}
	return 0;
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
