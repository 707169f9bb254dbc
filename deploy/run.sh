#!/usr/bin/env bash
# deploy/run.sh BUILD: the demo behind `make run`.
#
# Starts a private redis-server and the gateway simulator on free 127.0.0.1 ports,
# with all state under run/demo/ (or $DP_DEMO_DIR), loads the example subscribers,
# starts the notifier, publishes the example deals and shows each push as it arrives
# at the gateway. run/demo/env then sets what dealpushctl needs in another shell
# (the README's walkthrough). Ctrl-C stops every process this script started.
set -u
# Everything written below holds phone numbers, tokens or both (logs, the Redis
# dump, the gateway's request log, env): the user's alone, 0600 and 0700.
umask 077
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
. tests/lib.sh

DP_RUN_DIR=${DP_DEMO_DIR:-$ROOT/run/demo}
rm -rf "$DP_RUN_DIR"
mkdir -p "$DP_RUN_DIR"
trap 'dp_cleanup; echo; echo "stopped; logs are in $DP_RUN_DIR/"' EXIT
trap 'exit 0' INT TERM

dp_start_redis "$DP_RUN_DIR/redis" || exit 1
# The sharded layout of 4 shards on the one redis-server (docs/sharding.md 4g), made
# before anything is stored: every subscriber and push key behind its shard's tag.
"$BUILD/dealpushctl" --redis "127.0.0.1:$DP_REDIS_PORT" layout create --shards 4 \
	>"$DP_RUN_DIR/layout.log" 2>&1 || { cat "$DP_RUN_DIR/layout.log" >&2; exit 1; }

# The demo's clock: 17:00 UTC for the notifier and for dealpushctl alike, so that a
# deal published with --expires-in has the time left it was given.
DEALPUSH_CLOCK_OFFSET_S=$(dp_clock_offset)
export DEALPUSH_CLOCK_OFFSET_S
echo "redis-server on 127.0.0.1:$DP_REDIS_PORT"
echo "the notifier's clock reads 17:00 UTC (offset $DEALPUSH_CLOCK_OFFSET_S s), inside every"
echo "example subscriber's sending window; quiet hours and caps apply as in production"
echo
# Random secrets per run: with a fixed Twilio auth token anyone on the machine could
# sign a STOP or START. They go to the processes through the environment (a command
# line is readable by every user).
DEMO_TWILIO_TOKEN=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
DEMO_X_TOKEN=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
export DEMO_TWILIO_TOKEN DEMO_X_TOKEN
# --status-callbacks: like Twilio, the simulator reports each text sent, then
# delivered, to the notifier's signed status callback.
# Port 0: the kernel's choice, read back from the port file (a port picked first and
# bound later can be taken in between).
"$BUILD/gwsim" --port 0 --port-file "$DP_RUN_DIR/gwsim.port" \
	--auth-token-env DEMO_TWILIO_TOKEN --bearer-token-env DEMO_X_TOKEN \
	--log "$DP_RUN_DIR/gwsim.jsonl" --print --quiet --status-callbacks &
DP_PIDS="$DP_PIDS $!"
for _ in $(seq 1 100); do
	[ -s "$DP_RUN_DIR/gwsim.port" ] && break
	sleep 0.05
done
gwport=$(cat "$DP_RUN_DIR/gwsim.port" 2>/dev/null)
[ -n "$gwport" ] || { echo "the gateway simulator did not start" >&2; exit 1; }
echo "gateway simulator (Twilio, X DM, webhook) on 127.0.0.1:$gwport"

# write_conf PORT: the notifier's configuration, its HTTP surface on PORT.
write_conf() {
	local httpport=$1
	cat > "$DP_RUN_DIR/notifier.conf" <<CONF
# Written by deploy/run.sh; keys: docs/operations.md
[notifier]
consumer = demo
log_level = info
# The demo runs its clock at 17:00 UTC, when every example subscriber is inside
# the legal sending window (8:00-21:00 local); remove this line to use real time.
clock_offset_s = $DEALPUSH_CLOCK_OFFSET_S
[redis]
host = 127.0.0.1
port = $DP_REDIS_PORT
shards = 4
[rules]
dir = $ROOT/rules/examples
[http]
port = $httpport
public_url = http://127.0.0.1:$httpport
admin_token_env = DEMO_ADMIN_TOKEN
click_secret_env = DEMO_CLICK_SECRET
[report]
# what one SMS segment costs, for the reports' sms_cost
sms_segment_price = 0.0079
[gateway twilio]
kind = twilio
channel = sms
base_url = http://127.0.0.1:$gwport
account_sid = ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
from = +15005550006
secret_env = DEMO_TWILIO_TOKEN
status_callback_base = http://127.0.0.1:$httpport
[gateway x]
kind = x-dm
channel = dm
base_url = http://127.0.0.1:$gwport
auth = oauth2
client_id = test-client-id
client_secret_env = DEMO_X_CLIENT_SECRET
refresh_token_env = DEMO_X_REFRESH_TOKEN
CONF
}

ctl="$BUILD/dealpushctl --redis 127.0.0.1:$DP_REDIS_PORT"
DEMO_ADMIN_TOKEN=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
DEMO_CLICK_SECRET=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export DEMO_ADMIN_TOKEN DEMO_CLICK_SECRET
printf '%s\n' "$DEMO_ADMIN_TOKEN" > "$DP_RUN_DIR/admin.token"

# The simulator's X OAuth 2.0 client (its defaults, docs/gwsim.md): a refresh
# token it accepts, rotated on every refresh; nothing of it can sign a STOP.
# The public URL names the HTTP port, so the port is chosen before the notifier
# binds it; another process can take it in between, and then the notifier stops
# with "cannot listen": the start is tried again on another port.
httpport=""
for _ in 1 2 3 4 5; do
	port=$(dp_pick_port)
	write_conf "$port"
	DEMO_X_CLIENT_SECRET=test-client-secret DEMO_X_REFRESH_TOKEN=test-refresh-token \
		"$BUILD/notifier" -c "$DP_RUN_DIR/notifier.conf" 2>"$DP_RUN_DIR/notifier.log" &
	pid=$!
	for _ in $(seq 1 600); do
		grep -q "event=http_listening" "$DP_RUN_DIR/notifier.log" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if grep -q "event=http_listening" "$DP_RUN_DIR/notifier.log"; then
		DP_PIDS="$DP_PIDS $pid"
		httpport=$port
		break
	fi
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	grep -q "cannot listen" "$DP_RUN_DIR/notifier.log" || break
done
if [ -z "$httpport" ]; then
	echo "the notifier did not start; the end of its log:" >&2
	tail -n 20 "$DP_RUN_DIR/notifier.log" >&2
	exit 1
fi
# Subscribers go in through the admin API, as an operator would.
$ctl --api "http://127.0.0.1:$httpport" --token "$DEMO_ADMIN_TOKEN" \
	subscribers import rules/examples/subscribers.jsonl
sleep 1.2   # every notifier's mirror follows within a second

echo
echo "publishing the example deals; each line below is one push, as the gateway got it:"
echo "  ms since the deal landed on the stream, channel, masked recipient, text"
echo "or, for a push that was not sent, why not (a daily cap, sold out, ...), and each"
echo "deal refused as a dead letter:"
echo
# The pushes that end without a text, and the dead letters, from the notifier's log
# (the gateway prints the others); tail stops with this script. mawk (Debian's awk)
# reads a pipe in blocks unless it is told the input is interactive.
lines_awk=(awk)
awk -W version 2>&1 | grep -q mawk && lines_awk+=(-W interactive)
# shellcheck disable=SC2016 # the program is awk's, its $ are awk's
tail -n +1 -F --pid=$$ "$DP_RUN_DIR/notifier.log" 2>/dev/null | "${lines_awk[@]}" '
	function val(k,   m) {   # the value of k=... on this line ("" when absent)
		if (match($0, " " k "=(\"[^\"]*\"|[^ ]*)")) {
			m = substr($0, RSTART + length(k) + 2, RLENGTH - length(k) - 2)
			gsub(/^"|"$/, "", m)
			return m
		}
		return ""
	}
	# one write a line, so that it never interleaves with the lines of the gateway
	function say(line) { printf "%s", line "\n"; fflush() }
	/ event=push / && val("outcome") != "sent" {
		say(sprintf("  not sent  %-3s  %-12s  %s (deal %s)", val("ch"), val("sub"),
		    val("outcome"), val("deal")))
	}
	/ event=deal_dead / {
		say(sprintf("  dead letter  entry %s: %s (%s)", val("entry"),
		    val("err") != "" ? val("err") : val("field"), val("reason")))
	}' &
$ctl publish --expires-in 86400 rules/examples/deals.jsonl >"$DP_RUN_DIR/publish.log"
sleep 2
echo
# Every shard has its own pushes:log ({<tag>}pushes:log): their lengths summed.
outcomes=0
for key in $(redis-cli -p "$DP_REDIS_PORT" --scan --pattern '*pushes:log'); do
	outcomes=$((outcomes + $(redis-cli -p "$DP_REDIS_PORT" XLEN "$key")))
done
echo "pushes:log: $outcomes outcomes," \
	"{deals}:dead: $(redis-cli -p "$DP_REDIS_PORT" XLEN '{deals}:dead') dead letters." \
	"The notifier's log is ${DP_RUN_DIR#"$ROOT/"}/notifier.log."
# The token is a secret: the file is the user's alone (umask above).
cat > "$DP_RUN_DIR/env" <<ENV
# . this file: dealpushctl then reaches this demo's Redis and admin API.
export DEALPUSH_REDIS=127.0.0.1:$DP_REDIS_PORT
export DEALPUSH_API=http://127.0.0.1:$httpport
export DEALPUSH_TOKEN=$DEMO_ADMIN_TOKEN
export DEALPUSH_CLOCK_OFFSET_S=$DEALPUSH_CLOCK_OFFSET_S
ENV
echo "In another shell: . ${DP_RUN_DIR#"$ROOT/"}/env, then $BUILD/dealpushctl ... (README: walkthrough)"
echo "Health and metrics: http://127.0.0.1:$httpport/healthz and /metrics"
echo "Reports: $BUILD/dealpushctl report rule outlet_vip"
echo "Console: http://127.0.0.1:$httpport/ui/ (sign in with the token in ${DP_RUN_DIR#"$ROOT/"}/admin.token)"
echo "Press Ctrl-C to stop everything."
while :; do sleep 1; done
