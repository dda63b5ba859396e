/*
 * A parent and a forked child sharing memory three ways: a MAP_SHARED|MAP_ANONYMOUS
 * page, a memfd mapping (fd closed) and a SysV segment, each holding a counter slot
 * per process and a total both increment atomically. Every tick a process bumps its
 * slots and the totals, and checks that it sees the other's slots move: if the memory
 * stopped being shared (each process with its own copy), the other's counter freezes
 * and the process prints FAIL. Prints "TICK role n other=m ok".
 */
#include "victim.h"
#include <sys/mman.h>
#include <sys/shm.h>

struct area {
  volatile uint64_t slot[2];
  volatile uint64_t total;
};

static struct area *areas[3];
static const char *names[3] = { "anon", "memfd", "sysv" };

static void loop(int me) {
  uint64_t n = 0, last_other[3] = {0}, stale[3] = {0};
  const char *role = me == 0 ? "parent" : "child";
  for (;;) {
    n++;
    for (int k = 0; k < 3; k++) {
      struct area *a = areas[k];
      if (a->slot[me] != n - 1) { say("FAIL %s %s slot %lu want %lu\n", role, names[k], (unsigned long)a->slot[me], (unsigned long)(n - 1)); exit(1); }
      a->slot[me] = n;
      __sync_fetch_and_add(&a->total, 1);
      uint64_t other = a->slot[1 - me];
      if (other == last_other[k]) {
        if (++stale[k] > 40) { say("FAIL %s %s: the other process's counter is stuck at %lu\n", role, names[k], (unsigned long)other); exit(1); }
      } else {
        stale[k] = 0;
        last_other[k] = other;
      }
      if (a->total + 2 < a->slot[0] + a->slot[1]) { say("FAIL %s %s total %lu\n", role, names[k], (unsigned long)a->total); exit(1); }
    }
    say("TICK %s %lu other=%lu ok\n", role, (unsigned long)n, (unsigned long)areas[0]->slot[1 - me]);
    usleep(50000);
  }
}

int main(void) {
  areas[0] = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  int mfd = memfd_create("ckpt-tree", 0);
  if (mfd < 0 || ftruncate(mfd, 4096) < 0) { say("FAIL memfd\n"); return 1; }
  areas[1] = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  close(mfd);
  int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  areas[2] = id < 0 ? MAP_FAILED : shmat(id, NULL, 0);
  if (areas[0] == MAP_FAILED || areas[1] == MAP_FAILED || areas[2] == (void *)-1) { say("FAIL setup errno %d\n", errno); return 1; }
  shmctl(id, IPC_RMID, NULL);
  pid_t child = fork();
  if (child < 0) { say("FAIL fork\n"); return 1; }
  if (child == 0) {
    say("CHILD pid=%d\n", getpid());
    loop(1);
  }
  say("READY pid=%d child=%d\n", getpid(), child);
  loop(0);
}
