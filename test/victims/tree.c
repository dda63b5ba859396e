/* A tree of 10 processes in 3 levels, 2 sessions, 3 process groups, a zombie, a
 * stopped child, a fork-shared file offset and a CLONE_FILES pair. Each process prints
 * "PROC name pid ppid pgid sid"; on SIGUSR1 each checks that its ids are what they
 * were and that what it shares is still shared, printing PASS/FAIL lines. */
#include "victim.h"
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>

static volatile sig_atomic_t poked;
static void on_usr1(int s) { (void)s; poked = 1; }
static pid_t my_pid, my_ppid, my_pgid, my_sid;
static const char *my_name;
static int shared_fd;          /* fork-inherited: one description for R and A */
static pid_t zombie_pid;

static void record(const char *name) {
  my_name = name;
  my_pid = getpid(); my_ppid = getppid(); my_pgid = getpgrp(); my_sid = getsid(0);
  say("PROC %s %d %d %d %d\n", name, my_pid, my_ppid, my_pgid, my_sid);
}

static void check_ids(void) {
  if (getpid() != my_pid) say("FAIL %s pid %d\n", my_name, getpid());
  /* R's parent is outside the tree: whoever restores it becomes its parent. */
  else if (strcmp(my_name, "R") && getppid() != my_ppid) say("FAIL %s ppid %d want %d\n", my_name, getppid(), my_ppid);
  else if (getpgrp() != my_pgid) say("FAIL %s pgid %d want %d\n", my_name, getpgrp(), my_pgid);
  else if (getsid(0) != my_sid) say("FAIL %s sid %d want %d\n", my_name, getsid(0), my_sid);
  else say("PASS %s ids\n", my_name);
}

static off_t offset(void) { return lseek(shared_fd, 0, SEEK_CUR); }

static void wait_poke(void) { while (!poked) pause(); poked = 0; }

static void child_loop(void (*extra)(void)) {
  for (;;) { wait_poke(); check_ids(); if (extra) extra(); say("DONE %s\n", my_name); }
}

static void a_extra(void) { /* one byte through the shared description: R must see its offset move */
  if (write(shared_fd, "a", 1) != 1) say("FAIL A write\n");
}

static int c_main(void *arg) { (void)arg; record("C"); child_loop(NULL); return 0; }

static void r_extra(void) {
  int st;
  pid_t w = waitpid(zombie_pid, &st, WNOHANG);
  if (w != zombie_pid) say("FAIL R zombie waitpid=%d errno=%d\n", w, errno);
  else if (!WIFEXITED(st) || WEXITSTATUS(st) != 42) say("FAIL R zombie status %x\n", st);
  else say("PASS R zombie\n");
  /* fd 20 was opened by C in the shared table; 21 must appear when C opens it now */
  if (fcntl(20, F_GETFD) < 0) say("FAIL R shared table fd20\n"); else say("PASS R shared table\n");
}

static pid_t spawn(const char *name, void (*body)(void)) {
  pid_t p = fork();
  if (p == 0) { body(); _exit(0); }
  (void)name;
  return p;
}

static void a1(void) { setpgid(0, 0); record("A1"); child_loop(NULL); }
static pid_t a1_pid;
static void a2(void) { setpgid(0, a1_pid); record("A2"); child_loop(NULL); }
static void a(void) {
  record("A");
  a1_pid = spawn("A1", a1);
  usleep(20000);
  spawn("A2", a2);
  child_loop(a_extra);
}
static void b1(void) { record("B1"); child_loop(NULL); }
static void b2(void) { record("B2"); child_loop(NULL); }
static void b3(void) { record("B3"); say("STOPPING B3\n"); raise(SIGSTOP); say("PASS B3 continued\n"); child_loop(NULL); }
static void b(void) {
  setsid(); record("B");
  spawn("B1", b1);
  spawn("B2", b2);
  spawn("B3", b3);
  child_loop(NULL);
}

int main(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  setsid();
  char path[] = "/tmp/ckpt-tree-XXXXXX";
  shared_fd = mkstemp(path);
  unlink(path);
  record("R");
  spawn("A", a);
  spawn("B", b);
  zombie_pid = fork();
  if (zombie_pid == 0) _exit(42);
  say("ZOMBIE %d\n", zombie_pid);
  static char stack[65536];
  if (clone(c_main, stack + sizeof stack, CLONE_FILES | SIGCHLD, NULL) < 0) say("FAIL clone\n");
  /* C's fd 20, seen by R through the shared table */
  usleep(50000);
  int fd = open("/dev/null", O_RDONLY);
  if (fd >= 0 && fd != 20) { dup2(fd, 20); close(fd); }
  usleep(200000);
  say("READY %d\n", getpid());
  for (;;) {
    off_t before = offset();
    wait_poke();
    check_ids();
    r_extra();
    /* A writes one byte after its own poke; give it a moment */
    off_t after = before;
    for (int i = 0; i < 200 && after == before; i++) { usleep(10000); after = offset(); }
    if (after == before + 1) say("PASS R shared offset\n"); else say("FAIL R shared offset %ld -> %ld\n", (long)before, (long)after);
    say("DONE R\n");
  }
}
