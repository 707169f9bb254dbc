/*
 * uri.h: the one check of every URL the configuration holds (stage: start-up).
 *
 * An absolute http or https URI as RFC 3986 defines it, a little stricter: a host
 * name or address is required, no user:password (secrets are never in the config),
 * no fragment, every character one the grammar allows, every '%' followed by two
 * hex digits. No I/O, no allocation: config.c and gw.c both call it, so that
 * --check-config and start-up agree.
 */
#ifndef DEALPUSH_URI_H
#define DEALPUSH_URI_H

#include <stddef.h>

/* uri_check_http flags. */
#define URI_BASE 0x1   /* a base that paths are appended to: no query either */

/*
 * Returns 0 when s is an acceptable http(s) URI, -1 otherwise with the reason in
 * why (size bytes, always NUL-terminated; names the position and the character,
 * never echoes the whole value). s may be NULL (-1: "empty").
 */
int uri_check_http(const char *s, int flags, char *why, size_t size);

/* 1 when host (a connection target, not a URL) is an IPv4 or IPv6 address or a host
 * name (RFC 1123: labels of 1 to 63 letters, digits and '-', not beginning or ending
 * with '-', 253 bytes in all), else 0. */
int uri_host_ok(const char *host);

#endif
