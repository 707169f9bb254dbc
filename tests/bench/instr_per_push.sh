#!/usr/bin/env bash
# tests/bench/instr_per_push.sh BUILD [SMALL LARGE]: the notifier's instructions per push
# in bench_deliver, counted by valgrind's callgrind, which do not move with the
# machine's load as pushes/s and CPU time do.
#
# bench_deliver runs twice (SMALL and LARGE subscribers, default 2000 and 6000) with
# the notifier of BUILD under callgrind; start-up, the warm-up deal and the shut-down
# cost the same in both runs, so (instructions of the large run - those of the small)
# / (LARGE - SMALL) is what one more push costs. The runs' folder keeps both
# callgrind files for callgrind_annotate. Under callgrind the notifier is some 50
# times slower: the runs' pushes/s mean nothing; batch sizes follow the timing, so
# repeated runs differ by about 2%.
set -u
BUILD=${1:-build}
SMALL=${2:-2000}
LARGE=${3:-6000}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
command -v valgrind > /dev/null || { echo "instr_per_push: needs valgrind"; exit 2; }
[ -x "$BUILD/notifier" ] || { echo "instr_per_push: no $BUILD/notifier: make first"; exit 2; }

# A build folder whose notifier is the real one under callgrind, the rest links.
CG="$BUILD/callgrind"
OUT="$ROOT/run/instr-$$"
rm -rf "$CG" "$OUT"
mkdir -p "$CG" "$OUT"
for n in bench dealpushctl gen gwsim tests; do
	ln -s "../$n" "$CG/$n"
done
cat > "$CG/notifier" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file="\$DP_CG_OUT.%p" \\
    "$ROOT/$BUILD/notifier" "\$@"
EOF
chmod +x "$CG/notifier"

total() {
	callgrind_annotate "$1".* 2> /dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}

for n in "$SMALL" "$LARGE"; do
	if ! DP_CG_OUT="$OUT/n$n" BENCH_DELIVER_SUBS=$n tests/bench/run.sh "$CG" bench_deliver \
	    > "$OUT/n$n.log" 2>&1; then
		echo "instr_per_push: bench_deliver with $n subscribers failed (see $OUT/n$n.log)"
		exit 1
	fi
done
a=$(total "$OUT/n$SMALL")
b=$(total "$OUT/n$LARGE")
rm -rf "$CG"
if [ -z "$a" ] || [ -z "$b" ]; then
	echo "instr_per_push: no callgrind totals in $OUT"
	exit 1
fi
echo "BENCH name=notifier_instr_per_push instr=$(( (b - a) / (LARGE - SMALL) )) small=$a large=$b files=$OUT"
