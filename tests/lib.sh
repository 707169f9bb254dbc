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

# dp_cluster_node DIR PORT: one cluster node on PORT with its state under DIR/PORT
# (a node that ran there before comes back with its nodes.conf: a killed primary
# rejoins as a replica of the one that took over); prints its pid once it answers.
# Returns non-zero (the process stopped) when it did not start.
dp_cluster_node() {
	local dir=$1 port=$2 pid i
	mkdir -p "$dir/$port"
	redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
		--cluster-enabled yes --cluster-config-file "$dir/$port/nodes.conf" \
		--cluster-node-timeout 1000 --repl-diskless-sync-delay 0 \
		--dir "$dir/$port" \
		--logfile "$dir/$port/redis.log" --daemonize no \
		--protected-mode yes >/dev/null 2>&1 &
	pid=$!
	[ -n "${DP_RUN_DIR:-}" ] && echo "$pid" >> "$DP_RUN_DIR/pids"
	for i in $(seq 1 100); do
		if [ "$(dp_redis_pid "$port")" = "$pid" ]; then
			echo "$pid"
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill "$pid" 2>/dev/null
	return 1
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
			# (a subshell: its DP_PIDS is lost, $DP_RUN_DIR/pids has the pid)
			pid=$(dp_cluster_node "$dir" "$port") &&
				{ DP_PIDS="$DP_PIDS $pid"; ok=1; break; }
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

# dp_start_one_redis DIR ARGS...: one redis-server (or, with --sentinel among ARGS, a
# sentinel) on a free port with state under DIR/<port>; prints "port pid". Its pid
# goes to $DP_RUN_DIR/pids too. Returns non-zero when it did not start.
dp_start_one_redis() {
	local dir=$1 try port pid i conf
	shift
	for try in 1 2 3 4 5 6 7 8; do
		port=$(dp_pick_port)
		mkdir -p "$dir/$port"
		conf="$dir/$port/redis.conf"
		# A sentinel rewrites its own file: one per process.
		printf 'port %s\nbind 127.0.0.1\ndir %s\nlogfile %s\n' "$port" \
			"$dir/$port" "$dir/$port/redis.log" > "$conf"
		redis-server "$conf" --save '' --appendonly no --daemonize no \
			--protected-mode yes "$@" >/dev/null 2>&1 &
		pid=$!
		[ -n "${DP_RUN_DIR:-}" ] && echo "$pid" >> "$DP_RUN_DIR/pids"
		DP_PIDS="$DP_PIDS $pid"
		for i in $(seq 1 100); do
			if [ "$(dp_redis_pid "$port")" = "$pid" ]; then
				echo "$port $pid"
				return 0
			fi
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill "$pid" 2>/dev/null
	done
	return 1
}

# dp_start_sentinel DIR MASTER [USER PASSWORD]: a primary, its replica and three
# sentinels (quorum 2, down-after 1000 ms, so that a killed primary fails over
# within seconds) on free 127.0.0.1 ports, made the way an operator would. With USER
# and PASSWORD, both Redis servers also have that ACL user (every key, channel and
# command). DIR/nodes gets "primary port pid", "replica port pid" and three
# "sentinel port pid" lines. Ready when every sentinel names the primary and knows
# the replica and the two other sentinels, and the replica is in sync.
dp_start_sentinel() {
	local dir=$1 master=$2 user=${3:-} pass=${4:-} acl=() p r s i ok port line
	mkdir -p "$dir"
	: > "$dir/nodes"
	[ -n "$user" ] && acl=(--user "$user" on ">$pass" '~*' '&*' '+@all')
	p=$(dp_start_one_redis "$dir" "${acl[@]}" --repl-diskless-sync-delay 0) ||
		{ echo "could not start the primary (see $dir)" >&2; return 1; }
	echo "primary $p" >> "$dir/nodes"
	r=$(dp_start_one_redis "$dir" "${acl[@]}" --replicaof 127.0.0.1 "${p%% *}") ||
		{ echo "could not start the replica (see $dir)" >&2; return 1; }
	echo "replica $r" >> "$dir/nodes"
	for i in 1 2 3; do
		s=$(dp_start_one_redis "$dir" --sentinel \
			--sentinel monitor "$master" 127.0.0.1 "${p%% *}" 2 \
			--sentinel down-after-milliseconds "$master" 1000 \
			--sentinel failover-timeout "$master" 4000) ||
			{ echo "could not start sentinel $i (see $dir)" >&2; return 1; }
		echo "sentinel $s" >> "$dir/nodes"
	done
	for i in $(seq 1 300); do
		ok=1
		redis-cli -p "${r%% *}" info replication 2>/dev/null |
			grep -q '^master_link_status:up' || ok=0
		while read -r line; do
			port=$(echo "$line" | cut -d' ' -f2)
			case "$line" in sentinel*) ;; *) continue ;; esac
			redis-cli -p "$port" sentinel master "$master" 2>/dev/null | tr -d '\r' |
				tr '\n' ' ' | grep -Eq 'num-slaves 1 .*num-other-sentinels 2 ' ||
				{ ok=0; break; }
		done < "$dir/nodes"
		if [ "$ok" -eq 1 ]; then
			cat "$dir/nodes"
			return 0
		fi
		sleep 0.1
	done
	echo "the sentinels did not see the primary, its replica and each other (see $dir)" >&2
	return 1
}
