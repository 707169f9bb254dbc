#!/usr/bin/env bash
# tests/browser/test_console.sh BUILD: the console in Debian's chromium (issue 19), on
# the `make run` setup (deploy/run.sh, in the background): a marketer and a viewer
# token made over the API, a deal published and sent, then console.mjs signs in,
# pauses and resumes, reads the deal's funnel and the rules, and signs out.
# playwright-core comes from npm at the version package-lock.json pins (npm ci, once);
# the browser is /usr/bin/chromium (deploy/install-deps.sh --test), never a download.
# Each page's screenshot goes to the run folder (browser/screenshots/*.png).
# Prints "browser-console: N passed, M failed".
set -u
BUILD=${1:-build}
ROOT=${DP_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT" || exit 2
RUN=${DP_RUN_DIR:-$ROOT/run/browser-$$}/browser
rm -rf "$RUN"
mkdir -p "$RUN"
fail() { echo "test_console: $*"; echo "browser-console: 0 passed, 1 failed"; exit 1; }

chromium=${DP_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || fail "no $chromium (deploy/install-deps.sh --test installs it)"
command -v node >/dev/null || fail "no node (deploy/install-deps.sh --test installs it)"
if [ ! -d tests/browser/node_modules/playwright-core ]; then
	(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) >"$RUN/npm.log" 2>&1 ||
		{ cat "$RUN/npm.log"; fail "npm ci failed"; }
fi

DP_DEMO_DIR="$RUN/demo" setsid ./deploy/run.sh "$BUILD" >"$RUN/run.out" 2>&1 &
demo=$!
trap 'kill -TERM -- -$demo 2>/dev/null; wait $demo 2>/dev/null' EXIT
for _ in $(seq 1 600); do
	grep -q "Press Ctrl-C" "$RUN/run.out" 2>/dev/null && break
	kill -0 "$demo" 2>/dev/null || break
	sleep 0.1
done
[ -s "$RUN/demo/env" ] || { tail -20 "$RUN/run.out"; fail "make run's setup did not come up"; }
# shellcheck disable=SC1091 # written by deploy/run.sh
. "$RUN/demo/env"
ctl="$BUILD/dealpushctl"

token_of() {   # token_of NAME ROLE: a new token of that role, made over the API
	curl -s -X POST -H "Authorization: Bearer $DEALPUSH_TOKEN" \
		"$DEALPUSH_API/v1/tokens" -d "{\"name\":\"$1\",\"role\":\"$2\"}" |
		sed -n 's/.*"token":"\(dp_[0-9a-f]*\)".*/\1/p'
}
marketer=$(token_of ui-marketer marketer)
viewer=$(token_of ui-viewer viewer)
admin=$(token_of ui-admin admin)
[ -n "$marketer" ] && [ -n "$viewer" ] && [ -n "$admin" ] || fail "could not make the tokens"

# A deal for the demo's subscribers, sent before the browser looks at it.
cat >"$RUN/deal.json" <<EOD
{"id":"ui-deal-1","title":"Console test deal","category":"headphones","price":99,"list_price":199,"currency":"USD","url":"https://shop.example/d/ui-1"}
EOD
echo '{"id":"ui-me","phone":"+15125550188","channels":["sms"],"consent":{"sms":"2026-12-01T10:00:00Z"},"timezone":"America/Chicago","interests":{"categories":["headphones"]}}' |
	$ctl subscribers import - >"$RUN/import.out" 2>&1 || fail "import failed"
sleep 1.2      # the mirror follows within a second
$ctl publish --expires-in 3600 "$RUN/deal.json" >"$RUN/publish.out" 2>&1 || fail "publish failed"
for _ in $(seq 1 200); do
	$ctl --json report deal ui-deal-1 2>/dev/null | grep -q '"sent":[1-9]' && break
	sleep 0.1
done
# A deal whose title is markup, which every page must show as text.
cat >"$RUN/markup.json" <<EOD
{"id":"ui-deal-markup","title":"<script>window.pwned=1</script><b>Bold</b> deal","category":"none","price":5,"currency":"USD","url":"https://shop.example/d/m"}
EOD
$ctl publish --expires-in 3600 "$RUN/markup.json" >>"$RUN/publish.out" 2>&1 ||
	fail "publish of the markup deal failed"
# A reply that is no keyword, as hook_consent.lua keeps one.
redis-cli -h "${DEALPUSH_REDIS%:*}" -p "${DEALPUSH_REDIS##*:}" XADD replies '*' \
	from +15125550188 text 'is the <b>blue</b> one back?' received_at "$(date +%s)" \
	reason no_keyword channel sms sid SMui >/dev/null || fail "could not add a reply"

# A deal that takes its codes from a pool, for the codes left on its page.
printf 'UI-SHOP-1\nUI-SHOP-2\nUI-SHOP-3\n' | curl -s -X POST -H "Authorization: Bearer $DEALPUSH_TOKEN" \
	--data-binary @- "$DEALPUSH_API/v1/codes/ui-shop" >/dev/null || fail "could not fill ui-shop"
cat >"$RUN/codes.json" <<EOD
{"id":"ui-deal-codes","title":"Console pool deal","category":"headphones","price":49,"currency":"USD","url":"https://shop.example/d/ui-c","code_pool":"codes:ui-shop"}
EOD
$ctl publish --expires-in 3600 "$RUN/codes.json" >>"$RUN/publish.out" 2>&1 ||
	fail "publish of the pool deal failed"
# A deal the guards held, dead-lettered as ingest does (reason held, the whole deal as
# payload): the console shows it waiting and confirms it (deal_confirm.lua).
exp=$(( $(date +%s) + ${DEALPUSH_CLOCK_OFFSET_S:-0} + 3600 ))
held="{\"id\":\"ui-held\",\"title\":\"Console held deal\",\"category\":\"headphones\",\"price\":19,\"currency\":\"USD\",\"url\":\"https://shop.example/d/ui-h\",\"expires_at\":$exp}"
# deals:dead, "{deals}:dead" in the sharded layout that make run uses (docs/architecture.md)
dead=deals:dead
[ "$(redis-cli -h "${DEALPUSH_REDIS%:*}" -p "${DEALPUSH_REDIS##*:}" EXISTS dealpush:layout)" = 1 ] &&
	dead='{deals}:dead'
redis-cli -h "${DEALPUSH_REDIS%:*}" -p "${DEALPUSH_REDIS##*:}" XADD "$dead" '*' \
	reason held field audience error 'audience 90 over the guard of 50' entry 0-1 \
	deal "$held" >/dev/null || fail "could not add the held deal"

mkdir -p "$RUN/screenshots"
DP_UI_BASE=$DEALPUSH_API DP_UI_MARKETER=$marketer DP_UI_VIEWER=$viewer DP_UI_ADMIN=$admin \
	DP_UI_SHOTS="$RUN/screenshots" \
	DP_UI_DEAL=ui-deal-1 DP_CHROMIUM=$chromium \
	timeout 300 node tests/browser/console.mjs 2>&1 | tee "$RUN/console.out"
line=$(grep -E '^console: [0-9]+ passed, [0-9]+ failed$' "$RUN/console.out" | tail -1)
[ -n "$line" ] || fail "the browser run ended without its count"
echo "browser-${line}"
