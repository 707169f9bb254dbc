/*
 * ithttp.c: the integration tests' raw HTTP/1.0 client (see ithttp.h). Blocking
 * sockets with a receive timeout: a test must never hang on a server that does not
 * answer.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "ithttp.h"

#define ITHTTP_TIMEOUT_S 10

static int
write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A connected socket to 127.0.0.1:port with the receive timeout, or -1. */
static int
dial(int port)
{
	struct timeval tv = { ITHTTP_TIMEOUT_S, 0 };
	struct sockaddr_in sa;
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((unsigned short)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The request's head and body into out (size bytes); its length, or -1. */
static int
compose(const struct it_req *q, char *out, size_t size)
{
	size_t len = q->body ? q->len : 0;
	int hn = snprintf(out, size, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s"
	    "Content-Length: %zu\r\n\r\n", q->method, q->path, q->hdrs ? q->hdrs : "",
	    len);

	if (hn < 0 || (size_t)hn + len >= size)
		return -1;
	if (len > 0)
		memcpy(out + hn, q->body, len);
	return hn + (int)len;
}

/* Reads the answer on fd until the server closes; resp->status. */
static int
read_answer(int fd, struct it_resp *resp)
{
	size_t got = 0;
	ssize_t n;
	char *b;

	while (got + 1 < sizeof(resp->raw) &&
	    (n = read(fd, resp->raw + got, sizeof(resp->raw) - 1 - got)) > 0)
		got += (size_t)n;
	resp->raw[got] = '\0';
	if (sscanf(resp->raw, "HTTP/%*s %d", &resp->status) != 1)
		resp->status = -1;
	if ((b = strstr(resp->raw, "\r\n\r\n")) != NULL)
		resp->body = b + 4;
	else
		resp->body = resp->raw + got;
	return resp->status;
}

static void
resp_clear(struct it_resp *resp)
{
	resp->status = -1;
	resp->raw[0] = '\0';
	resp->body = resp->raw;
}

int
it_http(int port, const char *method, const char *path, const char *hdrs,
    const char *body, size_t len, struct it_resp *resp)
{
	char head[8192];
	int fd, hn;

	resp_clear(resp);
	if ((fd = dial(port)) < 0)
		return -1;
	hn = snprintf(head, sizeof(head), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n%s"
	    "Content-Length: %zu\r\n\r\n", method, path, hdrs ? hdrs : "", body ? len : 0);
	if (hn < 0 || (size_t)hn >= sizeof(head) || write_all(fd, head, (size_t)hn) < 0)
		goto out;
	/* A server may answer (413, 401) before it has read the whole body. */
	if (body != NULL)
		(void)write_all(fd, body, len);
	read_answer(fd, resp);
out:
	close(fd);
	return resp->status;
}

int
it_http_together(int port, size_t n, const struct it_req *reqs, struct it_resp *resps)
{
	static char buf[IT_TOGETHER_MAX][8192];
	int fd[IT_TOGETHER_MAX], len[IT_TOGETHER_MAX], ok = 0;
	size_t i;

	if (n == 0 || n > IT_TOGETHER_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		resp_clear(&resps[i]);
		len[i] = compose(&reqs[i], buf[i], sizeof(buf[i]));
		fd[i] = len[i] > 0 ? dial(port) : -1;
		/* Everything but the last byte: the server waits for it. */
		if (fd[i] >= 0 && write_all(fd[i], buf[i], (size_t)len[i] - 1) < 0) {
			close(fd[i]);
			fd[i] = -1;
		}
	}
	usleep(50 * 1000);              /* every head read and waiting */
	for (i = 0; i < n; i++)
		if (fd[i] >= 0)
			(void)write_all(fd[i], buf[i] + len[i] - 1, 1);
	for (i = 0; i < n; i++) {
		if (fd[i] < 0)
			continue;
		if (read_answer(fd[i], &resps[i]) > 0)
			ok++;
		close(fd[i]);
	}
	return ok;
}

const char *
it_http_header(const struct it_resp *resp, const char *name, char *out, size_t size)
{
	const char *p = strstr(resp->raw, "\r\n"), *end = resp->body;
	size_t nl = strlen(name);

	out[0] = '\0';
	while (p != NULL && p < end) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *e = strstr(v, "\r\n");

			while (*v == ' ')
				v++;
			if (e != NULL)
				snprintf(out, size, "%.*s", (int)(e - v), v);
			break;
		}
		p = strstr(p, "\r\n");
	}
	return out;
}

int
it_free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd, port = -1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

void
it_pct_append(char *out, size_t size, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = strlen(out);

	for (; *s != '\0' && o + 4 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}
