/*
 * formats.c: the version of the stored formats: parsing, the version written, the
 * fields and Lua prelude that carry it (stage: all Redis I/O). See formats.h.
 *
 * Pure apart from the version written (one int set at start-up and by the watch on
 * the loop). Must never write a version field in format 1: release 1.0.0's readers
 * and this one's must see exactly the bytes 1.0.0 wrote.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "formats.h"

static int formats_written = FORMATS_READ_MIN;

/* ORDER FORMATS: index = version - 1, up to FORMATS_READ_MAX. */
static const char *const formats_text[FORMATS_READ_MAX] = { "1", "2" };
/* Then every key ending in a NUL byte is "" again: the placeholder scripts.c sends
 * for a key a script skips, on the call's slot (a Redis Cluster refuses an empty
 * name beside keys of another slot). */
#define FORMATS_NONE_KEYS \
	"for i = 1, #KEYS do if string.byte(KEYS[i], -1) == 0 then KEYS[i] = '' end end "
static const char *const formats_prelude[FORMATS_READ_MAX] = {
	"local FMT_N, FMT = 1, {} " FORMATS_NONE_KEYS,
	"local FMT_N, FMT = 2, {'" FORMATS_FIELD "', '2'} " FORMATS_NONE_KEYS,
};

int
formats_parse(const char *s, size_t len)
{
	int v = 0;
	size_t i;

	if (s == NULL || len == 0 || len > 3 || s[0] == '0')
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v >= 1 && v <= FORMATS_VERSION_MAX ? v : -1;
}

enum formats_verdict
formats_classify(int version)
{
	if (version < FORMATS_READ_MIN)
		return FORMATS_BAD;
	return version <= FORMATS_READ_MAX ? FORMATS_OK : FORMATS_TOO_NEW;
}

int
formats_of_entry(const struct redisReply *fields, enum formats_verdict *verdict)
{
	const struct redisReply *k, *v;
	int version = 1, seen = 0;
	size_t i;

	if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
		goto bad;
	for (i = 0; i + 1 < fields->elements; i += 2) {
		k = fields->element[i];
		v = fields->element[i + 1];
		if (k->type != REDIS_REPLY_STRING || strcmp(k->str, FORMATS_FIELD) != 0)
			continue;
		/* Two versions in one entry: two readers could take two different ones. */
		if (seen++ || v->type != REDIS_REPLY_STRING ||
		    (version = formats_parse(v->str, v->len)) < 0)
			goto bad;
	}
	if (verdict != NULL)
		*verdict = formats_classify(version);
	return version;
bad:
	if (verdict != NULL)
		*verdict = FORMATS_BAD;
	return -1;
}

int
formats_write(void)
{
	return formats_written;
}

void
formats_set_write(int version)
{
	if (version < FORMATS_READ_MIN)
		version = FORMATS_READ_MIN;
	if (version > FORMATS_READ_MAX)
		version = FORMATS_READ_MAX;
	formats_written = version;
}

int
formats_entry_fields(const char **name, const char **value)
{
	if (formats_written <= 1)
		return 0;
	*name = FORMATS_FIELD;
	*value = formats_text[formats_written - 1];
	return 2;
}

const char *
formats_lua_prelude(int version)
{
	if (version < FORMATS_READ_MIN || version > FORMATS_READ_MAX)
		return NULL;
	return formats_prelude[version - 1];
}

int
formats_reader_parse(const char *v, int *reads, char *release, size_t release_size,
    long long *until_ms)
{
	const char *t1, *t2;
	char *end;
	long long until;
	size_t n;

	if (v == NULL || (t1 = strchr(v, '\t')) == NULL ||
	    (t2 = strchr(t1 + 1, '\t')) == NULL)
		return -1;
	if ((*reads = formats_parse(v, (size_t)(t1 - v))) < 0)
		return -1;
	n = (size_t)(t2 - t1 - 1);
	if (n == 0 || n > FORMATS_RELEASE_MAX || n >= release_size)
		return -1;
	memcpy(release, t1 + 1, n);
	release[n] = '\0';
	if (t2[1] < '0' || t2[1] > '9')
		return -1;
	errno = 0;
	until = strtoll(t2 + 1, &end, 10);
	if (errno != 0 || *end != '\0' || until < 0)
		return -1;
	*until_ms = until;
	return 0;
}
