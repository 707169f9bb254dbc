/*
 * fuzz_keywords.c: libFuzzer target for the inbound-text classifier (STOP, START,
 * HELP, plain-language opt-outs): any body, any bytes, bounded work, no crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "keywords.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char matched[64];
	enum kw_kind k = kw_classify((const char *)data, size, matched, sizeof(matched));

	if (k != KW_NONE && k != KW_OPT_OUT && k != KW_OPT_IN && k != KW_HELP)
		abort();
	return 0;
}
