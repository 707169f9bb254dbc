#!/usr/bin/env bash
# tests/integration/walkthrough.sh BUILD: the README's walkthrough, step by step, on
# the `make run` setup (deploy/run.sh, in the background): create a subscriber, apply
# a rule, simulate and publish a deal, click the link, post a conversion and read the
# funnel, all with dealpushctl. Each step checks what the README says it shows.
# Prints "walkthrough: N passed, M failed".
set -u
BUILD=${1:-build}
ROOT=${DP_ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
cd "$ROOT" || exit 2
RUN=${DP_RUN_DIR:-$ROOT/run/walkthrough-$$}/walkthrough
rm -rf "$RUN"
mkdir -p "$RUN"

passed=0
failed=0
check() {      # check NAME COMMAND...: one step, counted
	local name=$1
	shift
	if "$@" >>"$RUN/steps.log" 2>&1; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "FAIL: $name" | tee -a "$RUN/steps.log"
	fi
}
has() { grep -q -- "$2" "$1"; }

DP_DEMO_DIR="$RUN/demo" setsid ./deploy/run.sh "$BUILD" >"$RUN/run.out" 2>&1 &
demo=$!
trap 'kill -TERM -- -$demo 2>/dev/null; wait $demo 2>/dev/null' EXIT
for _ in $(seq 1 600); do
	grep -q "Press Ctrl-C" "$RUN/run.out" 2>/dev/null && break
	kill -0 "$demo" 2>/dev/null || break
	sleep 0.1
done
check "make run's setup comes up and writes its env file" test -s "$RUN/demo/env"
# The README's sample lines are lines make run prints, once the clock, the port and
# the link's token are set aside, and the deal a daily cap stopped: the example
# deals are planned and delivered concurrently (several at once, one job stream per
# shard), so which of a subscriber's deals comes after its cap is full varies from
# run to run; that the cap stops the subscriber does not.
demo_line() {
	sed -E 's/^ *\+[0-9?]+ ms/+N ms/; s/Ends [A-Z][a-z]{2} [0-9]{2}:[0-9]{2} [A-Z]+/Ends DAY/
		s#127\.0\.0\.1:[0-9]+/c/[A-Za-z0-9_-]+#LINK#; s/^ +//; s/ +$//
		s/daily_cap \(deal [a-z0-9-]+\)/daily_cap (deal D)/'
}
readme_lines=$(grep -E '^  (\+[0-9?]+ ms|not sent)' README.md |
	demo_line)
check "the README shows two sample lines" test "$(printf '%s\n' "$readme_lines" | wc -l)" -eq 2
printf '%s\n' "$readme_lines" >"$RUN/readme-lines"
demo_line <"$RUN/run.out" >"$RUN/run-lines"
# no line of the README's that is not a line of the run
check "each sample line of the README is a line make run printed" \
	test -z "$(grep -vxFf "$RUN/run-lines" "$RUN/readme-lines")"
check "make run shows a push that ended without a text, and why" \
	grep -Eq '^  not sent  sms  s-[0-9]+ +daily_cap \(deal [a-z0-9-]+\)$' "$RUN/run.out"
# shellcheck disable=SC1091 # written by deploy/run.sh
. "$RUN/demo/env"
ctl="$BUILD/dealpushctl"

# 1. A subscriber, through the admin API.
echo '{"id":"me","phone":"+15125550199","channels":["sms"],"consent":{"sms":"2026-12-01T10:00:00Z"},"timezone":"America/Chicago","interests":{"categories":["headphones"]}}' \
	| $ctl subscribers import - >"$RUN/import.out" 2>&1
check "subscribers import - creates the subscriber" has "$RUN/import.out" "imported 1"

# 2. A rule: checked locally, then applied.
mkdir -p "$RUN/myrules"
cat >"$RUN/myrules/audio.rules" <<'EOF'
rule audio
  when deal.category = "headphones" and deal.discount_pct >= 10
  audience interested
  send sms
  priority 50
  template sms "Audio deal: {title} {price} ({discount_pct}% off) {link} Reply STOP to end"
end
EOF
check "rules check passes" $ctl rules check "$RUN/myrules"
$ctl rules apply "$RUN/myrules" >"$RUN/apply.out" 2>&1
check "rules apply puts the rule" has "$RUN/apply.out" "audio"
echo 'rule broken
  when deal.colour = "red"
end' >"$RUN/myrules/broken.rules"
$ctl rules apply "$RUN/myrules" >"$RUN/broken.out" 2>&1
check "a rule that does not compile is refused with its line and column" \
	has "$RUN/broken.out" "broken.rules:2:"
rm "$RUN/myrules/broken.rules"

# 3. Simulate: who would get it, sending nothing.
cat >"$RUN/deal.json" <<EOF
{"id":"wh-1000","title":"WH-1000XM5","category":"headphones","brand":"sony","price":279,"list_price":399,"currency":"USD","url":"https://shop.example/d/wh-1000","campaign":"winter","expires_at":$(($(date +%s) + 86400))}
EOF
before=$(grep -c '"status":201' "$RUN/demo/gwsim.jsonl")
$ctl simulate "$RUN/deal.json" >"$RUN/simulate.out" 2>&1
check "simulate names the subscriber, the rule and the text" \
	has "$RUN/simulate.out" "me .*audio.*Audio deal: WH-1000XM5"
check "simulate sends nothing" test "$(grep -c '"status":201' "$RUN/demo/gwsim.jsonl")" -eq "$before"

# 4. Publish: the text arrives at the gateway with a click link. An hour of life is
# an hour on the demo's clock too (17:00 UTC, up to 12 hours from the real one).
$ctl publish --expires-in 3600 "$RUN/deal.json" >"$RUN/publish.out" 2>&1
check "publish adds the deal to the stream" has "$RUN/publish.out" "published wh-1000"
link=""
for _ in $(seq 1 100); do
	link=$(grep '+15125550199' "$RUN/demo/gwsim.jsonl" | grep -o 'http://127.0.0.1:[0-9]*/c/[A-Za-z0-9_-]*' | tail -1)
	[ -n "$link" ] && break
	sleep 0.1
done
check "the push reaches the gateway with a click link" test -n "$link"
expires_of_last_deal() {
	redis-cli -h "${DEALPUSH_REDIS%:*}" -p "${DEALPUSH_REDIS##*:}" --raw \
		XREVRANGE deals + - COUNT 1 | grep -o '"expires_at": *[0-9]*' | grep -o '[0-9]*$'
}
echo '{"id":"clock-1","title":"t","category":"none","price":1,"list_price":2,"currency":"USD","url":"https://shop.example/c","expires_at":1}' >"$RUN/clock.json"
DEALPUSH_CLOCK_OFFSET_S=7200 $ctl publish --expires-in 3600 "$RUN/clock.json" >/dev/null 2>&1
left=$(( $(expires_of_last_deal) - $(date +%s) ))
check "dealpushctl stamps --expires-in on the clock it is given" \
	test "$left" -ge 10700 -a "$left" -le 10900
DEALPUSH_CLOCK_OFFSET_S=soon $ctl publish --expires-in 3600 "$RUN/clock.json" \
	>"$RUN/clock-bad.out" 2>&1
check "a bad clock offset is refused by name" has "$RUN/clock-bad.out" "DEALPUSH_CLOCK_OFFSET_S must be"
# A deal the notifier refuses shows on make run's screen as a dead letter.
echo '{"id":"bad-1","title":"no url"}' | $ctl publish --raw - >/dev/null 2>&1
for _ in $(seq 1 50); do
	grep -q '^  dead letter  entry' "$RUN/run.out" && break
	sleep 0.1
done
check "make run shows a dead letter and what is wrong with the deal" \
	grep -Eq '^  dead letter  entry [0-9]+-[0-9]+: [a-z_]+: .+ \([a-z_]+\)$' "$RUN/run.out"

# 5. Click: 302 to the deal with utm parameters.
curl -s -o /dev/null -D "$RUN/click.out" "$link"
check "the link redirects to the deal" has "$RUN/click.out" "Location: https://shop.example/d/wh-1000?utm_source=dealpush"

# 6. A conversion by the click token.
echo "{\"deal_id\":\"wh-1000\",\"order_id\":\"A-1\",\"revenue\":279,\"currency\":\"USD\",\"click_token\":\"${link##*/c/}\"}" \
	| $ctl convert - >"$RUN/convert.out" 2>&1
check "convert posts the order" has "$RUN/convert.out" "posted order A-1"
echo '{"deal_id":"wh-1000","order_id":"A-2","revenue":"lots","currency":"USD","subscriber_id":"me"}' \
	| $ctl convert - >"$RUN/convert-bad.out" 2>&1
check "a bad conversion is refused by line and field" has "$RUN/convert-bad.out" "<stdin>:1: error: revenue"

# 7. The funnel.
for _ in $(seq 1 100); do
	$ctl --json report deal wh-1000 >"$RUN/report.json" 2>&1
	# The order, and Twilio's "delivered" callback, which comes a moment after the text.
	grep -q '"redeemed":1' "$RUN/report.json" && grep -Eq '"delivered":[1-9]' "$RUN/report.json" &&
		break
	sleep 0.1
done
$ctl report deal wh-1000 >"$RUN/report.out" 2>&1
check "the report counts the click" grep -Eq '^clicked +1$' "$RUN/report.out"
check "the report counts deliveries from Twilio's status callbacks" \
	grep -Eq '^delivered +[1-9]' "$RUN/report.out"
check "the report counts the order and its revenue" grep -Eq '^revenue +279$' "$RUN/report.out"
check "the report prices the segments" grep -Eq '^sms_cost ' "$RUN/report.out"
$ctl report rule audio >"$RUN/report-rule.out" 2>&1
check "the rule's report counts the same order" grep -Eq '^redeemed +1$' "$RUN/report-rule.out"

# 8. A test send: the same deal to a named list of two, nobody else.
# staff-1 is interested in nothing the deal is: a test recipient gets the text the
# first rule taking the deal would send.
echo '{"id":"staff-1","phone":"+15125550177","channels":["sms"],"consent":{"sms":"2026-12-01T10:00:00Z"},"timezone":"America/Chicago","interests":{"categories":["garden"]}}' \
	| $ctl subscribers import - >/dev/null 2>&1
sleep 1.2   # the mirror follows within a second
$ctl testlist set team me,staff-1 >"$RUN/testlist.out" 2>&1
check "testlist set names its members" has "$RUN/testlist.out" "test list team: me,staff-1"
before=$(wc -l <"$RUN/demo/gwsim.jsonl")
$ctl test-send "$RUN/deal.json" --to @team >"$RUN/test-send.out" 2>&1
check "test-send publishes the deal under a test id" \
	grep -Eq '^test send wh-1000\.test-[0-9]+ entry=' "$RUN/test-send.out"
for _ in $(seq 1 50); do
	[ "$(tail -n +$((before + 1)) "$RUN/demo/gwsim.jsonl" | grep -c '"status":201')" -ge 2 ] &&
		break
	sleep 0.1
done
sleep 0.5
tail -n +$((before + 1)) "$RUN/demo/gwsim.jsonl" | grep '"status":201' |
	grep -o '"to":"[^"]*"' | sort -u >"$RUN/test-send.to"
check "the test texts go to the list's two members and nobody else" \
	test "$(tr '\n' ' ' <"$RUN/test-send.to")" = '"to":"+15125550177" "to":"+15125550199" '
$ctl test-send "$RUN/deal.json" --to 'a b' >"$RUN/test-send-bad.out" 2>&1
check "a test recipient that is not an id is refused" test $? -eq 1
check "and says so" has "$RUN/test-send-bad.out" "not a subscriber id"
$ctl test-send "$RUN/deal.json" --to @nobody >"$RUN/test-send-nolist.out" 2>&1
check "an unknown test list is named" has "$RUN/test-send-nolist.out" "no test list 'nobody'"

# 9. The rules in use, one source's text, and deleting an API source.
$ctl rules list >"$RUN/rules-list.out" 2>&1
check "rules list shows the API rule and the folder's" \
	grep -Eq '^audio +50  sms +interested +0%  api +api/audio.rules:1$' "$RUN/rules-list.out"
check "rules list shows a folder rule too" grep -q ' folder ' "$RUN/rules-list.out"
$ctl rules get audio >"$RUN/rules-get.out" 2>&1
check "rules get prints the source as applied" cmp -s "$RUN/rules-get.out" "$RUN/myrules/audio.rules"
$ctl rules delete outlet_vip >"$RUN/rules-del-folder.out" 2>&1
check "a folder rule cannot be deleted over the API, and says why" \
	has "$RUN/rules-del-folder.out" "comes from the rule folder"
$ctl rules delete audio >"$RUN/rules-del.out" 2>&1
check "rules delete removes the API source" has "$RUN/rules-del.out" "deleted rule source audio"
$ctl rules get audio >"$RUN/rules-gone.out" 2>&1
check "a deleted source is gone" test $? -eq 1

# 10. Stop everything at once, and send again.
$ctl pause "wrong price" >"$RUN/pause.out" 2>&1
check "pause says so" has "$RUN/pause.out" "^paused at "
$ctl pause status >"$RUN/pause-status.out" 2>&1
check "pause status says since when and why" has "$RUN/pause-status.out" "^paused since .*: wrong price$"
$ctl resume >"$RUN/resume.out" 2>&1
check "resume says so" has "$RUN/resume.out" "^resumed at "
check "and the status is running again" test "$($ctl pause status)" = running

# 11. The demo's secrets are its own. A STOP signed with the simulator's built-in
# token (test-auth-token) is refused: the run's token is random. The files it
# wrote (logs with numbers, the env file with the admin token) are the user's alone.
stop_signed_with() {    # stop_signed_with TOKEN: the HTTP status of a signed STOP
	local url="$DEALPUSH_API/hooks/twilio/inbound" sig
	sig=$(printf '%s' "${url}BodySTOPFrom+15125550188" |
		openssl dgst -sha1 -hmac "$1" -binary | base64)
	curl -s -o /dev/null -w '%{http_code}' -H "X-Twilio-Signature: $sig" \
		--data-urlencode 'From=+15125550188' --data-urlencode 'Body=STOP' "$url"
}
check "a STOP signed with the fixed test token is refused" \
	test "$(stop_signed_with test-auth-token)" = 403
check "no file of the demo is readable by group or others" \
	test -z "$(find "$RUN/demo" -type f -perm /077 -print -quit)"

if [ "$failed" -gt 0 ]; then    # what the run printed, and the notifier's last words
	echo "--- make run's output:"
	tail -n 15 "$RUN/run.out"
	echo "--- the notifier's log:"
	tail -n 15 "$RUN/demo/notifier.log" 2>/dev/null
fi
echo "walkthrough: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
