/*
 * gwsim_reply.c: how the simulator answers: the JSON log line, counters, the --print
 * line, delayed replies on evtimers, connection resets and unique ids.
 *
 * Every request, refused or not, passes through gwsim_reply_json() or
 * gwsim_reply_reset() exactly once and so gets exactly one log line. It must never
 * block the loop (latency is an evtimer, never a sleep) and never touch a request
 * after handing it back to libevent.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "gwsim.h"

/* A reply waiting for its latency, or a reset waiting for the callback to unwind. */
struct gwsim_pending {
	struct gwsim *sim;
	struct evhttp_request *req;
	struct event *ev;
	int status;                     /* 0 = reset the connection */
	struct gwsim_pending *prev;
	struct gwsim_pending *next;
};

/* ORDER LOG_KEYS: the documented key order of a log line (docs/gwsim.md). */
static const char *const gwsim_log_keys[] = {
	"ts_ms", "gateway", "method", "path", "status", "code", "auth_ok", "to", "body",
	"from", "messaging_service_sid", "status_callback", "validity_period", "push",
	"landed_ms", "sid", "idempotency_key", "duplicate", "fault"
};

int64_t gwsim_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t gwsim_splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void gwsim_new_sid(struct gwsim *sim, const char *prefix, char *out, size_t outlen)
{
	uint64_t n = ++sim->id_counter, x = sim->id_mix ^ n;

	/* the counter half keeps it unique; the mixed half makes it look like a sid */
	snprintf(out, outlen, "%s%016" PRIx64 "%016" PRIx64, prefix, gwsim_splitmix(&x), n);
}

void gwsim_new_digits(struct gwsim *sim, char *out, size_t outlen)
{
	uint64_t base = 1000000000000000000ULL + sim->id_mix % 100000000000000000ULL;

	snprintf(out, outlen, "%" PRIu64, base + ++sim->id_counter);
}

int gwsim_fault_fail(struct gwsim *sim)
{
	double r;

	if (sim->faults.fail_rate <= 0)
		return 0;
	r = (double)(gwsim_splitmix(&sim->rng) >> 11) * 0x1.0p-53;
	return r < sim->faults.fail_rate;
}

long gwsim_answer_for(const struct gwsim *sim, const char *key)
{
	size_t i;

	if (key == NULL)
		return 0;
	for (i = 0; i < sim->faults.nanswers; i++)
		if (strcmp(sim->faults.answers[i].key, key) == 0)
			return sim->faults.answers[i].code;
	return 0;
}

int gwsim_answer_map(long code, int *http_status, long *twilio_code)
{
	if (code >= 400 && code <= 599) {
		*http_status = (int)code;
		*twilio_code = 20000 + code;
	} else if (code >= 20400 && code <= 20599) {
		*http_status = (int)(code - 20000);
		*twilio_code = code;
	} else if (code >= 10000 && code <= 99999) {
		*http_status = 400;
		*twilio_code = code;
	} else {
		return -1;
	}
	return 0;
}

static const char *gwsim_method_name(enum evhttp_cmd_type m)
{
	switch (m) {
	case EVHTTP_REQ_GET: return "GET";
	case EVHTTP_REQ_POST: return "POST";
	case EVHTTP_REQ_HEAD: return "HEAD";
	case EVHTTP_REQ_PUT: return "PUT";
	case EVHTTP_REQ_DELETE: return "DELETE";
	case EVHTTP_REQ_OPTIONS: return "OPTIONS";
	case EVHTTP_REQ_TRACE: return "TRACE";
	case EVHTTP_REQ_CONNECT: return "CONNECT";
	case EVHTTP_REQ_PATCH: return "PATCH";
	}
	return "?";
}

void gwsim_call_init(struct gwsim_call *c, struct gwsim *sim, struct evhttp_request *req,
    const char *gateway)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	size_t i;

	memset(c, 0, sizeof(*c));
	c->sim = sim;
	c->req = req;
	c->gateway = gateway;
	c->ts_ms = gwsim_now_ms();
	c->landed_ms = -1;
	c->log = cJSON_CreateObject();
	for (i = 0; c->log && i < sizeof(gwsim_log_keys) / sizeof(gwsim_log_keys[0]); i++) {
		if (cJSON_AddNullToObject(c->log, gwsim_log_keys[i]) == NULL) {
			cJSON_Delete(c->log);
			c->log = NULL;
		}
	}
	gwsim_log_int(c, "ts_ms", c->ts_ms, 0);
	gwsim_log_str(c, "gateway", gateway);
	gwsim_log_str(c, "method", gwsim_method_name(evhttp_request_get_command(req)));
	gwsim_log_str(c, "path", path ? path : evhttp_request_get_uri(req));
	gwsim_log_bool(c, "duplicate", 0);
}

static void gwsim_log_set(struct gwsim_call *c, const char *key, cJSON *item)
{
	if (c->log == NULL) {
		cJSON_Delete(item);
		return;
	}
	if (item == NULL || !cJSON_ReplaceItemInObjectCaseSensitive(c->log, key, item)) {
		cJSON_Delete(item);
		cJSON_Delete(c->log);   /* a partial line would mislead the tests */
		c->log = NULL;
	}
}

void gwsim_log_str(struct gwsim_call *c, const char *key, const char *val)
{
	char *clean;

	if (val == NULL) {
		gwsim_log_set(c, key, cJSON_CreateNull());
		return;
	}
	clean = gwsim_utf8_clean(val, strlen(val));
	gwsim_log_set(c, key, clean ? cJSON_CreateString(clean) : NULL);
	free(clean);
}

void gwsim_log_int(struct gwsim_call *c, const char *key, int64_t val, int is_null)
{
	gwsim_log_set(c, key, is_null ? cJSON_CreateNull() : cJSON_CreateNumber((double)val));
}

void gwsim_log_bool(struct gwsim_call *c, const char *key, int val)
{
	gwsim_log_set(c, key, cJSON_CreateBool(val));
}

void gwsim_header(struct gwsim_call *c, const char *key, const char *val)
{
	evhttp_add_header(evhttp_request_get_output_headers(c->req), key, val);
}

void gwsim_log_json(struct gwsim *sim, const cJSON *json)
{
	char *line;
	size_t len, off = 0;

	if (json == NULL)
		line = strdup("{\"error\": \"gwsim: out of memory building this log line\"}");
	else
		line = cJSON_PrintUnformatted(json);
	if (line == NULL)
		return;
	len = strlen(line);
	line[len] = '\n';   /* replaces the NUL: written by length below */
	while (off < len + 1) {
		ssize_t n = write(sim->log_fd, line + off, len + 1 - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!sim->quiet)
				fprintf(stderr, "gwsim: log write failed: %s\n", strerror(errno));
			break;
		}
		off += (size_t)n;
	}
	free(line);
}

static void gwsim_count(struct gwsim_call *c, int status)
{
	struct gwsim_stats *st = &c->sim->stats;

	if (strcmp(c->gateway, "control") == 0)
		return;
	st->received++;
	if (status >= 200 && status < 300)
		st->accepted++;
	else
		st->refused++;
	if (status >= 0 && status < GWSIM_STATUS_MAX)
		st->by_status[status]++;
}

/* The --print line: "  +<ms> ms  sms  +1512•••0100  <text>", control bytes as spaces. */
static void gwsim_print(struct gwsim_call *c)
{
	char masked[64], ms[32];
	const char *text = c->print_text ? c->print_text : "";
	size_t i;

	if (!c->sim->print || c->channel == NULL)
		return;
	gwsim_mask(c->print_to ? c->print_to : "-", masked, sizeof(masked));
	if (c->landed_ms >= 0)
		snprintf(ms, sizeof(ms), "%+" PRId64, c->ts_ms - c->landed_ms);
	else
		snprintf(ms, sizeof(ms), "+?");
	printf("  %s ms  %s  %s  ", ms, c->channel, masked);
	for (i = 0; text[i] != '\0'; i++)
		putchar((unsigned char)text[i] < 0x20 || text[i] == 0x7f ? ' ' : text[i]);
	putchar('\n');
	fflush(stdout);
}

static const char *gwsim_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	}
	return status < 400 ? "OK" : "Error";
}

/* Closes the request's connection with an RST; a request whose client already left
 * is freed by evhttp_send_reply instead (libevent detached it from the connection). */
static void gwsim_conn_reset(struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev;
	struct linger lg = { 1, 0 };

	if (evcon == NULL) {
		evhttp_send_reply(req, 500, "Internal Server Error", NULL);
		return;
	}
	bev = evhttp_connection_get_bufferevent(evcon);
	if (bev != NULL && bufferevent_getfd(bev) >= 0)
		(void)setsockopt(bufferevent_getfd(bev), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	evhttp_connection_free(evcon);
}

static void gwsim_pending_unlink(struct gwsim_pending *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		p->sim->pending = p->next;
	if (p->next)
		p->next->prev = p->prev;
	event_free(p->ev);
	free(p);
}

static void gwsim_pending_fire(struct gwsim_pending *p)
{
	if (p->status == 0)
		gwsim_conn_reset(p->req);
	else
		evhttp_send_reply(p->req, p->status, gwsim_reason(p->status), NULL);
}

static void gwsim_pending_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gwsim_pending *p = arg;

	(void)fd;
	(void)what;
	gwsim_pending_fire(p);
	gwsim_pending_unlink(p);
}

/* Answers req with status after delay_ms (0 = on the next loop turn); status 0 resets.
 * Without memory for the timer it answers at once (a reset becomes a 503). */
static void gwsim_defer(struct gwsim *sim, struct evhttp_request *req, int status,
    long delay_ms)
{
	struct gwsim_pending *p = calloc(1, sizeof(*p));
	struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };

	if (p != NULL)
		p->ev = evtimer_new(sim->base, gwsim_pending_cb, p);
	if (p == NULL || p->ev == NULL || evtimer_add(p->ev, &tv) != 0) {
		if (p != NULL && p->ev != NULL)
			event_free(p->ev);
		free(p);
		evhttp_send_reply(req, status ? status : 503, gwsim_reason(status ? status : 503),
		    NULL);
		return;
	}
	p->sim = sim;
	p->req = req;
	p->status = status;
	p->next = sim->pending;
	if (sim->pending)
		sim->pending->prev = p;
	sim->pending = p;
}

void gwsim_pending_flush(struct gwsim *sim)
{
	while (sim->pending != NULL) {
		struct gwsim_pending *p = sim->pending;

		gwsim_pending_fire(p);
		gwsim_pending_unlink(p);
	}
}

/* Logs, counts and prints the call with its final status. */
static void gwsim_finish(struct gwsim_call *c, int status)
{
	gwsim_log_int(c, "status", status, 0);
	gwsim_log_int(c, "code", c->code, c->code == 0);
	gwsim_log_bool(c, "auth_ok", c->auth_ok);
	gwsim_log_str(c, "fault", c->fault);
	gwsim_log_json(c->sim, c->log);
	gwsim_count(c, status);
	if (status >= 200 && status < 300)
		gwsim_print(c);
}

int gwsim_reply_json(struct gwsim_call *c, int status, cJSON *body,
    const char *content_type, int delay)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(c->req);
	char *text = body ? cJSON_PrintUnformatted(body) : NULL;

	cJSON_Delete(body);
	if (text == NULL) {
		status = 500;
		c->fault = "oom";
	} else {
		evbuffer_add(out, text, strlen(text));
		free(text);
	}
	gwsim_header(c, "Content-Type", content_type ? content_type : "application/json");
	gwsim_finish(c, status);
	if (delay && c->sim->faults.latency_ms > 0)
		gwsim_defer(c->sim, c->req, status, c->sim->faults.latency_ms);
	else
		evhttp_send_reply(c->req, status, gwsim_reason(status), NULL);
	gwsim_call_done(c);
	return status;
}

void gwsim_reply_reset(struct gwsim_call *c)
{
	c->fault = "reset";
	gwsim_finish(c, 0);
	/* libevent is still inside this request's callback: free the connection after */
	gwsim_defer(c->sim, c->req, 0, 0);
	gwsim_call_done(c);
}

int gwsim_fault_gate(struct gwsim_call *c, cJSON *(*answer_503)(struct gwsim_call *))
{
	if (c->sim->faults.reset) {
		gwsim_reply_reset(c);
		return 1;
	}
	if (c->sim->faults.down) {
		c->fault = "down";
		gwsim_reply_json(c, 503, answer_503(c), NULL, 0);
		return 1;
	}
	return 0;
}

void gwsim_call_done(struct gwsim_call *c)
{
	cJSON_Delete(c->log);
	c->log = NULL;
	free(c->print_to);
	free(c->print_text);
	c->print_to = c->print_text = NULL;
}

int gwsim_body(struct evhttp_request *req, char **out, size_t *len)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *buf;

	*out = NULL;
	*len = 0;
	if (n > GWSIM_BODY_MAX)
		return 1;
	buf = malloc(n + 1);
	if (buf == NULL)
		return -1;
	if (n > 0 && evbuffer_copyout(in, buf, n) != (ev_ssize_t)n) {
		free(buf);
		return -1;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}
