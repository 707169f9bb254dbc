/*
 * rconn_primary.c: a connection that follows the primary found through Sentinel, and
 * subscriptions (stage: all Redis I/O).
 *
 * The address is asked of the sentinel at every connect, and only a server whose
 * ROLE says master is used: a sentinel may still name a primary that was demoted.
 * When the primary moves, the connection drops and reconnects at once. Never blocks
 * the loop.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "log.h"
#include "rconn.h"
#include "rconn_int.h"
#include "sentinel.h"

/* ROLE's answer: only a primary is used, whatever a sentinel said (a sentinel may
 * still name a primary that was demoted meanwhile). */
static void
rconn_on_role(struct rconn *rc, struct redisReply *reply, void *arg)
{
	const char *role = "unknown";

	(void)arg;
	if (reply == NULL)
		return;    /* dropped or freed: the reconnect asks again */
	if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
	    reply->element[0]->type == REDIS_REPLY_STRING)
		role = reply->element[0]->str;
	else if (reply->type == REDIS_REPLY_ERROR)
		role = reply->str;
	if (strcmp(role, "master") == 0) {
		rconn_became_ready(rc);
		return;
	}
	log_warnx("redis=%s event=not_primary addr=%s:%d role=\"%s\" action=ask_sentinels",
	    rc->name, rc->addr, rc->port, role);
	sentinel_refresh(rc->sentinel);
	rconn_reset(rc, "not the primary");
}

/* Connected and logged in: ready, once the role is confirmed when it came from a
 * sentinel. */
void
rconn_handshake(struct rconn *rc)
{
	int sent;

	if (rc->sentinel == NULL) {
		rconn_became_ready(rc);
		return;
	}
	/* The connection is usable for ROLE before it is "ready". */
	rc->ready = 1;
	sent = rconn_cmd(rc, rconn_on_role, NULL, 0, "ROLE");
	rc->ready = 0;
	if (sent < 0)
		rconn_reset(rc, "role send failed");
}

/*
 * Takes the primary's address from the sentinel into host and port (a name gets a
 * resolver, created the first time). Returns 0, or -1 when none is known yet or on
 * OOM (try again later).
 */
int
rconn_locate(struct rconn *rc)
{
	char host[SENTINEL_HOST_MAX];
	char *h;
	int port;

	if (sentinel_primary(rc->sentinel, host, sizeof(host), &port) < 0) {
		if (!rc->waiting_logged)
			log_info("redis=%s event=waiting_for_primary err=\"no sentinel has "
			    "named the primary yet\"", rc->name);
		rc->waiting_logged = 1;
		return -1;
	}
	rc->waiting_logged = 0;
	rc->port = port;
	if (rc->host == NULL || strcmp(rc->host, host) != 0) {
		if ((h = strdup(host)) == NULL)
			return -1;
		free(rc->host);
		rc->host = h;
	}
	if (rconn_is_ip(host)) {
		snprintf(rc->addr, sizeof(rc->addr), "%.45s", host);   /* an address fits */
		return 0;
	}
	if (rc->dns == NULL && (rc->dns = evdns_base_new(rc->base,
	    EVDNS_BASE_INITIALIZE_NAMESERVERS)) == NULL)
		return -1;
	return 0;
}

void
rconn_moved(struct rconn *rc)
{
	char host[SENTINEL_HOST_MAX];
	int port;

	if (rc->closed || rc->sentinel == NULL || sentinel_primary(rc->sentinel, host, sizeof(host),
	    &port) < 0)
		return;
	if ((rc->ac != NULL || rc->lookup != NULL) && strcmp(host, rc->host) == 0 &&
	    port == rc->port)
		return;
	/* At once: the backoff grew while the old primary refused. */
	rc->backoff_ms = RCONN_BACKOFF_MIN_MS;
	if (rc->ac != NULL) {
		rconn_reset(rc, "primary moved");
		return;
	}
	rconn_drop(rc);
	evtimer_del(rc->retry_timer);
	rconn_schedule_reconnect(rc);
}

/* hiredis' subscription callback: the SUBSCRIBE confirmation, then every message,
 * then NULL once when the context is freed. */
static void
rconn_on_message(redisAsyncContext *ac, void *r, void *privdata)
{
	struct rconn *rc = privdata;
	redisReply *reply = r;
	rconn_reply_fn *cb = rc->sub_cb;

	(void)ac;
	if (reply == NULL) {
		rc->sub_cb = NULL;
		if (cb != NULL)
			cb(rc, NULL, rc->sub_arg);
		return;
	}
	if (cb != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
	    reply->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(reply->element[0]->str, "message") == 0)
		cb(rc, reply, rc->sub_arg);
}

int
rconn_subscribe(struct rconn *rc, const char *channel, rconn_reply_fn *cb, void *arg)
{
	if (!rconn_is_ready(rc) || rc->sub_cb != NULL)
		return -1;
	if (rc->cl != NULL) {
		/* Not on a cluster yet: the caller polls instead (it must anyway, a
		 * subscription's messages are lost while it reconnects). */
		log_warnx("event=subscribe_unsupported conn=%s channel=%s reason=cluster",
		    rc->name, channel);
		return -1;
	}
	if (redisAsyncCommand(rc->ac, rconn_on_message, rc, "SUBSCRIBE %s", channel) !=
	    REDIS_OK)
		return -1;
	rc->sub_cb = cb;
	rc->sub_arg = arg;
	return 0;
}
