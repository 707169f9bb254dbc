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

# dp_redis_pid PORT: the process id of the redis-server answering on PORT, or "".
# A server just started is ours only if it is the one answering: another run's
# server may hold the port (ours then exits, unable to bind).
dp_redis_pid() {
	redis-cli -p "$1" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p'
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
			if [ "$(dp_redis_pid "$port")" = "$pid" ]; then
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

# dp_start_cluster DIR: a Redis Cluster on 127.0.0.1 for the tests that need one (it
# is not started for every run): 6 redis-server on free ports (3 primaries, 3
# replicas, cluster-node-timeout 1000 ms so that a killed primary fails over within
# seconds), made with `redis-cli --cluster create`, ready when every node says
# cluster_state:ok and every replica is in sync. State under DIR/<port>; "port pid" per node in DIR/nodes; prints
# the ports on one line. Every pid is also written to $DP_RUN_DIR/pids, so
# dp_cleanup stops them whatever way the run ends (also when this is run in a child
# shell, as the integration tests do). Returns non-zero when the cluster did not form.
dp_start_cluster() {
	local dir=$1 n try port pid i ok ports="" addrs=""
	mkdir -p "$dir"
	: > "$dir/nodes"
	for n in 1 2 3 4 5 6; do
		ok=0
		for try in 1 2 3 4 5 6 7 8; do
			port=$(dp_pick_port)
			# The cluster bus listens on port + 10000.
			[ "$port" -lt 55000 ] && dp_port_free $((port + 10000)) || continue
			mkdir -p "$dir/$port"
			redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
				--cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" \
				--cluster-node-timeout 1000 --repl-diskless-sync-delay 0 \
				--dir "$dir/$port" \
				--logfile "$dir/$port/redis.log" --daemonize no \
				--protected-mode yes >/dev/null 2>&1 &
			pid=$!
			[ -n "${DP_RUN_DIR:-}" ] && echo "$pid" >> "$DP_RUN_DIR/pids"
			DP_PIDS="$DP_PIDS $pid"
			for i in $(seq 1 100); do
				if [ "$(dp_redis_pid "$port")" = "$pid" ]; then
					ok=1
					break
				fi
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.05
			done
			[ "$ok" -eq 1 ] && break
			kill "$pid" 2>/dev/null
		done
		if [ "$ok" -ne 1 ]; then
			echo "could not start cluster node $n (see $dir)" >&2
			return 1
		fi
		echo "$port $pid" >> "$dir/nodes"
		ports="$ports $port"
		addrs="$addrs 127.0.0.1:$port"
	done
	# shellcheck disable=SC2086
	if ! redis-cli --cluster create $addrs --cluster-replicas 1 --cluster-yes \
			> "$dir/create.log" 2>&1; then
		echo "redis-cli --cluster create failed (see $dir/create.log)" >&2
		return 1
	fi
	# Ready: every node sees the cluster ok, and every replica has its data (a
	# replica that never synced cannot take over from a killed primary).
	for i in $(seq 1 200); do
		ok=1
		for port in $ports; do
			redis-cli -p "$port" cluster info 2>/dev/null |
				grep -q '^cluster_state:ok' || { ok=0; break; }
			if redis-cli -p "$port" info replication 2>/dev/null |
					grep -q '^role:slave'; then
				redis-cli -p "$port" info replication |
					grep -q '^master_link_status:up' || { ok=0; break; }
			fi
		done
		if [ "$ok" -eq 1 ]; then
			echo $ports
			return 0
		fi
		sleep 0.1
	done
	echo "cluster did not reach cluster_state:ok (see $dir)" >&2
	return 1
}
