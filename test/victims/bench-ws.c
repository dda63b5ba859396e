/* Benchmark victim for migration: allocates argv[1] MiB of anonymous memory, writes a
 * pattern to every page, prints READY, then keeps rewriting (with the same values) a
 * working set of the first argv[2] MiB, one pass about every 50 ms, so every pre-copy
 * round finds it dirty. On SIGUSR1 it checks all its memory and prints PASS or FAIL. */
#include "victim.h"
#include <sys/mman.h>

static volatile sig_atomic_t check;
static void on_usr1(int sig) { (void)sig; check = 1; }

static inline uint64_t word(size_t i) { return (i * 0x9E3779B97F4A7C15ULL) | 1; }

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64, hot = argc > 2 ? strtoul(argv[2], NULL, 10) : 16;
  size_t len = mib << 20, n = len / sizeof(uint64_t), hn = (hot << 20) / sizeof(uint64_t);
  if (hn > n) hn = n;
  uint64_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) { say("FAIL mmap %s\n", strerror(errno)); return 1; }
  for (size_t i = 0; i < n; i++) mem[i] = word(i);
  struct sigaction sa = { .sa_handler = on_usr1 };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  say("READY pid=%d mib=%zu hot=%zu\n", getpid(), mib, hot);
  for (;;) {
    /* One word per page: the page is dirty, the pass costs little CPU. */
    for (size_t i = 0; i < hn; i += 512) mem[i] = word(i);
    struct timespec ts = {0, 50000000};
    nanosleep(&ts, NULL);
    if (!check) continue;
    check = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += mem[i] != word(i);
    if (bad) say("FAIL pid=%d bad_words=%zu\n", getpid(), bad);
    else say("PASS pid=%d mib=%zu\n", getpid(), mib);
  }
}
