#!/usr/bin/env bash
# The Debian package as an operator gets it: built from deploy/debian (make deb),
# lintian without errors, installed with dpkg -i into this machine (CI runs as root
# on a throwaway one), installed again, the installed /usr/bin/notifier run as user
# dealpush against the test Redis with a secret from a credentials folder until
# /healthz is ok, then stopped; the units checked by systemd-analyze verify (it
# needs no running systemd: it loads the unit files, checks every directive parses,
# ExecStart binaries exist and are executable, and the man pages in Documentation=
# exist) and by its offline security score; purged, installed over the kept user,
# purged again. Not root: skipped, counted neither way.
# Needs DP_REDIS_PORT (tests/run.sh). Prints "test_package: N passed, M failed".
set -u
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 2
. tests/lib.sh
passed=0
failed=0
check() {
	if eval "$2"; then passed=$((passed + 1)); echo "ok - $1"
	else failed=$((failed + 1)); echo "not ok - $1"; fi
}
if [ "$(id -u)" -ne 0 ]; then
	echo "test_package: 0 passed, 0 failed (skipped: dpkg -i needs root)"
	exit 0
fi
if [ "${DP_SANITIZED:-0}" = 1 ]; then
	# The package is built from its own sources with its own flags: nothing here
	# depends on the sanitizer build, and make test checks it.
	echo "test_package: 0 passed, 0 failed (skipped: sanitizer build)"
	exit 0
fi
# Not under the run folder: the installed notifier runs as user dealpush, who must
# be able to reach its config and state here ($TMPDIR, else /tmp).
dir=$(mktemp -d -t dealpush-pkgtest.XXXXXX)
npid=""
cleanup() {
	[ -n "$npid" ] && kill "$npid" 2>/dev/null && wait "$npid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT
version=$(cat VERSION)

# --- build and lint
make --no-print-directory BUILD="$BUILD" deb >"$dir/deb.log" 2>&1
rc=$?
deb=$(ls "$BUILD"/deb/dealpush_"${version}"_*.deb 2>/dev/null | head -1)
[ "$rc" -ne 0 ] && tail -20 "$dir/deb.log" | sed 's/^/    /'
check "make deb builds dealpush_${version}" "[ $rc -eq 0 ] && [ -f '$deb' ]"
if [ ! -f "$deb" ]; then
	echo "test_package: $passed passed, $((failed + 1)) failed"
	exit 1
fi
lintian --fail-on error "$deb" >"$dir/lintian.log" 2>&1
rc=$?
grep -E '^[EW]: ' "$dir/lintian.log" | sed 's/^/    /'
check "lintian reports no error" "[ $rc -eq 0 ]"

# --- install, and install again over itself
dpkg -i "$deb" >"$dir/dpkg.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && sed 's/^/    /' "$dir/dpkg.log"
check "dpkg -i installs it" "[ $rc -eq 0 ]"
dpkg -i "$deb" >"$dir/dpkg2.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && sed 's/^/    /' "$dir/dpkg2.log"
check "dpkg -i again (a reinstall) succeeds" "[ $rc -eq 0 ]"
check "/usr/bin/notifier --version is $version" \
	"[ \"\$(/usr/bin/notifier --version)\" = 'notifier $version' ]"
check "/usr/bin/dealpushctl --version is $version" \
	"[ \"\$(/usr/bin/dealpushctl --version)\" = 'dealpushctl $version' ]"
check "system user dealpush exists" \
	"uid=\$(id -u dealpush 2>/dev/null) && [ \"\$uid\" -lt 1000 ]"
check "/etc/dealpush/notifier.conf is a conffile" \
	"dpkg-query -W -f='\${Conffiles}' dealpush | grep -q ' /etc/dealpush/notifier.conf '"
check "/etc/dealpush/credentials is root's alone (0700)" \
	"[ \"\$(stat -c %a:%U /etc/dealpush/credentials)\" = 700:root ]"
check "man pages installed: notifier(8), notifier.conf(5), dealpushctl(1)" \
	"man -w 8 notifier >/dev/null && man -w 5 notifier.conf >/dev/null && man -w 1 dealpushctl >/dev/null"

# --- the units
for u in notifier.service notifier@test.service; do
	(cd "$dir" && systemd-analyze verify "/lib/systemd/system/$u") >"$dir/verify.log" 2>&1
	rc=$?
	[ -s "$dir/verify.log" ] && sed 's/^/    /' "$dir/verify.log"
	check "systemd-analyze verify $u: clean" "[ $rc -eq 0 ] && [ ! -s '$dir/verify.log' ]"
done
check "units: Type=notify, watchdog, restart, hardening, state dir, credentials" \
	"for k in Type=notify WatchdogSec= Restart=on-failure NoNewPrivileges=yes \
	    ProtectSystem=strict PrivateTmp=yes StateDirectory=dealpush LoadCredential=; do \
	    grep -q \"^\$k\" /lib/systemd/system/notifier.service && \
	    grep -q \"^\$k\" /lib/systemd/system/notifier@.service || exit 1; done"
check "notifier@.service reads /etc/dealpush/%i.conf" \
	"grep -q '^ExecStart=/usr/bin/notifier -c /etc/dealpush/%i.conf' \
	    /lib/systemd/system/notifier@.service"
systemd-analyze security --offline=yes --threshold=25 \
	/lib/systemd/system/notifier.service >"$dir/security.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && grep 'Overall' "$dir/security.log" | sed 's/^/    /'
check "systemd-analyze security: exposure at most 2.5" "[ $rc -eq 0 ]"

# --- the installed notifier, as the unit would run it: user dealpush, the admin
# token from a credential, against the test Redis
redis-cli -p "$DP_REDIS_PORT" FLUSHALL >/dev/null
chmod 0755 "$dir"
mkdir -p "$dir/creds" "$dir/state"
printf 'pkg-admin-token\n' >"$dir/creds/dealpush_admin-token"
chown -R dealpush:dealpush "$dir/creds" "$dir/state"
chmod 0700 "$dir/creds"
cat >"$dir/notifier.conf" <<CONF
[notifier]
consumer = pkgtest
[redis]
port = $DP_REDIS_PORT
[ingest]
block_ms = 200
[http]
port = 0
port_file = $dir/state/http.port
admin_token_credential = dealpush_admin-token
CONF
chmod 0644 "$dir/notifier.conf"
runuser -u dealpush -- env CREDENTIALS_DIRECTORY="$dir/creds" \
	/usr/bin/notifier --check-config -c "$dir/notifier.conf" >"$dir/check.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && sed 's/^/    /' "$dir/check.log"
check "installed notifier --check-config passes (secret from a credential)" "[ $rc -eq 0 ]"
# setpriv execs: the pid is the notifier's own, as under systemd.
CREDENTIALS_DIRECTORY="$dir/creds" setpriv --reuid=dealpush --regid=dealpush \
	--init-groups /usr/bin/notifier -c "$dir/notifier.conf" >"$dir/notifier.log" 2>&1 &
npid=$!
port=""
for _ in $(seq 1 200); do [ -s "$dir/state/http.port" ] && break; sleep 0.05; done
port=$(cat "$dir/state/http.port" 2>/dev/null)
status=""
for _ in $(seq 1 200); do
	status=$(curl -s -o "$dir/healthz" -w '%{http_code}' "http://127.0.0.1:${port:-1}/healthz")
	[ "$status" = 200 ] && break
	sleep 0.05
done
[ "$status" != 200 ] && tail -20 "$dir/notifier.log" | sed 's/^/    /'
check "installed notifier: /healthz 200 against the test Redis" "[ '$status' = 200 ]"
a=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port:-1}/v1/rules")
b=$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer pkg-admin-token' \
	"http://127.0.0.1:${port:-1}/v1/rules")
check "the admin token from the credential is the one in use ($a without, $b with)" \
	"[ '$a' = 401 ] && [ '$b' = 200 ]"
check "it runs as user dealpush" \
	"[ \"\$(ps -o user= -p $npid | tr -d ' ')\" = dealpush ]"
kill -TERM "$npid" 2>/dev/null
wait "$npid"
rc=$?
npid=""
check "SIGTERM: it exits 0" "[ $rc -eq 0 ]"

# --- purge, install over the kept user, purge again
dpkg -P dealpush >"$dir/purge.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && sed 's/^/    /' "$dir/purge.log"
check "dpkg -P purges it: binaries, config and credentials folder gone" \
	"[ $rc -eq 0 ] && [ ! -e /usr/bin/notifier ] && [ ! -e /etc/dealpush ]"
dpkg -i "$deb" >"$dir/dpkg3.log" 2>&1 && dpkg -P dealpush >>"$dir/dpkg3.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && sed 's/^/    /' "$dir/dpkg3.log"
check "install after a purge (user kept) and purge again" "[ $rc -eq 0 ]"

echo "test_package: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
