/*
 * clicks.h: the /c/<token> click links in pushes (stage: http).
 *
 * GET /c/<token> checks the signed token (clicktok), then one Lua script (click.lua)
 * looks up the deal's URL and, atomically, counts the click once per push in the
 * funnel reports and raises the subscriber's engagement. The answer is a 302 to the
 * deal URL with utm parameters, 404 for any bad, tampered or unknown token, and 503
 * when Redis cannot answer (the URL lives only there). See docs/attribution.md.
 */
#ifndef DEALPUSH_CLICKS_H
#define DEALPUSH_CLICKS_H

#include <stddef.h>

struct app;
struct clicks;

/* Registers GET /c on app->http. Returns the handle, or NULL (logged) when the HTTP
 * surface is off, click links are not configured (no http.public_url or
 * http.click_secret, or a secret shorter than CLICKTOK_KEY_MIN bytes) or out of
 * memory; the route is then absent and /c/... answers 404. app is borrowed and must
 * outlive the handle. */
struct clicks *clicks_new(const struct app *app);

/* Answers every click still waiting on Redis with 503 and frees k; call before
 * http_free. Script replies arriving later are dropped. NULL does nothing. */
void clicks_free(struct clicks *k);

/*
 * Writes url with the utm parameters appended into buf: "utm_source=dealpush",
 * "utm_medium=<medium>", "utm_campaign=<campaign>" (values percent-encoded), after an
 * existing query string (whose own utm_source/utm_medium/utm_campaign are dropped)
 * and before any fragment. Returns the length written, or -1 when buf is too small
 * (buf is then "" when size > 0). Pure; exposed for tests.
 */
int clicks_utm_url(const char *url, const char *medium, const char *campaign,
    char *buf, size_t size);

/* Splits push id "<entry>:<sub>:<channel>" (the sub may hold ':') into its parts,
 * each copied NUL-terminated into buffers of the given sizes. Returns 0, or -1 when
 * the id is malformed or a part does not fit. Pure; shared with convert.c. */
int clicks_split_push_id(const char *push_id, char *entry, size_t esize, char *sub,
    size_t ssize, char *ch, size_t csize);

#endif
