/* Packet sockets on lo. k1: SOCK_DGRAM for ethertype 0x88b5, bound to lo, with
 * PACKET_AUXDATA and two PACKET_MR_PROMISC memberships on lo and a copy threshold; k2:
 * SOCK_RAW with no protocol (receives nothing), unbound, TPACKET_V2, non-blocking. On
 * SIGUSR1 it checks names and options, that lo's promiscuity count (IFLA_PROMISCUITY)
 * is what it was with k1's membership, and takes two drops to end (it was added twice), and sends a frame of type 0x88b5 on lo from k2
 * that k1 must receive with its auxdata. Prints "CHECK PASS" or "CHECK FAIL: why".
 * Modes (the dump must refuse each): "queued" leaves a frame unread on k1, "ring" gives
 * k2 a PACKET_RX_RING, "fanout" puts k1 in a fanout group. */
#include "victim.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>

#define ETHERTYPE 0x88b5

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }
static char fail[1024];
#define CHECK(c, ...) do { if (!(c) && !fail[0]) snprintf(fail, sizeof fail, __VA_ARGS__); } while (0)

static int k1, k2, lo;
static struct packet_mreq mr;

static int opt(int fd, int level, int name) {
  int v = -1;
  socklen_t len = sizeof v;
  getsockopt(fd, level, name, &v, &len);
  return v;
}

static struct sockaddr_ll name_of(int fd) {
  struct sockaddr_ll a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  getsockname(fd, (struct sockaddr *)&a, &len);
  return a;
}

/* lo's IFLA_PROMISCUITY, from RTM_GETLINK; -1 if not found. */
static int promiscuity(void) {
  int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  struct { struct nlmsghdr h; struct ifinfomsg i; } req = {
    .h = {.nlmsg_len = sizeof req, .nlmsg_type = RTM_GETLINK, .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 1},
    .i = {.ifi_family = AF_UNSPEC, .ifi_index = lo},
  };
  static char buf[1 << 15];
  int out = -1;
  if (send(nl, &req, sizeof req, 0) == sizeof req) {
    ssize_t n = recv(nl, buf, sizeof buf, 0);
    struct nlmsghdr *h = (void *)buf;
    if (n > 0 && NLMSG_OK(h, n) && h->nlmsg_type == RTM_NEWLINK) {
      struct ifinfomsg *i = NLMSG_DATA(h);
      int len = h->nlmsg_len - NLMSG_LENGTH(sizeof *i);
      for (struct rtattr *a = IFLA_RTA(i); RTA_OK(a, len); a = RTA_NEXT(a, len))
        if (a->rta_type == IFLA_PROMISCUITY) out = *(int *)RTA_DATA(a);
    }
  }
  close(nl);
  return out;
}

static int send_frame(const char *payload) {
  unsigned char f[64] = {0};
  f[12] = ETHERTYPE >> 8;
  f[13] = ETHERTYPE & 0xff;
  size_t n = strlen(payload);
  memcpy(f + 14, payload, n);
  struct sockaddr_ll to = {.sll_family = AF_PACKET, .sll_protocol = htons(ETHERTYPE), .sll_ifindex = lo, .sll_halen = 6};
  return sendto(k2, f, 14 + n, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)(14 + n);
}

/* k1 receives `payload` (no ethernet header: SOCK_DGRAM) with a PACKET_AUXDATA message. */
static int receive_frame(const char *payload) {
  struct pollfd p = {.fd = k1, .events = POLLIN};
  if (poll(&p, 1, 3000) != 1) return 0;
  char b[128], ctl[256];
  struct iovec iov = {.iov_base = b, .iov_len = sizeof b};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
  ssize_t n = recvmsg(k1, &m, MSG_DONTWAIT);
  int aux = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
    if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) aux = 1;
  return n >= (ssize_t)strlen(payload) && memcmp(b, payload, strlen(payload)) == 0 && aux;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  signal(SIGUSR1, on_usr1);
  lo = if_nametoindex("lo");
  int one = 1, v2 = TPACKET_V2, thresh = 1;
  k1 = socket(AF_PACKET, SOCK_DGRAM, htons(ETHERTYPE));
  struct sockaddr_ll a = {.sll_family = AF_PACKET, .sll_protocol = htons(ETHERTYPE), .sll_ifindex = lo};
  if (k1 < 0 || bind(k1, (struct sockaddr *)&a, sizeof a)) { say("SETUP FAIL k1 %s\n", strerror(errno)); return 1; }
  setsockopt(k1, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one);
  setsockopt(k1, SOL_PACKET, PACKET_COPY_THRESH, &thresh, sizeof thresh);
  mr = (struct packet_mreq){.mr_ifindex = lo, .mr_type = PACKET_MR_PROMISC};
  for (int i = 0; i < 2; i++)
    if (setsockopt(k1, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr)) { say("SETUP FAIL mreq %s\n", strerror(errno)); return 1; }
  k2 = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, 0);
  if (k2 < 0 || setsockopt(k2, SOL_PACKET, PACKET_VERSION, &v2, sizeof v2)) { say("SETUP FAIL k2 %s\n", strerror(errno)); return 1; }
  if (strcmp(mode, "queued") == 0) send_frame("left");
  if (strcmp(mode, "ring") == 0) {
    struct tpacket_req r = {.tp_block_size = 4096, .tp_block_nr = 1, .tp_frame_size = 2048, .tp_frame_nr = 2};
    if (setsockopt(k2, SOL_PACKET, PACKET_RX_RING, &r, sizeof r)) { say("SETUP FAIL ring %s\n", strerror(errno)); return 1; }
  }
  if (strcmp(mode, "fanout") == 0) {
    int fan = (getpid() & 0xffff) | (PACKET_FANOUT_HASH << 16);
    if (setsockopt(k1, SOL_PACKET, PACKET_FANOUT, &fan, sizeof fan)) { say("SETUP FAIL fanout %s\n", strerror(errno)); return 1; }
  }
  usleep(20000);
  int promisc = promiscuity();
  say("READY pid=%d\n", getpid());
  for (;;) {
    while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
    go = 0;
    fail[0] = 0;
    struct sockaddr_ll n1 = name_of(k1), n2 = name_of(k2);
    CHECK(n1.sll_ifindex == lo && n1.sll_protocol == htons(ETHERTYPE), "k1: bound to %d/0x%x", n1.sll_ifindex, ntohs(n1.sll_protocol));
    CHECK(n2.sll_ifindex == 0 && n2.sll_protocol == 0, "k2: bound to %d/0x%x", n2.sll_ifindex, ntohs(n2.sll_protocol));
    CHECK(opt(k1, SOL_PACKET, PACKET_AUXDATA) == 1, "k1: PACKET_AUXDATA lost");
    CHECK(opt(k2, SOL_PACKET, PACKET_VERSION) == TPACKET_V2, "k2: PACKET_VERSION %d", opt(k2, SOL_PACKET, PACKET_VERSION));
    CHECK(opt(k1, SOL_SOCKET, SO_TYPE) == SOCK_DGRAM && opt(k2, SOL_SOCKET, SO_TYPE) == SOCK_RAW, "types");
    CHECK(fcntl(k2, F_GETFL) & O_NONBLOCK, "k2: O_NONBLOCK lost");
    CHECK(promiscuity() == promisc, "lo: promiscuity %d, not %d (k1's membership lost)", promiscuity(), promisc);
    /* The membership was added twice: one drop leaves it, the second ends it. Then both go back. */
    setsockopt(k1, SOL_PACKET, PACKET_DROP_MEMBERSHIP, &mr, sizeof mr);
    CHECK(promiscuity() == promisc, "lo: one drop ended k1's membership (its count was lost)");
    setsockopt(k1, SOL_PACKET, PACKET_DROP_MEMBERSHIP, &mr, sizeof mr);
    CHECK(promiscuity() == promisc - 1, "lo: promiscuity %d after both drops, not %d", promiscuity(), promisc - 1);
    for (int i = 0; i < 2; i++) setsockopt(k1, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr);
    CHECK(send_frame("ckpt-frame"), "k2: send: %s", strerror(errno));
    CHECK(receive_frame("ckpt-frame"), "k1: the frame did not arrive (with its auxdata)");
    if (fail[0]) say("CHECK FAIL: %s\n", fail);
    else say("CHECK PASS\n");
  }
}
