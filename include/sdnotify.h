/*
 * sdnotify.h: readiness and watchdog messages to the service manager, without
 * libsystemd (stage: start-up and the loop).
 *
 * systemd's notify protocol: one datagram of "KEY=VALUE" lines to the unix socket
 * named by $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace). Outside a
 * Type=notify unit the variable is unset and every call does nothing. A failure is
 * reported to the caller and never stops the daemon; sending never blocks.
 */
#ifndef DEALPUSH_SDNOTIFY_H
#define DEALPUSH_SDNOTIFY_H

/*
 * Sends state (e.g. "READY=1", "WATCHDOG=1", "STOPPING=1"; lines joined by '\n') to
 * $NOTIFY_SOCKET. Returns 1 when sent, 0 when there is no socket to send to, -1 when
 * the socket is named but the send failed (errno set; a full socket buffer is one).
 */
int sdnotify_send(const char *state);

/*
 * The watchdog interval the manager asked for ($WATCHDOG_USEC, meant for this
 * process when $WATCHDOG_PID is unset or is our pid), in microseconds; 0 when none
 * or malformed. Ping at half of it.
 */
long long sdnotify_watchdog_usec(void);

#endif
