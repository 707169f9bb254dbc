/*
 * benchlib.c: what the benchmarks share (see benchlib.h). Test code only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "benchlib.h"

long long
bench_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

long
bench_env_long(const char *name, long def, long min, long max)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (v == NULL || *v == '\0')
		return def;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < min || n > max)
		return -1;
	return n;
}

char *
bench_subscribers_jsonl(const char *prefix, long n, long first,
    const char *category)
{
	size_t cap = (size_t)n * 256 + 1, off = 0;
	char *buf = malloc(cap);
	long i;
	int w;

	if (buf == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		w = snprintf(buf + off, cap - off,
		    "{\"id\":\"%s-%ld\",\"phone\":\"+1512%07ld\",\"channels\":[\"sms\"],"
		    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},"
		    "\"timezone\":\"America/Chicago\","
		    "\"interests\":{\"categories\":[\"%s\"]}}\n",
		    prefix, i + 1, 2000000 + first + i, category);
		if (w < 0 || (size_t)w >= cap - off) {
			free(buf);
			return NULL;
		}
		off += (size_t)w;
	}
	return buf;
}

long long
bench_entry_ms(const char *s)
{
	char *end;
	long long ms;

	errno = 0;
	ms = strtoll(s, &end, 10);
	return errno != 0 || end == s || *end != '-' ? -1 : ms;
}
