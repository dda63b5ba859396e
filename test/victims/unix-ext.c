/* A unix socket peer outside the dumped tree.
 * "server DIR": a stream listener at DIR/srv.sock and a datagram socket at DIR/srv-d.sock
 * answer each message with "pong:" and the message, until killed; it prints the peer
 * credentials (SO_PEERCRED) of each connection it accepts.
 * "client DIR": a stream socket connected to DIR/srv.sock, a datagram socket bound to
 * DIR/cli-d.sock connected to DIR/srv-d.sock; each asks once, prints READY, and on
 * SIGUSR1 asks again through the same sockets, printing "PASS what"/"FAIL what: why"
 * and "DONE fails=N". */
#include "victim.h"
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static socklen_t at(const char *dir, const char *name, struct sockaddr_un *a) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  snprintf(a->sun_path, sizeof a->sun_path, "%s/%s", dir, name);
  return sizeof *a;
}

static void serve(const char *dir) {
  struct sockaddr_un a;
  int l = socket(AF_UNIX, SOCK_STREAM, 0), d = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (bind(l, (struct sockaddr *)&a, at(dir, "srv.sock", &a)) < 0 || listen(l, 8) < 0) { perror("listen"); exit(2); }
  if (bind(d, (struct sockaddr *)&a, at(dir, "srv-d.sock", &a)) < 0) { perror("bind"); exit(2); }
  struct pollfd p[16] = { { l, POLLIN, 0 }, { d, POLLIN, 0 } };
  int n = 2;
  say("READY pid=%d\n", getpid());
  for (;;) {
    if (poll(p, n, -1) < 0) continue;
    if (p[0].revents && n < 16) {
      int c = accept(l, NULL, NULL);
      struct ucred u = { 0 };
      socklen_t ul = sizeof u;
      getsockopt(c, SOL_SOCKET, SO_PEERCRED, &u, &ul);
      say("ACCEPTED peer=%d uid=%d\n", u.pid, (int)u.uid);
      p[n++] = (struct pollfd){ c, POLLIN, 0 };
    }
    char b[64], r[80];
    if (p[1].revents) {
      struct sockaddr_un from;
      socklen_t fl = sizeof from;
      ssize_t k = recvfrom(d, b, sizeof b - 1, 0, (struct sockaddr *)&from, &fl);
      if (k > 0) { b[k] = 0; int m = snprintf(r, sizeof r, "pong:%s", b); sendto(d, r, m, 0, (struct sockaddr *)&from, fl); }
    }
    for (int i = 2; i < n; i++) {
      if (!p[i].revents) continue;
      ssize_t k = read(p[i].fd, b, sizeof b - 1);
      if (k <= 0) { close(p[i].fd); p[i--] = p[--n]; continue; } /* a client gone (the dumped one killed) */
      b[k] = 0;
      int m = snprintf(r, sizeof r, "pong:%s", b);
      write(p[i].fd, r, m);
    }
  }
}

static int ask(int fd, const char *q) {
  char b[80] = { 0 }, want[80];
  snprintf(want, sizeof want, "pong:%s", q);
  if (send(fd, q, strlen(q), 0) != (ssize_t)strlen(q)) return 0;
  struct pollfd p = { fd, POLLIN, 0 };
  if (poll(&p, 1, 5000) != 1) return 0;
  return recv(fd, b, sizeof b - 1, 0) == (ssize_t)strlen(want) && !strcmp(b, want);
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  if (!strcmp(argv[1], "server")) serve(argv[2]);
  signal(SIGUSR1, on_usr1);
  struct sockaddr_un a;
  int s = socket(AF_UNIX, SOCK_STREAM, 0), d = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (connect(s, (struct sockaddr *)&a, at(argv[2], "srv.sock", &a)) < 0) { perror("connect"); return 2; }
  if (bind(d, (struct sockaddr *)&a, at(argv[2], "cli-d.sock", &a)) < 0) { perror("bind"); return 2; }
  if (connect(d, (struct sockaddr *)&a, at(argv[2], "srv-d.sock", &a)) < 0) { perror("connect"); return 2; }
  if (!ask(s, "first") || !ask(d, "first-d")) { say("FAIL before the dump\n"); return 2; }
  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000);
  self_check(ask(s, "again"), "the stream socket talks to the outside server again", "no answer");
  self_check(ask(d, "again-d"), "the datagram socket talks to the outside server again", "no answer");
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
