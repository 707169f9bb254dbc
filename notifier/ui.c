/*
 * ui.c: GET /ui/<file>, the console's embedded files (stage: http; docs/console.md).
 *
 * Public: the files hold no data, and every call the page makes goes to /v1/, which
 * needs a session or a token. Each answer carries the strict security headers (no
 * inline script, never framed) and an ETag, so a browser revalidates with one small
 * request (304) instead of fetching the files again. Paths are looked up in the
 * embedded table only: nothing is read from disk, so no path can leave it.
 */
#include <string.h>

#include <event2/http.h>

#include "http.h"
#include "ui.h"

#define UI_CSP "default-src 'self'; script-src 'self'; style-src 'self'; " \
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; " \
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

const struct ui_file *
ui_find(const char *name)
{
	const struct ui_file *f;

	for (f = ui_files; f->name != NULL; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

/* 1 when the If-None-Match header of r names etag (or is "*"). */
static int
not_modified(struct http_req *r, const char *etag)
{
	const char *inm = http_header(r, "If-None-Match");
	size_t n = strlen(etag);
	const char *p;

	if (inm == NULL)
		return 0;
	if (strcmp(inm, "*") == 0)
		return 1;
	for (p = inm; (p = strstr(p, etag)) != NULL; p += n)
		if ((p == inm || p[-1] == ' ' || p[-1] == ',' || p[-1] == '/') &&
		    (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
			return 1;
	return 0;
}

static void
on_ui(struct http_req *r, void *arg)
{
	const char *path = http_req_path(r), *rest = http_req_rest(r);
	const struct ui_file *f;

	(void)arg;
	if (strcmp(path, "/ui") == 0) {
		/* The page's relative links need the trailing slash. */
		http_add_header(r, "Location", "/ui/");
		http_reply(r, 301, "text/plain; charset=utf-8", "/ui/\n", 5);
		return;
	}
	f = ui_find(rest[0] == '\0' ? "index.html" : rest);
	if (f == NULL) {
		http_error(r, 404, "path", "no such file of the console");
		return;
	}
	http_add_header(r, "Content-Security-Policy", UI_CSP);
	http_add_header(r, "X-Content-Type-Options", "nosniff");
	http_add_header(r, "Referrer-Policy", "no-referrer");
	http_add_header(r, "X-Frame-Options", "DENY");
	http_add_header(r, "Cache-Control", "no-cache");
	http_add_header(r, "ETag", f->etag);
	if (not_modified(r, f->etag)) {
		http_reply(r, 304, f->type, "", 0);
		return;
	}
	if (http_req_method(r) == EVHTTP_REQ_HEAD) {
		/* evhttp would send the body after the headers of a HEAD answer */
		http_reply(r, 200, f->type, "", 0);
		return;
	}
	http_reply(r, 200, f->type, f->data, f->len);
}

int
ui_start(struct http *h)
{
	return http_route(h, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "/ui", HTTP_ROLE_PUBLIC,
	    on_ui, NULL, 0);
}
