/*
 * decay.h: engagement decay for pushes nobody clicked (stage: record).
 *
 * A tick on the loop reads the decay cursor (engagement:decay) and the pushes:log
 * entries after it, then decay.lua lowers the engagement of the subscriber of every
 * "sent" push without clicked:<push id> once the push is 72 h old, and moves the
 * cursor in the same step. Contract: docs/attribution.md §3.
 */
#ifndef DEALPUSH_DECAY_H
#define DEALPUSH_DECAY_H

struct app;
struct decay;

/* Starts the decay tick on app's loop and command connection (both borrowed; they
 * must outlive the handle). Returns the handle, or NULL when out of memory. */
struct decay *decay_new(const struct app *app);

/* Stops the tick; a step in flight is detached and freed by its reply. NULL does
 * nothing. */
void decay_free(struct decay *d);

#endif
