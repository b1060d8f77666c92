/*
 * responder: the ceiling row of the HTTP benchmarks. A minimal HTTP/1.1
 * keep-alive responder on one epoll thread: it reads what a connection
 * sends, counts the requests in it (each ends with CRLF CRLF; it does no
 * other parsing) and writes that many fixed answers. Nothing a real server
 * must do (parsing, routing, limits) is here: it measures what the kernel
 * and the loopback TCP stack cost per request.
 *
 *   responder PORT [idle-thread]   prints "addr 127.0.0.1:PORT" once listening
 *
 * With idle-thread it starts a second thread that only sleeps, so that the
 * kernel treats the process as multi-threaded (as it does any Go program:
 * shared descriptor table, reference-counted file lookups), and nothing else
 * changes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";

struct conn { int fd; int matched; }; /* matched: how much of CRLF CRLF the last read ended in */

static void *idle(void *arg) {
	for (;;) pause();
	return arg;
}

int main(int argc, char **argv) {
	int port = argc > 1 ? atoi(argv[1]) : 0;
	if (argc > 2 && strcmp(argv[2], "idle-thread") == 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, idle, NULL)) { perror("pthread_create"); return 1; }
	}
	int ln = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	int one = 1;
	setsockopt(ln, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (bind(ln, (struct sockaddr *)&a, sizeof a) || listen(ln, 4096)) { perror("listen"); return 1; }
	socklen_t al = sizeof a;
	getsockname(ln, (struct sockaddr *)&a, &al);
	printf("addr 127.0.0.1:%d\n", ntohs(a.sin_port));
	fflush(stdout);
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	epoll_ctl(ep, EPOLL_CTL_ADD, ln, &ev);
	static char buf[65536], out[64 * sizeof answer];
	struct epoll_event evs[256];
	for (;;) {
		int n = epoll_wait(ep, evs, 256, -1);
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c == NULL) {
				int fd;
				while ((fd = accept4(ln, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
					struct conn *nc = calloc(1, sizeof *nc);
					nc->fd = fd;
					struct epoll_event e = {.events = EPOLLIN, .data.ptr = nc};
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
				}
				continue;
			}
			ssize_t r = read(c->fd, buf, sizeof buf);
			if (r <= 0) {
				if (r < 0 && errno == EAGAIN) continue;
				close(c->fd);
				free(c);
				continue;
			}
			int reqs = 0;
			static const char end[] = "\r\n\r\n";
			for (ssize_t k = 0; k < r; k++) {
				c->matched = buf[k] == end[c->matched] ? c->matched + 1 : (buf[k] == '\r' ? 1 : 0);
				if (c->matched == 4) { reqs++; c->matched = 0; }
			}
			while (reqs > 0) {
				int batch = reqs > 64 ? 64 : reqs, len = 0;
				for (int k = 0; k < batch; k++) { memcpy(out + len, answer, sizeof answer - 1); len += sizeof answer - 1; }
				if (write(c->fd, out, len) < 0) break;
				reqs -= batch;
			}
		}
	}
}
