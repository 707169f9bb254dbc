/*
 * fuzz_keywords.c: libFuzzer target for the inbound-text classifier (STOP, START,
 * HELP, plain-language opt-outs, words from config): any body, any bytes, bounded
 * work, no crash; and the same bytes read as an [inbound] word list.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keywords.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kw_extra extra, list;
	static int ready;
	char matched[64], err[256], *csv;
	enum kw_kind k;

	if (!ready) {
		if (kw_extra_add(&extra, KW_LIST_OPT_OUT, "arret, stopp, cancelar inscricao",
		    err, sizeof(err)) < 0 || kw_extra_add(&extra, KW_LIST_FILLER,
		    "bitte, s'il vous plait", err, sizeof(err)) < 0)
			abort();
		ready = 1;
	}
	k = kw_classify_with(&extra, (const char *)data, size, matched, sizeof(matched));
	if (k != KW_NONE && k != KW_OPT_OUT && k != KW_OPT_IN && k != KW_HELP)
		abort();
	if (strlen(matched) >= sizeof(matched))
		abort();
	/* The input as a comma-separated word list: refused or taken, never overrun. */
	if (size < 8192 && (csv = malloc(size + 1)) != NULL) {
		memcpy(csv, data, size);
		csv[size] = '\0';
		memset(&list, 0, sizeof(list));
		(void)kw_extra_add(&list, KW_LIST_OPT_OUT, csv, err, sizeof(err));
		if (list.used > KW_EXTRA_BYTES)
			abort();
		free(csv);
	}
	return 0;
}
