/*
 * fuzz_httphead.c: libFuzzer target for the strict request-head reader
 * (notifier/httphead.c): any bytes, no crash, no read past the input; a head it
 * accepts ends where http_head_end says, declares a length of -1, HUGE or >= 0, and
 * a refusal always comes with a reason.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httphead.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_head_info info;
	const char *why = NULL;
	char *copy;
	size_t end;

	/* An exact-size copy: ASan sees any read past the end. */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	end = http_head_end(copy, size);
	if (end > size)
		abort();
	if (end > 0) {
		if (http_head_check(copy, end, &info, &why) == 0) {
			if (info.content_length < HTTP_HEAD_CL_HUGE)
				abort();
		} else if (why == NULL) {
			abort();
		}
	}
	free(copy);
	return 0;
}
