/*
 * itsentinel.c: the integration-test harness's Redis Sentinel setup: a primary, its
 * replica and three sentinels on 127.0.0.1, made by tests/lib.sh dp_start_sentinel
 * (itest.h has the contract). Every process is listed in $DP_RUN_DIR/pids too.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "itest.h"

int
it_sentinel_start(struct it_sentinel *st, const char *master, const char *user,
    const char *password)
{
	char dir[512], script[1400], nodes[600], out[4096], role[16];
	const char *argv[] = { "/bin/bash", "-c", script, NULL };
	FILE *f;
	const char *root = getenv("DP_ROOT");
	int port, pid, ns = 0, rc;

	memset(st, 0, sizeof(*st));
	if (root == NULL)
		return -1;
	it_path(dir, sizeof(dir), "sentinel", "");
	snprintf(script, sizeof(script), ". '%s/tests/lib.sh' && dp_start_sentinel '%s' "
	    "'%s' '%s' '%s'", root, dir, master, user ? user : "",
	    password ? password : "");
	if ((rc = it_run(argv, out, sizeof(out))) != 0) {
		fprintf(stderr, "itest: dp_start_sentinel exited %d: %s\n", rc, out);
		return -1;
	}
	snprintf(nodes, sizeof(nodes), "%s/nodes", dir);
	if ((f = fopen(nodes, "r")) == NULL)
		return -1;
	while (fscanf(f, "%15s %d %d", role, &port, &pid) == 3) {
		if (strcmp(role, "primary") == 0) {
			st->primary = port;
			st->primary_pid = (pid_t)pid;
		} else if (strcmp(role, "replica") == 0) {
			st->replica = port;
			st->replica_pid = (pid_t)pid;
		} else if (ns < IT_SENTINELS) {
			st->sentinels[ns] = port;
			st->sentinel_pids[ns++] = (pid_t)pid;
		}
	}
	fclose(f);
	return st->primary > 0 && st->replica > 0 && ns == IT_SENTINELS ? 0 : -1;
}

int
it_sentinel_add_replica(struct it_sentinel *st, int primary)
{
	char dir[512], script[1200], out[256];
	const char *argv[] = { "/bin/bash", "-c", script, NULL };
	const char *root = getenv("DP_ROOT");
	int port, pid;

	if (root == NULL)
		return -1;
	it_path(dir, sizeof(dir), "replica", "");
	snprintf(script, sizeof(script), ". '%s/tests/lib.sh' && dp_start_one_redis '%s' "
	    "--replicaof 127.0.0.1 %d", root, dir, primary);
	if (it_run(argv, out, sizeof(out)) != 0 || sscanf(out, "%d %d", &port, &pid) != 2)
		return -1;
	st->primary_pid = (pid_t)pid;
	return port;
}

void
it_sentinel_stop(struct it_sentinel *st)
{
	pid_t *all[] = { &st->primary_pid, &st->replica_pid, &st->sentinel_pids[0],
		&st->sentinel_pids[1], &st->sentinel_pids[2] };
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (*all[i] > 0) {
			kill(*all[i], SIGCONT);
			kill(*all[i], SIGKILL);
			*all[i] = 0;
		}
}
