/*
 * Victim for timers (src/resources/process/itimers.ts, posix-timers.ts):
 *
 *   ITIMER_REAL   first expiry in 1 s, then every 200 ms (SIGALRM counted)
 *   timer A       CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN+2, value 111, every 200 ms
 *   timer B       CLOCK_REALTIME, SIGEV_NONE, one shot in 1000 s
 *   timer C       deleted (so the ids have a gap)
 *   timer D       CLOCK_MONOTONIC, SIGEV_THREAD_ID to the worker thread, SIGRTMIN+3,
 *                 value 333, every 200 ms
 *   timer E       CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL SIGRTMIN+4, disarmed
 *
 * Prints READY, waits for SIGUSR1, then checks: every timer id still works
 * (timer_gettime), C's id does not, B's time left and every interval are as set, and
 * the periodic timers keep firing with their values and to their threads. Prints
 * "PASS what" / "FAIL what (detail)" and "DONE fails=N".
 */
#include "victim.h"
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/time.h>

static volatile sig_atomic_t go;
static volatile int alarms, a_hits, a_bad, d_hits, d_bad;
static volatile pid_t worker_tid;
static timer_t ta, tb, tc, td, te;

static void on_usr1(int sig) { (void)sig; go = 1; }
static void on_alrm(int sig) { (void)sig; alarms++; }
static void on_a(int sig, siginfo_t *si, void *uc) {
  (void)sig; (void)uc;
  if (si->si_code == SI_TIMER && si->si_value.sival_int == 111) a_hits++; else a_bad++;
}
static void on_d(int sig, siginfo_t *si, void *uc) {
  (void)sig; (void)uc;
  if (si->si_code == SI_TIMER && si->si_value.sival_int == 333 && gettid() == worker_tid) d_hits++; else d_bad++;
}

#define MUST(x) do { if ((long)(x) < 0) { say("SETUP FAIL %s: %s\n", #x, strerror(errno)); exit(2); } } while (0)

static void *worker(void *arg) {
  (void)arg;
  sigset_t rt3;
  sigemptyset(&rt3);
  sigaddset(&rt3, SIGRTMIN + 3);
  pthread_sigmask(SIG_UNBLOCK, &rt3, NULL);
  worker_tid = gettid();
  for (;;) pause();
  return NULL;
}

static void handle(int sig, void (*fn)(int, siginfo_t *, void *)) {
  struct sigaction sa = { 0 };
  sa.sa_sigaction = fn;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  MUST(sigaction(sig, &sa, NULL));
}

static timer_t make(clockid_t clock, int notify, int signo, int value) {
  struct sigevent sev = { 0 };
  sev.sigev_notify = notify;
  sev.sigev_signo = signo;
  sev.sigev_value.sival_int = value;
  if (notify == SIGEV_THREAD_ID) sev._sigev_un._tid = worker_tid;
  timer_t t;
  MUST(timer_create(clock, &sev, &t));
  return t;
}

static void arm(timer_t t, long value_ms, long interval_ms) {
  struct itimerspec its = { { interval_ms / 1000, interval_ms % 1000 * 1000000 }, { value_ms / 1000, value_ms % 1000 * 1000000 } };
  MUST(timer_settime(t, 0, &its, NULL));
}

/* Waits (up to 10 s, not a timing check) until *n grows by `more`. */
static int grows(volatile int *n, int more) {
  int start = *n;
  for (int i = 0; i < 1000 && *n < start + more; i++) usleep(10000);
  return *n >= start + more;
}

int main(void) {
  signal(SIGUSR1, on_usr1);
  signal(SIGALRM, on_alrm);
  handle(SIGRTMIN + 2, on_a);
  handle(SIGRTMIN + 3, on_d);
  sigset_t rt3;
  sigemptyset(&rt3);
  sigaddset(&rt3, SIGRTMIN + 3);
  sigaddset(&rt3, SIGUSR1);
  sigaddset(&rt3, SIGALRM);
  sigaddset(&rt3, SIGRTMIN + 2);
  pthread_sigmask(SIG_BLOCK, &rt3, NULL);
  pthread_t th;
  MUST(-pthread_create(&th, NULL, worker, NULL));
  /* Only the worker takes SIGRTMIN+3 (it unblocks it); the main thread takes the rest. */
  sigdelset(&rt3, SIGRTMIN + 3);
  pthread_sigmask(SIG_UNBLOCK, &rt3, NULL);
  while (!worker_tid) usleep(1000);

  ta = make(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 2, 111);
  tb = make(CLOCK_REALTIME, SIGEV_NONE, 0, 0);
  tc = make(CLOCK_MONOTONIC, SIGEV_NONE, 0, 0);
  td = make(CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIGRTMIN + 3, 333);
  te = make(CLOCK_PROCESS_CPUTIME_ID, SIGEV_SIGNAL, SIGRTMIN + 4, 444);
  MUST(timer_delete(tc));
  arm(ta, 200, 200);
  arm(tb, 1000000, 0);
  arm(td, 200, 200);
  struct itimerval real = { { 0, 200000 }, { 1, 0 } };
  MUST(setitimer(ITIMER_REAL, &real, NULL));
  grows(&a_hits, 1);
  say("READY pid=%d ids=%ld,%ld,%ld,%ld,%ld\n", getpid(), (long)ta, (long)tb, (long)tc, (long)td, (long)te);
  while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */

  struct itimerspec its;
  self_check(timer_gettime(ta, &its) == 0 && its.it_interval.tv_nsec == 200000000, "timer A keeps its id and interval", "%s", strerror(errno));
  self_check(timer_gettime(tb, &its) == 0 && its.it_value.tv_sec > 900 && its.it_value.tv_sec <= 1000 && its.it_interval.tv_sec == 0,
        "timer B (SIGEV_NONE) keeps its time left", "%ld s left", (long)its.it_value.tv_sec);
  errno = 0;
  self_check(timer_gettime(tc, &its) < 0 && errno == EINVAL, "deleted timer C stays deleted", "errno %d", errno);
  self_check(timer_gettime(td, &its) == 0 && its.it_interval.tv_nsec == 200000000, "timer D keeps its id and interval", "%s", strerror(errno));
  self_check(timer_gettime(te, &its) == 0 && its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0, "timer E exists, disarmed", "%s", strerror(errno));
  self_check(grows(&a_hits, 2) && a_bad == 0, "timer A fires with its value", "%d hits, %d bad", a_hits, a_bad);
  self_check(grows(&d_hits, 2) && d_bad == 0, "timer D fires to the worker thread with its value", "%d hits, %d bad", d_hits, d_bad);
  struct itimerval rv;
  self_check(getitimer(ITIMER_REAL, &rv) == 0 && rv.it_interval.tv_usec == 200000, "ITIMER_REAL interval", "%ld us", (long)rv.it_interval.tv_usec);
  self_check(grows(&alarms, 2), "ITIMER_REAL fires", "%d alarms", alarms);
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
