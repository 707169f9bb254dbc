#!/usr/bin/env bash
# A rolling upgrade from the previous release (tests/deploy/previous-release) to this
# one, on one Redis, during a fan-out (docs/operations.md, "Rolling upgrades").
#
# The previous release is built from this repository's own history (git archive of
# its commit; only its notifier and dealpushctl, -O1; kept under BUILD/previous-<v>
# for the next run). Two notifiers of it serve; 2000 subscribers are imported with
# its dealpushctl; a deal reaching every one is published with the gateway slowed,
# and while its texts go out notifier A is replaced by this release, rolled back to
# the previous one (the deployment is still at format 1), replaced again, then B.
# `formats upgrade` is refused while B is old, then raises the deployment to format
# 2; a second deal goes out in format 2. At the end, from the gateway's log and from
# Redis: every planned push accounted for (sent or a named skip), no phone texted
# twice for one deal, the texts the gateway took are the pushes Redis calls sent,
# nothing pending. Last, entries of version 3 (a job, a deal, a subscriber change)
# are refused and left where they are, and this release refuses to start on a
# deployment at format 3.
# Needs DP_REDIS_PORT (tests/run.sh). Prints "test_rolling_upgrade: N passed, M failed".
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
# shellcheck source=tests/lib.sh
. tests/lib.sh
RUN=${DP_RUN_DIR:-$ROOT/run/rolling-$$}/rolling
rm -rf "$RUN"
mkdir -p "$RUN"
SUBS=2000
passed=0
failed=0
check() {      # check NAME COMMAND...
	local name=$1
	shift
	if "$@" >>"$RUN/checks.log" 2>&1; then
		passed=$((passed + 1))
		echo "ok - $name"
	else
		failed=$((failed + 1))
		echo "not ok - $name"
	fi
}
finish() {
	echo "test_rolling_upgrade: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit
}
mypids=""
# shellcheck disable=SC2317 # run by the trap
cleanup() {
	local p
	for p in $mypids; do
		kill "$p" 2>/dev/null
	done
	for p in $mypids; do
		wait "$p" 2>/dev/null
	done
}
trap cleanup EXIT
r() { redis-cli -p "$DP_REDIS_PORT" "$@"; }

# --- the previous release, from this repository's history
read -r PREV_VERSION PREV_COMMIT < <(grep -v '^#' tests/deploy/previous-release)
if ! git -C "$ROOT" cat-file -e "${PREV_COMMIT}^{commit}" 2>/dev/null; then
	echo "the previous release $PREV_VERSION (commit $PREV_COMMIT) is not in this" \
		"checkout: fetch it first, e.g. git fetch origin $PREV_COMMIT (a shallow or" \
		"exported checkout lacks history)"
	failed=1
	finish
fi
PREV="$ROOT/$BUILD/previous-$PREV_VERSION"
t0=$SECONDS
if [ "$(cat "$PREV/commit" 2>/dev/null)" != "$PREV_COMMIT" ] ||
		[ ! -x "$PREV/notifier" ] || [ ! -x "$PREV/dealpushctl" ]; then
	rm -rf "$PREV" "$RUN/prev-src"
	mkdir -p "$PREV" "$RUN/prev-src"
	git -C "$ROOT" archive "$PREV_COMMIT" | tar -x -C "$RUN/prev-src"
	# Plain flags (none from a make this runs under): the sanitizer's are this
	# build's, not the previous release's.
	if ! env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u CFLAGS -u LDFLAGS \
			make -C "$RUN/prev-src" -j2 --no-print-directory OPT=-O1 SAN= \
			BUILD="$PREV" "$PREV/notifier" "$PREV/dealpushctl" \
			>"$RUN/prev-build.log" 2>&1; then
		tail -20 "$RUN/prev-build.log"
		echo "the previous release did not build (see $RUN/prev-build.log)"
		failed=1
		finish
	fi
	echo "$PREV_COMMIT" > "$PREV/commit"
	echo "# built the previous release $PREV_VERSION in $((SECONDS - t0)) s"
else
	echo "# the previous release $PREV_VERSION was built already ($PREV)"
fi
check "the previous release says it is $PREV_VERSION" \
	test "$("$PREV/notifier" --version)" = "notifier $PREV_VERSION"
NEW_VERSION=$(cat VERSION)
check "this release is not the previous one" test "$NEW_VERSION" != "$PREV_VERSION"

# --- the gateway (slowed: the fan-out lasts while the notifiers are replaced)
r FLUSHALL >/dev/null
TOKEN=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
export TOKEN
"$BUILD/gwsim" --port 0 --port-file "$RUN/gwsim.port" --auth-token-env TOKEN \
	--log "$RUN/gwsim.jsonl" --quiet --latency-ms 100 &
mypids="$mypids $!"
for _ in $(seq 1 100); do
	[ -s "$RUN/gwsim.port" ] && break
	sleep 0.05
done
GW=$(cat "$RUN/gwsim.port" 2>/dev/null)
[ -n "$GW" ] || { echo "the gateway simulator did not start"; failed=1; finish; }

# --- configuration and subscribers
DEALPUSH_CLOCK_OFFSET_S=$(dp_clock_offset)
export DEALPUSH_CLOCK_OFFSET_S DEALPUSH_REDIS=127.0.0.1:$DP_REDIS_PORT
mkdir -p "$RUN/rules"
cat >"$RUN/rules/rolling.rules" <<'EOF'
rule rolling
  when deal.category = "rolling"
  audience interested
  send sms
  priority 10
  template sms "{title}: {price} Reply STOP to end"
end
EOF
for name in a b c; do
	cat >"$RUN/$name.conf" <<CONF
[notifier]
consumer = rolling-$name
log_level = info
clock_offset_s = $DEALPUSH_CLOCK_OFFSET_S
shutdown_grace_ms = 4000
[redis]
host = 127.0.0.1
port = $DP_REDIS_PORT
[rules]
dir = $RUN/rules
[deliver]
max_in_flight = 8
[guards]
max_audience = 0
[gateway twilio]
kind = twilio
channel = sms
base_url = http://127.0.0.1:$GW
account_sid = ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
from = +15005550006
secret_env = TOKEN
CONF
done
awk -v n="$SUBS" 'BEGIN { for (i = 0; i < n; i++)
	printf "{\"id\":\"u%d\",\"phone\":\"+1512555%04d\",\"channels\":[\"sms\"],\"consent\":{\"sms\":\"2026-01-02T10:00:00Z\"},\"timezone\":\"America/Chicago\",\"interests\":{\"categories\":[\"rolling\"]}}\n", i, i }' \
	>"$RUN/subs.jsonl"
"$PREV/dealpushctl" subscribers import "$RUN/subs.jsonl" >"$RUN/import.out" 2>&1
check "the previous release's dealpushctl imports $SUBS subscribers" \
	grep -q "^imported $SUBS subscribers" "$RUN/import.out"

# start BIN NAME: a notifier of release BIN as consumer rolling-NAME, until ready;
# sets NPID. Its log is $RUN/NAME-<n>.log (one per start).
starts=0
start() {
	local bin=$1 name=$2 log
	starts=$((starts + 1))
	log="$RUN/$name-$starts.log"
	"$bin/notifier" -c "$RUN/$name.conf" 2>"$log" &
	NPID=$!
	mypids="$mypids $NPID"
	for _ in $(seq 1 300); do
		grep -q "event=ready" "$log" && return 0
		kill -0 "$NPID" 2>/dev/null || break
		sleep 0.05
	done
	echo "notifier $name ($bin) did not become ready; the end of $log:"
	tail -5 "$log"
	return 1
}
# stop PID: SIGTERM, as systemctl stop does; waits for the exit.
stop() {
	kill -TERM "$1" 2>/dev/null
	wait "$1" 2>/dev/null
}
texts() {      # texts DEAL: the texts of DEAL the gateway took (201), repeats included
	grep '"status":201' "$RUN/gwsim.jsonl" 2>/dev/null | grep -c "\"body\":\"$1 " ||
		true
}
wait_texts() { # wait_texts DEAL N: until the gateway took N texts of DEAL (bounded)
	for _ in $(seq 1 600); do
		[ "$(texts "$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
publish() {    # publish DEAL: with the dealpushctl of $1
	echo "{\"id\":\"$2\",\"title\":\"$2 Latitude 7440\",\"category\":\"rolling\",\"price\":649,\"list_price\":1099,\"currency\":\"USD\",\"url\":\"https://shop.example/$2\",\"expires_at\":1}" |
		"$1/dealpushctl" publish --expires-in 3600 - >>"$RUN/publish.out" 2>&1
}

start "$PREV" a && A=$NPID
start "$PREV" b && B=$NPID
check "two notifiers of the previous release serve" kill -0 "${A:-none}" "${B:-none}"

# --- deal 1 at format 1, the notifiers replaced one by one while it goes out
publish "$PREV" rolling-1
wait_texts rolling-1 150
n_a=$(texts rolling-1)
stop "$A"
start "$BUILD" a && A=$NPID
check "notifier A runs this release, on the same consumer name" kill -0 "${A:-none}"
r HGETALL dealpush:formats >"$RUN/formats-a.out"
check "the new notifier announces that it reads format 2" \
	grep -q "^2	$NEW_VERSION	" "$RUN/formats-a.out"
"$BUILD/dealpushctl" formats upgrade >"$RUN/upgrade-refused.out" 2>&1
rc=$?
check "formats upgrade is refused while notifier B is the previous release" \
	test "$rc" -eq 1
check "the refusal names rolling-b" grep -q "rolling-b: announces nothing" \
	"$RUN/upgrade-refused.out"
check "the deployment stays at format 1" test -z "$(r HGET dealpush:formats format)"

# Rollback: the deployment is still at format 1, so the previous release may take
# over again from what this one wrote.
wait_texts rolling-1 $((n_a + 100))
stop "$A"
start "$PREV" a && A=$NPID
check "the previous release takes notifier A back (rollback at format 1)" \
	kill -0 "${A:-none}"
wait_texts rolling-1 $((n_a + 200))
stop "$A"
start "$BUILD" a && A=$NPID
wait_texts rolling-1 $((n_a + 300))
n_b=$(texts rolling-1)
stop "$B"
start "$BUILD" b && B=$NPID
check "notifier B runs this release" kill -0 "${B:-none}"
echo "# deal 1: A replaced after $n_a texts, B after $n_b of $SUBS"
check "the notifiers were replaced while deal 1 was going out" test "$n_b" -lt "$SUBS"

"$BUILD/dealpushctl" formats upgrade >"$RUN/upgrade.out" 2>&1
check "formats upgrade raises the deployment to format 2" \
	grep -q "format raised: 1 -> 2" "$RUN/upgrade.out"
check "dealpush:formats says 2" test "$(r HGET dealpush:formats format)" = 2
# The notifiers read the new version within a beat: then deal 2 is written in it.
for _ in $(seq 1 100); do
	[ "$(cat "$RUN"/a-*.log "$RUN"/b-*.log | grep -c 'event=format_changed format=2')" \
		-ge 2 ] && break
	sleep 0.05
done
check "both notifiers write format 2 now" test "$(cat "$RUN"/a-*.log "$RUN"/b-*.log |
	grep -c 'event=format_changed format=2')" -ge 2
curl -s -X POST -d '{"latency_ms":5}' "http://127.0.0.1:$GW/_sim/faults" >/dev/null
publish "$BUILD" rolling-2

# --- the end: every push accounted for
# final DEAL: "planned final nonfinal sent unknown" from Redis
final() {
	r --raw EVAL "
local planned = tonumber(redis.call('HGET', KEYS[2], 'planned') or '0')
local st = redis.call('HGETALL', KEYS[1])
local fin, non, sent, unk = 0, 0, 0, 0
local open = { admitted = 1, delayed = 1, deferred = 1, retry = 1 }
for i = 2, #st, 2 do
  local s = st[i]
  if open[s] or string.find(s, '^sending') then non = non + 1 else fin = fin + 1 end
  if s == 'sent' then sent = sent + 1 end
  if s == 'unknown' then unk = unk + 1 end
end
return planned .. ' ' .. fin .. ' ' .. non .. ' ' .. sent .. ' ' .. unk" 2 \
		"push:$1" "report:deal:$1"
}
for deal in rolling-1 rolling-2; do
	for _ in $(seq 1 1200); do
		read -r planned fin non sent unk <<<"$(final "$deal")"
		[ "${planned:-0}" -gt 0 ] && [ "$non" -eq 0 ] && [ "$fin" -ge "$planned" ] &&
			[ -n "$(r HGET "deal:$deal" planned)" ] && break
		sleep 0.05
	done
	read -r planned fin non sent unk <<<"$(final "$deal")"
	total=$(texts "$deal")
	uniq=$(grep '"status":201' "$RUN/gwsim.jsonl" | grep "\"body\":\"$deal " |
		grep -o '"to":"[^"]*"' | sort -u | wc -l)
	echo "# $deal: planned $planned, accounted $fin, open $non, sent $sent," \
		"unknown $unk; gateway texts $total to $uniq phones"
	check "$deal: planned to every subscriber" test "$planned" -eq "$SUBS"
	check "$deal: every planned push accounted for (0 lost)" \
		test "$fin" -eq "$planned" -a "$non" -eq 0
	check "$deal: no push left unknown" test "$unk" -eq 0
	check "$deal: no phone texted twice (0 duplicates)" test "$total" -eq "$uniq"
	check "$deal: the gateway took exactly the pushes Redis calls sent" \
		test "$uniq" -eq "$sent"
done
for sg in "deals notifier" "pushes deliver"; do
	# shellcheck disable=SC2086 # two words: stream and group
	pend=$(r XPENDING $sg | head -1)
	check "nothing pending on ${sg% *} (group ${sg#* })" test "$pend" = 0
done
fv() {         # fv KEY: the pushes:log entries of deal $2 as "with without" fv
	r --raw EVAL "
local w, o = 0, 0
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local f, deal, v = e[2], nil, nil
  for i = 1, #f, 2 do
    if f[i] == 'deal' then deal = f[i + 1] end
    if f[i] == 'fv' then v = f[i + 1] end
  end
  if deal == ARGV[1] then
    if v == '2' then w = w + 1 else o = o + 1 end
  end
end
return w .. ' ' .. o" 1 "$1" "$2"
}
read -r w1 o1 <<<"$(fv pushes:log rolling-1)"
read -r w2 o2 <<<"$(fv pushes:log rolling-2)"
echo "# pushes:log: rolling-1 $o1 entries in format 1, $w1 in 2;" \
	"rolling-2 $o2 in format 1, $w2 in 2"
# Deal 1 spans the upgrade: what ended before it is in format 1, the rest in 2, and
# the readers took both.
check "deal 1's outcomes: one each, those before the upgrade in format 1" \
	test "$((w1 + o1))" -eq "$SUBS" -a "$o1" -ge "$n_b"
check "deal 2's outcomes: one each, all with fv 2" test "$o2" -eq 0 -a "$w2" -eq "$SUBS"
check "deal 2's hash carries fv 2, deal 1's none" \
	test "$(r HGET deal:rolling-2 fv)" = 2 -a -z "$(r HGET deal:rolling-1 fv)"
"$BUILD/dealpushctl" formats show >"$RUN/show.out" 2>&1
check "formats show lists both notifiers reading format 2" \
	test "$(grep -c "reads 2  release $NEW_VERSION  live" "$RUN/show.out")" -eq 2

# --- entries of a version newer than this release reads: left, never lost
exp=$(($(date +%s) + 3600))
r XADD pushes '*' deal rolling-3 entry "$(date +%s)000-0" exp "$exp" camp '' \
	r "$(printf 'sms\tu1\t+15125550000\trolling\tfrom a newer release')" fv 3 >/dev/null
r XADD deals '*' deal '{"id":"rolling-4","cancel":true}' fv 3 >/dev/null
r XADD subscribers:changes '*' id u1 op put fv 3 >/dev/null
too_new() { cat "$RUN"/a-*.log "$RUN"/b-*.log | grep -c "event=format_too_new stream=$1 " ||
	true; }
for _ in $(seq 1 200); do
	[ "$(too_new pushes)" -ge 1 ] && [ "$(too_new deals)" -ge 1 ] &&
		[ "$(too_new subscribers:changes)" -ge 1 ] && break
	sleep 0.05
done
check "a job of version 3 is refused (event=format_too_new stream=pushes)" \
	test "$(too_new pushes)" -ge 1
check "and left pending, not sent" \
	test "$(r XPENDING pushes deliver | head -1)" = 1 \
	-a "$(grep -c '"status":201' "$RUN/gwsim.jsonl")" = $((2 * SUBS))
check "a deal entry of version 3 is refused and left pending, not dead-lettered" \
	test "$(too_new deals)" -ge 1 -a "$(r XPENDING deals notifier | head -1)" = 1 \
	-a "$(r XLEN deals:dead)" = 0
check "the mirror stops at a change of version 3" \
	test "$(too_new subscribers:changes)" -ge 1

# --- a deployment newer than this release: refused at start, exit 78
stop "$A"
stop "$B"
r HSET dealpush:formats format 3 >/dev/null
"$BUILD/notifier" -c "$RUN/c.conf" 2>"$RUN/c-too-new.log" &
cpid=$!
mypids="$mypids $cpid"
wait "$cpid"
rc=$?
check "this release refuses to start on format 3 (exit 78)" test "$rc" -eq 78
check "and says why: event=format_mismatch" grep -q "event=format_mismatch" \
	"$RUN/c-too-new.log"
"$BUILD/dealpushctl" publish --expires-in 60 /dev/null >"$RUN/ctl-too-new.out" 2>&1
rc=$?
check "dealpushctl refuses it too (exit 78)" test "$rc" -eq 78
echo "# wall time $SECONDS s"
finish
