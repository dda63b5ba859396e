/* IP sockets other than TCP and UDP. Ping sockets: p4 bound to 127.0.0.1 with a chosen
 * echo id and IP_TTL 33, p6 connected to ::1. UDP-Lite: u1 bound to 127.0.0.1 with
 * UDPLITE_RECV_CSCOV 20, u2 connected to it with UDPLITE_SEND_CSCOV 20 (non-blocking),
 * u6 bound to ::1. Raw: r1 (ICMP, bound to 127.0.0.1) whose ICMP_FILTER lets only
 * timestamp requests through, r2 (protocol 253, IP_HDRINCL, connected to 127.0.0.1),
 * r6 (ICMPv6) whose filter lets only type 200 through, r6c (protocol 253) with
 * IPV6_CHECKSUM 2. On SIGUSR1 it checks names, peers and options, pings 127.0.0.1 and
 * ::1 (the reply reaches the ping socket only with its echo id), sends UDP-Lite
 * datagrams both ways, then sends an ICMP timestamp request and an ICMPv6 type 200
 * message that r1 and r6 must get first (the echo traffic before them must have been
 * filtered out). Prints "CHECK PASS" or "CHECK FAIL: why".
 * Mode "queued": a datagram left unread on u1 (the dump must refuse). */
#include "victim.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif
#define SOL_UDPLITE 136
#define UDPLITE_SEND_CSCOV 10
#define UDPLITE_RECV_CSCOV 11

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }
static char fail[1024];
#define CHECK(c, ...) do { if (!(c) && !fail[0]) snprintf(fail, sizeof fail, __VA_ARGS__); } while (0)

static int p4, p6, u1, u2, u6, r1, r2, r6, r6c;
static struct sockaddr_storage names[9], peer_p6, peer_u2, peer_r2;
static int *const socks[9] = {&p4, &p6, &u1, &u2, &u6, &r1, &r2, &r6, &r6c};
static const char *const labels[9] = {"p4", "p6", "u1", "u2", "u6", "r1", "r2", "r6", "r6c"};
static struct sockaddr_in lo4 = {.sin_family = AF_INET, .sin_addr.s_addr = 0x0100007f};
static struct sockaddr_in6 lo6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
static uint16_t echo_id;

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

static void peer_of(int fd, struct sockaddr_storage *ss) {
  socklen_t len = sizeof *ss;
  memset(ss, 0, sizeof *ss);
  getpeername(fd, (struct sockaddr *)ss, &len);
}

static int readable(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, 3000) == 1;
}

/* One echo request through ping socket fd (to `to`, or its peer); whether the reply came back. */
static int ping(int fd, int v6, const void *to, socklen_t tolen, int seq) {
  unsigned char b[64] = {0};
  b[0] = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
  b[7] = (unsigned char)seq;
  memcpy(b + 8, "ckpt", 4);
  if (sendto(fd, b, 16, 0, to, tolen) != 16) return 0;
  if (!readable(fd)) return 0;
  ssize_t n = recv(fd, b, sizeof b, MSG_DONTWAIT);
  return n == 16 && b[0] == (v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY) && b[7] == seq && memcmp(b + 8, "ckpt", 4) == 0;
}

static int lite_pair(void) {
  char b[16];
  if (send(u2, "lite", 4, 0) != 4 || !readable(u1)) return 0;
  struct sockaddr_storage from;
  socklen_t flen = sizeof from;
  if (recvfrom(u1, b, sizeof b, MSG_DONTWAIT, (struct sockaddr *)&from, &flen) != 4 || memcmp(b, "lite", 4)) return 0;
  if (sendto(u1, "back", 4, 0, (struct sockaddr *)&from, flen) != 4 || !readable(u2)) return 0;
  if (recv(u2, b, sizeof b, MSG_DONTWAIT) != 4 || memcmp(b, "back", 4)) return 0;
  struct sockaddr_storage me;
  name_of(u6, &me);
  if (sendto(u6, "six", 3, 0, (struct sockaddr *)&me, sizeof(struct sockaddr_in6)) != 3 || !readable(u6)) return 0;
  return recv(u6, b, sizeof b, MSG_DONTWAIT) == 3;
}

/* An ICMP timestamp request to 127.0.0.1 from r1: the first thing r1 then reads must be it (IP header first). */
static int raw4_filtered(void) {
  unsigned char b[256] = {ICMP_TIMESTAMP};
  if (sendto(r1, b, 20, 0, (struct sockaddr *)&lo4, sizeof lo4) != 20 || !readable(r1)) return 0;
  ssize_t n = recv(r1, b, sizeof b, MSG_DONTWAIT);
  int ihl = (b[0] & 15) * 4;
  return n >= ihl + 8 && b[ihl] == ICMP_TIMESTAMP;
}

static int raw6_filtered(void) {
  unsigned char b[256] = {200};
  if (sendto(r6, b, 8, 0, (struct sockaddr *)&lo6, sizeof lo6) != 8 || !readable(r6)) return 0;
  ssize_t n = recv(r6, b, sizeof b, MSG_DONTWAIT);
  return n == 8 && b[0] == 200;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  signal(SIGUSR1, on_usr1);
  int one = 1, ttl = 33, cov = 20, two = 2;
  echo_id = 0x4000 + getpid() % 0x3fff;

  p4 = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
  struct sockaddr_in a4 = lo4;
  a4.sin_port = htons(echo_id);
  if (p4 < 0 || bind(p4, (struct sockaddr *)&a4, sizeof a4)) { say("SETUP FAIL p4 %s\n", strerror(errno)); return 1; }
  setsockopt(p4, IPPROTO_IP, IP_TTL, &ttl, sizeof ttl);
  p6 = socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6);
  if (p6 < 0 || connect(p6, (struct sockaddr *)&lo6, sizeof lo6)) { say("SETUP FAIL p6 %s\n", strerror(errno)); return 1; }
  if (!ping(p4, 0, &lo4, sizeof lo4, 1) || !ping(p6, 1, NULL, 0, 1)) { say("SETUP FAIL ping\n"); return 1; }

  u1 = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
  if (u1 < 0 || bind(u1, (struct sockaddr *)&lo4, sizeof lo4)) { say("SETUP FAIL u1 %s\n", strerror(errno)); return 1; }
  setsockopt(u1, SOL_UDPLITE, UDPLITE_RECV_CSCOV, &cov, sizeof cov);
  struct sockaddr_storage n1;
  name_of(u1, &n1);
  u2 = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, IPPROTO_UDPLITE);
  setsockopt(u2, SOL_UDPLITE, UDPLITE_SEND_CSCOV, &cov, sizeof cov);
  if (connect(u2, (struct sockaddr *)&n1, sizeof(struct sockaddr_in))) { say("SETUP FAIL u2 %s\n", strerror(errno)); return 1; }
  u6 = socket(AF_INET6, SOCK_DGRAM, IPPROTO_UDPLITE);
  if (bind(u6, (struct sockaddr *)&lo6, sizeof lo6)) { say("SETUP FAIL u6 %s\n", strerror(errno)); return 1; }
  if (strcmp(mode, "queued") == 0) send(u2, "left", 4, 0);

  r1 = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
  struct icmp_filter f4 = {.data = ~(1u << ICMP_TIMESTAMP)};
  setsockopt(r1, SOL_RAW, ICMP_FILTER, &f4, sizeof f4);
  if (bind(r1, (struct sockaddr *)&lo4, sizeof lo4)) { say("SETUP FAIL r1 %s\n", strerror(errno)); return 1; }
  r2 = socket(AF_INET, SOCK_RAW, 253);
  setsockopt(r2, IPPROTO_IP, IP_HDRINCL, &one, sizeof one);
  if (connect(r2, (struct sockaddr *)&lo4, sizeof lo4)) { say("SETUP FAIL r2 %s\n", strerror(errno)); return 1; }
  r6 = socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
  struct icmp6_filter f6;
  ICMP6_FILTER_SETBLOCKALL(&f6);
  ICMP6_FILTER_SETPASS(200, &f6);
  setsockopt(r6, IPPROTO_ICMPV6, ICMP6_FILTER, &f6, sizeof f6);
  r6c = socket(AF_INET6, SOCK_RAW, 253);
  setsockopt(r6c, IPPROTO_IPV6, IPV6_CHECKSUM, &two, sizeof two);
  for (int i = 0; i < 9; i++) {
    if (*socks[i] < 0) { say("SETUP FAIL %s\n", labels[i]); return 1; }
    name_of(*socks[i], &names[i]);
  }
  peer_of(p6, &peer_p6);
  peer_of(u2, &peer_u2);
  peer_of(r2, &peer_r2);
  say("READY pid=%d\n", getpid());
  int seq = 1;
  for (;;) {
    while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
    go = 0;
    fail[0] = 0;
    for (int i = 0; i < 9; i++) {
      struct sockaddr_storage now;
      name_of(*socks[i], &now);
      CHECK(memcmp(&now, &names[i], sizeof now) == 0, "%s: getsockname changed", labels[i]);
    }
    struct sockaddr_storage p;
    peer_of(p6, &p);
    CHECK(memcmp(&p, &peer_p6, sizeof p) == 0, "p6: peer changed");
    peer_of(u2, &p);
    CHECK(memcmp(&p, &peer_u2, sizeof p) == 0, "u2: peer changed");
    peer_of(r2, &p);
    CHECK(memcmp(&p, &peer_r2, sizeof p) == 0, "r2: peer changed");
    CHECK(ntohs(((struct sockaddr_in *)&names[0])->sin_port) == echo_id, "p4: echo id %d, not %d", ntohs(((struct sockaddr_in *)&names[0])->sin_port), echo_id);
    CHECK(opt(p4, IPPROTO_IP, IP_TTL) == 33, "p4: IP_TTL %d", opt(p4, IPPROTO_IP, IP_TTL));
    CHECK(opt(u1, SOL_UDPLITE, UDPLITE_RECV_CSCOV) == 20, "u1: UDPLITE_RECV_CSCOV %d", opt(u1, SOL_UDPLITE, UDPLITE_RECV_CSCOV));
    CHECK(opt(u2, SOL_UDPLITE, UDPLITE_SEND_CSCOV) == 20, "u2: UDPLITE_SEND_CSCOV %d", opt(u2, SOL_UDPLITE, UDPLITE_SEND_CSCOV));
    CHECK(opt(u2, SOL_SOCKET, SO_PROTOCOL) == IPPROTO_UDPLITE, "u2: protocol %d", opt(u2, SOL_SOCKET, SO_PROTOCOL));
    CHECK(fcntl(u2, F_GETFL) & O_NONBLOCK, "u2: O_NONBLOCK lost");
    CHECK(opt(r2, IPPROTO_IP, IP_HDRINCL) == 1, "r2: IP_HDRINCL lost");
    CHECK(opt(r6c, IPPROTO_IPV6, IPV6_CHECKSUM) == 2, "r6c: IPV6_CHECKSUM %d", opt(r6c, IPPROTO_IPV6, IPV6_CHECKSUM));
    CHECK(opt(r2, SOL_SOCKET, SO_PROTOCOL) == 253 && opt(r1, SOL_SOCKET, SO_TYPE) == SOCK_RAW, "raw: protocol or type");
    seq++;
    CHECK(ping(p4, 0, &lo4, sizeof lo4, seq), "p4: no echo reply");
    CHECK(ping(p6, 1, NULL, 0, seq), "p6: no echo reply");
    CHECK(lite_pair(), "UDP-Lite: datagrams lost");
    CHECK(raw4_filtered(), "r1: ICMP_FILTER lost (echo traffic came first) or nothing arrived");
    CHECK(raw6_filtered(), "r6: ICMP6_FILTER lost (other ICMPv6 came first) or nothing arrived");
    if (fail[0]) say("CHECK FAIL: %s\n", fail);
    else say("CHECK PASS\n");
  }
}
