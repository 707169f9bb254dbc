/*
 * test_ui_files.c: the console's embedded files keep the promises of docs/console.md:
 * every file of notifier/ui is embedded with a content type and an ETag; the pages
 * hold no inline script, event handler attribute, inline style or javascript: URL
 * (the Content-Security-Policy would block them, so they would be dead code); our
 * own files load nothing from another origin (the console works offline); the
 * charting library and its licence are there.
 */
#include <dirent.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "ui.h"

static char *
text_of(const struct ui_file *f)
{
	char *s = malloc(f->len + 1);

	assert_non_null(s);
	memcpy(s, f->data, f->len);
	s[f->len] = '\0';
	return s;
}

static int
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), m = strlen(tail);

	return n >= m && strcmp(s + n - m, tail) == 0;
}

/* Every regular file under dir (relative name rel) is embedded under that name. */
static void
check_dir(const char *dir, const char *rel, int *count)
{
	char path[512], name[512];
	struct dirent *d;
	struct stat st;
	DIR *dp = opendir(dir);

	assert_non_null(dp);
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		snprintf(name, sizeof(name), "%s%s%s", rel, rel[0] ? "/" : "", d->d_name);
		assert_int_equal(stat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			check_dir(path, name, count);
			continue;
		}
		if (ui_find(name) == NULL)
			fail_msg("notifier/ui/%s is not embedded", name);
		(*count)++;
	}
	closedir(dp);
}

static void
every_file_is_embedded_with_type_and_etag(void **state)
{
	const struct ui_file *f;
	int count = 0, n = 0;

	(void)state;
	check_dir("notifier/ui", "", &count);
	assert_true(count >= 5);
	for (f = ui_files; f->name != NULL; f++, n++) {
		assert_true(f->len > 0);
		assert_non_null(f->type);
		assert_int_equal(strlen(f->etag), 18);            /* "16 hex digits" */
		assert_int_equal(f->etag[0], '"');
	}
	assert_int_equal(n, count + 1);                    /* + the charting library */
	assert_non_null(ui_find("index.html"));
	assert_null(ui_find("../index.html"));
	assert_null(ui_find(""));
	assert_string_equal(ui_find("app.js")->type, "text/javascript; charset=utf-8");
}

static void
pages_hold_nothing_the_policy_blocks(void **state)
{
	static const char *const banned[] = {
		"<script>", "<script >", "<script type=\"module\">", "<style",
		"javascript:", " style=", " on[a-z]+=",
	};
	const struct ui_file *f;
	regex_t re;
	size_t i;

	(void)state;
	for (f = ui_files; f->name != NULL; f++) {
		char *s;

		if (!ends_with(f->name, ".html"))
			continue;
		s = text_of(f);
		for (i = 0; i < sizeof(banned) / sizeof(banned[0]); i++) {
			assert_int_equal(regcomp(&re, banned[i], REG_EXTENDED | REG_ICASE |
			    REG_NOSUB), 0);
			if (regexec(&re, s, 0, NULL, 0) == 0)
				fail_msg("%s holds '%s'", f->name, banned[i]);
			regfree(&re);
		}
		/* every script is a file of ours */
		assert_non_null(strstr(s, "<script type=\"module\" src=\"app.js\">"));
		free(s);
	}
}

static void
our_files_load_nothing_from_elsewhere(void **state)
{
	const struct ui_file *f;

	(void)state;
	for (f = ui_files; f->name != NULL; f++) {
		char *s;

		if (strncmp(f->name, "vendor/", 7) == 0)
			continue;
		s = text_of(f);
		if (strstr(s, "http://") != NULL || strstr(s, "https://") != NULL ||
		    strstr(s, "//cdn") != NULL || strstr(s, "@import") != NULL)
			fail_msg("%s refers to another origin", f->name);
		if (ends_with(f->name, ".js") && (strstr(s, "innerHTML") != NULL ||
		    strstr(s, "eval(") != NULL || strstr(s, "new Function") != NULL))
			fail_msg("%s parses data as code or HTML", f->name);
		free(s);
	}
}

static void
the_charting_library_and_its_licence_are_there(void **state)
{
	const struct ui_file *lib = ui_find("vendor/chart.min.js");
	const struct ui_file *lic = ui_find("vendor/chart.js.LICENSE");
	char *s;

	(void)state;
	assert_non_null(lib);
	assert_non_null(lic);
	s = text_of(lib);
	assert_non_null(strstr(s, "Chart.js v3.9.1"));
	assert_non_null(strstr(s, "MIT"));
	free(s);
	s = text_of(lic);
	assert_non_null(strstr(s, "Permission is hereby granted"));
	free(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_file_is_embedded_with_type_and_etag),
		cmocka_unit_test(pages_hold_nothing_the_policy_blocks),
		cmocka_unit_test(our_files_load_nothing_from_elsewhere),
		cmocka_unit_test(the_charting_library_and_its_licence_are_there),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
