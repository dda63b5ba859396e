/* A process with a lot of state for dump/restore end to end: 256 MiB (argv[2] MiB) of
 * pattern-filled anonymous memory, a private file mapping with one page changed in
 * memory (COW), a PROT_NONE hole inside an anonymous area, a read-only area, a known
 * value in ymm15, a SIGUSR1 handler, a blocked pending SIGUSR2, a file open at a
 * known offset and an unlinked file with known contents.
 *
 * argv[1]: directory for its files. Prints READY, runs every check once (PRE lines),
 * loads ymm15 and prints ARMED from the same asm block, then waits in pause() without
 * touching ymm15 until SIGUSR1, then checks everything (PASS/FAIL lines) and prints
 * DONE, then waits forever. */
#include "victim.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define PAGE 4096UL
static volatile sig_atomic_t got_usr1, got_usr2;
static const char *prefix = "";
static int fails;

static void on_usr1(int s) { (void)s; got_usr1 = 1; }
static void on_usr2(int s) { (void)s; got_usr2++; }

static void check(const char *name, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check(const char *name, int ok, const char *fmt, ...) {
  char detail[256] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  if (!ok) fails++;
  say("%s%s %s%s%s\n", prefix, ok ? "PASS" : "FAIL", name, ok ? "" : ": ", ok ? "" : detail);
}

static inline uint64_t pat(uint64_t off) { return (off * 0x9E3779B97F4A7C15ULL) ^ 0x5A5A5A5A5A5A5A5AULL; }
static inline unsigned char filebyte(size_t i) { return (unsigned char)(i * 13 + 5); }

static uint64_t *big;
static size_t big_len;
static unsigned char *fmap, *holed, *ro;
#define FMAP_PAGES 4
#define HOLED_PAGES 16
#define HOLE_FIRST 6
#define HOLE_PAGES 4
#define RO_PAGES 2
static int seek_fd, gone_fd;
#define SEEK_LEN 10000
#define SEEK_OFF 4242
#define GONE_LEN 5000
static char dir[4096];
static int have_avx;
static unsigned char ymm_want[32] __attribute__((aligned(32)));
static unsigned char ymm_got[32] __attribute__((aligned(32)));

/* Permissions of the mapping that contains addr, from /proc/self/maps ("" if none). */
static const char *perms_at(const void *addr) {
  static char perms[8];
  perms[0] = 0;
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return perms;
  unsigned long lo, hi;
  char p[8];
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, p) == 3 && (unsigned long)addr >= lo && (unsigned long)addr < hi) {
      strcpy(perms, p);
      break;
    }
  }
  fclose(f);
  return perms;
}

static void check_all(void) {
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < big_len / 8; i++)
    if (big[i] != pat(i * 8)) { if (!bad++) first = i * 8; }
  check("big-memory", bad == 0, "%zu bad words, first at offset %zu", bad, first);

  /* Private file mapping: pages 0, 2, 3 as in the file, page 1 changed in memory only. */
  size_t fbad = 0;
  for (size_t i = 0; i < FMAP_PAGES * PAGE; i++) {
    unsigned char want = i / PAGE == 1 ? 0xAB : filebyte(i);
    if (fmap[i] != want) fbad++;
  }
  check("file-mapping", fbad == 0, "%zu bad bytes", fbad);
  char path[4200];
  snprintf(path, sizeof path, "%s/mapped.dat", dir);
  int fd = open(path, O_RDONLY);
  unsigned char page[PAGE];
  int disk_ok = fd >= 0 && pread(fd, page, PAGE, PAGE) == (ssize_t)PAGE;
  for (size_t i = 0; disk_ok && i < PAGE; i++) disk_ok = page[i] == filebyte(PAGE + i);
  if (fd >= 0) close(fd);
  check("file-mapping-cow", disk_ok, "the file on disk changed");
  check("file-mapping-perms", strcmp(perms_at(fmap), "rw-p") == 0, "perms %s", perms_at(fmap));

  /* An anonymous area with a PROT_NONE hole: contents around it, permissions of it. */
  size_t hbad = 0;
  for (size_t p = 0; p < HOLED_PAGES; p++) {
    if (p >= HOLE_FIRST && p < HOLE_FIRST + HOLE_PAGES) continue;
    for (size_t i = 0; i < PAGE; i++)
      if (holed[p * PAGE + i] != (unsigned char)(p * 31 + i)) hbad++;
  }
  check("holed-area", hbad == 0, "%zu bad bytes", hbad);
  char before[8], hole[8], afterp[8];
  strcpy(before, perms_at(holed));
  strcpy(hole, perms_at(holed + HOLE_FIRST * PAGE));
  strcpy(afterp, perms_at(holed + (HOLE_FIRST + HOLE_PAGES) * PAGE));
  check("hole-perms", !strcmp(before, "rw-p") && !strcmp(hole, "---p") && !strcmp(afterp, "rw-p"), "perms %s %s %s", before,
        hole, afterp);

  size_t rbad = 0;
  for (size_t i = 0; i < RO_PAGES * PAGE; i++)
    if (ro[i] != (unsigned char)(i ^ 0x3C)) rbad++;
  check("ro-area", rbad == 0 && !strcmp(perms_at(ro), "r--p"), "%zu bad bytes, perms %s", rbad, perms_at(ro));

  struct sigaction sa;
  sigaction(SIGUSR1, NULL, &sa);
  check("sigusr1-handler", sa.sa_handler == on_usr1 && (sa.sa_flags & SA_RESTART), "handler %p flags %#x", (void *)sa.sa_handler,
        (unsigned)sa.sa_flags);
  sigset_t mask, pend;
  sigprocmask(SIG_BLOCK, NULL, &mask);
  sigpending(&pend);
  check("sigusr2-blocked-pending", sigismember(&mask, SIGUSR2) && sigismember(&pend, SIGUSR2) && got_usr2 == 0,
        "blocked %d pending %d delivered %d", sigismember(&mask, SIGUSR2), sigismember(&pend, SIGUSR2), (int)got_usr2);

  off_t off = lseek(seek_fd, 0, SEEK_CUR);
  unsigned char b[16];
  int seek_ok = off == SEEK_OFF && pread(seek_fd, b, sizeof b, off) == (ssize_t)sizeof b;
  for (size_t i = 0; seek_ok && i < sizeof b; i++) seek_ok = b[i] == (unsigned char)((SEEK_OFF + i) * 7);
  check("file-offset", seek_ok, "offset %lld", (long long)off);

  struct stat st;
  int gone_ok = fstat(gone_fd, &st) == 0 && st.st_nlink == 0 && st.st_size == GONE_LEN;
  unsigned char g[GONE_LEN];
  gone_ok = gone_ok && pread(gone_fd, g, GONE_LEN, 0) == GONE_LEN;
  for (size_t i = 0; gone_ok && i < GONE_LEN; i++) gone_ok = g[i] == (unsigned char)(i * 3 + 1);
  check("unlinked-file", gone_ok, "nlink %lu size %lld", (unsigned long)st.st_nlink, (long long)st.st_size);
}

static void *map(size_t len, int prot) {
  void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { say("FAIL mmap %zu: %s\n", len, strerror(errno)); exit(1); }
  return p;
}

int main(int argc, char **argv) {
  snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : ".");
  big_len = (argc > 2 ? strtoul(argv[2], NULL, 10) : 256) << 20;
  big = map(big_len, PROT_READ | PROT_WRITE);
  for (size_t i = 0; i < big_len / 8; i++) big[i] = pat(i * 8);

  char path[4200];
  snprintf(path, sizeof path, "%s/mapped.dat", dir);
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  unsigned char page[PAGE];
  for (size_t p = 0; p < FMAP_PAGES; p++) {
    for (size_t i = 0; i < PAGE; i++) page[i] = filebyte(p * PAGE + i);
    if (write(fd, page, PAGE) != (ssize_t)PAGE) { say("FAIL write mapped.dat\n"); return 1; }
  }
  fmap = mmap(NULL, FMAP_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  if (fmap == MAP_FAILED) { say("FAIL mmap file\n"); return 1; }
  close(fd);
  (void)fmap[0]; /* page 0 read (file-backed), page 1 written (anonymous COW copy) */
  memset(fmap + PAGE, 0xAB, PAGE);

  holed = map(HOLED_PAGES * PAGE, PROT_READ | PROT_WRITE);
  for (size_t p = 0; p < HOLED_PAGES; p++)
    for (size_t i = 0; i < PAGE; i++) holed[p * PAGE + i] = (unsigned char)(p * 31 + i);
  mprotect(holed + HOLE_FIRST * PAGE, HOLE_PAGES * PAGE, PROT_NONE);

  ro = map(RO_PAGES * PAGE, PROT_READ | PROT_WRITE);
  for (size_t i = 0; i < RO_PAGES * PAGE; i++) ro[i] = (unsigned char)(i ^ 0x3C);
  mprotect(ro, RO_PAGES * PAGE, PROT_READ);

  handle_usr(on_usr1, on_usr2);
  sigset_t m;
  sigemptyset(&m);
  sigaddset(&m, SIGUSR2);
  sigprocmask(SIG_BLOCK, &m, NULL);
  raise(SIGUSR2);

  snprintf(path, sizeof path, "%s/seek.dat", dir);
  seek_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  unsigned char sbuf[SEEK_LEN];
  for (size_t i = 0; i < SEEK_LEN; i++) sbuf[i] = (unsigned char)(i * 7);
  if (write(seek_fd, sbuf, SEEK_LEN) != SEEK_LEN) { say("FAIL write seek.dat\n"); return 1; }
  lseek(seek_fd, SEEK_OFF, SEEK_SET);

  snprintf(path, sizeof path, "%s/gone.dat", dir);
  gone_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  unsigned char gbuf[GONE_LEN];
  for (size_t i = 0; i < GONE_LEN; i++) gbuf[i] = (unsigned char)(i * 3 + 1);
  if (write(gone_fd, gbuf, GONE_LEN) != GONE_LEN) { say("FAIL write gone.dat\n"); return 1; }
  unlink(path);

  __builtin_cpu_init();
  have_avx = __builtin_cpu_supports("avx") != 0;
  for (int i = 0; i < 32; i++) ymm_want[i] = (unsigned char)(0xC0 + i * 5);
  say("READY pid=%d avx=%d big=%p len=%zu\n", getpid(), have_avx, (void *)big, big_len);
  prefix = "PRE ";
  check_all();
  prefix = "";

  static const char armed[] = "ARMED\n";
  if (have_avx) {
    /* ymm15 is loaded, ARMED printed and pause() looped on in one asm block, so no
     * compiled code (or libc) runs between the load and the read back. */
    __asm__ volatile(
        "vmovdqu %[want], %%ymm15\n\t"
        "mov $1, %%eax\n\t"
        "mov $1, %%edi\n\t"
        "mov %[msg], %%rsi\n\t"
        "mov %[len], %%rdx\n\t"
        "syscall\n\t"
        "1:\n\t"
        "mov $34, %%eax\n\t" /* pause */
        "syscall\n\t"
        "cmpl $0, %[flag]\n\t"
        "je 1b\n\t"
        "vmovdqu %%ymm15, %[got]\n\t"
        : [got] "=m"(ymm_got)
        : [want] "m"(ymm_want), [msg] "r"(armed), [len] "r"(sizeof armed - 1), [flag] "m"(got_usr1)
        : "rax", "rdi", "rsi", "rdx", "rcx", "r11", "xmm15", "memory");
  } else {
    say("%s", armed);
    while (!got_usr1) pause();
  }
  check_all();
  if (have_avx) check("ymm15", memcmp(ymm_got, ymm_want, 32) == 0, "got %02x%02x..%02x", ymm_got[0], ymm_got[1], ymm_got[31]);
  sigprocmask(SIG_UNBLOCK, &m, NULL);
  check("sigusr2-delivered-once", got_usr2 == 1, "delivered %d times", (int)got_usr2);
  say("DONE fails=%d\n", fails);
  for (;;) pause();
}
