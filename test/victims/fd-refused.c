/* Holds one kernel object ckpt refuses, chosen by argv[1]: userfaultfd, io_uring,
 * bpf-map, perf_event, fanotify, aio (an io_setup ring, which is a mapping, not an
 * fd), tun (/dev/net/tun attached to a tap interface), kmsg (/dev/kmsg read) or
 * memfd-mapped (a memfd mapped shared and writable, then sealed F_SEAL_FUTURE_WRITE)
 * or dnotify (F_NOTIFY on its working directory) or reuseport-cbpf (two UDP sockets in a
 * SO_REUSEPORT group whose classic BPF program sends every datagram to the first) or
 * epoll-oneshot-listener (an EPOLLONESHOT watch on a unix listener that fired, its
 * connection accepted since: disarmed and ready for nothing) or udp-corked (a UDP socket
 * with UDP_CORK and data appended, not sent yet) or memfd-hugetlb (memfd_create(MFD_HUGETLB)). Prints "READY pid=N fd=M" (fd -1 for aio) and waits; on SIGUSR1 it checks the
 * object still works (so a refused dump left it alone) and prints PASS or FAIL. */
#include "victim.h"
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <sys/fanotify.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <stddef.h>
#include <sys/un.h>

/* A fired one-shot watch on a listener with nothing waiting; returns the epoll fd, *l the listener. */
static int fired_listener(int *l) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path + 1, sizeof a.sun_path - 1, "ckpt-oneshot-%d", getpid());
  socklen_t al = offsetof(struct sockaddr_un, sun_path) + 1 + strlen(a.sun_path + 1);
  int ep = epoll_create1(0), c = socket(AF_UNIX, SOCK_STREAM, 0);
  *l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
  struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 5};
  if (bind(*l, (struct sockaddr *)&a, al) < 0 || listen(*l, 4) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, *l, &ev) < 0) return -1;
  if (connect(c, (struct sockaddr *)&a, al) < 0 || epoll_wait(ep, &ev, 1, 1000) != 1) return -1;
  int s = accept(*l, NULL, NULL);
  if (s < 0) return -1;
  close(s);
  close(c);
  return ep;
}

/* Still disarmed after the refused dump: a new connection is not reported, a re-arm reports it. */
static int listener_disarmed(int ep, int l) {
  struct sockaddr_un a;
  socklen_t al = sizeof a;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 6};
  int c = socket(AF_UNIX, SOCK_STREAM, 0);
  if (getsockname(l, (struct sockaddr *)&a, &al) < 0 || connect(c, (struct sockaddr *)&a, al) < 0) return 0;
  int quiet = epoll_wait(ep, &ev, 1, 0) == 0;
  ev.events = EPOLLIN | EPOLLONESHOT;
  return quiet && epoll_ctl(ep, EPOLL_CTL_MOD, l, &ev) == 0 && epoll_wait(ep, &ev, 1, 1000) == 1 && ev.data.u64 == 6;
}

/* Two UDP sockets on 127.0.0.1:port in one SO_REUSEPORT group, the program "return 0" (the first) on it. */
static int reuseport_group(int u[2]) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  int on = 1;
  for (int i = 0; i < 2; i++) {
    u[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (u[i] < 0 || setsockopt(u[i], SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0) return -1;
    if (bind(u[i], (struct sockaddr *)&a, sizeof a) < 0 || getsockname(u[i], (struct sockaddr *)&a, &al) < 0) return -1;
  }
  struct sock_filter code[] = {{BPF_RET | BPF_K, 0, 0, 0}};
  struct sock_fprog prog = {.len = 1, .filter = code};
  return setsockopt(u[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0 ? -1 : ntohs(a.sin_port);
}

/* Datagrams to the group all reach the first socket: the program is still there. */
static int reuseport_works(int u[2], int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  char b[8];
  int first = 0;
  for (int i = 0; i < 8; i++) {
    int c = socket(AF_INET, SOCK_DGRAM, 0);
    if (c < 0 || sendto(c, "x", 1, 0, (struct sockaddr *)&a, sizeof a) != 1) return 0;
    close(c);
    usleep(1000);
    if (recv(u[0], b, sizeof b, 0) == 1) first++;
    if (recv(u[1], b, sizeof b, 0) == 1) return 0;
  }
  return first == 8;
}

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  signal(SIGUSR1, on_usr1);
  long fd = -1;
  aio_context_t ctx = 0;
  int group[2] = {-1, -1}, port = 0, listener = -1;
  if (strcmp(what, "userfaultfd") == 0) {
    fd = syscall(SYS_userfaultfd, O_CLOEXEC);
  } else if (strcmp(what, "io_uring") == 0) {
    struct io_uring_params p = {0};
    fd = syscall(SYS_io_uring_setup, 4, &p);
  } else if (strcmp(what, "bpf-map") == 0) {
    union bpf_attr a = {.map_type = BPF_MAP_TYPE_ARRAY, .key_size = 4, .value_size = 4, .max_entries = 1};
    fd = syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a);
  } else if (strcmp(what, "perf_event") == 0) {
    struct perf_event_attr a = {.type = PERF_TYPE_SOFTWARE, .size = sizeof a, .config = PERF_COUNT_SW_TASK_CLOCK};
    fd = syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
  } else if (strcmp(what, "fanotify") == 0) {
    fd = fanotify_init(FAN_CLASS_NOTIF, O_RDONLY);
    if (fd >= 0 && fanotify_mark((int)fd, FAN_MARK_ADD, FAN_CLOSE_WRITE, AT_FDCWD, ".")) fd = -1;
  } else if (strcmp(what, "tun") == 0) {
    fd = open("/dev/net/tun", O_RDWR);
    struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
    snprintf(ifr.ifr_name, IFNAMSIZ, "ckptaudit%d", getpid() % 100000);
    if (fd >= 0 && ioctl((int)fd, TUNSETIFF, &ifr) < 0) fd = -1;
  } else if (strcmp(what, "memfd-mapped") == 0) {
    fd = memfd_create("audit-sealed", MFD_ALLOW_SEALING);
    char *p = fd >= 0 && ftruncate((int)fd, 4096) == 0 ? mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0) : MAP_FAILED;
    if (p == MAP_FAILED || fcntl((int)fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE) < 0) fd = -1;
    else say("MAPPED at=%lx\n", (unsigned long)p);
  } else if (strcmp(what, "dnotify") == 0) {
    fd = open(".", O_RDONLY | O_DIRECTORY);
    if (fd >= 0 && fcntl((int)fd, F_NOTIFY, DN_CREATE | DN_MULTISHOT) < 0) fd = -1;
  } else if (strcmp(what, "kmsg") == 0) {
    fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
  } else if (strcmp(what, "reuseport-cbpf") == 0) {
    port = reuseport_group(group);
    fd = port > 0 ? group[0] : -1;
  } else if (strcmp(what, "epoll-oneshot-listener") == 0) {
    fd = fired_listener(&listener);
  } else if (strcmp(what, "udp-corked") == 0) {
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(9), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int on = 1;
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd >= 0 && (setsockopt((int)fd, SOL_UDP, UDP_CORK, &on, sizeof on) < 0 ||
                    sendto((int)fd, "corked", 6, 0, (struct sockaddr *)&to, sizeof to) != 6)) fd = -1;
  } else if (strcmp(what, "memfd-hugetlb") == 0) {
    fd = memfd_create("audit-huge", MFD_HUGETLB);
  } else if (strcmp(what, "aio") == 0) {
    if (syscall(SYS_io_setup, 8, &ctx)) return say("SETUP FAIL %s\n", strerror(errno)), 1;
  } else {
    return say("SETUP FAIL unknown %s\n", what), 1;
  }
  if (fd < 0 && ctx == 0) return say("SETUP FAIL %s: %s\n", what, strerror(errno)), 1;
  say("READY pid=%d fd=%ld\n", getpid(), fd);
  while (!go) usleep(10000);
  int ok = ctx ? syscall(SYS_io_destroy, ctx) == 0
           : port ? reuseport_works(group, port)
           : listener >= 0 ? listener_disarmed((int)fd, listener)
           : fcntl((int)fd, F_GETFD) >= 0;
  verdict(what, ok, "%s", strerror(errno));
  for (;;) pause();
}
