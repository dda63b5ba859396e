/* A process for lazy restore: argv[1] MiB (default 64) of patterned anonymous memory
 * plus a few small patterned areas, then pause() until SIGUSR1. Restored lazily, its
 * first touches of each area fault to the lazy-pages server; on SIGUSR1 it checks, in
 * this order, what must work while pages are still missing:
 *   kernel-read: read(2) from a pipe into an untouched page (the kernel itself faults);
 *   dontneed:    MADV_DONTNEED of an untouched page, which must then read as zeros;
 *   mremap:      an untouched area moved elsewhere keeps its contents;
 *   fork:        a child forked now sees the parent's contents (checked by the child);
 *   big-memory:  every word of the big area;
 * then prints DONE fails=N and waits.
 * With argv[2] "fork-wait", SIGUSR1 instead forks a child at once, prints CHILD pid=N,
 * and the child, on SIGUSR2, checks the second half of the big area (likely still
 * missing) and prints PASS child-memory or FAIL child-memory. With "fork-orphan", a
 * child forks that checker and exits at once, so the checker is reparented. */
#include "victim.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096UL
static volatile sig_atomic_t got_usr1;
static void on_usr1(int s) { (void)s; got_usr1 = 1; }
static inline uint64_t pat(uint64_t off) { return (off * 0x9E3779B97F4A7C15ULL) ^ 0x3C3C3C3CC3C3C3C3ULL; }
static int fails;

static void check(const char *name, int ok, const char *why) {
  if (!ok) fails++;
  say("%s %s%s%s\n", ok ? "PASS" : "FAIL", name, ok ? "" : ": ", ok ? "" : why);
}

static void fill(uint64_t *p, size_t len, uint64_t base) {
  for (size_t i = 0; i < len / 8; i++) p[i] = pat(base + i * 8);
}

static size_t bad_words(const uint64_t *p, size_t len, uint64_t base) {
  size_t bad = 0;
  for (size_t i = 0; i < len / 8; i++) bad += p[i] != pat(base + i * 8);
  return bad;
}

int main(int argc, char **argv) {
  size_t len = (argc > 1 ? strtoul(argv[1], NULL, 10) : 64) << 20;
  fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_APPEND);
  uint64_t *big = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  unsigned char *kbuf = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint64_t *moving = mmap(NULL, 8 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (big == MAP_FAILED || kbuf == MAP_FAILED || moving == MAP_FAILED) { say("FAIL mmap: %s\n", strerror(errno)); return 1; }
  fill(big, len, 0);
  fill((uint64_t *)kbuf, 16 * PAGE, 1UL << 40);
  fill(moving, 8 * PAGE, 2UL << 40);
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  say("READY pid=%d mib=%zu\n", getpid(), len >> 20);
  while (!got_usr1) pause();

  int orphan = argc > 2 && strcmp(argv[2], "fork-orphan") == 0;
  if (orphan || (argc > 2 && strcmp(argv[2], "fork-wait") == 0)) {
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    sigprocmask(SIG_BLOCK, &usr2, NULL);
    /* fork-orphan: a middle process forks the checker and exits (it is reparented). */
    pid_t mid = orphan ? fork() : 0;
    if (mid == 0) {
      pid_t c = fork();
      if (c == 0) {
        int sig;
        sigwait(&usr2, &sig);
        size_t badc = bad_words(big + len / 16, len / 2, len / 2);
        say("%s child-memory %zu bad words\n", badc == 0 ? "PASS" : "FAIL", badc);
        _exit(0);
      }
      say("CHILD pid=%d\n", (int)c);
      if (orphan) _exit(0);
    } else {
      waitpid(mid, NULL, 0);
    }
    for (;;) pause();
  }

  /* kernel-read: the kernel writes 64 bytes into the middle of an untouched page. */
  int p[2];
  char msg[64];
  for (int i = 0; i < 64; i++) msg[i] = (char)(i * 7 + 1);
  if (pipe(p) != 0 || write(p[1], msg, 64) != 64) { say("FAIL pipe\n"); return 1; }
  ssize_t n = read(p[0], kbuf + 5 * PAGE + 100, 64);
  unsigned char want[16 * PAGE];
  fill((uint64_t *)want, 16 * PAGE, 1UL << 40);
  memcpy(want + 5 * PAGE + 100, msg, 64);
  char why[128];
  snprintf(why, sizeof why, "read returned %zd (%s), contents %s", n, n < 0 ? strerror(errno) : "ok", memcmp(kbuf, want, sizeof want) ? "differ" : "match");
  check("kernel-read", n == 64 && memcmp(kbuf, want, sizeof want) == 0, why);

  /* dontneed: page 7 of the big area, never touched since the restore. */
  uint64_t *zp = big + 7 * PAGE / 8;
  madvise(zp, PAGE, MADV_DONTNEED);
  int zero = 1;
  for (size_t i = 0; i < PAGE / 8; i++) zero &= zp[i] == 0;
  check("dontneed", zero, "the page did not read as zeros after MADV_DONTNEED");
  fill(zp, PAGE, 7 * PAGE);

  /* mremap: move the untouched area to a new place. */
  void *dst = mmap(NULL, 8 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  uint64_t *moved = mremap(moving, 8 * PAGE, 8 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, dst);
  snprintf(why, sizeof why, "%zu bad words", moved == MAP_FAILED ? (size_t)-1 : bad_words(moved, 8 * PAGE, 2UL << 40));
  check("mremap", moved != MAP_FAILED && bad_words(moved, 8 * PAGE, 2UL << 40) == 0, why);

  /* fork: the child checks the second half of the big area, likely still missing in the parent. */
  pid_t c = fork();
  if (c == 0) _exit(bad_words(big + len / 16, len / 2, len / 2) == 0 ? 0 : 1);
  int st = 0;
  waitpid(c, &st, 0);
  check("fork", WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child saw other contents");

  size_t bad = bad_words(big, len, 0);
  snprintf(why, sizeof why, "%zu bad words", bad);
  check("big-memory", bad == 0, why);
  say("DONE fails=%d\n", fails);
  for (;;) pause();
}
