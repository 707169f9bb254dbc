/*
 * sdnotify.c: systemd's notify protocol in one function (stage: start-up, the loop).
 *
 * A nonblocking datagram per message on a socket opened for it and closed again
 * (a watchdog ping every few seconds costs nothing): no state, no library, nothing
 * to reconnect. It must never block the loop and never fail the daemon: a manager
 * that is gone or slow loses a message, the daemon goes on.
 */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"

int
sdnotify_send(const char *state)
{
	const char *name = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t salen;
	size_t len;
	ssize_t n;
	int fd, saved;

	if (name == NULL || (name[0] != '/' && name[0] != '@'))
		return 0;
	len = strlen(name);
	if (len < 2 || len > sizeof(sa.sun_path) - (name[0] == '/')) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, name, len);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';   /* abstract: the length, not a NUL, ends it */
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len +
	    (name[0] == '/'));
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0)
		return -1;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, salen);
	saved = errno;
	close(fd);
	errno = saved;
	return n == (ssize_t)strlen(state) ? 1 : -1;
}

long long
sdnotify_watchdog_usec(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	char *end;
	long long v, p;

	if (usec == NULL)
		return 0;
	if (pid != NULL) {
		errno = 0;
		p = strtoll(pid, &end, 10);
		if (errno != 0 || end == pid || *end != '\0' || p != (long long)getpid())
			return 0;
	}
	errno = 0;
	v = strtoll(usec, &end, 10);
	if (errno != 0 || end == usec || *end != '\0' || v <= 0)
		return 0;
	return v;
}
