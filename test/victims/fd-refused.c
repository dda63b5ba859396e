/* Holds one kernel object ckpt refuses, chosen by argv[1]: userfaultfd, io_uring,
 * bpf-map, perf_event, fanotify, aio (an io_setup ring, which is a mapping, not an
 * fd), tun (/dev/net/tun attached to a tap interface), kmsg (/dev/kmsg read) or
 * memfd-mapped (a memfd mapped shared and writable, then sealed F_SEAL_FUTURE_WRITE)
 * or dnotify (F_NOTIFY on its working directory). Prints "READY pid=N fd=M" (fd -1 for aio) and waits; on SIGUSR1 it checks the
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

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

int main(int argc, char **argv) {
  const char *what = argc > 1 ? argv[1] : "";
  signal(SIGUSR1, on_usr1);
  long fd = -1;
  aio_context_t ctx = 0;
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
  } else if (strcmp(what, "aio") == 0) {
    if (syscall(SYS_io_setup, 8, &ctx)) return say("SETUP FAIL %s\n", strerror(errno)), 1;
  } else {
    return say("SETUP FAIL unknown %s\n", what), 1;
  }
  if (fd < 0 && ctx == 0) return say("SETUP FAIL %s: %s\n", what, strerror(errno)), 1;
  say("READY pid=%d fd=%ld\n", getpid(), fd);
  while (!go) usleep(10000);
  int ok = ctx ? syscall(SYS_io_destroy, ctx) == 0 : fcntl((int)fd, F_GETFD) >= 0;
  verdict(what, ok, "%s", strerror(errno));
  for (;;) pause();
}
