/*
 * fuzz_uri.c: libFuzzer target for the config's URL check (notifier/uri.c): any
 * bytes, no crash, no read past the string; the reason is always a terminated
 * string; an accepted value starts http:// or https:// and holds only printable
 * ASCII without spaces, and an accepted base stays accepted with the path our
 * gateways append (status callbacks) and never carries a query or fragment.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "uri.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[96], *s, *longer;
	size_t i;
	int flags, rc;

	if (size > 4096 || (s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';          /* a C string up to its first NUL, as config.c passes */
	for (flags = 0; flags <= URI_BASE; flags++) {
		memset(why, 'x', sizeof(why));
		rc = uri_check_http(s, flags, why, sizeof(why));
		if (memchr(why, '\0', sizeof(why)) == NULL)
			abort();
		if (rc != 0 && why[0] == '\0')
			abort();
		if (rc != 0)
			continue;
		if (strncasecmp(s, "http://", 7) != 0 && strncasecmp(s, "https://", 8) != 0)
			abort();
		for (i = 0; s[i] != '\0'; i++)
			if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
				abort();
		if (strchr(s, '#') != NULL)
			abort();
		if (flags == URI_BASE) {
			if (strchr(s, '?') != NULL)
				abort();
			if ((longer = malloc(strlen(s) + 32)) == NULL)
				break;
			snprintf(longer, strlen(s) + 32, "%s%s", s,
			    s[strlen(s) - 1] == '/' ? "hooks/twilio/status" : "/hooks/twilio/status");
			if (uri_check_http(longer, 0, why, sizeof(why)) != 0)
				abort();
			free(longer);
		}
	}
	free(s);
	return 0;
}
