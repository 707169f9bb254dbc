/*
 * ui.h: the marketers' console, served by the notifier under /ui/ (stage: http;
 * docs/console.md). The page's files live in notifier/ui/ and are embedded in the
 * binary at build time (deploy/embed-ui.sh), with the charting library from Debian's
 * libjs-chart.js: nothing is fetched from elsewhere at run time.
 */
#ifndef DEALPUSH_UI_H
#define DEALPUSH_UI_H

#include <stddef.h>

struct http;

/* One embedded file: its path under /ui/, content type, ETag (quoted) and bytes. */
struct ui_file {
	const char *name;
	const char *type;
	const char *etag;
	const unsigned char *data;
	size_t len;
};

/* Every embedded file, ended by one with a NULL name (generated). */
extern const struct ui_file ui_files[];

/* The embedded file at path name ("index.html", "vendor/chart.min.js"), or NULL. */
const struct ui_file *ui_find(const char *name);

/* Adds GET and HEAD /ui and /ui/<file> to h. Returns 0, or -1 when out of memory. */
int ui_start(struct http *h);

#endif
