/*
 * Victim for process, thread and signal state that a restore could silently get wrong
 * (an audit, issue 10):
 *
 *   auditproc FEATURE...   sets up each feature, prints READY, waits for SIGUSR1, then
 *                          checks each feature itself ("PASS what" / "FAIL what: why"),
 *                          then "DONE fails=N".
 * Features:
 *   thread    a worker with its own sigaltstack and a signal pending for it alone holds a
 *             robust mutex; after restore it checks both, then exits holding the mutex:
 *             main must get EOWNERDEAD (the robust list) and pthread_join must return
 *             (clear_child_tid).
 *   sigflags  handlers with SA_RESETHAND, SA_NODEFER, SA_RESTART|SA_ONSTACK: flags read
 *             back, and SA_RESETHAND still resets the handler after one delivery.
 *   rtqueue   SIGRTMIN+3 queued three times with values 1, 2, 3 (blocked), and SIGUSR2
 *             sent with kill() by a child that then exits (SIGCHLD pending too): every
 *             siginfo comes back (value, si_pid, si_code, CLD_EXITED).
 *   nocldwait SIGCHLD ignored: a child forked after restore is reaped by the kernel; a
 *             zombie made before (rtqueue) is still there for waitpid.
 *   fscreds   setfsgid(4321), setfsuid(1234) while euid stays 0.
 *   dumpable  PR_SET_DUMPABLE 0.
 *   chroot    chroot into the working directory: / is that directory after restore.
 *   exefile   /proc/self/exe set to /bin/true (PR_SET_MM_EXE_FILE).
 *   traced    a child the process traces (PTRACE_SEIZE): the dump must refuse it.
 *   landlock  a Landlock domain (no exec anywhere): the dump must refuse it.
 *   exitsig   a child cloned with SIGUSR2 as its exit signal (no SIGCHLD), one with none, and
 *             a zombie cloned with SIGUSR2: after restore each is found only by
 *             waitpid(__WCLONE), the first one's exit sends SIGUSR2, the zombie's not again.
 *   deadleader  the main thread exits (pthread_exit) after READY; a second thread waits for
 *             the go signal and checks the others: refused at dump.
 *   sud       syscall user dispatch on (PR_SET_SYSCALL_USER_DISPATCH, selector at ALLOW):
 *             refused at dump (a restored thread would run its syscalls natively).
 */
#include "victim.h"
#include "landlock.h"
#include <pthread.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static volatile sig_atomic_t go;
static void on_usr1(int sig) { (void)sig; go = 1; }

#define MUST(x) do { long must_ = (long)(x); if (must_ < 0) { say("SETUP FAIL %s: %s\n", #x, strerror(errno)); exit(2); } } while (0)

/* ---- thread ---- */
static pthread_mutex_t robust;
static pthread_t worker;
static volatile int worker_ready, worker_go;
static char worker_alt[32 * 1024];
static volatile pid_t worker_tid;

static void *worker_main(void *arg) {
  (void)arg;
  worker_tid = gettid();
  stack_t ss = { .ss_sp = worker_alt, .ss_size = sizeof worker_alt };
  MUST(sigaltstack(&ss, NULL));
  sigset_t s; /* every signal: the process's signals (the go signal, queued ones) are main's */
  sigfillset(&s);
  pthread_sigmask(SIG_BLOCK, &s, NULL);
  MUST(syscall(SYS_tgkill, getpid(), gettid(), SIGWINCH)); /* pending for this thread only */
  MUST(pthread_mutex_lock(&robust));
  worker_ready = 1;
  while (!worker_go) usleep(1000);
  stack_t now;
  sigaltstack(NULL, &now);
  self_check(now.ss_sp == worker_alt && now.ss_size == sizeof worker_alt, "worker sigaltstack", "sp %p size %zu", now.ss_sp, now.ss_size);
  sigset_t p;
  sigpending(&p);
  self_check(sigismember(&p, SIGWINCH), "worker pending SIGWINCH", "not pending");
  return NULL; /* exits holding the robust mutex */
}

static void thread_setup(void) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&robust, &a);
  MUST(-pthread_create(&worker, NULL, worker_main, NULL));
  while (!worker_ready) usleep(1000);
}

static void thread_check(void) {
  sigset_t p;
  sigpending(&p);
  self_check(!sigismember(&p, SIGWINCH), "main thread has not the worker's pending signal", "SIGWINCH pending in main");
  worker_go = 1;
  int j = pthread_join(worker, NULL); /* returns only if the kernel clears and wakes the tid word */
  self_check(j == 0, "pthread_join of the worker", "error %d", j);
  int r = pthread_mutex_lock(&robust); /* EOWNERDEAD only through the worker's robust list */
  self_check(r == EOWNERDEAD, "robust mutex of a dead owner", "lock returned %d", r);
}

/* ---- sigflags ---- */
static volatile int resethand_hits, nodefer_depth, nodefer_max;
static void on_reset(int s) { (void)s; resethand_hits++; }
static void on_nodefer(int s) {
  nodefer_depth++;
  if (nodefer_depth > nodefer_max) nodefer_max = nodefer_depth;
  if (nodefer_depth < 2) raise(s); /* delivered at once, nested, only with SA_NODEFER */
  nodefer_depth--;
}
static void on_plain(int s) { (void)s; }

static void sigflags_setup(void) {
  struct sigaction sa = { 0 };
  sa.sa_handler = on_reset;
  sa.sa_flags = SA_RESETHAND;
  MUST(sigaction(SIGHUP, &sa, NULL));
  sa.sa_handler = on_nodefer;
  sa.sa_flags = SA_NODEFER;
  MUST(sigaction(SIGPROF, &sa, NULL));
  sa.sa_handler = on_plain;
  sa.sa_flags = SA_RESTART | SA_ONSTACK;
  sigaddset(&sa.sa_mask, SIGQUIT);
  MUST(sigaction(SIGTTIN, &sa, NULL));
}

static void sigflags_check(void) {
  struct sigaction o;
  sigaction(SIGHUP, NULL, &o);
  self_check(o.sa_handler == on_reset && (o.sa_flags & SA_RESETHAND), "SA_RESETHAND flag", "flags %#x", o.sa_flags);
  raise(SIGHUP);
  sigaction(SIGHUP, NULL, &o);
  self_check(resethand_hits == 1 && o.sa_handler == SIG_DFL, "SA_RESETHAND resets after one delivery", "hits %d handler %p", resethand_hits, (void *)o.sa_handler);
  raise(SIGPROF);
  self_check(nodefer_max == 2, "SA_NODEFER nests", "depth %d", nodefer_max);
  sigaction(SIGTTIN, NULL, &o);
  self_check((o.sa_flags & (SA_RESTART | SA_ONSTACK)) == (SA_RESTART | SA_ONSTACK) && sigismember(&o.sa_mask, SIGQUIT) && o.sa_restorer != NULL,
             "SA_RESTART|SA_ONSTACK with mask and restorer", "flags %#x", o.sa_flags);
}

/* ---- rtqueue ---- */
#define RTQ (SIGRTMIN + 3)
static pid_t killer;
static void rtqueue_setup(void) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, RTQ);
  sigaddset(&s, SIGUSR2);
  sigaddset(&s, SIGCHLD);
  MUST(sigprocmask(SIG_BLOCK, &s, NULL));
  for (int i = 1; i <= 3; i++) MUST(sigqueue(getpid(), RTQ, (union sigval){ .sival_int = i }));
  killer = fork();
  if (killer == 0) { kill(getppid(), SIGUSR2); _exit(7); }
  MUST(killer);
  /* Wait until the child is a zombie (its SIGCHLD queued), without reaping it. */
  siginfo_t si;
  MUST(waitid(P_PID, killer, &si, WEXITED | WNOWAIT));
  say("CHILD pid=%d\n", killer);
}

static void rtqueue_check(void) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, RTQ);
  struct timespec zero = { 0, 0 };
  siginfo_t si;
  int got[4] = { 0 }, n = 0, good = 1;
  while (n < 4 && sigtimedwait(&s, &si, &zero) == RTQ) {
    got[n++] = si.si_value.sival_int;
    good &= si.si_code == SI_QUEUE && si.si_pid == getpid();
  }
  self_check(n == 3 && good && got[0] == 1 && got[1] == 2 && got[2] == 3, "three queued RT signals in order with their values", "n %d values %d %d %d", n, got[0], got[1], got[2]);
  sigemptyset(&s);
  sigaddset(&s, SIGUSR2);
  int sig = sigtimedwait(&s, &si, &zero);
  self_check(sig == SIGUSR2 && si.si_code == SI_USER && si.si_pid == killer, "SIGUSR2 from kill() keeps its sender", "sig %d code %d pid %d (want %d)", sig, sig > 0 ? si.si_code : 0, sig > 0 ? si.si_pid : 0, killer);
  sigemptyset(&s);
  sigaddset(&s, SIGCHLD);
  sig = sigtimedwait(&s, &si, &zero);
  struct sigaction chld;
  sigaction(SIGCHLD, NULL, &chld);
  if (chld.sa_handler == SIG_IGN) /* nocldwait came after: setting SIG_IGN discarded it */
    self_check(sig < 0, "pending SIGCHLD discarded by SIG_IGN", "sig %d pending", sig);
  else
    self_check(sig == SIGCHLD && si.si_code == CLD_EXITED && si.si_pid == killer && si.si_status == 7, "pending SIGCHLD with CLD_EXITED", "sig %d code %d pid %d status %d", sig, sig > 0 ? si.si_code : 0, sig > 0 ? si.si_pid : 0, sig > 0 ? si.si_status : 0);
  int st = 0;
  self_check(waitpid(killer, &st, 0) == killer && WEXITSTATUS(st) == 7, "the zombie child reaped with its status", "status %#x", st);
}

/* ---- nocldwait ---- */
static void nocldwait_setup(void) { signal(SIGCHLD, SIG_IGN); }
static void nocldwait_check(void) {
  pid_t c = fork();
  if (c == 0) _exit(0);
  int st;
  pid_t w = waitpid(c, &st, 0); /* the kernel reaps it: ECHILD once it has exited */
  self_check(w < 0 && errno == ECHILD, "SIGCHLD ignored: children reaped by the kernel", "waitpid returned %d", w);
}

/* ---- fscreds ---- */
static void fscreds_setup(void) {
  setfsgid(4321);
  setfsuid(1234);
  if ((int)setfsuid(-1) != 1234) { say("SETUP FAIL setfsuid\n"); exit(2); }
}
static void fscreds_check(void) {
  int u = setfsuid(-1), g = setfsgid(-1);
  self_check(u == 1234 && g == 4321 && geteuid() == 0, "fsuid and fsgid", "fsuid %d fsgid %d euid %d", u, g, geteuid());
}

/* ---- dumpable ---- */
static void dumpable_setup(void) { MUST(prctl(PR_SET_DUMPABLE, 0)); }
static void dumpable_check(void) {
  int d = prctl(PR_GET_DUMPABLE);
  self_check(d == 0, "PR_SET_DUMPABLE 0", "dumpable %d", d);
}

/* ---- chroot ---- */
static void chroot_setup(void) {
  int fd = open("chroot-marker", O_CREAT | O_WRONLY, 0600);
  MUST(fd);
  close(fd);
  MUST(chmod(".", 0755)); /* searchable with fsuid 1234 (fscreds) */
  MUST(chroot("."));
}
static void chroot_check(void) {
  struct stat st;
  int r = stat("/chroot-marker", &st);
  self_check(r == 0 && stat("/usr", &st) != 0, "chroot root", "marker %d", r);
}

/* ---- exefile ---- */
static void exefile_setup(void) {
  int fd = open("/bin/true", O_RDONLY);
  MUST(fd);
  MUST(prctl(PR_SET_MM, PR_SET_MM_EXE_FILE, fd, 0, 0));
  close(fd);
}
static void exefile_check(void) {
  char exe[256] = { 0 };
  readlink("/proc/self/exe", exe, sizeof exe - 1);
  self_check(strcmp(exe, "/usr/bin/true") == 0, "/proc/self/exe set by PR_SET_MM_EXE_FILE", "exe %s", exe);
}

/* ---- traced ---- */
static pid_t tracee;
static void traced_setup(void) {
  tracee = fork();
  if (tracee == 0) { for (;;) pause(); }
  MUST(tracee);
  MUST(ptrace(PTRACE_SEIZE, tracee, 0, 0));
}
static void traced_check(void) {
  self_check(kill(tracee, 0) == 0, "traced child alive", "gone");
  kill(tracee, SIGKILL);
}

/* ---- exitsig ---- */
static pid_t clone_usr2, clone_none, clone_zombie;
static volatile sig_atomic_t usr2_hits;
static void on_usr2(int s) { (void)s; usr2_hits++; }
static pid_t clone_with(int exit_signal) {
  pid_t c = syscall(SYS_clone, exit_signal, 0, 0, 0, 0); /* fork-like, with that exit signal */
  if (c == 0) { for (;;) pause(); }
  return c;
}
static void exitsig_setup(void) {
  signal(SIGUSR2, on_usr2);
  MUST(clone_usr2 = clone_with(SIGUSR2));
  MUST(clone_none = clone_with(0));
  clone_zombie = syscall(SYS_clone, SIGUSR2, 0, 0, 0, 0);
  if (clone_zombie == 0) _exit(5);
  MUST(clone_zombie);
  siginfo_t si;
  MUST(waitid(P_PID, clone_zombie, &si, WEXITED | WNOWAIT | __WCLONE));
  while (usr2_hits == 0) usleep(1000);
  say("CHILD pid=%d\nCHILD pid=%d\nCHILD pid=%d\n", clone_usr2, clone_none, clone_zombie);
}
static void exitsig_check(void) {
  int st;
  self_check(waitpid(clone_usr2, &st, WNOHANG) < 0 && errno == ECHILD, "a clone child is not waited without __WCLONE", "errno %d", errno);
  kill(clone_usr2, SIGKILL);
  kill(clone_none, SIGKILL);
  pid_t a = waitpid(clone_usr2, &st, __WCLONE), b = waitpid(clone_none, &st, __WCLONE);
  self_check(a == clone_usr2 && b == clone_none, "clone children reaped with __WCLONE", "got %d %d", a, b);
  self_check(usr2_hits == 2, "exit signal SIGUSR2 sent once per child", "SIGUSR2 %d times", (int)usr2_hits);
  pid_t z = waitpid(clone_zombie, &st, __WCLONE);
  self_check(z == clone_zombie && WEXITSTATUS(st) == 5, "clone zombie reaped with __WCLONE and its status", "got %d status %#x", z, st);
}

/* ---- sud ---- */
#ifndef PR_SET_SYSCALL_USER_DISPATCH
#define PR_SET_SYSCALL_USER_DISPATCH 59
#define PR_SYS_DISPATCH_ON 1
#endif
static volatile char selector; /* SYSCALL_DISPATCH_FILTER_ALLOW (0) / BLOCK (1) */
static volatile sig_atomic_t sigsys_hits;
static void on_sigsys(int s, siginfo_t *si, void *uc) { (void)s; (void)si; (void)uc; selector = 0; sigsys_hits++; }
static void sud_setup(void) {
  struct sigaction sa = { 0 };
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  MUST(sigaction(SIGSYS, &sa, NULL));
  /* The range [0, 1) is the only one allowed: everything else is dispatched by the selector. */
  MUST(prctl(PR_SET_SYSCALL_USER_DISPATCH, PR_SYS_DISPATCH_ON, 0, 1, &selector));
}
static void sud_check(void) {
  selector = 1;
  syscall(SYS_getppid); /* with dispatch on: SIGSYS, whose handler allows again */
  selector = 0;
  self_check(sigsys_hits == 1, "syscall user dispatch", "SIGSYS %d times", (int)sigsys_hits);
}

static const struct { const char *name; void (*setup)(void), (*check)(void); } features[] = {
  { "thread", thread_setup, thread_check }, { "sigflags", sigflags_setup, sigflags_check },
  { "rtqueue", rtqueue_setup, rtqueue_check }, { "nocldwait", nocldwait_setup, nocldwait_check },
  { "fscreds", fscreds_setup, fscreds_check }, { "dumpable", dumpable_setup, dumpable_check },
  { "chroot", chroot_setup, chroot_check }, { "exefile", exefile_setup, exefile_check },
  { "traced", traced_setup, traced_check }, { "landlock", landlock_setup, landlock_check },
  { "sud", sud_setup, sud_check }, { "exitsig", exitsig_setup, exitsig_check },
};
#define NFEAT (sizeof features / sizeof features[0])

static int nargs;
static char **args;
static int dead_leader;

/* Waits for the go signal, runs each chosen feature's check, then says DONE (and exits the process). */
static void *run_checks(void *unused) {
  (void)unused;
  while (!go) pause();
  for (int a = 1; a < nargs; a++)
    for (unsigned i = 0; i < NFEAT; i++) if (strcmp(features[i].name, args[a]) == 0) features[i].check();
  if (dead_leader) self_check(go, "the process ran on without its main thread", "no go");
  say("DONE fails=%d\n", self_check_fails);
  exit(0);
}

int main(int argc, char **argv) {
  struct sigaction sa = { 0 };
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  nargs = argc;
  args = argv;
  for (int a = 1; a < argc; a++) {
    if (strcmp(argv[a], "deadleader") == 0) { dead_leader = 1; continue; }
    unsigned i = 0;
    while (i < NFEAT && strcmp(features[i].name, argv[a])) i++;
    if (i == NFEAT) { say("SETUP FAIL unknown feature %s\n", argv[a]); return 2; }
    features[i].setup();
  }
  if (dead_leader) {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_t t;
    MUST(-pthread_create(&t, NULL, run_checks, NULL));
    pthread_sigmask(SIG_BLOCK, &s, NULL); /* the go signal is for the thread left */
    say("READY pid=%d\n", getpid());
    pthread_exit(NULL);
  }
  say("READY pid=%d\n", getpid());
  run_checks(NULL);
  return 0;
}
