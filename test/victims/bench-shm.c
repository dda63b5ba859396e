/* Benchmark victim: a tree of 6 processes (the root and 5 children) sharing MIB MiB of
 * shared memory (default 64), half a SysV segment and half a POSIX shm object
 * (shm_open, then shm_unlink, so that its contents live only in memory, as a dump
 * must save them), like a PostgreSQL server and its backends.
 *
 *   bench-shm [MIB]
 *
 * The root fills both with a pattern, then forks; every child reads every page (its
 * page tables map them all, as a backend's do). Each prints "PROC i pid"; the root
 * prints READY once all are up. On SIGUSR1 to the root: it writes a new token at the
 * head of both objects and pokes every child; each child checks the whole pattern and
 * copies the token into its slot of both objects; the root waits for all five slots
 * and prints "PASS shm procs=6 mib=M" or "FAIL shm ...". */
#include "victim.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/shm.h>

#define KIDS 5
#define HEAD 4096 /* token and slots; the pattern starts after */

static volatile sig_atomic_t poked;
static void on_usr1(int s) { (void)s; poked = 1; }

static unsigned char *obj[2];
static size_t half;
static pid_t kid[KIDS];

static unsigned char pat(int k, size_t off) { return (unsigned char)(k * 101 + (off >> 12) * 7 + off) | 1; }
static volatile uint64_t *token(int k) { return (volatile uint64_t *)obj[k]; }
static volatile uint64_t *slot(int k, int i) { return (volatile uint64_t *)(obj[k] + 64 + 64 * i); }

static int intact(void) {
  for (int k = 0; k < 2; k++)
    for (size_t o = HEAD; o < half; o++) if (obj[k][o] != pat(k, o)) return 0;
  return 1;
}

static void child(int i) {
  volatile unsigned long sum = 0;
  for (int k = 0; k < 2; k++) for (size_t o = 0; o < half; o += 4096) sum += obj[k][o];
  say("PROC %d %d\n", i + 1, getpid());
  for (;;) {
    while (!poked) usleep(10000); /* not pause(): see bench-tree.c */
    poked = 0;
    int ok = intact();
    if (!ok) say("FAIL shm child %d: pattern differs\n", i + 1);
    for (int k = 0; k < 2; k++) *slot(k, i) = ok ? *token(k) : 0;
  }
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
  if (mib < 2) return 2;
  half = (mib << 20) / 2;
  struct sigaction sa = { .sa_handler = on_usr1 };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);

  int id = shmget(IPC_PRIVATE, half, IPC_CREAT | 0600);
  if (id < 0) { say("FAIL shmget %s\n", strerror(errno)); return 1; }
  obj[0] = shmat(id, NULL, 0);
  if (obj[0] == (void *)-1) { say("FAIL shmat %s\n", strerror(errno)); return 1; }
  shmctl(id, IPC_RMID, NULL); /* gone once the last process detaches, as PostgreSQL's is not; either way it is saved */

  char name[64];
  snprintf(name, sizeof name, "/ckpt-bench-shm-%d", getpid());
  int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0 || ftruncate(fd, half) < 0) { say("FAIL shm_open %s\n", strerror(errno)); return 1; }
  obj[1] = mmap(NULL, half, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  shm_unlink(name);
  close(fd);
  if (obj[1] == MAP_FAILED) { say("FAIL mmap %s\n", strerror(errno)); return 1; }

  for (int k = 0; k < 2; k++) for (size_t o = HEAD; o < half; o++) obj[k][o] = pat(k, o);
  say("PROC 0 %d\n", getpid());
  for (int i = 0; i < KIDS; i++) {
    kid[i] = fork();
    if (kid[i] < 0) { say("FAIL fork %s\n", strerror(errno)); return 1; }
    if (kid[i] == 0) child(i);
  }
  /* READY once every child has read its pages: they say PROC, and a slot written back shows each is in its loop. */
  for (uint64_t t = 1;; t++) {
    for (int k = 0; k < 2; k++) *token(k) = t;
    for (int i = 0; i < KIDS; i++) kill(kid[i], SIGUSR1);
    int all = 0;
    for (int w = 0; w < 3000 && !all; w++) {
      usleep(10000);
      all = 1;
      for (int k = 0; k < 2; k++) for (int i = 0; i < KIDS; i++) if (*slot(k, i) != t) all = 0;
    }
    if (t == 1) {
      if (!all) { say("FAIL shm: children did not answer\n"); return 1; }
      say("READY pid=%d procs=%d mib=%zu\n", getpid(), KIDS + 1, mib);
    } else {
      if (all && intact()) say("PASS shm procs=%d mib=%zu\n", KIDS + 1, mib);
      else say("FAIL shm: %s\n", all ? "root sees another pattern" : "a child did not answer with the token");
    }
    while (!poked) usleep(10000);
    poked = 0;
  }
}
