/* Socket and pipe shapes servers leave behind, checked by the victim itself after restore
 * (SIGUSR1): two TCP listeners and two UDP sockets in SO_REUSEPORT groups, an IPv6-only
 * and an IPv4 listener on one port, a packet-mode pipe (O_DIRECT) with two packets queued.
 * Mode "recverr" (argv[1]): a UDP socket with IP_RECVERR and an ICMP error queued, whose
 * dump must refuse; on SIGUSR1 it reads the error (PASS recverr-kept).
 * Mode "urgent": a TCP connection within the process whose receiver does not read (a
 * small receive buffer: the window closes) with an urgent byte (MSG_OOB) sent behind the
 * queued bytes, not acknowledged: its dump must refuse; on SIGUSR1 the receiver reads it
 * all and finds the mark (PASS urgent-kept).
 * Prints READY pid=N port=N, then PASS/FAIL lines and DONE. */
#include "victim.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static void fatal(const char *what) {
  say("FAIL setup: %s: %s\n", what, strerror(errno));
  exit(2);
}

static int on = 1, off = 0;

static int tcp_listener(int family, int port, int reuseport, int v6only) {
  int s = socket(family, SOCK_STREAM, 0);
  if (s < 0) fatal("socket");
  if (reuseport && setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0) fatal("SO_REUSEPORT");
  if (family == AF_INET6 && setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, v6only ? &on : &off, sizeof on) < 0) fatal("V6ONLY");
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  int r = family == AF_INET ? bind(s, (struct sockaddr *)&a4, sizeof a4) : bind(s, (struct sockaddr *)&a6, sizeof a6);
  if (r < 0 || listen(s, 64) < 0) fatal("bind/listen");
  return s;
}

static int port_of(int s) {
  struct sockaddr_storage a;
  socklen_t len = sizeof a;
  getsockname(s, (struct sockaddr *)&a, &len);
  return ntohs(a.ss_family == AF_INET ? ((struct sockaddr_in *)&a)->sin_port : ((struct sockaddr_in6 *)&a)->sin6_port);
}

/* A TCP connection to the port over family; returns the client socket. */
static int connect_to(int family, int port) {
  int c = socket(family, SOCK_STREAM, 0);
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  int r = family == AF_INET ? connect(c, (struct sockaddr *)&a4, sizeof a4) : connect(c, (struct sockaddr *)&a6, sizeof a6);
  return r == 0 ? c : -1;
}

/* Which of the listeners has a connection waiting (bit i for listeners[i]). */
static int waiting(const int *listeners, int n) {
  struct pollfd p[4];
  for (int i = 0; i < n; i++) p[i] = (struct pollfd){.fd = listeners[i], .events = POLLIN};
  poll(p, n, 1000);
  int bits = 0;
  for (int i = 0; i < n; i++)
    if (p[i].revents & POLLIN) bits |= 1 << i;
  return bits;
}

static int udp_bound(int port, int reuseport) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (reuseport && setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0) fatal("SO_REUSEPORT udp");
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(s, (struct sockaddr *)&a, sizeof a) < 0) fatal("bind udp");
  return s;
}

static _Noreturn void recverr_mode(void) {
  /* a port nobody listens on: bind a socket for a free one, then close it */
  int probe = udp_bound(0, 0), port = port_of(probe);
  close(probe);
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  if (setsockopt(s, IPPROTO_IP, IP_RECVERR, &on, sizeof on) < 0) fatal("IP_RECVERR");
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(s, (struct sockaddr *)&a, sizeof a) < 0 || send(s, "x", 1, 0) != 1) fatal("send");
  struct pollfd p = {.fd = s, .events = 0};
  if (poll(&p, 1, 1000) != 1 || !(p.revents & POLLERR)) fatal("no error queued");
  say("READY pid=%d port=%d fd=%d\n", getpid(), port, s);
  while (!go) usleep(10000);
  char buf[256], ctl[512];
  struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
  ssize_t n = recvmsg(s, &m, MSG_ERRQUEUE | MSG_DONTWAIT);
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  struct sock_extended_err *ee = c ? (struct sock_extended_err *)CMSG_DATA(c) : NULL;
  verdict("recverr-kept", n >= 0 && ee && ee->ee_errno == ECONNREFUSED, "error queue read %zd", n);
  say("DONE\n");
  for (;;) pause();
}

static _Noreturn void urgent_mode(void) {
  int l = tcp_listener(AF_INET, 0, 0, 0), port = port_of(l);
  int small = 4096;
  setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof small); /* inherited by the accepted socket */
  int c = connect_to(AF_INET, port), a = accept(l, NULL, NULL);
  if (c < 0 || a < 0) fatal("connect");
  fcntl(c, F_SETFL, O_NONBLOCK);
  static char fill[32768];
  memset(fill, 'f', sizeof fill);
  ssize_t queued = 0, n;
  while (queued < (ssize_t)sizeof fill && (n = send(c, fill, sizeof fill - queued, 0)) > 0) queued += n;
  if (send(c, "!", 1, MSG_OOB) != 1) fatal("send MSG_OOB");
  say("READY pid=%d port=%d fd=%d\n", getpid(), port, c);
  while (!go) usleep(10000);
  /* read until the mark (SIOCATMARK), then the urgent byte */
  static char buf[65536];
  ssize_t got = 0;
  int mark = 0;
  for (int tries = 0; tries < 500 && !mark; tries++) {
    ioctl(a, SIOCATMARK, &mark);
    if (mark) break;
    n = recv(a, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) got += n;
    else usleep(10000);
  }
  char oob = 0;
  n = recv(a, &oob, 1, MSG_OOB);
  verdict("urgent-kept", mark && n == 1 && oob == '!' && got == queued, "mark %d, %zd bytes before it (of %zd), urgent read %zd [%c]", mark, got, queued, n, oob);
  say("DONE\n");
  for (;;) pause();
}

int main(int argc, char **argv) {
  struct sigaction sa = {.sa_handler = on_usr1};
  sigaction(SIGUSR1, &sa, NULL);
  syscall(SYS_close_range, 3, ~0U, 0);
  if (argc > 1 && strcmp(argv[1], "recverr") == 0) recverr_mode();
  if (argc > 1 && strcmp(argv[1], "urgent") == 0) urgent_mode();

  /* two TCP listeners in one SO_REUSEPORT group on 127.0.0.1:port */
  int l[2];
  l[0] = tcp_listener(AF_INET, 0, 1, 0);
  int port = port_of(l[0]);
  l[1] = tcp_listener(AF_INET, port, 1, 0);
  /* an IPv6-only listener on [::1]:port2 beside an IPv4 one on 127.0.0.1:port2 */
  int v6 = tcp_listener(AF_INET6, 0, 0, 1);
  int port2 = port_of(v6);
  int v4 = tcp_listener(AF_INET, port2, 0, 0);
  /* two UDP sockets in one SO_REUSEPORT group */
  int u[2];
  u[0] = udp_bound(0, 1);
  int uport = port_of(u[0]);
  u[1] = udp_bound(uport, 1);
  /* a packet-mode pipe with two packets queued */
  int p[2];
  if (pipe2(p, O_DIRECT | O_NONBLOCK) < 0) fatal("pipe2 O_DIRECT");
  if (write(p[1], "first", 5) != 5 || write(p[1], "second", 6) != 6) fatal("packets");

  say("READY pid=%d port=%d\n", getpid(), port);
  while (!go) usleep(10000);

  /* the group: several connections from different source ports are spread over both listeners */
  int bits = 0, clients[12];
  for (int i = 0; i < 12; i++) clients[i] = connect_to(AF_INET, port);
  bits = waiting(l, 2);
  verdict("reuseport-tcp", bits == 3 && clients[0] >= 0, "listeners with connections waiting: %d", bits);

  int c6 = connect_to(AF_INET6, port2), c4 = connect_to(AF_INET, port2);
  int a6 = accept(v6, NULL, NULL), a4 = accept(v4, NULL, NULL);
  verdict("v6only-beside-v4", c6 >= 0 && c4 >= 0 && a6 >= 0 && a4 >= 0, "v6 %d/%d v4 %d/%d", c6, a6, c4, a4);

  /* a datagram to the group port lands on one of the two sockets */
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in ua = {.sin_family = AF_INET, .sin_port = htons(uport), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  sendto(s, "d", 1, 0, (struct sockaddr *)&ua, sizeof ua);
  bits = waiting(u, 2);
  int reuse = 0;
  socklen_t rl = sizeof reuse;
  getsockopt(u[1], SOL_SOCKET, SO_REUSEPORT, &reuse, &rl);
  verdict("reuseport-udp", (bits == 1 || bits == 2) && reuse == 1, "sockets with the datagram: %d, SO_REUSEPORT %d", bits, reuse);

  char b1[16] = {0}, b2[16] = {0};
  ssize_t n1 = read(p[0], b1, sizeof b1), n2 = read(p[0], b2, sizeof b2);
  int fl = fcntl(p[1], F_GETFL);
  verdict("pipe-packets", n1 == 5 && n2 == 6 && strcmp(b1, "first") == 0 && strcmp(b2, "second") == 0 && (fl & O_DIRECT),
          "reads %zd [%s] %zd [%s], write end flags %o", n1, b1, n2, b2, fl);
  say("DONE\n");
  return 0;
}
