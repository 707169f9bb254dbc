/*
 * clock.c: wall and monotonic time behind one interface (stage: all).
 *
 * The wall offset lets tests move time through quiet hours, expiry and DST nights
 * without sleeping. Nothing else in the daemon may call time() or gettimeofday().
 */
#include <time.h>

#include "clock.h"

static int64_t clock_offset_ms;

int64_t
clock_real_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
clock_now_ms(void)
{
	return clock_real_ms() + clock_offset_ms;
}

int64_t
clock_now(void)
{
	int64_t ms = clock_now_ms();

	return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

int64_t
clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
clock_set_offset(int64_t offset_s)
{
	clock_offset_ms = offset_s * 1000;
}
