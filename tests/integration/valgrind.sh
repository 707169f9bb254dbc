#!/usr/bin/env bash
# The daemon's start-run-stop path under valgrind: start, load subscribers, push a
# deal through gwsim, take a bad deal, SIGTERM; no leak and no memory error allowed.
# Needs DP_REDIS_PORT and DP_RUN_DIR (tests/run.sh sets them). Prints
# "valgrind: N passed, M failed".
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
. tests/lib.sh
dir="$DP_RUN_DIR/valgrind"
mkdir -p "$dir"
trap 'dp_cleanup' EXIT
passed=0
failed=0
check() {
	if eval "$2"; then passed=$((passed + 1)); echo "ok - $1"
	else failed=$((failed + 1)); echo "not ok - $1"; fi
}
if [ "${DP_SANITIZED:-0}" = 1 ]; then
	# ASan and valgrind cannot share a process; LeakSanitizer covers this build.
	echo "valgrind: 0 passed, 0 failed (skipped: sanitizer build)"
	exit 0
fi
if ! command -v valgrind >/dev/null; then
	echo "valgrind missing"; echo "valgrind: 0 passed, 1 failed"; exit 1
fi
rc="redis-cli -p $DP_REDIS_PORT"
ctl="$BUILD/dealpushctl --redis 127.0.0.1:$DP_REDIS_PORT"
"$BUILD/gwsim" --port 0 --port-file "$dir/gw.port" --log "$dir/gw.jsonl" --quiet &
DP_PIDS="$DP_PIDS $!"
for _ in $(seq 1 100); do [ -s "$dir/gw.port" ] && break; sleep 0.05; done

# run NAME REDIS_EXTRA CLUSTER: one start-run-stop of the notifier under valgrind on a
# fresh Redis (REDIS_EXTRA: "shards = 4" for the sharded layout, created first).
run() {
	local name=$1 shards=$2 cluster=$3 vg status
	$rc FLUSHALL >/dev/null
	[ -n "$shards" ] && $ctl layout create --shards "${shards#shards = }" >/dev/null
	cat > "$dir/$name.conf" <<CONF
[notifier]
consumer = vg
clock_offset_s = $(dp_clock_offset)
[redis]
port = $DP_REDIS_PORT
$shards
[ingest]
block_ms = 200
[http]
port = 0
[rules]
dir = $ROOT/rules/examples
$cluster
[gateway twilio]
kind = twilio
channel = sms
base_url = http://127.0.0.1:$(cat "$dir/gw.port")
account_sid = ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
from = +15005550006
secret_env = VG_TOKEN
CONF
	$ctl subscribers import rules/examples/subscribers.jsonl >/dev/null
	VG_TOKEN=test-auth-token valgrind --leak-check=full \
		--show-leak-kinds=definite,indirect,possible \
		--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
		--log-file="$dir/$name.valgrind.log" "$BUILD/notifier" -c "$dir/$name.conf" \
		2>"$dir/$name.log" &
	vg=$!
	for _ in $(seq 1 200); do grep -q subscribers_loaded "$dir/$name.log" && break; sleep 0.05; done
	$ctl publish --expires-in 86400 rules/examples/deals.jsonl >/dev/null
	$rc XADD deals '*' deal 'not json' >/dev/null
	for _ in $(seq 1 300); do
		[ "$(grep -c 'event=push outcome=' "$dir/$name.log")" -ge 10 ] &&
			grep -q 'event=deal_dead' "$dir/$name.log" && break
		sleep 0.1
	done
	check "$name: pushes went out under valgrind" \
		'[ "$(grep -c "event=push outcome=" "$dir/$name.log")" -ge 10 ]'
	kill -TERM "$vg"
	wait "$vg"
	status=$?
	check "$name: exits 0 on SIGTERM with no leak or memory error" '[ "$status" -eq 0 ]'
	[ "$status" -eq 0 ] || tail -40 "$dir/$name.valgrind.log"
}

run single "" ""
# The sharded layout with shard ownership: leases taken, served, released at exit.
run owned "shards = 4" "[cluster]
ownership = balanced
lease_ms = 3000
lease_margin_ms = 300
settle_ms = 0"
check "owned: its leases were released at exit" \
	'grep -q "event=shard_released" "$dir/owned.log"'
echo "valgrind: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
