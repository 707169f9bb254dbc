#!/usr/bin/env bash
# tests/run.sh BUILD: run every test against private redis-servers on 127.0.0.1.
#
# Unit and integration binaries are cmocka programs run with TAP output; shell tests
# print "<name>: N passed, M failed". The tests run in DP_JOBS lanes at once (default:
# twice the number of cores, at most 4); each lane has a redis-server of its own, and a test
# flushes only its lane's server. Every process started is stopped at the end, also
# when a test fails or the run is interrupted. The last line is exactly
# "N passed, M failed"; the exit status is non-zero when M > 0.
# DP_TESTS="test_deliver test_config" runs only those (names of binaries or scripts).
# DP_KEEP_LOGS=1 keeps the logs of a run that passed (the measuring tests print their
# counts there as "# " lines). DP_JOBS=1 runs one test at a time.
# A few tests run a second time on the sharded layout of 4 shards (DP_SHARDS=4, see
# tests/integration/itshards.h), reported as "<test>@s4" and counted in the total;
# DP_TESTS="test_deliver@s4" names that pass alone, DP_S4_TESTS="..." chooses them.
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
. tests/lib.sh

DP_RUN_DIR="$ROOT/run/test-$$"
export DP_RUN_DIR DP_BUILD="$ROOT/$BUILD" DP_ROOT="$ROOT"
rm -rf "$DP_RUN_DIR"
mkdir -p "$DP_RUN_DIR"
# Each lane has a run folder of its own (DP_RUN_DIR/lane-N, with its pids file, since
# a test's own cleanup stops every process listed there); this stops them all.
cleanup_lanes() {
	local d
	for d in "$TOP"/lane-*; do
		[ -d "$d" ] || continue
		DP_RUN_DIR=$d dp_cleanup
		[ -f "$d/redis.pid" ] && kill "$(cat "$d/redis.pid")" 2>/dev/null
	done
}
TOP=$DP_RUN_DIR
trap 'cleanup_lanes' EXIT
trap 'echo "interrupted"; exit 130' INT TERM

# The slowest tests first, so that the lanes end together; the rest in name order.
SLOW_FIRST="test_sentinel test_promises_takeover test_package test_promises
	test_deliver test_law valgrind test_schedule test_law_adversarial test_xauth
	test_migrate test_broad test_console test_failover test_chaos test_cluster_e2e
	test_shard_owner test_cluster_faults test_rcluster test_ctl_cluster"

selected() {
	[ -z "${DP_TESTS:-}" ] && return 0
	case " $DP_TESTS " in *" $1 "*) return 0 ;; esac
	return 1
}

# The second pass on 4 shards: the tests that cross the most sharded paths (every
# subscriber, push, consent, cap, delay and report key behind its shard's tag), at
# about 80 s of one lane's time.
S4_TESTS=${DP_S4_TESTS-"test_deliver test_e2e test_hooks test_optout test_funnel test_clicks test_resolve test_mirror test_decay test_backup test_persistence test_ab test_promises_takeover test_chaos test_safety test_promises"}

# The queue: one "kind path" line per test; kind is tap, s4 (tap on 4 shards), sh or
# sim (the gateway simulator's self-test, counted apart).
queue="$TOP/.queue"
{
	for t in "$BUILD"/tests/test_*; do
		[ -x "$t" ] && selected "$(basename "$t")" && echo "tap $t"
	done
	for t in $S4_TESTS; do
		[ -x "$BUILD/tests/$t" ] && selected "$t@s4" && echo "s4 $BUILD/tests/$t"
	done
	for s in tests/integration/valgrind.sh tests/integration/walkthrough.sh \
		tests/deploy/test_*.sh tests/browser/test_*.sh; do
		[ -f "$s" ] && selected "$(basename "$s" .sh)" && echo "sh $s"
	done
	[ -f tests/gwsim/selftest.sh ] && selected selftest && echo "sim tests/gwsim/selftest.sh"
} > "$queue.all"
: > "$queue"
for slow in $SLOW_FIRST; do
	grep -E "/$slow(\.sh)?\$" "$queue.all" >> "$queue"
done
grep -vxF -f "$queue" "$queue.all" >> "$queue"
echo 0 > "$queue.next"
: > "$TOP/.results"
: > "$TOP/.failures"

# next_test: prints the next line of the queue, or nothing when it is empty.
next_test() {
	local i
	{
		flock 9
		i=$(cat "$queue.next")
		echo $((i + 1)) > "$queue.next"
	} 9> "$queue.lock"
	sed -n "$((i + 1))p" "$queue"
}

# record KIND NAME PASSED FAILED SECONDS [WHY]: one result, printed and kept.
record() {
	printf '%s %s %d %d\n' "$1" "$2" "$3" "$4" >> "$TOP/.results"
	[ -n "${6:-}" ] && printf '%s\n' "$6" >> "$TOP/.failures"
	printf '%-28s %3d passed, %d failed  %4ds\n' "$2" "$3" "$4" "$5"
}

# run_tap BIN [SUFFIX]: SUFFIX (e.g. @s4) is added to the name the result carries.
run_tap() {
	local bin=$1 name log rc p f t0 why=""
	name=$(basename "$bin")${2:-}
	log="$DP_RUN_DIR/$name.log"
	t0=$SECONDS
	CMOCKA_MESSAGE_OUTPUT=TAP timeout 600 "$bin" >"$log" 2>&1
	rc=$?
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^not ok ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		why="  $name: exited with status $rc (see $log)"
	fi
	[ "$f" -gt 0 ] && why="$why$(grep '^not ok ' "$log" | sed "s/^/\n  $name: /")"
	record tap "$name" "$p" "$f" $((SECONDS - t0)) "$why"
}

run_sh() {
	local kind=$1 script=$2 name log rc line p f t0 why=""
	name=$(basename "$(dirname "$script")")-$(basename "$script" .sh)
	log="$DP_RUN_DIR/$name.log"
	t0=$SECONDS
	timeout 600 bash "$script" "$BUILD" >"$log" 2>&1
	rc=$?
	line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -1)
	p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
	f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
	[ -n "$line" ] || { p=0; f=1; }
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	# A script's last lines say why: shown at the end, where a CI log that keeps
	# only the end of the output still has them.
	[ "$f" -gt 0 ] && why="  $name: see $log
$(tail -n 12 "$log" | sed 's/^/    | /')"
	record "$kind" "$name" "$p" "$f" $((SECONDS - t0)) "$why"
}

# lane N: a redis-server of its own, then tests from the queue until it is empty.
lane() {
	local kind path
	DP_PIDS=""
	DP_RUN_DIR="$TOP/lane-$1"
	mkdir -p "$DP_RUN_DIR"
	if ! dp_start_redis "$DP_RUN_DIR/redis"; then
		record tap "redis-server-lane-$1" 0 1 0 "  lane $1: could not start redis-server"
		return
	fi
	# Not in the lane's pids file: a test that stops what it started stops those.
	echo "${DP_PIDS# }" > "$DP_RUN_DIR/redis.pid"
	while read -r kind path < <(next_test) && [ -n "$path" ]; do
		case $kind in
		tap) run_tap "$path" ;;
		s4) DP_SHARDS=4 run_tap "$path" @s4 ;;
		*) run_sh "$kind" "$path" ;;
		esac
	done
	dp_cleanup
}

# Two lanes per core, at most 4: the tests mostly wait (on gateways answering late,
# leases running out, processes frozen), and four lanes on 2 cores keep them about
# 60% busy; one lane per core left them half idle and took 11-12 minutes, not 7.
cores=$(nproc 2>/dev/null || echo 1)
jobs=${DP_JOBS:-$((2 * cores))}
case $jobs in '' | *[!0-9]*) jobs=1 ;; esac
[ "$jobs" -lt 1 ] && jobs=1
[ "$jobs" -gt 4 ] && jobs=4
lanes=""
for n in $(seq 1 "$jobs"); do
	lane "$n" &
	lanes="$lanes $!"
done
for pid in $lanes; do
	wait "$pid"
done

passed=$(awk '$1 != "sim" { s += $3 } END { print s + 0 }' "$TOP/.results")
failed=$(awk '$1 != "sim" { s += $4 } END { print s + 0 }' "$TOP/.results")
# The simulator's self-test is a tool's, not the product's: it reports on a line of
# its own and is not in the count, but a failure still fails the run.
sim_failed=0
if grep -q '^sim ' "$TOP/.results"; then
	sim_passed=$(awk '$1 == "sim" { s += $3 } END { print s + 0 }' "$TOP/.results")
	sim_failed=$(awk '$1 == "sim" { s += $4 } END { print s + 0 }' "$TOP/.results")
	echo "gwsim selftest: $sim_passed passed, $sim_failed failed"
fi
# A test in the queue that no lane reported (a lane died) is a failure.
missing=$(($(wc -l < "$queue") - $(wc -l < "$TOP/.results")))
if [ "$missing" -gt 0 ]; then
	failed=$((failed + missing))
	echo "  $missing test(s) never reported (see $TOP)" >> "$TOP/.failures"
fi

if [ "$failed" -gt 0 ] || [ "$sim_failed" -gt 0 ]; then
	printf 'failures:\n%s\nlogs: %s\n' "$(cat "$TOP/.failures")" "$TOP"
elif [ -n "${DP_KEEP_LOGS:-}" ]; then
	echo "logs: $TOP"
else
	rm -rf "$TOP"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$sim_failed" -eq 0 ]
