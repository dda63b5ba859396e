/* Seccomp filters: filter 1 (installed with TSYNC, so its thread shares it) makes
 * getppid fail with EPERM and kills the process on acct(2); filter 2 (leader only,
 * SECCOMP_FILTER_FLAG_LOG) makes uname fail with EACCES. On SIGUSR1 it checks that
 * each still applies where it did (the thread checks itself), that a child forked now
 * is killed by acct, and that a TSYNC from the leader still works (so the thread's
 * filter is still an ancestor of the leader's), printing "PASS name" / "FAIL name: why",
 * then "DONE".
 * argv[1] = "strict": the process enters strict mode (the dump must refuse).
 * argv[1] = "notif": a filter returns SECCOMP_RET_USER_NOTIF to a listener (refused).
 * argv[1] = "split": two threads share a filter the third lacks (refused). */
#include "victim.h"
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

#define LOAD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define CHECK_ARCH                                                              \
  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),      \
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),                 \
  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)
#define ON(nr, action) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, (action))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

static struct sock_filter f1[] = {CHECK_ARCH, LOAD_NR, ON(SYS_getppid, SECCOMP_RET_ERRNO | EPERM), ON(SYS_acct, SECCOMP_RET_KILL_PROCESS), ALLOW};
static struct sock_filter f2[] = {CHECK_ARCH, LOAD_NR, ON(SYS_uname, SECCOMP_RET_ERRNO | EACCES), ALLOW};
static struct sock_filter f3[] = {ALLOW};
static struct sock_filter notif[] = {CHECK_ARCH, LOAD_NR, ON(SYS_mkdirat, SECCOMP_RET_USER_NOTIF), ALLOW};

static long install(struct sock_filter *f, unsigned short n, unsigned flags) {
  struct sock_fprog p = {.len = n, .filter = f};
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &p);
}
#define INSTALL(f, flags) install(f, sizeof f / sizeof f[0], flags)

static volatile int thread_go, thread_done, t_ppid_eperm, t_uname_ok, t_uname_eacces;
static void *thread_main(void *arg) {
  (void)arg;
  for (int round = 1; round <= 2; round++) {
    while (thread_go < round) usleep(1000);
    struct utsname u;
    errno = 0;
    if (round == 1) {
      t_ppid_eperm = syscall(SYS_getppid) == -1 && errno == EPERM;
      t_uname_ok = uname(&u) == 0;
    } else {
      t_uname_eacces = uname(&u) == -1 && errno == EACCES;
    }
    thread_done = round;
  }
  for (;;) pause();
  return NULL;
}

static int filters_of(const char *task) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/self/task/%s/status", task);
  FILE *f = fopen(path, "r");
  int n = -1;
  while (f && fgets(line, sizeof line, f)) if (sscanf(line, "Seccomp_filters: %d", &n) == 1) break;
  if (f) fclose(f);
  return n;
}

static void check(pthread_t t) {
  (void)t;
  errno = 0;
  verdict("seccomp-errno", syscall(SYS_getppid) == -1 && errno == EPERM, "getppid gave errno %d", errno);
  verdict("seccomp-other", getpid() > 0 && syscall(SYS_getpid) == getpid(), "getpid failed");
  struct utsname u;
  errno = 0;
  verdict("seccomp-leader-only", uname(&u) == -1 && errno == EACCES, "uname gave errno %d", errno);
  char me[16];
  snprintf(me, sizeof me, "%d", getpid());
  verdict("seccomp-count", filters_of(me) == 2, "the leader has %d filters", filters_of(me));
  thread_go = 1;
  while (thread_done < 1) usleep(1000);
  verdict("seccomp-thread", t_ppid_eperm && t_uname_ok, "in the thread: getppid EPERM %d, uname works %d", t_ppid_eperm, t_uname_ok);
  pid_t c = fork();
  if (c == 0) {
    syscall(SYS_acct, NULL);
    _exit(0);
  }
  int st = 0;
  waitpid(c, &st, 0);
  verdict("seccomp-kill", WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "the child calling acct ended with status 0x%x", st);
  long r = INSTALL(f3, SECCOMP_FILTER_FLAG_TSYNC);
  thread_go = 2;
  while (thread_done < 2) usleep(1000);
  verdict("seccomp-tsync", r == 0 && t_uname_eacces, "TSYNC gave %ld (%s); the thread's uname EACCES %d", r, strerror(errno), t_uname_eacces);
  say("DONE\n");
}

static void *idle(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  signal(SIGUSR1, on_usr1);
  if (strcmp(mode, "strict") == 0) {
    int p[2];
    if (pipe(p)) return 1;
    say("READY pid=%d\n", getpid());
    prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT);
    char b;
    (void)!read(p[0], &b, 1);
    syscall(SYS_exit, 0);
  }
  if (strcmp(mode, "notif") == 0) {
    long fd = INSTALL(notif, SECCOMP_FILTER_FLAG_NEW_LISTENER);
    say("READY pid=%d listener=%ld\n", getpid(), fd);
    for (;;) pause();
  }
  pthread_t t, t2;
  pthread_create(&t, NULL, strcmp(mode, "split") == 0 ? idle : thread_main, NULL);
  if (strcmp(mode, "split") == 0) {
    /* The leader's second filter is inherited by a thread made after it; the first thread lacks it. */
    if (INSTALL(f1, SECCOMP_FILTER_FLAG_TSYNC) || INSTALL(f2, 0)) return say("SETUP FAIL %s\n", strerror(errno)), 1;
    pthread_create(&t2, NULL, idle, NULL);
    say("READY pid=%d\n", getpid());
    for (;;) pause();
  }
  if (INSTALL(f1, SECCOMP_FILTER_FLAG_TSYNC) || INSTALL(f2, SECCOMP_FILTER_FLAG_LOG)) return say("SETUP FAIL %s\n", strerror(errno)), 1;
  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000);
  check(t);
  for (;;) pause();
}
