/* Multicast memberships of UDP sockets. m1 (IPv4, IP_MULTICAST_ALL off) joined
 * 239.1.2.3 on lo (any source), 232.1.1.1 from source 192.0.2.77 only (INCLUDE), and
 * 239.4.4.4 with source 10.9.9.9 blocked (EXCLUDE); m6 (IPv6) joined ff15::1234 on lo.
 * On SIGUSR1 it reads each membership back with MCAST_MSFILTER (mode and sources), checks
 * no other group was joined, and sends a datagram to 239.1.2.3 on lo that m1 must
 * receive (it only can while the group is joined), and another from a socket whose
 * IP_MULTICAST_IF was set by interface index only (ip_mreqn). Prints "CHECK PASS" or "CHECK FAIL: why". */
#include "victim.h"
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#ifndef IP_MULTICAST_ALL
#define IP_MULTICAST_ALL 49
#endif

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }
static char fail[1024];
#define CHECK(c, ...) do { if (!(c) && !fail[0]) snprintf(fail, sizeof fail, __VA_ARGS__); } while (0)

static int m1, m6, snd, snd2, lo, port;

/* The filter of `group` on lo: mode, number of sources and the first source; -1 if not joined. */
static int filter_of(int fd, int family, const char *group, int *nsrc, char *first) {
  static char buf[GROUP_FILTER_SIZE(4)];
  struct group_filter *gf = (void *)buf;
  memset(buf, 0, sizeof buf);
  gf->gf_interface = lo;
  gf->gf_numsrc = 4;
  if (family == AF_INET) {
    struct sockaddr_in *g = (void *)&gf->gf_group;
    g->sin_family = AF_INET;
    inet_pton(AF_INET, group, &g->sin_addr);
  } else {
    struct sockaddr_in6 *g = (void *)&gf->gf_group;
    g->sin6_family = AF_INET6;
    inet_pton(AF_INET6, group, &g->sin6_addr);
  }
  socklen_t len = sizeof buf;
  if (getsockopt(fd, family == AF_INET ? IPPROTO_IP : IPPROTO_IPV6, MCAST_MSFILTER, gf, &len)) return -1;
  *nsrc = gf->gf_numsrc;
  first[0] = 0;
  if (gf->gf_numsrc > 0 && family == AF_INET) inet_ntop(AF_INET, &((struct sockaddr_in *)&gf->gf_slist[0])->sin_addr, first, 64);
  return gf->gf_fmode;
}

static void expect(int fd, int family, const char *group, int mode, int nsrc, const char *src) {
  int n = -1;
  char first[64] = "";
  int m = filter_of(fd, family, group, &n, first);
  CHECK(m == mode, "%s: mode %d, not %d (-1: not joined)", group, m, mode);
  CHECK(m < 0 || n == nsrc, "%s: %d sources, not %d", group, n, nsrc);
  CHECK(m < 0 || !src || strcmp(first, src) == 0, "%s: source %s, not %s", group, first, src);
}

static int join4(const char *group) {
  struct ip_mreqn r = {.imr_ifindex = lo};
  inet_pton(AF_INET, group, &r.imr_multiaddr);
  return setsockopt(m1, IPPROTO_IP, IP_ADD_MEMBERSHIP, &r, sizeof r);
}

static int source4(int opt, const char *group, const char *source) {
  struct ip_mreq_source r;
  memset(&r, 0, sizeof r);
  inet_pton(AF_INET, group, &r.imr_multiaddr);
  inet_pton(AF_INET, source, &r.imr_sourceaddr);
  inet_pton(AF_INET, "127.0.0.1", &r.imr_interface);
  return setsockopt(m1, IPPROTO_IP, opt, &r, sizeof r);
}

int main(void) {
  signal(SIGUSR1, on_usr1);
  lo = if_nametoindex("lo");
  int zero = 0;
  m1 = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in any = {.sin_family = AF_INET};
  if (bind(m1, (struct sockaddr *)&any, sizeof any)) { say("SETUP FAIL bind %s\n", strerror(errno)); return 1; }
  socklen_t alen = sizeof any;
  getsockname(m1, (struct sockaddr *)&any, &alen);
  port = ntohs(any.sin_port);
  setsockopt(m1, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
  if (join4("239.1.2.3") || source4(IP_ADD_SOURCE_MEMBERSHIP, "232.1.1.1", "192.0.2.77") || join4("239.4.4.4") ||
      source4(IP_BLOCK_SOURCE, "239.4.4.4", "10.9.9.9")) { say("SETUP FAIL join %s\n", strerror(errno)); return 1; }
  m6 = socket(AF_INET6, SOCK_DGRAM, 0);
  struct ipv6_mreq r6 = {.ipv6mr_interface = lo};
  inet_pton(AF_INET6, "ff15::1234", &r6.ipv6mr_multiaddr);
  if (setsockopt(m6, IPPROTO_IPV6, IPV6_JOIN_GROUP, &r6, sizeof r6)) { say("SETUP FAIL join6 %s\n", strerror(errno)); return 1; }
  snd = socket(AF_INET, SOCK_DGRAM, 0);
  /* By address; snd2 (never bound) by index alone (ip_mreqn, address 0), which getsockopt
   * cannot show (it reads back 0.0.0.0, as unset): only the index sends it out on lo. */
  struct in_addr via;
  inet_pton(AF_INET, "127.0.0.1", &via);
  setsockopt(snd, IPPROTO_IP, IP_MULTICAST_IF, &via, sizeof via);
  snd2 = socket(AF_INET, SOCK_DGRAM, 0);
  struct ip_mreqn byindex = {.imr_ifindex = lo};
  if (setsockopt(snd2, IPPROTO_IP, IP_MULTICAST_IF, &byindex, sizeof byindex)) { say("SETUP FAIL mreqn %s\n", strerror(errno)); return 1; }
  say("READY pid=%d\n", getpid());
  for (;;) {
    while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
    go = 0;
    fail[0] = 0;
    expect(m1, AF_INET, "239.1.2.3", MCAST_EXCLUDE, 0, NULL);
    expect(m1, AF_INET, "232.1.1.1", MCAST_INCLUDE, 1, "192.0.2.77");
    expect(m1, AF_INET, "239.4.4.4", MCAST_EXCLUDE, 1, "10.9.9.9");
    expect(m1, AF_INET, "239.9.9.9", -1, 0, NULL);
    expect(m6, AF_INET6, "ff15::1234", MCAST_EXCLUDE, 0, NULL);
    expect(snd, AF_INET, "239.1.2.3", -1, 0, NULL);
    int all = -1;
    socklen_t len = sizeof all;
    getsockopt(m1, IPPROTO_IP, IP_MULTICAST_ALL, &all, &len);
    CHECK(all == 0, "m1: IP_MULTICAST_ALL %d", all);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "239.1.2.3", &to.sin_addr);
    CHECK(sendto(snd, "mc", 2, 0, (struct sockaddr *)&to, sizeof to) == 2, "send: %s", strerror(errno));
    struct pollfd p = {.fd = m1, .events = POLLIN};
    char b[8];
    CHECK(poll(&p, 1, 3000) == 1 && recv(m1, b, sizeof b, MSG_DONTWAIT) == 2, "m1: the datagram to 239.1.2.3 did not arrive");
    int sent2 = (int)sendto(snd2, "ix", 2, 0, (struct sockaddr *)&to, sizeof to);
    CHECK(sent2 == 2, "send from the socket whose interface was set by index: %s", strerror(errno));
    CHECK(sent2 == 2 && poll(&p, 1, 3000) == 1 && recv(m1, b, sizeof b, MSG_DONTWAIT) == 2 && !memcmp(b, "ix", 2),
          "m1: the datagram from the socket set by index did not arrive (it did not go out on lo)");
    if (fail[0]) say("CHECK FAIL: %s\n", fail);
    else say("CHECK PASS\n");
  }
}
