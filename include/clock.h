/*
 * clock.h: the one source of time (stage: all).
 *
 * Wall time (expiry, quiet hours, caps) comes only from clock_now*(), which adds an
 * offset that tests and the admin surface can move; intervals and deadlines use the
 * monotonic clock, which nobody moves.
 */
#ifndef DEALPUSH_CLOCK_H
#define DEALPUSH_CLOCK_H

#include <stdint.h>

/* Wall time in epoch seconds / milliseconds, including the offset. */
int64_t clock_now(void);
int64_t clock_now_ms(void);

/* The real wall clock in epoch milliseconds, without the offset: only for comparing
 * with Redis stream entry ids (latency since a deal landed), never for policy. */
int64_t clock_real_ms(void);

/* Monotonic milliseconds since an arbitrary start. */
int64_t clock_mono_ms(void);

/* Moves wall time by offset_s seconds from the real clock (0 = real time). */
void clock_set_offset(int64_t offset_s);

#endif
