/*
 * gwsim_xdm.c: POST /2/dm_conversations/with/{participant_id}/messages, to the
 * published X API v2 contract (tests' stand-in for the DM provider).
 *
 * Checks user-context auth (an OAuth 2.0 user token: the app-only bearer gets 403, an
 * expired token 401), the participant id and the JSON body {"text": ...}, then answers
 * 201 {"data": {...}} or an error in a shape of the spec: a Problem variant as
 * application/problem+json, or the {code, message} Error as application/json. It must never echo unbounded or non-UTF-8
 * input into an answer or a log line, and never trust the body to be JSON.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/http.h>
#include <openssl/crypto.h>

#include "gwsim.h"

#define XDM_PREFIX "/2/dm_conversations/with/"
#define XDM_SUFFIX "/messages"
#define XDM_TEXT_MAX_CHARS 10000
#define XDM_SENDER_ID "1000000001"   /* the simulated sending account */

#define XDM_TYPE_INVALID "https://api.x.com/2/problems/invalid-request"
#define XDM_TYPE_NOT_AUTHORIZED "https://api.x.com/2/problems/not-authorized-for-resource"
#define XDM_PROBLEM_CT "application/problem+json"

/* A problem object: {"title", "type", "status", "detail"}; NULL when out of memory. */
static cJSON *xdm_problem(int status, const char *title, const char *type,
    const char *detail)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || !cJSON_AddStringToObject(o, "title", title) ||
	    !cJSON_AddStringToObject(o, "type", type) ||
	    !cJSON_AddNumberToObject(o, "status", status) ||
	    !cJSON_AddStringToObject(o, "detail", detail)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* The spec's Error: {"code": n, "message": "..."} (application/json). */
static cJSON *xdm_error(long code, const char *message)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL || !cJSON_AddNumberToObject(o, "code", (double)code) ||
	    !cJSON_AddStringToObject(o, "message", message)) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static cJSON *xdm_down_json(struct gwsim_call *c)
{
	(void)c;
	return xdm_error(130, "Over capacity");
}

/* 400 invalid-request with X's "errors" array naming param and its value. */
static void xdm_invalid(struct gwsim_call *c, const char *param, const char *value,
    const char *message)
{
	cJSON *o = xdm_problem(400, "Invalid Request", XDM_TYPE_INVALID,
	    "One or more parameters to your request was invalid.");
	cJSON *errs, *e, *params, *vals;
	char *clean = gwsim_utf8_clean(value, strnlen(value, 64));

	if (o == NULL || clean == NULL ||
	    (errs = cJSON_AddArrayToObject(o, "errors")) == NULL ||
	    (e = cJSON_CreateObject()) == NULL || !cJSON_AddItemToArray(errs, e) ||
	    (params = cJSON_AddObjectToObject(e, "parameters")) == NULL ||
	    (vals = cJSON_AddArrayToObject(params, param)) == NULL ||
	    !cJSON_AddItemToArray(vals, cJSON_CreateString(clean)) ||
	    !cJSON_AddStringToObject(e, "message", message)) {
		cJSON_Delete(o);
		o = NULL;
	}
	free(clean);
	gwsim_reply_json(c, 400, o, XDM_PROBLEM_CT, 1);
}

/* Copies {participant_id} into pid (truncated to fit). Returns 0, -1 when path has
 * another shape. */
static int xdm_path_pid(const char *path, char *pid, size_t pidlen)
{
	size_t plen = strlen(XDM_PREFIX), slen = strlen(XDM_SUFFIX), len;
	const char *seg;

	if (strncmp(path, XDM_PREFIX, plen) != 0)
		return -1;
	seg = path + plen;
	len = strlen(seg);
	if (len <= slen || strcmp(seg + len - slen, XDM_SUFFIX) != 0)
		return -1;
	len -= slen;
	if (memchr(seg, '/', len) != NULL)
		return -1;
	if (len >= pidlen)
		len = pidlen - 1;   /* still over 19 characters: refused as invalid */
	memcpy(pid, seg, len);
	pid[len] = '\0';
	return 0;
}

/* Answers a request whose Authorization is not a live user token. */
static void xdm_auth_refuse(struct gwsim_call *c, enum gwsim_xauth a)
{
	if (a == GWSIM_XAUTH_APP_ONLY) {
		gwsim_reply_json(c, 403, xdm_error(220, "Authenticating with OAuth 2.0 "
		    "Application-Only is forbidden for this endpoint. Supported "
		    "authentication types are [OAuth 1.0a User Context, OAuth 2.0 User "
		    "Context]."), NULL, 1);
		return;
	}
	gwsim_header(c, "WWW-Authenticate", "Bearer realm=\"api.x.com\"");
	gwsim_reply_json(c, 401, xdm_error(89, a == GWSIM_XAUTH_EXPIRED ?
	    "Invalid or expired token." : "Could not authenticate you."), NULL, 1);
}

static int xdm_is_json(struct evhttp_request *req)
{
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req),
	    "Content-Type");
	size_t n = strlen("application/json");

	return ct != NULL && strncasecmp(ct, "application/json", n) == 0 &&
	    (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* Reads and parses the body; *json is NULL when it is not JSON. Returns 0, 413 or
 * 500. Logs the text when there is one. */
static int xdm_read(struct gwsim_call *c, cJSON **json)
{
	char *body;
	size_t len;
	int rc = gwsim_body(c->req, &body, &len);
	const cJSON *text;

	*json = NULL;
	if (rc == 1)
		return 413;
	if (rc != 0)
		return 500;
	*json = cJSON_ParseWithLength(body, len);
	free(body);
	text = cJSON_GetObjectItemCaseSensitive(*json, "text");
	if (cJSON_IsString(text))
		gwsim_log_str(c, "body", text->valuestring);
	return 0;
}

/* An injected answer for this participant: 403, 429 and the rest. */
static void xdm_answer_code(struct gwsim_call *c, const char *pid, long answer)
{
	int status;
	long code;
	char reset[32];

	if (gwsim_answer_map(answer, &status, &code) != 0)
		return;
	c->fault = "answer";
	c->code = answer;
	if (status == 403) {
		/* The recipient-specific refusal: NotAuthorizedForResourceProblem naming
		 * the participant as the resource. */
		cJSON *o = xdm_problem(403, "Forbidden", XDM_TYPE_NOT_AUTHORIZED,
		    "You are not permitted to send messages to this user");

		if (o != NULL && (!cJSON_AddStringToObject(o, "resource_type", "user") ||
		    !cJSON_AddStringToObject(o, "resource_id", pid) ||
		    !cJSON_AddStringToObject(o, "parameter", "participant_id") ||
		    !cJSON_AddStringToObject(o, "section", "data"))) {
			cJSON_Delete(o);
			o = NULL;
		}
		gwsim_reply_json(c, 403, o, XDM_PROBLEM_CT, 1);
		return;
	}
	if (status == 429) {
		snprintf(reset, sizeof(reset), "%lld", (long long)(time(NULL) + 1));
		gwsim_header(c, "x-rate-limit-limit", "15");
		gwsim_header(c, "x-rate-limit-remaining", "0");
		gwsim_header(c, "x-rate-limit-reset", reset);
		gwsim_header(c, "Retry-After", "1");
		gwsim_reply_json(c, 429, xdm_error(88, "Rate limit exceeded"), NULL, 1);
		return;
	}
	if (status == 500) {
		gwsim_reply_json(c, 500, xdm_problem(500, "Internal Server Error",
		    "https://api.x.com/2/problems/internal-error", "Internal error"),
		    XDM_PROBLEM_CT, 1);
		return;
	}
	gwsim_reply_json(c, status, xdm_error(status, "Simulated error"), NULL, 1);
}

/* 201 {"data": {"dm_conversation_id": "<sender>-<pid>", "dm_event_id": "<digits>"}} */
static void xdm_accept(struct gwsim_call *c, const char *pid, const char *text)
{
	cJSON *o = cJSON_CreateObject(), *data;
	char conv[160], event_id[32];

	gwsim_new_digits(c->sim, event_id, sizeof(event_id));
	snprintf(conv, sizeof(conv), "%s-%s", XDM_SENDER_ID, pid);
	gwsim_log_str(c, "sid", event_id);
	c->print_to = strdup(pid);
	c->print_text = strdup(text);
	if (o == NULL || (data = cJSON_AddObjectToObject(o, "data")) == NULL ||
	    !cJSON_AddStringToObject(data, "dm_conversation_id", conv) ||
	    !cJSON_AddStringToObject(data, "dm_event_id", event_id)) {
		cJSON_Delete(o);
		o = NULL;
	}
	gwsim_reply_json(c, 201, o, NULL, 1);
}

/* The fail-rate fault: X's internal-error problem. */
static void xdm_fail(struct gwsim_call *c)
{
	c->fault = "fail_rate";
	gwsim_reply_json(c, 500, xdm_problem(500, "Internal Server Error",
	    "https://api.x.com/2/problems/internal-error", "Internal error"),
	    XDM_PROBLEM_CT, 1);
}

/* The checks after auth, in order; answers the call. */
static void xdm_validate_and_answer(struct gwsim_call *c, const char *pid, int status,
    const cJSON *json)
{
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(json, "text");
	long answer;

	if (!gwsim_is_digits(pid, 1, 19))
		xdm_invalid(c, "participant_id", pid,
		    "The `participant_id` path parameter value is not valid");
	else if (status == 413)
		gwsim_reply_json(c, 413, xdm_error(413, "Request body exceeds 64 KiB"), NULL,
		    1);
	else if (status != 0)
		gwsim_reply_json(c, 500, NULL, NULL, 0);
	else if (!xdm_is_json(c->req))
		xdm_invalid(c, "Content-Type", "", "Content-Type must be application/json");
	else if (!cJSON_IsObject(json))
		xdm_invalid(c, "body", "", "The request body is not a JSON object");
	else if (!cJSON_IsString(text) || text->valuestring[0] == '\0')
		xdm_invalid(c, "text", "", "text is required and must be a non-empty string");
	else if (gwsim_utf8_len(text->valuestring) > XDM_TEXT_MAX_CHARS)
		xdm_invalid(c, "text", "", "text exceeds 10000 characters");
	else if ((answer = gwsim_answer_for(c->sim, pid)) != 0)
		xdm_answer_code(c, pid, answer);
	else if (gwsim_fault_fail(c->sim))
		xdm_fail(c);
	else
		xdm_accept(c, pid, text->valuestring);
}

void gwsim_xdm_handle(struct gwsim *sim, struct evhttp_request *req, const char *path)
{
	struct gwsim_call c;
	cJSON *json = NULL;
	char pid[128];
	enum gwsim_xauth auth;
	char who[48];
	int status;

	gwsim_call_init(&c, sim, req, "x-dm");
	c.channel = "dm";
	if (xdm_path_pid(path, pid, sizeof(pid)) != 0) {
		gwsim_reply_json(&c, 404, xdm_error(34, "Sorry, that page does not exist."),
		    NULL, 1);
		return;
	}
	gwsim_log_str(&c, "to", pid);
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		gwsim_reply_json(&c, 405, xdm_error(405, "Method Not Allowed"), NULL, 1);
		return;
	}
	status = xdm_read(&c, &json);
	if (gwsim_fault_gate(&c, xdm_down_json))
		goto out;
	auth = gwsim_xoauth_check(sim, req, who, sizeof(who));
	if (who[0] != '\0')
		gwsim_log_str(&c, "from", who);   /* which credentials sent it */
	c.auth_ok = auth == GWSIM_XAUTH_OK;
	if (!c.auth_ok) {
		xdm_auth_refuse(&c, auth);
		goto out;
	}
	xdm_validate_and_answer(&c, pid, status, json);
out:
	cJSON_Delete(json);
}
