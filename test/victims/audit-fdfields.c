/* The fd contract, probed (docs/saved-state.md, "fd contract (complete list)"): fields
 * the kernel shows about fds that real servers set, each set before the dump and
 * checked by the victim itself after restore (SIGUSR1): UDP GSO/GRO and cork, the
 * original-destination and RFC 2292 IPv6 receive options, IPv6 flow info and source
 * address preferences, SO_INCOMING_CPU on a listener, TCP_RTO_MAX_MS, the owner of a
 * socket inode (fstat), epoll busy-poll parameters (EPIOCSPARAMS), the write-life hint
 * of a deleted file (F_SET_RW_HINT); and, already in the option table, the listener and
 * UDP options the brief names (TCP_FASTOPEN, TCP_DEFER_ACCEPT, SO_PRIORITY, SO_BUSY_POLL,
 * SO_RCVBUFFORCE, SO_ZEROCOPY, TCP_INQ, IP_PKTINFO, IP_RECVTOS), a pty slave given to
 * another user (grantpt, sshd), an absolute CLOCK_MONOTONIC timerfd.
 * Prints READY, PASS/FAIL lines, DONE. */
#include "victim.h"
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/mman.h>
#include <sys/timerfd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#ifndef UDP_NO_CHECK6_TX
#define UDP_NO_CHECK6_TX 101
#define UDP_NO_CHECK6_RX 102
#endif
#ifndef IP_RECVORIGDSTADDR
#define IP_RECVORIGDSTADDR 20
#endif
#ifndef IPV6_FLOWINFO
#define IPV6_FLOWINFO 11
#endif
#ifndef IPV6_FLOWINFO_SEND
#define IPV6_FLOWINFO_SEND 33
#endif
#ifndef IPV6_ADDR_PREFERENCES
#define IPV6_ADDR_PREFERENCES 72
#endif
#ifndef IPV6_PREFER_SRC_PUBLIC
#define IPV6_PREFER_SRC_PUBLIC 0x0002
#endif
#ifndef TCP_RTO_MAX_MS
#define TCP_RTO_MAX_MS 44
#endif
#ifndef SO_INCOMING_CPU
#define SO_INCOMING_CPU 49
#endif
#ifndef F_SET_RW_HINT
#define F_GET_RW_HINT 1035
#define F_SET_RW_HINT 1036
#endif
#ifndef RWH_WRITE_LIFE_EXTREME
#define RWH_WRITE_LIFE_EXTREME 5
#endif
struct ep_params {
  uint32_t busy_poll_usecs;
  uint16_t busy_poll_budget;
  uint8_t prefer_busy_poll;
  uint8_t pad;
};
#define EPIOCSPARAMS _IOW(0x8A, 0x01, struct ep_params)
#define EPIOCGPARAMS _IOR(0x8A, 0x02, struct ep_params)

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static void fatal(const char *what) {
  say("FAIL setup: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void seti(int fd, int level, int name, int v, const char *what) {
  if (setsockopt(fd, level, name, &v, sizeof v) < 0) fatal(what);
}

static int geti(int fd, int level, int name) {
  int v = -12345;
  socklen_t l = sizeof v;
  if (getsockopt(fd, level, name, &v, &l) < 0) return -errno;
  return v;
}

/* One int option: the value after restore. */
static void check_int(const char *what, int fd, int level, int name, int want) {
  int v = geti(fd, level, name);
  verdict(what, v == want, "value %d, want %d", v, want);
}

int main(void) {
  signal(SIGUSR1, on_usr1);

  int u4 = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (u4 < 0 || bind(u4, (struct sockaddr *)&a4, sizeof a4) < 0) fatal("udp4");
  seti(u4, SOL_UDP, UDP_SEGMENT, 1200, "UDP_SEGMENT");
  seti(u4, SOL_UDP, UDP_GRO, 1, "UDP_GRO");
  seti(u4, IPPROTO_IP, IP_RECVORIGDSTADDR, 1, "IP_RECVORIGDSTADDR");
  int corked = socket(AF_INET, SOCK_DGRAM, 0);
  seti(corked, SOL_UDP, UDP_CORK, 1, "UDP_CORK");

  int u6 = socket(AF_INET6, SOCK_DGRAM, 0);
  if (u6 < 0) fatal("udp6");
  seti(u6, SOL_UDP, UDP_NO_CHECK6_TX, 1, "UDP_NO_CHECK6_TX");
  seti(u6, SOL_UDP, UDP_NO_CHECK6_RX, 1, "UDP_NO_CHECK6_RX");
  seti(u6, IPPROTO_IPV6, IPV6_2292PKTINFO, 1, "IPV6_2292PKTINFO");
  seti(u6, IPPROTO_IPV6, IPV6_2292HOPLIMIT, 1, "IPV6_2292HOPLIMIT");
  seti(u6, IPPROTO_IPV6, IPV6_FLOWINFO, 1, "IPV6_FLOWINFO");
  seti(u6, IPPROTO_IPV6, IPV6_FLOWINFO_SEND, 1, "IPV6_FLOWINFO_SEND");
  seti(u6, IPPROTO_IPV6, IPV6_ADDR_PREFERENCES, IPV6_PREFER_SRC_PUBLIC, "IPV6_ADDR_PREFERENCES");
  int prefs_before = geti(u6, IPPROTO_IPV6, IPV6_ADDR_PREFERENCES);
  /* A sticky destination options header (one PadN option), sent with every datagram. */
  unsigned char dstopts[8] = {0, 0, 1, 4, 0, 0, 0, 0};
  if (setsockopt(u6, IPPROTO_IPV6, IPV6_DSTOPTS, dstopts, sizeof dstopts) < 0) fatal("IPV6_DSTOPTS");

  int l4 = socket(AF_INET, SOCK_STREAM, 0);
  seti(l4, SOL_SOCKET, SO_INCOMING_CPU, 1, "SO_INCOMING_CPU");
  int rto_max = setsockopt(l4, IPPROTO_TCP, TCP_RTO_MAX_MS, &(int){30000}, sizeof(int)) == 0;
  if (bind(l4, (struct sockaddr *)&a4, sizeof a4) < 0 || listen(l4, 8) < 0) fatal("listen");

  /* A socket made while the fsuid was another user's: its inode (fstat) is that user's. */
  setfsuid(65534);
  int owned = socket(AF_INET, SOCK_DGRAM, 0);
  int owned_unix = socket(AF_UNIX, SOCK_DGRAM, 0);
  setfsuid(0);
  struct stat st;
  if (owned < 0 || owned_unix < 0 || fstat(owned, &st) < 0 || st.st_uid != 65534) fatal("owned socket");

  int ep = epoll_create1(0);
  struct ep_params pa = {.busy_poll_usecs = 25, .busy_poll_budget = 16, .prefer_busy_poll = 1};
  int ep_params = ioctl(ep, EPIOCSPARAMS, &pa) == 0;

  int del = open("rw-hint", O_CREAT | O_RDWR, 0600);
  uint64_t hint = RWH_WRITE_LIFE_EXTREME;
  if (del < 0 || write(del, "x", 1) != 1 || unlink("rw-hint") < 0) fatal("deleted file");
  int rw_hint = fcntl(del, F_SET_RW_HINT, &hint) == 0;

  /* Options already in the table, as servers set them on a listener and a UDP socket. */
  int l2 = socket(AF_INET, SOCK_STREAM, 0);
  seti(l2, IPPROTO_TCP, TCP_FASTOPEN, 16, "TCP_FASTOPEN");
  seti(l2, IPPROTO_TCP, TCP_DEFER_ACCEPT, 5, "TCP_DEFER_ACCEPT");
  seti(l2, SOL_SOCKET, SO_PRIORITY, 3, "SO_PRIORITY");
  seti(l2, SOL_SOCKET, SO_BUSY_POLL, 50, "SO_BUSY_POLL");
  seti(l2, SOL_SOCKET, SO_ZEROCOPY, 1, "SO_ZEROCOPY");
  seti(l2, IPPROTO_TCP, TCP_INQ, 1, "TCP_INQ");
  if (bind(l2, (struct sockaddr *)&a4, sizeof a4) < 0 || listen(l2, 8) < 0) fatal("listen 2");
  int defer_before = geti(l2, IPPROTO_TCP, TCP_DEFER_ACCEPT);
  int ud = socket(AF_INET, SOCK_DGRAM, 0);
  seti(ud, SOL_SOCKET, SO_RCVBUFFORCE, 1 << 20, "SO_RCVBUFFORCE");
  seti(ud, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
  seti(ud, IPPROTO_IP, IP_RECVTOS, 1, "IP_RECVTOS");
  int rcvbuf_before = geti(ud, SOL_SOCKET, SO_RCVBUF);

  /* A pty slave given to another user and group, mode 0620, as sshd does for a login. */
  int ptm = posix_openpt(O_RDWR | O_NOCTTY);
  char pts[64] = {0};
  if (ptm < 0 || grantpt(ptm) < 0 || unlockpt(ptm) < 0 || ptsname_r(ptm, pts, sizeof pts) != 0) fatal("pty");
  if (chown(pts, 65534, 5) < 0 || chmod(pts, 0620) < 0) fatal("chown pts");

  /* An absolute CLOCK_MONOTONIC timerfd (fdinfo shows its settime flags). */
  int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
  struct itimerspec its = {0};
  clock_gettime(CLOCK_MONOTONIC, &its.it_value);
  its.it_value.tv_sec += 3600;
  if (tfd < 0 || timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) fatal("timerfd");
  char settime_before[128];
  fdinfo_line(tfd, "settime flags:", settime_before, sizeof settime_before);

  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000);

  check_int("udp-segment", u4, SOL_UDP, UDP_SEGMENT, 1200);
  check_int("udp-gro", u4, SOL_UDP, UDP_GRO, 1);
  check_int("ip-recvorigdstaddr", u4, IPPROTO_IP, IP_RECVORIGDSTADDR, 1);
  check_int("udp-cork", corked, SOL_UDP, UDP_CORK, 1);
  check_int("udp-no-check6-tx", u6, SOL_UDP, UDP_NO_CHECK6_TX, 1);
  check_int("udp-no-check6-rx", u6, SOL_UDP, UDP_NO_CHECK6_RX, 1);
  check_int("ipv6-2292pktinfo", u6, IPPROTO_IPV6, IPV6_2292PKTINFO, 1);
  check_int("ipv6-2292hoplimit", u6, IPPROTO_IPV6, IPV6_2292HOPLIMIT, 1);
  check_int("ipv6-flowinfo", u6, IPPROTO_IPV6, IPV6_FLOWINFO, 1);
  check_int("ipv6-flowinfo-send", u6, IPPROTO_IPV6, IPV6_FLOWINFO_SEND, 1);
  check_int("ipv6-addr-preferences", u6, IPPROTO_IPV6, IPV6_ADDR_PREFERENCES, prefs_before);
  unsigned char got[64] = {0};
  socklen_t gl = sizeof got;
  int gr = getsockopt(u6, IPPROTO_IPV6, IPV6_DSTOPTS, got, &gl);
  verdict("ipv6-dstopts", gr == 0 && gl == sizeof dstopts && memcmp(got, dstopts, gl) == 0, "getsockopt %d, %u bytes", gr, gl);
  check_int("so-incoming-cpu", l4, SOL_SOCKET, SO_INCOMING_CPU, 1);
  if (rto_max) check_int("tcp-rto-max", l4, IPPROTO_TCP, TCP_RTO_MAX_MS, 30000);
  else say("PASS tcp-rto-max\n");
  int u1 = fstat(owned, &st) == 0 ? (int)st.st_uid : -1;
  int u2 = fstat(owned_unix, &st) == 0 ? (int)st.st_uid : -1;
  verdict("socket-owner", u1 == 65534 && u2 == 65534, "socket inode owners %d %d, want 65534", u1, u2);
  if (ep_params) {
    struct ep_params got = {0};
    int r = ioctl(ep, EPIOCGPARAMS, &got);
    verdict("epoll-busy-poll", r == 0 && got.busy_poll_usecs == 25 && got.busy_poll_budget == 16 && got.prefer_busy_poll == 1,
            "usecs %u budget %u prefer %u", got.busy_poll_usecs, got.busy_poll_budget, got.prefer_busy_poll);
  } else {
    say("PASS epoll-busy-poll\n");
  }
  if (rw_hint) {
    uint64_t h = 0;
    fcntl(del, F_GET_RW_HINT, &h);
    verdict("deleted-rw-hint", h == RWH_WRITE_LIFE_EXTREME, "hint %llu", (unsigned long long)h);
  } else {
    say("PASS deleted-rw-hint\n");
  }
  check_int("tcp-fastopen", l2, IPPROTO_TCP, TCP_FASTOPEN, 16);
  check_int("tcp-defer-accept", l2, IPPROTO_TCP, TCP_DEFER_ACCEPT, defer_before);
  check_int("so-priority", l2, SOL_SOCKET, SO_PRIORITY, 3);
  check_int("so-busy-poll", l2, SOL_SOCKET, SO_BUSY_POLL, 50);
  check_int("so-zerocopy", l2, SOL_SOCKET, SO_ZEROCOPY, 1);
  check_int("tcp-inq", l2, IPPROTO_TCP, TCP_INQ, 1);
  check_int("so-rcvbufforce", ud, SOL_SOCKET, SO_RCVBUF, rcvbuf_before);
  check_int("ip-pktinfo", ud, IPPROTO_IP, IP_PKTINFO, 1);
  check_int("ip-recvtos", ud, IPPROTO_IP, IP_RECVTOS, 1);
  int pst = stat(pts, &st);
  verdict("pty-slave-owner", pst == 0 && st.st_uid == 65534 && st.st_gid == 5 && (st.st_mode & 07777) == 0620, "%s: owner %d:%d mode %o",
          pts, (int)st.st_uid, (int)st.st_gid, st.st_mode & 07777);
  char settime_after[128];
  fdinfo_line(tfd, "settime flags:", settime_after, sizeof settime_after);
  struct itimerspec left;
  timerfd_gettime(tfd, &left);
  verdict("timerfd-abs-monotonic", strcmp(settime_before, settime_after) == 0 && left.it_value.tv_sec > 3000,
          "[%s] vs [%s], left %ld", settime_after, settime_before, (long)left.it_value.tv_sec);
  say("DONE\n");
  return 0;
}
