/* The anon_inode fd kinds: an eventfd (count 5), a semaphore eventfd (count 3), a
 * timerfd armed for 3 s with a 500 ms interval, a signalfd for SIGUSR2 (blocked, one
 * pending), and an epoll watching the eventfd (EPOLLIN, data 0x1234) and a pipe read
 * end holding 3 bytes (EPOLLIN|EPOLLET, data 0x5678); also a one-shot timerfd that
 * expired once and was not read, and a second epoll whose only watch is on an fd
 * closed since (a dup of the pipe read end), whose number now holds /dev/null. On SIGUSR1 it checks them all,
 * printing "PASS name" or "FAIL name: why" per check, then "DONE". */
#include "victim.h"
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static int efd, esem, tfd, tfd1, sfd, ep, ep2, pp[2], gone;

static void report(const char *name, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(const char *name, int ok, const char *fmt, ...) {
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (ok) say("PASS %s\n", name);
  else say("FAIL %s: %s\n", name, why);
}

/* The watch added under a closed fd number: still there, and that number still /dev/null. */
static void check_epoll_closed(void) {
  struct epoll_event ev[2];
  int n = epoll_wait(ep2, ev, 2, 0);
  report("epoll-closed-fd", n == 1 && ev[0].data.u64 == 7, "epoll_wait on the second epoll gave %d events", n);
  struct stat st;
  int ok = fstat(gone, &st) == 0 && S_ISCHR(st.st_mode) && fcntl(gone, F_GETFD) == 0;
  report("epoll-closed-fd-number", ok, "fd %d is no longer /dev/null without FD_CLOEXEC", gone);
  /* The old key (pipe, gone) is taken, so adding the pipe under that number again fails. */
  struct epoll_event e = {.events = EPOLLIN};
  int again = dup2(pp[0], gone) == gone && epoll_ctl(ep2, EPOLL_CTL_ADD, gone, &e) < 0 && errno == EEXIST;
  report("epoll-closed-fd-key", again, "the watch is not keyed by fd %d any more", gone);
}

static void check_epoll(void) {
  struct epoll_event ev[8];
  int n = epoll_wait(ep, ev, 8, 0);
  int seen1234 = 0, seen5678 = 0;
  for (int i = 0; i < n; i++) {
    if (ev[i].data.u64 == 0x1234 && (ev[i].events & EPOLLIN)) seen1234 = 1;
    if (ev[i].data.u64 == 0x5678 && (ev[i].events & EPOLLIN)) seen5678 = 1;
  }
  report("epoll-wait", n == 2 && seen1234 && seen5678, "epoll_wait gave %d events (0x1234 %d, 0x5678 %d) %s", n, seen1234,
         seen5678, n < 0 ? strerror(errno) : "");
  /* Edge-triggered: the pipe is not reported again until new data comes. */
  n = epoll_wait(ep, ev, 8, 0);
  int again = 0;
  for (int i = 0; i < n; i++) again |= ev[i].data.u64 == 0x5678;
  report("epoll-et", !again, "the edge-triggered pipe watch was reported twice");
  /* The watch is keyed by the eventfd's own fd number. */
  struct epoll_event mod = {.events = EPOLLIN, .data.u64 = 0x9999};
  int r = epoll_ctl(ep, EPOLL_CTL_MOD, efd, &mod);
  report("epoll-mod", r == 0, "EPOLL_CTL_MOD on fd %d: %s", efd, strerror(errno));
  n = epoll_wait(ep, ev, 8, 0);
  int got9999 = 0;
  for (int i = 0; i < n; i++) got9999 |= ev[i].data.u64 == 0x9999;
  report("epoll-mod-data", got9999, "after EPOLL_CTL_MOD the eventfd watch does not report data 0x9999 (%d events)", n);
  char buf[8];
  ssize_t got = read(pp[0], buf, sizeof buf);
  report("pipe", got == 3 && memcmp(buf, "abc", 3) == 0, "the watched pipe gave %zd bytes", got);
}

static void check_eventfds(void) {
  uint64_t v = 0;
  ssize_t r = read(efd, &v, 8);
  report("eventfd", r == 8 && v == 5, "read gave %zd, value %llu", r, (unsigned long long)v);
  int fl = fcntl(efd, F_GETFL), fdfl = fcntl(efd, F_GETFD);
  report("eventfd-flags", (fl & O_NONBLOCK) && (fdfl & FD_CLOEXEC), "F_GETFL 0%o F_GETFD %d", fl, fdfl);
  r = read(efd, &v, 8);
  report("eventfd-empty", r < 0 && errno == EAGAIN, "a second read gave %zd (%s)", r, strerror(errno));
  int ones = 0;
  for (int i = 0; i < 3; i++) {
    v = 0;
    if (read(esem, &v, 8) == 8 && v == 1) ones++;
  }
  r = read(esem, &v, 8);
  report("eventfd-semaphore", ones == 3 && r < 0 && errno == EAGAIN, "%d reads of 1, then %zd", ones, r);
}

static void check_timerfd(void) {
  struct itimerspec its;
  int r = timerfd_gettime(tfd, &its);
  int left = its.it_value.tv_sec > 0 || its.it_value.tv_nsec > 0;
  int iv = its.it_interval.tv_sec == 0 && its.it_interval.tv_nsec == 500000000;
  report("timerfd-gettime", r == 0 && left && iv, "value %ld.%09ld interval %ld.%09ld", (long)its.it_value.tv_sec,
         its.it_value.tv_nsec, (long)its.it_interval.tv_sec, its.it_interval.tv_nsec);
  uint64_t ticks = 0;
  double t0 = now_s();
  ssize_t n = read(tfd, &ticks, 8); /* blocking: at most ~3 s */
  uint64_t once = 0;
  n = read(tfd1, &once, 8);
  r = timerfd_gettime(tfd1, &its);
  report("timerfd-expired", n == 8 && once == 1 && r == 0 && its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0,
         "the expired one-shot timer read %zd, %llu ticks", n, (unsigned long long)once);
  report("timerfd-read", n == 8 && ticks >= 1, "read gave %zd, %llu ticks after %.2f s", n, (unsigned long long)ticks, now_s() - t0);
}

static void check_signalfd(void) {
  struct signalfd_siginfo si;
  ssize_t n = read(sfd, &si, sizeof si);
  report("signalfd", n == sizeof si && si.ssi_signo == SIGUSR2, "read gave %zd, signal %u (%s)", n, n > 0 ? si.ssi_signo : 0,
         n < 0 ? strerror(errno) : "");
}

/* argv[1] = "unreachable": an epoll watch on a pipe whose only fd is in a child that
 * does not share the epoll (the dump must refuse it). */
static int unreachable(void) {
  int p[2];
  if (pipe(p) < 0) return 1;
  pid_t child = fork();
  if (child == 0) {
    for (;;) pause();
  }
  int e = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 1};
  if (e < 0 || epoll_ctl(e, EPOLL_CTL_ADD, p[0], &ev)) return 1;
  close(p[0]);
  say("READY pid=%d child=%d epoll=%d watch=%d\n", getpid(), child, e, p[0]);
  for (;;) pause();
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "unreachable") == 0) return unreachable();
  signal(SIGUSR1, on_usr1);
  efd = eventfd(5, EFD_NONBLOCK | EFD_CLOEXEC);
  esem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
  tfd = timerfd_create(CLOCK_MONOTONIC, 0);
  struct itimerspec its = {.it_interval = {0, 500000000}, .it_value = {3, 0}};
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR2);
  sigprocmask(SIG_BLOCK, &m, NULL);
  sfd = signalfd(-1, &m, SFD_NONBLOCK);
  if (efd < 0 || esem < 0 || tfd < 0 || sfd < 0 || timerfd_settime(tfd, 0, &its, NULL) || pipe(pp)) {
    say("SETUP FAIL %s\n", strerror(errno));
    return 1;
  }
  kill(getpid(), SIGUSR2);
  if (write(pp[1], "abc", 3) != 3) return 1;
  ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event e1 = {.events = EPOLLIN, .data.u64 = 0x1234}, e2 = {.events = EPOLLIN | EPOLLET, .data.u64 = 0x5678};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, efd, &e1) || epoll_ctl(ep, EPOLL_CTL_ADD, pp[0], &e2)) {
    say("SETUP FAIL epoll %s\n", strerror(errno));
    return 1;
  }
  tfd1 = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct itimerspec shot = {.it_value = {0, 1000000}};
  if (tfd1 < 0 || timerfd_settime(tfd1, 0, &shot, NULL)) return 1;
  usleep(20000);
  /* A watch on a closed fd: the pipe lives on as pp[0], so the kernel keeps the watch. */
  ep2 = epoll_create1(0);
  gone = dup(pp[0]);
  struct epoll_event e3 = {.events = EPOLLIN, .data.u64 = 7};
  if (ep2 < 0 || gone < 0 || epoll_ctl(ep2, EPOLL_CTL_ADD, gone, &e3)) return 1;
  close(gone);
  if (open("/dev/null", O_RDONLY) != gone) return 1; /* the number is taken by another file now */
  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
  check_epoll_closed(); /* before the pipe is read */
  check_epoll(); /* before the eventfd is read: it must still be ready */
  check_eventfds();
  check_signalfd();
  check_timerfd();
  say("DONE\n");
  for (;;) pause();
}
