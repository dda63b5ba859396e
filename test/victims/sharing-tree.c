/* A process tree with known kernel-object sharing, for `ckpt sharing` and `ckpt ps`.
 *
 *   P   setsid, ioprio_set (so it owns an io_context), opens ./shared-a as fd 3,
 *       has one extra thread (threads are not processes: never listed)
 *   C1  fork, setpgid(0,0); inherits fd 3 (same open file description)
 *     G   fork of C1; inherits fd 3
 *   C2  clone(CLONE_FILES): shares P's fd table
 *   C3  fork, then closes fd 3 and opens ./shared-a again as fd 3 (a different description)
 *   C4  clone(CLONE_FS|CLONE_IO|CLONE_SYSVSEM): shares fs info, io context, undo list
 *   C5  clone(CLONE_VM|CLONE_SIGHAND): shares memory and signal handlers
 *
 * P's undo list exists because pthread_create passes CLONE_SYSVSEM; forked children
 * get none. Prints "TRUTH ..." lines (ground truth, fds >= 3 only), then READY; every
 * child dies with its parent (PR_SET_PDEATHSIG). */
#include "victim.h"
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

struct shm { volatile int ready; volatile int gpid; };
static struct shm *shm;
static pid_t parent;

static void die_with_parent(pid_t expected_parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != expected_parent) _exit(1);
}

/* Children never return: raw syscalls only, since C5 shares P's memory (and libc state). */
static void settle(void) {
  __atomic_add_fetch(&shm->ready, 1, __ATOMIC_SEQ_CST);
  for (;;) syscall(SYS_pause);
}

static int clone_child(void *arg) {
  (void)arg;
  syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (syscall(SYS_getppid) != parent) syscall(SYS_exit, 1);
  settle();
  return 0;
}

static pid_t spawn_clone(int flags) {
  size_t size = 64 * 1024;
  char *stack = malloc(size);
  pid_t pid = clone(clone_child, stack + size, flags | SIGCHLD, NULL);
  if (pid < 0) { say("FAIL clone 0x%x: %s\n", flags, strerror(errno)); exit(1); }
  return pid;
}

static void *thread_main(void *arg) {
  (void)arg;
  for (;;) pause();
  return NULL;
}

int main(void) {
  parent = getpid();
  setsid();
  /* Drop whatever fds the launcher leaked to us, so fd 3 is ours and the truth is complete. */
  syscall(SYS_close_range, 3, ~0U, 0);
  shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shm == MAP_FAILED) return 1;
  /* IOPRIO_WHO_PROCESS, class BE, level 4: makes P allocate an io_context. */
  if (syscall(SYS_ioprio_set, 1, 0, (2 << 13) | 4) != 0) say("FAIL ioprio_set: %s\n", strerror(errno));
  int fd = open("shared-a", O_RDWR | O_CREAT, 0600);
  if (fd != 3) { say("FAIL shared-a opened as fd %d, not 3\n", fd); return 1; }
  pthread_t t;
  pthread_create(&t, NULL, thread_main, NULL);

  pid_t c1 = fork();
  if (c1 == 0) {
    die_with_parent(parent);
    setpgid(0, 0);
    pid_t me = getpid();
    pid_t g = fork();
    if (g == 0) { die_with_parent(me); settle(); }
    shm->gpid = g;
    settle();
  }
  pid_t c2 = spawn_clone(CLONE_FILES);
  pid_t c3 = fork();
  if (c3 == 0) {
    die_with_parent(parent);
    close(3);
    if (open("shared-a", O_RDWR) != 3) { say("FAIL C3 reopen is not fd 3\n"); _exit(1); }
    settle();
  }
  pid_t c4 = spawn_clone(CLONE_FS | CLONE_IO | CLONE_SYSVSEM);
  pid_t c5 = spawn_clone(CLONE_VM | CLONE_SIGHAND);

  double deadline = now_s() + 10;
  while (__atomic_load_n(&shm->ready, __ATOMIC_SEQ_CST) < 6) {
    if (now_s() > deadline) { say("FAIL only %d of 6 children ready\n", shm->ready); return 1; }
    usleep(1000);
  }
  pid_t g = shm->gpid;
  pid_t all[] = {c1, g, c2, c3, c4, c5};
  for (int i = 0; i < 6; i++) if (kill(all[i], 0) != 0) say("FAIL child %d is gone\n", all[i]);

  pid_t p = parent;
  /* proc PID PPID PGID SID THREADS (P's own ppid changes when sh exits: not listed) */
  say("TRUTH root %d\n", p);
  say("TRUTH proc %d %d %d %d 2\n", p, -1, p, p);
  say("TRUTH proc %d %d %d %d 1\n", c1, p, c1, p);
  say("TRUTH proc %d %d %d %d 1\n", g, c1, c1, p);
  for (int i = 2; i < 6; i++) say("TRUTH proc %d %d %d %d 1\n", all[i], p, p, p);
  say("TRUTH vm %d %d\n", p, c5);
  say("TRUTH files %d %d\n", p, c2);
  say("TRUTH fs %d %d\n", p, c4);
  say("TRUTH sighand %d %d\n", p, c5);
  say("TRUTH io %d %d\n", p, c4);
  say("TRUTH sysvsem %d %d\n", p, c4);
  say("TRUTH file %d:3 %d:3 %d:3 %d:3 %d:3 %d:3\n", p, c1, g, c2, c4, c5);
  say("READY\n");
  for (;;) pause();
}
