#!/bin/sh
# tests/fuzz/run.sh SECONDS: builds every tests/fuzz/fuzz_*.c libFuzzer target with
# clang (ASan + UBSan) over the code it tests (rules/*.c, or the deal, subscriber or
# inbound-keyword parser, the raw HTTP head reader, or the config's URL check) into build/fuzz/, then runs each for SECONDS
# seconds on a working copy of its checked-in seed corpus (tests/fuzz/corpus/<target>/,
# never written to). Exits non-zero when a target fails to build or finds a crash, a
# leak or a broken promise; the input that did it is left in build/fuzz/.
set -eu

secs=${1:-30}
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build/fuzz
CC=${FUZZ_CC:-clang}
CFLAGS="-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Wall -Wextra -Werror
-Wshadow -Wformat=2 -Wno-format-nonliteral -g -O1 -fno-omit-frame-pointer
-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"

mkdir -p "$out"
status=0
for src in "$root"/tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	seeds=$root/tests/fuzz/corpus/$name
	work=$out/corpus-$name
	echo "fuzz: building $name"
	# The code each target exercises: the rule library, or one of the daemon's pure
	# parsers of hostile input.
	case $name in
	fuzz_deal) srcs="$root/notifier/deal.c $root/notifier/jsonv.c $root/notifier/timefmt.c" ;;
	fuzz_subscriber) srcs="$root/rules/channel.c $root/notifier/subscriber.c $root/notifier/subscriber_canon.c $root/notifier/intern.c $root/notifier/deal.c $root/notifier/jsonv.c $root/notifier/timefmt.c" ;;
	fuzz_keywords) srcs="$root/notifier/keywords.c $root/notifier/kwtext.c" ;;
	fuzz_httphead) srcs="$root/notifier/httphead.c" ;;
	fuzz_uri) srcs="$root/notifier/uri.c" ;;
	*) srcs=$(echo "$root"/rules/*.c) ;;
	esac
	# shellcheck disable=SC2086 # CFLAGS, srcs and the pkg-config output are lists
	if ! $CC $CFLAGS -I"$root/include" $(pkg-config --cflags libcjson) $srcs "$src" \
	    $(pkg-config --libs libcjson) -lm -o "$out/$name"; then
		status=1
		continue
	fi
	mkdir -p "$work"
	dict=""
	if [ -f "$root/tests/fuzz/$name.dict" ]; then
		dict="-dict=$root/tests/fuzz/$name.dict"
	fi
	echo "fuzz: running $name for ${secs}s"
	# shellcheck disable=SC2086 # dict is empty or one flag
	if ! UBSAN_OPTIONS=print_stacktrace=1 "$out/$name" -max_total_time="$secs" \
	    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 $dict \
	    -artifact_prefix="$out/$name-" "$work" "$seeds"; then
		echo "fuzz: $name FAILED; see $out/$name-*" >&2
		status=1
	fi
done
if [ "$status" -eq 0 ]; then
	echo "fuzz: all targets clean"
fi
exit "$status"
