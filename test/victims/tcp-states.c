/* A TCP connection inside one process over a dual-stack IPv6 listener, reached at
 * the v4-mapped address ::ffff:127.0.0.1 (on the wire it is IPv4), with 3 bytes
 * queued unread at the server end. Prints "READY". On SIGUSR1 it checks the
 * connection kept its v4-mapped addresses and its bytes, and carries new ones both
 * ways: "PASS v4-mapped" or "FAIL …". A second connection was reset by its peer (and
 * the reset read): it must still read EOF and fail to write with EPIPE. On SIGUSR2
 * (after a --tcp-close dump or restore) it checks the first connection reads EOF and
 * writes EPIPE at both ends too: "PASS closed".
 *
 * "tcp-states oob": the client also sends one urgent byte (MSG_OOB) that the server
 * has not read: a dump must refuse it.
 *
 * "tcp-states connect PORT": a non-blocking connect to 127.0.0.1:PORT, whose SYNs the
 * test drops (SYN_SENT). On SIGUSR1 it waits for the connection, sends "hi" and expects
 * it back (the test echoes): "PASS connected".
 *
 * "tcp-states md5": a listener with a TCP_MD5SIG key: a dump must refuse it.
 *
 * "tcp-states savesyn": a connection accepted from a listener with TCP_SAVE_SYN, its
 * saved SYN not read: a dump must refuse it; on SIGUSR1 the SYN is still there to read
 * ("PASS saved syn"). */
#include "victim.h"
#include "tcp-victim.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

static volatile sig_atomic_t go;
static void on_usr(int s) { go = s; }

/* A connection that is over: EOF on read, EPIPE on write. */
static int over(int fd) {
  char b;
  if (recv(fd, &b, 1, MSG_DONTWAIT) != 0) return 0;
  return send(fd, "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE;
}

static int mapped(int fd, int peer) {
  struct sockaddr_in6 a;
  socklen_t len = sizeof a;
  if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &len)) return 0;
  return a.sin6_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a.sin6_addr) && a.sin6_addr.s6_addr[15] == 1;
}

static int md5_listener(void) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  struct tcp_md5sig m = {.tcpm_keylen = 4};
  struct sockaddr_in *peer = (struct sockaddr_in *)&m.tcpm_addr;
  peer->sin_family = AF_INET;
  peer->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  memcpy(m.tcpm_key, "key!", 4);
  if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) || setsockopt(l, IPPROTO_TCP, TCP_MD5SIG, &m, sizeof m)) {
    say("FAIL setup: %s\n", strerror(errno));
    return 1;
  }
  say("READY\n");
  while (!go) usleep(10000);
  return 0;
}

static int saved_syn(void) {
  int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (setsockopt(l, IPPROTO_TCP, TCP_SAVE_SYN, &one, sizeof one) || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1) ||
      getsockname(l, (struct sockaddr *)&a, &len)) {
    say("FAIL setup: %s\n", strerror(errno));
    return 1;
  }
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c, (struct sockaddr *)&a, sizeof a)) { say("FAIL connect: %s\n", strerror(errno)); return 1; }
  int s = accept(l, NULL, NULL);
  say("READY\n");
  while (!go) usleep(10000);
  unsigned char syn[512];
  len = sizeof syn;
  if (getsockopt(s, IPPROTO_TCP, TCP_SAVED_SYN, syn, &len) || len < 40) say("FAIL no saved SYN (%s, %u bytes)\n", strerror(errno), len);
  else say("PASS saved syn\n");
  return 0;
}

static int connect_later(int port) {
  int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (connect(c, (struct sockaddr *)&a, sizeof a) == 0 || errno != EINPROGRESS) { say("FAIL connect: %s\n", strerror(errno)); return 1; }
  say("READY\n");
  while (!go) usleep(10000);
  struct pollfd p = {.fd = c, .events = POLLOUT};
  int err = -1;
  socklen_t len = sizeof err;
  if (poll(&p, 1, 20000) != 1) say("FAIL not connected within 20 s\n");
  else if (getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len) || err) say("FAIL connect: %s\n", strerror(err));
  else if (send(c, "hi", 2, 0) != 2 || !recv_str(c, "hi")) say("FAIL no echo: %s\n", strerror(errno));
  else say("PASS connected\n");
  return 0;
}

int main(int argc, char **argv) {
  int oob = argc >= 2 && !strcmp(argv[1], "oob");
  signal(SIGUSR1, on_usr);
  if (argc >= 3 && !strcmp(argv[1], "connect")) return connect_later(atoi(argv[2]));
  if (argc >= 2 && !strcmp(argv[1], "md5")) return md5_listener();
  if (argc >= 2 && !strcmp(argv[1], "savesyn")) return saved_syn();
  signal(SIGUSR2, on_usr);
  int l = socket(AF_INET6, SOCK_STREAM, 0), off = 0;
  setsockopt(l, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_any};
  socklen_t len = sizeof a;
  if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 4) || getsockname(l, (struct sockaddr *)&a, &len)) {
    say("FAIL setup: %s\n", strerror(errno));
    return 1;
  }
  inet_pton(AF_INET6, "::ffff:127.0.0.1", &a.sin6_addr);
  int c = socket(AF_INET6, SOCK_STREAM, 0);
  if (connect(c, (struct sockaddr *)&a, sizeof a)) { say("FAIL connect: %s\n", strerror(errno)); return 1; }
  int s = accept(l, NULL, NULL);
  /* The second connection: its peer resets it; the reset is read, the socket kept. */
  int c2 = socket(AF_INET6, SOCK_STREAM, 0);
  if (connect(c2, (struct sockaddr *)&a, sizeof a)) { say("FAIL connect: %s\n", strerror(errno)); return 1; }
  int s2 = accept(l, NULL, NULL);
  struct linger lg = {.l_onoff = 1, .l_linger = 0};
  setsockopt(c2, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(c2);
  usleep(20000);
  char b;
  if (recv(s2, &b, 1, 0) >= 0 || errno != ECONNRESET) { say("FAIL setup: no reset (%s)\n", strerror(errno)); return 1; }
  send(c, "abc", 3, 0);
  if (oob) send(c, "!", 1, MSG_OOB);
  usleep(20000);
  say("READY\n");
  while (!go) usleep(10000);
  char fail[256] = "";
  if (!over(s2)) snprintf(fail, sizeof fail, "the reset connection is not over (%s)", strerror(errno));
  else if (go == SIGUSR2) {
    if (!over(s) || !over(c)) snprintf(fail, sizeof fail, "the connection is not closed (%s)", strerror(errno));
    say(fail[0] ? "FAIL %s\n" : "PASS closed\n", fail);
    return 0;
  } else if (!mapped(s, 0) || !mapped(s, 1) || !mapped(c, 0) || !mapped(c, 1)) snprintf(fail, sizeof fail, "the addresses are not v4-mapped any more");
  else if (!recv_str(s, "abc")) snprintf(fail, sizeof fail, "the queued bytes are not abc");
  else if (send(c, "ping", 4, 0) != 4 || !recv_str(s, "ping")) snprintf(fail, sizeof fail, "client to server: %s", strerror(errno));
  else if (send(s, "pong", 4, 0) != 4 || !recv_str(c, "pong")) snprintf(fail, sizeof fail, "server to client: %s", strerror(errno));
  if (fail[0]) say("FAIL %s\n", fail);
  else say("PASS v4-mapped\n");
  return 0;
}
