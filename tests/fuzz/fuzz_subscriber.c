/*
 * fuzz_subscriber.c: libFuzzer target for subscriber_parse and the canonical JSON
 * round trip: what parses must serialise, and the serialisation must parse back to
 * the same canonical text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "subscriber.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct err err;
	struct subscriber *s, *again;
	char *json, *json2;

	err_clear(&err);
	if ((s = subscriber_parse((const char *)data, size, &err)) == NULL) {
		if (err.code[0] == '\0' || err.msg[0] == '\0')
			abort();
		return 0;
	}
	if ((json = subscriber_to_json(s)) == NULL)
		abort();
	if ((again = subscriber_parse(json, strlen(json), &err)) == NULL)
		abort();
	if ((json2 = subscriber_to_json(again)) == NULL || strcmp(json, json2) != 0)
		abort();
	free(json);
	free(json2);
	subscriber_free(s);
	subscriber_free(again);
	return 0;
}
