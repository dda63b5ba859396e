/* Netlink sockets: a NETLINK_ROUTE socket autobound (port id = pid) and subscribed to
 * RTMGRP_LINK and a group above 32, with NETLINK_EXT_ACK and a larger receive buffer;
 * an unbound NETLINK_GENERIC socket; a NETLINK_ROUTE socket bound to a chosen port id.
 * On SIGUSR1 it checks the port ids (getsockname), groups (NETLINK_LIST_MEMBERSHIPS),
 * options, does an RTM_GETLINK dump (lo must be in it), asks NETLINK_GENERIC for the
 * "nlctrl" family, and creates and removes a tap device, whose RTM_NEWLINK must reach
 * the subscribed socket. Prints "CHECK PASS" or "CHECK FAIL: why".
 * Mode "queued": leaves the answer to an RTM_GETLINK for lo unread; mode "dumping": the
 * answer to an RTM_GETLINK dump unread, the kernel in the middle of it (the dump must refuse both).
 * Mode "audit": also holds a NETLINK_AUDIT socket (saved: not the audit daemon's); mode "mptcp" an MPTCP socket, a family no
 * rule handles (the dump must refuse both, naming them). */
#include "victim.h"
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#define HIGH_GROUP 33 /* RTNLGRP_BRVLAN: a group nl_groups cannot carry */
#define CHOSEN_PORT (0x7ff00000u + (unsigned)getpid()) /* unique: victims of other tests run at once */

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }
static char fail[1024];
#define CHECK(c, ...) do { if (!(c) && !fail[0]) snprintf(fail, sizeof fail, __VA_ARGS__); } while (0)

static int route, gen, chosen, rcvbuf;
static unsigned seq = 100;

static struct sockaddr_nl name_of(int fd) {
  struct sockaddr_nl a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  getsockname(fd, (struct sockaddr *)&a, &len);
  return a;
}

static int opt(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  getsockopt(fd, level, name, &v, &len);
  return v;
}

static int member_of(int fd, unsigned group) {
  unsigned words[8] = {0};
  socklen_t len = sizeof words;
  if (getsockopt(fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, words, &len)) return 0;
  return group <= len * 8 && (words[(group - 1) / 32] >> ((group - 1) % 32)) & 1;
}

/* RTM_GETLINK: a dump of every link, or (one) the answer for lo only. */
static void send_getlink(int fd, int one) {
  struct { struct nlmsghdr h; struct ifinfomsg i; } req = {
    .h = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST | (one ? 0 : NLM_F_DUMP), .nlmsg_seq = ++seq},
    .i = {.ifi_family = AF_UNSPEC, .ifi_index = one},
  };
  send(fd, &req, sizeof req, 0);
}

/* Reads a whole RTM_GETLINK dump answer; whether interface 1 (lo) was in it. */
static int read_links(int fd) {
  static char buf[1 << 16];
  int lo = 0;
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return 0;
    for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return lo;
      if (h->nlmsg_type == NLMSG_ERROR) return 0;
      if (h->nlmsg_type == RTM_NEWLINK && h->nlmsg_seq == seq && ((struct ifinfomsg *)NLMSG_DATA(h))->ifi_index == 1) lo = 1;
    }
  }
}

/* Asks the generic netlink controller for family "nlctrl"; whether it answered with GENL_ID_CTRL. */
static int ask_nlctrl(int fd) {
  struct { struct nlmsghdr h; struct genlmsghdr g; struct nlattr a; char name[8]; } req = {
    .h = {.nlmsg_len = sizeof req, .nlmsg_type = GENL_ID_CTRL, .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = ++seq},
    .g = {.cmd = CTRL_CMD_GETFAMILY, .version = 1},
    .a = {.nla_len = NLA_HDRLEN + 7, .nla_type = CTRL_ATTR_FAMILY_NAME},
    .name = "nlctrl",
  };
  if (send(fd, &req, sizeof req, 0) != sizeof req) return 0;
  static char buf[8192];
  ssize_t n = recv(fd, buf, sizeof buf, 0);
  struct nlmsghdr *h = (void *)buf;
  return n > 0 && NLMSG_OK(h, n) && h->nlmsg_type == GENL_ID_CTRL && h->nlmsg_seq == seq;
}

/* Creates and removes tap device `name`; whether the subscribed socket heard of it (RTM_NEWLINK). */
static int link_event(const char *name) {
  int tun = open("/dev/net/tun", O_RDWR);
  if (tun < 0) return 0;
  struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  int made = ioctl(tun, TUNSETIFF, &ifr) == 0;
  close(tun);
  if (!made) return 0;
  static char buf[1 << 16];
  for (int tries = 0; tries < 300; tries++) {
    ssize_t n = recv(route, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) { usleep(10000); continue; }
    int heard = 0;
    for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type != RTM_NEWLINK) continue;
      struct ifinfomsg *i = NLMSG_DATA(h);
      int len = h->nlmsg_len - NLMSG_LENGTH(sizeof *i);
      for (struct rtattr *a = IFLA_RTA(i); RTA_OK(a, len); a = RTA_NEXT(a, len))
        if (a->rta_type == IFLA_IFNAME && strcmp(RTA_DATA(a), name) == 0) heard = 1;
    }
    if (heard) {
      usleep(50000); /* the RTM_DELLINK too: drained, so nothing is left queued */
      while (recv(route, buf, sizeof buf, MSG_DONTWAIT) > 0) {}
      return 1;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  signal(SIGUSR1, on_usr1);
  route = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  struct sockaddr_nl a = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
  if (bind(route, (struct sockaddr *)&a, sizeof a)) { say("SETUP FAIL bind %s\n", strerror(errno)); return 1; }
  int g = HIGH_GROUP, one = 1, big = 1 << 20;
  if (setsockopt(route, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof g)) { say("SETUP FAIL group %s\n", strerror(errno)); return 1; }
  setsockopt(route, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(route, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  rcvbuf = opt(route, SOL_SOCKET, SO_RCVBUF);
  send_getlink(route, 0);
  if (strcmp(mode, "dumping") != 0 && !read_links(route)) { say("SETUP FAIL getlink\n"); return 1; }
  if (strcmp(mode, "queued") == 0) send_getlink(route, 1);

  gen = socket(AF_NETLINK, SOCK_DGRAM, NETLINK_GENERIC);
  setsockopt(gen, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  chosen = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK, NETLINK_ROUTE);
  struct sockaddr_nl c = {.nl_family = AF_NETLINK, .nl_pid = CHOSEN_PORT};
  if (bind(chosen, (struct sockaddr *)&c, sizeof c)) { say("SETUP FAIL chosen %s\n", strerror(errno)); return 1; }
  int audit = strcmp(mode, "audit") == 0 ? socket(AF_NETLINK, SOCK_RAW, NETLINK_AUDIT) : -1;
  if (strcmp(mode, "mptcp") == 0 && socket(AF_INET, SOCK_STREAM, 262 /* IPPROTO_MPTCP */) < 0) { say("SETUP FAIL mptcp %s\n", strerror(errno)); return 1; }
  say("READY pid=%d\n", getpid());
  for (;;) {
    while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
    go = 0;
    fail[0] = 0;
    struct sockaddr_nl n = name_of(route);
    CHECK(n.nl_pid == (unsigned)getpid(), "route: port id %u, not the pid %d", n.nl_pid, getpid());
    if (audit >= 0) CHECK(opt(audit, SOL_SOCKET, SO_PROTOCOL) == NETLINK_AUDIT, "audit: protocol %d", opt(audit, SOL_SOCKET, SO_PROTOCOL));
    CHECK(n.nl_groups == RTMGRP_LINK, "route: nl_groups 0x%x, not RTMGRP_LINK", n.nl_groups);
    CHECK(member_of(route, RTNLGRP_LINK) && member_of(route, HIGH_GROUP), "route: groups lost");
    CHECK(!member_of(route, RTNLGRP_IPV4_IFADDR), "route: a group gained");
    CHECK(opt(route, SOL_NETLINK, NETLINK_EXT_ACK) == 1, "route: NETLINK_EXT_ACK lost");
    CHECK(opt(route, SOL_SOCKET, SO_RCVBUF) == rcvbuf, "route: SO_RCVBUF %d, not %d", opt(route, SOL_SOCKET, SO_RCVBUF), rcvbuf);
    CHECK(opt(route, SOL_SOCKET, SO_PROTOCOL) == NETLINK_ROUTE && opt(route, SOL_SOCKET, SO_TYPE) == SOCK_RAW, "route: type");
    CHECK(name_of(gen).nl_pid == 0, "gen: bound (port id %u) before use", name_of(gen).nl_pid);
    CHECK(opt(gen, SOL_NETLINK, NETLINK_CAP_ACK) == 1, "gen: NETLINK_CAP_ACK lost");
    CHECK(opt(gen, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM && opt(gen, SOL_SOCKET, SO_PROTOCOL) == NETLINK_GENERIC, "gen: type");
    CHECK(name_of(chosen).nl_pid == CHOSEN_PORT, "chosen: port id %u", name_of(chosen).nl_pid);
    CHECK(fcntl(chosen, F_GETFL) & O_NONBLOCK, "chosen: O_NONBLOCK lost");
    CHECK(fcntl(route, F_GETFD) & FD_CLOEXEC, "route: FD_CLOEXEC lost");
    send_getlink(route, 0);
    CHECK(read_links(route), "route: RTM_GETLINK dump without lo");
    CHECK(ask_nlctrl(gen), "gen: no answer from nlctrl");
    char tap[IFNAMSIZ];
    snprintf(tap, sizeof tap, "ckpt%d", getpid());
    CHECK(link_event(tap), "route: no RTM_NEWLINK for %s", tap);
    if (fail[0]) say("CHECK FAIL: %s\n", fail);
    else say("CHECK PASS\n");
  }
}
