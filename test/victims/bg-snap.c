/* Background snapshot (dump -R --background): SIZE MiB (argv[1], default 64) in AREAS
 * areas; page i holds pat(i, gen[i], w) in every word w. WRITERS threads keep rewriting
 * their share of pages with the next generation, then record it in gen[] (the page being
 * written is the only one that may differ from gen[]), and time every page with
 * CLOCK_MONOTONIC, keeping the longest gap: a stall (the freeze, or a write waiting for
 * ckpt). A snapshot that is not the memory of one moment has pages whose contents are
 * newer or older than gen[] says.
 * Mode "remap" (argv[2]): another thread keeps moving a 1 MiB area M with mremap.
 * Mode "unmap": another thread keeps unmapping M and mapping it again with new contents.
 * Mode "fork": another thread keeps forking a child that rewrites pages (its copies) and exits.
 * Mode "discard": another thread keeps discarding M (4 MiB) with MADV_DONTNEED and filling it again
 * with new contents (an allocator giving memory back to the kernel).
 * SIGUSR1: the threads pause (each at the end of a page), every page is checked against
 * gen[] and M against its pattern ("PASS what" / "FAIL what: why", "DONE fails=N"), then
 * they go on. SIGUSR2: "STALL max_us=N pages=M over_1ms=A over_5ms=B over_20ms=C" (the
 * longest gap, pages written, gaps longer than 1, 5, 20 ms), and they start again. */
#include "victim.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#define PAGE 4096
#define AREAS 8
#define WRITERS 2
static size_t M_SIZE = 1 << 20; /* 4 MiB in mode discard: an area ckpt chooses the pages of as it copies */

static inline uint64_t pat(uint64_t i, uint64_t g, uint64_t w) { return ((i << 24) ^ (g << 8) ^ w) * 0x9E3779B97F4A7C15ULL; }

static volatile sig_atomic_t want_check, want_stall;
static void on_usr1(int s) { (void)s; want_check++; }
static void on_usr2(int s) { (void)s; want_stall++; }

static size_t npages, per_area;
static uint64_t *area[AREAS];
static uint32_t *gen;
static atomic_int pause_req, paused;
static _Atomic uint64_t max_gap_ns;
static atomic_ulong gaps_1ms, gaps_5ms, gaps_20ms;
static atomic_ulong pages_done;
static int mode; /* 0 none, 1 remap, 2 unmap, 3 fork, 4 discard */
static char *m_base;          /* 3 MiB reserved: M lives at m_base or m_base + 2 MiB */
static char *_Atomic m_at;
static _Atomic uint64_t m_gen;

static uint64_t *page_at(size_t i) { return area[i / per_area] + (i % per_area) * (PAGE / 8); }

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* The last GAP_LOG gaps over 1 ms, each as (end, length) in ns of CLOCK_MONOTONIC: a bench
 * tells those of the freeze from those of the copy by when they ended. */
#define GAP_LOG 64
static _Atomic uint64_t gap_end[GAP_LOG], gap_len[GAP_LOG];
static atomic_ulong gap_next;

static void note_gap(uint64_t *last) {
  uint64_t t = now_ns(), gap = t - *last, m = atomic_load(&max_gap_ns);
  if (gap > 1000000) {
    unsigned long k = atomic_fetch_add(&gap_next, 1) % GAP_LOG;
    atomic_store(&gap_end[k], t);
    atomic_store(&gap_len[k], gap);
  }
  if (gap > 1000000) atomic_fetch_add(&gaps_1ms, 1);
  if (gap > 5000000) atomic_fetch_add(&gaps_5ms, 1);
  if (gap > 20000000) atomic_fetch_add(&gaps_20ms, 1);
  while (gap > m && !atomic_compare_exchange_weak(&max_gap_ns, &m, gap)) {}
  *last = t;
}

static void pause_point(uint64_t *last) {
  if (!atomic_load(&pause_req)) return;
  atomic_fetch_add(&paused, 1);
  while (atomic_load(&pause_req)) usleep(100);
  atomic_fetch_sub(&paused, 1);
  *last = now_ns();
}

static void *writer(void *arg) {
  size_t me = (size_t)arg, from = npages * me / WRITERS, to = npages * (me + 1) / WRITERS;
  uint64_t last = now_ns();
  for (;;) {
    for (size_t i = from; i < to; i++) {
      pause_point(&last);
      uint64_t *p = page_at(i), g = gen[i] + 1;
      for (int w = 0; w < PAGE / 8; w++) p[w] = pat(i, g, w);
      gen[i] = (uint32_t)g;
      atomic_fetch_add(&pages_done, 1);
      note_gap(&last);
    }
  }
  return NULL;
}

static void fill_m(char *m, uint64_t g) {
  for (size_t w = 0; w < M_SIZE / 8; w++) ((uint64_t *)m)[w] = pat(1u << 30, g, w);
}

static void *mover(void *arg) {
  (void)arg;
  uint64_t last = now_ns();
  for (;;) {
    pause_point(&last);
    char *m = atomic_load(&m_at);
    if (mode == 3) {
      pid_t c = fork();
      if (c == 0) {
        for (size_t i = 0; i < npages; i += npages / 16) memset(page_at(i), 0x5a, PAGE);
        _exit(0);
      }
      if (c > 0) waitpid(c, NULL, 0);
      usleep(800);
    } else if (mode == 1) {
      char *to = m == m_base ? m_base + 2 * M_SIZE : m_base;
      char *r = mremap(m, M_SIZE, M_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, to);
      if (r == MAP_FAILED) { say("FAIL mremap: %s\n", strerror(errno)); return NULL; }
      atomic_store(&m_at, r);
    } else if (mode == 4) {
      uint64_t g = atomic_load(&m_gen) + 1;
      if (madvise(m, M_SIZE, MADV_DONTNEED)) { say("FAIL madvise: %s\n", strerror(errno)); return NULL; }
      fill_m(m, g);
      atomic_store(&m_gen, g);
    } else {
      uint64_t g = atomic_load(&m_gen) + 1;
      munmap(m, M_SIZE);
      char *r = mmap(m, M_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
      if (r == MAP_FAILED) { say("FAIL mmap: %s\n", strerror(errno)); return NULL; }
      fill_m(r, g);
      atomic_store(&m_gen, g);
    }
    usleep(200);
  }
  return NULL;
}

static void check(void) {
  atomic_store(&pause_req, 1);
  int want = WRITERS + (mode ? 1 : 0);
  while (atomic_load(&paused) < want) usleep(100);
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < npages; i++) {
    const uint64_t *p = page_at(i);
    for (int w = 0; w < PAGE / 8; w++)
      if (p[w] != pat(i, gen[i], w)) {
        if (!bad++) first = i;
        break;
      }
  }
  self_check(bad == 0, "every page holds the generation its writer recorded", "%zu pages differ (first %zu: gen %u)", bad, first, bad ? gen[first] : 0);
  if (mode == 1 || mode == 2 || mode == 4) {
    const uint64_t *m = (const uint64_t *)atomic_load(&m_at);
    uint64_t g = atomic_load(&m_gen);
    size_t mbad = 0;
    for (size_t w = 0; w < M_SIZE / 8; w++) mbad += m[w] != pat(1u << 30, g, w);
    self_check(mbad == 0, "the moving area holds its pattern where it is", "%zu words differ", mbad);
  }
  say("DONE fails=%d\n", self_check_fails);
  atomic_store(&pause_req, 0);
  while (atomic_load(&paused) > 0) usleep(100);
}

int main(int argc, char **argv) {
  fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_APPEND);
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 64;
  const char *how = argc > 2 ? argv[2] : "";
  mode = !strcmp(how, "remap") ? 1 : !strcmp(how, "unmap") ? 2 : !strcmp(how, "fork") ? 3 : !strcmp(how, "discard") ? 4 : 0;
  if (mode == 4) M_SIZE = 4 << 20;
  npages = mib * 1024 * 1024 / PAGE;
  per_area = npages / AREAS;
  npages = per_area * AREAS;
  /* M's room first, above the areas: ckpt copies in address order, so M is copied last. */
  if (mode == 1 || mode == 2 || mode == 4) m_base = mmap(NULL, 3 * M_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  /* AREAS areas in one PROT_NONE reservation, a reserved page between each two. */
  char *base = mmap(NULL, (npages + AREAS) * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  gen = mmap(NULL, npages * sizeof *gen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED || gen == MAP_FAILED) { say("SETUP FAIL mmap: %s\n", strerror(errno)); return 1; }
  for (int a = 0; a < AREAS; a++) {
    area[a] = mmap(base + a * (per_area + 1) * PAGE, per_area * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (area[a] == MAP_FAILED) { say("SETUP FAIL mmap area: %s\n", strerror(errno)); return 1; }
  }
  for (size_t i = 0; i < npages; i++) {
    uint64_t *p = page_at(i);
    for (int w = 0; w < PAGE / 8; w++) p[w] = pat(i, 0, w);
  }
  if (mode == 1 || mode == 2 || mode == 4) {
    char *m = mmap(m_base, M_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (m_base == MAP_FAILED || m == MAP_FAILED) { say("SETUP FAIL mmap M: %s\n", strerror(errno)); return 1; }
    fill_m(m, 0);
    atomic_store(&m_at, m);
  }
  handle_usr(on_usr1, on_usr2);
  pthread_t t;
  for (size_t k = 0; k < WRITERS; k++) pthread_create(&t, NULL, writer, (void *)k);
  if (mode) pthread_create(&t, NULL, mover, NULL);
  say("READY pid=%d pages=%zu\n", getpid(), npages);
  int checks = 0, stalls = 0;
  for (;;) {
    if (want_check > checks) {
      checks++;
      check();
    }
    if (want_stall > stalls) {
      stalls++;
      uint64_t m = atomic_exchange(&max_gap_ns, 0);
      say("STALL max_us=%llu pages=%lu over_1ms=%lu over_5ms=%lu over_20ms=%lu\n", (unsigned long long)(m / 1000), atomic_load(&pages_done),
          atomic_exchange(&gaps_1ms, 0), atomic_exchange(&gaps_5ms, 0), atomic_exchange(&gaps_20ms, 0));
      unsigned long n = atomic_exchange(&gap_next, 0);
      for (unsigned long k = 0; k < n && k < GAP_LOG; k++) say("GAP end_ns=%llu us=%llu\n", (unsigned long long)gap_end[k], (unsigned long long)(gap_len[k] / 1000));
      say("GAPS n=%lu\n", n);
    }
    usleep(1000);
  }
}
