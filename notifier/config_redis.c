/*
 * config_redis.c: the defaults and cross-checks of the [redis] keys (stage: start-up).
 *
 * What passes here connects: --check-config and start-up make the same checks, and
 * each problem names its key and what is wrong with it. Never prints a secret.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "sentinel.h"
#include "uri.h"

/* redis.cluster: IP addresses (a cluster's nodes are never looked up by name, as
 * the addresses its slot map gives are not), one Redis at a time. */
static void
config_cluster_seeds_check(const struct config *c, void (*report)(void *arg,
    const char *key, const char *msg), void *arg)
{
	struct sentinel_addr addrs[SENTINEL_MAX];
	unsigned char buf[sizeof(struct in6_addr)];
	char err[400], msg[512];
	int i, n;

	if ((n = sentinel_parse(c->redis_cluster, addrs, SENTINEL_MAX, err,
	    sizeof(err))) < 0) {
		snprintf(msg, sizeof(msg), "%.400s (expected ip:port,ip:port,...)", err);
		report(arg, "redis.cluster", msg);
	}
	for (i = 0; i < n; i++)
		if (inet_pton(AF_INET, addrs[i].host, buf) != 1 &&
		    inet_pton(AF_INET6, addrs[i].host, buf) != 1) {
			snprintf(msg, sizeof(msg), "'%.255s' (entry %d) is not an IP address "
			    "(a cluster's nodes are addressed by IP)", addrs[i].host, i + 1);
			report(arg, "redis.cluster", msg);
		}
	if (c->redis_sentinels != NULL)
		report(arg, "redis.cluster", "not with redis.sentinels (a cluster fails "
		    "over by itself)");
	if (c->redis_username != NULL)
		report(arg, "redis.username", "not with redis.cluster yet (AUTH with the "
		    "password only)");
}

int
config_redis_defaults(struct config *c)
{
	c->redis_port = 6379;
	c->redis_connect_timeout_ms = 1000;
	c->redis_command_timeout_ms = 2000;
	c->redis_reconnect_max_ms = 5000;
	c->wait_timeout_ms = 100;
	return (c->redis_host = strdup("127.0.0.1")) != NULL ? 0 : -1;
}

void
config_redis_check(const struct config *c, void (*report)(void *arg, const char *key,
    const char *msg), void *arg)
{
	struct sentinel_addr addrs[SENTINEL_MAX];
	char err[400], msg[512];
	int i, n;

	if (c->redis_username != NULL && c->redis_password == NULL)
		report(arg, "redis.username", "needs redis.password (an ACL user logs in "
		    "with both)");
	if (c->redis_username != NULL && strpbrk(c->redis_username, " \t\r\n") != NULL)
		report(arg, "redis.username", "must not contain white space");
	if (!uri_host_ok(c->redis_host)) {
		snprintf(msg, sizeof(msg), "'%s' is neither an IP address nor a host name "
		    "(letters, digits, '-' and '.', labels of 1 to 63)", c->redis_host);
		report(arg, "redis.host", msg);
	}
	if (c->redis_cluster != NULL)
		config_cluster_seeds_check(c, report, arg);
	if (c->redis_sentinels == NULL) {
		if (c->redis_master_name != NULL)
			report(arg, "redis.master_name", "needs redis.sentinels (the sentinels "
			    "that know this master)");
		return;
	}
	if ((n = sentinel_parse(c->redis_sentinels, addrs, SENTINEL_MAX, err,
	    sizeof(err))) < 0) {
		snprintf(msg, sizeof(msg), "%.400s (expected host:port,host:port,...)", err);
		report(arg, "redis.sentinels", msg);
	}
	for (i = 0; i < n; i++)
		if (!uri_host_ok(addrs[i].host)) {
			snprintf(msg, sizeof(msg), "'%.255s' (entry %d) is neither an IP address "
			    "nor a host name", addrs[i].host, i + 1);
			report(arg, "redis.sentinels", msg);
		}
	if (c->redis_master_name == NULL)
		report(arg, "redis.master_name", "missing: redis.sentinels needs the name "
		    "the sentinels monitor the primary under");
	else if (strpbrk(c->redis_master_name, " \t\r\n") != NULL)
		report(arg, "redis.master_name", "must not contain white space");
}
