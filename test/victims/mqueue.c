/* POSIX message queues: a named queue (/ckpt-mq-PID, mq_maxmsg 8, mq_msgsize 128,
 * mode 0640, O_NONBLOCK) holding "a" (prio 1), "b" and "c" (prio 5), opened a second
 * time write-only; an unlinked queue registered for mq_notify(SIGEV_SIGNAL,
 * SIGRTMIN+1, value 4242); and an unlinked queue a thread is blocked receiving on.
 * With argument "thread" the second queue is registered for SIGEV_THREAD instead (a
 * dump must refuse it). With argument "fork" a child holds the same queues (inherited
 * descriptions, and a second open of the named one): on SIGUSR2 it sends "k" on its
 * own open of the named queue and "t" on the inherited unlinked one, which the parent
 * must then receive. On SIGUSR1 it checks everything, printing "PASS name" or
 * "FAIL name: why" per check, then "DONE". */
#include "victim.h"
#include <fcntl.h>
#include <mqueue.h>
#include <pthread.h>
#include <sys/stat.h>

static volatile sig_atomic_t go, go2, notified, notified_code, notified_value;
static void on_usr1(int s) { (void)s; go = 1; }
static void on_usr2(int s) { (void)s; go2 = 1; }
static pid_t child;
static void on_rt(int s, siginfo_t *si, void *u) {
  (void)s, (void)u;
  notified = 1;
  notified_code = si->si_code;
  notified_value = si->si_value.sival_int;
}
static void on_thread(union sigval v) { (void)v; }

static mqd_t q1, q1w, q2, q3;
static char name[64];
static volatile int got_w, recv_errno;

static void *receiver(void *a) {
  (void)a;
  char buf[32];
  ssize_t n = mq_receive(q3, buf, sizeof buf, NULL);
  if (n == 1 && buf[0] == 'w') got_w = 1;
  else recv_errno = n < 0 ? errno : -1;
  return NULL;
}

static void check(void) {
  struct mq_attr at;
  mq_getattr(q1, &at);
  verdict("mq-attr", at.mq_maxmsg == 8 && at.mq_msgsize == 128 && (at.mq_flags & O_NONBLOCK) && at.mq_curmsgs == 3,
         "maxmsg %ld msgsize %ld flags 0%lo curmsgs %ld", at.mq_maxmsg, at.mq_msgsize, at.mq_flags, at.mq_curmsgs);
  struct stat st, st2;
  fstat(q1, &st);
  verdict("mq-mode", (st.st_mode & 07777) == 0640 && st.st_nlink == 1, "mode 0%o nlink %lu", st.st_mode & 07777, (unsigned long)st.st_nlink);
  const char *want[] = {"b", "c", "a"};
  unsigned wantp[] = {5, 5, 1};
  int ok = 1;
  char buf[128], why[256] = "";
  for (int i = 0; i < 3; i++) {
    unsigned p = 0;
    ssize_t n = mq_receive(q1, buf, sizeof buf, &p);
    if (n != 1 || buf[0] != want[i][0] || p != wantp[i]) {
      ok = 0;
      snprintf(why, sizeof why, "message %d: %zd bytes '%c' prio %u (%s)", i, n, n > 0 ? buf[0] : '?', p, n < 0 ? strerror(errno) : "");
      break;
    }
  }
  verdict("mq-messages", ok, "%s", why);
  ssize_t n = mq_receive(q1, buf, sizeof buf, NULL);
  verdict("mq-nonblock", n < 0 && errno == EAGAIN, "a receive on the empty queue gave %zd (%s)", n, strerror(errno));
  int r = mq_send(q1w, "x", 1, 2);
  n = mq_receive(q1, buf, sizeof buf, NULL);
  verdict("mq-same-queue", r == 0 && n == 1 && buf[0] == 'x', "send on the second open %d, receive %zd", r, n);
  mqd_t again = mq_open(name, O_RDONLY);
  fstat(again, &st2);
  verdict("mq-name", again >= 0 && st2.st_ino == st.st_ino, "mq_open(%s) gave %d (%s)", name, again, strerror(errno));
  fstat(q2, &st2);
  mq_getattr(q2, &at);
  verdict("mq-unlinked", st2.st_nlink == 0 && at.mq_maxmsg == 4 && at.mq_msgsize == 32, "nlink %lu maxmsg %ld msgsize %ld",
         (unsigned long)st2.st_nlink, at.mq_maxmsg, at.mq_msgsize);
  r = mq_send(q2, "n", 1, 0);
  for (int i = 0; i < 2000 && !notified; i++) usleep(1000);
  verdict("mq-notify", r == 0 && notified && notified_code == SI_MESGQ && notified_value == 4242, "send %d, notified %d code %d value %d",
         r, notified, notified_code, notified_value);
  r = mq_send(q3, "w", 1, 0);
  for (int i = 0; i < 2000 && !got_w && !recv_errno; i++) usleep(1000);
  verdict("mq-blocked-receive", got_w, "the blocked receiver got errno %d (%s)", recv_errno, strerror(recv_errno));
  if (child > 0) {
    kill(child, SIGUSR2);
    unsigned p = 0;
    n = -1;
    for (int i = 0; i < 2000 && n < 0; i++) {
      n = mq_receive(q1, buf, sizeof buf, &p);
      if (n < 0) usleep(1000);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 2;
    char b3[32];
    ssize_t n3 = mq_timedreceive(q3, b3, sizeof b3, NULL, &ts);
    verdict("mq-tree", n == 1 && buf[0] == 'k' && p == 9 && n3 == 1 && b3[0] == 't', "from the child: named %zd '%c' prio %u, unlinked %zd (%s)", n,
           n > 0 ? buf[0] : '?', p, n3, strerror(errno));
  }
  mq_unlink(name);
}

int main(int argc, char **argv) {
  umask(0);
  snprintf(name, sizeof name, "/ckpt-mq-%d", getpid());
  struct mq_attr a1 = {.mq_maxmsg = 8, .mq_msgsize = 128}, a2 = {.mq_maxmsg = 4, .mq_msgsize = 32};
  q1 = mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK, 0640, &a1);
  q1w = mq_open(name, O_WRONLY);
  if (q1 < 0 || q1w < 0) { say("mq_open: %s\n", strerror(errno)); return 1; }
  mq_send(q1, "a", 1, 1);
  mq_send(q1, "b", 1, 5);
  mq_send(q1, "c", 1, 5);
  char n2[80];
  snprintf(n2, sizeof n2, "%s-2", name);
  q2 = mq_open(n2, O_CREAT | O_RDWR, 0600, &a2);
  q3 = mq_open(n2, O_RDWR);
  mq_unlink(n2);
  /* q3 is another queue: reopen it under a third name. */
  mq_close(q3);
  snprintf(n2, sizeof n2, "%s-3", name);
  q3 = mq_open(n2, O_CREAT | O_RDWR, 0600, &a2);
  mq_unlink(n2);
  struct sigaction sa = {.sa_sigaction = on_rt, .sa_flags = SA_SIGINFO};
  sigaction(SIGRTMIN + 1, &sa, NULL);
  signal(SIGUSR1, on_usr1);
  struct sigevent ev = {.sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGRTMIN + 1, .sigev_value.sival_int = 4242};
  if (argc > 1 && strcmp(argv[1], "thread") == 0) {
    ev.sigev_notify = SIGEV_THREAD;
    ev.sigev_notify_function = on_thread;
  }
  if (mq_notify(q2, &ev) != 0) { say("mq_notify: %s\n", strerror(errno)); return 1; }
  if (argc > 1 && strcmp(argv[1], "fork") == 0) {
    signal(SIGUSR2, on_usr2);
    child = fork();
    if (child == 0) {
      mqd_t own = mq_open(name, O_WRONLY);
      while (!go2) pause();
      mq_send(own, "k", 1, 9);
      mq_send(q3, "t", 1, 0);
      for (;;) pause();
    }
  }
  /* The receiver thread takes no signals: SIGUSR1 must wake main's pause(). */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pthread_t t;
  pthread_create(&t, NULL, receiver, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  usleep(50000);
  say("READY pid=%d name=%s\n", getpid(), name);
  while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
  check();
  say("DONE\n");
  for (;;) pause();
}
