/*
 * Victim for temporary signal masks: threads waiting in calls that swap in a mask of
 * their own for the wait (the kernel keeps the real one aside in saved_sigmask).
 *
 *   main      real mask {SIGUSR1, SIGWINCH}; sigsuspend({SIGWINCH}) waits for the go
 *             signal (SIGUSR1)
 *   ppoll     real mask {SIGUSR2, SIGPWR}; ppoll on a pipe nobody writes, mask {SIGUSR1}
 *   pselect   real mask {SIGUSR2, SIGPWR}; pselect on the pipe, mask {SIGUSR1}
 *   epoll     real mask {SIGUSR2, SIGPWR}; epoll_pwait on the pipe, mask {SIGUSR1}
 *   sigwait   real mask {SIGUSR1, SIGUSR2, SIGPWR}; sigwaitinfo({SIGPWR})
 *
 * (SIGUSR1 is blocked in every thread but main during the waits, so the go signal,
 * sent to the process, can only wake main.)
 *
 * Prints READY once every thread has said it is about to wait (the test then waits
 * until /proc shows each one inside its call). On SIGUSR1 the main thread checks its
 * own mask, then wakes each waiting thread with SIGUSR2 (SIGPWR for the sigwait
 * thread): each checks that its wait ended because of that signal and that its mask is
 * the real one again. "PASS what" / "FAIL what ..." lines, then "DONE fails=N".
 */
#include "victim.h"
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/syscall.h>

static int pfd[2];
static volatile sig_atomic_t got_usr1, got_usr2;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int waiting, finished;
static pid_t tids[4];

static void on_usr1(int s) { (void)s; got_usr1 = 1; }
static void on_usr2(int s) { (void)s; got_usr2++; }

#define MUST(x) do { if ((long)(x) < 0) { say("SETUP FAIL %s: %s\n", #x, strerror(errno)); exit(2); } } while (0)

static sigset_t set_of(int a, int b, int c) {
  sigset_t s;
  sigemptyset(&s);
  if (a) sigaddset(&s, a);
  if (b) sigaddset(&s, b);
  if (c) sigaddset(&s, c);
  return s;
}

/* The thread's mask is exactly want. */
static void check_mask(const char *who, sigset_t want) {
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  int same = 1;
  for (int s = 1; s < NSIG; s++) same &= sigismember(&cur, s) == sigismember(&want, s);
  char what[64];
  snprintf(what, sizeof what, "%s mask after the wait", who);
  self_check(same, what, "USR1 %d USR2 %d WINCH %d PWR %d", sigismember(&cur, SIGUSR1), sigismember(&cur, SIGUSR2),
             sigismember(&cur, SIGWINCH), sigismember(&cur, SIGPWR));
}

static void about_to_wait(int i) {
  pthread_mutex_lock(&lock);
  tids[i] = gettid();
  waiting++;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
}

static void done_waiting(void) {
  pthread_mutex_lock(&lock);
  finished++;
  pthread_cond_broadcast(&cond);
  pthread_mutex_unlock(&lock);
}

static void woke(const char *who, int r, int err) {
  char what[64];
  snprintf(what, sizeof what, "%s woken by SIGUSR2", who);
  self_check(r < 0 && err == EINTR && got_usr2 > 0, what, "returned %d errno %d, %d SIGUSR2 handled", r, err, (int)got_usr2);
}

static void *t_ppoll(void *arg) {
  (void)arg;
  sigset_t real = set_of(SIGUSR2, SIGPWR, 0), temp = set_of(SIGUSR1, 0, 0);
  pthread_sigmask(SIG_SETMASK, &real, NULL);
  about_to_wait(0);
  struct pollfd p = { .fd = pfd[0], .events = POLLIN };
  int r = ppoll(&p, 1, NULL, &temp);
  woke("ppoll", r, errno);
  check_mask("ppoll", real);
  done_waiting();
  return NULL;
}

static void *t_pselect(void *arg) {
  (void)arg;
  sigset_t real = set_of(SIGUSR2, SIGPWR, 0), temp = set_of(SIGUSR1, 0, 0);
  pthread_sigmask(SIG_SETMASK, &real, NULL);
  about_to_wait(1);
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(pfd[0], &rd);
  int r = pselect(pfd[0] + 1, &rd, NULL, NULL, NULL, &temp);
  woke("pselect", r, errno);
  check_mask("pselect", real);
  done_waiting();
  return NULL;
}

static void *t_epoll(void *arg) {
  (void)arg;
  sigset_t real = set_of(SIGUSR2, SIGPWR, 0), temp = set_of(SIGUSR1, 0, 0);
  pthread_sigmask(SIG_SETMASK, &real, NULL);
  int ep = epoll_create1(0);
  struct epoll_event ev = { .events = EPOLLIN };
  MUST(epoll_ctl(ep, EPOLL_CTL_ADD, pfd[0], &ev));
  about_to_wait(2);
  int r = epoll_pwait(ep, &ev, 1, -1, &temp);
  woke("epoll_pwait", r, errno);
  check_mask("epoll_pwait", real);
  done_waiting();
  return NULL;
}

static void *t_sigwait(void *arg) {
  (void)arg;
  sigset_t real = set_of(SIGUSR1, SIGUSR2, SIGPWR), pwr = set_of(SIGPWR, 0, 0);
  pthread_sigmask(SIG_SETMASK, &real, NULL);
  about_to_wait(3);
  siginfo_t si;
  int r = sigwaitinfo(&pwr, &si);
  self_check(r == SIGPWR && si.si_pid == getpid(), "sigwaitinfo gets SIGPWR", "returned %d errno %d", r, errno);
  check_mask("sigwaitinfo", real);
  done_waiting();
  return NULL;
}

int main(void) {
  struct sigaction sa = { .sa_handler = on_usr1 };
  MUST(sigaction(SIGUSR1, &sa, NULL));
  sa.sa_handler = on_usr2;
  MUST(sigaction(SIGUSR2, &sa, NULL));
  MUST(pipe(pfd));
  sigset_t real = set_of(SIGUSR1, SIGWINCH, 0), temp = set_of(SIGWINCH, 0, 0);
  MUST(sigprocmask(SIG_SETMASK, &real, NULL));
  void *(*fns[4])(void *) = { t_ppoll, t_pselect, t_epoll, t_sigwait };
  pthread_t th[4];
  for (int i = 0; i < 4; i++) MUST(-pthread_create(&th[i], NULL, fns[i], NULL));
  pthread_mutex_lock(&lock);
  while (waiting < 4) pthread_cond_wait(&cond, &lock);
  pthread_mutex_unlock(&lock);
  say("READY pid=%d\n", getpid());
  int r = sigsuspend(&temp);
  self_check(r < 0 && errno == EINTR && got_usr1, "sigsuspend woken by SIGUSR1", "returned %d errno %d usr1 %d", r, errno, (int)got_usr1);
  check_mask("sigsuspend", real);
  for (int i = 0; i < 3; i++) {
    int before = __atomic_load_n(&finished, __ATOMIC_SEQ_CST);
    /* Until that thread is done: a SIGUSR2 that lands before its wait would be lost. */
    while (__atomic_load_n(&finished, __ATOMIC_SEQ_CST) == before) {
      syscall(SYS_tgkill, getpid(), tids[i], SIGUSR2);
      usleep(20000);
    }
  }
  syscall(SYS_tgkill, getpid(), tids[3], SIGPWR);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
