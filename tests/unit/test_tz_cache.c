/*
 * test_tz_cache.c: the process's one zone cache (notifier/tz_cache.c): every zone of
 * a tzdata directory loaded up front, the tables, the posix/ and right/ copies, junk
 * and FIFOs passed over; no file read again for a loaded zone; a SIGHUP reload that
 * changes a zone's rules in place (its pointer stays valid), keeps a zone whose file
 * broke, and picks up a zone added since.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tz.h"

#define JAN_2026 1767225600LL   /* 2026-01-01T00:00:00Z: winter in the north */

static char dir[256];

/* Writes len bytes to dir/name, making its folders. */
static void
put(const char *name, const void *data, size_t len)
{
	char path[512], *slash;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	for (slash = strchr(path + strlen(dir) + 1, '/'); slash != NULL;
	    slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		mkdir(path, 0700);
		*slash = '/';
	}
	assert_non_null(f = fopen(path, "wb"));
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* Copies the system's zone name to dir/as. */
static void
copy_zone(const char *name, const char *as)
{
	char path[512], buf[65536];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", name);
	assert_non_null(f = fopen(path, "rb"));
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_true(n > 44);
	put(as, buf, n);
}

static int
setup(void **state)
{
	const char *base = getenv("TMPDIR");
	char fifo[512];

	(void)state;
	snprintf(dir, sizeof(dir), "%s/dp-test-tzcache-XXXXXX",
	    base != NULL && base[0] != '\0' ? base : "/tmp");
	if (mkdtemp(dir) == NULL)
		return -1;
	copy_zone("Europe/Paris", "Europe/Paris");
	copy_zone("America/Chicago", "America/Chicago");
	copy_zone("Europe/Paris", "posix/Europe/Paris");   /* skipped by the walk */
	copy_zone("UTC", "right/UTC");
	copy_zone("Asia/Tokyo", "a/b/c/d/Deep");           /* deeper than any zone */
	put("zone.tab", "FR\t+4852+00220\tEurope/Paris\n", 28);
	put("NotAZone", "not a TZif file at all, just words", 34);
	snprintf(fifo, sizeof(fifo), "%s/Fifo", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[512];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The UTC offset of z at t. */
static int32_t
utoff(const struct tz *z, int64_t t)
{
	struct tz_local lt;

	assert_int_equal(tz_local(z, t, &lt), 0);
	return lt.utoff;
}

static void
every_zone_is_loaded_up_front_and_junk_passed_over(void **state)
{
	struct tzcache *c = tzcache_new(dir, 64);
	const struct tz *paris;
	char path[512];
	struct err e;

	(void)state;
	assert_non_null(c);
	assert_int_equal(tzcache_load_all(c, &e), 0);
	/* Europe/Paris and America/Chicago, and UTC and Etc/UTC built in: not the table,
	 * the junk, the FIFO, the posix/ and right/ copies or the zone too deep */
	assert_int_equal(tzcache_count(c), 4);
	assert_non_null(paris = tz_get(c, "Europe/Paris", NULL));
	assert_int_equal(utoff(paris, JAN_2026), 3600);
	/* loaded: its file is not read again */
	snprintf(path, sizeof(path), "%s/Europe/Paris", dir);
	assert_int_equal(unlink(path), 0);
	assert_ptr_equal(tz_get(c, "Europe/Paris", NULL), paris);
	copy_zone("Europe/Paris", "Europe/Paris");
	/* a zone the walk passed over is still read when asked for */
	assert_non_null(tz_get(c, "posix/Europe/Paris", NULL));
	assert_int_equal(tzcache_count(c), 5);
	assert_null(tz_get(c, "NotAZone", &e));
	assert_string_equal(e.code, "bad_tzif");
	assert_null(tz_get(c, "Europe/Atlantis", &e));
	assert_string_equal(e.code, "not_found");
	tzcache_free(c);
}

static void
a_reload_changes_rules_in_place_and_keeps_a_broken_zone(void **state)
{
	struct tzcache *c = tzcache_new(dir, 64);
	const struct tz *paris, *chicago;
	struct err e;

	(void)state;
	assert_int_equal(tzcache_load_all(c, &e), 0);
	paris = tz_get(c, "Europe/Paris", NULL);
	chicago = tz_get(c, "America/Chicago", NULL);
	assert_int_equal(utoff(chicago, JAN_2026), -6 * 3600);
	/* tzdata changes: Paris takes Tokyo's rules, Chicago's file breaks, a zone is
	 * added */
	copy_zone("Asia/Tokyo", "Europe/Paris");
	put("America/Chicago", "TZif broken", 11);
	copy_zone("Asia/Tokyo", "Asia/Tokyo");
	assert_int_equal(tzcache_reload(c, &e), 0);
	assert_ptr_equal(tz_get(c, "Europe/Paris", NULL), paris);
	assert_int_equal(utoff(paris, JAN_2026), 9 * 3600);
	assert_string_equal(tz_name(paris), "Europe/Paris");
	assert_ptr_equal(tz_get(c, "America/Chicago", NULL), chicago);
	assert_int_equal(utoff(chicago, JAN_2026), -6 * 3600);
	assert_non_null(tz_get(c, "Asia/Tokyo", NULL));
	assert_int_equal(tzcache_count(c), 5);
	tzcache_free(c);
	copy_zone("Europe/Paris", "Europe/Paris");
	copy_zone("America/Chicago", "America/Chicago");
}

static void
many_zones_are_found_through_the_index(void **state)
{
	struct tzcache *c = tzcache_new(NULL, 4096);
	const char *const names[] = { "America/New_York", "Asia/Kolkata",
		"Australia/Lord_Howe", "Pacific/Chatham", "Etc/GMT+12", "UTC" };
	struct err e;
	size_t i;

	(void)state;
	assert_int_equal(tzcache_load_all(c, &e), 0);
	assert_true(tzcache_count(c) > 300);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct tz *z = tz_get(c, names[i], NULL);

		assert_non_null(z);
		assert_string_equal(tz_name(z), names[i]);
		assert_ptr_equal(tz_get(c, names[i], NULL), z);
	}
	tzcache_free(c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_zone_is_loaded_up_front_and_junk_passed_over),
		cmocka_unit_test(a_reload_changes_rules_in_place_and_keeps_a_broken_zone),
		cmocka_unit_test(many_zones_are_found_through_the_index),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
