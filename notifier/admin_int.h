/*
 * admin_int.h: what the admin API's files share (stage: http): the module's state,
 * the rule sources, a request waiting on Redis, and each file's entry points. Private
 * to admin.c, admin_sub.c, admin_sublist.c, admin_rules.c and admin_report.c; the public face is
 * include/admin.h.
 */
#ifndef DEALPUSH_ADMIN_INT_H
#define DEALPUSH_ADMIN_INT_H

#include <stddef.h>

#include "model.h"

struct app;
struct cJSON;
struct err;
struct event;
struct http_req;
struct http_wait;
struct redisReply;
struct rule_diags;
struct rule_set;

#define ADMIN_POLL_MS 500             /* how often rules:version is looked at */
#define ADMIN_SRC_NAME_MAX 64         /* an API rule source name */
#define ADMIN_API_PREFIX "api/"
#define ADMIN_FILE_MAX (MODEL_ID_MAX + 16) /* "api/<name>.rules" */

/* One rule source: a folder file ("dir/x.rules") or an API rule ("x"). */
struct admin_src {
	char *name;
	char *text;
	size_t len;
};

struct admin_srcs {
	struct admin_src *v;
	size_t n;
};

enum admin_op_kind {
	OP_SUB_PUT, OP_SUB_GET, OP_SUB_DEL, OP_RULE_PUT, OP_RULE_DEL, OP_REPORT, OP_LOAD
};

/* One request waiting on Redis. Owned by its callback, which frees it. */
struct admin_op {
	struct admin *a;              /* NULL once admin_free ran */
	struct http_req *r;           /* NULL for the rules poll */
	struct admin_op *prev, *next;
	enum admin_op_kind kind;
	char name[MODEL_ID_MAX + 1];  /* subscriber id, rule source or report name */
	char kindname[16];            /* report kind */
	char *text;                   /* rule text or subscriber JSON (owned) */
	size_t len;
	struct rule_set *rs;          /* the set compiled for a rule change (owned) */
	unsigned long epoch;          /* a->epoch when rs was compiled */
	double price;                 /* report: per-SMS-segment price, NAN: none */
	struct cJSON *json;           /* report: the answer being built (owned) */
};

struct admin {
	const struct app *app;
	struct admin_srcs folder;     /* the folder's files, read at start and SIGHUP */
	struct admin_srcs api;        /* the API rules as last loaded or written */
	char version[32];             /* rules:version of api; "" before the first load */
	unsigned long epoch;          /* bumped at every change of folder or api */
	int loading;                  /* a rules poll is in flight */
	struct event *poll, *hup;
	struct admin_op *ops;
	struct admin_bulk *bulk;      /* POST /v1/bulk/subscribers (admin_bulk.c) */
	struct admin_consent *consent; /* GET /v1/consent/<id> (admin_consent.c) */
	struct admin_confirm *confirm; /* POST /v1/deals/<id>/confirm (admin_confirm.c) */
	struct admin_codes *codes;    /* /v1/codes/<pool> (admin_codes.c) */
	struct admin_deals *deals;    /* GET /v1/deals/<id> (admin_deals.c) */
	struct privacy *privacy;      /* /v1/erase, /v1/export (privacy.c) */
	struct admin_replies *replies; /* GET /v1/replies (admin_replies.c) */
	struct http_wait *list_ops;   /* GET /v1/subscribers pages (admin_sublist.c) */
};

/* ---- admin.c ---- */

/* Frees every source in s and leaves it empty. */
void admin_srcs_free(struct admin_srcs *s);

/* Appends copies of name and text. 0 or -1 (out of memory, s unchanged). */
int admin_srcs_add(struct admin_srcs *s, const char *name, const char *text, size_t len);

/* The source named name in s, or NULL. */
const struct admin_src *admin_srcs_find(const struct admin_srcs *s, const char *name);

/* qsort comparator: struct admin_src by name. */
int admin_src_cmp(const void *x, const void *y);

/* "api/<name>.rules" into buf. */
void admin_api_file_name(const char *name, char *buf, size_t size);

/* 1 when name may name an API rule source: 1..64 of [A-Za-z0-9_-]. */
int admin_api_name_is_valid(const char *name);

/* GET /v1/rules/<name>?history=1 (admin_rulehist.c): the source's versions from the
 * audit stream; r waits in a->list_ops or is answered at once. */
void admin_rule_history(struct admin *a, struct http_req *r, const char *name);

/* Compiles the folder with the API rules, where put_name (when not NULL) has the text
 * put_text instead of its own (or is added), and del_name (when not NULL) is left out.
 * Returns the new set, or NULL with every error in diags and *err. */
struct rule_set *admin_compile(const struct admin *a, const char *put_name,
    const char *put_text, size_t put_len, const char *del_name,
    struct rule_diags *diags, struct err *err);

/* Compiles folder + API rules as they are and swaps the set in; on failure logs every
 * error and keeps the set in use. 0 or -1. */
int admin_swap_rules(struct admin *a, const char *why);

/* A request waiting on Redis, linked into a->ops; NULL when out of memory. */
struct admin_op *admin_op_new(struct admin *a, struct http_req *r,
    enum admin_op_kind kind);

/* Unlinks op (if still attached) and frees it with what it owns. */
void admin_op_free(struct admin_op *op);

/* The answer to a request whose Redis command failed or timed out. */
void admin_op_redis_failed(struct admin_op *op, const struct redisReply *reply);

/* ---- admin_byphone.c ---- */

/* GET /v1/subscribers?phone=: the ids of phone's (E.164, checked) subscribers from
 * the phone index and the mirror; r waits in a->list_ops. */
void admin_sub_by_phone(struct admin *a, struct http_req *r, const char *phone);

/* ---- admin_sub.c ---- */

/* /v1/subscribers and /v1/subscribers/<id> (arg: the admin). */
void admin_on_subscribers(struct http_req *r, void *arg);

/* ---- admin_sublist.c ---- */

/* GET /v1/subscribers?cursor=&limit=&interest=&consent=&tz=: one page, answered on r
 * from later HSCAN callbacks (or at once for a bad parameter). */
void admin_sub_list(struct admin *a, struct http_req *r);

/* ---- admin_rules.c ---- */

/* /v1/rules and /v1/rules/<name> (arg: the admin). */
void admin_on_rules(struct http_req *r, void *arg);

/* ---- admin_ab.c ---- */

/* A deal's A/B tests from its report hash h (a flat HGETALL reply, summed over the
 * shards): per rule, "held", "released" and each variant's sent, clicked and
 * redeemed. A new object, or NULL when the deal had no test (or on OOM). */
struct cJSON *admin_ab_json(const struct redisReply *h);

/* Adds to ab (admin_ab_json; NULL does nothing) each test's terms, rates and
 * "state": "decided" with its decision, or "running" with its standing, from
 * abtest:<deal> (a flat HGETALL reply t; NULL: none). */
void admin_ab_state(struct cJSON *ab, const struct redisReply *t);

/* ---- admin_report.c ---- */

/* GET /v1/reports/<kind>/<name> (arg: the admin). */
void admin_on_reports(struct http_req *r, void *arg);

/* The report hashes parts[0..n) (flat HGETALL replies, one per shard) summed as the
 * report API sums them: one part as it is, several field by field (integers as
 * integers, other numbers as doubles, a value that is no number the first one's).
 * Freed with freeReplyObject; NULL when out of memory or a part is not a hash. */
struct redisReply *admin_report_sum(struct redisReply *const *parts, size_t n);

#endif
