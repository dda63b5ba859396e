/* A tree of 10 processes in 3 levels, 2 sessions, 3 process groups, a zombie, a
 * stopped child, a fork-shared file offset and a CLONE_FILES pair. Each process prints
 * "PROC name pid ppid pgid sid"; on SIGUSR1 each checks that its ids are what they
 * were and that what it shares is still shared, printing PASS/FAIL lines. */
#include "victim.h"
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/socket.h>

static volatile sig_atomic_t poked;
static void on_usr1(int s) { (void)s; poked = 1; }
static pid_t my_pid, my_ppid, my_pgid, my_sid;
static const char *my_name;
static int shared_fd;          /* fork-inherited: one description for R and A */
static pid_t zombie_pid;
static volatile unsigned long *counter; /* MAP_SHARED|MAP_ANONYMOUS: every process adds one per poke */
static int memfd;                       /* inherited memfd with known contents */
static char *sysv;                      /* SysV segment attached before the forks */
static int dgram[2];                    /* socketpair: R queues datagrams for A */
static const int sizes[3] = {5, 17, 300};

static void check_shared(void) {
  __sync_fetch_and_add(counter, 1);
  char buf[16] = {0};
  if (pread(memfd, buf, 10, 0) != 10 || memcmp(buf, "memfd-data", 10)) say("FAIL %s memfd\n", my_name);
  else if (strcmp(sysv, "sysv-data")) say("FAIL %s sysv\n", my_name);
  else say("PASS %s shared memory\n", my_name);
}

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

static void wait_poke(void) { while (!poked) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */ poked = 0; }

static void child_loop(void (*extra)(void)) {
  for (;;) { wait_poke(); check_ids(); check_shared(); if (extra) extra(); say("DONE %s\n", my_name); }
}

static int a_got_dgrams;
static void a_extra(void) { /* one byte through the shared description: R must see its offset move */
  if (write(shared_fd, "a", 1) != 1) say("FAIL A write\n");
  if (a_got_dgrams++) return;
  char buf[512];
  for (int i = 0; i < 3; i++) {
    ssize_t n = recv(dgram[1], buf, sizeof buf, MSG_DONTWAIT);
    if (n != sizes[i] || buf[0] != 'a' + i) { say("FAIL A datagram %d: %zd bytes\n", i, n); return; }
  }
  if (recv(dgram[1], buf, sizeof buf, MSG_DONTWAIT) >= 0) { say("FAIL A extra datagram\n"); return; }
  say("PASS A datagrams\n");
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
  counter = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  memfd = memfd_create("tree-memfd", 0);
  if (write(memfd, "memfd-data", 10) != 10) say("FAIL memfd write\n");
  int shmid = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  sysv = shmat(shmid, NULL, 0);
  shmctl(shmid, IPC_RMID, NULL); /* gone once every process detaches */
  strcpy(sysv, "sysv-data");
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dgram)) say("FAIL socketpair\n");
  char msg[300];
  for (int i = 0; i < 3; i++) { memset(msg, 'a' + i, sizeof msg); send(dgram[0], msg, sizes[i], 0); }
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
    /* read before the poke: the others may add theirs before R wakes */
    unsigned long c0 = *counter;
    wait_poke();
    check_ids();
    check_shared();
    r_extra();
    /* A writes one byte after its own poke; give it a moment */
    off_t after = before;
    for (int i = 0; i < 200 && after == before; i++) { usleep(10000); after = offset(); }
    if (after == before + 1) say("PASS R shared offset\n"); else say("FAIL R shared offset %ld -> %ld\n", (long)before, (long)after);
    /* all nine live processes add one to the shared counter per poke (B3 once continued) */
    for (int i = 0; i < 1000 && *counter < c0 + 9; i++) usleep(10000);
    if (*counter >= c0 + 9) say("PASS R shared counter %lu\n", *counter); else say("FAIL R shared counter %lu -> %lu\n", c0, *counter);
    say("DONE R\n");
  }
}
