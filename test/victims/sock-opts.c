/* Socket options and shutdown state of every socket kind ckpt saves. Mode "ok" (default):
 * a TCP listener bound with IP_FREEBIND to an address not on this machine, a UDP socket
 * with a classic BPF filter that drops everything (locked), an IPv6 UDP socket, a TCP
 * connection within the process with per-end options, a UDP socket and a TCP connection
 * after shutdown(SHUT_RD), and unix socketpairs (stream, datagram) with options and one
 * end shut down for writing. Every option it set is read back into a table at setup;
 * on SIGUSR1 it reads the table again and checks the shutdown states by behaviour, then
 * prints "CHECK PASS" or "CHECK FAIL: why" (once: the check reads the queued bytes).
 * Mode "ebpf": a socket with an eBPF filter (SO_ATTACH_BPF): prints READY and waits: its
 * dump must refuse. Mode "unix-oob": a unix stream pair with an out-of-band byte queued
 * between "abc" and "def" (MSG_OOB): READY, its dump must refuse; on SIGUSR1 it reads
 * "abc", the byte with MSG_OOB and "def", and prints "CHECK PASS" or "CHECK FAIL: why". (A TCP socket reset by its peer is restored: tcp-states.c.) */
#include "victim.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif
#ifndef TCP_FASTOPEN
#define TCP_FASTOPEN 23
#endif

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }
static char fail[4096];
#define CHECK(c, ...) do { if (!(c) && !fail[0]) snprintf(fail, sizeof fail, __VA_ARGS__); } while (0)
#define SETUP(c, what) do { if (!(c)) { say("SETUP FAIL %s: %s\n", what, strerror(errno)); exit(1); } } while (0)

/* The table of options read back: socket, level, name, and what getsockopt gave at setup. */
struct seen { int fd, level, name; const char *what; unsigned char val[64]; socklen_t len; };
static struct seen table[128];
static int nseen;

static void setopt(int fd, int level, int name, const void *v, socklen_t len, const char *what) {
  if (setsockopt(fd, level, name, v, len)) { say("SETUP FAIL %s: %s\n", what, strerror(errno)); exit(1); }
  struct seen *s = &table[nseen++];
  s->fd = fd, s->level = level, s->name = name, s->what = what;
}

/* Read once setup is over (listen() and connect() change some options). */
static void snapshot(void) {
  for (int i = 0; i < nseen; i++) {
    table[i].len = sizeof table[i].val;
    getsockopt(table[i].fd, table[i].level, table[i].name, table[i].val, &table[i].len);
  }
}
static void seti(int fd, int level, int name, int v, const char *what) { setopt(fd, level, name, &v, sizeof v, what); }

static void check_table(void) {
  for (int i = 0; i < nseen; i++) {
    struct seen *s = &table[i];
    unsigned char now[64];
    socklen_t len = sizeof now;
    int r = getsockopt(s->fd, s->level, s->name, now, &len);
    CHECK(r == 0 && len == s->len && memcmp(now, s->val, len) == 0, "fd %d: %s differs after restore (was %d, now %d)",
          s->fd, s->what, *(int *)s->val, *(int *)now);
  }
}

static struct sockaddr_in lo4(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  return a;
}

/* A connected TCP pair within the process. */
static void tcp_pair(int *c, int *s) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = lo4(0);
  socklen_t len = sizeof a;
  SETUP(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 1) == 0, "pair listen");
  getsockname(l, (struct sockaddr *)&a, &len);
  *c = socket(AF_INET, SOCK_STREAM, 0);
  SETUP(connect(*c, (struct sockaddr *)&a, sizeof a) == 0, "pair connect");
  *s = accept(l, NULL, NULL);
  SETUP(*s >= 0, "pair accept");
  close(l);
}

static int ebpf_mode(void) {
  struct bpf_insn prog[] = {
    {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
    {.code = BPF_JMP | BPF_EXIT},
  };
  char license[] = "GPL";
  union bpf_attr attr = {0};
  attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  attr.insns = (unsigned long)prog;
  attr.insn_cnt = 2;
  attr.license = (unsigned long)license;
  int pfd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  SETUP(pfd >= 0, "BPF_PROG_LOAD");
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  SETUP(setsockopt(u, SOL_SOCKET, SO_ATTACH_BPF, &pfd, sizeof pfd) == 0, "SO_ATTACH_BPF");
  close(pfd);
  say("READY pid=%d\n", getpid());
  for (;;) pause();
  return 0;
}

static int oob_mode(void) {
  int sv[2];
  SETUP(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
  SETUP(send(sv[0], "abc", 3, 0) == 3 && send(sv[0], "X", 1, MSG_OOB) == 1 && send(sv[0], "def", 3, 0) == 3, "send with MSG_OOB");
  say("READY pid=%d\n", getpid());
  while (!go) pause();
  char b[16] = {0}, c = 0;
  CHECK(recv(sv[1], b, sizeof b, MSG_DONTWAIT) == 3 && !memcmp(b, "abc", 3), "the bytes before the mark: %.*s", 8, b);
  CHECK(recv(sv[1], &c, 1, MSG_OOB | MSG_DONTWAIT) == 1 && c == 'X', "no out-of-band byte (%s)", strerror(errno));
  CHECK(recv(sv[1], b, sizeof b, MSG_DONTWAIT) == 3 && !memcmp(b, "def", 3), "the bytes after the mark: %.*s", 8, b);
  if (fail[0]) say("CHECK FAIL: %s\n", fail);
  else say("CHECK PASS\n");
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGUSR1, on_usr1);
  signal(SIGPIPE, SIG_IGN);
  if (argc > 1 && !strcmp(argv[1], "ebpf")) return ebpf_mode();
  if (argc > 1 && !strcmp(argv[1], "unix-oob")) return oob_mode();

  /* A listener on an address this machine does not have: bind() accepts it only with IP_FREEBIND set first. */
  int l = socket(AF_INET, SOCK_STREAM, 0);
  seti(l, IPPROTO_IP, IP_FREEBIND, 1, "IP_FREEBIND");
  seti(l, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
  struct sockaddr_in far = {.sin_family = AF_INET, .sin_addr.s_addr = inet_addr("192.0.2.7")};
  SETUP(bind(l, (struct sockaddr *)&far, sizeof far) == 0, "bind 192.0.2.7");
  struct linger lg = {.l_onoff = 1, .l_linger = 7};
  setopt(l, SOL_SOCKET, SO_LINGER, &lg, sizeof lg, "SO_LINGER");
  seti(l, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
  seti(l, IPPROTO_TCP, TCP_MAXSEG, 1200, "TCP_MAXSEG");
  seti(l, IPPROTO_TCP, TCP_DEFER_ACCEPT, 5, "TCP_DEFER_ACCEPT");
  seti(l, IPPROTO_TCP, TCP_FASTOPEN, 5, "TCP_FASTOPEN");
  seti(l, IPPROTO_TCP, TCP_WINDOW_CLAMP, 40000, "TCP_WINDOW_CLAMP");
  seti(l, IPPROTO_TCP, TCP_QUICKACK, 0, "TCP_QUICKACK");
  seti(l, IPPROTO_TCP, TCP_NOTSENT_LOWAT, 12345, "TCP_NOTSENT_LOWAT");
  seti(l, IPPROTO_TCP, TCP_USER_TIMEOUT, 4321, "TCP_USER_TIMEOUT");
  seti(l, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
  seti(l, IPPROTO_TCP, TCP_KEEPIDLE, 77, "TCP_KEEPIDLE");
  seti(l, IPPROTO_TCP, TCP_KEEPINTVL, 11, "TCP_KEEPINTVL");
  seti(l, IPPROTO_TCP, TCP_KEEPCNT, 4, "TCP_KEEPCNT");
  seti(l, SOL_SOCKET, SO_OOBINLINE, 1, "SO_OOBINLINE");
  seti(l, SOL_SOCKET, SO_PRIORITY, 5, "SO_PRIORITY");
  seti(l, SOL_SOCKET, SO_MARK, 0x1234, "SO_MARK");
  seti(l, SOL_SOCKET, SO_RCVLOWAT, 9, "SO_RCVLOWAT");
  seti(l, IPPROTO_IP, IP_TOS, 0x10, "IP_TOS");
  seti(l, IPPROTO_IP, IP_TTL, 33, "IP_TTL");
  char cc[16] = {0};
  socklen_t cclen = sizeof cc;
  getsockopt(l, IPPROTO_TCP, TCP_CONGESTION, cc, &cclen);
  const char *other = strcmp(cc, "reno") ? "reno" : "cubic";
  setopt(l, IPPROTO_TCP, TCP_CONGESTION, other, strlen(other), "TCP_CONGESTION");
  struct timeval tv = {.tv_sec = 3, .tv_usec = 250000};
  setopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv, "SO_RCVTIMEO");
  SETUP(listen(l, 3) == 0, "listen");

  /* UDP with a device binding, a filter that drops everything, locked; and receive options. */
  int u = socket(AF_INET, SOCK_DGRAM, 0);
  setopt(u, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3, "SO_BINDTODEVICE");
  struct sockaddr_in ua = lo4(0);
  socklen_t ualen = sizeof ua;
  SETUP(bind(u, (struct sockaddr *)&ua, sizeof ua) == 0, "bind udp");
  getsockname(u, (struct sockaddr *)&ua, &ualen);
  seti(u, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
  seti(u, IPPROTO_IP, IP_RECVERR, 1, "IP_RECVERR");
  seti(u, SOL_SOCKET, SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS");
  seti(u, SOL_SOCKET, SO_SNDBUF, 30000, "SO_SNDBUF");
  seti(u, SOL_SOCKET, SO_BUF_LOCK, 2, "SO_BUF_LOCK");
  struct sock_filter drop[] = {BPF_STMT(BPF_RET | BPF_K, 0)};
  struct sock_fprog fp = {.len = 1, .filter = drop};
  SETUP(setsockopt(u, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp) == 0, "SO_ATTACH_FILTER");
  seti(u, SOL_SOCKET, SO_LOCK_FILTER, 1, "SO_LOCK_FILTER");

  /* IPv6 UDP. */
  int u6 = socket(AF_INET6, SOCK_DGRAM, 0);
  seti(u6, IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
  seti(u6, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
  seti(u6, IPPROTO_IPV6, IPV6_TCLASS, 0x20, "IPV6_TCLASS");
  seti(u6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9, "IPV6_UNICAST_HOPS");
  struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
  SETUP(bind(u6, (struct sockaddr *)&a6, sizeof a6) == 0, "bind udp6");

  /* A TCP connection with options on each end; the server end shut down for reading. */
  int tc, ts;
  tcp_pair(&tc, &ts);
  seti(tc, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY (conn)");
  seti(ts, IPPROTO_TCP, TCP_CORK, 1, "TCP_CORK (conn)");
  setopt(ts, SOL_SOCKET, SO_LINGER, &lg, sizeof lg, "SO_LINGER (conn)");
  seti(tc, IPPROTO_TCP, TCP_USER_TIMEOUT, 5000, "TCP_USER_TIMEOUT (conn)");
  seti(tc, SOL_SOCKET, SO_PRIORITY, 3, "SO_PRIORITY (conn)");
  SETUP(shutdown(ts, SHUT_RD) == 0, "shutdown ts");

  /* UDP shut down for reading, and a connected UDP socket shut down for writing. */
  int ur = socket(AF_INET, SOCK_DGRAM, 0), uw = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in any = lo4(0);
  SETUP(bind(ur, (struct sockaddr *)&any, sizeof any) == 0, "bind ur");
  shutdown(ur, SHUT_RD); /* ENOTCONN, but the socket stops reading */
  SETUP(connect(uw, (struct sockaddr *)&ua, sizeof ua) == 0, "connect uw");
  SETUP(shutdown(uw, SHUT_WR) == 0, "shutdown uw");

  /* Unix stream pair with data both ways; a shut its writing side. Datagram pair, d shut for reading. */
  int sp[2], dp[2];
  SETUP(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0 && socketpair(AF_UNIX, SOCK_DGRAM, 0, dp) == 0, "socketpair");
  /* Credentials would ride on queued messages (refused for now): the options that ask for them go on a quiet pair. */
  int xp[2];
  SETUP(socketpair(AF_UNIX, SOCK_STREAM, 0, xp) == 0, "socketpair xp");
  seti(xp[0], SOL_SOCKET, SO_PASSCRED, 1, "SO_PASSCRED (unix)");
  seti(xp[1], SOL_SOCKET, SO_PASSSEC, 1, "SO_PASSSEC (unix)");
  setopt(sp[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv, "SO_SNDTIMEO (unix)");
  seti(sp[1], SOL_SOCKET, SO_PRIORITY, 4, "SO_PRIORITY (unix)");
  seti(sp[1], SOL_SOCKET, SO_PEEK_OFF, 0, "SO_PEEK_OFF (unix)");
  seti(dp[0], SOL_SOCKET, SO_RCVBUF, 50000, "SO_RCVBUF (unix)");
  seti(dp[0], SOL_SOCKET, SO_BUF_LOCK, 0, "SO_BUF_LOCK (unix)");
  SETUP(setsockopt(dp[1], SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof fp) == 0, "SO_ATTACH_FILTER (unix)");
  SETUP(write(sp[0], "to-b", 4) == 4 && write(sp[1], "to-a", 4) == 4, "unix writes");
  SETUP(shutdown(sp[0], SHUT_WR) == 0, "shutdown sp[0]");
  SETUP(send(dp[1], "dg", 2, 0) == 2, "dgram send");
  SETUP(shutdown(dp[0], SHUT_RD) == 0, "shutdown dp[0]");

  /* TCP in state CLOSE: bound, never connected; and never bound. */
  int tb = socket(AF_INET, SOCK_STREAM, 0), tn = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in tba = lo4(0), now;
  socklen_t tblen = sizeof tba;
  SETUP(bind(tb, (struct sockaddr *)&tba, sizeof tba) == 0, "bind tb");
  getsockname(tb, (struct sockaddr *)&tba, &tblen);
  seti(tn, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY (unbound)");

  snapshot();
  say("READY pid=%d\n", getpid());
  for (;;) {
    while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
    go = 0;
    fail[0] = 0;
    check_table();
    char b[16];
    /* The filter still drops every datagram sent to u, and cannot be replaced (locked). */
    CHECK(sendto(u, "x", 1, 0, (struct sockaddr *)&ua, sizeof ua) == 1, "udp send to self: %s", strerror(errno));
    usleep(20000);
    CHECK(recv(u, b, sizeof b, MSG_DONTWAIT) < 0 && errno == EAGAIN, "u: the drop-all filter let a datagram through");
    int zero = 0;
    CHECK(setsockopt(u, SOL_SOCKET, SO_DETACH_FILTER, &zero, sizeof zero) < 0 && errno == EPERM, "u: the filter is not locked any more");
    socklen_t flen = 0;
    CHECK(getsockopt(u, SOL_SOCKET, SO_GET_FILTER, NULL, &flen) == 0 && flen == 1, "u: SO_GET_FILTER gives %u instructions", flen);
    flen = 0;
    CHECK(getsockopt(dp[1], SOL_SOCKET, SO_GET_FILTER, NULL, &flen) == 0 && flen == 1, "unix: SO_GET_FILTER gives %u instructions", flen);
    /* Shut for reading: reads give end of file at once. */
    CHECK(recv(ts, b, sizeof b, MSG_DONTWAIT) == 0, "ts: SHUT_RD lost (recv %s)", strerror(errno));
    struct pollfd pr = {.fd = ur, .events = POLLIN | POLLRDHUP};
    CHECK(poll(&pr, 1, 0) == 1 && (pr.revents & POLLRDHUP), "ur: SHUT_RD lost (poll shows no POLLRDHUP)");
    CHECK(recv(ur, b, sizeof b, 0) == 0, "ur: SHUT_RD lost (a blocking recv does not return 0)");
    CHECK(send(uw, "x", 1, 0) < 0 && errno == EPIPE, "uw: SHUT_WR lost");
    /* Stream pair: b reads the bytes, then end of file; a cannot write; b still can. */
    CHECK(read(sp[1], b, sizeof b) == 4 && !memcmp(b, "to-b", 4), "unix: b lost its bytes");
    CHECK(recv(sp[1], b, sizeof b, MSG_DONTWAIT) == 0, "unix: b does not see a's SHUT_WR");
    CHECK(send(sp[0], "x", 1, MSG_DONTWAIT) < 0 && errno == EPIPE, "unix: a can write after SHUT_WR");
    CHECK(recv(sp[0], b, sizeof b, MSG_DONTWAIT) == 4 && !memcmp(b, "to-a", 4), "unix: a lost its bytes");
    CHECK(send(sp[1], "y", 1, MSG_DONTWAIT) == 1 && recv(sp[0], b, 1, MSG_DONTWAIT) == 1, "unix: b cannot write to a");
    /* Datagram pair: d keeps its datagram but takes no more. */
    CHECK(send(dp[1], "z", 1, MSG_DONTWAIT) < 0, "unix dgram: SHUT_RD lost (a send went through)");
    CHECK(recv(dp[0], b, sizeof b, MSG_DONTWAIT) == 2, "unix dgram: the queued datagram is gone");
    /* The closed sockets: tb keeps its port and can listen on it; tn is unbound and can connect. */
    tblen = sizeof now;
    CHECK(getsockname(tb, (struct sockaddr *)&now, &tblen) == 0 && now.sin_port == tba.sin_port, "tb: lost its port");
    CHECK(listen(tb, 1) == 0, "tb: listen: %s", strerror(errno));
    tblen = sizeof now;
    CHECK(getsockname(tn, (struct sockaddr *)&now, &tblen) == 0 && now.sin_port == 0, "tn: bound after restore");
    CHECK(connect(tn, (struct sockaddr *)&tba, sizeof tba) == 0, "tn: connect: %s", strerror(errno));
    if (fail[0]) say("CHECK FAIL: %s\n", fail);
    else say("CHECK PASS\n");
  }
}
