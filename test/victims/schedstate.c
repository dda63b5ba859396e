/*
 * Victim for scheduling and per-process knobs (src/resources/process/sched.ts):
 *
 *   main thread    nice 7, then SCHED_RR priority 5 with SCHED_RESET_ON_FORK
 *   second thread  SCHED_BATCH nice 4, affinity CPU 0 only
 *   process        oom_score_adj 321, coredump_filter 0x27
 *
 * Prints READY, waits for SIGUSR1, checks every knob itself ("PASS what" /
 * "FAIL what (detail)") and prints "DONE fails=N".
 */
#include "victim.h"
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>

struct attr { uint32_t size, policy; uint64_t flags; int32_t nice; uint32_t prio; uint64_t runtime, deadline, period; uint32_t umin, umax; };

static volatile sig_atomic_t go;
static volatile pid_t worker_tid;
static void on_usr1(int sig) { (void)sig; go = 1; }

#define MUST(x) do { if ((long)(x) < 0) { say("SETUP FAIL %s: %s\n", #x, strerror(errno)); exit(2); } } while (0)

static int getattr(pid_t tid, struct attr *a) {
  memset(a, 0, sizeof *a);
  return syscall(SYS_sched_getattr, tid, a, sizeof *a, 0);
}

static void *worker(void *arg) {
  (void)arg;
  MUST(setpriority(PRIO_PROCESS, 0, 4)); /* this thread only (Linux) */
  struct sched_param p = { 0 };
  MUST(sched_setscheduler(0, SCHED_BATCH, &p));
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  MUST(sched_setaffinity(0, sizeof set, &set));
  worker_tid = gettid();
  for (;;) pause();
  return NULL;
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f || fputs(text, f) < 0 || fclose(f) != 0) { say("SETUP FAIL write %s: %s\n", path, strerror(errno)); exit(2); }
}

static long read_num(const char *path, int base) {
  char buf[64] = { 0 };
  FILE *f = fopen(path, "r");
  if (!f) return -99999;
  if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
  fclose(f);
  return strtol(buf, NULL, base);
}

int main(void) {
  signal(SIGUSR1, on_usr1);
  sigset_t usr1;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, NULL); /* the worker inherits the block */
  pthread_t th;
  MUST(-pthread_create(&th, NULL, worker, NULL));
  pthread_sigmask(SIG_UNBLOCK, &usr1, NULL);
  while (!worker_tid) usleep(1000);

  MUST(setpriority(PRIO_PROCESS, 0, 7));
  struct sched_param p = { .sched_priority = 5 };
  MUST(sched_setscheduler(0, SCHED_RR | SCHED_RESET_ON_FORK, &p));
  write_file("/proc/self/oom_score_adj", "321");
  write_file("/proc/self/coredump_filter", "0x27");

  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */

  struct attr a;
  self_check(getattr(0, &a) == 0 && a.policy == SCHED_RR && a.prio == 5, "main thread SCHED_RR priority 5", "policy %u prio %u", a.policy, a.prio);
  self_check((a.flags & 1) != 0, "main thread SCHED_RESET_ON_FORK", "flags 0x%lx", (unsigned long)a.flags);
  errno = 0;
  int nice = getpriority(PRIO_PROCESS, 0); /* sched_getattr shows no nice for SCHED_RR */
  self_check(nice == 7 && errno == 0, "main thread nice 7", "nice %d", nice);
  self_check(getattr(worker_tid, &a) == 0 && a.policy == SCHED_BATCH && a.nice == 4, "worker SCHED_BATCH nice 4", "policy %u nice %d", a.policy, a.nice);
  cpu_set_t set;
  CPU_ZERO(&set);
  int aff = sched_getaffinity(worker_tid, sizeof set, &set);
  self_check(aff == 0 && CPU_COUNT(&set) == 1 && CPU_ISSET(0, &set), "worker affinity CPU 0", "%d CPUs", CPU_COUNT(&set));
  self_check(read_num("/proc/self/oom_score_adj", 10) == 321, "oom_score_adj 321", "%ld", read_num("/proc/self/oom_score_adj", 10));
  self_check(read_num("/proc/self/coredump_filter", 16) == 0x27, "coredump_filter 0x27", "0x%lx", read_num("/proc/self/coredump_filter", 16));
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
