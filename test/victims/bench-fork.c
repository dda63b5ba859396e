/* Benchmark victim: a "forked server". The parent maps argv[1] MiB (default 512) of
 * private anonymous memory, writes a non-zero pattern to every word, then forks
 * argv[2] children (default 4) that never write to it, so all of it stays shared
 * copy-on-write. Each prints "PROC role pid"; the parent then prints READY. All sleep
 * in pause(); on SIGUSR1 each reads its whole copy (reads only: sharing is kept) and
 * prints "PASS role pid" or "FAIL role pid bad=K". */
#include "victim.h"
#include <sys/mman.h>

static volatile sig_atomic_t poked;
static void on_usr1(int s) { (void)s; poked = 1; }

static inline uint64_t word(size_t i) { return (i * 0x9E3779B97F4A7C15ULL) | 1; }

static void serve(const char *role, const uint64_t *mem, size_t n) {
  for (;;) {
    while (!poked) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
    poked = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += mem[i] != word(i);
    if (bad) say("FAIL %s %d bad=%zu\n", role, getpid(), bad);
    else say("PASS %s %d\n", role, getpid());
  }
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 512;
  int kids = argc > 2 ? atoi(argv[2]) : 4;
  size_t len = mib << 20, n = len / sizeof(uint64_t);
  struct sigaction sa = { .sa_handler = on_usr1 };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  uint64_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) { say("FAIL mmap %s\n", strerror(errno)); return 1; }
  for (size_t i = 0; i < n; i++) mem[i] = word(i);
  say("PROC parent %d\n", getpid());
  int up[2];
  if (pipe(up)) { say("FAIL pipe\n"); return 1; }
  for (int k = 0; k < kids; k++) {
    pid_t c = fork();
    if (c < 0) { say("FAIL fork %s\n", strerror(errno)); return 1; }
    if (c == 0) {
      char role[16];
      snprintf(role, sizeof role, "child%d", k);
      say("PROC %s %d\n", role, getpid());
      close(up[0]);
      if (write(up[1], "k", 1) != 1) say("FAIL %s ready\n", role);
      close(up[1]);
      serve(role, mem, n);
    }
  }
  /* every child has printed its PROC line before READY */
  close(up[1]);
  char c;
  for (int k = 0; k < kids; k++) if (read(up[0], &c, 1) != 1) { say("FAIL child ready\n"); return 1; }
  close(up[0]);
  say("READY pid=%d mib=%zu children=%d addr=%p\n", getpid(), mib, kids, (void *)mem);
  serve("parent", mem, n);
}
