/*
 * fuzz_template.c: libFuzzer target for templates and SMS counting (rules/, stage:
 * match). Byte 0 picks the channel and the segment cap, the rest is "template\ntitle".
 * A rendering must be valid UTF-8, as long as it says, and within the cap when the cap
 * was met; rule_sms_count() must take any bytes.
 * Aborts only to report a broken promise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

static size_t
fake_local(void *arg, const char *tz, int64_t t, char *buf, size_t size)
{
	size_t n = strlen(tz);

	(void)arg;
	(void)t;
	if (n == 0 || n >= size)
		return 0;
	memcpy(buf, tz, n + 1);
	return n;
}

/* 1 when s[0, len) is valid UTF-8. */
static int
valid_utf8(const unsigned char *s, size_t len)
{
	size_t i = 0, n, k;
	uint32_t cp;

	while (i < len) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xC2 && s[i] <= 0xDF)
			n = 2, cp = s[i] & 0x1F;
		else if (s[i] >= 0xE0 && s[i] <= 0xEF)
			n = 3, cp = s[i] & 0x0F;
		else if (s[i] >= 0xF0 && s[i] <= 0xF4)
			n = 4, cp = s[i] & 0x07;
		else
			return 0;
		if (i + n > len)
			return 0;
		for (k = 1; k < n; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3F);
		}
		if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
		    (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += n;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rule_template *t;
	struct rule_render_in in;
	struct rule_text out;
	struct subscriber s;
	struct deal d;
	struct err e;
	enum rule_encoding enc;
	unsigned units;
	const char *text, *nl;
	char *title;
	size_t tlen;

	rule_sms_count((const char *)data, size, &enc, &units);
	if (size < 1)
		return 0;
	text = (const char *)data + 1;
	tlen = size - 1;
	nl = memchr(text, '\n', tlen);
	title = malloc(nl ? tlen - (size_t)(nl - text) : 1);
	if (title == NULL)
		return 0;
	if (nl) {
		memcpy(title, nl + 1, tlen - (size_t)(nl - text) - 1);
		title[tlen - (size_t)(nl - text) - 1] = '\0';
		tlen = (size_t)(nl - text);
	} else {
		title[0] = '\0';
	}
	t = rule_template_new(text, tlen, &e);
	if (t == NULL) {
		free(title);
		return 0;
	}
	memset(&d, 0, sizeof(d));
	d.title = title;
	d.brand = "dell";
	d.has_price = data[0] & 1;
	d.price = 649.5;
	d.has_list_price = 1;
	d.list_price = 1e9;
	d.discount_pct = 99.9;
	memcpy(d.currency, (data[0] & 2) ? "EUR" : "JPY", 4);
	d.url = "https://shop.example/outlet/7731";
	d.code = "SAVE20";
	d.expires_at = 1795374000;
	memset(&s, 0, sizeof(s));
	s.id = "s-1";
	s.timezone = (data[0] & 4) ? "Europe/Paris" : "";
	memset(&in, 0, sizeof(in));
	in.deal = &d;
	in.sub = &s;
	in.now = 1795370400;
	in.fmt_local = fake_local;
	in.channel = (data[0] & 8) ? CH_DM : CH_SMS;
	in.max_segments = (unsigned)(data[0] >> 4) % 11;
	if (rule_render(t, &in, &out, &e) == 0) {
		if (strlen(out.s) != out.len || !valid_utf8((unsigned char *)out.s, out.len))
			abort();
		if (in.channel == CH_SMS && in.max_segments > 0 &&
		    out.segments > in.max_segments)
			abort();
		if (rule_sms_count(out.s, out.len, &enc, &units) != out.segments ||
		    units != out.units || enc != out.enc)
			abort();
		rule_text_free(&out);
	}
	rule_template_free(t);
	free(title);
	return 0;
}
