/* Benchmark victim: allocates argv[1] MiB (default 64) of anonymous memory, writes a
 * non-zero pattern to every page so all of them are present, prints READY, then
 * sleeps; with argv[2] (MiB, default 0) it rewrites (with the same values, one word per
 * page) a working set of that many MiB every ~20 ms, so every pre-copy round of a
 * migration finds it dirty. On SIGUSR1 it checks the whole pattern and prints PASS or FAIL. It sleeps in
 * 20 ms steps rather than pause(): a SIGUSR1 whose handler runs just before pause() is
 * entered again (e.g. right after a dump lets the process go) would be lost. */
#include "victim.h"
#include <sys/mman.h>

static volatile sig_atomic_t check;
static void on_usr1(int sig) { (void)sig; check = 1; }

static inline uint64_t word(size_t i) { return (i * 0x9E3779B97F4A7C15ULL) | 1; }

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
  size_t len = mib << 20, n = len / sizeof(uint64_t);
  size_t hn = argc > 2 ? (strtoul(argv[2], NULL, 10) << 20) / sizeof(uint64_t) : 0;
  if (hn > n) hn = n;
  uint64_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) { say("FAIL mmap %s\n", strerror(errno)); return 1; }
  for (size_t i = 0; i < n; i++) mem[i] = word(i);
  struct sigaction sa = { .sa_handler = on_usr1 };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  say("READY pid=%d mib=%zu addr=%p\n", getpid(), mib, (void *)mem);
  for (;;) {
    for (size_t i = 0; i < hn; i += 512) mem[i] = word(i);
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    if (!check) continue;
    check = 0;
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += mem[i] != word(i);
    if (bad) say("FAIL pid=%d bad_words=%zu\n", getpid(), bad);
    else say("PASS pid=%d mib=%zu\n", getpid(), mib);
  }
}
