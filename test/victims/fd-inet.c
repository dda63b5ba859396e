/* TCP listeners (IPv4, IPv6) and UDP sockets (bound, connected). Prints
 * "PORTS l4=N l6=N u1=N u2=N". On SIGUSR1 it checks its sockets kept their addresses,
 * options and flags, accepts one connection on each listener (the test connects
 * first) and answers "OK4"/"OK6" on it, and sends a datagram each way between the UDP
 * sockets. A TCP connection within the process (client tc, accepted ts) has bytes in
 * flight both ways: the first check reads them (exact bytes and order), every check
 * then sends new data both ways. Prints "CHECK PASS" or "CHECK FAIL: why". */
#include "victim.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }
static char fail[4096];
#define CHECK(c, ...) do { if (!(c) && !fail[0]) snprintf(fail, sizeof fail, __VA_ARGS__); } while (0)

static int l4, l6, u1, u2, tc, ts, checks, to_client;
#define TO_SERVER 3000
static struct sockaddr_storage n_l4, n_l6, n_u1, n_u2, p_u2;

static int opt(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  getsockopt(fd, level, name, &v, &len);
  return v;
}

static void name_of(int fd, struct sockaddr_storage *ss) {
  socklen_t len = sizeof *ss;
  memset(ss, 0, sizeof *ss);
  getsockname(fd, (struct sockaddr *)ss, &len);
}

static int port_of(struct sockaddr_storage *ss) {
  return ntohs(ss->ss_family == AF_INET ? ((struct sockaddr_in *)ss)->sin_port : ((struct sockaddr_in6 *)ss)->sin6_port);
}

static void same_name(int fd, struct sockaddr_storage *was, const char *what) {
  struct sockaddr_storage now;
  name_of(fd, &now);
  CHECK(memcmp(&now, was, sizeof now) == 0, "%s: getsockname changed (port %d -> %d)", what, port_of(was), port_of(&now));
}

/* Accepts every connection waiting (at least one) and answers each with `reply`. */
static void accept_all(int l, const char *reply, const char *what) {
  struct pollfd p = {.fd = l, .events = POLLIN};
  CHECK(poll(&p, 1, 5000) == 1, "%s: no connection to accept", what);
  do {
    int c = accept(l, NULL, NULL);
    CHECK(c >= 0, "%s: accept: %s", what, strerror(errno));
    if (c < 0) return;
    send(c, reply, strlen(reply), MSG_NOSIGNAL);
    /* Closed with a reset (no TIME_WAIT, which blocks binding l6 again: it has no SO_REUSEADDR). */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    usleep(20000);
    close(c);
  } while (poll(&p, 1, 0) == 1);
}

static void udp_pair(void) {
  char b[64];
  CHECK(send(u2, "ping", 4, 0) == 4, "udp send u2->u1: %s", strerror(errno));
  struct pollfd p = {.fd = u1, .events = POLLIN};
  CHECK(poll(&p, 1, 5000) == 1, "udp: nothing arrived at u1");
  struct sockaddr_storage from;
  socklen_t flen = sizeof from;
  ssize_t r = recvfrom(u1, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
  CHECK(r == 4 && memcmp(b, "ping", 4) == 0, "udp: u1 got %zd bytes", r);
  CHECK(port_of(&from) == port_of(&n_u2), "udp: u1 got it from port %d, not %d", port_of(&from), port_of(&n_u2));
  CHECK(sendto(u1, "pong", 4, 0, (struct sockaddr *)&from, flen) == 4, "udp send u1->u2: %s", strerror(errno));
  p.fd = u2;
  CHECK(poll(&p, 1, 5000) == 1, "udp: nothing arrived at u2");
  r = recv(u2, b, sizeof b, MSG_DONTWAIT);
  CHECK(r == 4 && memcmp(b, "pong", 4) == 0, "udp: u2 got %zd bytes", r);
}

static unsigned char pat(int seed, int i) { return (unsigned char)(seed * 31 + i * 7 + i / 251); }

static void read_exact(int fd, int n, int seed, const char *what) {
  static unsigned char b[1 << 20];
  int have = 0;
  struct pollfd p = {.fd = fd, .events = POLLIN};
  while (have < n) {
    if (poll(&p, 1, 5000) != 1) { CHECK(0, "%s: %d of %d bytes, then nothing", what, have, n); return; }
    ssize_t r = recv(fd, b + have, n - have, MSG_DONTWAIT);
    if (r <= 0) { CHECK(0, "%s: recv %zd after %d of %d bytes (%s)", what, r, have, n, strerror(errno)); return; }
    have += r;
  }
  for (int i = 0; i < n; i++) if (b[i] != pat(seed, i)) { CHECK(0, "%s: byte %d differs", what, i); return; }
  char c;
  CHECK(recv(fd, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "%s: more bytes than sent", what);
}

static int write_pat(int fd, int n, int seed) {
  static unsigned char b[1 << 20];
  for (int i = 0; i < n; i++) b[i] = pat(seed, i);
  int off = 0;
  while (off < n) {
    ssize_t r = send(fd, b + off, n - off, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (r <= 0) break;
    off += r;
  }
  return off;
}

static void tcp_pair(void) {
  if (checks++ == 0) {
    read_exact(ts, TO_SERVER, 70, "tcp client->server in flight");
    read_exact(tc, to_client, 71, "tcp server->client in flight");
  }
  CHECK(write_pat(tc, 1000, 72) == 1000, "tcp: client send: %s", strerror(errno));
  read_exact(ts, 1000, 72, "tcp client->server new");
  CHECK(write_pat(ts, 2000, 73) == 2000, "tcp: server send: %s", strerror(errno));
  read_exact(tc, 2000, 73, "tcp server->client new");
}

int main(void) {
  signal(SIGUSR1, on_usr1);
  int one = 1, rcv = 65536;
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};

  l4 = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(l4, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(l4, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  setsockopt(l4, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (bind(l4, (struct sockaddr *)&a4, sizeof a4) || listen(l4, 7)) { say("SETUP FAIL l4 %s\n", strerror(errno)); return 1; }
  fcntl(l4, F_SETFL, O_NONBLOCK);

  l6 = socket(AF_INET6, SOCK_STREAM, 0);
  setsockopt(l6, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  setsockopt(l6, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  if (bind(l6, (struct sockaddr *)&a6, sizeof a6) || listen(l6, 5)) { say("SETUP FAIL l6 %s\n", strerror(errno)); return 1; }

  u1 = socket(AF_INET, SOCK_DGRAM, 0);
  if (bind(u1, (struct sockaddr *)&a4, sizeof a4)) { say("SETUP FAIL u1 %s\n", strerror(errno)); return 1; }
  name_of(u1, &n_u1);
  u2 = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  setsockopt(u2, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
  if (connect(u2, (struct sockaddr *)&n_u1, sizeof(struct sockaddr_in))) { say("SETUP FAIL u2 %s\n", strerror(errno)); return 1; }
  name_of(l4, &n_l4);
  name_of(l6, &n_l6);
  /* A connection within the process, with bytes in flight both ways: the client's small
   * receive buffer leaves part of what the server sends in the server's send queue. */
  int small = 4096;
  tc = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(tc, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  if (connect(tc, (struct sockaddr *)&n_l4, sizeof(struct sockaddr_in))) { say("SETUP FAIL tc %s\n", strerror(errno)); return 1; }
  struct pollfd lp = {.fd = l4, .events = POLLIN};
  poll(&lp, 1, 5000);
  ts = accept(l4, NULL, NULL);
  if (ts < 0) { say("SETUP FAIL ts %s\n", strerror(errno)); return 1; }
  if (write_pat(tc, TO_SERVER, 70) != TO_SERVER) { say("SETUP FAIL tc write\n"); return 1; }
  to_client = write_pat(ts, 200000, 71);
  usleep(50000);
  name_of(u2, &n_u2);
  socklen_t plen = sizeof p_u2;
  getpeername(u2, (struct sockaddr *)&p_u2, &plen);
  int rcv6 = opt(l6, SOL_SOCKET, SO_RCVBUF);
  say("TCP to_client=%d\n", to_client);
  say("PORTS l4=%d l6=%d u1=%d u2=%d\n", port_of(&n_l4), port_of(&n_l6), port_of(&n_u1), port_of(&n_u2));
  say("READY pid=%d\n", getpid());
  for (;;) {
    while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
    go = 0;
    fail[0] = 0;
    same_name(l4, &n_l4, "l4");
    same_name(l6, &n_l6, "l6");
    same_name(u1, &n_u1, "u1");
    same_name(u2, &n_u2, "u2");
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    memset(&peer, 0, sizeof peer);
    CHECK(getpeername(u2, (struct sockaddr *)&peer, &len) == 0 && memcmp(&peer, &p_u2, sizeof peer) == 0, "u2: not connected to u1 any more");
    CHECK(opt(l4, SOL_SOCKET, SO_ACCEPTCONN) == 1 && opt(l6, SOL_SOCKET, SO_ACCEPTCONN) == 1, "a listener is not listening");
    CHECK(opt(l4, SOL_SOCKET, SO_REUSEADDR) == 1, "l4: SO_REUSEADDR lost");
    CHECK(opt(l4, SOL_SOCKET, SO_KEEPALIVE) == 1, "l4: SO_KEEPALIVE lost");
    CHECK(opt(l4, IPPROTO_TCP, TCP_NODELAY) == 1, "l4: TCP_NODELAY lost");
    CHECK(opt(l6, SOL_SOCKET, SO_REUSEADDR) == 0, "l6: SO_REUSEADDR gained");
    CHECK(opt(l6, IPPROTO_IPV6, IPV6_V6ONLY) == 1, "l6: IPV6_V6ONLY lost");
    CHECK(opt(l6, SOL_SOCKET, SO_RCVBUF) == rcv6, "l6: SO_RCVBUF %d, not %d", opt(l6, SOL_SOCKET, SO_RCVBUF), rcv6);
    CHECK(opt(u2, SOL_SOCKET, SO_BROADCAST) == 1, "u2: SO_BROADCAST lost");
    CHECK(opt(u1, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM && opt(l6, SOL_SOCKET, SO_DOMAIN) == AF_INET6, "socket types");
    CHECK(fcntl(l4, F_GETFL) & O_NONBLOCK, "l4 lost O_NONBLOCK");
    CHECK(fcntl(u2, F_GETFL) & O_NONBLOCK, "u2 lost O_NONBLOCK");
    CHECK(!(fcntl(l6, F_GETFL) & O_NONBLOCK), "l6 gained O_NONBLOCK");
    accept_all(l4, "OK4", "l4");
    accept_all(l6, "OK6", "l6");
    udp_pair();
    tcp_pair();
    if (fail[0]) say("CHECK FAIL: %s\n", fail);
    else say("CHECK PASS\n");
  }
}
