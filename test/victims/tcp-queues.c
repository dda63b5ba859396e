/* TCP queues through dump and restore (tcp-queues.test.ts).
 *
 * "tcp-queues accept": a listener on 127.0.0.1 ("PORT n") that accepts only every
 * 500 ms, printing "ACCEPTED total=N" after each round, so that the test's clients
 * wait in its accept queue when the dump starts. On SIGUSR1 it reads one request
 * "req-K" from each accepted connection, in order, and answers "ans-K": "PASS accept
 * N" or "FAIL …".
 *
 * "tcp-queues noaccept": a listener ("PORT n", "READY") that accepts nothing until
 * SIGUSR1; then it accepts one connection (10 s at most), expects "new" on it and
 * answers "ok": "PASS noaccept" (the test's first client, left in the queue at dump by
 * --skip-in-flight, must not be the one accepted).
 *
 * "tcp-queues inflight": a connection inside the process, c's port printed ("PORT n")
 * for the test to drop what goes to it. On SIGUSR2 s sends 64 KiB (sent, never
 * acknowledged: c gets none of it) and shuts down (its FIN sent, not acknowledged:
 * FIN_WAIT1), c sends "c-data" (s receives it, c never sees the ACK); prints
 * "INFLIGHT s=… c=…" with each end's unacknowledged bytes. On SIGUSR1 (the test no
 * longer drops) c must read the 64 KiB then EOF, s must read "c-data" exactly once,
 * then reach FIN_WAIT2: "PASS inflight" or "FAIL …". */
#include "victim.h"
#include "tcp-victim.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

static volatile sig_atomic_t go;
static void on_usr(int s) { go = s; }

static int eof(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  char c;
  return poll(&p, 1, 15000) == 1 && recv(fd, &c, 1, 0) == 0;
}

static int listener(struct sockaddr_in *a) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  socklen_t len = sizeof *a;
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(l, (struct sockaddr *)a, len) || listen(l, 16) || getsockname(l, (struct sockaddr *)a, &len)) return -1;
  return l;
}

static int accept_slowly(void) {
  struct sockaddr_in a = {0};
  int l = listener(&a);
  if (l < 0) { say("FAIL setup: %s\n", strerror(errno)); return 1; }
  fcntl(l, F_SETFL, O_NONBLOCK);
  say("PORT %d\n", ntohs(a.sin_port));
  int conns[16], n = 0;
  while (!go) {
    for (int c; n < 16 && (c = accept(l, NULL, NULL)) >= 0;) conns[n++] = c;
    say("ACCEPTED total=%d\n", n);
    for (int i = 0; i < 50 && !go; i++) usleep(10000);
  }
  char fail[256] = "";
  for (int i = 0; i < n && !fail[0]; i++) {
    char req[8], want[8], ans[8];
    snprintf(want, sizeof want, "req-%d", i);
    snprintf(ans, sizeof ans, "ans-%d", i);
    if (!recv_all(conns[i], req, 5) || memcmp(req, want, 5)) snprintf(fail, sizeof fail, "connection %d: no %s (%s)", i, want, strerror(errno));
    else if (send(conns[i], ans, 5, 0) != 5) snprintf(fail, sizeof fail, "connection %d: cannot answer (%s)", i, strerror(errno));
  }
  if (fail[0]) say("FAIL %s\n", fail);
  else say("PASS accept %d\n", n);
  return 0;
}

static int no_accept(void) {
  struct sockaddr_in a = {0};
  int l = listener(&a);
  if (l < 0) { say("FAIL setup: %s\n", strerror(errno)); return 1; }
  say("PORT %d\nREADY\n", ntohs(a.sin_port));
  while (!go) usleep(10000);
  struct pollfd p = {.fd = l, .events = POLLIN};
  char b[3];
  int c = poll(&p, 1, 10000) == 1 ? accept(l, NULL, NULL) : -1;
  if (c < 0) say("FAIL no connection (%s)\n", strerror(errno));
  else if (!recv_all(c, b, 3) || memcmp(b, "new", 3)) say("FAIL the connection accepted did not send new (%s)\n", strerror(errno));
  else if (send(c, "ok", 2, 0) != 2) say("FAIL cannot answer (%s)\n", strerror(errno));
  else say("PASS noaccept\n");
  return 0;
}

static int ioctl_int(int fd, unsigned long req) {
  int v = -1;
  ioctl(fd, req, &v);
  return v;
}

static unsigned char pattern(long i) { return (unsigned char)(i * 13 + (i >> 8)); }

#define INFLIGHT (64 * 1024)

static int inflight(void) {
  struct sockaddr_in a = {0};
  int l = listener(&a);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (l < 0 || connect(c, (struct sockaddr *)&a, sizeof a)) { say("FAIL setup: %s\n", strerror(errno)); return 1; }
  int s = accept(l, NULL, NULL);
  close(l);
  struct sockaddr_in ca;
  socklen_t len = sizeof ca;
  getsockname(c, (struct sockaddr *)&ca, &len);
  say("PORT %d\n", ntohs(ca.sin_port));
  while (go != SIGUSR2) usleep(10000);
  static unsigned char big[INFLIGHT];
  for (long i = 0; i < INFLIGHT; i++) big[i] = pattern(i);
  if (send(s, big, INFLIGHT, MSG_DONTWAIT) != INFLIGHT || shutdown(s, SHUT_WR) || send(c, "c-data", 6, 0) != 6) {
    say("FAIL setup: %s\n", strerror(errno));
    return 1;
  }
  usleep(50000);
  /* SIOCOUTQ: not acknowledged; SIOCOUTQNSD: not sent. */
  say("INFLIGHT s=%d/%d c=%d/%d\n", ioctl_int(s, SIOCOUTQ), ioctl_int(s, SIOCOUTQNSD), ioctl_int(c, SIOCOUTQ), ioctl_int(c, SIOCOUTQNSD));
  while (go != SIGUSR1) usleep(10000);
  static unsigned char got[INFLIGHT];
  char fail[256] = "", six[7] = "";
  struct tcp_info ti;
  len = sizeof ti;
  if (!recv_all(c, got, INFLIGHT) || memcmp(got, big, INFLIGHT)) snprintf(fail, sizeof fail, "c: not the %d bytes (%s)", INFLIGHT, strerror(errno));
  else if (!eof(c)) snprintf(fail, sizeof fail, "c: no EOF after them (%s)", strerror(errno));
  else if (!recv_all(s, six, 6) || memcmp(six, "c-data", 6)) snprintf(fail, sizeof fail, "s: not c-data (%s)", strerror(errno));
  else if (recv(s, six, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN) snprintf(fail, sizeof fail, "s: more than c-data");
  else {
    for (int i = 0; i < 500; i++) {
      getsockopt(s, IPPROTO_TCP, TCP_INFO, &ti, &len);
      if (ti.tcpi_state == TCP_FIN_WAIT2) break;
      usleep(10000);
    }
    if (ti.tcpi_state != TCP_FIN_WAIT2) snprintf(fail, sizeof fail, "s: state %d, not FIN_WAIT2", ti.tcpi_state);
  }
  if (fail[0]) say("FAIL %s\n", fail);
  else say("PASS inflight\n");
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGUSR1, on_usr);
  signal(SIGUSR2, on_usr);
  if (argc >= 2 && !strcmp(argv[1], "accept")) return accept_slowly();
  if (argc >= 2 && !strcmp(argv[1], "inflight")) return inflight();
  if (argc >= 2 && !strcmp(argv[1], "noaccept")) return no_accept();
  say("usage: tcp-queues accept|noaccept|inflight\n");
  return 2;
}
