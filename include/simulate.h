/*
 * simulate.h: POST /v1/deals/simulate, who would receive a deal (stage: http).
 *
 * Runs the matcher on a deal given in the request with the rules and subscribers in
 * use, and answers who would receive it, on which channel, with which text and how
 * many SMS segments, who was excluded and why, and whose pushes would wait for their
 * sending window: without planning, writing or sending anything. docs/admin.md.
 */
#ifndef DEALPUSH_SIMULATE_H
#define DEALPUSH_SIMULATE_H

struct app;
struct simulate;

/* Hangs the route on app->http (bearer token). Returns the handle, or NULL (logged)
 * when there is no HTTP surface or memory runs out. app is borrowed. */
struct simulate *simulate_new(const struct app *app);

/* Frees s. NULL does nothing. */
void simulate_free(struct simulate *s);

#endif
