# tests/lib.sh: shared by tests/run.sh, deploy/run.sh and the bench runner.
# Starts private servers on free loopback ports with their state under one run folder,
# and stops every process it started, whatever way the script ends.

DP_PIDS=""

dp_cleanup() {
	for pid in $DP_PIDS; do
		kill "$pid" 2>/dev/null
	done
	# Processes the test programs started register their pids here.
	if [ -n "${DP_RUN_DIR:-}" ] && [ -f "$DP_RUN_DIR/pids" ]; then
		while read -r pid; do
			kill -9 "$pid" 2>/dev/null
		done < "$DP_RUN_DIR/pids"
	fi
	for pid in $DP_PIDS; do
		wait "$pid" 2>/dev/null
	done
	DP_PIDS=""
}

# dp_port_free PORT: true when nothing listens on 127.0.0.1:PORT.
dp_port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# dp_pick_port: prints a port that is free now.
dp_pick_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		if dp_port_free "$p"; then
			echo "$p"
			return
		fi
	done
}

# dp_start_redis DIR: starts redis-server on a free port, sets DP_REDIS_PORT.
dp_start_redis() {
	local dir=$1 try port pid i
	mkdir -p "$dir"
	for try in 1 2 3 4 5; do
		port=$(dp_pick_port)
		redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
			--dir "$dir" --logfile "$dir/redis.log" --daemonize no \
			--protected-mode yes >/dev/null 2>&1 &
		pid=$!
		for i in $(seq 1 100); do
			if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
				DP_PIDS="$DP_PIDS $pid"
				DP_REDIS_PORT=$port
				export DP_REDIS_PORT
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	echo "could not start redis-server (see $dir/redis.log)" >&2
	return 1
}

# dp_clock_offset: seconds from now to the nearest 17:00 UTC. The demo and the tests
# run the notifier at that hour (notifier.clock_offset_s), when every example
# subscriber (America/*, Europe/Berlin) is inside the legal sending window.
dp_clock_offset() {
	local now target
	now=$(date +%s)
	target=$((now - now % 86400 + 17 * 3600))
	if [ $((target - now)) -gt 43200 ]; then
		target=$((target - 86400))
	elif [ $((now - target)) -gt 43200 ]; then
		target=$((target + 86400))
	fi
	echo $((target - now))
}
