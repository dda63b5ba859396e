/* Incremental dumps: a process whose memory keeps changing between dump rounds.
 * A: 16 MiB of pages, page i holding a pattern of (i, gen[i]); B, C: 1 MiB each; a hot
 * page rewritten on every turn of the main loop (always dirty). On SIGUSR2 the main loop
 * makes the next round of changes (between two of its own updates, never in a signal
 * handler) and prints "ROUND n":
 *   1: rewrites A's pages i % 8 == 1; unmaps B and maps a new area at the same address
 *      with another pattern (not tracked since: saved whole);
 *   2: rewrites A's pages i % 8 == 2; MADV_DONTNEEDs A's pages i % 64 == 5 (zero now,
 *      and not reported written: they must not come back from an older round);
 *      mremaps C to a new address; maps a new area D.
 * On SIGUSR1 it checks everything ("PASS what" / "FAIL what: why", "DONE fails=N"). */
#include "victim.h"
#include <fcntl.h>
#include <sys/mman.h>

#define PAGE 4096
#define A_PAGES 4096
#define SMALL (1 << 20)

static volatile sig_atomic_t want_round, want_check;
static void on_usr1(int s) { (void)s; want_check++; }
static void on_usr2(int s) { (void)s; want_round++; }

static inline uint64_t pat(uint64_t what, uint64_t i, uint64_t gen) { return ((what << 48) ^ (i << 20) ^ gen) * 0x9E3779B97F4A7C15ULL; }

static uint64_t *A, *B, *C, *D, *hot;
static uint8_t gen[A_PAGES];
static int hot_stale;

static void fill_page(uint64_t *p, uint64_t what, uint64_t i, uint64_t g) {
  for (int w = 0; w < PAGE / 8; w++) p[w] = pat(what, i, g) + w;
}
static int page_ok(const uint64_t *p, uint64_t what, uint64_t i, uint64_t g) {
  for (int w = 0; w < PAGE / 8; w++) if (p[w] != pat(what, i, g) + w) return 0;
  return 1;
}
static void fill_area(uint64_t *a, size_t len, uint64_t what) {
  for (size_t i = 0; i < len / PAGE; i++) fill_page(a + i * PAGE / 8, what, i, 0);
}
static size_t bad_pages(const uint64_t *a, size_t len, uint64_t what) {
  size_t bad = 0;
  for (size_t i = 0; i < len / PAGE; i++) bad += !page_ok(a + i * PAGE / 8, what, i, 0);
  return bad;
}

static void round_(int n) {
  for (int i = 0; i < A_PAGES; i++) {
    if (i % 8 == n) {
      gen[i] = (uint8_t)(n + 1);
      fill_page(A + i * PAGE / 8, 'A', i, gen[i]);
    }
  }
  if (n == 1) {
    munmap(B, SMALL);
    void *b = mmap(B, SMALL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (b != B) say("FAIL round: remap B: %s\n", strerror(errno));
    fill_area(B, SMALL, 'b');
  } else if (n == 2) {
    for (int i = 5; i < A_PAGES; i += 64) {
      madvise(A + i * PAGE / 8, PAGE, MADV_DONTNEED);
      gen[i] = 0xff;
    }
    void *c = mremap(C, SMALL, SMALL, MREMAP_MAYMOVE | MREMAP_FIXED, (char *)C + 64 * SMALL);
    if (c == MAP_FAILED) say("FAIL round: mremap C: %s\n", strerror(errno));
    else C = c;
    D = mmap(NULL, SMALL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    fill_area(D, SMALL, 'D');
  }
}

static void check(int rounds, uint64_t turns) {
  size_t bad = 0, zero_bad = 0;
  for (int i = 0; i < A_PAGES; i++) {
    const uint64_t *p = A + i * PAGE / 8;
    if (gen[i] == 0xff) {
      for (int w = 0; w < PAGE / 8; w++) if (p[w]) { zero_bad++; break; }
    } else bad += !page_ok(p, 'A', i, gen[i]);
  }
  self_check(bad == 0, "A: every page holds its latest generation", "%zu pages differ", bad);
  if (rounds >= 2) self_check(zero_bad == 0, "A: pages dropped with MADV_DONTNEED read as zeros", "%zu pages are not zero", zero_bad);
  size_t b = bad_pages(B, SMALL, rounds >= 1 ? 'b' : 'B');
  self_check(b == 0, "B: the area mapped again holds its new pattern", "%zu pages differ", b);
  size_t c = bad_pages(C, SMALL, 'C');
  self_check(c == 0, "C: the mremapped area holds its pattern", "%zu pages differ", c);
  if (D) {
    size_t d = bad_pages(D, SMALL, 'D');
    self_check(d == 0, "D: the area mapped last holds its pattern", "%zu pages differ", d);
  }
  (void)turns;
  self_check(hot_stale == 0, "hot page: always the one written on the turn before", "stale %d times", hot_stale);
}

int main(void) {
  fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_APPEND);
  A = mmap(NULL, (size_t)A_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  B = mmap(NULL, SMALL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  C = mmap(NULL, SMALL, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  hot = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (A == MAP_FAILED || B == MAP_FAILED || C == MAP_FAILED || hot == MAP_FAILED) { say("SETUP FAIL mmap: %s\n", strerror(errno)); return 1; }
  for (int i = 0; i < A_PAGES; i++) fill_page(A + i * PAGE / 8, 'A', i, 0);
  fill_area(B, SMALL, 'B');
  fill_area(C, SMALL, 'C');
  handle_usr(on_usr1, on_usr2);
  say("READY pid=%d A=%p\n", getpid(), (void *)A);
  int rounds = 0, checks = 0;
  for (uint64_t turns = 1;; turns++) {
    // The page (memory) must agree with the counter (a register or the stack) of the turn before.
    if (turns > 1)
      for (int w = 0; w < PAGE / 8; w++)
        if (hot[w] != pat('H', turns - 1, 0) + w) { hot_stale++; break; }
    for (int w = 0; w < PAGE / 8; w++) hot[w] = pat('H', turns, 0) + w;
    if (want_round > rounds) {
      round_(++rounds);
      say("ROUND %d\n", rounds);
    }
    if (want_check > checks) {
      checks++;
      check(rounds, turns);
      say("DONE fails=%d\n", self_check_fails);
    }
    usleep(200);
  }
}
