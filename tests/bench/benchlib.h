/*
 * benchlib.h: what the benchmarks share: a monotonic clock, sizes from the
 * environment, synthetic subscribers, stream entry ids. Test code: it may block.
 */
#ifndef DEALPUSH_BENCHLIB_H
#define DEALPUSH_BENCHLIB_H

/* Monotonic milliseconds. */
long long bench_now_ms(void);

/* The environment variable name as a whole number in [min, max], def when unset
 * or empty, -1 when it is not such a number. */
long bench_env_long(const char *name, long def, long min, long max);

/* n subscribers "<prefix>-<i>" (i from 1) with sms consent, all interested in
 * category only, phones +1512 2xx xxxx from first on (Austin: legal window
 * 8:00-21:00 Central), as JSON lines. Caller frees; NULL when out of memory. */
char *bench_subscribers_jsonl(const char *prefix, long n, long first,
    const char *category);

/* The ms of a stream entry id "<ms>-<seq>"; -1 when it is not one. */
long long bench_entry_ms(const char *id);

#endif
