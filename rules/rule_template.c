/*
 * rule_template.c: message templates (stage: match): compiling "{title} {price} ..."
 * into parts, rendering them for a (deal, subscriber), money by currency, GSM-7 versus
 * UCS-2 and SMS segment counting, and shortening the title (only the title) to meet a
 * segment cap.
 * Pure: the local time of {expires_local} comes from a caller's callback (tzdata is
 * I/O); no globals, no clock; output is always valid UTF-8; never aborts on OOM.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "rule_int.h"

/* ORDER PH: names of enum rule_ph from PH_TITLE. */
static const char *const ph_names[PH_COUNT] = {
	"", "title", "price", "list_price", "discount_pct", "code", "expires_local",
	"link", "brand"
};

#define PH_NAME_MAX 32
#define REPLACEMENT "\xEF\xBF\xBD"  /* U+FFFD */

/* The placeholder name closest to the len bytes at name ("titel" → "title"), or NULL. */
static const char *
suggest_ph(const char *name, size_t len)
{
	char word[PH_NAME_MAX + 1];

	if (len > PH_NAME_MAX)
		return NULL;
	memcpy(word, name, len);
	word[len] = '\0';
	return rule_suggest(word, ph_names + PH_TITLE, PH_COUNT - PH_TITLE);
}

/* Decodes one character at p (n > 0 bytes left): returns its length and sets *cp;
 * an invalid sequence is one byte long and decodes as U+FFFD with *bad set. */
static size_t
decode(const unsigned char *p, size_t n, uint32_t *cp, int *bad)
{
	size_t len, i;
	uint32_t c;

	*bad = 0;
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		len = 2, c = p[0] & 0x1F;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		len = 3, c = p[0] & 0x0F;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		len = 4, c = p[0] & 0x07;
	else
		goto invalid;
	if (len > n)
		goto invalid;
	for (i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			goto invalid;
		c = (c << 6) | (p[i] & 0x3F);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
	    (c >= 0xD800 && c <= 0xDFFF))
		goto invalid;
	*cp = c;
	return len;
invalid:
	*bad = 1;
	*cp = 0xFFFD;
	return 1;
}

/* ---- compiling ---- */

static int
tpl_fail(size_t off, size_t *bad_off, char *msg, size_t msgsize, const char *text)
{
	*bad_off = off;
	snprintf(msg, msgsize, "%s", text);
	return -1;
}

struct rule_template *
rule_tpl_compile(struct rule_arena *a, const char *text, size_t len, size_t *bad_off,
    char *msg, size_t msgsize)
{
	struct rule_template *t;
	struct rule_tpart *parts;
	char *lit;
	size_t i = 0, np = 0, nl = 0, start, k;
	const char *alt;
	uint32_t cp;
	int bad;

	msg[0] = '\0';
	/* at most one part per byte plus one */
	t = rule_arena_alloc(a, sizeof(*t));
	parts = rule_arena_alloc(a, (len + 1) * sizeof(*parts));
	lit = rule_arena_alloc(a, len + 1);
	if (t == NULL || parts == NULL || lit == NULL ||
	    (t->text = rule_arena_strndup(a, text, len)) == NULL)
		return NULL;
	t->len = len;
	while (i < len) {
		unsigned char c = (unsigned char)text[i];

		if (c == '\0') {
			tpl_fail(i, bad_off, msg, msgsize, "NUL byte in template");
			return NULL;
		}
		if (c == '{' && i + 1 < len && text[i + 1] == '{') {
			c = '{';
			i += 2;
		} else if (c == '}' && i + 1 < len && text[i + 1] == '}') {
			c = '}';
			i += 2;
		} else if (c == '}') {
			tpl_fail(i, bad_off, msg, msgsize, "unmatched '}' in template; write '}}' "
			    "for a literal brace");
			return NULL;
		} else if (c == '{') {
			start = i++;
			while (i < len && i - start <= PH_NAME_MAX && text[i] != '}' &&
			    text[i] != '{')
				i++;
			if (i >= len || text[i] != '}') {
				tpl_fail(start, bad_off, msg, msgsize, "unterminated placeholder in "
				    "template; close it with '}' or write '{{' for a literal brace");
				return NULL;
			}
			for (k = PH_TITLE; k < PH_COUNT; k++)
				if (strlen(ph_names[k]) == i - start - 1 &&
				    memcmp(ph_names[k], text + start + 1, i - start - 1) == 0)
					break;
			if (k == PH_COUNT &&
			    (alt = suggest_ph(text + start + 1, i - start - 1)) != NULL) {
				*bad_off = start;
				snprintf(msg, msgsize, "unknown template placeholder '{%.*s}'; did "
				    "you mean '{%s}'?", (int)(i - start - 1), text + start + 1, alt);
				return NULL;
			}
			if (k == PH_COUNT) {
				*bad_off = start;
				snprintf(msg, msgsize, "unknown template placeholder '{%.*s}' "
				    "(known: {title} {price} {list_price} {discount_pct} {code} "
				    "{expires_local} {link} {brand})", (int)(i - start - 1),
				    text + start + 1);
				return NULL;
			}
			i++;
			parts[np].kind = (int)k;
			np++;
			continue;
		} else {
			size_t l = decode((const unsigned char *)text + i, len - i, &cp, &bad);

			if (bad) {
				tpl_fail(i, bad_off, msg, msgsize, "invalid UTF-8 in template");
				return NULL;
			}
			/* a literal run: copy it whole */
			if (np == 0 || parts[np - 1].kind != PH_LIT) {
				parts[np].kind = PH_LIT;
				parts[np].s = lit + nl;
				parts[np].len = 0;
				np++;
			}
			memcpy(lit + nl, text + i, l);
			nl += l;
			parts[np - 1].len += l;
			i += l;
			continue;
		}
		if (np == 0 || parts[np - 1].kind != PH_LIT) {
			parts[np].kind = PH_LIT;
			parts[np].s = lit + nl;
			parts[np].len = 0;
			np++;
		}
		lit[nl++] = (char)c;
		parts[np - 1].len++;
	}
	t->parts = parts;
	t->nparts = np;
	return t;
}

struct rule_template *
rule_template_new(const char *text, size_t len, struct err *err)
{
	struct rule_arena a = { NULL, 0 };
	struct rule_template *t;
	size_t bad = 0;
	char msg[200], off[32];

	err_clear(err);
	t = rule_tpl_compile(&a, text != NULL ? text : "", text != NULL ? len : 0, &bad,
	    msg, sizeof(msg));
	if (t == NULL) {
		rule_arena_free(&a);
		if (msg[0] == '\0') {
			err_set(err, ERR_NOMEM, "no_memory", NULL, "out of memory");
		} else {
			snprintf(off, sizeof(off), "%zu", bad);
			err_set(err, ERR_INPUT, "bad_template", off, "%s", msg);
		}
		return NULL;
	}
	t->owned = 1;
	t->arena = a;  /* the template lives in its own arena */
	return t;
}

void
rule_template_free(struct rule_template *t)
{
	struct rule_arena a;

	if (t == NULL || !t->owned)
		return;
	a = t->arena;
	rule_arena_free(&a);
}

const char *
rule_template_text(const struct rule_template *t)
{
	return t->text;
}

/* ---- SMS counting ---- */

/* Septets of each ASCII character in GSM 03.38: 1 basic, 2 extension (form feed,
 * [, backslash, ], ^, {, |, }, ~), 0 when it has none (the other control characters
 * and the backtick). A text is mostly ASCII: one lookup per character, no decoding. */
static const unsigned char gsm_ascii[128] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2, 1, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 1,
	0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 0,
};

/* Septets of cp in GSM 03.38 (1 basic, 2 extension), 0 when it has none. */
static unsigned
gsm_septets(uint32_t cp)
{
	static const uint16_t basic[] = {
		0xA3, 0xA5, 0xE8, 0xE9, 0xF9, 0xEC, 0xF2, 0xC7, 0xD8, 0xF8, 0xC5, 0xE5,
		0x394, 0x3A6, 0x393, 0x39B, 0x3A9, 0x3A0, 0x3A8, 0x3A3, 0x398, 0x39E,
		0xC6, 0xE6, 0xDF, 0xC9, 0xA4, 0xA1, 0xC4, 0xD6, 0xD1, 0xDC, 0xA7, 0xBF,
		0xE4, 0xF6, 0xF1, 0xFC, 0xE0
	};
	size_t i;

	if (cp < 0x80)
		return gsm_ascii[cp];
	if (cp == 0x20AC)
		return 2;
	for (i = 0; i < sizeof(basic) / sizeof(basic[0]); i++)
		if (basic[i] == cp)
			return 1;
	return 0;
}

/* Decodes the character at p as decode() does, an ASCII byte without the call. */
static size_t
next_cp(const unsigned char *p, size_t n, uint32_t *cp)
{
	int bad;

	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	return decode(p, n, cp, &bad);
}

unsigned
rule_sms_count(const char *s, size_t len, enum rule_encoding *enc, unsigned *units)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i, l;
	uint32_t cp;
	unsigned total = 0, seg = 1, used = 0, w, single, part;
	int gsm = 1;

	/* Most texts are ASCII with a septet for every character: one pass. */
	for (i = 0; i < len && p[i] < 0x80 && (w = gsm_ascii[p[i]]) != 0; i++) {
		total += w;
		if (used + w > 153) {
			seg++;
			used = 0;
		}
		used += w;
	}
	if (i == len) {
		*enc = RULE_ENC_GSM7;
		*units = total;
		return total == 0 ? 0 : total <= 160 ? 1 : seg;
	}
	total = 0;
	seg = 1;
	used = 0;
	for (i = 0; i < len && gsm; i += l) {
		l = next_cp(p + i, len - i, &cp);
		if (gsm_septets(cp) == 0)
			gsm = 0;
	}
	*enc = gsm ? RULE_ENC_GSM7 : RULE_ENC_UCS2;
	single = gsm ? 160 : 70;
	part = gsm ? 153 : 67;
	for (i = 0; i < len; i += l) {
		l = next_cp(p + i, len - i, &cp);
		w = gsm ? gsm_septets(cp) : (cp > 0xFFFF ? 2 : 1);
		total += w;
		if (used + w > part) {  /* never split an escape or a surrogate pair */
			seg++;
			used = 0;
		}
		used += w;
	}
	*units = total;
	if (total == 0)
		return 0;
	return total <= single ? 1 : seg;
}

/* ---- money ---- */

/* Appends s at *pos as rule_buf_printf(buf, size, pos, "%s", s) does: cut to fit
 * (NUL-terminated), *pos advanced by all of s. */
static void
money_put(char *buf, size_t size, size_t *pos, const char *s)
{
	size_t n = strlen(s), k;

	if (*pos < size) {
		k = n < size - *pos - 1 ? n : size - *pos - 1;
		memcpy(buf + *pos, s, k);
		buf[*pos + k] = '\0';
	}
	*pos += n;
}

size_t
rule_money_format(double amount, const char *currency, char *buf, size_t size)
{
	const char *pre = "", *cur = currency != NULL ? currency : "";
	char digits[40], grouped[64];
	unsigned long long units, whole;
	int dec = 2, n, i, g = 0;
	size_t pos = 0;

	if (size > 0)
		buf[0] = '\0';
	if (strcmp(cur, "USD") == 0)
		pre = "$";
	else if (strcmp(cur, "GBP") == 0)
		pre = "£";
	else if (strcmp(cur, "EUR") == 0)
		pre = "€";
	else if (strcmp(cur, "JPY") == 0)
		pre = "¥", dec = 0;
	if (!isfinite(amount) || fabs(amount) >= 1e15) {
		rule_buf_printf(buf, size, &pos, "%s%.*f%s%s", pre, dec, amount,
		    pre[0] == '\0' && cur[0] != '\0' ? " " : "", pre[0] == '\0' ? cur : "");
		return pos;
	}
	units = (unsigned long long)llround(fabs(amount) * (dec ? 100.0 : 1.0));
	whole = dec ? units / 100 : units;
	n = 0;
	do {
		digits[n++] = (char)('0' + whole % 10);
		whole /= 10;
	} while (whole != 0);
	for (i = n - 1; i >= 0; i--) {
		grouped[g++] = digits[i];
		if (i > 0 && i % 3 == 0)
			grouped[g++] = ',';
	}
	grouped[g] = '\0';
	/* Two renderings a push: appended piece by piece, not through printf. */
	money_put(buf, size, &pos, amount < 0 && units > 0 ? "-" : "");
	money_put(buf, size, &pos, pre);
	money_put(buf, size, &pos, grouped);
	if (dec) {
		char cents[4] = { '.', (char)('0' + units % 100 / 10), (char)('0' + units % 10),
			'\0' };

		money_put(buf, size, &pos, cents);
	}
	if (pre[0] == '\0' && cur[0] != '\0') {
		money_put(buf, size, &pos, " ");
		money_put(buf, size, &pos, cur);
	}
	return pos;
}

/* ---- rendering ---- */

struct dbuf {
	char *p;
	size_t n;
	size_t cap;
	int oom;
};

static void
put(struct dbuf *b, const char *s, size_t n)
{
	if (b->oom || n == 0)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t ncap = b->cap ? b->cap : 256;
		char *np;

		while (ncap < b->n + n + 1)
			ncap *= 2;
		if ((np = realloc(b->p, ncap)) == NULL) {
			b->oom = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

/* Appends up to maxcp characters of s, invalid sequences as U+FFFD. Valid characters
 * go out in runs, one put() per run rather than per character. */
static void
put_clean(struct dbuf *b, const char *s, size_t maxcp)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, run = 0, l, k;
	uint32_t cp;
	int bad;

	for (k = 0; i < n && k < maxcp; k++, i += l) {
		l = p[i] < 0x80 ? 1 : decode(p + i, n - i, &cp, &bad);
		if (p[i] >= 0x80 && bad) {
			put(b, s + run, i - run);
			put(b, REPLACEMENT, 3);
			run = i + l;
		}
	}
	put(b, s + run, i - run);
}

static size_t
count_cp(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i, k = 0;
	uint32_t cp;
	int bad;

	for (i = 0; i < n; k++)
		i += p[i] < 0x80 ? 1 : decode(p + i, n - i, &cp, &bad);
	return k;
}

/* "19:00 UTC" within a day of now, else "2026-11-22 19:00 UTC". */
static void
utc_format(int64_t t, int64_t now, char *buf, size_t size)
{
	int64_t days = t / 86400, secs = t % 86400, z, era, doe, yoe, y, doy, mp, d, m;

	if (secs < 0) {
		secs += 86400;
		days--;
	}
	z = days + 719468;  /* civil_from_days */
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp < 10 ? mp + 3 : mp - 9;
	y += m <= 2;
	if (t - now < 86400 && t - now > -86400)
		snprintf(buf, size, "%02d:%02d UTC", (int)(secs / 3600),
		    (int)(secs % 3600 / 60));
	else
		snprintf(buf, size, "%04lld-%02d-%02d %02d:%02d UTC", (long long)y, (int)m,
		    (int)d, (int)(secs / 3600), (int)(secs % 3600 / 60));
}

struct values {
	const char *v[PH_COUNT];
	char price[64];
	char list_price[64];
	char discount[24];
	char expires[128];
};

static void
values_fill(struct values *vs, const struct rule_render_in *in)
{
	const struct deal *d = in->deal;
	double pct = d->discount_pct;
	const char *tz;
	size_t n = 0;

	memset(vs, 0, sizeof(*vs));
	vs->v[PH_TITLE] = d->title != NULL ? d->title : "";
	vs->v[PH_BRAND] = d->brand != NULL ? d->brand : "";
	vs->v[PH_CODE] = in->code != NULL ? in->code : d->code != NULL ? d->code : "";
	vs->v[PH_LINK] = in->link != NULL ? in->link : d->url != NULL ? d->url : "";
	if (d->has_price)
		rule_money_format(d->price, d->currency, vs->price, sizeof(vs->price));
	if (d->has_list_price)
		rule_money_format(d->list_price, d->currency, vs->list_price,
		    sizeof(vs->list_price));
	vs->v[PH_PRICE] = vs->price;
	vs->v[PH_LIST_PRICE] = vs->list_price;
	if (!(pct >= 0))
		pct = 0;
	if (pct > 100)
		pct = 100;
	snprintf(vs->discount, sizeof(vs->discount), "%d", (int)floor(pct + 1e-9));
	vs->v[PH_DISCOUNT] = vs->discount;
	tz = in->sub != NULL && in->sub->timezone != NULL ? in->sub->timezone : "";
	if (in->fmt_local != NULL)
		n = in->fmt_local(in->fmt_arg, tz, d->expires_at, vs->expires,
		    sizeof(vs->expires));
	if (n == 0 || n >= sizeof(vs->expires))
		utc_format(d->expires_at, in->now, vs->expires, sizeof(vs->expires));
	vs->expires[sizeof(vs->expires) - 1] = '\0';
	vs->v[PH_EXPIRES] = vs->expires;
}

/* Renders t with at most title_cp characters of the title, then ell after a cut one. */
static void
render_into(struct dbuf *b, const struct rule_template *t, const struct values *vs,
    size_t title_cp, const char *ell)
{
	size_t i;

	b->n = 0;
	put(b, "", 0);
	if (b->p != NULL)
		b->p[0] = '\0';
	for (i = 0; i < t->nparts; i++) {
		const struct rule_tpart *pt = &t->parts[i];

		if (pt->kind == PH_LIT) {
			put(b, pt->s, pt->len);
		} else if (pt->kind == PH_TITLE) {
			put_clean(b, vs->v[PH_TITLE], title_cp);
			if (title_cp > 0 && ell != NULL)
				put(b, ell, strlen(ell));
		} else {
			put_clean(b, vs->v[pt->kind], (size_t)-1);
		}
	}
}

/* Segments of the rendering with k title characters; *ell_out the ellipsis used. */
static unsigned
try_cut(struct dbuf *b, const struct rule_template *t, const struct values *vs,
    size_t k, enum rule_encoding *enc, unsigned *units)
{
	const char *ell = NULL;

	if (k > 0) {
		render_into(b, t, vs, k, NULL);
		rule_sms_count(b->p != NULL ? b->p : "", b->n, enc, units);
		ell = *enc == RULE_ENC_GSM7 ? "..." : "\xE2\x80\xA6";
	}
	render_into(b, t, vs, k, ell);
	return rule_sms_count(b->p != NULL ? b->p : "", b->n, enc, units);
}

/* The title characters to keep so that the rendering fits cap: the largest k that
 * fits, backed up to the end of the last whole word within it (a trailing comma
 * dropped), never none: when not even the first word fits, as much of it as fits.
 * -1 when not one character of the title fits. */
static long
best_cut(struct dbuf *b, const struct rule_template *t, const struct values *vs,
    size_t full, unsigned cap)
{
	enum rule_encoding enc;
	unsigned units;
	size_t lo = 1, hi = full, mid, best = 0, i, l, k, solid = 0, lastcut = 0, cut;
	const unsigned char *title = (const unsigned char *)vs->v[PH_TITLE];
	size_t n = strlen(vs->v[PH_TITLE]);
	uint32_t cp = 0;
	int bad;

	if (try_cut(b, t, vs, 0, &enc, &units) > cap)
		return -1;
	while (lo < hi) {  /* best fits; the answer is in [lo, hi) or is best */
		mid = lo + (hi - lo) / 2;
		if (try_cut(b, t, vs, mid, &enc, &units) <= cap) {
			best = mid;
			lo = mid + 1;
		} else {
			hi = mid;
		}
	}
	if (best == 0)
		return -1;                   /* an empty title is no text worth sending */
	for (i = 0, k = 0; i < n && k <= best; k++, i += l) {
		l = decode(title + i, n - i, &cp, &bad);
		if (k == best)
			break;  /* cp is the first character cut */
		if (cp == ' ')
			lastcut = solid;
		else if (cp != ',')
			solid = k + 1;
	}
	if (k != best || i >= n)
		return (long)best;
	/* Cut just before a space: the words kept are whole. Else back to the last
	 * word's end; a first word longer than the room is cut inside. */
	cut = cp == ' ' ? solid : lastcut;
	if (cut > 0 && cut < best && try_cut(b, t, vs, cut, &enc, &units) <= cap)
		best = cut;
	return (long)best;
}

int
rule_render(const struct rule_template *t, const struct rule_render_in *in,
    struct rule_text *out, struct err *err)
{
	struct values vs;
	struct dbuf b = { NULL, 0, 0, 0 };
	size_t full;
	long k;

	memset(out, 0, sizeof(*out));
	values_fill(&vs, in);
	full = count_cp(vs.v[PH_TITLE]);
	render_into(&b, t, &vs, (size_t)-1, NULL);
	if (b.oom)
		goto nomem;
	out->segments = rule_sms_count(b.p != NULL ? b.p : "", b.n, &out->enc, &out->units);
	if (channel_def(in->channel) != NULL && channel_def(in->channel)->segments &&
	    in->max_segments > 0 &&
	    out->segments > in->max_segments) {
		if ((k = best_cut(&b, t, &vs, full, in->max_segments)) < 0) {
			free(b.p);
			memset(out, 0, sizeof(*out));
			return err_set(err, ERR_INPUT, "too_long", NULL, "message needs more "
			    "than %u SMS segments with even one character of its title",
			    in->max_segments);
		}
		out->segments = try_cut(&b, t, &vs, (size_t)k, &out->enc, &out->units);
		out->shortened = 1;
		if (b.oom)
			goto nomem;
	}
	if (b.p == NULL && (b.p = calloc(1, 1)) == NULL)
		goto nomem;
	out->s = b.p;
	out->len = b.n;
	return 0;
nomem:
	free(b.p);
	memset(out, 0, sizeof(*out));
	return err_set(err, ERR_NOMEM, "no_memory", NULL, "out of memory rendering");
}

void
rule_text_free(struct rule_text *out)
{
	if (out == NULL)
		return;
	free(out->s);
	memset(out, 0, sizeof(*out));
}

/* 1 when the literal text of t holds word (lower-case ASCII) as a whole word, in
 * any case. */
static int
tpl_has_word(const struct rule_template *t, const char *word)
{
	size_t i, j, k, w = strlen(word);

	for (i = 0; i < t->nparts; i++) {
		const char *s = t->parts[i].s;
		size_t n = t->parts[i].len;

		if (t->parts[i].kind != PH_LIT)
			continue;
		for (j = 0; j + w <= n; j++) {
			int before = j == 0 ? ' ' : (unsigned char)s[j - 1];
			int after = j + w == n ? ' ' : (unsigned char)s[j + w];

			for (k = 0; k < w && rule_lower((unsigned char)s[j + k]) == word[k]; k++)
				;
			if (k == w && !((before | 32) >= 'a' && (before | 32) <= 'z') &&
			    !((after | 32) >= 'a' && (after | 32) <= 'z'))
				return 1;
		}
	}
	return 0;
}

/* 1 when the literal text of t contains the word STOP (any case). */
int
rule_tpl_has_optout(const struct rule_template *t)
{
	return tpl_has_word(t, "stop");
}

int
rule_tpl_has_optout_in(const struct rule_template *t, const char *lang)
{
	/* Spanish: the opt-out words Twilio and notifier/keywords.c honour. */
	return rule_tpl_has_optout(t) || (strcmp(lang, "es") == 0 &&
	    (tpl_has_word(t, "alto") || tpl_has_word(t, "baja")));
}
