#!/usr/bin/env bash
# selftest.sh: checks the gateway simulator (gwsim) from the outside with curl.
#
# Starts gwsim on an ephemeral 127.0.0.1 port (--port 0 / --port-file), exercises every
# validation rule, auth, the faults, the control endpoint and the log lines, and ends
# with "gwsim selftest: N passed, M failed" (exit 1 when M > 0). It never leaves a
# gwsim running: the processes it starts are stopped by pid on exit.
#
# usage: tests/gwsim/selftest.sh [BUILD-DIR | path/to/gwsim]     (default: build)
# JSON validity of log lines is checked with python3 when it is installed.
set -u

GWSIM=${1:-${DP_BUILD:-build}}
[ -d "$GWSIM" ] && GWSIM=$GWSIM/gwsim
[ -x "$GWSIM" ] || { echo "gwsim selftest: no executable $GWSIM"; echo "gwsim selftest: 0 passed, 1 failed"; exit 1; }
HAVE_PY=0
command -v python3 >/dev/null 2>&1 && HAVE_PY=1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gwsim-selftest.XXXXXX")
PIDS=()
PASS=0
FAIL=0

SID=ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
OTHER_SID=ACbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb
MG=MGcccccccccccccccccccccccccccccccc
TOKEN=test-auth-token
BEARER=test-user-token
APPBEARER=test-bearer-token
SECRET=test-webhook-secret
LOG=$WORK/gw.log

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

ok() { PASS=$((PASS + 1)); }
bad() { FAIL=$((FAIL + 1)); echo "FAIL: $*" >&2; }
check() { # name expected actual
	if [ "$2" == "$3" ]; then ok; else bad "$1: want [$2] got [$3]"; fi
}
contains() { # name haystack needle
	case "$2" in *"$3"*) ok ;; *) bad "$1: [$3] not in [${2:0:400}]" ;; esac
}
lacks() { # name haystack needle
	case "$2" in *"$3"*) bad "$1: [$3] unexpectedly in [${2:0:400}]" ;; *) ok ;; esac
}

# start_gwsim <portfile> <log> [flags...]: starts one gwsim, sets GPID and GPORT.
start_gwsim() {
	local pf=$1 log=$2 i
	shift 2
	"$GWSIM" --port 0 --port-file "$pf" --log "$log" "$@" >"$pf.out" 2>"$pf.err" &
	GPID=$!
	PIDS+=("$GPID")
	for i in $(seq 1 100); do
		[ -s "$pf" ] && break
		sleep 0.05
	done
	GPORT=$(cat "$pf" 2>/dev/null)
	[ -n "$GPORT" ] || { echo "gwsim did not start: $(cat "$pf.err")" >&2; exit 1; }
}

stop_gwsim() { # pid: SIGTERM, expect exit 0
	local rc
	kill -TERM "$1"
	wait "$1"
	rc=$?
	check "clean exit on SIGTERM" 0 "$rc"
}

# req <curl args...>: one request; sets CODE, BODY, HDRS and LAST (its log line).
NREQ=0
req() {
	local before
	before=$(wc -l <"$LOG" 2>/dev/null || echo 0)
	CODE=$(curl -s -o "$WORK/body" -D "$WORK/hdrs" -w '%{http_code}' --max-time 5 "$@")
	CURLRC=$?
	NREQ=$((NREQ + 1))
	BODY=$(cat "$WORK/body" 2>/dev/null)
	HDRS=$(tr -d '\r' <"$WORK/hdrs" 2>/dev/null)
	LAST=$(sed -n "$((before + 1))p" "$LOG")
}

tw_url() { echo "http://127.0.0.1:$PORT/2010-04-01/Accounts/${1:-$SID}/Messages.json"; }
# tw <form fields...>: authenticated Twilio send, each field "Key=value" (url-encoded by curl)
tw() {
	local a=() f
	for f in "$@"; do a+=(--data-urlencode "$f"); done
	req -u "$SID:$TOKEN" "${a[@]}" "$(tw_url)"
}
tw_err() { # name status code [fields...]
	local name=$1 st=$2 cd=$3
	shift 3
	tw "$@"
	check "$name: status" "$st" "$CODE"
	contains "$name: code" "$BODY" "\"code\":$cd,"
	contains "$name: log code" "$LAST" "\"code\":$cd,"
	contains "$name: log status" "$LAST" "\"status\":$st,"
}
dm() { # participant json [extra curl args]
	local p=$1 j=$2
	shift 2
	req -H "Authorization: Bearer $BEARER" -H 'Content-Type: application/json' \
	    --data-binary "$j" "$@" "http://127.0.0.1:$PORT/2/dm_conversations/with/$p/messages"
}
faults() { req -H 'Content-Type: application/json' --data-binary "$1" "http://127.0.0.1:$PORT/_sim/faults"; }
hook() { # key ts body [sig]
	local sig=${4:-}
	[ -n "$sig" ] || sig="v1=$(printf '%s.%s' "$2" "$3" | openssl dgst -sha256 -hmac "$SECRET" -r | cut -d' ' -f1)"
	req -H "Idempotency-Key: $1" -H "X-Dealpush-Timestamp: $2" -H "X-Dealpush-Signature: $sig" \
	    -H 'Content-Type: application/json' --data-binary "$3" "http://127.0.0.1:$PORT/webhook"
}

# ---------------------------------------------------------------------------------
# command line
"$GWSIM" --log "$WORK/x.log" >/dev/null 2>"$WORK/err"; rc=$?
check "missing --port exits 2" 2 "$rc"; contains "missing --port named" "$(cat "$WORK/err")" "--port"
for bad_args in "--port 70000" "--port x" "--fail-rate 2" "--fail-rate nan" "--latency-ms -1" \
    "--account-sid ACxyz" "--answer +1512" "--answer +1512=7" "--seed -3" "--bogus 1" \
    "--deliver +15125550100=failed" "--callback-delay-ms 10" \
    "--deliver +15125550100=bogus --status-callbacks" "--deliver 5125550100=sent --status-callbacks" \
    "--deliver +15125550100=delivered:30003 --status-callbacks" \
    "--deliver +15125550100=undelivered:3003 --status-callbacks" \
    "--callback-delay-ms -1 --status-callbacks" "--callback-delay-ms 60001 --status-callbacks"; do
	set -- $bad_args
	"$GWSIM" --port 0 --log "$WORK/x.log" "$@" >/dev/null 2>"$WORK/err"; rc=$?
	check "bad flag $bad_args exits 2" 2 "$rc"
	contains "bad flag $bad_args named" "$(cat "$WORK/err")" "$1"
done
"$GWSIM" --port 0 --log "$WORK/x.log" --port >/dev/null 2>&1; check "flag without value exits 2" 2 "$?"

start_gwsim "$WORK/port" "$LOG" --print --answer +15125550111=21610 --answer +15125550112=429 \
    --answer +15125550113=500 --answer +15125550114=503 --answer +15125550115=21211 \
    --answer 777=403 --answer 778=429 --answer s-gone=410
PORT=$GPORT
MAIN_PID=$GPID
contains "listening line" "$(cat "$WORK/port.out")" "gwsim listening port=$PORT"
check "port file has no tmp left" "no" "$([ -e "$WORK/port.tmp" ] && echo yes || echo no)"

# ---------------------------------------------------------------------------------
# twilio: success
LANDED=$(( $(date +%s%3N) - 250 ))
CB="http://127.0.0.1:9/hooks/twilio/status?push=$LANDED-0:s-1001:sms"
tw To=+15125550100 From=+15125550199 "Body=Deal: 20% off & more" "StatusCallback=$CB" ValidityPeriod=600
check "twilio 201" 201 "$CODE"
contains "twilio content type" "$HDRS" "Content-Type: application/json"
contains "twilio status queued" "$BODY" '"status":"queued"'
contains "twilio direction" "$BODY" '"direction":"outbound-api"'
contains "twilio api_version" "$BODY" '"api_version":"2010-04-01"'
contains "twilio num_segments string" "$BODY" '"num_segments":"1"'
contains "twilio account_sid" "$BODY" "\"account_sid\":\"$SID\""
contains "twilio body echoed" "$BODY" '"body":"Deal: 20% off & more"'
contains "twilio price null" "$BODY" '"price":null'
contains "twilio error_code null" "$BODY" '"error_code":null'
contains "twilio mss null" "$BODY" '"messaging_service_sid":null'
SMSID=$(printf '%s' "$BODY" | grep -o '"sid":"SM[0-9a-f]*"' | cut -d'"' -f4)
check "twilio sid shape" 34 "${#SMSID}"
contains "twilio uri" "$BODY" "\"uri\":\"/2010-04-01/Accounts/$SID/Messages/$SMSID.json\""
if printf '%s' "$BODY" | grep -Eq '"date_created":"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} \+0000"'; then ok; else bad "date_created RFC 2822: $BODY"; fi
contains "log gateway" "$LAST" '"gateway":"twilio"'
contains "log method" "$LAST" '"method":"POST"'
contains "log to" "$LAST" '"to":"+15125550100"'
contains "log from" "$LAST" '"from":"+15125550199"'
contains "log body" "$LAST" '"body":"Deal: 20% off & more"'
contains "log auth_ok" "$LAST" '"auth_ok":true'
contains "log validity" "$LAST" '"validity_period":600'
contains "log push" "$LAST" "\"push\":\"$LANDED-0:s-1001:sms\""
contains "log landed_ms" "$LAST" "\"landed_ms\":$LANDED,"
contains "log sid" "$LAST" "\"sid\":\"$SMSID\""
contains "log status_callback" "$LAST" "\"status_callback\":\"$CB\""
tw To=+15125550100 From=+15125550199 "Body=again"
SMSID2=$(printf '%s' "$BODY" | grep -o '"sid":"SM[0-9a-f]*"' | cut -d'"' -f4)
if [ -n "$SMSID2" ] && [ "$SMSID2" != "$SMSID" ]; then ok; else bad "sids unique"; fi
contains "no push -> null" "$LAST" '"push":null,"landed_ms":null'
tw To=+15125550100 "MessagingServiceSid=$MG" "Body=via service"
check "mss only 201" 201 "$CODE"
contains "mss echoed" "$BODY" "\"messaging_service_sid\":\"$MG\""
contains "from null" "$BODY" '"from":null'
req -u "$SID:$TOKEN" -d 'To=%2B15125550100&From=%2B15125550199&Body=a+b%20c%21' "$(tw_url)"
check "raw form 201" 201 "$CODE"
contains "plus is space, escapes decoded" "$LAST" '"body":"a b c!"'
tw To=+15125550100 From=+15125550199 "Body=$(printf 'ж%.0s' $(seq 1 1600))"
check "1600 code points (3200 bytes) accepted" 201 "$CODE"
contains "ucs-2 segments" "$BODY" '"num_segments":"24"'
tw To=+15125550100 From=+15125550199 "Body=$(printf 'é%.0s' $(seq 1 170))"
contains "gsm-7 latin segments" "$BODY" '"num_segments":"2"'
tw To=+15125550100 From=+15125550199 "Body=$(printf 'a%.0s' $(seq 1 161))"
contains "gsm segments" "$BODY" '"num_segments":"2"'
tw To=+15125550100 From=+15125550199 Body=x ValidityPeriod=36000
check "validity 36000 ok" 201 "$CODE"

# twilio: path and auth
req -u "$SID:$TOKEN" -d 'To=%2B15125550100&From=%2B15125550199&Body=x' "$(tw_url "$OTHER_SID")"
check "other sid 404" 404 "$CODE"; contains "other sid 20404" "$BODY" '"code":20404'
req -u "$SID:$TOKEN" -d 'To=%2B15125550100&From=%2B15125550199&Body=x' "$(tw_url ACnothex)"
check "bad sid pattern 404" 404 "$CODE"
req -u "$SID:$TOKEN" -d 'To=%2B15125550100' "http://127.0.0.1:$PORT/2010-04-01/Accounts/$SID/Calls.json"
check "other twilio resource 404" 404 "$CODE"
req -d 'To=%2B15125550100&From=%2B15125550199&Body=x' "$(tw_url)"
check "no auth 401" 401 "$CODE"
check "no auth body" '{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}' "$BODY"
contains "www-authenticate" "$HDRS" 'WWW-Authenticate: Basic realm="Twilio API"'
contains "log auth_ok false" "$LAST" '"auth_ok":false'
contains "log 401 still has fields" "$LAST" '"to":"+15125550100"'
req -u "$SID:wrong-token" -d 'To=%2B15125550100&From=%2B15125550199&Body=x' "$(tw_url)"
check "wrong token 401" 401 "$CODE"
req -H 'Authorization: Bearer test-auth-token' -d 'To=%2B15125550100&From=%2B15125550199&Body=x' "$(tw_url)"
check "wrong scheme 401" 401 "$CODE"
req -u "$SID:$TOKEN" -X PUT "$(tw_url)"
check "PUT Messages 405" 405 "$CODE"

# twilio: the message list (GET), newest first
tl() { # query (already encoded) [curl args]: an authenticated list request
	local q=$1
	shift
	req -u "$SID:$TOKEN" "$@" "$(tw_url)?$q"
}
bodies() { printf '%s' "$BODY" | grep -o '"body":"[^"]*"' | cut -d'"' -f4 | tr '\n' ','; }
uri_of() { printf '%s' "$BODY" | grep -o "\"$1\":\"[^\"]*\"" | cut -d'"' -f4; }
L1=+15125550401
for i in 1 2 3 4 5; do tw "To=$L1" From=+15125550199 "Body=list $i"; done
L1SID5=$(printf '%s' "$BODY" | grep -o '"sid":"SM[0-9a-f]*"' | cut -d'"' -f4)
tw To=+15125550402 From=+15125550199 "Body=list other"
tw "To=$L1" "MessagingServiceSid=$MG" "Body=list svc"
tl "To=%2B15125550401"
check "list 200" 200 "$CODE"
contains "list content type" "$HDRS" "Content-Type: application/json"
check "list filters by To, newest first" "list svc,list 5,list 4,list 3,list 2,list 1," "$(bodies)"
contains "list page" "$BODY" '"page":0,'
contains "list page_size default" "$BODY" '"page_size":50,'
contains "list start" "$BODY" '"start":0,'
contains "list end" "$BODY" '"end":5,'
contains "list next null" "$BODY" '"next_page_uri":null'
contains "list previous null" "$BODY" '"previous_page_uri":null'
check "list first_page_uri" "/2010-04-01/Accounts/$SID/Messages.json?To=%2B15125550401&PageSize=50&Page=0" "$(uri_of first_page_uri)"
contains "list message queued" "$BODY" '"status":"queued"'
contains "list date_sent null while queued" "$BODY" '"date_sent":null'
contains "list resource like the 201" "$BODY" "\"sid\":\"$L1SID5\""
contains "list log method" "$LAST" '"method":"GET"'
contains "list log status" "$LAST" '"status":200,'
contains "list log gateway" "$LAST" '"gateway":"twilio"'
contains "list log To" "$LAST" '"to":"+15125550401"'
tl "To=%2B15125550401&From=%2B15125550199"
check "list filters by From" "list 5,list 4,list 3,list 2,list 1," "$(bodies)"
tl "From=%2B15125550199&To=%2B15125550409"
check "list nobody: empty" "" "$(bodies)"
contains "list empty end" "$BODY" '"end":0,'
tl "To=%2B15125550401&PageSize=2"
check "page 0" "list svc,list 5," "$(bodies)"
contains "page 0 next has a token" "$(uri_of next_page_uri)" "PageSize=2&Page=1&PageToken=PA$L1SID5"
req -u "$SID:$TOKEN" "http://127.0.0.1:$PORT$(uri_of next_page_uri)"
check "page 1 via next_page_uri" "list 4,list 3," "$(bodies)"
contains "page 1 number" "$BODY" '"page":1,'
contains "page 1 start" "$BODY" '"start":2,'
contains "page 1 end" "$BODY" '"end":3,'
req -u "$SID:$TOKEN" "http://127.0.0.1:$PORT$(uri_of next_page_uri)"
check "page 2 via next_page_uri" "list 2,list 1," "$(bodies)"
contains "last page: next null" "$BODY" '"next_page_uri":null'
req -u "$SID:$TOKEN" "http://127.0.0.1:$PORT$(uri_of previous_page_uri)"
check "previous_page_uri goes back" "list 4,list 3," "$(bodies)"
tl "To=%2B15125550401&PageSize=2&Page=2"
check "Page without a token" "list 2,list 1," "$(bodies)"
tl "To=%2B15125550401&DateSent%3E=2000-01-01"
check "DateSent> excludes messages not sent yet" "" "$(bodies)"
req "$(tw_url)?To=%2B15125550401"
check "list without auth 401" 401 "$CODE"
contains "list 401 code" "$BODY" '"code":20003'
lacks "list 401 lists nothing" "$BODY" '"messages"'
req -u "$SID:wrong-token" "$(tw_url)?To=%2B15125550401"
check "list wrong token 401" 401 "$CODE"
req -u "$SID:$TOKEN" "$(tw_url "$OTHER_SID")?To=%2B15125550401"
check "list other account 404" 404 "$CODE"
for q in PageSize=0 PageSize=1001 PageSize=x Page=-1 PageToken=PAnope PageToken=SMx \
    DateSent=yesterday "DateSent%3C=2026-13-01" "To=%00"; do
	tl "$q"
	check "list bad query $q 400" 400 "$CODE"
done

# twilio: body format
req -u "$SID:$TOKEN" -H 'Content-Type: application/json' --data-binary '{"To":"+15125550100"}' "$(tw_url)"
check "json body 400" 400 "$CODE"
req -u "$SID:$TOKEN" -d 'To=%2B15125550100&From=%2B15125550199&Body=bad%2' "$(tw_url)"
check "truncated escape 400" 400 "$CODE"
req -u "$SID:$TOKEN" -d 'To=%2B15125550100&From=%2B15125550199&Body=bad%zzx' "$(tw_url)"
check "bad hex escape 400" 400 "$CODE"
req -u "$SID:$TOKEN" -d 'To=%2B15125550100&From=%2B15125550199&Body=nul%00x' "$(tw_url)"
check "%00 400" 400 "$CODE"
head -c 70000 /dev/zero | tr '\0' 'a' >"$WORK/big"
req -u "$SID:$TOKEN" --data-binary "@$WORK/big" "$(tw_url)"
check "body over 64 KiB 413" 413 "$CODE"
contains "413 logged" "$LAST" '"status":413'

# twilio: field validation
tw_err "To missing" 400 21211 From=+15125550199 Body=x
tw_err "To no plus" 400 21211 To=15125550100 From=+15125550199 Body=x
tw_err "To leading zero" 400 21211 To=+0125550100 From=+15125550199 Body=x
tw_err "To 16 digits" 400 21211 To=+1234567890123456 From=+15125550199 Body=x
tw_err "To letters" 400 21211 To=+1512555abcd From=+15125550199 Body=x
tw To=123 From=+15125550199 Body=x
check "21211 exact shape" '{"code":21211,"message":"The '"'"'To'"'"' number 123 is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}' "$BODY"
tw_err "Body missing" 400 21602 To=+15125550100 From=+15125550199
tw_err "Body empty" 400 21602 To=+15125550100 From=+15125550199 Body=
contains "21602 message" "$BODY" '"message":"Message body is required."'
tw_err "Body 1601" 400 21617 To=+15125550100 From=+15125550199 "Body=$(printf 'a%.0s' $(seq 1 1601))"
tw_err "From and MSS missing" 400 21603 To=+15125550100 Body=x
contains "21603 message" "$BODY" "The 'From' phone number is required."
tw_err "MSS bad" 400 21701 To=+15125550100 Body=x MessagingServiceSid=MG123
tw_err "From bad" 400 21212 To=+15125550100 From=abc Body=x
tw_err "ValidityPeriod 0" 400 21609 To=+15125550100 From=+15125550199 Body=x ValidityPeriod=0
contains "ValidityPeriod named" "$BODY" "ValidityPeriod"
tw_err "ValidityPeriod 36001" 400 21609 To=+15125550100 From=+15125550199 Body=x ValidityPeriod=36001
tw_err "ValidityPeriod text" 400 21609 To=+15125550100 From=+15125550199 Body=x ValidityPeriod=1h
tw_err "StatusCallback ftp" 400 21609 To=+15125550100 From=+15125550199 Body=x StatusCallback=ftp://x/y
contains "StatusCallback message" "$BODY" "Invalid StatusCallback"
tw_err "StatusCallback no host" 400 21609 To=+15125550100 From=+15125550199 Body=x StatusCallback=http:///x
tw To=+15125550100 From=+15125550199 Body=x "StatusCallback=http://h/s?push=abc"
contains "non-numeric push: landed null" "$LAST" '"push":"abc","landed_ms":null'

# twilio: --answer
tw_err "answer 21610" 400 21610 To=+15125550111 From=+15125550199 Body=x
contains "21610 message" "$BODY" "Attempt to send to unsubscribed recipient"
contains "answer fault logged" "$LAST" '"fault":"answer"'
tw_err "answer 429" 429 20429 To=+15125550112 From=+15125550199 Body=x
contains "429 Retry-After" "$HDRS" "Retry-After: 1"
tw_err "answer 500" 500 20500 To=+15125550113 From=+15125550199 Body=x
tw_err "answer 503" 503 20503 To=+15125550114 From=+15125550199 Body=x
tw_err "answer 21211" 400 21211 To=+15125550115 From=+15125550199 Body=x

# ---------------------------------------------------------------------------------
# x-dm
dm 2244994945 '{"text":"hello dm"}'
check "dm 201" 201 "$CODE"
contains "dm conversation id" "$BODY" '"dm_conversation_id":"1000000001-2244994945"'
if printf '%s' "$BODY" | grep -Eq '"dm_event_id":"[0-9]+"'; then ok; else bad "dm_event_id digits: $BODY"; fi
contains "dm log" "$LAST" '"gateway":"x-dm"'
contains "dm log to" "$LAST" '"to":"2244994945"'
contains "dm log body" "$LAST" '"body":"hello dm"'
contains "dm log says which token sent it" "$LAST" '"from":"user-token-0"'
EV1=$(printf '%s' "$BODY" | grep -o '"dm_event_id":"[0-9]*"')
dm 2244994945 '{"text":"again"}'
EV2=$(printf '%s' "$BODY" | grep -o '"dm_event_id":"[0-9]*"')
if [ "$EV1" != "$EV2" ]; then ok; else bad "dm event ids unique"; fi
req -H 'Content-Type: application/json' --data-binary '{"text":"x"}' "http://127.0.0.1:$PORT/2/dm_conversations/with/1/messages"
check "dm no auth 401" 401 "$CODE"
check "dm 401 body is the spec's Error" '{"code":89,"message":"Could not authenticate you."}' "$BODY"
contains "dm 401 content type" "$HDRS" "Content-Type: application/json"
req -H 'Authorization: Bearer nope' -H 'Content-Type: application/json' --data-binary '{"text":"x"}' "http://127.0.0.1:$PORT/2/dm_conversations/with/1/messages"
check "dm wrong token 401" 401 "$CODE"
contains "dm wrong token log auth_ok false" "$LAST" '"auth_ok":false'
req -H "Authorization: Bearer $APPBEARER" -H 'Content-Type: application/json' --data-binary '{"text":"x"}' "http://127.0.0.1:$PORT/2/dm_conversations/with/1/messages"
check "dm app-only bearer 403" 403 "$CODE"
contains "dm app-only log from" "$LAST" '"from":"app"'
contains "dm app-only Error code" "$BODY" '{"code":220,"message":"Authenticating with OAuth 2.0 Application-Only is forbidden'
lacks "dm app-only is no recipient refusal" "$BODY" "not-authorized-for-resource"
dm abc '{"text":"x"}'
check "dm bad participant 400" 400 "$CODE"
contains "dm 400 problem+json" "$HDRS" "Content-Type: application/problem+json"
contains "dm problem type" "$BODY" '"type":"https://api.x.com/2/problems/invalid-request"'
contains "dm errors array" "$BODY" '"errors":[{"parameters":{"participant_id":["abc"]}'
dm 12345678901234567890 '{"text":"x"}'
check "dm 20-digit participant 400" 400 "$CODE"
dm 1 '{"text":'
check "dm malformed json 400" 400 "$CODE"
dm 1 '["text"]'
check "dm non-object 400" 400 "$CODE"
dm 1 '{"msg":"x"}'
check "dm text missing 400" 400 "$CODE"
dm 1 '{"text":""}'
check "dm text empty 400" 400 "$CODE"
dm 1 '{"text":42}'
check "dm text not string 400" 400 "$CODE"
dm 1 "{\"text\":\"$(printf 'b%.0s' $(seq 1 10001))\"}"
check "dm text 10001 400" 400 "$CODE"
dm 1 "{\"text\":\"$(printf 'b%.0s' $(seq 1 10000))\"}"
check "dm text 10000 201" 201 "$CODE"
req -H "Authorization: Bearer $BEARER" -H 'Content-Type: text/plain' --data-binary '{"text":"x"}' "http://127.0.0.1:$PORT/2/dm_conversations/with/1/messages"
check "dm non-json content type 400" 400 "$CODE"
req -H "Authorization: Bearer $BEARER" "http://127.0.0.1:$PORT/2/dm_conversations/with/1/messages"
check "dm GET 405" 405 "$CODE"
req -H "Authorization: Bearer $BEARER" "http://127.0.0.1:$PORT/2/users/me"
check "dm other path 404" 404 "$CODE"
dm 777 '{"text":"x"}'
check "dm answer 403" 403 "$CODE"
contains "dm 403 detail" "$BODY" "You are not permitted to send messages to this user"
contains "dm 403 problem+json" "$HDRS" "Content-Type: application/problem+json"
contains "dm 403 NotAuthorizedForResource" "$BODY" '"type":"https://api.x.com/2/problems/not-authorized-for-resource"'
contains "dm 403 names the user" "$BODY" '"resource_type":"user","resource_id":"777","parameter":"participant_id"'
dm 778 '{"text":"x"}'
check "dm answer 429" 429 "$CODE"
check "dm 429 body is the spec's Error" '{"code":88,"message":"Rate limit exceeded"}' "$BODY"
contains "dm 429 reset header" "$HDRS" "x-rate-limit-reset: "
contains "dm 429 retry-after" "$HDRS" "Retry-After: 1"

# ---------------------------------------------------------------------------------
# X OAuth 2.0: the token endpoint with rotating refresh tokens, and expiry on demand
TOKURL="http://127.0.0.1:$PORT/2/oauth2/token"
tok() { req "$@" "$TOKURL"; }
jfield() { printf '%s' "$BODY" | grep -o "\"$1\":\"[^\"]*\"" | cut -d'"' -f4; }
tok -u test-client-id:test-client-secret --data-urlencode grant_type=refresh_token --data-urlencode refresh_token=test-refresh-token
check "token refresh 200" 200 "$CODE"
contains "token type" "$BODY" '"token_type":"bearer"'
contains "token expires_in" "$BODY" '"expires_in":7200'
contains "token scope offline.access" "$BODY" 'offline.access'
lacks "token not in the log" "$LAST" "$(jfield access_token)"
contains "token log gateway" "$LAST" '"gateway":"x-oauth"'
AT1=$(jfield access_token); RT1=$(jfield refresh_token)
if [ -n "$AT1" ] && [ -n "$RT1" ] && [ "$RT1" != test-refresh-token ]; then ok; else bad "new pair: $BODY"; fi
tok -u test-client-id:test-client-secret --data-urlencode grant_type=refresh_token --data-urlencode refresh_token=test-refresh-token
check "rotated refresh token refused 400" 400 "$CODE"
contains "rotated refresh token invalid_request" "$BODY" '"error":"invalid_request"'
tok -u test-client-id:wrong --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$RT1"
check "token wrong client secret 401" 401 "$CODE"
tok --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$RT1"
check "token no client auth 401" 401 "$CODE"
tok -u test-client-id:test-client-secret --data-urlencode grant_type=password --data-urlencode "refresh_token=$RT1"
check "token other grant 400" 400 "$CODE"
contains "token other grant error" "$BODY" '"error":"unsupported_grant_type"'
req -H "Authorization: Bearer $AT1" -H 'Content-Type: application/json' --data-binary '{"text":"with refreshed"}' "http://127.0.0.1:$PORT/2/dm_conversations/with/5/messages"
check "dm with refreshed token 201" 201 "$CODE"
contains "dm log names the refreshed token" "$LAST" '"from":"user-token-1"'
lacks "dm log has no token" "$LAST" "$AT1"
req -X POST "http://127.0.0.1:$PORT/_sim/x/expire"
check "expire tokens 200" 200 "$CODE"
req -H "Authorization: Bearer $AT1" -H 'Content-Type: application/json' --data-binary '{"text":"stale"}' "http://127.0.0.1:$PORT/2/dm_conversations/with/5/messages"
check "dm with expired token 401" 401 "$CODE"
check "dm expired body" '{"code":89,"message":"Invalid or expired token."}' "$BODY"
dm 5 '{"text":"x"}'
check "dm with the expired start token 401" 401 "$CODE"
tok -u test-client-id:test-client-secret --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$RT1"
check "refresh after expiry 200" 200 "$CODE"
AT2=$(jfield access_token)
req -H "Authorization: Bearer $AT2" -H 'Content-Type: application/json' --data-binary '{"text":"fresh"}' "http://127.0.0.1:$PORT/2/dm_conversations/with/5/messages"
check "dm with new token 201" 201 "$CODE"
req "http://127.0.0.1:$PORT/_sim/x"
contains "x stats count refreshes" "$BODY" '"refreshes":2'
BEARER=$AT2

# ---------------------------------------------------------------------------------
# webhook
TS=$(date +%s)
hook key-1 "$TS" '{"push_id":"1700000000000-0:s-1:hook","to":"s-1","text":"hi"}'
check "webhook 200" 200 "$CODE"
contains "webhook ok" "$BODY" '"ok":true'
WHID=$(printf '%s' "$BODY" | grep -o '"id":"[^"]*"')
contains "webhook log key" "$LAST" '"idempotency_key":"key-1"'
contains "webhook log dup false" "$LAST" '"duplicate":false'
contains "webhook log landed" "$LAST" '"landed_ms":1700000000000'
hook key-1 "$TS" '{"push_id":"1700000000000-0:s-1:hook","to":"s-1","text":"hi"}'
check "webhook repeat 200" 200 "$CODE"
contains "webhook repeat same id" "$BODY" "$WHID"
contains "webhook log dup true" "$LAST" '"duplicate":true'
hook key-2 "$TS" '{"a":1}' "v1=0000000000000000000000000000000000000000000000000000000000000000"
check "webhook bad sig 401" 401 "$CODE"
hook key-2 "$TS" '{"a":1}' "sha256=abc"
check "webhook bad sig scheme 401" 401 "$CODE"
req -H "X-Dealpush-Timestamp: $TS" -H "X-Dealpush-Signature: v1=00" --data-binary '{}' "http://127.0.0.1:$PORT/webhook"
check "webhook no key 401" 401 "$CODE"
req -H "Idempotency-Key: k" --data-binary '{}' "http://127.0.0.1:$PORT/webhook"
check "webhook no signature 401" 401 "$CODE"
hook "" "$TS" '{"a":1}'
check "webhook empty key 401" 401 "$CODE"
hook key-3 "$TS" '[1,2]'
check "webhook array body 400" 400 "$CODE"
hook key-4 "$TS" 'not json'
check "webhook not json 400" 400 "$CODE"
req "http://127.0.0.1:$PORT/webhook"
check "webhook GET 405" 405 "$CODE"
hook key-6 "$TS" '{"to":"s-gone","text":"x"}'
check "webhook answer 410" 410 "$CODE"
contains "webhook answer logged" "$LAST" '"code":410,'
hook key-6 "$TS" '{"to":"s-gone","text":"x"}'
contains "refused key is not remembered" "$LAST" '"duplicate":false'

# ---------------------------------------------------------------------------------
# control and faults
faults '{"down": true}'
check "faults down 200" 200 "$CODE"
contains "faults echo" "$BODY" '"down":true'
tw To=+15125550100 From=+15125550199 Body=x
check "down twilio 503" 503 "$CODE"
contains "down logged" "$LAST" '"fault":"down"'
dm 1 '{"text":"x"}'
check "down dm 503" 503 "$CODE"
hook key-5 "$TS" '{"a":1}'
check "down webhook 503" 503 "$CODE"
faults '{"down": false, "reset": true}'
tw To=+15125550100 From=+15125550199 Body=x
check "reset: no HTTP answer" 000 "$CODE"
if [ "$CURLRC" = 52 ] || [ "$CURLRC" = 56 ]; then ok; else bad "reset curl rc $CURLRC"; fi
contains "reset logged" "$LAST" '"status":0,'
contains "reset fault logged" "$LAST" '"fault":"reset"'
faults '{"reset": false, "latency_ms": 400}'
T0=$(date +%s%3N)
tw To=+15125550100 From=+15125550199 Body=slow
T1=$(date +%s%3N)
check "latency reply 201" 201 "$CODE"
if [ $((T1 - T0)) -ge 380 ]; then ok; else bad "latency: took $((T1 - T0)) ms"; fi
CODE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 0.1 -u "$SID:$TOKEN" -d 'To=%2B15125550100&From=%2B15125550199&Body=gone' "$(tw_url)")
NREQ=$((NREQ + 1))
check "client gave up" 000 "$CODE"
sleep 0.6
faults '{"latency_ms": 0, "fail_rate": 1}'
check "still alive after client left" 200 "$CODE"
faults '{"fail_rate": 0}'
tl "To=%2B15125550100&PageSize=1"
check "a message whose answer was never read is listed" "gone," "$(bodies)"
faults '{"fail_rate": 1}'
tw To=+15125550100 From=+15125550199 Body=x
check "fail_rate 1 -> 500" 500 "$CODE"
contains "fail_rate code" "$BODY" '"code":20500'
contains "fail_rate logged" "$LAST" '"fault":"fail_rate"'
faults '{"fail_rate": 0, "answers": {"+15125550177": 21610, "55": 429}}'
tw To=+15125550177 From=+15125550199 Body=x
check "control answer 21610" 400 "$CODE"
tw To=+15125550111 From=+15125550199 Body=x
check "answers replaced: old one gone" 201 "$CODE"
dm 55 '{"text":"x"}'
check "control answer dm 429" 429 "$CODE"
faults '{"answers": {}}'
tw To=+15125550177 From=+15125550199 Body=x
check "answers cleared" 201 "$CODE"
faults '{"latency_ms": "x"}'
check "bad latency 400" 400 "$CODE"; contains "bad latency named" "$BODY" '"field":"latency_ms"'
faults '{"latency_ms": -1}'
check "negative latency 400" 400 "$CODE"
faults '{"fail_rate": 2}'
check "fail_rate 2 400" 400 "$CODE"; contains "fail_rate named" "$BODY" '"field":"fail_rate"'
faults '{"down": "yes"}'
check "down string 400" 400 "$CODE"; contains "down named" "$BODY" '"field":"down"'
faults '{"bogus": 1}'
check "unknown field 400" 400 "$CODE"; contains "unknown named" "$BODY" '"field":"bogus"'
faults '{"answers": {"+1512": 7}}'
check "bad answer code 400" 400 "$CODE"; contains "answer named" "$BODY" '"field":"answers.+1512"'
faults '{"answers": [1]}'
check "answers not object 400" 400 "$CODE"
faults 'nope'
check "not json 400" 400 "$CODE"
faults '{"down": true, "bogus": 1}'
check "bad request applies nothing (400)" 400 "$CODE"
req "http://127.0.0.1:$PORT/_sim/faults"
contains "bad request applied nothing" "$BODY" '"down":false'
req "http://127.0.0.1:$PORT/_sim/stats"
check "stats 200" 200 "$CODE"
contains "stats received" "$BODY" '"received":'
contains "stats by_status" "$BODY" '"201":'
contains "stats reset counted as 0" "$BODY" '"0":1'
req -X POST "http://127.0.0.1:$PORT/_sim/stats"
check "stats POST 405" 405 "$CODE"
req "http://127.0.0.1:$PORT/_sim/reset"
check "reset GET 405" 405 "$CODE"
req "http://127.0.0.1:$PORT/_sim/nothing"
check "control unknown 404" 404 "$CODE"
req "http://127.0.0.1:$PORT/nowhere"
check "unknown path 404" 404 "$CODE"
contains "unknown logged" "$LAST" '"gateway":"unknown"'
faults '{"down": true}'
req -X POST "http://127.0.0.1:$PORT/_sim/reset"
check "reset 200" 200 "$CODE"
req "http://127.0.0.1:$PORT/_sim/stats"
check "stats zeroed" '{"received":0,"accepted":0,"refused":0,"by_status":{}}' "$BODY"
tw To=+15125550100 From=+15125550199 Body=x
check "reset cleared down" 201 "$CODE"
tw To=+15125550111 From=+15125550199 Body=x
check "reset restored command-line answers" 400 "$CODE"
hook key-1 "$TS" '{"a":1}'
contains "reset forgot idempotency keys" "$LAST" '"duplicate":false'

# hostile input must not kill it
req -u "$SID:$TOKEN" --data-binary $'To=%2B1512\xff\xfe&Body=\xc3(' "$(tw_url)"
check "invalid utf-8 answered" 400 "$CODE"
if [ "$HAVE_PY" = 0 ] || printf '%s\n' "$LAST" | python3 -c 'import json,sys; json.loads(sys.stdin.read())' 2>/dev/null; then ok; else bad "log line with bad utf-8 is not JSON"; fi
req -u "$SID:$TOKEN" -d "$(printf 'a=%.0s&' $(seq 1 1200))" "$(tw_url)"
check "too many fields 400" 400 "$CODE"

# --print line, log lines, clean exit
PRINTED=$(grep -E '^  \+[0-9]+ ms  sms  \+1512•••0100  Deal: 20% off & more$' "$WORK/port.out" | head -n1)
MS=$(printf '%s' "$PRINTED" | sed -E 's/^  \+([0-9]+) ms.*/\1/')
if [ -n "$MS" ] && [ "$MS" -ge 250 ] && [ "$MS" -lt 5000 ]; then ok; else bad "print line: [$PRINTED]"; fi
contains "print dm masked" "$(cat "$WORK/port.out")" "  +? ms  dm  22449•••4945  hello dm"
lacks "print never shows a full number" "$(cat "$WORK/port.out")" "+15125550100"
lacks "list reads are not printed" "$(cat "$WORK/port.out")" "sms  -"
check "one log line per request" "$NREQ" "$(wc -l <"$LOG")"
if [ "$HAVE_PY" = 1 ]; then
	BADJSON=$(python3 -c '
import json,sys
n=0
for line in open(sys.argv[1], encoding="utf-8"):
    try: json.loads(line)
    except Exception: n+=1
print(n)' "$LOG" 2>&1)
	check "every log line is JSON" 0 "$BADJSON"
fi
lacks "no status callbacks without --status-callbacks" "$(cat "$LOG")" '"gateway":"callback"'
stop_gwsim "$MAIN_PID"

# fail rate is deterministic for a seed
run_seeded() { # tag: sets SEEDOUT to the 20 statuses
	local i
	SEEDOUT=""
	start_gwsim "$WORK/port$1" "$WORK/seed$1.log" --fail-rate 0.5 --seed 7 --quiet
	PORT=$GPORT
	for i in $(seq 1 20); do
		SEEDOUT+=$(curl -s -o /dev/null -w '%{http_code} ' -u "$SID:$TOKEN" -d 'To=%2B15125550100&From=%2B15125550199&Body=x' "$(tw_url)")
	done
	stop_gwsim "$GPID"
}
run_seeded a; A=$SEEDOUT
run_seeded b; B=$SEEDOUT
check "same seed, same failures" "$A" "$B"
contains "fail rate fails some" "$A" "500"
contains "fail rate passes some" "$A" "201"

# ---------------------------------------------------------------------------------
# status callbacks (--status-callbacks): a python3 receiver records every POST it gets
# (written before it answers); cbcheck.py checks order, fields and each signature,
# recomputed here with python's hmac, and gwsim's "callback" log records.
if [ "$HAVE_PY" = 1 ]; then
	cat >"$WORK/sink.py" <<'PYEOF'
import http.server, json, os, sys, time
out, portfile = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        rec = {"t_ms": time.monotonic() * 1000, "path": self.path,
               "host": self.headers.get("Host"), "ct": self.headers.get("Content-Type"),
               "sig": self.headers.get("X-Twilio-Signature"),
               "body": self.rfile.read(n).decode("utf-8", "replace")}
        with open(out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        self.send_response(500 if "fail=1" in self.path else 204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(portfile + ".tmp", "w") as f:
    f.write("%d\n" % s.server_port)
os.rename(portfile + ".tmp", portfile)
s.serve_forever()
PYEOF
	cat >"$WORK/cbcheck.py" <<'PYEOF'
import base64, hashlib, hmac, json, os, sys, urllib.parse
E = os.environ
sink = [json.loads(l) for l in open(sys.argv[1])]
log = [json.loads(l) for l in open(sys.argv[2])]
delay = int(E["DELAY"])
def out(good, name, detail=""):
    print(("ok " if good else "bad ") + name + ("" if good else ": " + detail))
def fields(r):
    return urllib.parse.parse_qsl(r["body"], keep_blank_values=True, strict_parsing=True)
def sign(url, params):
    s = url + "".join(k + v for k, v in sorted(params))
    mac = hmac.new(E["TOKEN"].encode(), s.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()
def posts(sid):
    return [r for r in sink if dict(fields(r)).get("MessageSid") == sid]
def records(sid):
    return [r for r in log if r.get("gateway") == "callback" and r.get("sid") == sid]
def seq(name, sid, to, statuses, code=None, frm="+15125550199", host=None, mss=None):
    ps, recs = posts(sid), records(sid)
    got = [dict(fields(p)).get("MessageStatus") for p in ps]
    out(got == statuses, name + ": callbacks in order", "%s" % got)
    for i, p in enumerate(ps[:len(statuses)]):
        n, f = "%s %s" % (name, statuses[i]), dict(fields(p))
        url = "http://" + p["host"] + p["path"]   # what the receiver rebuilds and checks
        out(p["sig"] == sign(url, fields(p)), n + ": signature verifies", "%s" % p["sig"])
        bad = [(k, v + "x") if k == "MessageStatus" else (k, v) for k, v in fields(p)]
        out(p["sig"] != sign(url, bad), n + ": a changed field does not verify")
        out(p["ct"] == "application/x-www-form-urlencoded", n + ": content type", "%s" % p["ct"])
        want = {"MessageSid": sid, "SmsSid": sid, "AccountSid": E["SID"], "To": to,
                "ApiVersion": "2010-04-01", "MessageStatus": statuses[i],
                "SmsStatus": statuses[i]}
        if frm: want["From"] = frm
        if mss: want["MessagingServiceSid"] = mss
        if code and i == len(statuses) - 1: want["ErrorCode"] = code
        out(f == want and len(fields(p)) == len(f), n + ": fields", "%s" % f)
        if host: out(p["host"] == host, n + ": Host header", "%s" % p["host"])
    if len(ps) == 2:
        gap = ps[1]["t_ms"] - ps[0]["t_ms"]
        out(gap >= 0.9 * delay, name + ": final status after the delay", "%.1f ms" % gap)
    out([r["message_status"] for r in recs] == statuses, name + ": one log record each",
        "%s" % [r["message_status"] for r in recs])
    out(all(r["result"] == "ok" and r["http_status"] == 204 and r["to"] == to
            for r in recs), name + ": logged ok/204", "%s" % recs)
    if recs:
        out(recs[-1]["error_code"] == (int(code) if code else None),
            name + ": logged error_code", "%s" % recs[-1]["error_code"])
def failed(name, sid, statuses, result, nposts, http_status=None, detail=None):
    recs = records(sid)
    out([r["message_status"] for r in recs] == statuses, name + ": records",
        "%s" % [r["message_status"] for r in recs])
    out(all(r["result"] == result and r["http_status"] == http_status for r in recs),
        name + ": result " + result, "%s" % recs)
    if detail:
        out(all(detail in (r["detail"] or "") for r in recs), name + ": detail", "%s" % recs)
    out(len(posts(sid)) == nposts, name + ": %d POSTs reached the receiver" % nposts,
        "%d" % len(posts(sid)))
seq("delivered", E["S_OK"], "+15125550300", ["sent", "delivered"])
out(records(E["S_OK"])[:1] != [] and
    records(E["S_OK"])[0]["push"] == "1795456293791-0:s-1:sms", "log record has the push id")
seq("undelivered 30003", E["S_30003"], "+15125550301", ["sent", "undelivered"], "30003")
seq("failed 30007", E["S_30007"], "+15125550302", ["failed"], "30007")
seq("sent only", E["S_SENT"], "+15125550303", ["sent"])
seq("localhost, service", E["S_LOCAL"], "+15125550300", ["sent", "delivered"], frm=None,
    host="localhost:" + E["SPORT"], mss=E["MG"])
failed("not loopback", E["S_REMOTE"], [None], "refused", 0, detail="not 127.0.0.1")
failed("https", E["S_TLS"], [None], "refused", 0, detail="http://")
failed("nobody listening", E["S_DEAD"], ["sent", "delivered"], "connect_failed", 0)
failed("receiver answers 500", E["S_500"], ["sent", "delivered"], "http_error", 2, 500)
out(records(E["S_NONE"]) == [] and posts(E["S_NONE"]) == [], "no StatusCallback: none sent")
print("done")
PYEOF
	python3 "$WORK/sink.py" "$WORK/sink.jsonl" "$WORK/sinkport" 2>"$WORK/sink.err" &
	PIDS+=($!)
	for i in $(seq 1 100); do
		[ -s "$WORK/sinkport" ] && break
		sleep 0.05
	done
	SPORT=$(cat "$WORK/sinkport" 2>/dev/null)
	DEAD=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	LOG=$WORK/cb.log
	start_gwsim "$WORK/cbport" "$LOG" --quiet --status-callbacks --callback-delay-ms 100 \
	    --deliver +15125550301=undelivered:30003 --deliver +15125550302=failed:30007 \
	    --deliver +15125550303=sent
	PORT=$GPORT
	CB_PID=$GPID
	SINK="http://127.0.0.1:$SPORT/hooks/twilio/status"
	sid_of() { printf '%s' "$BODY" | grep -o '"sid":"SM[0-9a-f]*"' | cut -d'"' -f4; }
	cb_send() { # to callback-url [sender field]: sets CBSID
		local to=$1 url=$2
		shift 2
		tw "To=$to" "Body=cb" "StatusCallback=$url" "${@:-From=+15125550199}"
		check "callback message to $to ($url) 201" 201 "$CODE"
		CBSID=$(sid_of)
	}
	cb_send +15125550300 "$SINK?push=1795456293791-0:s-1:sms"; S_OK=$CBSID
	cb_send +15125550301 "$SINK?push=1795456293791-0:s-2:sms"; S_30003=$CBSID
	cb_send +15125550302 "$SINK?push=1795456293791-0:s-3:sms"; S_30007=$CBSID
	cb_send +15125550303 "$SINK?push=1795456293791-0:s-4:sms"; S_SENT=$CBSID
	cb_send +15125550300 "http://localhost:$SPORT/hooks/twilio/status?push=5-0:s-5:sms" \
	    "MessagingServiceSid=$MG"; S_LOCAL=$CBSID
	cb_send +15125550300 "http://example.com/hooks/twilio/status?push=6-0:s-6:sms"; S_REMOTE=$CBSID
	cb_send +15125550300 "https://127.0.0.1:$SPORT/hooks/twilio/status"; S_TLS=$CBSID
	cb_send +15125550300 "http://127.0.0.1:$DEAD/hooks/twilio/status"; S_DEAD=$CBSID
	cb_send +15125550300 "$SINK?fail=1"; S_500=$CBSID
	tw To=+15125550300 From=+15125550199 Body=none
	S_NONE=$(sid_of)
	# delivered 2, undelivered 2, failed 1, sent 1, localhost 2, refused 1 + 1,
	# nobody listening 2, answered 500 2: 14 records
	for i in $(seq 1 100); do
		[ "$(grep -c '"gateway":"callback"' "$LOG")" -ge 14 ] && break
		sleep 0.05
	done
	sleep 0.3   # a retry, if there were one, would show up now
	check "callback records" 14 "$(grep -c '"gateway":"callback"' "$LOG")"
	CBOUT=$(S_OK=$S_OK S_30003=$S_30003 S_30007=$S_30007 S_SENT=$S_SENT S_LOCAL=$S_LOCAL \
	    S_REMOTE=$S_REMOTE S_TLS=$S_TLS S_DEAD=$S_DEAD S_500=$S_500 S_NONE=$S_NONE \
	    SPORT=$SPORT TOKEN=$TOKEN SID=$SID MG=$MG DELAY=100 \
	    python3 "$WORK/cbcheck.py" "$WORK/sink.jsonl" "$LOG" 2>&1)
	while IFS= read -r line; do
		case "$line" in
		"ok "*) ok ;;
		done) ;;
		*) bad "callback: ${line#bad }" ;;
		esac
	done <<<"$CBOUT"
	check "callback checks ran to the end" done "$(printf '%s\n' "$CBOUT" | tail -n1)"
	tl "To=%2B15125550303"
	contains "list shows the status called back" "$BODY" '"status":"sent"'
	lacks "list: date_sent once sent" "$BODY" '"date_sent":null'
	tl "To=%2B15125550303&DateSent%3E=2000-01-01"
	check "DateSent> matches a sent message" "cb," "$(bodies)"
	tl "To=%2B15125550303&DateSent%3C=2000-01-01"
	check "DateSent< excludes it" "" "$(bodies)"
	tl "To=%2B15125550301"
	contains "list shows the final status" "$BODY" '"status":"undelivered"'
	stop_gwsim "$CB_PID"
else
	echo "gwsim selftest: status callback checks skipped (no python3)"
fi

echo "gwsim selftest: $PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
