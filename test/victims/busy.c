/* A victim that keeps every thread busy in a different way while it is dumped, and
 * checks itself: for tests that kill ckpt at random moments of a dump.
 *
 * argv[1] MiB of pattern-filled memory, argv[2] threads, argv[3] child processes
 * (each a copy of the same program, forked before the threads start).
 * Threads alternate a register-heavy asm loop (values kept in rbx, r12-r15, rcx, r11
 * and xmm8/ymm9 across thousands of iterations, compared at the end), nanosleep and
 * a pattern read of their slice of memory. The main thread sleeps in 20 ms steps and
 * checks its signal mask (only SIGUSR2 blocked) every time.
 *
 * Prints "READY pid=P" per process. On SIGUSR1 each process checks all of its memory
 * and prints "CHECK pid=P PASS" or "CHECK pid=P FAIL: reasons"; any thread that saw
 * its registers or memory change prints FAIL at once. */
#include "victim.h"
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

static volatile sig_atomic_t want_check;
static volatile int fails;
static uint64_t *mem;
static size_t words;
static int nthreads;

static void on_usr1(int s) { (void)s; want_check = 1; }

static inline uint64_t pat(uint64_t i) { return (i * 0x9E3779B97F4A7C15ULL) ^ 0xA5A5A5A5DEADBEEFULL; }

static void fail(const char *what, uint64_t a, uint64_t b) {
  __sync_fetch_and_add(&fails, 1);
  say("FAIL pid=%d %s: 0x%llx != 0x%llx\n", getpid(), what, (unsigned long long)a, (unsigned long long)b);
}

/* Registers that the compiler would never keep across a syscall-free loop of this
 * length must come back as they were, whatever ckpt did in between. */
static void asm_loop(uint64_t seed) {
  uint64_t out_rbx, out_r12, out_r15, out_x8, out_y9;
  uint64_t n = 200000;
  __asm__ volatile(
      "movq %[seed], %%rbx\n"
      "movq %[seed], %%r12\n"
      "notq %%r12\n"
      "movq %[seed], %%r15\n"
      "movq %[seed], %%xmm8\n"
      "vpbroadcastq %%xmm8, %%ymm9\n"
      "1:\n"
      "addq $3, %%rbx\n"
      "subq $5, %%r12\n"
      "xorq %%rbx, %%r15\n"
      "decq %[n]\n"
      "jnz 1b\n"
      "movq %%rbx, %[rbx]\n"
      "movq %%r12, %[r12]\n"
      "movq %%r15, %[r15]\n"
      "movq %%xmm8, %[x8]\n"
      "vextracti128 $1, %%ymm9, %%xmm10\n"
      "movq %%xmm10, %[y9]\n"
      : [rbx] "=m"(out_rbx), [r12] "=m"(out_r12), [r15] "=m"(out_r15), [x8] "=m"(out_x8), [y9] "=m"(out_y9), [n] "+r"(n)
      : [seed] "r"(seed)
      : "rbx", "r12", "r15", "xmm8", "xmm9", "xmm10", "cc", "memory");
  uint64_t rbx = seed, r12 = ~seed, r15 = seed;
  for (int i = 0; i < 200000; i++) { rbx += 3; r12 -= 5; r15 ^= rbx; }
  if (out_rbx != rbx) fail("rbx", out_rbx, rbx);
  if (out_r12 != r12) fail("r12", out_r12, r12);
  if (out_r15 != r15) fail("r15", out_r15, r15);
  if (out_x8 != seed) fail("xmm8", out_x8, seed);
  if (out_y9 != seed) fail("ymm9 upper half", out_y9, seed);
}

static int check_slice(size_t from, size_t to) {
  for (size_t i = from; i < to; i++)
    if (mem[i] != pat(i)) { fail("memory", mem[i], pat(i)); return 0; }
  return 1;
}

static void *worker(void *arg) {
  long id = (long)arg;
  size_t slice = words / (size_t)nthreads, from = slice * (size_t)id;
  for (uint64_t round = 0;; round++) {
    asm_loop(round * 7919 + (uint64_t)id);
    struct timespec ts = {0, 1000000 * (id % 3 + 1)};
    nanosleep(&ts, NULL);
    size_t step = slice / 64 + 1, at = from + (round % 64) * step;
    check_slice(at, at + step < from + slice ? at + step : from + slice);
  }
  return NULL;
}

static void run(void) {
  sigset_t mask, cur;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  pthread_sigmask(SIG_SETMASK, &mask, NULL);
  for (long i = 0; i < nthreads; i++) {
    pthread_t t;
    pthread_create(&t, NULL, worker, (void *)i);
  }
  say("READY pid=%d\n", getpid());
  for (;;) {
    struct timespec ts = {0, 20000000};
    nanosleep(&ts, NULL);
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    for (int s = 1; s < 32; s++)
      if (s != SIGKILL && s != SIGSTOP && sigismember(&cur, s) != sigismember(&mask, s)) fail("signal mask bit", (uint64_t)s, (uint64_t)sigismember(&mask, s));
    if (want_check) {
      want_check = 0;
      int ok = check_slice(0, words) && fails == 0;
      say("CHECK pid=%d %s\n", getpid(), ok ? "PASS" : "FAIL");
    }
  }
}

int main(int argc, char **argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
  nthreads = argc > 2 ? atoi(argv[2]) : 1;
  int children = argc > 3 ? atoi(argv[3]) : 0;
  if (nthreads < 1) nthreads = 1;
  words = mib * 1024 * 1024 / 8;
  mem = mmap(NULL, words * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) { say("FAIL mmap\n"); return 1; }
  for (size_t i = 0; i < words; i++) mem[i] = pat(i);
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  for (int c = 0; c < children; c++)
    if (fork() == 0) run();
  run();
}
