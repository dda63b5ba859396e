/* epoll shapes a real event loop leaves behind, checked by the victim itself after
 * restore (SIGUSR1): a fired EPOLLONESHOT watch (disarmed; also on a pipe emptied since,
 * ready for nothing), an EPOLLEXCLUSIVE watch, an
 * epoll inside an epoll, an edge-triggered event ready and not collected, an absolute
 * CLOCK_REALTIME timerfd with TFD_TIMER_CANCEL_ON_SET. Prints READY, PASS/FAIL lines, DONE. */
#include "victim.h"
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static void fatal(const char *what) {
  say("FAIL setup: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void add(int ep, int fd, uint32_t events) {
  struct epoll_event ev = {.events = events, .data.u64 = (uint64_t)fd * 1000 + 7};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) fatal("epoll_ctl");
}

int main(void) {
  struct sigaction sa = {.sa_handler = on_usr1};
  sigaction(SIGUSR1, &sa, NULL);
  syscall(SYS_close_range, 3, ~0U, 0); /* whatever the runner leaked is not ours */
  uint64_t one = 1;

  /* a one-shot watch that fired and was collected: disarmed, though its eventfd stays readable */
  int oneshot_ep = epoll_create1(0), oneshot = eventfd(1, EFD_NONBLOCK);
  add(oneshot_ep, oneshot, EPOLLIN | EPOLLONESHOT);
  struct epoll_event ev[4];
  if (epoll_wait(oneshot_ep, ev, 4, 0) != 1) fatal("oneshot wait");

  /* a one-shot watch that fired on a pipe emptied since: ready for nothing, still disarmed */
  int pipe_ep = epoll_create1(0), pp[2];
  char c;
  if (pipe2(pp, O_NONBLOCK) < 0) fatal("pipe");
  add(pipe_ep, pp[0], EPOLLIN | EPOLLONESHOT);
  if (write(pp[1], "p", 1) != 1 || epoll_wait(pipe_ep, ev, 4, 0) != 1 || read(pp[0], &c, 1) != 1) fatal("oneshot pipe");

  /* an exclusive watch: EPOLL_CTL_MOD on it answers EINVAL */
  int excl_ep = epoll_create1(0), excl = eventfd(0, EFD_NONBLOCK);
  add(excl_ep, excl, EPOLLIN | EPOLLEXCLUSIVE);

  /* epoll in epoll: the outer one reports the inner when the inner's pipe has data */
  int inner = epoll_create1(0), outer = epoll_create1(0), p[2];
  if (pipe2(p, O_NONBLOCK) < 0) fatal("pipe");
  add(inner, p[0], EPOLLIN);
  add(outer, inner, EPOLLIN);

  /* edge-triggered, ready before the dump and not collected: reported once after restore */
  int et_ep = epoll_create1(0), et = eventfd(0, EFD_NONBLOCK);
  add(et_ep, et, EPOLLIN | EPOLLET);
  if (write(et, &one, 8) != 8) fatal("et write");

  /* absolute CLOCK_REALTIME timer, cancelled if the clock is set; far away and periodic */
  int tfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
  struct itimerspec its = {.it_interval = {.tv_sec = 3600}};
  clock_gettime(CLOCK_REALTIME, &its.it_value);
  its.it_value.tv_sec += 7200;
  if (timerfd_settime(tfd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, &its, NULL) < 0) fatal("timerfd");
  char settime_before[128];
  fdinfo_line(tfd, "settime flags:", settime_before, sizeof settime_before);

  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000);

  int n = epoll_wait(oneshot_ep, ev, 4, 0);
  verdict("epoll-oneshot-disarmed", n == 0, "a fired one-shot watch reported %d events", n);
  struct epoll_event mod = {.events = EPOLLIN | EPOLLONESHOT, .data.u64 = 1};
  n = epoll_ctl(oneshot_ep, EPOLL_CTL_MOD, oneshot, &mod) == 0 ? epoll_wait(oneshot_ep, ev, 4, 0) : -1;
  verdict("epoll-oneshot-rearm", n == 1 && ev[0].data.u64 == 1, "re-armed one-shot: %d events", n);

  errno = 0;
  int empty = read(pp[0], &c, 1) < 0 && errno == EAGAIN;
  int quiet_pipe = epoll_wait(pipe_ep, ev, 4, 0) == 0;
  n = write(pp[1], "q", 1) == 1 ? epoll_wait(pipe_ep, ev, 4, 0) : -1;
  int rearmed = epoll_ctl(pipe_ep, EPOLL_CTL_MOD, pp[0], &mod) == 0 && epoll_wait(pipe_ep, ev, 4, 0) == 1 && ev[0].data.u64 == 1;
  verdict("epoll-oneshot-pipe", empty && quiet_pipe && n == 0 && rearmed, "empty %d, quiet %d, after a write %d events, re-armed %d",
          empty, quiet_pipe, n, rearmed);

  mod.events = EPOLLIN;
  errno = 0;
  n = epoll_ctl(excl_ep, EPOLL_CTL_MOD, excl, &mod);
  verdict("epoll-exclusive", n < 0 && errno == EINVAL, "EPOLL_CTL_MOD on an exclusive watch: %d %s", n, strerror(errno));

  n = epoll_wait(outer, ev, 4, 0);
  int quiet = n == 0;
  if (write(p[1], "x", 1) != 1) fatal("pipe write");
  n = epoll_wait(outer, ev, 4, 0);
  verdict("epoll-nested", quiet && n == 1 && ev[0].data.u64 == (uint64_t)inner * 1000 + 7, "outer epoll: quiet %d then %d events", quiet, n);

  n = epoll_wait(et_ep, ev, 4, 0);
  int again = epoll_wait(et_ep, ev + 1, 3, 0);
  verdict("epoll-et-pending", n == 1 && ev[0].data.u64 == (uint64_t)et * 1000 + 7 && again == 0, "edge-triggered: %d then %d events", n, again);

  char settime_after[128];
  fdinfo_line(tfd, "settime flags:", settime_after, sizeof settime_after);
  struct itimerspec left;
  timerfd_gettime(tfd, &left);
  verdict("timerfd-abs-cancel", strcmp(settime_before, settime_after) == 0 && left.it_interval.tv_sec == 3600 && left.it_value.tv_sec > 7000,
          "[%s] vs [%s], left %ld interval %ld", settime_after, settime_before, (long)left.it_value.tv_sec, (long)left.it_interval.tv_sec);
  say("DONE\n");
  return 0;
}
