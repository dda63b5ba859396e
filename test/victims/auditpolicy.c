/*
 * Victim for the process contract's known losses (issue 10, docs/saved-state.md
 * "Process contract (complete list)"):
 *
 *   auditpolicy FEATURE...   sets up each feature, prints READY, waits for SIGUSR1, then
 *                            checks each feature itself ("PASS what" / "FAIL what: why"),
 *                            then "DONE fails=N".
 * Features:
 *   persona    a worker thread with its own personality (UNAME26), the main thread without:
 *              both come back as they were (personality is per task).
 *   mempolicy  NUMA memory policy: main thread MPOL_INTERLEAVE|MPOL_F_STATIC_NODES on
 *              node 0, a worker MPOL_PREFERRED on node 0, a second worker the default (a
 *              restored thread must not inherit main's); an area with MPOL_BIND on its
 *              middle page only (mbind splits it) and one with MPOL_LOCAL. Each read back
 *              with get_mempolicy (MPOL_F_ADDR for the areas).
 *   membarrier registered for MEMBARRIER_CMD_PRIVATE_EXPEDITED and its SYNC_CORE variant
 *              (not GLOBAL_EXPEDITED): after restore those commands work (EPERM without
 *              the registration) and GET_REGISTRATIONS shows the same set.
 *   nonroot    the process drops to uid/gid 65534 (no capabilities): it must round-trip.
 *   nocaps     the process stays uid 0 and drops every capability (capset).
 *   landlock   after nonroot or nocaps: a Landlock domain (no exec anywhere); the dump must
 *              refuse it.
 *   stopseen   a child stopped with SIGSTOP whose stop the parent collected
 *              (waitpid(WUNTRACED)) and whose SIGCHLD it took: after restore the child is
 *              still stopped, with no second stop report and no SIGCHLD for the parent.
 *   stopunseen a child stopped by SIGTSTP whose stop the parent has not collected (and its
 *              SIGCHLD taken): after restore waitpid(WUNTRACED) reports it once, with
 *              SIGTSTP, and no SIGCHLD is pending.
 */
#include "victim.h"
#include "landlock.h"
#include <linux/capability.h>
#include <linux/membarrier.h>
#include <linux/mempolicy.h>
#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif
#include <pthread.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

static volatile sig_atomic_t go;
static void on_usr1(int sig) { (void)sig; go = 1; }

#define MUST(x) do { long must_ = (long)(x); if (must_ < 0) { say("SETUP FAIL %s: %s\n", #x, strerror(errno)); exit(2); } } while (0)

static long get_mempolicy_(int *mode, unsigned long *mask, unsigned long maxnode, void *addr, unsigned long flags) {
  return syscall(SYS_get_mempolicy, mode, mask, maxnode, addr, flags);
}

/* ---- threads: persona and mempolicy ---- */
struct worker { pthread_t t; volatile int ready; int persona; int mode; const char *name; };
static struct worker workers[3];
static int nworkers;

static void check_policy(const char *what, void *addr, int want_mode, unsigned long want_mask) {
  int mode = -1;
  unsigned long mask[16] = {0};
  long r = get_mempolicy_(&mode, mask, 1024, addr, addr ? MPOL_F_ADDR : 0);
  self_check(r == 0 && mode == want_mode && mask[0] == want_mask, what, "r %ld mode %#x mask %#lx (want %#x %#lx)", r, mode, mask[0], want_mode, want_mask);
}

static void *worker_main(void *arg) {
  struct worker *w = arg;
  sigset_t s;
  sigfillset(&s);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  if (w->persona >= 0) MUST(personality(w->persona));
  unsigned long node0 = 1;
  if (w->mode == MPOL_PREFERRED) MUST(syscall(SYS_set_mempolicy, MPOL_PREFERRED, &node0, 64));
  w->ready = 1;
  while (!go) usleep(1000);
  char what[64];
  if (w->persona >= 0) {
    int p = personality(0xffffffff);
    snprintf(what, sizeof what, "%s personality", w->name);
    self_check(p == w->persona, what, "%#x, want %#x", p, w->persona);
    struct utsname u;
    uname(&u);
    snprintf(what, sizeof what, "%s uname is 2.6 (UNAME26)", w->name);
    self_check(strncmp(u.release, "2.6.", 4) == 0, what, "release %s", u.release);
  }
  if (w->mode >= 0) {
    snprintf(what, sizeof what, "%s memory policy", w->name);
    check_policy(what, NULL, w->mode, w->mode == MPOL_DEFAULT ? 0 : 1);
  }
  return NULL;
}

static void start_worker(const char *name, int persona, int mode) {
  struct worker *w = &workers[nworkers++];
  w->name = name;
  w->persona = persona;
  w->mode = mode;
  MUST(-pthread_create(&w->t, NULL, worker_main, w));
  while (!w->ready) usleep(1000);
}

static void persona_setup(void) { start_worker("persona worker", PER_LINUX | UNAME26, -1); }
static void persona_check(void) {
  int p = personality(0xffffffff);
  self_check(p == PER_LINUX, "main thread personality", "%#x", p);
}

static char *areas;
static long pg;
static void mempolicy_setup(void) {
  pg = sysconf(_SC_PAGESIZE);
  unsigned long node0 = 1;
  areas = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  MUST(areas == MAP_FAILED ? -1 : 0);
  memset(areas, 7, 8 * pg);
  MUST(syscall(SYS_mbind, areas + pg, pg, MPOL_BIND, &node0, 64, 0));
  MUST(syscall(SYS_mbind, areas + 5 * pg, 2 * pg, MPOL_LOCAL, NULL, 0, 0));
  /* Workers first: they would inherit main's policy. */
  start_worker("preferred worker", -1, MPOL_PREFERRED);
  start_worker("default worker", -1, MPOL_DEFAULT);
  MUST(syscall(SYS_set_mempolicy, MPOL_INTERLEAVE | MPOL_F_STATIC_NODES, &node0, 64));
}
static void mempolicy_check(void) {
  check_policy("main memory policy (interleave, static nodes)", NULL, MPOL_INTERLEAVE | MPOL_F_STATIC_NODES, 1);
  check_policy("area before the bound page: default", areas, MPOL_DEFAULT, 0);
  check_policy("bound page: MPOL_BIND node 0", areas + pg, MPOL_BIND, 1);
  check_policy("area after the bound page: default", areas + 2 * pg, MPOL_DEFAULT, 0);
  check_policy("local pages: MPOL_LOCAL", areas + 6 * pg, MPOL_LOCAL, 0);
  int same = 1;
  for (long i = 0; i < 8 * pg; i++) same &= areas[i] == 7;
  self_check(same, "policied areas keep their contents", "differ");
}

/* ---- membarrier ---- */
static long membarrier_(int cmd) { return syscall(SYS_membarrier, cmd, 0, 0); }
static long registered;
static void membarrier_setup(void) {
  MUST(membarrier_(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED));
  MUST(membarrier_(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE));
  registered = membarrier_(MEMBARRIER_CMD_GET_REGISTRATIONS);
  MUST(registered);
}
static void membarrier_check(void) {
  long r = membarrier_(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
  self_check(r == 0, "membarrier PRIVATE_EXPEDITED works", "%ld (%s)", r, strerror(errno));
  r = membarrier_(MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE);
  self_check(r == 0, "membarrier PRIVATE_EXPEDITED_SYNC_CORE works", "%ld (%s)", r, strerror(errno));
  r = membarrier_(MEMBARRIER_CMD_GET_REGISTRATIONS);
  self_check(r == registered, "membarrier registrations", "%#lx, want %#lx", r, registered);
}

/* ---- nonroot, nocaps (landlock: landlock.h) ---- */
static void nonroot_setup(void) {
  MUST(setgroups(0, NULL));
  MUST(setresgid(65534, 65534, 65534));
  MUST(setresuid(65534, 65534, 65534));
}
static void nonroot_check(void) {
  self_check(getuid() == 65534 && geteuid() == 65534, "still uid 65534", "uid %d euid %d", getuid(), geteuid());
}
static void nocaps_setup(void) {
  struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct d[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
  MUST(syscall(SYS_capset, &h, d));
}
static void nocaps_check(void) {
  struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct d[2];
  MUST(syscall(SYS_capget, &h, d));
  self_check(getuid() == 0 && d[0].permitted == 0 && d[1].permitted == 0 && d[0].effective == 0, "uid 0 without capabilities", "uid %d permitted %#x", getuid(), d[0].permitted);
}

/* ---- stopped children ---- */
static pid_t seen_child, unseen_child;
static void block_sigchld(void) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGCHLD);
  sigprocmask(SIG_BLOCK, &s, NULL);
}
static void take_sigchld(void) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGCHLD);
  struct timespec ts = { 5, 0 };
  MUST(sigtimedwait(&s, NULL, &ts));
}
static pid_t stopped_child(int sig) {
  pid_t c = fork();
  if (c == 0) {
    /* A group of its own (its parent's is another of the same session): SIGTSTP to an
     * orphaned group would be dropped. */
    setpgid(0, 0);
    kill(getpid(), sig);
    for (;;) pause();
  }
  MUST(c);
  return c;
}
static void wait_stopped(pid_t c) {
  for (int i = 0; i < 5000; i++) {
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", c);
    FILE *f = fopen(path, "r");
    if (f) {
      size_t n = fread(buf, 1, sizeof buf - 1, f);
      fclose(f);
      buf[n] = 0;
      char *p = strrchr(buf, ')');
      if (p && p[2] == 'T') return;
    }
    usleep(1000);
  }
  say("SETUP FAIL child %d never stopped\n", c);
  exit(2);
}
static int child_state(pid_t c) {
  char path[64], buf[256];
  snprintf(path, sizeof path, "/proc/%d/stat", c);
  FILE *f = fopen(path, "r");
  if (!f) return '?';
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')');
  return p ? p[2] : '?';
}
static int sigchld_pending(void) {
  sigset_t p;
  sigpending(&p);
  return sigismember(&p, SIGCHLD);
}
static void stopseen_setup(void) {
  block_sigchld();
  seen_child = stopped_child(SIGSTOP);
  int st;
  MUST(waitpid(seen_child, &st, WUNTRACED));
  take_sigchld();
  say("CHILD pid=%d\n", seen_child);
}
static void stopseen_check(void) {
  self_check(!sigchld_pending(), "no SIGCHLD pending for the parent", "SIGCHLD pending");
  int st = 0;
  pid_t w = waitpid(seen_child, &st, WUNTRACED | WNOHANG);
  self_check(w == 0, "collected stop is not reported again", "waitpid gave %d status %#x", w, st);
  self_check(child_state(seen_child) == 'T', "collected child still stopped", "state %c", child_state(seen_child));
  kill(seen_child, SIGKILL);
  waitpid(seen_child, NULL, 0);
}
static void stopunseen_setup(void) {
  block_sigchld();
  unseen_child = stopped_child(SIGTSTP);
  wait_stopped(unseen_child);
  take_sigchld();
  say("CHILD pid=%d\n", unseen_child);
}
static void stopunseen_check(void) {
  self_check(!sigchld_pending(), "no SIGCHLD pending for the parent", "SIGCHLD pending");
  int st = 0;
  pid_t w = waitpid(unseen_child, &st, WUNTRACED | WNOHANG);
  self_check(w == unseen_child && WIFSTOPPED(st) && WSTOPSIG(st) == SIGTSTP, "uncollected stop reported, by SIGTSTP", "waitpid gave %d status %#x", w, st);
  w = waitpid(unseen_child, &st, WUNTRACED | WNOHANG);
  self_check(w == 0, "uncollected stop reported once", "waitpid gave %d status %#x", w, st);
  kill(unseen_child, SIGKILL);
  waitpid(unseen_child, NULL, 0);
}

static const struct victim_feature features[] = {
  { "persona", persona_setup, persona_check },
  { "mempolicy", mempolicy_setup, mempolicy_check },
  { "membarrier", membarrier_setup, membarrier_check },
  { "nonroot", nonroot_setup, nonroot_check },
  { "nocaps", nocaps_setup, nocaps_check },
  { "landlock", landlock_setup, landlock_check },
  { "stopseen", stopseen_setup, stopseen_check },
  { "stopunseen", stopunseen_setup, stopunseen_check },
};
#define NFEAT (sizeof features / sizeof features[0])

int main(int argc, char **argv) {
  struct sigaction sa = { 0 };
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  run_features(features, NFEAT, argc, argv, &go);
  for (int i = 0; i < nworkers; i++) pthread_join(workers[i].t, NULL);
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
