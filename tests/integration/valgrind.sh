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
$rc FLUSHALL >/dev/null
"$BUILD/gwsim" --port 0 --port-file "$dir/gw.port" --log "$dir/gw.jsonl" --quiet &
DP_PIDS="$DP_PIDS $!"
for _ in $(seq 1 100); do [ -s "$dir/gw.port" ] && break; sleep 0.05; done
cat > "$dir/n.conf" <<CONF
[notifier]
consumer = vg
clock_offset_s = $(dp_clock_offset)
[redis]
port = $DP_REDIS_PORT
[ingest]
block_ms = 200
[http]
port = 0
[rules]
dir = $ROOT/rules/examples
[gateway twilio]
kind = twilio
channel = sms
base_url = http://127.0.0.1:$(cat "$dir/gw.port")
account_sid = ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
from = +15005550006
secret_env = VG_TOKEN
CONF
"$BUILD/dealpushctl" --redis "127.0.0.1:$DP_REDIS_PORT" subscribers import \
	rules/examples/subscribers.jsonl >/dev/null
VG_TOKEN=test-auth-token valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible \
	--errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
	--log-file="$dir/valgrind.log" "$BUILD/notifier" -c "$dir/n.conf" 2>"$dir/notifier.log" &
vg=$!
for _ in $(seq 1 200); do grep -q subscribers_loaded "$dir/notifier.log" && break; sleep 0.05; done
"$BUILD/dealpushctl" --redis "127.0.0.1:$DP_REDIS_PORT" publish --expires-in 86400 \
	rules/examples/deals.jsonl >/dev/null
$rc XADD deals '*' deal 'not json' >/dev/null
for _ in $(seq 1 200); do
	[ "$($rc XLEN pushes:log)" -ge 10 ] && [ "$($rc XLEN deals:dead)" -ge 1 ] && break
	sleep 0.1
done
check "pushes went out under valgrind" '[ "$($rc XLEN pushes:log)" -ge 10 ]'
kill -TERM "$vg"
wait "$vg"
status=$?
check "exits 0 on SIGTERM with no leak or memory error" '[ "$status" -eq 0 ]'
[ "$status" -eq 0 ] || tail -40 "$dir/valgrind.log"
echo "valgrind: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
