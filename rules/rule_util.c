/*
 * rule_util.c: the plumbing of rules/ (stage: match): the arena a compiled rule set
 * lives in, the compile error list and its compiler-style formatter, hashing and ASCII
 * case-insensitive string tests.
 * Never does I/O or keeps state outside the structs passed in; never aborts on OOM.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "rule_int.h"

struct rule_arena_blk {
	struct rule_arena_blk *next;
	size_t size;
	size_t used;
	_Alignas(16) unsigned char data[];
};

#define ARENA_BLOCK 8192

void *
rule_arena_alloc(struct rule_arena *a, size_t size)
{
	struct rule_arena_blk *b = a->head;
	void *p;

	size = (size + 15) & ~(size_t)15;
	if (size == 0)
		size = 16;
	if (b == NULL || b->size - b->used < size) {
		size_t bsz = size > ARENA_BLOCK ? size : ARENA_BLOCK;

		if (bsz > SIZE_MAX - sizeof(*b))
			return NULL;
		b = malloc(sizeof(*b) + bsz);
		if (b == NULL)
			return NULL;
		b->size = bsz;
		b->used = 0;
		b->next = a->head;
		a->head = b;
		a->bytes += sizeof(*b) + bsz;
	}
	p = b->data + b->used;
	b->used += size;
	memset(p, 0, size);
	return p;
}

char *
rule_arena_strndup(struct rule_arena *a, const char *s, size_t n)
{
	char *p;

	if (n == SIZE_MAX)
		return NULL;
	p = rule_arena_alloc(a, n + 1);
	if (p == NULL)
		return NULL;
	if (n > 0)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
rule_arena_free(struct rule_arena *a)
{
	struct rule_arena_blk *b, *next;

	for (b = a->head; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	a->head = NULL;
	a->bytes = 0;
}

/* ---- diagnostics ---- */

void
rule_diags_init(struct rule_diags *d)
{
	d->v = NULL;
	d->n = d->cap = 0;
}

void
rule_diags_free(struct rule_diags *d)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].msg);
		free(d->v[i].src_line);
	}
	free(d->v);
	rule_diags_init(d);
}

static char *
dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p == NULL)
		return NULL;
	if (n > 0)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* Appends one diag; src_line is n bytes. Returns 0 or -1 on OOM (d unchanged). */
static int
diags_push(struct rule_diags *d, const char *file, int line, int col, const char *msg,
    const char *src_line, size_t n)
{
	struct rule_diag *dg;

	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 8;
		struct rule_diag *nv = realloc(d->v, ncap * sizeof(*nv));

		if (nv == NULL)
			return -1;
		d->v = nv;
		d->cap = ncap;
	}
	dg = &d->v[d->n];
	dg->file = dup_n(file, strlen(file));
	dg->msg = dup_n(msg, strlen(msg));
	dg->src_line = dup_n(src_line, n);
	if (dg->file == NULL || dg->msg == NULL || dg->src_line == NULL) {
		free(dg->file);
		free(dg->msg);
		free(dg->src_line);
		return -1;
	}
	dg->line = line;
	dg->col = col;
	d->n++;
	return 0;
}

int
rule_cc_nomem(struct rule_cc *cc)
{
	if (!cc->nomem && cc->err != NULL)
		err_set(cc->err, ERR_NOMEM, "no_memory", NULL, "out of memory compiling rules");
	cc->nomem = 1;
	return -1;
}

int
rule_cc_error(struct rule_cc *cc, size_t off, int line, int col, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	size_t ls, le;

	cc->nerr++;
	if (cc->nerr > RULE_DIAGS_MAX)
		return -1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cc->nerr == RULE_DIAGS_MAX) {
		snprintf(msg, sizeof(msg), "too many errors; stopping");
		line = col = 0;
	}
	if (cc->nerr == 1 && cc->err != NULL && !cc->nomem) {
		if (line > 0)
			err_set(cc->err, ERR_INPUT, "rules_invalid", NULL, "%s:%d:%d: %s",
			    cc->file, line, col, msg);
		else
			err_set(cc->err, ERR_INPUT, "rules_invalid", NULL, "%s: %s", cc->file,
			    msg);
	}
	if (cc->diags == NULL)
		return -1;
	ls = le = 0;
	if (line > 0 && cc->src != NULL) {
		if (off > cc->srclen)
			off = cc->srclen;
		ls = off;
		while (ls > 0 && cc->src[ls - 1] != '\n')
			ls--;
		le = off;
		while (le < cc->srclen && cc->src[le] != '\n')
			le++;
		if (le > ls && cc->src[le - 1] == '\r')
			le--;
	}
	if (diags_push(cc->diags, cc->file ? cc->file : "", line, col, msg,
	    cc->src ? cc->src + ls : "", le - ls) == -1)
		rule_cc_nomem(cc);
	return -1;
}

void
rule_buf_printf(char *buf, size_t size, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(*pos < size ? buf + *pos : NULL, *pos < size ? size - *pos : 0,
	    fmt, ap);
	va_end(ap);
	if (r > 0)
		*pos += (size_t)r;
}

size_t
rule_diag_format(const struct rule_diag *dg, char *buf, size_t size)
{
	size_t pos = 0;
	const unsigned char *p;
	int c;

	if (size > 0)
		buf[0] = '\0';
	if (dg->line <= 0) {
		if (dg->file[0] != '\0')
			rule_buf_printf(buf, size, &pos, "%s: ", dg->file);
		rule_buf_printf(buf, size, &pos, "error: %s\n", dg->msg);
		return pos;
	}
	rule_buf_printf(buf, size, &pos, "%s:%d:%d: error: %s\n%s\n", dg->file, dg->line,
	    dg->col, dg->msg, dg->src_line);
	/* the caret: one blank per character before the column, tabs kept */
	p = (const unsigned char *)dg->src_line;
	for (c = 1; c < dg->col && *p != '\0'; c++) {
		rule_buf_printf(buf, size, &pos, "%c", *p == '\t' ? '\t' : ' ');
		p++;
		while ((*p & 0xC0) == 0x80)
			p++;
	}
	for (; c < dg->col; c++)
		rule_buf_printf(buf, size, &pos, " ");
	rule_buf_printf(buf, size, &pos, "^\n");
	return pos;
}

size_t
rule_diags_format(const struct rule_diags *d, char *buf, size_t size)
{
	size_t i, pos = 0;

	if (size > 0)
		buf[0] = '\0';
	for (i = 0; d != NULL && i < d->n; i++)
		pos += rule_diag_format(&d->v[i], pos < size ? buf + pos : NULL,
		    pos < size ? size - pos : 0);
	return pos;
}

/* ---- hashing and strings ---- */

uint64_t
rule_fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

uint64_t
rule_fmix64(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

uint64_t
rule_holdout_hash(const char *rule_name, const char *sub_id)
{
	return rule_fmix64(rule_fnv1a(rule_name) ^ rule_fnv1a(sub_id));
}

uint64_t
rule_holdout_hash_ch(const char *rule_name, const char *sub_id, enum channel ch)
{
	const struct channel_def *d = channel_def(ch);

	return rule_fmix64(rule_fnv1a(rule_name) ^ rule_fnv1a(sub_id) ^
	    (d != NULL ? d->holdout_salt : 0));
}

int
rule_ci_eq(const char *a, const char *b)
{
	for (; *a != '\0' && rule_lower((unsigned char)*a) == rule_lower((unsigned char)*b);
	    a++, b++)
		;
	return *a == '\0' && *b == '\0';
}

int
rule_ci_prefix(const char *s, const char *prefix)
{
	for (; *prefix != '\0'; s++, prefix++)
		if (rule_lower((unsigned char)*s) != rule_lower((unsigned char)*prefix))
			return 0;
	return 1;
}

int
rule_ci_find(const char *hay, const char *needle)
{
	int first = rule_lower((unsigned char)*needle);

	if (*needle == '\0')
		return 1;
	for (; *hay != '\0'; hay++)
		if (rule_lower((unsigned char)*hay) == first && rule_ci_prefix(hay, needle))
			return 1;
	return 0;
}

int
rule_list_has(const struct strlist *l, const char *s)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i] != NULL && rule_ci_eq(l->v[i], s))
			return 1;
	return 0;
}

/* Edit distance with ASCII case folded; SIZE_MAX when a string is longer than
 * RULE_NAME_MAX. */
static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j, prev[RULE_NAME_MAX + 2],
	    row[RULE_NAME_MAX + 2];

	if (la > RULE_NAME_MAX || lb > RULE_NAME_MAX)
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		prev[j] = j;
	for (i = 1; i <= la; i++) {
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] +
			    (rule_lower((unsigned char)a[i - 1]) != rule_lower((unsigned char)b[j - 1]));
			size_t del = prev[j] + 1, ins = row[j - 1] + 1;

			row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
		}
		memcpy(prev, row, (lb + 1) * sizeof(size_t));
	}
	return prev[lb];
}

/* The part of a dotted name after its last dot (the whole name when it has none). */
static const char *
tail(const char *s)
{
	const char *dot = strrchr(s, '.');

	return dot != NULL ? dot + 1 : s;
}

/* 1 when dotted names a and b begin with the same word ("subscriber.x", "subscriber.y"). */
static int
same_head(const char *a, const char *b)
{
	size_t la = strcspn(a, "."), lb = strcspn(b, ".");

	return a[la] == '.' && b[lb] == '.' && la == lb && strncmp(a, b, la) == 0;
}

const char *
rule_suggest(const char *word, const char *const *cands, size_t n)
{
	size_t i, d, best = 0, bestd = SIZE_MAX, wl = strlen(word);
	const char *wt = tail(word);

	for (i = 0; i < n; i++) {
		const char *c = cands[i], *ct = tail(c);

		d = distance(word, c);
		/* "price" for "deal.price", "subscriber.categories" for
		 * "subscriber.interests.categories": the same last word, the same first */
		if (d > 1 && rule_ci_eq(wt, ct) && (wt == word || same_head(word, c)))
			d = 1;
		/* "deal.discount" for "deal.discount_pct", "discount" for it too */
		else if (d > 1 && wl >= 4 &&
		    (rule_ci_prefix(c, word) || (wt == word && rule_ci_prefix(ct, word))))
			d = 1;
		if (d < bestd) {
			bestd = d;
			best = i;
		}
	}
	/* at most 2 edits, fewer than the last word has letters ("deal.x" is not
	 * "deal.id") */
	if (bestd > 2 || (bestd > 0 && bestd >= strlen(wt)) || (wl <= 3 && bestd > 1) ||
	    strcmp(word, cands[best]) == 0)
		return NULL;
	return cands[best];
}
