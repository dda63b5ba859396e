/*
 * Victim for per-process and per-thread knobs (resources/process/misc.ts, threads.ts):
 *
 *   knobs ok         THP disabled except where advised (PR_THP_DISABLE_EXCEPT_ADVISED,
 *                    or plainly disabled on kernels without it); a worker thread with its
 *                    own timer slack, parent-death signal, name and I/O priority; the
 *                    main thread's timer slack and I/O priority (idle class).
 *   knobs mseal      also an area sealed with mseal(2) (the dump must refuse it)
 *   knobs autogroup  also its own session whose autogroup has nice 5 (refused)
 *   knobs mce        also the early machine-check kill policy (not saved: refused)
 *
 * Prints "READY pid=N", waits for SIGUSR1, then checks each knob in its own thread:
 * "PASS what" / "FAIL what" lines, then "DONE fails=N".
 */
#include "victim.h"
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1 << 1)
#endif
#define SYS_mseal_ 462
/* idle class; best-effort level 6 (class 2 << 13) */
#define IOPRIO_MAIN (3 << 13)
#define IOPRIO_WORKER ((2 << 13) | 6)

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }
static long thp_want;
static volatile int worker_ready, checked;

#define MUST(x) do { if ((long)(x) < 0) { say("SETUP FAIL %s: %s\n", #x, strerror(errno)); exit(2); } } while (0)

static void *worker(void *arg) {
  (void)arg;
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  MUST(prctl(PR_SET_TIMERSLACK, 77777));
  MUST(prctl(PR_SET_PDEATHSIG, SIGWINCH));
  MUST(prctl(PR_SET_NAME, "knob-worker"));
  MUST(syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, IOPRIO_WORKER));
  worker_ready = 1;
  while (!go) usleep(10000);
  long slack = prctl(PR_GET_TIMERSLACK);
  self_check(slack == 77777, "worker timer slack", "%ld", slack);
  int sig = -1;
  prctl(PR_GET_PDEATHSIG, &sig);
  self_check(sig == SIGWINCH, "worker parent-death signal", "%d", sig);
  char name[16] = "";
  prctl(PR_GET_NAME, name);
  self_check(strcmp(name, "knob-worker") == 0, "worker name", "%s", name);
  long io = syscall(SYS_ioprio_get, 1, 0);
  self_check(io == IOPRIO_WORKER, "worker I/O priority", "%ld", io);
  checked = 1;
  return NULL;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "ok";
  struct sigaction sa = { .sa_handler = on_usr1 };
  MUST(sigaction(SIGUSR1, &sa, NULL));
  if (prctl(PR_SET_THP_DISABLE, 1, PR_THP_DISABLE_EXCEPT_ADVISED, 0, 0) == 0) thp_want = 1 | PR_THP_DISABLE_EXCEPT_ADVISED;
  else { MUST(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)); thp_want = 1; }
  MUST(prctl(PR_SET_TIMERSLACK, 4242));
  MUST(syscall(SYS_ioprio_set, 1, 0, IOPRIO_MAIN));
  if (strcmp(mode, "mseal") == 0) {
    void *p = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) MUST(-1);
    MUST(syscall(SYS_mseal_, p, 8192, 0));
  }
  if (strcmp(mode, "mce") == 0) MUST(prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0));
  if (strcmp(mode, "autogroup") == 0) {
    MUST(setsid());
    char cur[64] = "";
    FILE *r = fopen("/proc/self/autogroup", "r");
    if (!r || !fgets(cur, sizeof cur, r) || cur[0] != '/') {
      say("SKIP no autogroup of its own after setsid\n"); /* kernel.sched_autogroup_enabled=0 */
      return 0;
    }
    fclose(r);
    FILE *f = fopen("/proc/self/autogroup", "w");
    if (!f || fprintf(f, "5") < 0 || fclose(f) != 0) MUST(-1);
  }
  pthread_t th;
  MUST(-pthread_create(&th, NULL, worker, NULL));
  while (!worker_ready) usleep(1000);
  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000);
  long thp = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
  self_check(thp == thp_want, "THP disable flags", "%ld, want %ld", thp, thp_want);
  long slack = prctl(PR_GET_TIMERSLACK);
  self_check(slack == 4242, "main timer slack", "%ld", slack);
  long io = syscall(SYS_ioprio_get, 1, 0);
  self_check(io == IOPRIO_MAIN, "main I/O priority", "%ld", io);
  pthread_kill(th, SIGUSR1); /* blocked there: only ends its sleep sooner, if at all */
  pthread_join(th, NULL);
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
