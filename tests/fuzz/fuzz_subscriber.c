/*
 * fuzz_subscriber.c: libFuzzer target for subscriber_parse and the canonical JSON
 * round trip: what parses must serialise, and the serialisation must parse back to
 * the same canonical text. The store's reader (subscriber_parse_stored, whose fast
 * path reads the canonical form without cJSON) must read whatever the full parser
 * reads the same way, and refuse whatever it refuses.
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
	struct subscriber *s, *again, *st;
	char *json, *json2, *jst;

	err_clear(&err);
	st = subscriber_parse_stored((const char *)data, size, &err);
	if ((s = subscriber_parse((const char *)data, size, &err)) == NULL) {
		if (err.code[0] == '\0' || err.msg[0] == '\0')
			abort();
		/* Only the canonical size check may tell the two apart. */
		if (st != NULL && strcmp(err.code, "too_large") != 0)
			abort();
		subscriber_free(st);
		return 0;
	}
	if (st == NULL || (jst = subscriber_to_json(st)) == NULL)
		abort();
	if ((json = subscriber_to_json(s)) == NULL)
		abort();
	if ((again = subscriber_parse(json, strlen(json), &err)) == NULL)
		abort();
	if ((json2 = subscriber_to_json(again)) == NULL || strcmp(json, json2) != 0 ||
	    strcmp(json, jst) != 0)
		abort();
	free(jst);
	subscriber_free(st);
	free(json);
	free(json2);
	subscriber_free(s);
	subscriber_free(again);
	return 0;
}
