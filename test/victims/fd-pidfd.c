/* pidfds: of a live child (PIDFD_NONBLOCK), of a zombie child (exit status 7, not
 * reaped), of one of its own threads (PIDFD_THREAD) and of itself; the live child
 * holds a pidfd of its parent. On SIGUSR1 it checks each (the child signals the parent
 * through its pidfd), printing "PASS name" / "FAIL name: why", then "DONE".
 * argv[1] = "outside": a pidfd of init, outside the dumped tree (refused).
 * argv[1] = "reaped": a pidfd of a child that exited and was reaped (refused).
 * argv[1] = "sibling": the parent holds pidfds of its two children; the first holds
 * pidfds of its parent, of its younger sibling and of that one's child (both restored
 * after it), and checks them when the parent signals it through its pidfd. */
#include "victim.h"
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }
static int pidfd_open(pid_t pid, unsigned flags) { return (int)syscall(SYS_pidfd_open, pid, flags); }
static int pidfd_send_signal(int fd, int sig) { return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0); }

static volatile pid_t thread_tid;
static void *thread_main(void *arg) {
  (void)arg;
  thread_tid = (pid_t)syscall(SYS_gettid);
  for (;;) pause();
  return NULL;
}

/* The "Pid:" fdinfo shows for fd `fd` of this process. */
static long fdinfo_pid(int fd) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  FILE *f = fopen(path, "r");
  long pid = -2;
  while (f && fgets(line, sizeof line, f)) if (sscanf(line, "Pid: %ld", &pid) == 1) break;
  if (f) fclose(f);
  return pid;
}

static int readable(int fd) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void child(void) {
  int pp = pidfd_open(getppid(), 0);
  signal(SIGUSR1, on_usr1);
  say("CHILD pidfd=%d\n", pp);
  while (!go) usleep(10000);
  say("CHILD-SIGNALLED %d\n", pidfd_send_signal(pp, SIGUSR2));
  for (;;) pause();
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR2);
  sigprocmask(SIG_BLOCK, &m, NULL);
  if (strcmp(mode, "outside") == 0) {
    int fd = pidfd_open(1, 0);
    say("READY pid=%d fd=%d\n", getpid(), fd);
    for (;;) pause();
  }
  if (strcmp(mode, "reaped") == 0) {
    pid_t c = fork();
    if (c == 0) _exit(0);
    int fd = pidfd_open(c, 0);
    waitpid(c, NULL, 0);
    say("READY pid=%d fd=%d\n", getpid(), fd);
    for (;;) pause();
  }
  if (strcmp(mode, "sibling") == 0) {
    int p[2];
    if (pipe(p)) return 1;
    signal(SIGUSR1, on_usr1);
    pid_t first = fork();
    if (first == 0) {
      pid_t later[2]; /* its younger sibling and that one's child: both restored after it */
      if (read(p[0], later, sizeof later) != sizeof later) _exit(1);
      int pp = pidfd_open(getppid(), 0), ps = pidfd_open(later[0], 0), pn = pidfd_open(later[1], 0);
      say("FIRST fd=%d\n", ps);
      while (!go) usleep(10000);
      verdict("pidfd-of-parent-from-child", fdinfo_pid(pp) == getppid() && pidfd_send_signal(pp, 0) == 0, "names %ld, parent %d", fdinfo_pid(pp), getppid());
      verdict("pidfd-of-younger-sibling", fdinfo_pid(ps) == later[0] && pidfd_send_signal(ps, 0) == 0, "names %ld, sibling %d", fdinfo_pid(ps), later[0]);
      verdict("pidfd-of-siblings-child", fdinfo_pid(pn) == later[1] && pidfd_send_signal(pn, 0) == 0, "names %ld, nephew %d", fdinfo_pid(pn), later[1]);
      say("DONE\n");
      for (;;) pause();
    }
    pid_t second = fork();
    if (second == 0) {
      pid_t later[2] = { getpid(), fork() };
      if (later[1] == 0) for (;;) pause();
      say("NEPHEW pid=%d\n", later[1]);
      if (write(p[1], later, sizeof later) != sizeof later) _exit(1);
      for (;;) pause();
    }
    close(p[0]);
    close(p[1]);
    int p1 = pidfd_open(first, 0), p2 = pidfd_open(second, 0);
    say("READY pid=%d first=%d second=%d\n", getpid(), first, second);
    while (!go) usleep(10000);
    verdict("pidfds-of-children", fdinfo_pid(p1) == first && fdinfo_pid(p2) == second, "name %ld and %ld, children %d and %d", fdinfo_pid(p1), fdinfo_pid(p2), first, second);
    /* The first child checks its own and prints DONE. */
    pidfd_send_signal(p1, SIGUSR1);
    for (;;) pause();
  }
  signal(SIGUSR1, on_usr1);
  pid_t c = fork();
  if (c == 0) child();
  pid_t z = fork();
  if (z == 0) {
    usleep(20000);
    _exit(7);
  }
  int pc = pidfd_open(c, O_NONBLOCK), pz = pidfd_open(z, 0), ps = pidfd_open(getpid(), 0);
  siginfo_t si;
  waitid(P_PID, z, &si, WEXITED | WNOWAIT); /* a zombie from here on */
  pthread_t t;
  pthread_create(&t, NULL, thread_main, NULL);
  while (!thread_tid) usleep(1000);
  int pt = pidfd_open(thread_tid, PIDFD_THREAD);
  if (pc < 0 || pz < 0 || ps < 0 || pt < 0) return say("SETUP FAIL %s\n", strerror(errno)), 1;
  say("READY pid=%d child=%d zombie=%d\n", getpid(), c, z);
  while (!go) usleep(10000);

  verdict("pidfd-self", fdinfo_pid(ps) == getpid(), "the pidfd of itself names %ld", fdinfo_pid(ps));
  long tp = fdinfo_pid(pt);
  int tfl = fcntl(pt, F_GETFL);
  verdict("pidfd-thread", tp == thread_tid && (tfl & PIDFD_THREAD), "the thread pidfd names %ld (thread %d), F_GETFL 0%o", tp, thread_tid, tfl);
  int cfl = fcntl(pc, F_GETFL);
  memset(&si, 0, sizeof si);
  int r = waitid(P_PIDFD, pc, &si, WEXITED | WNOHANG);
  verdict("pidfd-child-alive", (cfl & O_NONBLOCK) && !readable(pc) && r == 0 && si.si_pid == 0,
          "F_GETFL 0%o, readable %d, waitid %d si_pid %d", cfl, readable(pc), r, si.si_pid);
  int zr = readable(pz);
  memset(&si, 0, sizeof si);
  r = waitid(P_PIDFD, pz, &si, WEXITED);
  verdict("pidfd-zombie", zr && r == 0 && si.si_pid == z && si.si_code == CLD_EXITED && si.si_status == 7,
          "readable %d, waitid %d (%s) pid %d code %d status %d", zr, r, strerror(errno), si.si_pid, si.si_code, si.si_status);
  pidfd_send_signal(pc, SIGUSR1);
  struct timespec ts = {5, 0};
  int got = sigtimedwait(&m, NULL, &ts);
  verdict("pidfd-of-parent", got == SIGUSR2, "the child's signal through its pidfd of the parent did not come (%d)", got);
  memset(&si, 0, sizeof si);
  /* The pidfd is non-blocking: waitid would say EAGAIN until the child is gone. */
  struct pollfd p = {.fd = pc, .events = POLLIN};
  r = pidfd_send_signal(pc, SIGKILL) == 0 && poll(&p, 1, 5000) == 1 ? waitid(P_PIDFD, pc, &si, WEXITED) : -1;
  verdict("pidfd-child-kill", r == 0 && si.si_pid == c && si.si_code == CLD_KILLED, "waitid %d pid %d code %d", r, si.si_pid, si.si_code);
  say("DONE\n");
  for (;;) pause();
}
