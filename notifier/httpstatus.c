/*
 * httpstatus.c: the HTTP server's built-in routes, GET /healthz and GET /metrics
 * (stage: http). Both answer from state the daemon already holds (its health
 * callback, the metrics registry) and never wait.
 */
#include <stddef.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>

#include "http.h"
#include "http_int.h"
#include "metrics.h"

#define HTTP_CT_METRICS "text/plain; version=0.0.4; charset=utf-8"


/* The planning, mirror, shards (with ownership) and redis objects of /healthz. 0, or -1 on OOM. */
static int
http_health_parts(cJSON *j, const struct http_health *hh)
{
	cJSON *p, *m, *r;

	if ((p = cJSON_AddObjectToObject(j, "planning")) == NULL ||
	    cJSON_AddNumberToObject(p, "deals", (double)hh->planning) == NULL ||
	    cJSON_AddNumberToObject(p, "ranked", (double)hh->plan_ranked) == NULL ||
	    cJSON_AddNumberToObject(p, "sliced", (double)hh->plan_done) == NULL ||
	    cJSON_AddNumberToObject(p, "stalled_ms", (double)hh->plan_stalled_ms) == NULL ||
	    (hh->plan_stalled_deal != NULL && hh->plan_stalled_deal[0] != '\0' &&
	    cJSON_AddStringToObject(p, "stalled_deal", hh->plan_stalled_deal) == NULL) ||
	    cJSON_AddNumberToObject(p, "failed", (double)hh->plans_failed) == NULL)
		return -1;
	if ((m = cJSON_AddObjectToObject(j, "mirror")) == NULL ||
	    cJSON_AddBoolToObject(m, "ready", hh->mirror_ready != 0) == NULL ||
	    cJSON_AddNumberToObject(m, "subscribers", (double)hh->mirror_subscribers) == NULL ||
	    cJSON_AddBoolToObject(m, "loading", hh->mirror_loading != 0) == NULL ||
	    cJSON_AddNumberToObject(m, "reconnects", (double)hh->mirror_reconnects) == NULL ||
	    cJSON_AddNumberToObject(m, "reloads", (double)hh->mirror_reloads) == NULL ||
	    cJSON_AddStringToObject(m, "last_reload_reason", hh->mirror_reload_reason ?
	    hh->mirror_reload_reason : "") == NULL)
		return -1;
	if (hh->shards_owned && ((m = cJSON_AddObjectToObject(j, "shards")) == NULL ||
	    cJSON_AddNumberToObject(m, "served", (double)hh->shards_served) == NULL ||
	    cJSON_AddNumberToObject(m, "loading", (double)hh->shards_loading) == NULL))
		return -1;
	if ((r = cJSON_AddObjectToObject(j, "redis")) == NULL ||
	    cJSON_AddNumberToObject(r, "connects", (double)hh->redis_connects) == NULL ||
	    cJSON_AddNumberToObject(r, "command_timeouts", (double)hh->redis_timeouts) == NULL)
		return -1;
	if (hh->wait_replicas > 0 && ((m = cJSON_AddObjectToObject(j, "replicas")) == NULL ||
	    cJSON_AddNumberToObject(m, "wanted", (double)hh->wait_replicas) == NULL ||
	    cJSON_AddNumberToObject(m, "waits", (double)hh->waits) == NULL ||
	    cJSON_AddNumberToObject(m, "waits_short", (double)hh->waits_short) == NULL ||
	    cJSON_AddBoolToObject(m, "lagging", hh->replica_lag != 0) == NULL))
		return -1;
	return 0;
}

/* GET /healthz: 200 {"status":"ok",...} or 503 {"status":"unhealthy",...}. */
void http_healthz(struct http_req *r, void *arg)
{
	struct http *h = arg;
	struct http_health hh;
	int ok = 0;
	cJSON *j;

	memset(&hh, 0, sizeof(hh));
	if (h->health != NULL)
		ok = h->health(h->health_arg, &hh) == 1;
	else
		hh.detail = "no health check configured";
	if ((j = cJSON_CreateObject()) == NULL ||
	    cJSON_AddStringToObject(j, "status", ok ? "ok" : "unhealthy") == NULL ||
	    cJSON_AddBoolToObject(j, "redis_ok", hh.redis_ok != 0) == NULL ||
	    cJSON_AddNumberToObject(j, "stream_lag", (double)hh.stream_lag) == NULL ||
	    cJSON_AddNumberToObject(j, "rules_loaded", (double)hh.rules_loaded) == NULL ||
	    (hh.detail != NULL &&
	    cJSON_AddStringToObject(j, "detail", hh.detail) == NULL) ||
	    http_health_parts(j, &hh) < 0) {
		cJSON_Delete(j);
		http_send_bare(r, 500);
		return;
	}
	http_reply_json(r, ok ? 200 : 503, j);
}

/* GET /metrics: the Prometheus text exposition. */
void http_metrics(struct http_req *r, void *arg)
{
	struct http *h = arg;
	struct evbuffer *buf;

	if (h->metrics == NULL) {
		http_error(r, 503, NULL, "metrics not available");
		return;
	}
	if ((buf = evbuffer_new()) == NULL || metrics_render(h->metrics, buf) < 0) {
		if (buf != NULL)
			evbuffer_free(buf);
		http_send_bare(r, 500);
		return;
	}
	http_send(r, 200, HTTP_CT_METRICS, buf);
	evbuffer_free(buf);
}
