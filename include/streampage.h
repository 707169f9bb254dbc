/*
 * streampage.h: a Redis stream read a page at a time, newest first, for the API
 * (stage: http): GET /v1/audit and GET /v1/replies. ?limit= (1..max) and
 * ?before=<entry id> (the previous page's next_before) are checked here; the answer
 * is {"entries": [{"entry", field: value, ...}], "next_before": id or null}.
 */
#ifndef DEALPUSH_STREAMPAGE_H
#define DEALPUSH_STREAMPAGE_H

struct app;
struct cJSON;
struct http_req;
struct http_wait;
struct redisReply;

/* Puts field name (value v) of an entry into e its own way and returns 1, or returns
 * 0 for the default: the value as a string. */
typedef int stream_page_field_fn(struct cJSON *e, const char *name,
    const struct redisReply *v);

/* Answers r with a page of stream key; r waits in *waits (the caller's list). field
 * may be NULL (every value a string). */
void stream_page(const struct app *app, struct http_wait **waits, struct http_req *r,
    const char *key, long limit_default, long limit_max, stream_page_field_fn *field);

#endif
