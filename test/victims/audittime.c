/*
 * Victim for time state that a restore could silently get wrong (an audit, issue 10):
 *
 *   audittime FEATURE...   sets up each feature, prints READY, waits for SIGUSR1, then
 *                          checks each feature itself ("PASS what" / "FAIL what: why"),
 *                          then "DONE fails=N" once every sleeping thread has returned.
 * Features (each sleeping one is a thread that starts its call before READY and must
 * come back from it as if nothing happened: no EINTR, no early return):
 *   nanosleep  nanosleep(3 s)
 *   absleep    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, start + 3 s)
 *   select     select(0, ..., 3 s)
 *   futex      FUTEX_WAIT with a 3 s relative timeout on a word nobody changes: ETIMEDOUT
 *   timers     POSIX timers on CLOCK_BOOTTIME (one shot in 1000 s), CLOCK_PROCESS_CPUTIME_ID
 *              and CLOCK_THREAD_CPUTIME_ID (100 s of CPU, every 50 s), CLOCK_REALTIME with
 *              TIMER_ABSTIME (now + 1000 s): clocks, values and intervals read back.
 * Each sleep's PASS line says how long it took (a restarted relative sleep may take its
 * whole time again: later, never earlier).
 */
#include "victim.h"
#include <linux/futex.h>
#include <pthread.h>
#include <sys/select.h>
#include <sys/syscall.h>

#define SLEEP_S 3

static volatile sig_atomic_t go;
static void on_usr1(int sig) { (void)sig; go = 1; }

#define MUST(x) do { long must_ = (long)(x); if (must_ < 0) { say("SETUP FAIL %s: %s\n", #x, strerror(errno)); exit(2); } } while (0)

static pthread_t sleepers[8];
static int nsleepers;
static volatile int started;

struct sleep_kind { const char *name; int (*call)(double start); };

static double mono(void) { return now_s(); }

static int do_nanosleep(double start) {
  (void)start;
  struct timespec t = { SLEEP_S, 0 };
  return nanosleep(&t, NULL);
}
static int do_absleep(double start) {
  struct timespec t = { (time_t)start + SLEEP_S, (long)((start - (time_t)start) * 1e9) };
  int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, NULL);
  if (r) errno = r;
  return r ? -1 : 0;
}
static int do_select(double start) {
  (void)start;
  struct timeval tv = { SLEEP_S, 0 };
  return select(0, NULL, NULL, NULL, &tv);
}
static int futex_word;
static int do_futex(double start) {
  (void)start;
  struct timespec t = { SLEEP_S, 0 };
  long r = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &t, NULL, 0);
  if (r < 0 && errno == ETIMEDOUT) return 0;
  return r < 0 ? -1 : 1; /* woken: wrong */
}

static const struct sleep_kind kinds[] = {
  { "nanosleep", do_nanosleep }, { "absleep", do_absleep }, { "select", do_select }, { "futex", do_futex },
};

static void *sleeper(void *arg) {
  const struct sleep_kind *k = arg;
  sigset_t all; /* the go signal is main's */
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  double start = mono();
  __sync_fetch_and_add(&started, 1);
  int r = k->call(start);
  int e = errno;
  double took = mono() - start;
  char what[64];
  snprintf(what, sizeof what, "%s returns as it would have", k->name);
  if (r == 0 && took >= SLEEP_S - 0.01) say("PASS %s (%.2f s)\n", what, took);
  else { self_check_fails++; say("FAIL %s: returned %d (%s) after %.2f s\n", what, r, r ? strerror(e) : "", took); }
  return NULL;
}

/* ---- timers ---- */
static timer_t tboot, tproc, tthread, tabs;
static void timers_setup(void) {
  struct sigevent ev = { .sigev_notify = SIGEV_NONE };
  MUST(timer_create(CLOCK_BOOTTIME, &ev, &tboot));
  MUST(timer_create(CLOCK_PROCESS_CPUTIME_ID, &ev, &tproc));
  MUST(timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &tthread));
  MUST(timer_create(CLOCK_REALTIME, &ev, &tabs));
  struct itimerspec one = { { 0, 0 }, { 1000, 0 } }, cpu = { { 50, 0 }, { 100, 0 } };
  MUST(timer_settime(tboot, 0, &one, NULL));
  MUST(timer_settime(tproc, 0, &cpu, NULL));
  MUST(timer_settime(tthread, 0, &cpu, NULL));
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  struct itimerspec abs = { { 0, 0 }, { now.tv_sec + 1000, 0 } };
  MUST(timer_settime(tabs, TIMER_ABSTIME, &abs, NULL));
}
static void timer_is(timer_t t, const char *what, long lo, long hi, long interval) {
  struct itimerspec v;
  int r = timer_gettime(t, &v);
  self_check(r == 0 && v.it_value.tv_sec >= lo && v.it_value.tv_sec <= hi && v.it_interval.tv_sec == interval, what,
             "r %d value %ld interval %ld", r, (long)v.it_value.tv_sec, (long)v.it_interval.tv_sec);
}
static void timers_check(void) {
  timer_is(tboot, "CLOCK_BOOTTIME timer", 900, 1000, 0);
  timer_is(tproc, "CLOCK_PROCESS_CPUTIME_ID timer", 95, 100, 50);
  timer_is(tthread, "CLOCK_THREAD_CPUTIME_ID timer", 95, 100, 50);
  timer_is(tabs, "CLOCK_REALTIME TIMER_ABSTIME timer", 900, 1000, 0);
}

int main(int argc, char **argv) {
  struct sigaction sa = { 0 };
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  int timers = 0;
  for (int a = 1; a < argc; a++) {
    if (strcmp(argv[a], "timers") == 0) { timers_setup(); timers = 1; continue; }
    unsigned i = 0;
    while (i < sizeof kinds / sizeof kinds[0] && strcmp(kinds[i].name, argv[a])) i++;
    if (i == sizeof kinds / sizeof kinds[0]) { say("SETUP FAIL unknown feature %s\n", argv[a]); return 2; }
    MUST(-pthread_create(&sleepers[nsleepers++], NULL, sleeper, (void *)&kinds[i]));
  }
  while (started < nsleepers) usleep(1000);
  usleep(20000); /* into their calls */
  say("READY pid=%d\n", getpid());
  while (!go) pause();
  if (timers) timers_check();
  for (int i = 0; i < nsleepers; i++) pthread_join(sleepers[i], NULL);
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
