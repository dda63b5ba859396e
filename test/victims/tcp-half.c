/* Half-closed TCP connections (tcp-half.test.ts).
 *
 * "tcp-half pairs FAMILY" (FAMILY 4: 127.0.0.1, 6: ::1, m: ::ffff:127.0.0.1 through a
 * dual-stack IPv6 listener, or an address to listen on): four connections with both ends
 * in this process, brought to every half-closed state. A receiver with a small buffer
 * that does not read gives a zero window, which keeps a FIN unsent behind data:
 *   1  s1 FIN_WAIT1 (bytes unsent, then its FIN)      c1 ESTABLISHED, receive queue full
 *   2  s2 CLOSING   (the same, then c2's FIN came in)  c2 FIN_WAIT2, receive queue full
 *   3  s3 LAST_ACK  (c3's FIN came in, then bytes and its FIN)  c3 FIN_WAIT2, queue full
 *   4  s4 CLOSE_WAIT ("a4" unread, then EOF)           c4 FIN_WAIT2 ("b4" unread)
 * Prints READY once every end is in its state (TCP_INFO). On SIGUSR1 it checks the
 * states again, then goes on: every byte arrives in order, EOF is seen exactly where the
 * peer shut down, writes after our own shutdown fail with EPIPE, and new bytes still go
 * the open way. "PASS pairs" or "FAIL …".
 *
 * "tcp-half serve": listens on 127.0.0.1, prints "PORT n"; a peer ("tcp-half peer n",
 * another process, outside the dumped tree) connects twice. On conn 1 the peer sent
 * "p1" and shut down (ours: CLOSE_WAIT); on conn 2 we sent "s1" and shut down (ours:
 * FIN_WAIT2). Both print READY. On SIGUSR1 the server checks both states ("CHECKED"),
 * then (the test signals the peer only now) reads "p1" and EOF on conn 1,
 * answers "s2" and closes; reads "p2" then EOF on conn 2. The peer reads "s1" and EOF
 * on conn 2, sends "p2" and closes; reads "s2" and EOF on conn 1. Each prints "PASS …". */
#include "victim.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

static volatile sig_atomic_t go;
static void on_usr(int s) { go = s; }
static char fail[512];

#define CHECK(cond, ...) do { if (!fail[0] && !(cond)) snprintf(fail, sizeof fail, __VA_ARGS__); } while (0)

static const char *NAMES[] = {"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT", "CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING"};

static int state(int fd) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len)) return 0;
  return ti.tcpi_state;
}

static const char *state_name(int fd) {
  int s = state(fd);
  return s > 0 && s <= 11 ? NAMES[s] : "?";
}

/* Waits (up to 5 s) until fd is in state want. */
static int reach(int fd, int want) {
  for (int i = 0; i < 500 && state(fd) != want; i++) usleep(10000);
  return state(fd) == want;
}

static unsigned char pattern(long i, int seed) { return (unsigned char)(i * 7 + seed * 31 + (i >> 9)); }

/* Writes the pattern without blocking until the send buffer is full; returns the bytes written. */
static long fill(int fd, int seed) {
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  unsigned char b[4096];
  long n = 0;
  for (;;) {
    for (int i = 0; i < (int)sizeof b; i++) b[i] = pattern(n + i, seed);
    ssize_t r = send(fd, b, sizeof b, MSG_NOSIGNAL);
    if (r <= 0) break;
    n += r;
  }
  fcntl(fd, F_SETFL, fl);
  usleep(20000);
  return n;
}

/* Reads exactly n bytes (the pattern of seed, or the string want), 10 s at most. */
static int read_exact(int fd, long n, int seed, const char *want) {
  unsigned char b[4096];
  long have = 0;
  while (have < n) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 10000) != 1) return 0;
    ssize_t r = recv(fd, b, n - have < (long)sizeof b ? n - have : (long)sizeof b, 0);
    if (r <= 0) return 0;
    for (ssize_t i = 0; i < r; i++) {
      if (want ? b[i] != (unsigned char)want[have + i] : b[i] != pattern(have + i, seed)) return 0;
    }
    have += r;
  }
  return 1;
}

static int read_str(int fd, const char *want) { return read_exact(fd, strlen(want), 0, want); }

/* EOF next (within 10 s). */
static int eof(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  char c;
  return poll(&p, 1, 10000) == 1 && recv(fd, &c, 1, 0) == 0;
}

/* Nothing to read now, and no EOF. */
static int quiet(int fd) {
  char c;
  return recv(fd, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

static int epipe(int fd) { return send(fd, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE; }

static socklen_t listen_on(int l, const char *family, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  socklen_t len;
  if (!strcmp(family, "4") || strchr(family, '.')) {
    a4->sin_family = AF_INET;
    inet_pton(AF_INET, strcmp(family, "4") ? family : "127.0.0.1", &a4->sin_addr);
    len = sizeof *a4;
  } else {
    a6->sin6_family = AF_INET6;
    if (!strcmp(family, "m")) {
      int off = 0;
      setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
      a6->sin6_addr = in6addr_any;
    } else inet_pton(AF_INET6, strcmp(family, "6") ? family : "::1", &a6->sin6_addr);
    len = sizeof *a6;
  }
  if (bind(l, (struct sockaddr *)ss, len) || listen(l, 8) || getsockname(l, (struct sockaddr *)ss, &len)) return 0;
  if (!strcmp(family, "m")) inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6->sin6_addr);
  return len;
}

/* A connection to the listener: c (the client, with a small receive buffer) and s (accepted). */
static int pair(int l, struct sockaddr_storage *ss, socklen_t len, int *c, int *s) {
  int small = 4096;
  *c = socket(ss->ss_family, SOCK_STREAM, 0);
  setsockopt(*c, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  if (connect(*c, (struct sockaddr *)ss, len)) return 0;
  *s = accept(l, NULL, NULL);
  int sb = 16384;
  setsockopt(*s, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
  setsockopt(*c, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
  return *s >= 0;
}

static int pairs(const char *family) {
  int l = socket(strcmp(family, "4") && !strchr(family, '.') ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  struct sockaddr_storage ss;
  socklen_t len = listen_on(l, family, &ss);
  int c1, s1, c2, s2, c3, s3, c4, s4;
  if (!len || !pair(l, &ss, len, &c1, &s1) || !pair(l, &ss, len, &c2, &s2) || !pair(l, &ss, len, &c3, &s3) || !pair(l, &ss, len, &c4, &s4)) {
    say("FAIL setup: %s\n", strerror(errno));
    return 1;
  }
  close(l);
  long n1 = fill(s1, 1);
  shutdown(s1, SHUT_WR);
  long n2 = fill(s2, 2);
  shutdown(s2, SHUT_WR);
  shutdown(c2, SHUT_WR);
  send(c3, "y3", 2, 0);
  shutdown(c3, SHUT_WR);
  reach(s3, TCP_CLOSE_WAIT);
  long n3 = fill(s3, 3);
  shutdown(s3, SHUT_WR);
  send(c4, "a4", 2, 0);
  shutdown(c4, SHUT_WR);
  send(s4, "b4", 2, 0);
  const struct { int fd, want; const char *name; } ends[] = {
    {s1, TCP_FIN_WAIT1, "s1"}, {c1, TCP_ESTABLISHED, "c1"}, {s2, TCP_CLOSING, "s2"}, {c2, TCP_FIN_WAIT2, "c2"},
    {s3, TCP_LAST_ACK, "s3"}, {c3, TCP_FIN_WAIT2, "c3"}, {s4, TCP_CLOSE_WAIT, "s4"}, {c4, TCP_FIN_WAIT2, "c4"},
  };
  for (int i = 0; i < 8; i++) {
    if (!reach(ends[i].fd, ends[i].want)) {
      say("FAIL setup: %s is %s, not %s\n", ends[i].name, state_name(ends[i].fd), NAMES[ends[i].want]);
      return 1;
    }
  }
  say("READY %ld %ld %ld\n", n1, n2, n3);
  while (!go) usleep(10000);
  for (int i = 0; i < 8; i++) CHECK(state(ends[i].fd) == ends[i].want, "%s is %s after restore, not %s", ends[i].name, state_name(ends[i].fd), NAMES[ends[i].want]);
  /* 4: the peer's EOF after its bytes at s4; c4 still open for reading. */
  CHECK(read_str(c4, "b4") && quiet(c4), "c4 (FIN_WAIT2): not b4 then nothing (%s)", strerror(errno));
  CHECK(read_str(s4, "a4") && eof(s4), "s4 (CLOSE_WAIT): not a4 then EOF (%s)", strerror(errno));
  CHECK(send(s4, "b5", 2, 0) == 2 && read_str(c4, "b5"), "s4 → c4 after restore (%s)", strerror(errno));
  CHECK(shutdown(s4, SHUT_WR) == 0 && eof(c4), "s4's shutdown: no EOF at c4 (%s)", strerror(errno));
  CHECK(epipe(c4), "c4 could write after its shutdown");
  /* 1: c1 gets every byte then EOF; it can still send to s1, which cannot send any more. */
  CHECK(read_exact(c1, n1, 1, NULL) && eof(c1), "c1: not the %ld bytes then EOF (%s)", n1, strerror(errno));
  CHECK(reach(s1, TCP_FIN_WAIT2), "s1 did not reach FIN_WAIT2 (%s)", state_name(s1));
  CHECK(quiet(s1), "s1 reads something before c1 sends");
  CHECK(send(c1, "c1", 2, 0) == 2 && read_str(s1, "c1"), "c1 → s1 after restore (%s)", strerror(errno));
  CHECK(epipe(s1), "s1 could write after its shutdown");
  CHECK(shutdown(c1, SHUT_WR) == 0 && eof(s1), "c1's shutdown: no EOF at s1 (%s)", strerror(errno));
  /* 2: both sides shut down: s2 reads EOF at once, c2 its bytes then EOF. */
  CHECK(eof(s2), "s2 (CLOSING): no EOF (%s)", strerror(errno));
  CHECK(read_exact(c2, n2, 2, NULL) && eof(c2), "c2: not the %ld bytes then EOF (%s)", n2, strerror(errno));
  CHECK(epipe(s2) && epipe(c2), "s2 or c2 could write after its shutdown");
  /* 3: s3 reads y3 then EOF; c3 its bytes then EOF. */
  CHECK(read_str(s3, "y3") && eof(s3), "s3 (LAST_ACK): not y3 then EOF (%s)", strerror(errno));
  CHECK(read_exact(c3, n3, 3, NULL) && eof(c3), "c3: not the %ld bytes then EOF (%s)", n3, strerror(errno));
  CHECK(epipe(s3) && epipe(c3), "s3 or c3 could write after its shutdown");
  if (fail[0]) say("FAIL %s\n", fail);
  else say("PASS pairs\n");
  return 0;
}

static int serve(void) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_storage ss;
  socklen_t len = listen_on(l, "4", &ss);
  if (!len) { say("FAIL setup: %s\n", strerror(errno)); return 1; }
  say("PORT %d\n", ntohs(((struct sockaddr_in *)&ss)->sin_port));
  int a = accept(l, NULL, NULL), b = accept(l, NULL, NULL);
  close(l);
  send(b, "s1", 2, 0);
  shutdown(b, SHUT_WR);
  if (!reach(a, TCP_CLOSE_WAIT) || !reach(b, TCP_FIN_WAIT2)) { say("FAIL setup: %s, %s\n", state_name(a), state_name(b)); return 1; }
  say("READY\n");
  while (!go) usleep(10000);
  CHECK(state(a) == TCP_CLOSE_WAIT && state(b) == TCP_FIN_WAIT2, "after restore: %s, %s", state_name(a), state_name(b));
  say("CHECKED\n"); /* the peer may go on */
  CHECK(read_str(a, "p1") && eof(a), "conn 1 (CLOSE_WAIT): not p1 then EOF (%s)", strerror(errno));
  CHECK(send(a, "s2", 2, 0) == 2 && close(a) == 0, "conn 1: cannot answer (%s)", strerror(errno));
  CHECK(epipe(b), "conn 2: could write after shutdown");
  CHECK(read_str(b, "p2") && eof(b), "conn 2 (FIN_WAIT2): not p2 then EOF (%s)", strerror(errno));
  if (fail[0]) say("FAIL %s\n", fail);
  else say("PASS serve\n");
  return 0;
}

static int peer(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int c1 = socket(AF_INET, SOCK_STREAM, 0), c2 = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c1, (struct sockaddr *)&a, sizeof a) || connect(c2, (struct sockaddr *)&a, sizeof a)) { say("FAIL connect: %s\n", strerror(errno)); return 1; }
  send(c1, "p1", 2, 0);
  shutdown(c1, SHUT_WR);
  if (!reach(c1, TCP_FIN_WAIT2) || !reach(c2, TCP_CLOSE_WAIT)) { say("FAIL setup: %s, %s\n", state_name(c1), state_name(c2)); return 1; }
  say("READY\n");
  while (!go) usleep(10000);
  CHECK(read_str(c2, "s1") && eof(c2), "conn 2: not s1 then EOF (%s)", strerror(errno));
  CHECK(send(c2, "p2", 2, 0) == 2 && close(c2) == 0, "conn 2: cannot send p2 (%s)", strerror(errno));
  CHECK(read_str(c1, "s2") && eof(c1), "conn 1: not s2 then EOF (%s)", strerror(errno));
  if (fail[0]) say("FAIL %s\n", fail);
  else say("PASS peer\n");
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGUSR1, on_usr);
  if (argc >= 3 && !strcmp(argv[1], "pairs")) return pairs(argv[2]);
  if (argc >= 2 && !strcmp(argv[1], "serve")) return serve();
  if (argc >= 3 && !strcmp(argv[1], "peer")) return peer(atoi(argv[2]));
  say("usage: tcp-half pairs 4|6|m|ADDR | serve | peer PORT\n");
  return 2;
}
