#!/usr/bin/env bash
# The operator's documentation kept in step with the code: the man pages render
# without a warning; deploy/notifier.conf.example and notifier.conf(5) name every
# section and key that notifier/config.c accepts (read from its own tables, so a key
# added without documenting it fails here); the example passes --check-config; one
# version in VERSION, both --version outputs and the Debian changelog.
# Prints "test_docs: N passed, M failed".
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
passed=0
failed=0
check() {
	if eval "$2"; then passed=$((passed + 1)); echo "ok - $1"
	else failed=$((failed + 1)); echo "not ok - $1"; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- man pages: rendered, no warning from man, groff or the mdoc macros
for page in docs/man/notifier.8 docs/man/notifier.conf.5 docs/man/dealpushctl.1; do
	MANWIDTH=80 man --warnings -l "$page" >"$tmp/out" 2>"$tmp/err"
	[ -s "$tmp/err" ] && sed 's/^/    /' "$tmp/err"
	check "man --warnings $page: no warning" "[ ! -s '$tmp/err' ] && [ -s '$tmp/out' ]"
done

# --- the keys config.c knows, from its tables: C("section.key", ...) and
# G("key", ...) (gateway sections), and the section names config_section accepts.
sed -n 's/^[[:space:]]*C("\([a-z_]*\)\.\([a-z_]*\)".*/\1.\2/p' notifier/config.c \
	| sort -u >"$tmp/keys"
sed -n 's/^[[:space:]]*G("\([a-z_]*\)".*/gateway.\1/p' notifier/config.c \
	| sort -u >>"$tmp/keys"
# The [compliance] keys are parsed by config_compliance, not a table.
printf '%s\n' compliance.cap_scope compliance.window compliance.cap >>"$tmp/keys"
grep -o 'strcmp(hdr, "[a-z]*")' notifier/config.c | sed 's/.*"\(.*\)".*/\1/' \
	| sort -u >"$tmp/sections"
echo gateway >>"$tmp/sections"
check "config.c tables read (at least 60 keys, 9 sections)" \
	"[ \$(wc -l <'$tmp/keys') -ge 60 ] && [ \$(wc -l <'$tmp/sections') -ge 9 ]"

# The example's keys, commented or not, as section.key; "[gateway NAME]" counts as
# section gateway; a secret key counts in its _env, _file or _credential form;
# window.X / cap.X as window / cap.
awk '
	/^#? *\[[^]]+\]/ {
		s = $0; sub(/^#? *\[/, "", s); sub(/\].*/, "", s)
		if (s ~ /^gateway[ \t]/) s = "gateway"
		sec = s; print "section " sec; next
	}
	/^#? *[a-z][A-Za-z0-9_.-]* *=/ {
		k = $0; sub(/^#? */, "", k); sub(/ *=.*/, "", k)
		print sec "." k
		sub(/_(env|file|credential)$/, "", k)
		sub(/^window\..*/, "window", k); sub(/^cap\..*/, "cap", k)
		print sec "." k
	}' deploy/notifier.conf.example | sort -u >"$tmp/example"
missing=""
while read -r k; do
	grep -qxF "$k" "$tmp/example" || missing="$missing $k"
done <"$tmp/keys"
while read -r s; do
	grep -qxF "section $s" "$tmp/example" || missing="$missing [$s]"
done <"$tmp/sections"
[ -n "$missing" ] && echo "    not in deploy/notifier.conf.example:$missing"
check "the example config has every section and key of config.c" "[ -z '$missing' ]"

# notifier.conf(5): every section header and every key as ".It Cm key".
missing=""
while read -r k; do
	key=${k#*.}
	grep -qE "^\.It Cm ${key}( |\.|\$)" docs/man/notifier.conf.5 || missing="$missing $k"
done <"$tmp/keys"
while read -r s; do
	grep -qE "^\.Ss \[${s}( NAME)?\]" docs/man/notifier.conf.5 || missing="$missing [$s]"
done <"$tmp/sections"
[ -n "$missing" ] && echo "    not in notifier.conf(5):$missing"
check "notifier.conf(5) documents every section and key of config.c" "[ -z '$missing' ]"

# The example is valid as shipped (its secrets from the environment).
TWILIO_AUTH_TOKEN=t X_CLIENT_SECRET=c X_REFRESH_TOKEN=r \
	"$BUILD/notifier" --check-config -c deploy/notifier.conf.example >"$tmp/check" 2>&1
rc=$?
[ "$rc" -ne 0 ] && sed 's/^/    /' "$tmp/check"
check "the example passes notifier --check-config" "[ $rc -eq 0 ]"

# One version everywhere.
v=$(cat VERSION)
check "notifier --version is VERSION ($v)" \
	"[ \"\$('$BUILD/notifier' --version)\" = 'notifier $v' ]"
check "dealpushctl --version is VERSION" \
	"[ \"\$('$BUILD/dealpushctl' --version)\" = 'dealpushctl $v' ]"
check "deploy/debian/changelog is at VERSION" \
	"[ \"\$(dpkg-parsechangelog -l deploy/debian/changelog -S Version)\" = '$v' ]"

echo "test_docs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
