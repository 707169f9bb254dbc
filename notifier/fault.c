/*
 * fault.c: named fault points armed by DP_FAULTS (all stages). Test-only by contract:
 * with DP_FAULTS unset nothing ever fails. Must never allocate or log on a hit: it
 * stands in for an allocation that failed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

#define FAULT_POINTS_MAX 16
#define FAULT_NAME_MAX 48

struct fault_point {
	char name[FAULT_NAME_MAX];
	int every;               /* '%': every N-th hit; '@': only the N-th */
	unsigned long n, hits;
};

static struct fault_point fault_points[FAULT_POINTS_MAX];
static size_t fault_npoints;
static int fault_loaded;

/* Parses DP_FAULTS once; a malformed item is ignored (tests only). */
static void
fault_load(void)
{
	const char *env = getenv("DP_FAULTS"), *p = env;

	fault_loaded = 1;
	while (p != NULL && *p != '\0' && fault_npoints < FAULT_POINTS_MAX) {
		struct fault_point *fp = &fault_points[fault_npoints];
		size_t len = strcspn(p, "%@,");
		char *end;

		if (len == 0 || len >= FAULT_NAME_MAX || (p[len] != '%' && p[len] != '@'))
			break;
		memcpy(fp->name, p, len);
		fp->name[len] = '\0';
		fp->every = p[len] == '%';
		errno = 0;
		fp->n = strtoul(p + len + 1, &end, 10);
		if (errno != 0 || end == p + len + 1 || fp->n == 0 || (*end != ',' &&
		    *end != '\0'))
			break;
		fault_npoints++;
		p = *end == ',' ? end + 1 : end;
	}
}

int
fault_hit(const char *name)
{
	size_t i;

	if (!fault_loaded)
		fault_load();
	for (i = 0; i < fault_npoints; i++) {
		struct fault_point *fp = &fault_points[i];

		if (strcmp(fp->name, name) != 0)
			continue;
		fp->hits++;
		return fp->every ? fp->hits % fp->n == 0 : fp->hits == fp->n;
	}
	return 0;
}
