/*
 * kwtext.c: normalize an inbound message body into lowercase ASCII words with their
 * clause and sentence breaks (stage: http, before keywords.c matches it).
 *
 * Must never allocate, read global state, or read past len. What each fold is for,
 * and the known misses: docs/inbound.md section 1.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kwtext.h"

/*
 * ASCII for U+00C0..U+00FF and U+0100..U+017F, the Latin letters of the languages we
 * expect (NFD-style: the base letter without its accent). '.' is not a letter (×, ÷);
 * 'A' stands for "ae", 'S' for "ss", 'O' for "oe", 'J' for "ij".
 */
static const char kw_latin1[64 + 1] =
	"aaaaaaAceeeeiiiidnooooo.ouuuuytS"
	"aaaaaaAceeeeiiiidnooooo.ouuuuyty";
static const char kw_latin_ext_a[128 + 1] =
	"aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiiiJJjjkkkllllllllll"
	"nnnnnnnnnooooooOOrrrrrrsssssssstttttt" "uuuuuuuuuuuuwwyyyzzzzzzs";

/* Appends one ASCII byte of a word to t; opens a word when none is open. *brk is the
 * break seen since the last word; it is given to a new word and reset. */
static void text_put(struct kw_text *t, size_t *pos, int *inword, int *brk,
    unsigned char c)
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
		t->brk[t->n] = (uint8_t)*brk;
		t->n++;
		*inword = 1;
		*brk = KW_BRK_NONE;
	}
	t->buf[(*pos)++] = (char)c;
	t->len[t->n - 1]++;
}

/* The break a separator byte makes (ASCII only; other bytes make none). */
static int sep_break(unsigned c)
{
	if (c == '.' || c == '!' || c == '?' || c == ';' || c == '\n' || c == '\r')
		return KW_BRK_SENTENCE;
	if (c == ',' || c == ':')
		return KW_BRK_CLAUSE;
	return KW_BRK_NONE;
}

/*
 * Decodes one character at s[i..n) that is not plain ASCII into out (up to 2 ASCII
 * letters, "'" for an apostrophe, "" for a mark to drop inside a word) and returns
 * the bytes it took, or 0 when it is a separator (every other non-ASCII byte).
 */
static size_t decode_special(const unsigned char *s, size_t i, size_t n, char out[3])
{
	unsigned c = s[i], cp;
	char m;

	out[0] = out[1] = out[2] = '\0';
	if (c == 0xE2 && i + 2 < n && s[i + 1] == 0x80 &&
	    (s[i + 2] == 0x98 || s[i + 2] == 0x99)) {
		out[0] = '\'';                  /* U+2018, U+2019 */
		return 3;
	}
	if (c == 0xEF && i + 2 < n &&
	    ((s[i + 1] == 0xBC && s[i + 2] >= 0x81 && s[i + 2] <= 0xBF) ||
	    (s[i + 1] == 0xBD && s[i + 2] >= 0x80 && s[i + 2] <= 0x9E))) {
		/* U+FF01..U+FF3F are EF BC 81..BF, U+FF40..U+FF5E are EF BD 80..9E */
		out[0] = (char)(s[i + 1] == 0xBC ? 0x21 + (s[i + 2] - 0x81u) :
		    0x60 + (s[i + 2] - 0x80u));
		return 3;
	}
	if (c < 0xC2 || c > 0xCD || i + 1 >= n || (s[i + 1] & 0xC0) != 0x80)
		return 0;
	cp = ((c & 0x1Fu) << 6) | (s[i + 1] & 0x3Fu);
	if (cp == 0x2BC) {
		out[0] = '\'';                  /* U+02BC modifier apostrophe */
		return 2;
	}
	if (cp >= 0x300 && cp <= 0x36F)
		return 2;                       /* combining mark (NFD input): dropped */
	if (cp >= 0xC0 && cp <= 0xFF)
		m = kw_latin1[cp - 0xC0];
	else if (cp >= 0x100 && cp <= 0x17F)
		m = kw_latin_ext_a[cp - 0x100];
	else
		return 0;
	switch (m) {
	case '.':
		return 0;
	case 'A':
		memcpy(out, "ae", 2);
		break;
	case 'S':
		memcpy(out, "ss", 2);
		break;
	case 'O':
		memcpy(out, "oe", 2);
		break;
	case 'J':
		memcpy(out, "ij", 2);
		break;
	default:
		out[0] = m;
	}
	return 2;
}

/*
 * Joins every run of KW_SPELLED_MIN or more one-letter words into one word ("s t o p",
 * "S.T.O.P" read "stop"); the run keeps the break of its first letter. In place: the
 * output is never longer than the input.
 */
static void text_join_spelled(struct kw_text *t)
{
	size_t i = 0, j, k, w = 0, pos = 0;

	while (i < t->n) {
		/* letters after the first must all have the same break before them: none
		 * ("s t o p") or each a dot ("s.t.o.p") */
		for (j = i + 1; t->len[i] == 1 && j < t->n && t->len[j] == 1 &&
		    t->brk[j] == t->brk[i + 1]; j++)
			;
		if (j - i < KW_SPELLED_MIN)
			j = i + 1;
		if (w > 0)
			t->buf[pos++] = ' ';
		t->brk[w] = t->brk[i];
		/* the run's own breaks are gone; the first word's length is read before
		 * anything is moved over it */
		{
			size_t total = 0;

			for (k = i; k < j; k++) {
				memmove(t->buf + pos + total, t->buf + t->off[k], t->len[k]);
				total += t->len[k];
			}
			t->off[w] = (uint16_t)pos;
			t->len[w] = (uint16_t)total;
			pos += total;
		}
		w++;
		i = j;
	}
	t->n = w;
	t->buf[pos] = '\0';
}

/*
 * Normalizes body into t. ASCII letters and digits make words (letters lowercased);
 * Latin-1 and Latin Extended-A letters count as their base letter ("ñ" is "n", "ß" is
 * "ss"); combining marks and apostrophes (' U+2018 U+2019 U+02BC U+FF07) are dropped
 * inside words so that "don't" reads "dont"; full-width ASCII (U+FF01..U+FF5E) counts
 * as its ASCII twin; every other byte, including NUL and invalid UTF-8, separates
 * words, and . ! ? ; EOL (sentence) or , : (clause) are remembered as breaks. Output
 * never exceeds the input length, so buf cannot overflow.
 */
void kw_text_normalize(struct kw_text *t, const unsigned char *s, size_t len)
{
	size_t i = 0, n, pos = 0, step;
	int inword = 0, brk = KW_BRK_NONE, cut = len > KW_BODY_MAX, b;
	char out[3];

	t->n = 0;
	t->truncated = cut;
	n = cut ? KW_BODY_MAX : len;
	while (i < n) {
		unsigned c = s[i];

		if (c >= 0x80) {
			if ((step = decode_special(s, i, n, out)) == 0) {
				inword = 0;
				i++;
				continue;
			}
			i += step;
			if (out[0] == '\0' || out[0] == '\'')
				continue;   /* a mark or an apostrophe: the word goes on */
			if (out[0] >= 'A' && out[0] <= 'Z')
				out[0] = (char)(out[0] + 'a' - 'A');
			c = (unsigned char)out[0];
			if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
				/* full-width punctuation: a separator, with its break */
				if (c != '\'') {
					inword = 0;
					if ((b = sep_break(c)) > brk)
						brk = b;
				}
				continue;
			}
			text_put(t, &pos, &inword, &brk, (unsigned char)c);
			if (out[1] != '\0')
				text_put(t, &pos, &inword, &brk, (unsigned char)out[1]);
			continue;
		}
		i++;
		if (c >= 'A' && c <= 'Z')
			c += 'a' - 'A';
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			text_put(t, &pos, &inword, &brk, (unsigned char)c);
		} else if (c != '\'') {
			inword = 0;
			if ((b = sep_break(c)) > brk)
				brk = b;
		}
	}
	/* a word cut by the byte limit is not the word that was sent */
	if (cut && inword && t->n > 0) {
		t->n--;
		pos = t->off[t->n] > 0 ? t->off[t->n] - 1u : 0;
	}
	t->buf[pos] = '\0';
	text_join_spelled(t);
}
