#!/usr/bin/env bash
# The operations files under deploy/ are valid for the tools that load them: the
# nginx TLS front (nginx -t, with a throwaway certificate in place of the real one)
# and the Prometheus alert rules (promtool check rules, and promtool test rules:
# each alert fires on the series that should raise it).
# Prints "test_ops_files: N passed, M failed".
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

# --- nginx: the example as shipped, only the certificate and log paths moved here
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=notify.example.com \
	-keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1
sed -e "s|/etc/ssl/certs/notify.example.com.pem|$tmp/cert.pem|" \
	-e "s|/etc/ssl/private/notify.example.com.key|$tmp/key.pem|" \
	-e "s|/var/log/nginx/dealpush-access.log|$tmp/access.log|" \
	deploy/nginx/dealpush.conf >"$tmp/dealpush.conf"
cat >"$tmp/nginx.conf" <<CONF
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events {}
http {
	access_log off;
	client_body_temp_path $tmp/body;
	proxy_temp_path $tmp/proxy;
	include $tmp/dealpush.conf;
}
CONF
nginx -t -q -c "$tmp/nginx.conf" -p "$tmp" >"$tmp/nginx.out" 2>&1
rc=$?
[ -s "$tmp/nginx.out" ] && sed 's/^/    /' "$tmp/nginx.out"
check "nginx -t accepts deploy/nginx/dealpush.conf" "[ $rc -eq 0 ] && [ ! -s '$tmp/nginx.out' ]"
check "nginx passes the request line untouched (proxy_pass without a URI)" \
	"grep -qE '^[[:space:]]*proxy_pass http://dealpush_notifier;' deploy/nginx/dealpush.conf"

# --- Prometheus alert rules
promtool check rules deploy/prometheus/dealpush-alerts.yml >"$tmp/rules.out" 2>&1
rc=$?
[ "$rc" -ne 0 ] && sed 's/^/    /' "$tmp/rules.out"
check "promtool check rules deploy/prometheus/dealpush-alerts.yml" "[ $rc -eq 0 ]"
(cd deploy/prometheus && promtool test rules dealpush-alerts.test.yml) >"$tmp/test.out" 2>&1
rc=$?
[ "$rc" -ne 0 ] && sed 's/^/    /' "$tmp/test.out"
check "promtool test rules: the alerts fire when they should" "[ $rc -eq 0 ]"
# Every metric an alert names is one the notifier exports (docs/http.md lists them).
missing=""
for m in $(grep -oE 'dealpush_[a-z_]+' deploy/prometheus/dealpush-alerts.yml | sort -u); do
	grep -qE "\`$m[\`{]" docs/http.md || missing="$missing $m"
done
[ -n "$missing" ] && echo "    not in docs/http.md:$missing"
check "the alerts use only documented metrics" "[ -z '$missing' ]"

echo "test_ops_files: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
