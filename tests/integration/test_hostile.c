/*
 * test_hostile.c: hostile input against every HTTP endpoint of a running notifier
 * (grep -n http_route notifier/\*.c): /v1/subscribers[/id], /v1/rules[/name],
 * /v1/deals/simulate, /v1/reports/..., /hooks/twilio/status, /hooks/twilio/inbound,
 * /hooks/inbound/<channel>, /c/<token>, /healthz, /metrics, and paths that match
 * nothing. Each request of one table (rows[], plus every admin route under every bad
 * Authorization header) gets the 4xx it names, with the JSON error {"error": ...,
 * "field": ...} naming the field wherever our code writes the answer, never a
 * redirect, and changes nothing in Redis; the notifier keeps running and stops
 * cleanly (under the sanitizer build: without a leak or an error).
 *
 * What the other tests cover one case at a time (test_admin.c: auth, subscriber field
 * errors, rule compile errors; test_hooks.c: Twilio and DM signatures; test_clicks.c:
 * tampered tokens; test_http_live.c: unknown paths) is swept here over all endpoints:
 * no or wrong auth on every admin route, bodies over 64 KiB on every route, bad JSON
 * and JSON of the wrong type on every JSON route, fields of the wrong type, path
 * tricks (.., %2F, %00, %5C, //, control characters, over-long paths) on every
 * prefix, bad query strings, forged, stale and misdirected signatures, tampered and
 * foreign click tokens, request lines and headers libevent refuses itself. Two
 * answers are not 4xx and are pinned as they are, with the reason at their row: an
 * unknown method (501, as RFC 9110 asks).
 *
 * State: before the sweep the dataset is made realistic (subscribers, a deal sent to
 * all, an API rule, a click counted), then the whole Redis dataset is listed in a
 * deterministic form: every key, sorted, with its type, whether it has a TTL, and its
 * content (strings; hashes and sets sorted; lists and sorted sets in order; stream
 * entries with their ids and fields). Left out, because they legitimately change on
 * their own or are meant to count refused requests:
 *   - consumer-group bookkeeping and stream lag (last-delivered ids, pending lists,
 *     consumers' idle times): only stream entries are listed, never XINFO;
 *   - TTL values (they count down): only whether a key has one;
 *   - the "hook:*" fields of hash "stats": docs/hooks.md says a refused webhook
 *     writes nothing "a stats counter aside" (hook:bad_signature, hook:bad_form);
 *   - the "reader:*" fields of hash "dealpush:formats": each notifier renews its
 *     lease there every second (docs/contracts.md, stored formats).
 * The baseline is taken once two listings half a second apart agree; then a listing
 * is taken after every request and compared with the one before it, and once more a
 * second after the sweep (for anything written late). Gwsim must see no new request
 * (no confirmation text, no push). The baseline is kept in the run folder
 * (hostile-baseline-*.txt).
 *
 * Every failing row is printed with what it got and the first line of the listing
 * that changed; the test fails at the end if any row did.
 *
 * Two more tests hold known defects (see their rows): a query value with %00 is cut
 * at the NUL instead of refused, and the signed DM endpoint parses JSON without the
 * contract's checks (\u0000, a member given twice, text after the object). They fail
 * until the server is fixed.
 *
 * Checked to fail: rows added for a moment with a wrong status or field, an
 * authorized DELETE of s-1 and a PUT of the rule were each reported, the last two
 * with the key that changed; and against a scratch copy of the tree with the bearer
 * check, the click-token MAC check, the Twilio signature check or the DM signature
 * check made to pass anything (DP_BUILD=<scratch build>), the sweep reported the
 * rows that got through and what they changed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "clicktok.h"
#include "itest.h"
#include "keys.h"
#include "shortlink.h"
#include "twsig.h"

#define TOKEN "hostile-admin-token-0123456789"
#define WRONG_TOKEN "hostile-admin-token-0123456780"   /* same length */
#define PUBLIC_URL "https://hooks.example.test"
#define INBOUND_SECRET "hostile-inbound-secret"
#define CLICK_SECRET "0123456789abcdef0123456789abcdef"
#define OTHER_SECRET "fedcba9876543210fedcba9876543210"
#define PHONE1 "+15125550101"
#define PHONE2 "+15125550102"
#define PHONE3 "+15125550103"
#define BIG_LEN (64 * 1024 + 1)    /* one byte over the body cap */
#define RESP_MAX (1 << 18)

/* ---- the table ---------------------------------------------------------------- */

enum sign {
	S_NONE,
	S_TW,           /* X-Twilio-Signature with the auth token, for PUBLIC_URL + path */
	S_TW_KEY,       /* ... with another token */
	S_TW_HOST,      /* ... for another host */
	S_DM,           /* X-Dealpush-* HMAC with the inbound secret, timestamp now */
	S_DM_KEY,       /* ... with another secret */
	S_DM_STALE,     /* ... timestamp 10 minutes ago */
	S_DM_FUTURE     /* ... timestamp 10 minutes ahead */
};

/* field: the "field" the JSON error must name; F_NONE a JSON error without "field";
 * F_RAW an answer libevent writes itself (HTML) or a HEAD answer: body not checked. */
#define F_NONE ""
#define F_RAW NULL

struct row {
	const char *method;     /* "RAW": path is the whole request, sent as it is */
	const char *path;       /* with {placeholders}, see expand() */
	const char *hdrs;       /* extra header lines ending "\r\n", {placeholders} */
	const char *body;       /* NULL: none; "@name": generated, see gen_body() */
	size_t len;             /* body bytes; 0: strlen(body) */
	enum sign sign;
	const char *sign_path;  /* sign for PUBLIC_URL + sign_path instead of path */
	int status;
	const char *field;
};

#define AUTH "Authorization: Bearer " TOKEN "\r\n"
#define FORM "Content-Type: application/x-www-form-urlencoded\r\n"
#define JSON "Content-Type: application/json\r\n"

#define R(m, p, h, b, st, f) { m, p, h, b, 0, S_NONE, NULL, st, f }
#define RL(m, p, h, b, st, f) { m, p, h, b, sizeof(b) - 1, S_NONE, NULL, st, f }
#define RS(m, p, h, b, s, st, f) { m, p, h, b, 0, s, NULL, st, f }
#define RSP(m, p, h, b, s, sp, st, f) { m, p, h, b, 0, s, sp, st, f }

#define SUB_OK "{\"id\":\"s-9\",\"phone\":\"+15125550199\",\"channels\":[\"sms\"]," \
	"\"timezone\":\"America/Chicago\"}"
#define SUB1_OK "{\"id\":\"s-1\",\"phone\":\"+15125550199\",\"channels\":[\"sms\"]," \
	"\"timezone\":\"America/Chicago\"}"
#define SUB9(rest) "{\"id\":\"s-9\",\"phone\":\"+15125550199\",\"channels\":[\"sms\"]," \
	"\"timezone\":\"America/Chicago\"," rest "}"
#define RULE_OK "rule promo\n  audience interested\n  send sms\n" \
	"  template sms \"HACKED {title} {link} Reply STOP to end\"\nend\n"
#define DEAL(rest) "{\"id\":\"h-1\",\"title\":\"Hostile\",\"category\":\"laptop\"," \
	"\"url\":\"https://shop.example/h\"," rest "}"
#define STATUS_PUSH "/hooks/twilio/status?push=1-0%3As-1%3Asms"
#define STATUS_FORM "MessageSid=SM1&MessageStatus=delivered&To=%2B15125550101"
#define DM_STOP "{\"subscriber_id\":\"s-3\",\"text\":\"STOP\"}"

static const struct row rows[] = {
	/* /v1/subscribers: bodies that are not a subscriber. */
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":", 400, "body"),
	R("POST", "/v1/subscribers", AUTH JSON, "[1,2]", 400, "body"),
	R("POST", "/v1/subscribers", AUTH JSON, "\"s-9\"", 400, "body"),
	R("POST", "/v1/subscribers", AUTH JSON, "42", 400, "body"),
	R("POST", "/v1/subscribers", AUTH JSON, "null", 400, "body"),
	R("POST", "/v1/subscribers", AUTH JSON, "true", 400, "body"),
	R("POST", "/v1/subscribers", AUTH JSON, "", 400, "body"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB_OK "x", 400, "body"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB_OK SUB_OK, 400, "body"),
	RL("POST", "/v1/subscribers", AUTH JSON, "{\"id\":\"s-9\0\"}", 400, "body"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"tags\":[\"a\\u0000b\"]"), 400,
	    "body"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"tags\":[\"\xff\xfe\"]"), 400,
	    "body"),
	R("POST", "/v1/subscribers", AUTH JSON, "@deep", 400, "body"),
	R("POST", "/v1/subscribers", AUTH JSON, "@over16k", 413, "body"),
	R("POST", "/v1/subscribers", AUTH JSON, "@big", 413, F_RAW),
	/* ... and fields of the wrong type or value. */
	R("POST", "/v1/subscribers", AUTH JSON, "{}", 400, "id"),
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":7}", 400, "id"),
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":[\"s-9\"]}", 400, "id"),
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":\"\"}", 400, "id"),
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":\"s 9\"}", 400, "id"),
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":\"s-9\",\"id\":\"s-1\"}", 400, "id"),
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":\"s-9\",\"phone\":15125550199,"
	    "\"channels\":[\"sms\"],\"timezone\":\"America/Chicago\"}", 400, "phone"),
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":\"s-9\",\"phone\":\"+1512555019"
	    "9;DROP\",\"channels\":[\"sms\"],\"timezone\":\"America/Chicago\"}", 400,
	    "phone"),
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":\"s-9\",\"phone\":\"+15125550199\","
	    "\"channels\":\"sms\",\"timezone\":\"America/Chicago\"}", 400, "channels"),
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":\"s-9\",\"phone\":\"+15125550199\","
	    "\"channels\":[1],\"timezone\":\"America/Chicago\"}", 400, "channels"),
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":\"s-9\",\"phone\":\"+15125550199\","
	    "\"channels\":[\"sms\"],\"timezone\":7}", 400, "timezone"),
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":\"s-9\",\"phone\":\"+15125550199\","
	    "\"channels\":[\"sms\"],\"timezone\":\"../../../../etc/passwd\"}", 400,
	    "timezone"),
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":\"s-9\",\"phone\":\"+15125550199\","
	    "\"channels\":[\"sms\"],\"timezone\":\"/dev/zero\"}", 400, "timezone"),
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":\"s-9\",\"phone\":\"+15125550199\","
	    "\"channels\":[\"sms\"],\"timezone\":\"America/../../../etc/passwd\"}", 400,
	    "timezone"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"consent\":[]"), 400, "consent"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"consent\":{\"sms\":5}"), 400,
	    "consent.sms"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"consent\":{\"sms\":\"yesterday\"}"),
	    400, "consent.sms"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"interests\":\"laptop\""), 400,
	    "interests"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"interests\":{\"categories\":"
	    "\"laptop\"}"), 400, "interests.categories"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"interests\":{\"max_price\":"
	    "\"cheap\"}"), 400, "interests.max_price"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"interests\":{\"max_price\":"
	    "1e999}"), 400, "interests.max_price"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"engagement\":\"high\""), 400,
	    "engagement"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"engagement\":2"), 400,
	    "engagement"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"engagement\":-0.5"), 400,
	    "engagement"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"max_per_day\":\"3\""), 400,
	    "max_per_day"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"max_per_day\":1.5"), 400,
	    "max_per_day"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"max_per_day\":-1"), 400,
	    "max_per_day"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"quiet_hours\":\"22-07\""), 400,
	    "quiet_hours"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"tags\":{}"), 400, "tags"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"tags\":[1]"), 400, "tags"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"dm\":\"4242\""), 400, "dm"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"dm\":{\"x\":4242}"), 400, "dm.x"),
	R("POST", "/v1/subscribers", AUTH JSON, SUB9("\"locale\":\"en_US;x\""), 400,
	    "locale"),
	R("POST", "/v1/subscribers", AUTH JSON, "{\"id\":\"s-1\",\"phone\":\"+15125550101\","
	    "\"channels\":[\"sms\"],\"timezone\":\"America/Chicago\"}", 409, "id"),
	/* /v1/subscribers: methods. */
	R("GET", "/v1/subscribers?limit=0", AUTH, NULL, 400, "limit"),
	R("GET", "/v1/subscribers?limit=1001", AUTH, NULL, 400, "limit"),
	R("GET", "/v1/subscribers?cursor=1-9-0-0", AUTH, NULL, 400, "cursor"),
	R("GET", "/v1/subscribers?cursor=x", AUTH, NULL, 400, "cursor"),
	R("GET", "/v1/subscribers?consent=fax", AUTH, NULL, 400, "consent"),
	R("POST", "/v1/codes/a%7Bb%7D", AUTH, "C1\n", 400, "path"),
	R("POST", "/v1/codes/p", AUTH, "[\"C1\",", 400, "body"),
	R("POST", "/v1/codes/p", AUTH, "bad code\n", 400, "body"),
	R("DELETE", "/v1/codes/p", AUTH, NULL, 405, "method"),
	R("GET", "/v1/deals/a%20b", AUTH, NULL, 400, "path"),
	R("PUT", "/v1/subscribers", AUTH JSON, SUB_OK, 405, "method"),
	R("DELETE", "/v1/subscribers", AUTH, NULL, 405, "method"),
	R("PATCH", "/v1/subscribers", AUTH JSON, SUB_OK, 405, "method"),
	R("POST", "/v1/subscribers/s-1", AUTH JSON, SUB1_OK, 405, "method"),
	R("PATCH", "/v1/subscribers/s-1", AUTH JSON, SUB1_OK, 405, "method"),
	R("OPTIONS", "/v1/subscribers/s-1", AUTH, NULL, 405, "method"),
	/* /v1/subscribers/<id>: ids and bodies. */
	R("PUT", "/v1/subscribers/s-1", AUTH JSON, SUB_OK, 400, "id"),
	R("PUT", "/v1/subscribers/s-1", AUTH JSON, "{\"id\":", 400, "body"),
	R("PUT", "/v1/subscribers/s-1", AUTH JSON, "[\"s-1\"]", 400, "body"),
	R("PUT", "/v1/subscribers/s-1", AUTH JSON, "\"s-1\"", 400, "body"),
	R("PUT", "/v1/subscribers/s-1", AUTH JSON, "1", 400, "body"),
	R("PUT", "/v1/subscribers/s-1", AUTH JSON, "{\"id\":\"s-1\",\"phone\":true,"
	    "\"channels\":[\"sms\"],\"timezone\":\"America/Chicago\"}", 400, "phone"),
	R("DELETE", "/v1/subscribers/s-1", AUTH JSON, "@big", 413, F_RAW),
	R("PUT", "/v1/subscribers/s-1", AUTH JSON, "@big", 413, F_RAW),
	R("PUT", "/v1/subscribers/s-1", AUTH JSON, "@over16k", 413, "body"),
	R("GET", "/v1/subscribers/a%20b", AUTH, NULL, 400, "path"),
	R("GET", "/v1/subscribers/%C3%A9", AUTH, NULL, 400, "path"),
	R("GET", "/v1/subscribers/{a:129}", AUTH, NULL, 400, "path"),
	R("DELETE", "/v1/subscribers/{a:129}", AUTH, NULL, 400, "path"),
	R("PUT", "/v1/subscribers/a%20b", AUTH JSON, SUB1_OK, 400, "path"),
	R("GET", "/v1/subscribers/s-404", AUTH, NULL, 404, "id"),
	R("DELETE", "/v1/subscribers/s-404", AUTH, NULL, 404, "id"),
	R("GET", "/v1/subscribers/s-1/x", AUTH, NULL, 404, "id"),
	/* /v1/rules[/<name>]. */
	R("PUT", "/v1/rules/promo", AUTH, "not a rule", 400, "body"),
	R("PUT", "/v1/rules/promo", AUTH, "", 400, "body"),
	R("PUT", "/v1/rules/promo", AUTH, "# only a comment\n", 400, "body"),
	R("PUT", "/v1/rules/promo", AUTH, "rule promo\n  send sms\n", 400, "body"),
	R("PUT", "/v1/rules/promo", AUTH, "rule promo\n  when deal.colour = \"red\"\n"
	    "  send sms\nend\n", 400, "body"),
	RL("PUT", "/v1/rules/promo", AUTH, "rule promo\n  send sms\0\nend\n", 400, "body"),
	R("PUT", "/v1/rules/promo", AUTH, "rule promo\n  send sms\n  template sms "
	    "\"\xff\xfe {link}\"\nend\n", 400, "body"),
	R("PUT", "/v1/rules/promo", AUTH, "@big", 413, F_RAW),
	R("PUT", "/v1/rules/a.b", AUTH, RULE_OK, 400, "path"),
	R("PUT", "/v1/rules/a%20b", AUTH, RULE_OK, 400, "path"),
	R("PUT", "/v1/rules/{a:65}", AUTH, RULE_OK, 400, "path"),
	R("PUT", "/v1/rules/promo/x", AUTH, RULE_OK, 400, "path"),
	R("GET", "/v1/rules/nope", AUTH, NULL, 404, "path"),
	R("DELETE", "/v1/rules/nope", AUTH, NULL, 404, "path"),
	R("POST", "/v1/rules", AUTH, RULE_OK, 405, "method"),
	R("PUT", "/v1/rules", AUTH, RULE_OK, 405, "method"),
	R("DELETE", "/v1/rules", AUTH, NULL, 405, "method"),
	R("POST", "/v1/rules/promo", AUTH, RULE_OK, 405, "method"),
	R("PATCH", "/v1/rules/promo", AUTH, RULE_OK, 405, "method"),
	/* /v1/deals/simulate. */
	R("POST", "/v1/deals/simulate", AUTH JSON, "nope", 400, "body"),
	R("POST", "/v1/deals/simulate", AUTH JSON, "{\"id\":", 400, "body"),
	R("POST", "/v1/deals/simulate", AUTH JSON, "[]", 400, "body"),
	R("POST", "/v1/deals/simulate", AUTH JSON, "\"h-1\"", 400, "body"),
	R("POST", "/v1/deals/simulate", AUTH JSON, "3.5", 400, "body"),
	R("POST", "/v1/deals/simulate", AUTH JSON, "", 400, "body"),
	R("POST", "/v1/deals/simulate", AUTH JSON, DEAL("\"expires_at\":{exp}") "x",
	    400, "body"),
	RL("POST", "/v1/deals/simulate", AUTH JSON, "{\"id\":\"h\0\"}", 400, "body"),
	R("POST", "/v1/deals/simulate", AUTH JSON, "@deep", 400, "body"),
	R("POST", "/v1/deals/simulate", AUTH JSON, "@big", 413, F_RAW),
	R("POST", "/v1/deals/simulate", AUTH JSON, "{\"id\":1}", 400, "id"),
	R("POST", "/v1/deals/simulate", AUTH JSON, DEAL("\"expires_at\":\"soon\""), 400,
	    "expires_at"),
	R("POST", "/v1/deals/simulate", AUTH JSON, DEAL("\"expires_at\":1000"), 400,
	    "expires_at"),
	R("POST", "/v1/deals/simulate", AUTH JSON, DEAL("\"expires_at\":{exp},"
	    "\"price\":\"cheap\""), 400, "price"),
	R("POST", "/v1/deals/simulate", AUTH JSON, DEAL("\"expires_at\":{exp},"
	    "\"price\":-1"), 400, "price"),
	R("POST", "/v1/deals/simulate", AUTH JSON, "{\"id\":\"h-1\",\"cancel\":true}", 400,
	    "cancel"),
	R("POST", "/v1/deals/simulate", AUTH JSON, DEAL("\"expires_at\":{exp},"
	    "\"url\":\"javascript:alert(1)\""), 400, "url"),
	R("GET", "/v1/deals/simulate", AUTH, NULL, 405, "method"),
	R("PUT", "/v1/deals/simulate", AUTH JSON, "{}", 405, "method"),
	R("POST", "/v1/deals/simulate/x", AUTH JSON, "{}", 404, "path"),
	/* POST /v1/deals publishes: every refused deal names its field, adds nothing */
	R("POST", "/v1/deals", AUTH JSON, "{}", 400, "id"),
	R("POST", "/v1/deals", AUTH JSON, DEAL("\"expires_at\":{exp},"
	    "\"price\":-1"), 400, "price"),
	R("POST", "/v1/deals", AUTH JSON, DEAL("\"expires_at\":{exp},"
	    "\"url\":\"javascript:alert(1)\""), 400, "url"),
	R("POST", "/v1/deals", AUTH JSON, DEAL("\"expires_at\":1"), 400, "expires_at"),
	R("POST", "/v1/deals", AUTH JSON, "{\"id\":\"h\\u0000-1\"}", 400, "body"),
	R("PUT", "/v1/deals", AUTH JSON, "{}", 405, "method"),
	/* /v1/reports/<kind>/<name>. */
	R("GET", "/v1/reports/deal/d-1?segment_price=abc", AUTH, NULL, 400, "segment_price"),
	R("GET", "/v1/reports/deal/d-1?segment_price=-1", AUTH, NULL, 400, "segment_price"),
	R("GET", "/v1/reports/deal/d-1?segment_price=101", AUTH, NULL, 400, "segment_price"),
	R("GET", "/v1/reports/deal/d-1?segment_price=nan", AUTH, NULL, 400, "segment_price"),
	R("GET", "/v1/reports/deal/d-1?segment_price=inf", AUTH, NULL, 400, "segment_price"),
	R("GET", "/v1/reports/deal/d-1?segment_price=1e999", AUTH, NULL, 400,
	    "segment_price"),
	R("GET", "/v1/reports/deal/d-1?segment_price=", AUTH, NULL, 400, "segment_price"),
	R("GET", "/v1/reports/deal/d-1", AUTH JSON, "@big", 413, F_RAW),
	R("GET", "/v1/rules", AUTH JSON, "@big", 413, F_RAW),
	R("GET", "/v1/reports/deal/d-1?segment_price", AUTH, NULL, 400, "query"),
	R("GET", "/v1/reports/deal/d-1?=1", AUTH, NULL, 400, "query"),
	R("GET", "/v1/reports/deal/d-1?a=1&&b=2", AUTH, NULL, 400, "query"),
	R("GET", "/v1/reports", AUTH, NULL, 404, "path"),
	R("GET", "/v1/reports/deal", AUTH, NULL, 404, "path"),
	R("GET", "/v1/reports/user/x", AUTH, NULL, 404, "path"),
	R("GET", "/v1/reports/deal/", AUTH, NULL, 400, "path"),
	R("GET", "/v1/reports/deal/a%20b", AUTH, NULL, 400, "path"),
	R("GET", "/v1/reports/deal/{a:129}", AUTH, NULL, 400, "path"),
	R("GET", "/v1/reports/deal/nope", AUTH, NULL, 404, "path"),
	R("POST", "/v1/reports/deal/d-1", AUTH JSON, "{}", 405, "method"),
	R("DELETE", "/v1/reports/deal/d-1", AUTH, NULL, 405, "method"),
	R("GET", "/v1/nope", AUTH, NULL, 404, "path"),
	/* Path tricks, on every prefix, with and without the token (the path is checked
	 * before auth). */
	R("GET", "/v1/subscribers/..%2Fs-1", AUTH, NULL, 400, "path"),
	R("GET", "/v1/subscribers/s-1%2F..", NULL, NULL, 400, "path"),
	R("GET", "/v1/subscribers/../rules", AUTH, NULL, 400, "path"),
	R("GET", "/v1/subscribers/%2e%2e/rules", AUTH, NULL, 400, "path"),
	R("GET", "/v1/subscribers/%2E%2E", NULL, NULL, 400, "path"),
	R("DELETE", "/v1//subscribers/s-1", AUTH, NULL, 400, "path"),
	R("DELETE", "/v1/subscribers/s-1%00", AUTH, NULL, 400, "path"),
	R("DELETE", "/v1/subscribers/s-1%00.json", NULL, NULL, 400, "path"),
	R("GET", "/v1/subscribers/s%5C1", AUTH, NULL, 400, "path"),
	R("GET", "/v1/subscribers/s-1%0d%0aX-Injected:%201", AUTH, NULL, 400, "path"),
	R("GET", "/v1/subscribers/s-1%7f", AUTH, NULL, 400, "path"),
	R("GET", "/v1/subscribers/{a:1100}", AUTH, NULL, 400, "path"),
	R("GET", "/v1/subscribers/{a:9000}", AUTH, NULL, 400, F_RAW),
	R("PUT", "/v1/rules/..", AUTH, RULE_OK, 400, "path"),
	R("PUT", "/v1/rules/%2e%2e%2fpromo", AUTH, RULE_OK, 400, "path"),
	R("PUT", "//v1/rules/promo", AUTH, RULE_OK, 400, "path"),
	R("POST", "/v1/deals/simulate/..", AUTH JSON, "{}", 400, "path"),
	R("GET", "/v1/reports/deal/..%2F..%2Fstats", AUTH, NULL, 400, "path"),
	R("GET", "/v1/reports/deal/d-1%00", AUTH, NULL, 400, "path"),
	R("GET", "/healthz/..", NULL, NULL, 400, "path"),
	R("GET", "//healthz", NULL, NULL, 400, "path"),
	R("GET", "/healthz%00", NULL, NULL, 400, "path"),
	R("GET", "/metrics%2F", NULL, NULL, 400, "path"),
	R("GET", "/metrics/%2e%2e/v1/rules", NULL, NULL, 400, "path"),
	R("GET", "/c/..%2F{tok}", NULL, NULL, 400, "path"),
	R("GET", "/c//{tok}", NULL, NULL, 400, "path"),
	R("GET", "/c/{tok}%00", NULL, NULL, 400, "path"),
	R("GET", "/c/{tok}/..", NULL, NULL, 400, "path"),
	R("GET", "/c/{a:1100}", NULL, NULL, 400, "path"),
	R("POST", "/hooks/twilio/..%2Fstatus", FORM, STATUS_FORM, 400, "path"),
	R("POST", "/hooks//twilio/inbound", FORM, "From=%2B15125550101&Body=STOP", 400,
	    "path"),
	R("POST", "/hooks/twilio/inbound/..", FORM, "From=%2B15125550101&Body=STOP", 400,
	    "path"),
	R("POST", "/hooks/inbound/x-dm%00", JSON, DM_STOP, 400, "path"),
	R("POST", "/hooks/inbound/..%2Fx-dm", JSON, DM_STOP, 400, "path"),
	R("POST", "/hooks/inbound/x-dm%5C..", JSON, DM_STOP, 400, "path"),
	R("POST", "/hooks/inbound/{a:1100}", JSON, DM_STOP, 400, "path"),
	/* Bad query strings everywhere (a parameter without a name or a value). */
	R("GET", "/healthz?=1", NULL, NULL, 400, "query"),
	R("GET", "/metrics?x", NULL, NULL, 400, "query"),
	R("GET", "/c/{tok}?=x", NULL, NULL, 400, "query"),
	R("GET", "/v1/rules?&", AUTH, NULL, 400, "query"),
	R("POST", "/hooks/twilio/status?=1", FORM, STATUS_FORM, 400, "query"),
	R("POST", "/hooks/inbound/x-dm?a", JSON, DM_STOP, 400, "query"),
	/* /healthz, /metrics and unknown paths: methods, bodies. */
	R("POST", "/healthz", JSON, "{}", 405, "method"),
	R("PUT", "/healthz", JSON, "{}", 405, "method"),
	R("DELETE", "/metrics", NULL, NULL, 405, "method"),
	R("POST", "/metrics", JSON, "@big", 413, F_RAW),
	R("GET", "/healthz", JSON, "@big", 413, F_RAW),
	R("GET", "/healthz/x", NULL, NULL, 404, "path"),
	R("GET", "/metricsx", NULL, NULL, 404, "path"),
	R("GET", "/nope", NULL, NULL, 404, "path"),
	R("GET", "/", NULL, NULL, 404, "path"),
	R("POST", "/hooks", FORM, STATUS_FORM, 404, "path"),
	R("POST", "/hooks/twilio", FORM, STATUS_FORM, 404, "path"),
	R("GET", "/v1", NULL, NULL, 401, F_NONE),
	R("GET", "/v1/", NULL, NULL, 401, F_NONE),
	/* /hooks/twilio/inbound. */
	R("POST", "/hooks/twilio/inbound", FORM, "From=%2B15125550101&To=%2B15005550006&"
	    "Body=STOP", 403, F_NONE),
	RS("POST", "/hooks/twilio/inbound", FORM, "From=%2B15125550101&To=%2B15005550006&"
	    "Body=STOP", S_TW_KEY, 403, F_NONE),
	RS("POST", "/hooks/twilio/inbound", FORM, "From=%2B15125550101&To=%2B15005550006&"
	    "Body=STOP", S_TW_HOST, 403, F_NONE),
	RSP("POST", "/hooks/twilio/inbound", FORM, "From=%2B15125550101&To=%2B15005550006&"
	    "Body=STOP", S_TW, "/hooks/twilio/status", 403, F_NONE),
	RSP("POST", "/hooks/twilio/inbound", FORM, "From=%2B15125550101&To=%2B15005550006&"
	    "Body=STOP", S_TW, "/hooks/twilio/inbound?x=1", 403, F_NONE),
	RSP("POST", "/hooks/twilio/inbound", FORM, "From=%2B15125550101&To=%2B15005550006&"
	    "Body=STOP", S_TW, "/hooks/twilio/inbound/", 403, F_NONE),
	R("POST", "/hooks/twilio/inbound", FORM "X-Twilio-Signature: \r\n",
	    "From=%2B15125550101&Body=STOP", 403, F_NONE),
	R("POST", "/hooks/twilio/inbound", FORM "X-Twilio-Signature: "
	    "GvWf1cFY/Q7PnoempGyD5oXAezc=\r\n", "From=%2B15125550101&Body=STOP", 403, F_NONE),
	R("POST", "/hooks/twilio/inbound", FORM "X-Twilio-Signature: {a:4000}\r\n",
	    "From=%2B15125550101&Body=STOP", 403, F_NONE),
	R("POST", "/hooks/twilio/inbound", JSON, "{\"From\":\"+15125550101\",\"Body\":"
	    "\"STOP\"}", 400, "body"),
	R("POST", "/hooks/twilio/inbound", FORM, "From=%zz&Body=STOP", 400, "body"),
	R("POST", "/hooks/twilio/inbound", FORM, "From=%2B1&&Body=STOP", 400, "body"),
	R("POST", "/hooks/twilio/inbound", FORM, "=x&Body=STOP", 400, "body"),
	R("POST", "/hooks/twilio/inbound", FORM, "From", 400, "body"),
	R("POST", "/hooks/twilio/inbound", FORM, "From=%2B15125550101&Body=STOP%00", 400,
	    "body"),
	RL("POST", "/hooks/twilio/inbound", FORM, "From=%2B15125550101&Body=STOP\0", 400,
	    "body"),
	R("POST", "/hooks/twilio/inbound", FORM, "@manyparams", 400, "body"),
	RS("POST", "/hooks/twilio/inbound", FORM, "From=%2B15125550101&To=%2B15005550006",
	    S_TW, 400, "Body"),
	RS("POST", "/hooks/twilio/inbound", FORM, "To=%2B15005550006&Body=STOP", S_TW, 400,
	    "From"),
	R("POST", "/hooks/twilio/inbound", FORM, "@big", 413, F_RAW),
	R("GET", "/hooks/twilio/inbound", NULL, NULL, 405, "method"),
	R("PUT", "/hooks/twilio/inbound", FORM, "From=%2B15125550101&Body=STOP", 405,
	    "method"),
	R("POST", "/hooks/twilio/inbound/x", FORM, "From=%2B15125550101&Body=STOP", 404,
	    "path"),
	/* /hooks/twilio/status. */
	R("POST", STATUS_PUSH, FORM, STATUS_FORM "&ErrorCode=30006", 403, F_NONE),
	RS("POST", STATUS_PUSH, FORM, STATUS_FORM "&ErrorCode=30006", S_TW_KEY, 403, F_NONE),
	RS("POST", STATUS_PUSH, FORM, STATUS_FORM "&ErrorCode=30006", S_TW_HOST, 403,
	    F_NONE),
	RSP("POST", STATUS_PUSH, FORM, STATUS_FORM "&ErrorCode=30006", S_TW,
	    "/hooks/twilio/status?push=2-0%3As-1%3Asms", 403, F_NONE),
	RSP("POST", STATUS_PUSH, FORM, STATUS_FORM "&ErrorCode=30006", S_TW,
	    "/hooks/twilio/status", 403, F_NONE),
	R("POST", STATUS_PUSH, FORM, "MessageStatus=%zz", 400, "body"),
	R("POST", STATUS_PUSH, FORM, "MessageStatus", 400, "body"),
	R("POST", STATUS_PUSH, FORM, "MessageStatus=failed&ErrorCode=%00", 400, "body"),
	R("POST", STATUS_PUSH, JSON, "{\"MessageStatus\":\"failed\"}", 400, "body"),
	RS("POST", "/hooks/twilio/status", FORM, STATUS_FORM, S_TW, 400, "push"),
	RS("POST", "/hooks/twilio/status?other=1", FORM, STATUS_FORM, S_TW, 400, "push"),
	RS("POST", STATUS_PUSH, FORM, "MessageSid=SM1&To=%2B15125550101", S_TW, 400,
	    "MessageStatus"),
	RS("POST", STATUS_PUSH, FORM, STATUS_FORM "&ErrorCode=abc", S_TW, 400, "ErrorCode"),
	RS("POST", STATUS_PUSH, FORM, STATUS_FORM "&ErrorCode=-1", S_TW, 400, "ErrorCode"),
	RS("POST", STATUS_PUSH, FORM, STATUS_FORM "&ErrorCode=1234567", S_TW, 400,
	    "ErrorCode"),
	RS("POST", STATUS_PUSH, FORM, STATUS_FORM "&ErrorCode=30006%20", S_TW, 400,
	    "ErrorCode"),
	R("POST", STATUS_PUSH, FORM, "@big", 413, F_RAW),
	R("GET", STATUS_PUSH, NULL, NULL, 405, "method"),
	R("DELETE", "/hooks/twilio/status", NULL, NULL, 405, "method"),
	R("POST", "/hooks/twilio/status/x", FORM, STATUS_FORM, 404, "path"),
	/* /hooks/inbound/<channel>. */
	RS("POST", "/hooks/inbound", JSON, DM_STOP, S_DM, 404, "path"),
	RS("POST", "/hooks/inbound/fax", JSON, DM_STOP, S_DM, 404, "path"),
	RS("POST", "/hooks/inbound/x-dm/x", JSON, DM_STOP, S_DM, 404, "path"),
	RS("POST", "/hooks/inbound/X-DM", JSON, DM_STOP, S_DM, 404, "path"),
	R("POST", "/hooks/inbound/x-dm", JSON, DM_STOP, 403, F_NONE),
	RS("POST", "/hooks/inbound/x-dm", JSON, DM_STOP, S_DM_KEY, 403, F_NONE),
	RS("POST", "/hooks/inbound/webhook", JSON, DM_STOP, S_DM_STALE, 403, F_NONE),
	RS("POST", "/hooks/inbound/webhook", JSON, DM_STOP, S_DM_FUTURE, 403, F_NONE),
	R("POST", "/hooks/inbound/x-dm", JSON "X-Dealpush-Timestamp: abc\r\n"
	    "X-Dealpush-Signature: v1=" "{0:64}" "\r\n", DM_STOP, 403, F_NONE),
	R("POST", "/hooks/inbound/x-dm", JSON "X-Dealpush-Timestamp: {now}\r\n"
	    "X-Dealpush-Signature: v1=zz\r\n", DM_STOP, 403, F_NONE),
	R("POST", "/hooks/inbound/x-dm", JSON "X-Dealpush-Timestamp: {now}\r\n"
	    "X-Dealpush-Signature: v2={0:64}\r\n", DM_STOP, 403, F_NONE),
	R("POST", "/hooks/inbound/x-dm", JSON "X-Dealpush-Timestamp: {now}\r\n"
	    "X-Dealpush-Signature: v1={0:64}\r\n", DM_STOP, 403, F_NONE),
	R("POST", "/hooks/inbound/x-dm", JSON "X-Dealpush-Timestamp: {now}\r\n"
	    "X-Dealpush-Signature: v1={a:4000}\r\n", DM_STOP, 403, F_NONE),
	RS("POST", "/hooks/inbound/x-dm", JSON, "{\"subscriber_id\":", S_DM, 400, "body"),
	RS("POST", "/hooks/inbound/x-dm", JSON, "[\"STOP\"]", S_DM, 400, "body"),
	RS("POST", "/hooks/inbound/x-dm", JSON, "\"STOP\"", S_DM, 400, "body"),
	RS("POST", "/hooks/inbound/x-dm", JSON, "7", S_DM, 400, "body"),
	RS("POST", "/hooks/inbound/x-dm", JSON, "", S_DM, 400, "body"),
	RS("POST", "/hooks/inbound/x-dm", JSON, "{}", S_DM, 400, "text"),
	RS("POST", "/hooks/inbound/x-dm", JSON, "{\"subscriber_id\":\"s-3\",\"text\":5}",
	    S_DM, 400, "text"),
	RS("POST", "/hooks/inbound/x-dm", JSON, "{\"subscriber_id\":\"s-3\",\"text\":"
	    "[\"STOP\"]}", S_DM, 400, "text"),
	RS("POST", "/hooks/inbound/x-dm", JSON, "{\"subscriber_id\":\"s-3\",\"dm_user_id\":"
	    "\"4242\",\"text\":\"STOP\"}", S_DM, 400, "subscriber_id"),
	RS("POST", "/hooks/inbound/x-dm", JSON, "{\"text\":\"STOP\"}", S_DM, 400,
	    "subscriber_id"),
	RS("POST", "/hooks/inbound/x-dm", JSON, "{\"dm_user_id\":4242,\"text\":\"STOP\"}",
	    S_DM, 400, "dm_user_id"),
	RS("POST", "/hooks/inbound/x-dm", JSON, "{\"subscriber_id\":\"\",\"text\":\"STOP\"}",
	    S_DM, 400, "subscriber_id"),
	RS("POST", "/hooks/inbound/x-dm", JSON, "{\"subscriber_id\":[\"s-3\"],\"text\":"
	    "\"STOP\"}", S_DM, 400, "subscriber_id"),
	RS("POST", "/hooks/inbound/x-dm", JSON, "{\"subscriber_id\":\"{a:129}\",\"text\":"
	    "\"STOP\"}", S_DM, 400, "subscriber_id"),
	R("POST", "/hooks/inbound/x-dm", JSON, "@big", 413, F_RAW),
	R("GET", "/hooks/inbound/x-dm", NULL, NULL, 405, "method"),
	R("PUT", "/hooks/inbound/webhook", JSON, DM_STOP, 405, "method"),
	/* /c/<token>: tampered, foreign, unknown; never a redirect. */
	R("GET", "/c/{tok:flip}", NULL, NULL, 404, F_NONE),
	R("GET", "/c/{tok:cut}", NULL, NULL, 404, F_NONE),
	R("GET", "/c/{tok:ext}", NULL, NULL, 404, F_NONE),
	R("GET", "/c/{tok:case}", NULL, NULL, 404, F_NONE),
	R("GET", "/c/{tok:other}", NULL, NULL, 404, F_NONE),
	R("GET", "/c/{tok:nopush}", NULL, NULL, 404, F_NONE),
	R("GET", "/c/{tok:nodeal}", NULL, NULL, 404, F_NONE),
	R("GET", "/c/{tok:notpush}", NULL, NULL, 404, F_NONE),
	R("GET", "/c/{tok}/x", NULL, NULL, 404, F_NONE),
	R("GET", "/c/{tok}=", NULL, NULL, 404, F_NONE),
	R("GET", "/c/{tok}%20", NULL, NULL, 404, F_NONE),
	R("GET", "/c/{a:300}", NULL, NULL, 404, F_NONE),
	R("GET", "/c/not-a-token", NULL, NULL, 404, F_NONE),
	R("GET", "/c/", NULL, NULL, 404, F_NONE),
	R("GET", "/c", NULL, NULL, 404, F_NONE),
	R("GET", "/c?t={tok}", NULL, NULL, 404, F_NONE),
	R("HEAD", "/c/{tok:flip}", NULL, NULL, 404, F_RAW),
	R("GET", "/c/{tok:flip}", JSON, "@big", 413, F_RAW),
	R("POST", "/c/{tok}", JSON, "{}", 405, "method"),
	R("DELETE", "/c/{tok}", NULL, NULL, 405, "method"),
	R("GET", "/cc/{tok}", NULL, NULL, 404, "path"),
	/* Request lines and headers libevent or the path check refuse. */
	R("RAW", "OPTIONS * HTTP/1.0\r\n\r\n", NULL, NULL, 400, "path"),
	R("RAW", "GET v1/rules HTTP/1.0\r\n\r\n", NULL, NULL, 400, "path"),
	R("RAW", "GET http://evil.example/v1/subscribers/s-1 HTTP/1.0\r\n\r\n", NULL, NULL,
	    401, F_NONE),
	R("RAW", "GET http://evil.example/c/{tok:flip} HTTP/1.0\r\n\r\n", NULL, NULL, 404,
	    F_NONE),
	R("RAW", "DELETE /v1/subscribers/s-1 HTTP/1.0\r\nAuthorization: Bearer " TOKEN
	    "\r\n{bighdr}\r\n", NULL, NULL, 400, F_RAW),
	R("RAW", "GET /healthz HTTP/1.0\r\n{bighdr}\r\n", NULL, NULL, 400, F_RAW),
	/* Over the cap in chunks: refused while reading. */
	R("RAW", "POST /v1/subscribers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	    "Authorization: Bearer " TOKEN "\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "10000\r\n{x:65536}\r\n10\r\n{x:16}\r\n0\r\n\r\n", NULL, NULL, 413, F_RAW),
	R("RAW", "POST /v1/subscribers HTTP/1.0\r\nAuthorization: Bearer " TOKEN "\r\n"
	    "Transfer-Encoding: chunked\r\nContent-Length: 11\r\n\r\n{\"id\":\"zz\"}", NULL,
	    NULL, 400, F_RAW),
	R("RAW", "POST /v1/subscribers HTTP/1.0\r\nAuthorization: Bearer " TOKEN "\r\n"
	    "Content-Length: -5\r\n\r\n" SUB_OK, NULL, NULL, 400, F_RAW),
	R("RAW", "POST /v1/subscribers HTTP/1.0\r\nAuthorization: Bearer " TOKEN "\r\n"
	    "Content-Length: abc\r\n\r\n" SUB_OK, NULL, NULL, 400, F_RAW),
	/*
	 * A Content-Length over the cap whose body never comes: answered 413 from the
	 * head alone, before any of the body is read, and closed (docs/http.md).
	 */
	R("RAW", "PUT /v1/subscribers/s-1 HTTP/1.0\r\nAuthorization: Bearer " TOKEN "\r\n"
	    "Content-Length: 99999999999999999999\r\n\r\n" SUB1_OK, NULL, NULL, 413, "body"),
	/* An unknown method: libevent's 501, the answer RFC 9110 section 9.1 asks for. */
	R("RAW", "BREW /healthz HTTP/1.0\r\n\r\n", NULL, NULL, 501, F_RAW),
	R("RAW", "GET /healthz HTTP/9.9\r\n\r\n", NULL, NULL, 400, F_RAW),
	R("RAW", "GET /healthz\r\n\r\n", NULL, NULL, 400, F_RAW),
};

/* The admin routes with a body that would change state if it got through; each is
 * sent with every header of bad_auth and must get 401 and change nothing. */
static const struct { const char *method, *path, *body; } admin_ops[] = {
	{ "GET", "/v1/subscribers/s-1", NULL },
	{ "POST", "/v1/subscribers", SUB_OK },
	{ "PUT", "/v1/subscribers/s-1", SUB1_OK },
	{ "DELETE", "/v1/subscribers/s-1", NULL },
	{ "GET", "/v1/rules", NULL },
	{ "GET", "/v1/rules/promo", NULL },
	{ "PUT", "/v1/rules/promo", RULE_OK },
	{ "DELETE", "/v1/rules/promo", NULL },
	{ "POST", "/v1/deals/simulate", DEAL("\"expires_at\":{exp}") },
	{ "GET", "/v1/reports/deal/d-1", NULL },
	{ "GET", "/v1/nope", NULL },
	{ "PATCH", "/v1/subscribers/s-1", SUB1_OK },
};

static const char *const bad_auth[] = {
	"",
	"Authorization: Bearer " WRONG_TOKEN "\r\n",
	"Authorization: Bearer " TOKEN "x\r\n",
	"Authorization: Bearer " "hostile-admin-token-012345678" "\r\n",
	"Authorization: Bearer\r\n",
	"Authorization: Bearer \r\n",
	"Authorization: Basic " TOKEN "\r\n",
	"Authorization: " TOKEN "\r\n",
	"Authorization: BearerX " TOKEN "\r\n",
	"X-Authorization: Bearer " TOKEN "\r\n",
	"Cookie: token=" TOKEN "\r\n",
};

/* ---- the fixture -------------------------------------------------------------- */

struct fx {
	redisContext *rc;
	struct it_gwsim gw;
	struct it_notifier nt;
	struct it_proc redis;
	int port, http;
	char tok[CLICKTOK_MAX + 1];       /* a valid click token for s-1's push */
	char push[CLICKTOK_ID_MAX + 1];   /* the push it names */
	char dir[512];
};

static int
setup(void **state)
{
	*state = calloc(1, sizeof(struct fx));
	return *state == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	int rv = it_stop_clean(&f->nt.proc);

	it_stop(&f->gw.proc, SIGTERM, 2000);
	it_stop(&f->redis, SIGKILL, 2000);
	if (f->rc != NULL)
		redisFree(f->rc);
	free(f);
	return rv;
}

/* ---- a growable string -------------------------------------------------------- */

struct buf {
	char *p;
	size_t n, cap;
};

static void
buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->n + n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		assert_non_null(b->p);
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void
buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void
buf_fmt(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
buf_fmt(struct buf *b, const char *fmt, ...)
{
	char tmp[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof(tmp));
	buf_add(b, tmp, (size_t)n);
}

/* Appends a Redis string escaped, so that the listing is one line per item. */
static void
buf_quoted(struct buf *b, const char *s, size_t n)
{
	size_t i;

	buf_str(b, "\"");
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\')
			buf_fmt(b, "\\x%02x", c);
		else
			buf_add(b, (const char *)&c, 1);
	}
	buf_str(b, "\"");
}

/* ---- the Redis listing -------------------------------------------------------- */

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Items i, i + step, ... of an array reply as quoted strings, sorted when sort. */
static void
list_items(struct buf *b, const redisReply *r, size_t step, int sort, const char *skip)
{
	char **v = calloc(r->elements + 1, sizeof(*v));
	size_t i, j, n = 0;

	assert_non_null(v);
	for (i = 0; i < r->elements; i += step) {
		struct buf item = { NULL, 0, 0 };

		if (skip != NULL && r->element[i]->type == REDIS_REPLY_STRING &&
		    strncmp(r->element[i]->str, skip, strlen(skip)) == 0)
			continue;
		for (j = i; j < i + step && j < r->elements; j++) {
			buf_str(&item, j > i ? " = " : "  ");
			buf_quoted(&item, r->element[j]->str ? r->element[j]->str : "",
			    r->element[j]->len);
		}
		buf_str(&item, "\n");
		v[n++] = item.p;
	}
	if (sort)
		qsort(v, n, sizeof(*v), str_cmp);
	for (i = 0; i < n; i++) {
		buf_str(b, v[i]);
		free(v[i]);
	}
	free(v);
}

/* The whole dataset, minus what changes by itself (see the top of the file). */
static char *
snapshot(redisContext *rc)
{
	struct buf b = { NULL, 0, 0 };
	redisReply *keys = redisCommand(rc, "KEYS *"), *t, *r;
	char **names;
	size_t i, j;

	assert_true(keys != NULL && keys->type == REDIS_REPLY_ARRAY);
	names = calloc(keys->elements + 1, sizeof(*names));
	assert_non_null(names);
	for (i = 0; i < keys->elements; i++)
		names[i] = keys->element[i]->str;
	qsort(names, keys->elements, sizeof(*names), str_cmp);
	buf_str(&b, "");
	for (i = 0; i < keys->elements; i++) {
		const char *k = names[i];
		long long ttl;

		t = redisCommand(rc, "TYPE %s", k);
		assert_true(t != NULL && t->type == REDIS_REPLY_STATUS);
		ttl = it_int(rc, "PTTL %s", k);
		buf_quoted(&b, k, strlen(k));
		buf_fmt(&b, " %s%s\n", t->str, ttl >= 0 ? " ttl" : "");
		if (strcmp(t->str, "string") == 0) {
			r = redisCommand(rc, "GET %s", k);
			if (r != NULL && r->type == REDIS_REPLY_STRING) {
				buf_str(&b, "  ");
				buf_quoted(&b, r->str, r->len);
				buf_str(&b, "\n");
			}
		} else if (strcmp(t->str, "hash") == 0) {
			r = redisCommand(rc, "HGETALL %s", k);
			list_items(&b, r, 2, 1, strcmp(k, "stats") == 0 ? "hook:" :
			    strcmp(k, "dealpush:formats") == 0 ? "reader:" : NULL);
		} else if (strcmp(t->str, "set") == 0) {
			r = redisCommand(rc, "SMEMBERS %s", k);
			list_items(&b, r, 1, 1, NULL);
		} else if (strcmp(t->str, "zset") == 0) {
			r = redisCommand(rc, "ZRANGE %s 0 -1 WITHSCORES", k);
			list_items(&b, r, 2, 0, NULL);
		} else if (strcmp(t->str, "list") == 0) {
			r = redisCommand(rc, "LRANGE %s 0 -1", k);
			list_items(&b, r, 1, 0, NULL);
		} else if (strcmp(t->str, "stream") == 0) {
			/* Entries only: group bookkeeping moves as consumers read. */
			r = redisCommand(rc, "XRANGE %s - +", k);
			assert_true(r != NULL && r->type == REDIS_REPLY_ARRAY);
			for (j = 0; j < r->elements; j++) {
				buf_str(&b, "  ");
				buf_quoted(&b, r->element[j]->element[0]->str,
				    r->element[j]->element[0]->len);
				buf_str(&b, "\n");
				list_items(&b, r->element[j]->element[1], 2, 0, NULL);
			}
		} else {
			r = NULL;
			buf_str(&b, "  (not listed)\n");
		}
		freeReplyObject(r);
		freeReplyObject(t);
	}
	free(names);
	freeReplyObject(keys);
	return b.p;
}

/* The first line where a and b differ and the last key line both share, for the
 * report (static buffer). */
static const char *
first_diff(const char *a, const char *b)
{
	static char out[1024];
	const char *line = a, *key = "(none)";
	size_t i;

	for (i = 0; a[i] != '\0' && a[i] == b[i]; i++) {
		if (a[i] != '\n')
			continue;
		if (*line == '"')
			key = line;
		line = a + i + 1;
	}
	snprintf(out, sizeof(out), "after key %.*s: before [%.*s] after [%.*s]",
	    (int)strcspn(key, "\n"), key, (int)strcspn(line, "\n"), line,
	    (int)strcspn(b + (line - a), "\n"), b + (line - a));
	return out;
}

/* ---- HTTP ----------------------------------------------------------------------- */

struct resp {
	int status;             /* -1: no answer */
	char raw[RESP_MAX];
	const char *body;
	size_t got;
};

static struct resp resp;

/* Sends len bytes of req to the notifier and reads the answer until it closes. */
static int
send_raw(int port, const char *req, size_t len, struct resp *out)
{
	struct timeval tv = { 20, 0 };
	struct sockaddr_in sa;
	size_t off = 0;
	ssize_t n;
	int fd;
	char *b;

	out->status = -1;
	out->raw[0] = '\0';
	out->body = out->raw;
	out->got = 0;
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	/* The server may answer (413) and close before it has read everything. */
	while (off < len && (n = send(fd, req + off, len - off, MSG_NOSIGNAL)) > 0)
		off += (size_t)n;
	while (out->got + 1 < sizeof(out->raw) && (n = read(fd, out->raw + out->got,
	    sizeof(out->raw) - 1 - out->got)) > 0)
		out->got += (size_t)n;
	out->raw[out->got] = '\0';
	close(fd);
	if (sscanf(out->raw, "HTTP/%*s %d", &out->status) != 1)
		out->status = -1;
	if ((b = strstr(out->raw, "\r\n\r\n")) != NULL)
		out->body = b + 4;
	else
		out->body = out->raw + out->got;
	return out->status;
}

/* 1 when the answer carries header name. */
static int
has_header(const struct resp *r, const char *name)
{
	const char *end = strstr(r->raw, "\r\n\r\n"), *p = r->raw;
	size_t n = strlen(name);

	while ((p = strstr(p, "\r\n")) != NULL && (end == NULL || p < end)) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':')
			return 1;
	}
	return 0;
}

/* ---- building requests ---------------------------------------------------------- */

/* A click token for push signed with key (static buffer). */
static const char *
make_token(const char *key, const char *push)
{
	static char tok[CLICKTOK_MAX + 1];

	assert_int_equal(clicktok_make((const unsigned char *)key, strlen(key), push, tok,
	    sizeof(tok)), 0);
	return tok;
}

/* 1 when [p, end) names a placeholder of expand(). */
static int
is_placeholder(const char *p, const char *end)
{
	static const char *const names[] = { "tok", "tok:flip", "tok:cut", "tok:ext",
		"tok:case", "tok:other", "tok:nopush", "tok:nodeal", "tok:notpush", "bighdr",
		"now", "exp" };
	size_t n = (size_t)(end - p), i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && strncmp(p, names[i], n) == 0)
			return 1;
	if (n < 3 || p[1] != ':')
		return 0;
	for (i = 2; i < n; i++)
		if (p[i] < '0' || p[i] > '9')
			return 0;
	return 1;
}

/* Appends s with its {placeholders} replaced:
 *   {tok}          the valid click token of s-1's push
 *   {tok:flip}     ... with one character in the middle changed
 *   {tok:cut}      ... without its last character
 *   {tok:ext}      ... with one more character
 *   {tok:case}     ... with its letters' case swapped
 *   {tok:other}    the same push signed with another secret
 *   {tok:nopush}   a token signed with our secret for a push that was never sent
 *   {tok:nodeal}   ... for s-1 on a deal entry that does not exist
 *   {tok:notpush}  ... for a string that is not a push id
 *   {bighdr}       a 9000-byte header line
 *   {now}          the notifier's clock in seconds
 *   {exp}          an hour after it
 *   {c:N}          N times the character c
 * Any other brace is copied (JSON bodies are expanded too).
 */
static void
expand(struct fx *f, struct buf *b, const char *s)
{
	char name[64], tmp[CLICKTOK_MAX + 2];
	const char *op, *cl;
	size_t n, i;

	while ((op = strchr(s, '{')) != NULL && (cl = strchr(op, '}')) != NULL) {
		buf_add(b, s, (size_t)(op - s));
		if ((size_t)(cl - op) >= sizeof(name) || !is_placeholder(op + 1, cl)) {
			buf_add(b, op, 1);          /* JSON, not ours */
			s = op + 1;
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(cl - op - 1), op + 1);
		s = cl + 1;
		snprintf(tmp, sizeof(tmp), "%s", f->tok);
		n = strlen(tmp);
		if (strcmp(name, "tok") == 0) {
			buf_str(b, tmp);
		} else if (strcmp(name, "tok:flip") == 0) {
			tmp[n / 2] = tmp[n / 2] == 'A' ? 'B' : 'A';
			buf_str(b, tmp);
		} else if (strcmp(name, "tok:cut") == 0) {
			tmp[n - 1] = '\0';
			buf_str(b, tmp);
		} else if (strcmp(name, "tok:ext") == 0) {
			buf_str(b, tmp);
			buf_str(b, "A");
		} else if (strcmp(name, "tok:case") == 0) {
			for (i = 0; i < n; i++)
				if (tmp[i] >= 'a' && tmp[i] <= 'z')
					tmp[i] = (char)(tmp[i] - 'a' + 'A');
				else if (tmp[i] >= 'A' && tmp[i] <= 'Z')
					tmp[i] = (char)(tmp[i] - 'A' + 'a');
			buf_str(b, tmp);
		} else if (strcmp(name, "tok:other") == 0) {
			buf_str(b, make_token(OTHER_SECRET, f->push));
		} else if (strcmp(name, "tok:nopush") == 0) {
			buf_str(b, make_token(CLICK_SECRET, "1-0:s-9:sms"));
		} else if (strcmp(name, "tok:nodeal") == 0) {
			buf_str(b, make_token(CLICK_SECRET, "1-0:s-1:sms"));
		} else if (strcmp(name, "tok:notpush") == 0) {
			buf_str(b, make_token(CLICK_SECRET, "../../stats"));
		} else if (strcmp(name, "bighdr") == 0) {
			buf_str(b, "X-Pad: ");
			for (i = 0; i < 9000; i++)
				buf_str(b, "p");
			buf_str(b, "\r\n");
		} else if (strcmp(name, "now") == 0) {
			buf_fmt(b, "%lld", it_now());
		} else if (strcmp(name, "exp") == 0) {
			buf_fmt(b, "%lld", it_now() + 3600);
		} else if (strlen(name) > 2 && name[1] == ':') {
			long k = strtol(name + 2, NULL, 10);

			for (i = 0; i < (size_t)k; i++)
				buf_add(b, name, 1);
		} else {
			fail_msg("unknown placeholder {%s}", name);
		}
	}
	buf_str(b, s);
}

/* A generated body (@name), or the row's own. */
static void
gen_body(struct fx *f, const struct row *rw, struct buf *b)
{
	size_t i;

	if (rw->body == NULL)
		return;
	if (strcmp(rw->body, "@big") == 0) {
		for (i = 0; i < BIG_LEN; i++)
			buf_add(b, "x", 1);
	} else if (strcmp(rw->body, "@deep") == 0) {
		buf_str(b, "{\"id\":\"s-9\",\"x\":");
		for (i = 0; i < 5000; i++)
			buf_str(b, "[");
		for (i = 0; i < 5000; i++)
			buf_str(b, "]");
		buf_str(b, "}");
	} else if (strcmp(rw->body, "@over16k") == 0) {
		/* A valid subscriber over 16 KiB but under the 64 KiB body cap. */
		buf_str(b, "{\"id\":\"s-9\",\"phone\":\"+15125550199\",\"channels\":[\"sms\"],"
		    "\"timezone\":\"America/Chicago\",\"tags\":[");
		for (i = 0; i < 400; i++)
			buf_fmt(b, "%s\"tag-%03zu-%s\"", i ? "," : "", i,
			    "padpadpadpadpadpadpadpadpadpadpadpadpad");
		buf_str(b, "]}");
	} else if (strcmp(rw->body, "@manyparams") == 0) {
		buf_str(b, "From=%2B15125550101&Body=STOP");
		for (i = 0; i < 300; i++)
			buf_fmt(b, "&p%zu=1", i);
	} else if (rw->len > 0) {
		buf_add(b, rw->body, rw->len);
	} else {
		expand(f, b, rw->body);
	}
}

static int
hexdigit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes a form field in place ('+' is a space); bad escapes are kept. */
static void
form_decode(char *s)
{
	char *w = s;
	int hi, lo;

	for (; *s != '\0'; s++) {
		if (*s == '+') {
			*w++ = ' ';
		} else if (*s == '%' && (hi = hexdigit((unsigned char)s[1])) >= 0 &&
		    (lo = hexdigit((unsigned char)s[2])) >= 0 && (hi | lo) != 0) {
			*w++ = (char)(hi << 4 | lo);
			s += 2;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/* Appends the signature headers for the row's sign to b. */
static void
sign_headers(const struct row *rw, const char *path, const char *body, size_t len,
    struct buf *b)
{
	static const char digits[] = "0123456789abcdef";
	struct twsig_param p[TWSIG_PARAMS_MAX];
	char *form, *tok, *next, url[4096], sig[64], hex[65];
	unsigned char mac[64];
	size_t n = 0, maclen = 0, i;
	long long ts = it_now();
	struct buf msg = { NULL, 0, 0 };
	const char *key;

	switch (rw->sign) {
	case S_NONE:
		return;
	case S_TW:
	case S_TW_KEY:
	case S_TW_HOST:
		form = strndup(body, len);
		assert_non_null(form);
		for (tok = form; tok != NULL && n < TWSIG_PARAMS_MAX; tok = next) {
			char *eq;

			if ((next = strchr(tok, '&')) != NULL)
				*next++ = '\0';
			if ((eq = strchr(tok, '=')) == NULL)
				continue;
			*eq = '\0';
			form_decode(tok);
			form_decode(eq + 1);
			p[n].name = tok;
			p[n++].value = eq + 1;
		}
		snprintf(url, sizeof(url), "%s%s", rw->sign == S_TW_HOST ?
		    "https://evil.example.test" : PUBLIC_URL,
		    rw->sign_path ? rw->sign_path : path);
		assert_int_equal(twsig_compute(rw->sign == S_TW_KEY ? "not-the-token" :
		    IT_AUTH_TOKEN, url, p, n, sig, sizeof(sig)), 0);
		free(form);
		buf_fmt(b, "X-Twilio-Signature: %s\r\n", sig);
		return;
	default:
		break;
	}
	if (rw->sign == S_DM_STALE)
		ts -= 600;
	else if (rw->sign == S_DM_FUTURE)
		ts += 600;
	key = rw->sign == S_DM_KEY ? "wrong-secret" : INBOUND_SECRET;
	buf_fmt(&msg, "%lld.", ts);
	buf_add(&msg, body, len);
	assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, strlen(key),
	    (const unsigned char *)msg.p, msg.n, mac, sizeof(mac), &maclen));
	free(msg.p);
	for (i = 0; i < 32; i++) {
		hex[2 * i] = digits[mac[i] >> 4];
		hex[2 * i + 1] = digits[mac[i] & 15];
	}
	hex[64] = '\0';
	buf_fmt(b, "X-Dealpush-Timestamp: %lld\r\nX-Dealpush-Signature: v1=%s\r\n", ts, hex);
}

/* Sends one row; the answer is in resp. */
static int
send_row(struct fx *f, const struct row *rw)
{
	struct buf req = { NULL, 0, 0 }, path = { NULL, 0, 0 }, body = { NULL, 0, 0 };
	int st;

	if (strcmp(rw->method, "RAW") == 0) {
		expand(f, &req, rw->path);
	} else {
		expand(f, &path, rw->path);
		gen_body(f, rw, &body);
		buf_fmt(&req, "%s ", rw->method);
		buf_str(&req, path.p);
		buf_str(&req, " HTTP/1.0\r\nHost: 127.0.0.1\r\n");
		if (rw->hdrs != NULL)
			expand(f, &req, rw->hdrs);
		sign_headers(rw, path.p, body.p ? body.p : "", body.n, &req);
		if (rw->body != NULL)
			buf_fmt(&req, "Content-Length: %zu\r\n", body.n);
		buf_str(&req, "\r\n");
		if (body.n > 0)
			buf_add(&req, body.p, body.n);
	}
	st = send_raw(f->http, req.p, req.n, &resp);
	free(req.p);
	free(path.p);
	free(body.p);
	return st;
}

/* What is wrong with the answer to rw ("" when nothing). */
static const char *
check_answer(const struct row *rw)
{
	static char why[512];
	cJSON *j = NULL, *e, *fl;

	why[0] = '\0';
	if (resp.status != rw->status) {
		snprintf(why, sizeof(why), "status %d, want %d", resp.status, rw->status);
	} else if (has_header(&resp, "Location")) {
		snprintf(why, sizeof(why), "answer has a Location header");
	} else if (rw->field != F_RAW) {
		j = cJSON_Parse(resp.body);
		e = cJSON_GetObjectItemCaseSensitive(j, "error");
		fl = cJSON_GetObjectItemCaseSensitive(j, "field");
		if (!cJSON_IsObject(j) || !cJSON_IsString(e) || e->valuestring[0] == '\0')
			snprintf(why, sizeof(why), "not a JSON error");
		else if (rw->field[0] == '\0' && fl != NULL)
			snprintf(why, sizeof(why), "field %s, want none",
			    cJSON_IsString(fl) ? fl->valuestring : "(not a string)");
		else if (rw->field[0] != '\0' && (!cJSON_IsString(fl) ||
		    strcmp(fl->valuestring, rw->field) != 0))
			snprintf(why, sizeof(why), "field %s, want %s",
			    cJSON_IsString(fl) ? fl->valuestring : "(none)", rw->field);
	}
	cJSON_Delete(j);
	return why;
}

/* Runs rw, compares the dataset around it; prints and counts what is wrong. */
static int
run_row(struct fx *f, const struct row *rw, const char *label, char **before)
{
	const char *why;
	char *after;
	int bad = 0;

	send_row(f, rw);
	why = check_answer(rw);
	if (why[0] != '\0') {
		print_message("FAIL %s: %s: %.300s\n", label, why, resp.raw);
		bad = 1;
	}
	after = snapshot(f->rc);
	if (strcmp(*before, after) != 0) {
		print_message("FAIL %s: changed Redis %s\n", label, first_diff(*before,
		    after));
		bad = 1;
	}
	free(*before);
	*before = after;
	return bad;
}

/* ---- start-up ------------------------------------------------------------------- */

struct get_ok {
	struct fx *f;
	const struct row *rw;
	const char *want;
};

static int
answers(void *arg)
{
	struct get_ok *g = arg;

	return send_row(g->f, g->rw) == g->rw->status &&
	    (g->want == NULL || strstr(resp.body, g->want) != NULL);
}

struct sent {
	redisContext *rc;
	long long n;
};

static int
sent_reached(void *arg)
{
	struct sent *s = arg;

	return it_outcomes(s->rc, "sent") >= s->n;
}

/* The long click token of the push whose text gwsim got for phone: the text holds
 * a short link, whose code names the push (link:<code>); the token is the one a push
 * sent before short links carried, and the /c/ route still takes. */
static void
token_for(struct fx *f, const char *phone)
{
	cJSON *reqs = it_gwsim_requests(&f->gw), *o;
	static const char pfx[] = PUBLIC_URL "/c/";

	f->tok[0] = '\0';
	cJSON_ArrayForEach(o, reqs) {
		cJSON *b = cJSON_GetObjectItem(o, "body"), *to = cJSON_GetObjectItem(o, "to");
		const char *c;

		if (!cJSON_IsString(b) || !cJSON_IsString(to) ||
		    strcmp(to->valuestring, phone) != 0 ||
		    (c = strstr(b->valuestring, pfx)) == NULL)
			continue;
		c += strlen(pfx);
		snprintf(f->tok, sizeof(f->tok), "%.*s", (int)strspn(c,
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"), c);
	}
	cJSON_Delete(reqs);
	assert_int_equal(strlen(f->tok), 12);
	{
		char key[KEYS_MAX];
		uint32_t k = 0;
		redisReply *r;

		/* link:<code> is in the shard the code names (shortlink.h). */
		assert_int_equal(shortlink_check((const unsigned char *)CLICK_SECRET,
		    strlen(CLICK_SECRET), f->tok, strlen(f->tok), keys_shards(), &k), 1);
		keys_per(k, KEYS_LINK, f->tok, key, sizeof(key));
		r = redisCommand(f->rc, "GET %s", key);

		assert_true(r != NULL && r->type == REDIS_REPLY_STRING);
		snprintf(f->push, sizeof(f->push), "%s", r->str);
		freeReplyObject(r);
	}
	snprintf(f->tok, sizeof(f->tok), "%s", make_token(CLICK_SECRET, f->push));
	assert_int_equal(clicktok_parse((const unsigned char *)CLICK_SECRET,
	    strlen(CLICK_SECRET), f->tok, f->push, sizeof(f->push)), 0);
}

/*
 * A private redis, three subscribers (s-3 also on DM, X user 4242), gwsim, and a
 * notifier with every HTTP feature on: admin token, public URL (Twilio webhooks and
 * click links), inbound secret, click secret, an empty rule folder. One deal sent to
 * all three, an API rule, a click counted; the signers and the token are shown to
 * work by answers that change nothing (HELP by SMS and DM, a status callback for an
 * unknown push).
 */
static void
start(struct fx *f)
{
	static const char subs[] =
	    "{\"id\":\"s-1\",\"phone\":\"" PHONE1 "\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n"
	    "{\"id\":\"s-2\",\"phone\":\"" PHONE2 "\",\"channels\":[\"sms\"],"
	    "\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n"
	    "{\"id\":\"s-3\",\"phone\":\"" PHONE3 "\",\"dm\":{\"x\":\"4242\"},"
	    "\"channels\":[\"sms\",\"dm\"],\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\","
	    "\"dm\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\","
	    "\"interests\":{\"categories\":[\"laptop\"]}}\n";
	static const struct row health = R("GET", "/healthz", NULL, NULL, 200, F_RAW);
	static const struct row rules = R("GET", "/v1/rules", AUTH, NULL, 200, F_RAW);
	static const struct row put_rule = R("PUT", "/v1/rules/promo", AUTH,
	    "rule promo\n  audience interested\n  send sms\n"
	    "  template sms \"PROMO {title} {link} Reply STOP to end\"\nend\n", 201, F_RAW);
	static const struct row click = R("GET", "/c/{tok}", NULL, NULL, 302, F_RAW);
	static const struct row help_sms = RS("POST", "/hooks/twilio/inbound", FORM,
	    "MessageSid=SM9&From=%2B15125550101&To=%2B15005550006&Body=HELP", S_TW, 200,
	    F_RAW);
	static const struct row help_dm = RS("POST", "/hooks/inbound/x-dm", JSON,
	    "{\"dm_user_id\":\"4242\",\"text\":\"help\"}", S_DM, 200, F_RAW);
	static const struct row unknown_push = RS("POST",
	    "/hooks/twilio/status?push=1-0%3As-9%3Asms", FORM, STATUS_FORM, S_TW, 204, F_RAW);
	char extra[2048], secret[512], rdir[512], deal[512];
	struct get_ok g = { f, NULL, NULL };
	struct sent s = { NULL, 3 };
	FILE *fp;

	it_path(f->dir, sizeof(f->dir), "redis-hostile", "");
	f->port = it_redis_start(&f->redis, f->dir, 0, 0);
	assert_true(f->port > 0);
	f->rc = it_redis_connect(f->port);
	assert_int_equal(it_import(f->port, subs), 0);
	assert_int_equal(it_gwsim_start(&f->gw, NULL), 0);
	it_path(secret, sizeof(secret), "inbound", ".secret");
	assert_non_null(fp = fopen(secret, "w"));
	fputs(INBOUND_SECRET "\n", fp);
	fclose(fp);
	it_path(rdir, sizeof(rdir), "hostile-rules", "");
	assert_int_equal(mkdir(rdir, 0700), 0);
	setenv("DP_TEST_ADMIN_TOKEN", TOKEN, 1);
	setenv("DP_TEST_CLICK_SECRET", CLICK_SECRET, 1);
	snprintf(extra, sizeof(extra), "admin_token_env = DP_TEST_ADMIN_TOKEN\n"
	    "public_url = " PUBLIC_URL "\ninbound_secret_file = %s\n"
	    "click_secret_env = DP_TEST_CLICK_SECRET\n[rules]\ndir = %s\n", secret, rdir);
	f->http = it_notifier_start_http(&f->nt, f->port, f->gw.port, "it-hostile", extra);
	assert_true(f->http > 0);

	/* Healthy, the API rules loaded once, the mirror filled. */
	g.rw = &health;
	g.want = "\"ok\"";
	assert_true(it_wait(answers, &g, 20000));
	g.rw = &rules;
	g.want = "\"api_version\":\"";
	assert_true(it_wait(answers, &g, 20000));
	it_sleep_ms(300);

	snprintf(deal, sizeof(deal), "{\"id\": \"d-1\", \"title\": \"Hostile\", "
	    "\"category\": \"laptop\", \"url\": \"https://shop.example/d/d-1\", "
	    "\"campaign\": \"spring\", \"expires_at\": %lld}", it_now() + 3600);
	assert_int_equal(it_publish(f->rc, deal), 0);
	s.rc = f->rc;
	assert_true(it_wait(sent_reached, &s, 20000));
	token_for(f, PHONE1);

	assert_int_equal(send_row(f, &put_rule), 201);
	assert_int_equal(send_row(f, &click), 302);
	assert_true(has_header(&resp, "Location"));
	assert_int_equal(send_row(f, &help_sms), 200);
	assert_non_null(strstr(resp.body, "<Message>"));
	assert_int_equal(send_row(f, &help_dm), 200);
	assert_non_null(strstr(resp.body, "\"help\""));
	assert_int_equal(send_row(f, &unknown_push), 204);
}

/* The dataset once two listings 1.2 s apart agree: what start() caused has all
 * landed, however slow the machine, including the once-a-second trim of acked jobs
 * from "pushes" (a tick always falls between the two). */
static char *
settled_snapshot(redisContext *rc)
{
	char *prev = snapshot(rc), *cur;
	int i;

	for (i = 0; i < 50; i++) {
		it_sleep_ms(1200);
		cur = snapshot(rc);
		if (strcmp(prev, cur) == 0) {
			free(prev);
			return cur;
		}
		free(prev);
		prev = cur;
	}
	fail_msg("the dataset did not settle in 60 s");
	return prev;
}

/* ---- the tests ------------------------------------------------------------------ */

/* Runs n rows of t after start(), then checks nothing changed late, the notifier is
 * alive and healthy and gwsim saw nothing new. Returns the number of failures. */
static int
sweep(struct fx *f, const struct row *t, size_t n, int with_auth)
{
	char label[256], *baseline, *before, *after, path[512];
	int bad = 0, gw_before, status;
	size_t i, j;
	FILE *fp;

	gw_before = it_gwsim_count(&f->gw, 0);
	baseline = settled_snapshot(f->rc);
	/* Kept for whoever reads a failure: what "the whole dataset" was. */
	it_path(path, sizeof(path), "hostile-baseline", ".txt");
	if ((fp = fopen(path, "w")) != NULL) {
		fputs(baseline, fp);
		fclose(fp);
	}
	before = strdup(baseline);
	assert_non_null(before);
	for (i = 0; i < n; i++) {
		snprintf(label, sizeof(label), "row %zu (%s %.80s%s)", i, t[i].method,
		    t[i].path, t[i].body != NULL && t[i].body[0] == '@' ? t[i].body : "");
		bad += run_row(f, &t[i], label, &before);
	}
	for (i = 0; with_auth && i < sizeof(admin_ops) / sizeof(admin_ops[0]); i++) {
		for (j = 0; j < sizeof(bad_auth) / sizeof(bad_auth[0]); j++) {
			struct row rw = R(admin_ops[i].method, admin_ops[i].path, bad_auth[j],
			    admin_ops[i].body, 401, F_NONE);

			snprintf(label, sizeof(label), "auth %zu.%zu (%s %s with %.*s)", i, j,
			    rw.method, rw.path, (int)strcspn(bad_auth[j], "\r"), bad_auth[j]);
			bad += run_row(f, &rw, label, &before);
		}
	}
	/* Anything written late, the notifier alive and healthy, nothing sent. */
	it_sleep_ms(1000);
	after = snapshot(f->rc);
	if (strcmp(baseline, after) != 0) {
		print_message("FAIL after the sweep: changed Redis %s\n",
		    first_diff(baseline, after));
		bad++;
	}
	assert_int_equal(waitpid(f->nt.proc.pid, &status, WNOHANG), 0);
	assert_int_equal(it_http_get(f->http, "/healthz", resp.raw, sizeof(resp.raw)), 200);
	assert_int_equal(it_gwsim_count(&f->gw, 0), gw_before);
	free(baseline);
	free(before);
	free(after);
	return bad;
}

static void
hostile_requests_to_every_endpoint_get_a_4xx_and_change_nothing(void **state)
{
	struct fx *f = *state;

	start(f);
	assert_int_equal(sweep(f, rows, sizeof(rows) / sizeof(rows[0]), 1), 0);
}

/*
 * Two defects this sweep found, each kept as a test of its own: both failed before
 * the fix named in its comment.
 */
static const struct row query_nul_rows[] = {
	/* http_query() hands out the decoded value as a C string: "1%00" was read as
	 * "1" (200, a report priced at 1). http.c now refuses %00 in a query as in a
	 * path, naming the parameter. */
	R("GET", "/v1/reports/deal/d-1?segment_price=1%00", AUTH, NULL, 400,
	    "segment_price"),
	R("GET", "/v1/reports/deal/d-1?segment_price=1%00abc", AUTH, NULL, 400,
	    "segment_price"),
};

static void
query_values_with_an_encoded_nul_are_refused(void **state)
{
	struct fx *f = *state;

	start(f);
	assert_int_equal(sweep(f, query_nul_rows, sizeof(query_nul_rows) /
	    sizeof(query_nul_rows[0]), 0), 0);
}

static const struct row dm_json_rows[] = {
	/* hooks.c parsed with cJSON_ParseWithLength and none of the checks of
	 * deal_json_open() (docs/contracts.md): "\u0000" cut the id to "s-3", so s-3
	 * was opted out of DM (200, consent:dm changed) by a message naming "s-3\0x".
	 * It now reads the body with deal_json_open() and jv_check_unique(). */
	RS("POST", "/hooks/inbound/x-dm", JSON, "{\"subscriber_id\":\"s-3\\u0000x\","
	    "\"text\":\"STOP\"}", S_DM, 400, "body"),
	/* A member given twice: cJSON took the first ("help", 200), a relay whose
	 * parser takes the last meant STOP; a missed opt-out. */
	RS("POST", "/hooks/inbound/x-dm", JSON, "{\"subscriber_id\":\"s-2\",\"text\":"
	    "\"help\",\"text\":\"STOP\"}", S_DM, 400, "text"),
	/* Text after the object was ignored (200). */
	RS("POST", "/hooks/inbound/x-dm", JSON, "{\"subscriber_id\":\"s-2\",\"text\":"
	    "\"help\"} {\"text\":\"STOP\"}", S_DM, 400, "body"),
};

static void
signed_dm_bodies_with_nul_duplicates_or_trailing_text_are_refused(void **state)
{
	struct fx *f = *state;

	start(f);
	assert_int_equal(sweep(f, dm_json_rows, sizeof(dm_json_rows) /
	    sizeof(dm_json_rows[0]), 0), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
		    hostile_requests_to_every_endpoint_get_a_4xx_and_change_nothing, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(query_values_with_an_encoded_nul_are_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    signed_dm_bodies_with_nul_duplicates_or_trailing_text_are_refused, setup,
		    teardown),
	};

	if (getenv("DP_TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("DP_TEST_FILTER"));
	return cmocka_run_group_tests_name("hostile", tests, NULL, NULL);
}
