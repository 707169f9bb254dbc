/*
 * admin_replies.c: GET /v1/replies (stage: http; docs/api.md): what subscribers
 * texted back that was no keyword, newest first, a page at a time, from the
 * `replies` stream (MAXLEN ~10,000; hook_consent.lua writes it). The sender is
 * masked (a number as the logs mask it, a DM handle to its first two characters):
 * a viewer reads what people say, not who they are; GET /v1/export answers the rest
 * to an admin.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>

#include "admin_replies.h"
#include "app.h"
#include "http.h"
#include "log.h"
#include "streampage.h"

#define REPLIES_LIMIT_DEFAULT 50
#define REPLIES_LIMIT_MAX 500

struct admin_replies {
	const struct app *app;
	struct http_wait *ops;
};

static int
reply_field(cJSON *e, const char *name, const struct redisReply *v)
{
	char masked[48];

	if (strcmp(name, "from") == 0) {
		if (v->str[0] == '+')
			log_mask_phone(v->str, masked, sizeof(masked));
		else
			snprintf(masked, sizeof(masked), "%.2s\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2",
			    v->str);
		cJSON_AddStringToObject(e, "from", masked);
		return 1;
	}
	if (strcmp(name, "received_at") == 0) {
		cJSON_AddNumberToObject(e, "received_at", strtod(v->str, NULL));
		return 1;
	}
	return strcmp(name, "sid") == 0;     /* the provider's id: of no use here */
}

static void
on_replies(struct http_req *r, void *arg)
{
	struct admin_replies *ar = arg;

	stream_page(ar->app, &ar->ops, r, "replies", REPLIES_LIMIT_DEFAULT,
	    REPLIES_LIMIT_MAX, reply_field);
}

struct admin_replies *
admin_replies_new(const struct app *app)
{
	struct admin_replies *ar = calloc(1, sizeof(*ar));

	if (ar == NULL)
		return NULL;
	ar->app = app;
	if (app->http != NULL && http_route(app->http, EVHTTP_REQ_GET, "/v1/replies",
	    HTTP_ROLE_VIEWER, on_replies, ar, HTTP_EXACT) < 0) {
		free(ar);
		return NULL;
	}
	return ar;
}

void
admin_replies_free(struct admin_replies *ar)
{
	if (ar == NULL)
		return;
	http_wait_detach_all(&ar->ops);
	free(ar);
}
