/*
 * gwsim.c: the gateway simulator's main: command line, start-up, routing, shutdown.
 *
 * Reads the flags, opens the log, binds 127.0.0.1 (port 0 = ephemeral, published
 * through --port-file), routes each request to its endpoint and runs one libevent loop
 * until SIGINT/SIGTERM, then frees everything. It must never bind a non-loopback
 * address, never exit non-zero on a request, and exits 2 on a bad command line.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <event2/http.h>

#include "gwsim.h"

#define GWSIM_DEFAULT_SID "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define GWSIM_TIMEOUT_S   120   /* > GWSIM_LATENCY_MAX_MS: a delayed reply still gets out */

static void gwsim_usage(FILE *f)
{
	fprintf(f, "usage: gwsim --port N [--port-file F] --log FILE [--account-sid AC...]\n"
	    "             [--auth-token T] [--bearer-token T] [--webhook-secret S]\n"
	    "             [--user-token T] [--client-id ID] [--client-secret S]\n"
	    "             [--refresh-token T] [--token-ttl-s N]\n"
	    "             [--auth-token-env NAME] [--bearer-token-env NAME]\n"
	    "             [--latency-ms N] [--fail-rate R] [--answer NUMBER=CODE ...]\n"
	    "             [--seed N] [--print] [--quiet]\n"
	    "             [--status-callbacks [--callback-delay-ms N]\n"
	    "              [--deliver NUMBER=STATUS[:ERRORCODE] ...]]\n");
}

static int gwsim_bad(const char *flag, const char *why, const char *val)
{
	fprintf(stderr, "gwsim: bad %s: %s%s%s%s\n", flag, why, val ? " '" : "",
	    val ? val : "", val ? "'" : "");
	return -1;
}

static int gwsim_parse_double01(const char *s, double *out)
{
	char *end;
	double v;

	if (s == NULL || s[0] == '\0' || isspace((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || *end != '\0' || !(v >= 0.0 && v <= 1.0))
		return -1;
	*out = v;
	return 0;
}

static int gwsim_parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = (uint64_t)v;
	return 0;
}

/* Applies one "--name value" option. Returns 0 or -1 after saying why on stderr. */
static int gwsim_set_opt(struct gwsim *sim, const char *name, const char *val)
{
	struct gwsim_answer a;

	if (strcmp(name, "--port") == 0) {
		if (gwsim_parse_long(val, 0, 65535, &sim->port) != 0)
			return gwsim_bad(name, "want 0..65535, got", val);
	} else if (strcmp(name, "--port-file") == 0) {
		sim->port_file = val;
	} else if (strcmp(name, "--log") == 0) {
		sim->log_path = val;
	} else if (strcmp(name, "--account-sid") == 0) {
		if (!gwsim_is_sid(val, "AC"))
			return gwsim_bad(name, "want AC + 32 hex digits, got", val);
		sim->account_sid = val;
	} else if (strcmp(name, "--auth-token") == 0) {
		sim->auth_token = val;
	} else if (strcmp(name, "--bearer-token") == 0) {
		sim->bearer_token = val;
	} else if (strcmp(name, "--user-token") == 0) {
		sim->user_token = val;
	} else if (strcmp(name, "--client-id") == 0) {
		if (*val == '\0')
			return gwsim_bad(name, "must not be empty", NULL);
		sim->client_id = val;
	} else if (strcmp(name, "--client-secret") == 0) {
		sim->client_secret = val;
	} else if (strcmp(name, "--refresh-token") == 0) {
		sim->refresh_token = val;
	} else if (strcmp(name, "--token-ttl-s") == 0) {
		if (gwsim_parse_long(val, 1, 86400, &sim->token_ttl_s) != 0)
			return gwsim_bad(name, "want 1..86400, got", val);
	} else if (strcmp(name, "--auth-token-env") == 0 ||
	    strcmp(name, "--bearer-token-env") == 0) {
		/* A secret on the command line is readable by every user of the machine
		 * (ps); the environment is the owner's alone. */
		const char *v = getenv(val);

		if (v == NULL || v[0] == '\0')
			return gwsim_bad(name, "environment variable not set or empty:", val);
		if (name[2] == 'a')
			sim->auth_token = v;
		else
			sim->bearer_token = v;
	} else if (strcmp(name, "--webhook-secret") == 0) {
		sim->webhook_secret = val;
	} else if (strcmp(name, "--latency-ms") == 0) {
		if (gwsim_parse_long(val, 0, GWSIM_LATENCY_MAX_MS, &sim->initial.latency_ms) != 0)
			return gwsim_bad(name, "want 0..60000, got", val);
	} else if (strcmp(name, "--fail-rate") == 0) {
		if (gwsim_parse_double01(val, &sim->initial.fail_rate) != 0)
			return gwsim_bad(name, "want a number from 0 to 1, got", val);
	} else if (strcmp(name, "--answer") == 0) {
		if (gwsim_answer_parse(val, &a) != 0)
			return gwsim_bad(name, "want NUMBER=CODE (CODE 400..599 or a "
			    "5-digit Twilio code), got", val);
		if (gwsim_faults_add_answer(&sim->initial, &a) != 0) {
			free(a.key);
			return gwsim_bad(name, "too many answers", NULL);
		}
	} else if (strcmp(name, "--callback-delay-ms") == 0) {
		if (gwsim_parse_long(val, 0, GWSIM_LATENCY_MAX_MS, &sim->callback_delay_ms) != 0)
			return gwsim_bad(name, "want 0..60000, got", val);
	} else if (strcmp(name, "--deliver") == 0) {
		if (gwsim_deliver_parse(sim, val) != 0)
			return gwsim_bad(name, "want NUMBER=STATUS[:ERRORCODE] (E.164 number; "
			    "delivered, sent, or undelivered/failed with an optional 5-digit "
			    "code), got", val);
	} else if (strcmp(name, "--seed") == 0) {
		if (gwsim_parse_u64(val, &sim->seed) != 0)
			return gwsim_bad(name, "want a non-negative integer, got", val);
	} else {
		return gwsim_bad(name, "unknown flag", NULL);
	}
	return 0;
}

/* Parses argv into sim. Returns 0, 1 for --help, -1 on a bad command line. */
static int gwsim_parse_args(struct gwsim *sim, int argc, char **argv)
{
	const char *needs_callbacks = NULL;   /* a flag that means nothing without them */
	int i, have_port = 0;

	for (i = 1; i < argc; i++) {
		char name[64];
		const char *arg = argv[i], *eq = strchr(arg, '='), *val;

		if (strcmp(arg, "--print") == 0) {
			sim->print = 1;
			continue;
		}
		if (strcmp(arg, "--quiet") == 0) {
			sim->quiet = 1;
			continue;
		}
		if (strcmp(arg, "--status-callbacks") == 0) {
			sim->status_callbacks = 1;
			continue;
		}
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
			return 1;
		if (strncmp(arg, "--", 2) != 0 || (eq && (size_t)(eq - arg) >= sizeof(name)))
			return gwsim_bad(arg, "not a flag", NULL);
		snprintf(name, sizeof(name), "%.*s", eq ? (int)(eq - arg) : 63, arg);
		if (eq != NULL)
			val = eq + 1;
		else if (i + 1 < argc)
			val = argv[++i];
		else
			return gwsim_bad(name, "needs a value", NULL);
		if (gwsim_set_opt(sim, name, val) != 0)
			return -1;
		have_port |= strcmp(name, "--port") == 0;
		if (strcmp(name, "--deliver") == 0)
			needs_callbacks = "--deliver";
		else if (strcmp(name, "--callback-delay-ms") == 0)
			needs_callbacks = "--callback-delay-ms";
	}
	if (needs_callbacks != NULL && !sim->status_callbacks)
		return gwsim_bad(needs_callbacks, "needs --status-callbacks", NULL);
	if (!have_port)
		return gwsim_bad("--port", "required", NULL);
	if (sim->log_path == NULL)
		return gwsim_bad("--log", "required", NULL);
	return 0;
}

static void gwsim_unknown(struct gwsim *sim, struct evhttp_request *req)
{
	struct gwsim_call c;
	cJSON *o = cJSON_CreateObject();

	gwsim_call_init(&c, sim, req, "unknown");
	if (o != NULL && !cJSON_AddStringToObject(o, "error", "not found")) {
		cJSON_Delete(o);
		o = NULL;
	}
	gwsim_reply_json(&c, 404, o, NULL, 0);
}

static void gwsim_route(struct evhttp_request *req, void *arg)
{
	struct gwsim *sim = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;

	if (path == NULL)
		path = "";
	if (strncmp(path, "/2010-04-01/", 12) == 0)
		gwsim_twilio_handle(sim, req, path);
	else if (strcmp(path, "/2/oauth2/token") == 0)
		gwsim_xoauth_token(sim, req);
	else if (strncmp(path, "/2/", 3) == 0)
		gwsim_xdm_handle(sim, req, path);
	else if (strcmp(path, "/webhook") == 0)
		gwsim_webhook_handle(sim, req);
	else if (strncmp(path, "/_sim/", 6) == 0)
		gwsim_control_handle(sim, req, path);
	else
		gwsim_unknown(sim, req);
}

static void gwsim_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct gwsim *sim = arg;

	(void)sig;
	(void)what;
	event_base_loopbreak(sim->base);
}

/* Writes "<port>\n" to path.tmp and renames it over path. Returns 0 or -1. */
static int gwsim_write_port_file(const char *path, int port)
{
	size_t n = strlen(path) + 5;
	char *tmp = malloc(n);
	FILE *f;
	int rc = -1;

	if (tmp == NULL)
		return -1;
	snprintf(tmp, n, "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL)
		goto out;
	if (fprintf(f, "%d\n", port) < 0 || fclose(f) != 0) {
		unlink(tmp);
		goto out;
	}
	rc = rename(tmp, path);
	if (rc != 0)
		unlink(tmp);
out:
	if (rc != 0)
		fprintf(stderr, "gwsim: cannot write %s: %s\n", path, strerror(errno));
	free(tmp);
	return rc;
}

/* Binds 127.0.0.1:sim->port and returns the bound port, or -1. */
static int gwsim_bind(struct gwsim *sim)
{
	struct evhttp_bound_socket *h;
	struct sockaddr_in sa;
	socklen_t salen = sizeof(sa);

	h = evhttp_bind_socket_with_handle(sim->http, "127.0.0.1", (ev_uint16_t)sim->port);
	if (h == NULL) {
		fprintf(stderr, "gwsim: cannot bind 127.0.0.1:%ld: %s\n", sim->port,
		    strerror(errno));
		return -1;
	}
	if (getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&sa, &salen) != 0) {
		fprintf(stderr, "gwsim: getsockname: %s\n", strerror(errno));
		return -1;
	}
	return ntohs(sa.sin_port);
}

static int gwsim_start_http(struct gwsim *sim)
{
	sim->http = evhttp_new(sim->base);
	if (sim->http == NULL)
		return -1;
	evhttp_set_max_body_size(sim->http, GWSIM_HARD_BODY_MAX);
	evhttp_set_max_headers_size(sim->http, 16 * 1024);
	evhttp_set_timeout(sim->http, GWSIM_TIMEOUT_S);
	evhttp_set_allowed_methods(sim->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
	    EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
	evhttp_set_gencb(sim->http, gwsim_route, sim);
	return 0;
}

/* Everything before the loop. Returns 0, or -1 after saying why on stderr. */
static int gwsim_start(struct gwsim *sim)
{
	struct sigaction sa;
	uint64_t mix;
	int port;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sim->rng = sim->seed;
	mix = (sim->seed ^ ((uint64_t)getpid() << 32)) * 0x9e3779b97f4a7c15ULL;
	sim->id_mix = mix ^ (mix >> 29);
	sim->log_fd = open(sim->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (sim->log_fd < 0) {
		fprintf(stderr, "gwsim: cannot open --log %s: %s\n", sim->log_path,
		    strerror(errno));
		return -1;
	}
	if (gwsim_faults_copy(&sim->faults, &sim->initial) != 0 ||
	    (sim->idem = gwsim_idem_new()) == NULL || gwsim_xoauth_init(sim) != 0 ||
	    (sim->base = event_base_new()) == NULL || gwsim_start_http(sim) != 0 ||
	    (sim->sigint_ev = evsignal_new(sim->base, SIGINT, gwsim_on_signal, sim)) == NULL ||
	    (sim->sigterm_ev = evsignal_new(sim->base, SIGTERM, gwsim_on_signal, sim)) == NULL ||
	    evsignal_add(sim->sigint_ev, NULL) != 0 || evsignal_add(sim->sigterm_ev, NULL) != 0) {
		fprintf(stderr, "gwsim: start-up failed (out of memory?)\n");
		return -1;
	}
	if ((port = gwsim_bind(sim)) < 0)
		return -1;
	if (sim->port_file != NULL && gwsim_write_port_file(sim->port_file, port) != 0)
		return -1;
	if (!sim->quiet) {
		printf("gwsim listening port=%d\n", port);
		fflush(stdout);
	}
	return 0;
}

/* Frees whatever gwsim_start built; safe on a partial start. */
static void gwsim_stop(struct gwsim *sim)
{
	if (sim->http != NULL) {
		gwsim_pending_flush(sim);   /* before evhttp_free frees their requests */
		evhttp_free(sim->http);
	}
	gwsim_callback_free_all(sim);   /* their connections and timers need the base */
	if (sim->sigint_ev != NULL)
		event_free(sim->sigint_ev);
	if (sim->sigterm_ev != NULL)
		event_free(sim->sigterm_ev);
	if (sim->base != NULL)
		event_base_free(sim->base);
	gwsim_idem_free(sim->idem);
	gwsim_xoauth_free(sim);
	gwsim_store_free(sim);
	gwsim_faults_clear(&sim->faults);
	gwsim_faults_clear(&sim->initial);
	gwsim_deliver_clear(sim);
	if (sim->log_fd >= 0)
		close(sim->log_fd);
	libevent_global_shutdown();
}

int main(int argc, char **argv)
{
	struct gwsim sim;
	int rc;

	memset(&sim, 0, sizeof(sim));
	sim.log_fd = -1;
	sim.account_sid = GWSIM_DEFAULT_SID;
	sim.auth_token = "test-auth-token";
	sim.bearer_token = "test-bearer-token";
	sim.user_token = "test-user-token";
	sim.client_id = "test-client-id";
	sim.client_secret = "test-client-secret";
	sim.refresh_token = "test-refresh-token";
	sim.token_ttl_s = 7200;
	sim.webhook_secret = "test-webhook-secret";
	sim.seed = 1;
	sim.callback_delay_ms = 50;
	rc = gwsim_parse_args(&sim, argc, argv);
	if (rc != 0) {
		gwsim_usage(rc > 0 ? stdout : stderr);
		gwsim_faults_clear(&sim.initial);
		gwsim_deliver_clear(&sim);
		return rc > 0 ? 0 : 2;
	}
	rc = gwsim_start(&sim) == 0 ? 0 : 1;
	if (rc == 0 && event_base_dispatch(sim.base) < 0)
		rc = 1;
	gwsim_stop(&sim);
	return rc;
}
