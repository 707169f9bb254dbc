/*
 * test_gw.c: each gateway's wire format and answer classification against an evhttp
 * server on the same loop (stage: send).
 *
 * The server records the request it got and answers as the test says. Signatures are
 * checked with an independent OpenSSL HMAC call. Tests never leave loopback and never
 * wait without a guard timer that fails them.
 */
#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gw.h"
#include "httpc.h"
#include "metrics.h"
#include "timefmt.h"
#include "xauth.h"

#define NOW 1700000000          /* 2023-11-14T22:13:20Z */
#define GUARD_S 10
#define SID "AC0123456789abcdef0123456789ABCDEF"
#define MSID "MG0123456789abcdef0123456789abcdef"

struct captured {
	int n;
	enum evhttp_cmd_type method;
	char path[512];
	char ctype[128];
	char auth[256];
	char idem[256];
	char ts[64];
	char sig[128];
	char body[4096];
};

struct fx {
	struct event_base *base;
	struct evhttp *http;
	unsigned short port;
	struct httpc *h;
	struct gw *g;
	struct gw_config cfg;
	char base_url[64];
	char url[96];
	char account_sid[40];
	char from[20];
	char msid[40];
	char cb_base[64];
	char secret[32];
	struct captured cap;
	/* the server's answer */
	int status;
	const char *resp_body;
	const char *resp_hname;
	char resp_hvalue[64];
	const char *resp_hname2;      /* a second header, set after answer() */
	char resp_hvalue2[64];
	int hold;
	struct evhttp_request *held[8];
	int nheld;
	/* the gateway's answer */
	int calls;
	int cancelled;
	struct gw_result res;
	struct event *guard;
	int guard_fired;
};

static void copy_header(struct evkeyvalq *in, const char *name, char *out, size_t size)
{
	const char *v = evhttp_find_header(in, name);

	snprintf(out, size, "%s", v != NULL ? v : "");
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct fx *fx = arg;
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	struct evbuffer *out;
	size_t n = evbuffer_get_length(body);

	fx->cap.n++;
	fx->cap.method = evhttp_request_get_command(req);
	snprintf(fx->cap.path, sizeof(fx->cap.path), "%s", evhttp_request_get_uri(req));
	copy_header(in, "Content-Type", fx->cap.ctype, sizeof(fx->cap.ctype));
	copy_header(in, "Authorization", fx->cap.auth, sizeof(fx->cap.auth));
	copy_header(in, "Idempotency-Key", fx->cap.idem, sizeof(fx->cap.idem));
	copy_header(in, "X-Dealpush-Timestamp", fx->cap.ts, sizeof(fx->cap.ts));
	copy_header(in, "X-Dealpush-Signature", fx->cap.sig, sizeof(fx->cap.sig));
	assert_true(n < sizeof(fx->cap.body));
	evbuffer_remove(body, fx->cap.body, n);
	fx->cap.body[n] = '\0';
	if (fx->hold) {
		fx->held[fx->nheld++] = req;
		return;
	}
	if (fx->resp_hname != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req), fx->resp_hname,
		    fx->resp_hvalue);
	if (fx->resp_hname2 != NULL)
		evhttp_add_header(evhttp_request_get_output_headers(req), fx->resp_hname2,
		    fx->resp_hvalue2);
	out = evbuffer_new();
	evbuffer_add_printf(out, "%s", fx->resp_body != NULL ? fx->resp_body : "");
	evhttp_send_reply(req, fx->status, "X", out);
	evbuffer_free(out);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
	struct fx *fx = arg;

	(void)fd;
	(void)what;
	fx->guard_fired = 1;
	event_base_loopbreak(fx->base);
}

static void on_gw_done(void *arg, const struct gw_result *res, int cancelled)
{
	struct fx *fx = arg;

	fx->calls++;
	fx->cancelled = cancelled;
	fx->res = *res;
	event_base_loopbreak(fx->base);
}

static void run(struct fx *fx)
{
	struct timeval tv = { GUARD_S, 0 };

	evtimer_add(fx->guard, &tv);
	event_base_loop(fx->base, 0);
	evtimer_del(fx->guard);
	assert_false(fx->guard_fired);
}

/* A valid twilio config; tests change what they need before gw_start. */
static void twilio_config(struct fx *fx)
{
	memset(&fx->cfg, 0, sizeof(fx->cfg));
	fx->cfg.name = "twilio";
	fx->cfg.kind = GW_TWILIO;
	fx->cfg.channel = CH_SMS;
	fx->cfg.base_url = fx->base_url;
	fx->cfg.account_sid = fx->account_sid;
	fx->cfg.from = fx->from;
	fx->cfg.status_callback_base = fx->cb_base;
	fx->cfg.secret = fx->secret;
	fx->cfg.timeout_ms = 5000;
	fx->cfg.connect_timeout_ms = 1000;
}

static void xdm_config(struct fx *fx)
{
	memset(&fx->cfg, 0, sizeof(fx->cfg));
	fx->cfg.name = "xdm";
	fx->cfg.kind = GW_XDM;
	fx->cfg.channel = CH_DM;
	fx->cfg.base_url = fx->base_url;
	fx->cfg.secret = fx->secret;
	fx->cfg.timeout_ms = 5000;
}

static void webhook_config(struct fx *fx)
{
	memset(&fx->cfg, 0, sizeof(fx->cfg));
	fx->cfg.name = "hook";
	fx->cfg.kind = GW_WEBHOOK;
	fx->cfg.channel = CH_SMS;
	fx->cfg.url = fx->url;
	fx->cfg.secret = fx->secret;
	fx->cfg.timeout_ms = 5000;
}

static void gw_start(struct fx *fx)
{
	struct err err;

	fx->g = gw_new(fx->h, &fx->cfg, &err);
	if (fx->g == NULL)
		fail_msg("gw_new: %s", err.msg);
}

static void answer(struct fx *fx, int status, const char *body, const char *hname,
    const char *hvalue)
{
	fx->status = status;
	fx->resp_body = body;
	fx->resp_hname = hname;
	snprintf(fx->resp_hvalue, sizeof(fx->resp_hvalue), "%s", hvalue ? hvalue : "");
}

static struct gw_message message(const char *to)
{
	struct gw_message m = {
		.push_id = "1700000000000-0:sub-1:sms",
		.to = to,
		.text = "50% off & free: caf\xc3\xa9 now",
		.expires_at = NOW + 600,
		.now = NOW,
	};

	return m;
}

/* Sends m and runs the loop until the gateway's callback ran. */
static void send_and_wait(struct fx *fx, const struct gw_message *m)
{
	struct err err;

	fx->calls = 0;
	if (gw_send(fx->g, m, on_gw_done, fx, &err) != 0)
		fail_msg("gw_send: %s", err.msg);
	run(fx);
	assert_int_equal(fx->calls, 1);
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	struct evhttp_bound_socket *bound;
	struct httpc_config hcfg = { 5000, 1000, 0, 0 };
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct err err;

	assert_non_null(fx);
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	fx->base = event_base_new();
	fx->http = evhttp_new(fx->base);
	evhttp_set_gencb(fx->http, on_request, fx);
	bound = evhttp_bind_socket_with_handle(fx->http, "127.0.0.1", 0);
	assert_non_null(bound);
	assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bound),
	    (struct sockaddr *)&sin, &len), 0);
	fx->port = ntohs(sin.sin_port);
	fx->guard = evtimer_new(fx->base, on_guard, fx);
	fx->h = httpc_new(fx->base, &hcfg, &err);
	assert_non_null(fx->h);
	/* The trailing slash checks that paths are joined without a double slash. */
	snprintf(fx->base_url, sizeof(fx->base_url), "http://127.0.0.1:%u/", fx->port);
	snprintf(fx->url, sizeof(fx->url), "http://127.0.0.1:%u/hooks/deals", fx->port);
	snprintf(fx->account_sid, sizeof(fx->account_sid), "%s", SID);
	snprintf(fx->from, sizeof(fx->from), "+15550001111");
	snprintf(fx->msid, sizeof(fx->msid), "%s", MSID);
	snprintf(fx->cb_base, sizeof(fx->cb_base), "https://hooks.example.com/");
	snprintf(fx->secret, sizeof(fx->secret), "s3cret-token");
	answer(fx, 201, "{}", NULL, NULL);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	int i;

	for (i = 0; i < fx->nheld; i++)
		evhttp_send_reply(fx->held[i], 503, "late", NULL);
	gw_free(fx->g);
	httpc_free(fx->h);
	evhttp_free(fx->http);
	event_free(fx->guard);
	event_base_free(fx->base);
	free(fx);
	return 0;
}

/* Decodes the captured form body; returns the number of fields. */
static int form_fields(struct fx *fx, struct evkeyvalq *kv)
{
	struct evkeyval *e;
	int n = 0;

	TAILQ_INIT(kv);
	assert_int_equal(evhttp_parse_query_str(fx->cap.body, kv), 0);
	TAILQ_FOREACH(e, kv, next)
		n++;
	return n;
}

static void assert_field(struct evkeyvalq *kv, const char *name, const char *want)
{
	const char *v = evhttp_find_header(kv, name);

	if (v == NULL)
		fail_msg("form field %s missing", name);
	assert_string_equal(v, want);
}

static void basic_auth(const char *user, const char *pass, char *out, size_t size)
{
	char plain[128];
	unsigned char b64[176];
	int n;

	n = snprintf(plain, sizeof(plain), "%s:%s", user, pass);
	EVP_EncodeBlock(b64, (const unsigned char *)plain, n);
	snprintf(out, size, "Basic %s", b64);
}

/* ---- twilio ---- */

static void twilio_request_has_the_documented_wire_format(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");
	struct evkeyvalq kv;
	char want[256];

	twilio_config(fx);
	gw_start(fx);
	answer(fx, 201, "{\"sid\":\"SM0123456789abcdef0123456789abcdef\"}", NULL, NULL);
	send_and_wait(fx, &m);
	assert_int_equal(fx->cap.method, EVHTTP_REQ_POST);
	assert_string_equal(fx->cap.path, "/2010-04-01/Accounts/" SID "/Messages.json");
	assert_string_equal(fx->cap.ctype, "application/x-www-form-urlencoded");
	basic_auth(SID, "s3cret-token", want, sizeof(want));
	assert_string_equal(fx->cap.auth, want);
	/* RFC 3986 encoding on the wire: spaces as %20, never a raw & or %. */
	assert_non_null(strstr(fx->cap.body,
	    "&Body=50%25%20off%20%26%20free%3A%20caf%C3%A9%20now&"));
	assert_int_equal(form_fields(fx, &kv), 5);
	assert_field(&kv, "To", "+15551234567");
	assert_field(&kv, "From", "+15550001111");
	assert_field(&kv, "Body", "50% off & free: caf\xc3\xa9 now");
	assert_field(&kv, "StatusCallback",
	    "https://hooks.example.com/hooks/twilio/status?push=1700000000000-0%3Asub-1%3Asms");
	assert_field(&kv, "ValidityPeriod", "600");
	evhttp_clear_headers(&kv);
}

static void twilio_validity_period_is_capped_at_36000(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");
	struct evkeyvalq kv;

	twilio_config(fx);
	gw_start(fx);
	m.expires_at = NOW + 100000;
	send_and_wait(fx, &m);
	form_fields(fx, &kv);
	assert_field(&kv, "ValidityPeriod", "36000");
	evhttp_clear_headers(&kv);
}

static void twilio_messaging_service_replaces_from_and_callback_is_optional(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");
	struct evkeyvalq kv;

	twilio_config(fx);
	fx->cfg.from = NULL;
	fx->cfg.messaging_service_sid = fx->msid;
	fx->cfg.status_callback_base = NULL;
	gw_start(fx);
	m.expires_at = NOW + 1;
	send_and_wait(fx, &m);
	assert_int_equal(form_fields(fx, &kv), 4);
	assert_field(&kv, "MessagingServiceSid", MSID);
	assert_null(evhttp_find_header(&kv, "From"));
	assert_null(evhttp_find_header(&kv, "StatusCallback"));
	assert_field(&kv, "ValidityPeriod", "1");
	evhttp_clear_headers(&kv);
}

static void twilio_created_is_sent_with_the_message_sid(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");

	twilio_config(fx);
	gw_start(fx);
	answer(fx, 201, "{\"sid\":\"SM0123456789abcdef0123456789abcdef\",\"status\":\"queued\"}",
	    NULL, NULL);
	send_and_wait(fx, &m);
	assert_int_equal(fx->cancelled, 0);
	assert_int_equal(fx->res.outcome, GW_SENT);
	assert_int_equal(fx->res.http_status, 201);
	assert_int_equal(fx->res.maybe_delivered, 1);
	assert_string_equal(fx->res.provider_id, "SM0123456789abcdef0123456789abcdef");
}

static void twilio_21610_is_opted_out(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");

	twilio_config(fx);
	gw_start(fx);
	answer(fx, 400, "{\"code\":21610,\"message\":\"Attempt to send to unsubscribed "
	    "recipient\",\"status\":400}", NULL, NULL);
	send_and_wait(fx, &m);
	assert_int_equal(fx->res.outcome, GW_OPTED_OUT);
	assert_int_equal(fx->res.provider_code, 21610);
	assert_string_equal(fx->res.provider_id, "");
}

static void twilio_21211_is_permanent_and_the_number_is_masked(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");

	twilio_config(fx);
	gw_start(fx);
	answer(fx, 400, "{\"code\":21211,\"message\":\"The 'To' number +15551234567 is not "
	    "a valid phone number.\",\"status\":400}", NULL, NULL);
	send_and_wait(fx, &m);
	assert_int_equal(fx->res.outcome, GW_PERMANENT);
	assert_int_equal(fx->res.provider_code, 21211);
	assert_int_equal(fx->res.maybe_delivered, 1);
	assert_null(strstr(fx->res.detail, "5551234567"));
	assert_string_equal(fx->res.detail,
	    "twilio 400/21211: The 'To' number +*********67 is not a valid phone number.");
}

static void twilio_429_is_rate_limited_with_retry_after(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");

	twilio_config(fx);
	gw_start(fx);
	answer(fx, 429, "{\"code\":20429,\"message\":\"Too Many Requests\"}", "Retry-After", "30");
	send_and_wait(fx, &m);
	assert_int_equal(fx->res.outcome, GW_RATE_LIMITED);
	assert_int_equal(fx->res.retry_after_s, 30);
}

static void twilio_500_is_retry_and_may_have_been_delivered(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");

	twilio_config(fx);
	gw_start(fx);
	answer(fx, 500, "oops", NULL, NULL);
	send_and_wait(fx, &m);
	assert_int_equal(fx->res.outcome, GW_RETRY);
	assert_int_equal(fx->res.http_status, 500);
	assert_int_equal(fx->res.maybe_delivered, 1);
	assert_int_equal(fx->res.retry_after_s, -1);
}

static unsigned short closed_port(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	close(fd);
	return ntohs(sin.sin_port);
}

static void refused_connection_is_retry_and_not_delivered(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");

	snprintf(fx->base_url, sizeof(fx->base_url), "http://127.0.0.1:%u", closed_port());
	twilio_config(fx);
	gw_start(fx);
	send_and_wait(fx, &m);
	assert_int_equal(fx->res.outcome, GW_RETRY);
	assert_int_equal(fx->res.http_status, 0);
	assert_int_equal(fx->res.maybe_delivered, 0);
	assert_non_null(strstr(fx->res.detail, "transport: "));
}

static void unanswered_request_is_retry_and_may_have_been_delivered(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");

	twilio_config(fx);
	fx->cfg.timeout_ms = 300;
	gw_start(fx);
	fx->hold = 1;
	send_and_wait(fx, &m);
	assert_int_equal(fx->cap.n, 1);
	assert_int_equal(fx->res.outcome, GW_RETRY);
	assert_int_equal(fx->res.http_status, 0);
	assert_int_equal(fx->res.maybe_delivered, 1);
	assert_true(strncmp(fx->res.detail, "timeout: ", 9) == 0);
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void request_never_outlives_the_message(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");
	double t0, took;

	twilio_config(fx);
	fx->cfg.timeout_ms = 10000;
	gw_start(fx);
	fx->hold = 1;
	m.expires_at = NOW + 1;
	t0 = mono_s();
	send_and_wait(fx, &m);
	took = mono_s() - t0;
	assert_int_equal(fx->res.outcome, GW_RETRY);
	assert_true(took > 0.8 && took < 3.0);
}

static void expired_message_is_refused_without_a_request(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");
	struct err err;

	twilio_config(fx);
	gw_start(fx);
	m.expires_at = NOW;
	assert_int_equal(gw_send(fx->g, &m, on_gw_done, fx, &err), -1);
	assert_string_equal(err.code, "expired");
	assert_string_equal(err.field, "expires_at");
	assert_int_equal(httpc_in_flight(fx->h), 0);
	assert_int_equal(fx->calls, 0);
	assert_int_equal(fx->cap.n, 0);
}

static void twilio_refuses_a_recipient_that_is_not_e164(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("5551234567");
	struct err err;

	twilio_config(fx);
	gw_start(fx);
	assert_int_equal(gw_send(fx->g, &m, on_gw_done, fx, &err), -1);
	assert_string_equal(err.code, "bad_recipient");
	assert_int_equal(httpc_in_flight(fx->h), 0);
}

/* ---- x-dm ---- */

static void xdm_request_has_the_documented_wire_format(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("1234567890");
	cJSON *j;

	xdm_config(fx);
	gw_start(fx);
	send_and_wait(fx, &m);
	assert_int_equal(fx->cap.method, EVHTTP_REQ_POST);
	assert_string_equal(fx->cap.path, "/2/dm_conversations/with/1234567890/messages");
	assert_string_equal(fx->cap.ctype, "application/json");
	assert_string_equal(fx->cap.auth, "Bearer s3cret-token");
	j = cJSON_Parse(fx->cap.body);
	assert_non_null(j);
	assert_int_equal(cJSON_GetArraySize(j), 1);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "text")->valuestring,
	    "50% off & free: caf\xc3\xa9 now");
	cJSON_Delete(j);
}

static void xdm_created_is_sent_with_the_event_id(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("1234567890");

	xdm_config(fx);
	gw_start(fx);
	answer(fx, 201, "{\"data\":{\"dm_conversation_id\":\"1-2\",\"dm_event_id\":\"158283\"}}",
	    NULL, NULL);
	send_and_wait(fx, &m);
	assert_int_equal(fx->res.outcome, GW_SENT);
	assert_string_equal(fx->res.provider_id, "158283");
}

static void xdm_answers_are_classified(void **state)
{
	static const struct {
		int status;
		const char *body;
		enum gw_outcome want;
	} cases[] = {
		{ 200, "{\"data\":{\"dm_event_id\":\"1\"}}", GW_SENT },
		{ 400, "{\"errors\":[{\"message\":\"bad text\"}]}", GW_PERMANENT },
		{ 503, "", GW_RETRY },
	};
	struct fx *fx = *state;
	struct gw_message m = message("1234567890");
	size_t i;

	xdm_config(fx);
	gw_start(fx);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		answer(fx, cases[i].status, cases[i].body, NULL, NULL);
		send_and_wait(fx, &m);
		assert_int_equal(fx->res.http_status, cases[i].status);
		assert_int_equal(fx->res.outcome, cases[i].want);
	}
	assert_string_equal(fx->res.detail, "x-dm 503: no message");
}

/* The recipient-specific refusal, as the spec shapes it (NotAuthorizedForResource
 * with the user as the resource), is the only answer that revokes DM consent. */
#define XDM_REFUSAL(id) "{\"title\":\"Forbidden\",\"type\":\"https://api.x.com/2/" \
	"problems/not-authorized-for-resource\",\"status\":403,\"detail\":\"You are " \
	"not permitted to send messages to this user\",\"resource_type\":\"user\"," \
	"\"resource_id\":\"" id "\",\"parameter\":\"participant_id\",\"section\":\"data\"}"

static void xdm_only_the_recipient_refusal_is_an_opt_out(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("1234567890");

	xdm_config(fx);
	gw_start(fx);
	answer(fx, 403, XDM_REFUSAL("1234567890"), "Content-Type", "application/problem+json");
	send_and_wait(fx, &m);
	assert_int_equal(fx->res.outcome, GW_OPTED_OUT);
	assert_int_equal(fx->res.auth_failed, 0);
	/* The same problem inside "errors" */
	answer(fx, 403, "{\"errors\":[" XDM_REFUSAL("1234567890") "]}", NULL, NULL);
	send_and_wait(fx, &m);
	assert_int_equal(fx->res.outcome, GW_OPTED_OUT);
}

static void xdm_auth_errors_pause_and_never_opt_out(void **state)
{
	static const struct {
		int status;
		const char *body;
		long pause_s;
	} cases[] = {
		/* the app-only bearer, as X (and gwsim) answer it */
		{ 403, "{\"code\":220,\"message\":\"Authenticating with OAuth 2.0 "
		    "Application-Only is forbidden for this endpoint.\"}", 60 },
		/* a 403 Problem without the recipient as its resource */
		{ 403, "{\"title\":\"Forbidden\",\"type\":\"about:blank\",\"status\":403,"
		    "\"detail\":\"You cannot send messages to this user.\"}", 60 },
		/* the refusal, but for another user than the one we wrote to */
		{ 403, XDM_REFUSAL("999"), 60 },
		{ 401, "{\"code\":89,\"message\":\"Invalid or expired token.\"}", 2 },
		{ 401, "{\"title\":\"Unauthorized\",\"type\":\"about:blank\"}", 2 },
	};
	struct fx *fx = *state;
	struct gw_message m = message("1234567890");
	size_t i;

	xdm_config(fx);
	gw_start(fx);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		answer(fx, cases[i].status, cases[i].body, NULL, NULL);
		send_and_wait(fx, &m);
		assert_int_equal(fx->res.http_status, cases[i].status);
		assert_int_equal(fx->res.outcome, GW_RATE_LIMITED);
		assert_int_equal(fx->res.auth_failed, 1);
		assert_int_equal(fx->res.retry_after_s, cases[i].pause_s);
		assert_int_equal(fx->res.maybe_delivered, 1);
	}
	assert_string_equal(fx->res.detail, "x-dm 401 auth: Unauthorized");
}

/* A 401 reaches the gateway's credentials: logged and counted as an alert. */
static void xdm_refused_token_is_counted_by_its_credentials(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("1234567890");
	struct metrics *mt;
	struct xauth *xa;
	struct err err;
	double v = 0;

	mt = metrics_new(0, &err);
	assert_non_null(mt);
	xdm_config(fx);
	xa = xauth_new(fx->base, NULL, NULL, &fx->cfg, mt, &err);
	assert_non_null(xa);
	fx->cfg.xauth = xa;
	gw_start(fx);
	answer(fx, 401, "{\"code\":89,\"message\":\"Invalid or expired token.\"}", NULL,
	    NULL);
	send_and_wait(fx, &m);
	assert_string_equal(fx->cap.auth, "Bearer s3cret-token");
	assert_int_equal(fx->res.auth_failed, 1);
	assert_int_equal(metrics_value(mt, METRIC_XAUTH_EVENTS,
	    METRICS_L("xdm", "rejected_401"), &v), 1);
	assert_true(v == 1);
	answer(fx, 403, "{\"code\":220,\"message\":\"no\"}", NULL, NULL);
	send_and_wait(fx, &m);
	assert_int_equal(metrics_value(mt, METRIC_XAUTH_EVENTS,
	    METRICS_L("xdm", "rejected_403"), &v), 1);
	assert_true(v == 1);
	gw_free(fx->g);
	fx->g = NULL;
	xauth_free(xa);
	metrics_free(mt);
}

/* Credentials without a token store or with keys missing are refused by name, before
 * any request. */
static void xdm_oauth2_config_errors_name_the_key(void **state)
{
	struct fx *fx = *state;
	struct xauth *xa;
	struct err err;

	xdm_config(fx);
	fx->cfg.auth = "oauth2";
	fx->cfg.secret = NULL;
	fx->g = gw_new(fx->h, &fx->cfg, &err);
	assert_null(fx->g);
	assert_string_equal(err.field, "gateway.xdm.auth");
	/* xauth_new: oauth2 without a client id, a refresh token, then with a bad URL */
	xa = xauth_new(fx->base, NULL, fx->h, &fx->cfg, NULL, &err);
	assert_null(xa);
	assert_string_equal(err.field, "gateway.xdm.client_id");
	fx->cfg.client_id = "cid";
	xa = xauth_new(fx->base, NULL, fx->h, &fx->cfg, NULL, &err);
	assert_null(xa);
	assert_string_equal(err.field, "gateway.xdm.refresh_token");
	fx->cfg.refresh_token = "rt";
	fx->cfg.token_url = "ftp://x";
	xa = xauth_new(fx->base, NULL, fx->h, &fx->cfg, NULL, &err);
	assert_null(xa);
	assert_string_equal(err.field, "gateway.xdm.token_url");
	fx->cfg.token_url = NULL;
	fx->cfg.base_url = NULL;
	xa = xauth_new(fx->base, NULL, fx->h, &fx->cfg, NULL, &err);
	assert_null(xa);
	assert_string_equal(err.field, "gateway.xdm.base_url");
	fx->cfg.auth = "basic";
	xa = xauth_new(fx->base, NULL, fx->h, &fx->cfg, NULL, &err);
	assert_null(xa);
	assert_string_equal(err.field, "gateway.xdm.auth");
}

/* With no usable token nothing is sent: ERR_TEMP auth_paused, the caller retries. */
static void xdm_without_a_token_sends_nothing(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("1234567890");
	struct xauth *xa;
	struct err err;

	xdm_config(fx);
	fx->secret[0] = '\0';   /* a static token store with an empty token */
	xa = xauth_new(fx->base, NULL, NULL, &fx->cfg, NULL, &err);
	assert_non_null(xa);
	fx->cfg.xauth = xa;
	snprintf(fx->secret, sizeof(fx->secret), "s3cret-token");  /* gw_new wants one */
	gw_start(fx);
	assert_int_equal(gw_send(fx->g, &m, on_gw_done, fx, &err), -1);
	assert_int_equal(err.kind, ERR_TEMP);
	assert_string_equal(err.code, "auth_paused");
	assert_int_equal(fx->cap.n, 0);
	gw_free(fx->g);
	fx->g = NULL;
	xauth_free(xa);
}

static void xdm_rate_limit_reset_wins_over_retry_after(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("1234567890");
	char reset[24];

	xdm_config(fx);
	gw_start(fx);
	snprintf(reset, sizeof(reset), "%d", NOW + 900);
	answer(fx, 429, "{\"code\":88,\"message\":\"Rate limit exceeded\"}", "Retry-After",
	    "1");
	fx->resp_hname2 = "x-rate-limit-reset";
	snprintf(fx->resp_hvalue2, sizeof(fx->resp_hvalue2), "%s", reset);
	send_and_wait(fx, &m);
	assert_int_equal(fx->res.outcome, GW_RATE_LIMITED);
	assert_int_equal(fx->res.auth_failed, 0);
	assert_int_equal(fx->res.retry_after_s, 900);
}

static void xdm_rate_limit_reset_becomes_retry_after(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("1234567890");
	char reset[24];

	xdm_config(fx);
	gw_start(fx);
	snprintf(reset, sizeof(reset), "%d", NOW + 45);
	answer(fx, 429, "{\"title\":\"Too Many Requests\"}", "x-rate-limit-reset", reset);
	send_and_wait(fx, &m);
	assert_int_equal(fx->res.outcome, GW_RATE_LIMITED);
	assert_int_equal(fx->res.retry_after_s, 45);
}

/* Every byte of a text on the wire: RFC 3986's unreserved characters as they are,
 * every other byte (1..255) as %XX in upper-case hex. */
static void twilio_body_encodes_every_byte_but_the_unreserved(void **state)
{
	static const char keep[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789-._~";
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");
	char text[256], want[1024], *at;
	size_t n = 0;
	int c;

	twilio_config(fx);
	gw_start(fx);
	memcpy(want, "&Body=", 6);
	n = 6;
	for (c = 1; c < 256; c++) {
		text[c - 1] = (char)c;
		if (strchr(keep, c) != NULL)
			want[n++] = (char)c;
		else
			n += (size_t)snprintf(want + n, sizeof(want) - n, "%%%02X", c);
	}
	text[255] = '\0';
	want[n++] = '&';
	want[n] = '\0';
	m.text = text;
	answer(fx, 201, "{\"sid\":\"SM0123456789abcdef0123456789abcdef\"}", NULL, NULL);
	send_and_wait(fx, &m);
	at = strstr(fx->cap.body, "&Body=");
	assert_non_null(at);
	assert_memory_equal(at, want, n);
}

/* The body's cap counts encoded bytes: 22,000 spaces are 66,000 ("%20" each), over
 * GW_REQUEST_MAX, and nothing leaves. */
static void twilio_body_over_the_cap_once_encoded_is_refused(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");
	static char text[22001];
	struct err err;

	twilio_config(fx);
	gw_start(fx);
	memset(text, ' ', 22000);
	text[22000] = '\0';
	m.text = text;
	assert_int_equal(gw_send(fx->g, &m, on_gw_done, fx, &err), -1);
	assert_string_equal(err.code, "too_long");
	assert_int_equal(fx->cap.n, 0);
}

static void xdm_refuses_a_recipient_that_is_not_digits(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("12ab/../x");
	struct err err;

	xdm_config(fx);
	gw_start(fx);
	assert_int_equal(gw_send(fx->g, &m, on_gw_done, fx, &err), -1);
	assert_string_equal(err.code, "bad_recipient");
	assert_string_equal(err.field, "to");
	assert_int_equal(httpc_in_flight(fx->h), 0);
}

/* ---- webhook ---- */

static void webhook_request_is_signed_and_carries_the_push(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0, i;
	char signed_text[4200], want[80];
	cJSON *j;

	webhook_config(fx);
	gw_start(fx);
	answer(fx, 200, "ok", NULL, NULL);
	send_and_wait(fx, &m);
	assert_int_equal(fx->res.outcome, GW_SENT);
	assert_int_equal(fx->cap.method, EVHTTP_REQ_POST);
	assert_string_equal(fx->cap.path, "/hooks/deals");
	assert_string_equal(fx->cap.ctype, "application/json");
	assert_string_equal(fx->cap.auth, "");
	assert_string_equal(fx->cap.idem, "1700000000000-0:sub-1:sms");
	assert_string_equal(fx->cap.ts, "1700000000");

	j = cJSON_Parse(fx->cap.body);
	assert_non_null(j);
	assert_int_equal(cJSON_GetArraySize(j), 4);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "push_id")->valuestring,
	    "1700000000000-0:sub-1:sms");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "to")->valuestring,
	    "+15551234567");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "text")->valuestring,
	    "50% off & free: caf\xc3\xa9 now");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "expires_at")->valuestring,
	    "2023-11-14T22:23:20Z");
	cJSON_Delete(j);

	/* What a receiver does: HMAC-SHA256(secret, timestamp "." raw body). */
	snprintf(signed_text, sizeof(signed_text), "%s.%s", fx->cap.ts, fx->cap.body);
	HMAC(EVP_sha256(), "s3cret-token", 12, (const unsigned char *)signed_text,
	    strlen(signed_text), mac, &maclen);
	assert_int_equal(maclen, 32);
	snprintf(want, sizeof(want), "v1=");
	for (i = 0; i < maclen; i++)
		snprintf(want + 3 + 2 * i, 3, "%02x", mac[i]);
	assert_string_equal(fx->cap.sig, want);
}

static void webhook_answers_are_classified(void **state)
{
	static const struct {
		int status;
		enum gw_outcome want;
	} cases[] = {
		{ 200, GW_SENT }, { 202, GW_SENT }, { 409, GW_SENT }, { 410, GW_OPTED_OUT },
		{ 400, GW_PERMANENT }, { 404, GW_PERMANENT }, { 429, GW_RATE_LIMITED },
		{ 500, GW_RETRY }, { 502, GW_RETRY },
	};
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");
	size_t i;

	webhook_config(fx);
	fx->cfg.channel = CH_DM;    /* a webhook may carry either channel */
	gw_start(fx);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		answer(fx, cases[i].status, "{\"error\":\"x\"}", NULL, NULL);
		send_and_wait(fx, &m);
		assert_int_equal(fx->res.outcome, cases[i].want);
		assert_int_equal(fx->res.maybe_delivered, 1);
	}
}

/* ---- lifetime ---- */

static void gateway_freed_in_flight_still_reports_once(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("+15551234567");
	struct err err;

	twilio_config(fx);
	gw_start(fx);
	assert_int_equal(gw_send(fx->g, &m, on_gw_done, fx, &err), 0);
	gw_free(fx->g);
	fx->g = NULL;
	run(fx);
	assert_int_equal(fx->calls, 1);
	assert_int_equal(fx->res.outcome, GW_SENT);
}

static void client_shutdown_cancels_in_flight_sends(void **state)
{
	struct fx *fx = *state;
	struct gw_message m = message("1234567890");
	struct err err;

	xdm_config(fx);
	gw_start(fx);
	assert_int_equal(gw_send(fx->g, &m, on_gw_done, fx, &err), 0);
	httpc_free(fx->h);
	fx->h = NULL;
	assert_int_equal(fx->calls, 1);
	assert_int_equal(fx->cancelled, 1);
	assert_int_equal(fx->res.outcome, GW_RETRY);
	assert_int_equal(fx->res.maybe_delivered, 0);
}

/* ---- twilio lookups: the message list ---- */

#define TO "+15125550100"
#define TEXT "Deal: 50% off \"now\""
#define LIST_PATH "/2010-04-01/Accounts/" SID "/Messages.json"

/* One list item as Twilio writes it. */
#define ITEM(sid, to, from, body, created) \
	"{\"sid\":\"" sid "\",\"to\":\"" to "\",\"from\":" from ",\"body\":" body \
	",\"date_created\":\"" created "\",\"direction\":\"outbound-api\"," \
	"\"messaging_service_sid\":null,\"status\":\"queued\",\"date_sent\":null}"
#define OURS_BODY "\"Deal: 50% off \\\"now\\\"\""
#define FROM_J "\"+15550001111\""
#define SID_A "SM00000000000000000000000000000001"
#define SID_B "SM00000000000000000000000000000002"
#define AT_START "Tue, 14 Nov 2023 22:13:20 +0000"      /* NOW */
#define AFTER "Tue, 14 Nov 2023 22:13:30 +0000"         /* NOW + 10 */
#define SKEWED "Tue, 14 Nov 2023 22:13:17 +0000"        /* NOW - 3 */
#define BEFORE "Tue, 14 Nov 2023 22:12:20 +0000"        /* NOW - 60 */

static struct gw_find_query find_query(void)
{
	struct gw_find_query q = { .to = TO, .text = TEXT, .not_before = NOW - 5 };

	return q;
}

/* Scans one page; returns what gw_twilio_scan_page returned. */
static int scan(struct fx *fx, const char *page, struct gw_find_scan *st)
{
	struct gw_find_query q = find_query();
	struct err err;

	twilio_config(fx);
	memset(st, 0, sizeof(*st));
	return gw_twilio_scan_page(&fx->cfg, &q, page, strlen(page), st, &err);
}

static void rfc2822_dates_parse_to_epoch_seconds(void **state)
{
	int64_t t = 0;

	(void)state;
	assert_int_equal(time_parse_rfc2822(AT_START, &t), 0);
	assert_int_equal(t, NOW);
	assert_int_equal(time_parse_rfc2822("Fri, 24 May 2019 17:44:46 +0000", &t), 0);
	assert_int_equal(t, 1558719886);
	assert_int_equal(time_parse_rfc2822("Wed, 19 Jun 2019 22:04:00 -0000", &t), 0);
	assert_int_equal(t, 1560981840);
	assert_int_equal(time_parse_rfc2822("14 Nov 2023 17:13:20 -0500", &t), 0);
	assert_int_equal(t, NOW);
	assert_int_equal(time_parse_rfc2822("Tue, 14 nov 2023 22:13 GMT", &t), 0);
	assert_int_equal(t, NOW - 20);
	assert_int_equal(time_parse_rfc2822("Sun, 1 Mar 2026 00:00:00 UT", &t), 0);
	assert_int_equal(t, 1772323200);
	assert_int_equal(time_parse_rfc2822("Mon, 29 Feb 2027 00:00:00 +0000", &t), -1);
	assert_int_equal(time_parse_rfc2822("Mon, 31 Nov 2023 00:00:00 +0000", &t), -1);
	assert_int_equal(time_parse_rfc2822("Tue, 14 Nox 2023 22:13:20 +0000", &t), -1);
	assert_int_equal(time_parse_rfc2822("Tue, 14 Nov 2023 24:13:20 +0000", &t), -1);
	assert_int_equal(time_parse_rfc2822("Tue, 14 Nov 2023 22:13:20 +0000 x", &t), -1);
	assert_int_equal(time_parse_rfc2822("Tue, 14 Nov 2023 22:13:20", &t), -1);
	assert_int_equal(time_parse_rfc2822("Tue, 14 Nov 23 22:13:20 +0000", &t), -1);
	assert_int_equal(time_parse_rfc2822("2023-11-14T22:13:20Z", &t), -1);
	assert_int_equal(time_parse_rfc2822("", &t), -1);
	assert_int_equal(time_parse_rfc2822("Tu", &t), -1);
}

static void twilio_list_finds_our_message_among_others(void **state)
{
	struct fx *fx = *state;
	struct gw_find_scan st;
	const char *page = "{\"messages\":["
	    ITEM("SM00000000000000000000000000000009", "+15125550199", FROM_J, OURS_BODY, AFTER) ","
	    ITEM("SM00000000000000000000000000000008", TO, FROM_J, "\"another text\"", AFTER) ","
	    ITEM("SM00000000000000000000000000000007", TO, "\"+15550009999\"", OURS_BODY, AFTER) ","
	    ITEM(SID_A, TO, FROM_J, OURS_BODY, SKEWED) ","
	    ITEM(SID_B, TO, FROM_J, OURS_BODY, BEFORE) "],"
	    "\"next_page_uri\":\"" LIST_PATH "?To=%2B15125550100&Page=1&PageToken=PAx\"}";

	assert_int_equal(scan(fx, page, &st), 0);
	/* Another number, another body, another sender, and one from before the attempt
	 * (less the skew) are not ours. */
	assert_int_equal(st.matches, 1);
	assert_string_equal(st.sid, SID_A);
	assert_int_equal(st.older_seen, 1);
	assert_string_equal(st.next, LIST_PATH "?To=%2B15125550100&Page=1&PageToken=PAx");
}

static void twilio_list_two_matches_are_ambiguous_one_sid_twice_is_not(void **state)
{
	struct fx *fx = *state;
	struct gw_find_scan st;
	const char *two = "{\"messages\":[" ITEM(SID_B, TO, FROM_J, OURS_BODY, AFTER) ","
	    ITEM(SID_A, TO, FROM_J, OURS_BODY, AT_START) "],\"next_page_uri\":null}";
	const char *twice = "{\"messages\":[" ITEM(SID_A, TO, FROM_J, OURS_BODY, AFTER) ","
	    ITEM(SID_A, TO, FROM_J, OURS_BODY, AFTER) "]}";

	assert_int_equal(scan(fx, two, &st), 0);
	assert_int_equal(st.matches, 2);
	assert_string_equal(st.sid, SID_B);   /* the newest */
	assert_string_equal(st.next, "");
	assert_int_equal(scan(fx, twice, &st), 0);
	assert_int_equal(st.matches, 1);
}

static void twilio_list_body_differs_or_created_before_start_is_not_found(void **state)
{
	struct fx *fx = *state;
	struct gw_find_scan st;
	const char *page = "{\"messages\":["
	    ITEM(SID_A, TO, FROM_J, "\"Deal: 50% off \\\"now\\\" \"", AFTER) ","
	    ITEM(SID_B, TO, FROM_J, "\"deal: 50% off \\\"now\\\"\"", AFTER) ","
	    ITEM("SM00000000000000000000000000000003", TO, FROM_J, OURS_BODY, BEFORE) "]}";

	assert_int_equal(scan(fx, page, &st), 0);
	assert_int_equal(st.matches, 0);
	assert_int_equal(st.older_seen, 1);
}

static void twilio_list_messaging_service_matches_without_a_from(void **state)
{
	struct fx *fx = *state;
	struct gw_find_query q = find_query();
	struct gw_find_scan st;
	struct err err;
	const char *page = "{\"messages\":[{\"sid\":\"" SID_A "\",\"to\":\"" TO "\","
	    "\"from\":\"+15550002222\",\"body\":" OURS_BODY ",\"date_created\":\"" AFTER "\","
	    "\"messaging_service_sid\":\"" MSID "\"},{\"sid\":\"" SID_B "\",\"to\":\"" TO "\","
	    "\"body\":" OURS_BODY ",\"date_created\":\"" AFTER "\","
	    "\"messaging_service_sid\":\"MGffffffffffffffffffffffffffffffff\"}]}";

	twilio_config(fx);
	fx->cfg.from = NULL;
	fx->cfg.messaging_service_sid = fx->msid;
	memset(&st, 0, sizeof(st));
	assert_int_equal(gw_twilio_scan_page(&fx->cfg, &q, page, strlen(page), &st, &err), 0);
	assert_int_equal(st.matches, 1);
	assert_string_equal(st.sid, SID_A);
}

static void twilio_list_hostile_answers_are_refused_or_skipped(void **state)
{
	struct fx *fx = *state;
	struct gw_find_scan st;
	const char *skipped = "{\"messages\":[1,\"x\",null,[],"
	    "{\"sid\":7,\"to\":\"" TO "\",\"from\":" FROM_J ",\"body\":" OURS_BODY ","
	    "\"date_created\":\"" AFTER "\"},"
	    "{\"sid\":\"SM has blanks\",\"to\":\"" TO "\",\"from\":" FROM_J ",\"body\":"
	    OURS_BODY ",\"date_created\":\"" AFTER "\"},"
	    "{\"sid\":\"" SID_A "\",\"to\":\"" TO "\",\"from\":" FROM_J ",\"body\":" OURS_BODY
	    ",\"date_created\":\"yesterday\"},"
	    "{\"sid\":\"" SID_A "\",\"to\":null,\"from\":" FROM_J ",\"body\":" OURS_BODY
	    ",\"date_created\":\"" AFTER "\"},"
	    "{\"sid\":\"" SID_A "\",\"to\":\"" TO "\",\"from\":" FROM_J ",\"body\":" OURS_BODY
	    ",\"date_created\":\"" AFTER "\",\"direction\":\"inbound\"}],"
	    "\"next_page_uri\":\"http://evil.example/" LIST_PATH "?x=1\"}";
	const char *other_account = "{\"messages\":[],\"next_page_uri\":"
	    "\"/2010-04-01/Accounts/ACffffffffffffffffffffffffffffffff/Messages.json?a=1\"}";
	const char *blank_next = "{\"messages\":[],\"next_page_uri\":\"" LIST_PATH "?a= 1\"}";

	assert_int_equal(scan(fx, skipped, &st), 0);
	assert_int_equal(st.matches, 0);
	assert_string_equal(st.next, "");
	assert_int_equal(scan(fx, other_account, &st), 0);
	assert_string_equal(st.next, "");
	assert_int_equal(scan(fx, blank_next, &st), 0);
	assert_string_equal(st.next, "");
	assert_int_equal(scan(fx, "{\"messages\":[", &st), -1);
	assert_int_equal(scan(fx, "not json", &st), -1);
	assert_int_equal(scan(fx, "[]", &st), -1);
	assert_int_equal(scan(fx, "{\"messages\":{}}", &st), -1);
	assert_int_equal(scan(fx, "{\"code\":20003,\"message\":\"Authenticate\"}", &st), -1);
	assert_int_equal(scan(fx, "", &st), -1);
}

static void on_find_done(void *arg, const struct gw_find_result *res, int cancelled)
{
	struct fx *fx = arg;

	fx->calls++;
	fx->cancelled = cancelled;
	fx->res.outcome = (enum gw_outcome)res->outcome;
	fx->res.provider_code = res->pages;
	snprintf(fx->res.provider_id, sizeof(fx->res.provider_id), "%s", res->sid);
	snprintf(fx->res.detail, sizeof(fx->res.detail), "%s", res->detail);
	event_base_loopbreak(fx->base);
}

/* Looks the query up through a twilio gateway and runs the loop until done. */
static void find_and_wait(struct fx *fx)
{
	struct gw_find_query q = find_query();
	struct err err;

	twilio_config(fx);
	gw_start(fx);
	fx->calls = 0;
	if (gw_twilio_find(fx->g, &q, on_find_done, fx, &err) != 0)
		fail_msg("gw_twilio_find: %s", err.msg);
	run(fx);
	assert_int_equal(fx->calls, 1);
}

static void twilio_find_reads_pages_until_the_cap(void **state)
{
	struct fx *fx = *state;
	static const char page[] = "{\"messages\":[" ITEM(SID_A, TO, FROM_J, OURS_BODY, AFTER)
	    "],\"next_page_uri\":\"" LIST_PATH "?To=%2B15125550100&Page=1&PageToken=PA1\"}";

	answer(fx, 200, page, NULL, NULL);
	find_and_wait(fx);
	/* The same sid on every page counts once; never past GW_FIND_PAGES_MAX pages. */
	assert_int_equal(fx->res.outcome, (enum gw_outcome)GW_FIND_FOUND);
	assert_string_equal(fx->res.provider_id, SID_A);
	assert_int_equal(fx->res.provider_code, GW_FIND_PAGES_MAX);
	assert_int_equal(fx->cap.n, GW_FIND_PAGES_MAX);
	assert_int_equal(fx->cap.method, EVHTTP_REQ_GET);
	assert_string_equal(fx->cap.path, LIST_PATH "?To=%2B15125550100&Page=1&PageToken=PA1");
	assert_string_equal(fx->cap.body, "");
	/* base64("AC0123456789abcdef0123456789ABCDEF:s3cret-token") */
	assert_string_equal(fx->cap.auth, "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OUFCQ0RF"
	    "RjpzM2NyZXQtdG9rZW4=");
}

static void twilio_find_stops_at_a_message_older_than_the_attempt(void **state)
{
	struct fx *fx = *state;
	static const char page[] = "{\"messages\":[" ITEM(SID_A, TO, FROM_J,
	    "\"other\"", BEFORE) "],\"next_page_uri\":\"" LIST_PATH "?Page=1&PageToken=PA1\"}";

	answer(fx, 200, page, NULL, NULL);
	find_and_wait(fx);
	assert_int_equal(fx->res.outcome, (enum gw_outcome)GW_FIND_NOT_FOUND);
	assert_int_equal(fx->cap.n, 1);
	assert_string_equal(fx->cap.path, LIST_PATH "?To=%2B15125550100&From=%2B15550001111"
	    "&PageSize=20");
}

static void twilio_find_answers_ambiguous_or_error(void **state)
{
	struct fx *fx = *state;
	static const char two[] = "{\"messages\":[" ITEM(SID_B, TO, FROM_J, OURS_BODY, AFTER)
	    "," ITEM(SID_A, TO, FROM_J, OURS_BODY, AFTER) "]}";

	answer(fx, 200, two, NULL, NULL);
	find_and_wait(fx);
	assert_int_equal(fx->res.outcome, (enum gw_outcome)GW_FIND_AMBIGUOUS);
	gw_free(fx->g);
	answer(fx, 503, "{\"code\":20503}", NULL, NULL);
	find_and_wait(fx);
	assert_int_equal(fx->res.outcome, (enum gw_outcome)GW_FIND_ERROR);
	assert_string_equal(fx->res.detail, "twilio list: http 503");
	gw_free(fx->g);
	answer(fx, 200, "{\"messages\":", NULL, NULL);
	find_and_wait(fx);
	assert_int_equal(fx->res.outcome, (enum gw_outcome)GW_FIND_ERROR);
}

static void twilio_find_is_cancelled_once_by_client_shutdown(void **state)
{
	struct fx *fx = *state;
	struct gw_find_query q = find_query();
	struct err err;

	twilio_config(fx);
	gw_start(fx);
	q.text = "";
	assert_int_equal(gw_twilio_find(fx->g, &q, on_find_done, fx, &err), -1);
	assert_int_equal(err.kind, ERR_INPUT);
	q = find_query();
	assert_int_equal(gw_twilio_find(fx->g, &q, on_find_done, fx, &err), 0);
	gw_free(fx->g);   /* allowed while the lookup runs */
	fx->g = NULL;
	httpc_free(fx->h);
	fx->h = NULL;
	assert_int_equal(fx->calls, 1);
	assert_int_equal(fx->cancelled, 1);
	assert_int_equal(fx->res.outcome, (enum gw_outcome)GW_FIND_ERROR);
}

/* ---- config ---- */

static void expect_config_error(struct fx *fx, const char *field, const char *msg)
{
	struct err err;

	assert_null(gw_new(fx->h, &fx->cfg, &err));
	assert_int_equal(err.kind, ERR_INPUT);
	assert_string_equal(err.field, field);
	assert_string_equal(err.msg, msg);
}

static void config_errors_name_the_key(void **state)
{
	struct fx *fx = *state;
	char bad_sid[] = "AC123";
	char bad_from[] = "5550001111";
	char bad_msid[] = "MGnothex";
	char ftp[] = "ftp://127.0.0.1/";
	char empty[] = "";

	twilio_config(fx);
	fx->cfg.account_sid = bad_sid;
	expect_config_error(fx, "gateway.twilio.account_sid",
	    "gateway.twilio.account_sid: must match ^AC[0-9a-fA-F]{32}$");
	twilio_config(fx);
	fx->cfg.base_url = ftp;
	expect_config_error(fx, "gateway.twilio.base_url",
	    "gateway.twilio.base_url: must be an http(s) URL");
	twilio_config(fx);
	fx->cfg.secret = empty;
	expect_config_error(fx, "gateway.twilio.secret",
	    "gateway.twilio.secret: must not be empty");
	twilio_config(fx);
	fx->cfg.from = bad_from;
	expect_config_error(fx, "gateway.twilio.from",
	    "gateway.twilio.from: must be E.164 (+ and 2-15 digits)");
	twilio_config(fx);
	fx->cfg.from = NULL;
	expect_config_error(fx, "gateway.twilio.from",
	    "gateway.twilio.from: from or messaging_service_sid is required");
	twilio_config(fx);
	fx->cfg.messaging_service_sid = bad_msid;
	expect_config_error(fx, "gateway.twilio.messaging_service_sid",
	    "gateway.twilio.messaging_service_sid: must match ^MG[0-9a-fA-F]{32}$");
	twilio_config(fx);
	fx->cfg.channel = CH_DM;
	expect_config_error(fx, "gateway.twilio.channel",
	    "gateway.twilio.channel: a twilio gateway sends sms");
	twilio_config(fx);
	fx->cfg.timeout_ms = -1;
	expect_config_error(fx, "gateway.twilio.timeout_ms",
	    "gateway.twilio.timeout_ms: must be >= 0 (0 = default)");
	xdm_config(fx);
	fx->cfg.channel = CH_SMS;
	expect_config_error(fx, "gateway.xdm.channel",
	    "gateway.xdm.channel: an x-dm gateway sends dm");
	xdm_config(fx);
	fx->cfg.base_url = NULL;
	expect_config_error(fx, "gateway.xdm.base_url",
	    "gateway.xdm.base_url: must be an http(s) URL");
	webhook_config(fx);
	fx->cfg.url = NULL;
	expect_config_error(fx, "gateway.hook.url", "gateway.hook.url: must be an http(s) URL");
	webhook_config(fx);
	fx->cfg.kind = (enum gw_kind)7;
	expect_config_error(fx, "gateway.hook.kind",
	    "gateway.hook.kind: must be twilio, x-dm or webhook");
}

static void kind_names_round_trip(void **state)
{
	(void)state;
	assert_string_equal(gw_kind_name(GW_TWILIO), "twilio");
	assert_string_equal(gw_kind_name(GW_XDM), "x-dm");
	assert_string_equal(gw_kind_name(GW_WEBHOOK), "webhook");
	assert_int_equal(gw_kind_from_name("twilio"), GW_TWILIO);
	assert_int_equal(gw_kind_from_name("x-dm"), GW_XDM);
	assert_int_equal(gw_kind_from_name("webhook"), GW_WEBHOOK);
	assert_int_equal(gw_kind_from_name("smtp"), -1);
	assert_int_equal(gw_kind_from_name(NULL), -1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(twilio_request_has_the_documented_wire_format),
		T(twilio_validity_period_is_capped_at_36000),
		T(twilio_messaging_service_replaces_from_and_callback_is_optional),
		T(twilio_created_is_sent_with_the_message_sid),
		T(twilio_21610_is_opted_out),
		T(twilio_21211_is_permanent_and_the_number_is_masked),
		T(twilio_429_is_rate_limited_with_retry_after),
		T(twilio_500_is_retry_and_may_have_been_delivered),
		T(refused_connection_is_retry_and_not_delivered),
		T(unanswered_request_is_retry_and_may_have_been_delivered),
		T(request_never_outlives_the_message),
		T(expired_message_is_refused_without_a_request),
		T(twilio_refuses_a_recipient_that_is_not_e164),
		T(xdm_request_has_the_documented_wire_format),
		T(xdm_created_is_sent_with_the_event_id),
		T(xdm_answers_are_classified),
		T(xdm_rate_limit_reset_becomes_retry_after),
		T(xdm_only_the_recipient_refusal_is_an_opt_out),
		T(xdm_auth_errors_pause_and_never_opt_out),
		T(xdm_refused_token_is_counted_by_its_credentials),
		T(xdm_rate_limit_reset_wins_over_retry_after),
		T(xdm_oauth2_config_errors_name_the_key),
		T(xdm_without_a_token_sends_nothing),
		T(twilio_body_encodes_every_byte_but_the_unreserved),
		T(twilio_body_over_the_cap_once_encoded_is_refused),
		T(xdm_refuses_a_recipient_that_is_not_digits),
		T(webhook_request_is_signed_and_carries_the_push),
		T(webhook_answers_are_classified),
		T(gateway_freed_in_flight_still_reports_once),
		T(client_shutdown_cancels_in_flight_sends),
		T(rfc2822_dates_parse_to_epoch_seconds),
		T(twilio_list_finds_our_message_among_others),
		T(twilio_list_two_matches_are_ambiguous_one_sid_twice_is_not),
		T(twilio_list_body_differs_or_created_before_start_is_not_found),
		T(twilio_list_messaging_service_matches_without_a_from),
		T(twilio_list_hostile_answers_are_refused_or_skipped),
		T(twilio_find_reads_pages_until_the_cap),
		T(twilio_find_stops_at_a_message_older_than_the_attempt),
		T(twilio_find_answers_ambiguous_or_error),
		T(twilio_find_is_cancelled_once_by_client_shutdown),
		T(config_errors_name_the_key),
		T(kind_names_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
