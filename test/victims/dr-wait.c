/* Blocks in one call and reports whether it comes back the way it should:
 *   read FIFO  fd 0 is FIFO (made here, opened O_RDWR, so it never sees EOF by itself): blocks in
 *              read(0); "PASS read n=N data=TEXT" per chunk, "EOF" and exit 0 at end of file
 *   pause      pause(); PASS when it returns after the SIGUSR1 handler ran, FAIL otherwise
 *   poll0      poll(NULL, 0, 3000); PASS when it returns 0 after >= 3 s, FAIL on EINTR/early
 *   epoll      epoll_wait on a pipe nobody writes, 3000 ms: PASS when it returns 0 after >= 3 s
 *   sigwait    sigtimedwait for a blocked SIGUSR2 nobody sends, 3 s: PASS on EAGAIN after >= 3 s
 * Any other return (EINTR where SA_RESTART applies, a short sleep) is a FAIL line. */
#include "victim.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/stat.h>

static volatile sig_atomic_t usr1;
static void on_usr1(int s) { (void)s; usr1++; }

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "pause";
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  if (strcmp(mode, "read") == 0) {
    const char *path = argc > 2 ? argv[2] : "fifo";
    if (mkfifo(path, 0600) && errno != EEXIST) { say("FAIL mkfifo: %s\n", strerror(errno)); return 1; }
    int fd = open(path, O_RDWR);
    if (fd < 0 || dup2(fd, 0) != 0) { say("FAIL open fifo: %s\n", strerror(errno)); return 1; }
    close(fd);
  }
  int ep = -1;
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  if (strcmp(mode, "epoll") == 0) {
    int p[2];
    if (pipe(p) || (ep = epoll_create1(0)) < 0) { say("FAIL epoll setup: %s\n", strerror(errno)); return 1; }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = p[0]};
    epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
  }
  if (strcmp(mode, "sigwait") == 0) sigprocmask(SIG_BLOCK, &usr2, NULL);
  say("READY pid=%d mode=%s\n", getpid(), mode);
  for (int n = 1;; n++) {
    if (strcmp(mode, "read") == 0) {
      char buf[256];
      ssize_t r = read(0, buf, sizeof buf - 1);
      if (r < 0) { say("FAIL read r=%zd errno=%d\n", r, errno); continue; }
      if (r == 0) { say("EOF\n"); return 0; }
      while (r > 0 && buf[r - 1] == '\n') r--;
      buf[r] = 0;
      say("PASS read n=%d data=%s\n", n, buf);
    } else if (strcmp(mode, "pause") == 0) {
      int before = usr1;
      int r = pause();
      int e = errno;
      if (r == -1 && e == EINTR && usr1 > before) say("PASS pause n=%d usr1=%d\n", n, (int)usr1);
      else say("FAIL pause r=%d errno=%d usr1=%d before=%d\n", r, e, (int)usr1, before);
    } else if (strcmp(mode, "epoll") == 0 || strcmp(mode, "sigwait") == 0) {
      double t0 = now_s();
      struct epoll_event ev;
      struct timespec ts = {3, 0};
      int r = ep >= 0 ? epoll_wait(ep, &ev, 1, 3000) : sigtimedwait(&usr2, NULL, &ts);
      int e = errno;
      double dt = now_s() - t0;
      int timed_out = ep >= 0 ? r == 0 : r == -1 && e == EAGAIN;
      if (!timed_out) say("FAIL %s r=%d errno=%d\n", mode, r, e);
      else if (dt < 2.99) say("FAIL %s early dt=%.3f\n", mode, dt);
      else say("PASS %s n=%d dt=%.3f\n", mode, n, dt);
    } else {
      double t0 = now_s();
      int r = poll(NULL, 0, 3000);
      int e = errno;
      double dt = now_s() - t0;
      if (r != 0) say("FAIL poll r=%d errno=%d\n", r, e);
      else if (dt < 2.99) say("FAIL poll early dt=%.3f\n", dt);
      else say("PASS poll n=%d dt=%.3f\n", n, dt);
    }
  }
}
