#!/usr/bin/env bash
# tests/bench/run.sh BUILD [NAME...]: run every benchmark in BUILD/bench (or only
# those named, e.g. bench_million) against a private redis-server on 127.0.0.1
# (`make bench` runs them all). The benches' own variables pass through, e.g.
#   BENCH_MILLION_SUBS=200000 tests/bench/run.sh build bench_million
#
# Each bench_* binary prints its figures and ends with one "BENCH name=..." line; this
# runner shows their output as it comes, then a summary of every BENCH line. Every
# process started is stopped at the end, also when a bench fails or the run is
# interrupted. The exit status is non-zero when any bench fails or prints no BENCH line.
set -u
BUILD=${1:-build}
[ "$#" -gt 0 ] && shift
ONLY="$*"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
. tests/lib.sh

DP_RUN_DIR="$ROOT/run/bench-$$"
export DP_RUN_DIR DP_BUILD="$ROOT/$BUILD" DP_ROOT="$ROOT"
rm -rf "$DP_RUN_DIR"
mkdir -p "$DP_RUN_DIR"
trap 'dp_cleanup' EXIT
trap 'echo "interrupted"; exit 130' INT TERM

dp_start_redis "$DP_RUN_DIR/redis" || exit 1

benches=0
failed=0
failures=""
: > "$DP_RUN_DIR/bench-lines"

for b in "$BUILD"/bench/bench_*; do
	[ -f "$b" ] && [ -x "$b" ] || continue
	name=$(basename "$b")
	case " $ONLY " in
	"  " | *" $name "*) ;;
	*) continue ;;
	esac
	log="$DP_RUN_DIR/$name.log"
	benches=$((benches + 1))
	echo "== $name"
	# bench_million caps each of its phases itself (import, start, plan, delivery,
	# restart): its worst case is about 6 minutes at 1M subscribers, about 3 when
	# every phase meets its goal.
	cap=300
	[ "$name" = bench_million ] && cap=480
	timeout --foreground "$cap" "$b" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	# A bench killed by Ctrl-C makes timeout exit 130; stop here, not at the next one.
	if [ "$rc" -eq 130 ]; then
		echo "interrupted"
		exit 130
	fi
	grep '^BENCH ' "$log" >> "$DP_RUN_DIR/bench-lines"
	if [ "$rc" -ne 0 ]; then
		failed=$((failed + 1))
		failures="$failures\n  $name: exited with status $rc (see $log)"
	elif ! grep -q '^BENCH ' "$log"; then
		failed=$((failed + 1))
		failures="$failures\n  $name: printed no BENCH line (see $log)"
	fi
	echo
done

if [ "$benches" -eq 0 ]; then
	echo "no benchmarks in $BUILD/bench: build them with make"
	exit 1
fi
echo "== summary: $benches benchmarks, $failed failed"
cat "$DP_RUN_DIR/bench-lines"
if [ "$failed" -gt 0 ]; then
	printf 'failures:%b\n' "$failures"
fi
[ "$failed" -eq 0 ]
