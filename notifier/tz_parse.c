/*
 * tz_parse.c: the TZif parser (RFC 8536, versions 1-4) and the POSIX TZ string parser
 * of its footer (stages: plan, admit, send; zones are loaded on first use by tz.c).
 * Zone files are untrusted input: every count is checked against the bytes read before
 * anything is indexed, and a file that is not entirely valid is refused. Must never
 * read out of bounds, allocate without a bound, or touch TZ or localtime().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "tz_int.h"

#define TZ_FOOTER_MAX 256
#define TZ_UTOFF_MIN (-89999)     /* RFC 8536 3.2: -24:59:59 .. +25:59:59 */
#define TZ_UTOFF_MAX 93599

/* ---- POSIX TZ string (TZif footer) parser ---- */

struct tz_fp {
	const char *s, *end;
};

static int fp_peek(const struct tz_fp *f)
{
	return f->s < f->end ? (unsigned char)*f->s : -1;
}

static int fp_is(const struct tz_fp *f, int c)
{
	return fp_peek(f) == c;
}

int tz_is_alpha(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

int tz_is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* number := digit{1,maxdigits}, value <= max */
static int fp_num(struct tz_fp *f, int maxdigits, int max, int *out)
{
	int v = 0, n = 0;

	while (n < maxdigits && tz_is_digit(fp_peek(f))) {
		v = v * 10 + (*f->s++ - '0');
		n++;
	}
	if (n == 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* name := alpha{3,} | '<' [A-Za-z0-9+-]{3,} '>'; longer than 15 is truncated */
static int fp_name(struct tz_fp *f, char out[16])
{
	const char *start;
	size_t n;
	int c;

	if (fp_is(f, '<')) {
		start = ++f->s;
		while ((c = fp_peek(f)) != -1 && (tz_is_alpha(c) || tz_is_digit(c) || c == '+' ||
		    c == '-'))
			f->s++;
		n = (size_t)(f->s - start);
		if (!fp_is(f, '>'))
			return -1;
		f->s++;
	} else {
		start = f->s;
		while (tz_is_alpha(fp_peek(f)))
			f->s++;
		n = (size_t)(f->s - start);
	}
	if (n < 3)
		return -1;
	if (n > 15)
		n = 15;
	memcpy(out, start, n);
	out[n] = '\0';
	return 0;
}

/* hms := ['+'|'-'] hh [':' mm [':' ss]], hh <= maxh; returns seconds, signed */
static int fp_hms(struct tz_fp *f, int maxh, int32_t *out)
{
	int neg = 0, h, m = 0, s = 0;

	if (fp_is(f, '+') || fp_is(f, '-'))
		neg = *f->s++ == '-';
	if (fp_num(f, 3, maxh, &h) != 0)
		return -1;
	if (fp_is(f, ':')) {
		f->s++;
		if (fp_num(f, 2, 59, &m) != 0)
			return -1;
		if (fp_is(f, ':')) {
			f->s++;
			if (fp_num(f, 2, 59, &s) != 0)
				return -1;
		}
	}
	*out = (int32_t)(h * 3600 + m * 60 + s) * (neg ? -1 : 1);
	return 0;
}

/* offset := hms with hh <= 24, west positive; stored as seconds east */
static int fp_offset(struct tz_fp *f, int32_t *utoff)
{
	int32_t west;

	if (fp_hms(f, 24, &west) != 0 || -west < TZ_UTOFF_MIN || -west > TZ_UTOFF_MAX)
		return -1;
	*utoff = -west;
	return 0;
}

/* date := 'J' n (1..365) | n (0..365) | 'M' m '.' w '.' d;  then ['/' time] with
 * time := hms, hh <= 167 (RFC 8536 v3 allows negative and > 24 h) */
static int fp_date(struct tz_fp *f, struct tz_date *r)
{
	r->time = 7200;
	if (fp_is(f, 'J')) {
		f->s++;
		r->kind = TZ_DATE_JULIAN1;
		if (fp_num(f, 3, 365, &r->n) != 0 || r->n < 1)
			return -1;
	} else if (fp_is(f, 'M')) {
		f->s++;
		r->kind = TZ_DATE_MWD;
		if (fp_num(f, 2, 12, &r->m) != 0 || r->m < 1 || !fp_is(f, '.'))
			return -1;
		f->s++;
		if (fp_num(f, 1, 5, &r->w) != 0 || r->w < 1 || !fp_is(f, '.'))
			return -1;
		f->s++;
		if (fp_num(f, 1, 6, &r->d) != 0)
			return -1;
	} else {
		r->kind = TZ_DATE_ZERO;
		if (fp_num(f, 3, 365, &r->n) != 0)
			return -1;
	}
	if (fp_is(f, '/')) {
		f->s++;
		return fp_hms(f, 167, &r->time);
	}
	return 0;
}

/* tz := std offset [dst [offset] [',' date ',' date]]; the whole string must match.
 * DST without an offset is one hour ahead; DST without dates uses the US rules
 * (M3.2.0,M11.1.0), as glibc does when no posixrules file says otherwise. */
static int tz_parse_posix(const char *s, size_t n, struct tz_rule *r)
{
	struct tz_fp f = { s, s + n };
	int c;

	memset(r, 0, sizeof(*r));
	if (fp_name(&f, r->std.abbr) != 0 || fp_offset(&f, &r->std.utoff) != 0)
		return -1;
	if (f.s == f.end)
		return 0;
	r->has_dst = 1;
	r->dst.isdst = 1;
	if (fp_name(&f, r->dst.abbr) != 0)
		return -1;
	c = fp_peek(&f);
	if (c == '+' || c == '-' || tz_is_digit(c)) {
		if (fp_offset(&f, &r->dst.utoff) != 0)
			return -1;
	} else {
		r->dst.utoff = r->std.utoff + 3600;
		if (r->dst.utoff > TZ_UTOFF_MAX)
			return -1;
	}
	if (f.s == f.end) {
		r->start = (struct tz_date){ TZ_DATE_MWD, 0, 3, 2, 0, 7200 };
		r->end = (struct tz_date){ TZ_DATE_MWD, 0, 11, 1, 0, 7200 };
		return 0;
	}
	if (!fp_is(&f, ','))
		return -1;
	f.s++;
	if (fp_date(&f, &r->start) != 0 || !fp_is(&f, ','))
		return -1;
	f.s++;
	if (fp_date(&f, &r->end) != 0)
		return -1;
	return f.s == f.end ? 0 : -1;
}

/* ---- TZif parser ---- */

struct tzif_hdr {
	int version;
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* header := "TZif" version(1) unused(15) six 32-bit big-endian counts (44 bytes) */
static int tzif_header(const unsigned char *p, size_t n, size_t off, struct tzif_hdr *h)
{
	const unsigned char *q = p + off;

	if (off > n || n - off < 44 || memcmp(q, "TZif", 4) != 0)
		return -1;
	if (q[4] == 0)
		h->version = 1;
	else if (q[4] >= '2' && q[4] <= '4')
		h->version = q[4] - '0';
	else
		return -1;
	h->isutcnt = be32(q + 20);
	h->isstdcnt = be32(q + 24);
	h->leapcnt = be32(q + 28);
	h->timecnt = be32(q + 32);
	h->typecnt = be32(q + 36);
	h->charcnt = be32(q + 40);
	return 0;
}

/* Bytes of the data block after a header; tsize is 4 (v1) or 8 (v2+). */
static uint64_t tzif_block_size(const struct tzif_hdr *h, unsigned tsize)
{
	return (uint64_t)h->timecnt * (tsize + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
	    (uint64_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* Fills z's transitions and types from the data block at p + off (already checked to
 * hold tzif_block_size bytes). Leap-second records are skipped: the instants are
 * POSIX time, as in the zoneinfo (not "right/") files. */
static int tzif_block(const unsigned char *p, size_t off, const struct tzif_hdr *h,
    unsigned tsize, struct tz *z, struct err *err)
{
	const unsigned char *tt = p + off, *ti = tt + (size_t)h->timecnt * tsize;
	const unsigned char *ty = ti + h->timecnt, *ch = ty + (size_t)h->typecnt * 6;
	size_t i, k;

	if (h->typecnt == 0 || h->typecnt > 256 || h->charcnt == 0 ||
	    (h->isstdcnt != 0 && h->isstdcnt != h->typecnt) ||
	    (h->isutcnt != 0 && h->isutcnt != h->typecnt))
		return err_set(err, ERR_INPUT, "bad_tzif", "tz", "%s: bad counts", z->name);
	z->ntrans = h->timecnt;
	z->ntypes = h->typecnt;
	z->trans = calloc(z->ntrans ? z->ntrans : 1, sizeof(*z->trans));
	z->trans_type = calloc(z->ntrans ? z->ntrans : 1, 1);
	z->types = calloc(z->ntypes, sizeof(*z->types));
	if (z->trans == NULL || z->trans_type == NULL || z->types == NULL)
		return err_set(err, ERR_NOMEM, "nomem", "tz", "%s: out of memory", z->name);
	for (i = 0; i < z->ntrans; i++) {
		z->trans[i] = tsize == 8 ? be64(tt + i * 8) : (int32_t)be32(tt + i * 4);
		z->trans_type[i] = ti[i];
		if (ti[i] >= h->typecnt || (i > 0 && z->trans[i] <= z->trans[i - 1]))
			return err_set(err, ERR_INPUT, "bad_tzif", "tz",
			    "%s: bad transition %zu", z->name, i);
	}
	for (i = 0; i < z->ntypes; i++) {
		const unsigned char *r = ty + i * 6;
		int32_t utoff = (int32_t)be32(r);
		size_t idx = r[5];

		if (utoff < TZ_UTOFF_MIN || utoff > TZ_UTOFF_MAX || r[4] > 1 ||
		    idx >= h->charcnt)
			return err_set(err, ERR_INPUT, "bad_tzif", "tz",
			    "%s: bad local time type %zu", z->name, i);
		for (k = idx; k < h->charcnt && ch[k] != '\0'; k++)
			;
		if (k == h->charcnt)
			return err_set(err, ERR_INPUT, "bad_tzif", "tz",
			    "%s: unterminated abbreviation", z->name);
		k -= idx;
		if (k > sizeof(z->types[i].abbr) - 1)
			k = sizeof(z->types[i].abbr) - 1;
		memcpy(z->types[i].abbr, ch + idx, k);
		z->types[i].abbr[k] = '\0';
		z->types[i].utoff = utoff;
		z->types[i].isdst = r[4];
	}
	return 0;
}

/* file := header block [header block '\n' footer '\n'] (the second pair in v2+) */
int tzif_parse(const unsigned char *p, size_t n, struct tz *z, struct err *err)
{
	struct tzif_hdr h;
	uint64_t bs;
	size_t off = 0, nl;

	if (tzif_header(p, n, 0, &h) != 0)
		return err_set(err, ERR_INPUT, "bad_tzif", "tz", "%s: not a TZif file",
		    z->name);
	bs = tzif_block_size(&h, 4);
	if (bs > n - 44)
		return err_set(err, ERR_INPUT, "bad_tzif", "tz", "%s: truncated", z->name);
	off = 44 + (size_t)bs;
	if (h.version == 1) {
		if (off != n)
			return err_set(err, ERR_INPUT, "bad_tzif", "tz",
			    "%s: trailing bytes", z->name);
		return tzif_block(p, 44, &h, 4, z, err);
	}
	if (tzif_header(p, n, off, &h) != 0 || h.version < 2)
		return err_set(err, ERR_INPUT, "bad_tzif", "tz", "%s: bad v2 header",
		    z->name);
	off += 44;
	bs = tzif_block_size(&h, 8);
	if (bs > n - off)
		return err_set(err, ERR_INPUT, "bad_tzif", "tz", "%s: truncated", z->name);
	if (tzif_block(p, off, &h, 8, z, err) != 0)
		return -1;
	off += (size_t)bs;
	if (off >= n || p[off] != '\n')
		return err_set(err, ERR_INPUT, "bad_tzif", "tz", "%s: no footer", z->name);
	off++;
	for (nl = off; nl < n && p[nl] != '\n'; nl++)
		;
	if (nl == n || nl + 1 != n || nl - off > TZ_FOOTER_MAX)
		return err_set(err, ERR_INPUT, "bad_tzif", "tz", "%s: bad footer", z->name);
	if (nl == off)
		return 0;  /* empty footer: the last type holds forever */
	if (tz_parse_posix((const char *)p + off, nl - off, &z->rule) != 0)
		return err_set(err, ERR_INPUT, "bad_tzif", "tz",
		    "%s: bad TZ string in footer", z->name);
	z->has_rule = 1;
	return 0;
}

