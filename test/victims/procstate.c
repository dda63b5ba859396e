/*
 * Victim for the process-state resources (src/resources/process).
 *
 *   procstate DIR          sets a known state, prints READY, waits for SIGUSR1, then
 *                          checks that the whole state is still there.
 *   procstate DIR blank    sets nothing: the test restores the state of another
 *                          instance into it; on SIGUSR1 it checks the same things.
 *
 * Checks print "PASS what" or "FAIL what (detail)", then "DONE fails=N".
 * Run it with ASLR off (setarch -R) so that two instances have the same addresses.
 */
#include "victim.h"
#include <grp.h>
#include <linux/capability.h>
#include <linux/futex.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>

#define RTSIG (SIGRTMIN + 1)
#define QVALUE 4242

static volatile sig_atomic_t got_usr1, got_usr2;
static int tidvar;
static struct robust_list_head myhead;
static char altstack[64 * 1024];

static void h_usr1(int sig, siginfo_t *si, void *uc) { (void)sig; (void)si; (void)uc; got_usr1 = 1; }
static void h_usr2(int sig) { (void)sig; got_usr2++; }

static int caps(struct __user_cap_data_struct d[2]) {
  struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
  return syscall(SYS_capget, &h, d);
}

static int set_caps(struct __user_cap_data_struct d[2]) {
  struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
  return syscall(SYS_capset, &h, d);
}

#define MUST(x) do { if ((x) < 0) { say("SETUP FAIL %s: %s\n", #x, strerror(errno)); exit(2); } } while (0)

static void setup(const char *dir) {
  struct sigaction sa = { 0 };
  sa.sa_sigaction = h_usr1;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR2);
  sigaddset(&sa.sa_mask, SIGALRM);
  MUST(sigaction(SIGUSR1, &sa, NULL));
  struct sigaction sa2 = { 0 };
  sa2.sa_handler = h_usr2;
  MUST(sigaction(SIGUSR2, &sa2, NULL));
  signal(SIGINT, SIG_IGN);

  sigset_t blk;
  sigemptyset(&blk);
  sigaddset(&blk, SIGTERM);
  sigaddset(&blk, RTSIG);
  MUST(sigprocmask(SIG_BLOCK, &blk, NULL));
  MUST(syscall(SYS_tgkill, getpid(), gettid(), SIGTERM)); /* the thread's own queue */
  union sigval v = { .sival_int = QVALUE };
  MUST(sigqueue(getpid(), RTSIG, v)); /* the shared queue */

  stack_t ss = { .ss_sp = altstack, .ss_flags = 0, .ss_size = sizeof altstack };
  MUST(sigaltstack(&ss, NULL));
  struct itimerval it = { { 2000, 0 }, { 1000, 0 } };
  MUST(setitimer(ITIMER_VIRTUAL, &it, NULL));
  umask(027);
  MUST(chdir(dir));
  MUST(prctl(PR_SET_NAME, "procstate-x"));

  struct rlimit rl;
  MUST(getrlimit(RLIMIT_NOFILE, &rl));
  rl.rlim_cur = 200;
  MUST(setrlimit(RLIMIT_NOFILE, &rl));
  rl.rlim_cur = rl.rlim_max = 0;
  MUST(setrlimit(RLIMIT_CORE, &rl));

  MUST(prctl(PR_SET_PDEATHSIG, SIGWINCH)); /* ignored by default: harmless if the shell parent exits late */
  syscall(SYS_set_tid_address, &tidvar);
  MUST(prctl(PR_SET_TIMERSLACK, 12345));
  myhead.list.next = &myhead.list;
  MUST(syscall(SYS_set_robust_list, &myhead, sizeof myhead));
  MUST(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0));
  MUST(prctl(PR_SET_CHILD_SUBREAPER, 1));

  gid_t groups[2] = { 1234, 5678 };
  MUST(setgroups(2, groups));
  MUST(prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT));
  struct __user_cap_data_struct d[2];
  MUST(caps(d));
  d[0].effective &= ~(1u << CAP_NET_RAW);
  d[0].inheritable |= 1u << CAP_NET_BIND_SERVICE;
  MUST(set_caps(d));
  MUST(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0));
  MUST(prctl(PR_SET_KEEPCAPS, 1));
  MUST(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
}

static void check_sigactions(void) {
  struct sigaction o;
  sigaction(SIGUSR1, NULL, &o);
  int want = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  self_check(o.sa_sigaction == h_usr1 && (o.sa_flags & want) == want, "sigaction SIGUSR1", "handler %p flags %#x", (void *)o.sa_sigaction, o.sa_flags);
  self_check(sigismember(&o.sa_mask, SIGUSR2) && sigismember(&o.sa_mask, SIGALRM) && !sigismember(&o.sa_mask, SIGHUP), "sigaction SIGUSR1 mask", "wrong mask");
  sigaction(SIGUSR2, NULL, &o);
  self_check(o.sa_handler == h_usr2 && !(o.sa_flags & SA_SIGINFO), "sigaction SIGUSR2", "handler %p flags %#x", (void *)o.sa_handler, o.sa_flags);
  sigaction(SIGINT, NULL, &o);
  self_check(o.sa_handler == SIG_IGN, "sigaction SIGINT ignored", "handler %p", (void *)o.sa_handler);
  sigaction(SIGHUP, NULL, &o);
  self_check(o.sa_handler == SIG_DFL, "sigaction SIGHUP default", "handler %p", (void *)o.sa_handler);
}

static void check_signals(void) {
  sigset_t s;
  sigprocmask(SIG_BLOCK, NULL, &s);
  self_check(sigismember(&s, SIGTERM) && sigismember(&s, RTSIG) && !sigismember(&s, SIGUSR1), "blocked mask", "TERM %d RT %d USR1 %d",
        sigismember(&s, SIGTERM), sigismember(&s, RTSIG), sigismember(&s, SIGUSR1));
  sigpending(&s);
  self_check(sigismember(&s, SIGTERM) && sigismember(&s, RTSIG), "pending set", "TERM %d RT %d", sigismember(&s, SIGTERM), sigismember(&s, RTSIG));
  struct timespec zero = { 0, 0 };
  sigset_t one;
  sigemptyset(&one);
  sigaddset(&one, RTSIG);
  siginfo_t si;
  int n = 0, good = 1;
  while (sigtimedwait(&one, &si, &zero) == RTSIG) {
    n++;
    good &= si.si_code == SI_QUEUE && si.si_value.sival_int == QVALUE;
  }
  self_check(n == 1 && good, "pending SIGRTMIN+1 queued once with its value", "count %d value ok %d", n, good);
  sigemptyset(&one);
  sigaddset(&one, SIGTERM);
  int sig = sigtimedwait(&one, &si, &zero);
  self_check(sig == SIGTERM && (si.si_code == SI_TKILL || si.si_code == SI_USER), "pending SIGTERM from tgkill()", "sig %d code %d", sig, sig > 0 ? si.si_code : 0);
  stack_t ss;
  sigaltstack(NULL, &ss);
  self_check(ss.ss_sp == altstack && ss.ss_size == sizeof altstack && ss.ss_flags == 0, "sigaltstack", "sp %p size %zu flags %d", ss.ss_sp, ss.ss_size, ss.ss_flags);
}

static void check_process(const char *dir) {
  struct itimerval it;
  getitimer(ITIMER_VIRTUAL, &it);
  self_check(it.it_interval.tv_sec == 2000 && it.it_interval.tv_usec == 0 && it.it_value.tv_sec > 900 && it.it_value.tv_sec <= 1000,
        "itimer virtual", "interval %ld value %ld", (long)it.it_interval.tv_sec, (long)it.it_value.tv_sec);
  mode_t m = umask(0);
  umask(m);
  self_check(m == 027, "umask", "%03o", m);
  char cwd[4096] = "";
  self_check(getcwd(cwd, sizeof cwd) && strcmp(cwd, dir) == 0, "cwd", "%s", cwd);
  char name[16] = "";
  prctl(PR_GET_NAME, name);
  self_check(strcmp(name, "procstate-x") == 0, "comm", "%s", name);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  self_check(rl.rlim_cur == 200, "RLIMIT_NOFILE soft", "%llu", (unsigned long long)rl.rlim_cur);
  getrlimit(RLIMIT_CORE, &rl);
  self_check(rl.rlim_cur == 0 && rl.rlim_max == 0, "RLIMIT_CORE", "%llu/%llu", (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
  int v = -1;
  prctl(PR_GET_PDEATHSIG, &v);
  self_check(v == SIGWINCH, "pdeath signal", "%d", v);
  int *tid_addr = NULL;
  prctl(PR_GET_TID_ADDRESS, &tid_addr);
  self_check(tid_addr == &tidvar, "clear_child_tid", "%p", (void *)tid_addr);
  long slack = prctl(PR_GET_TIMERSLACK);
  self_check(slack == 12345, "timer slack", "%ld", slack);
  struct robust_list_head *head = NULL;
  size_t len = 0;
  syscall(SYS_get_robust_list, 0, &head, &len);
  self_check(head == &myhead && len == sizeof myhead, "robust list", "%p %zu", (void *)head, len);
  self_check(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "THP disabled", "no");
  v = -1;
  prctl(PR_GET_CHILD_SUBREAPER, &v);
  self_check(v == 1, "child subreaper", "%d", v);
  int p = personality(0xffffffff);
  self_check(p == ADDR_NO_RANDOMIZE, "personality", "%#x", p);
  struct rseq *rs = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
  self_check(__rseq_size == 0 || (int)rs->cpu_id >= 0, "rseq registered", "cpu_id %d", (int)rs->cpu_id);
}

static void check_creds(void) {
  gid_t g[16];
  int n = getgroups(16, g);
  self_check(n == 2 && ((g[0] == 1234 && g[1] == 5678) || (g[0] == 5678 && g[1] == 1234)), "groups", "%d groups", n);
  self_check(prctl(PR_CAPBSET_READ, CAP_SYS_BOOT) == 0 && prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN) == 1, "bounding set", "BOOT %d",
        prctl(PR_CAPBSET_READ, CAP_SYS_BOOT));
  struct __user_cap_data_struct d[2];
  caps(d);
  self_check(!(d[0].effective & (1u << CAP_NET_RAW)) && (d[0].permitted & (1u << CAP_NET_RAW)) && (d[0].effective & (1u << CAP_SYS_ADMIN)),
        "capabilities eff/prm", "eff %#x prm %#x", d[0].effective, d[0].permitted);
  self_check(d[0].inheritable == 1u << CAP_NET_BIND_SERVICE, "capabilities inh", "%#x", d[0].inheritable);
  self_check(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0) == 1, "ambient", "not set");
  self_check(prctl(PR_GET_KEEPCAPS) == 1, "keepcaps", "off");
  self_check(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs", "off");
  self_check(getuid() == 0 && geteuid() == 0 && getgid() == 0, "uid/gid", "%d %d", getuid(), getgid());
}

int main(int argc, char **argv) {
  if (argc < 2) { say("usage: procstate DIR [blank]\n"); return 2; }
  const char *dir = argv[1];
  int blank = argc > 2 && strcmp(argv[2], "blank") == 0;
  if (!blank) setup(dir);
  say("READY pid=%d usr1=%p tidvar=%p head=%p\n", getpid(), (void *)h_usr1, (void *)&tidvar, (void *)&myhead);
  while (!got_usr1) usleep(10000);
  check_sigactions();
  check_signals();
  check_process(dir);
  check_creds();
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
