#!/usr/bin/env bash
# tests/run.sh BUILD: run every test against a private redis-server on 127.0.0.1.
#
# Unit and integration binaries are cmocka programs run with TAP output; shell tests
# print "<name>: N passed, M failed". Every process started is stopped at the end,
# also when a test fails or the run is interrupted. The last line is exactly
# "N passed, M failed"; the exit status is non-zero when M > 0.
# DP_TESTS="test_deliver test_config" runs only those (names of binaries or scripts).
# DP_KEEP_LOGS=1 keeps the logs of a run that passed (the measuring tests print their
# counts there as "# " lines).
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
. tests/lib.sh

DP_RUN_DIR="$ROOT/run/test-$$"
export DP_RUN_DIR DP_BUILD="$ROOT/$BUILD" DP_ROOT="$ROOT"
rm -rf "$DP_RUN_DIR"
mkdir -p "$DP_RUN_DIR"
trap 'dp_cleanup' EXIT
trap 'echo "interrupted"; exit 130' INT TERM

passed=0
failed=0
failures=""

dp_start_redis "$DP_RUN_DIR/redis" || { echo "0 passed, 1 failed"; exit 1; }

run_tap() {
	local bin=$1 name log rc p f t0
	name=$(basename "$bin")
	log="$DP_RUN_DIR/$name.log"
	t0=$SECONDS
	CMOCKA_MESSAGE_OUTPUT=TAP timeout 600 "$bin" >"$log" 2>&1
	rc=$?
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^not ok ' "$log")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
		failures="$failures\n  $name: exited with status $rc (see $log)"
	fi
	grep '^not ok ' "$log" | sed "s/^/  $name: /" > "$DP_RUN_DIR/.nok"
	[ -s "$DP_RUN_DIR/.nok" ] && failures="$failures\n$(cat "$DP_RUN_DIR/.nok")"
	printf '%-28s %3d passed, %d failed  %4ds\n' "$name" "$p" "$f" $((SECONDS - t0))
	passed=$((passed + p))
	failed=$((failed + f))
}

run_sh() {
	local script=$1 name log rc line p f t0
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
	# A script's last lines say why: shown here, where a CI log that keeps only the
	# end of the output still has them.
	[ "$f" -gt 0 ] && failures="$failures\n  $name: see $log\n$(tail -n 12 "$log" |
		sed 's/^/    | /')"
	printf '%-28s %3d passed, %d failed  %4ds\n' "$name" "$p" "$f" $((SECONDS - t0))
	passed=$((passed + p))
	failed=$((failed + f))
}

selected() {
	[ -z "${DP_TESTS:-}" ] && return 0
	case " $DP_TESTS " in *" $1 "*) return 0 ;; esac
	return 1
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] && selected "$(basename "$t")" && run_tap "$t"
done
for s in tests/integration/valgrind.sh tests/integration/walkthrough.sh tests/deploy/test_*.sh \
	tests/browser/test_*.sh; do
	[ -f "$s" ] && selected "$(basename "$s" .sh)" && run_sh "$s"
done

# The simulator's self-test is a tool's, not the product's: it reports on a line of
# its own and is not in the count, but a failure still fails the run.
sim_failed=0
if [ -f tests/gwsim/selftest.sh ] && selected selftest; then
	p0=$passed f0=$failed
	run_sh tests/gwsim/selftest.sh
	sim_failed=$((failed - f0))
	echo "gwsim selftest: $((passed - p0)) passed, $sim_failed failed"
	passed=$p0 failed=$f0
fi

if [ "$failed" -gt 0 ] || [ "$sim_failed" -gt 0 ]; then
	printf 'failures:%b\nlogs: %s\n' "$failures" "$DP_RUN_DIR"
elif [ -n "${DP_KEEP_LOGS:-}" ]; then
	echo "logs: $DP_RUN_DIR"
else
	rm -rf "$DP_RUN_DIR"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$sim_failed" -eq 0 ]
