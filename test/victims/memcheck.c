/* A process with argv[1] MiB (default 64) of patterned memory that checks itself on
 * every SIGUSR1 and prints one line, "CHECK n PASS" or "CHECK n FAIL: why": its
 * memory, its signal mask (SIGUSR1 and SIGUSR2 blocked outside sigsuspend, nothing
 * else) and its SIGUSR1 handler. For interrupted dumps and restores: the process must
 * run on, or come back, exactly as it was, any number of times. stdout is switched to
 * O_APPEND so that a restored copy (which gets its dump-time offset back) never
 * writes over the lines of an earlier one. Prints READY once filled. */
#include "victim.h"
#include <fcntl.h>
#include <sys/mman.h>

static volatile sig_atomic_t got;
static void on_usr1(int s) { (void)s; got++; }
static inline uint64_t pat(uint64_t off) { return (off * 0x9E3779B97F4A7C15ULL) ^ 0xA5A5A5A55A5A5A5AULL; }

static uint64_t *mem;
static size_t len;
static sigset_t want;

static void check(int n) {
  size_t bad = 0;
  for (size_t i = 0; i < len / 8; i++)
    if (mem[i] != pat(i * 8)) bad++;
  sigset_t cur;
  sigprocmask(SIG_BLOCK, NULL, &cur);
  int mask_ok = 1;
  for (int s = 1; s < NSIG; s++)
    if (s < 32 || (s >= SIGRTMIN && s <= SIGRTMAX)) mask_ok &= sigismember(&cur, s) == sigismember(&want, s);
  struct sigaction sa;
  sigaction(SIGUSR1, NULL, &sa);
  int handler_ok = sa.sa_handler == on_usr1;
  if (bad == 0 && mask_ok && handler_ok) say("CHECK %d PASS\n", n);
  else say("CHECK %d FAIL: %zu bad words, mask %s, handler %s\n", n, bad, mask_ok ? "ok" : "changed", handler_ok ? "ok" : "changed");
}

int main(int argc, char **argv) {
  len = (argc > 1 ? strtoul(argv[1], NULL, 10) : 64) << 20;
  fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_APPEND);
  mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) { say("FAIL mmap: %s\n", strerror(errno)); return 1; }
  for (size_t i = 0; i < len / 8; i++) mem[i] = pat(i * 8);
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  sigemptyset(&want);
  sigaddset(&want, SIGUSR1);
  sigaddset(&want, SIGUSR2);
  sigprocmask(SIG_SETMASK, &want, NULL);
  sigset_t wait;
  sigemptyset(&wait);
  sigaddset(&wait, SIGUSR2);
  say("READY pid=%d mib=%zu\n", getpid(), len >> 20);
  int seen = 0;
  for (;;) {
    sigsuspend(&wait);
    while (seen < got) check(++seen);
  }
}
