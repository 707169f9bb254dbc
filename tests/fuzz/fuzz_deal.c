/*
 * fuzz_deal.c: libFuzzer target for deal_parse, the first thing hostile stream
 * entries reach. Any input must give a deal or an error with a code and a field-
 * naming message, never a crash, a leak or an out-of-bounds read.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err;
	struct deal *d;

	err_clear(&err);
	d = deal_parse((const char *)data, size, 1795456000, &err);
	if (d == NULL) {
		/* Every refusal says why. */
		if (err.code[0] == '\0' || err.msg[0] == '\0')
			abort();
		return 0;
	}
	if (d->id == NULL || (!d->cancel && (d->title == NULL || d->url == NULL)))
		abort();
	deal_free(d);
	return 0;
}
