/*
 * Victim for memory state that a restore could silently get wrong (an audit, issue 10):
 *
 *   auditmem FEATURE...   sets up each feature, prints READY, waits for SIGUSR1, then
 *                         checks each feature itself ("PASS what" / "FAIL what: why"),
 *                         then "DONE fails=N".
 * Features:
 *   anonname  an anonymous area named with PR_SET_VMA_ANON_NAME: [anon:ckpt-audit] in maps.
 *   guard     three written pages, the middle one a guard region (MADV_GUARD_INSTALL, 6.13+):
 *             reading it must still fault (SIGSEGV), the others keep their bytes.
 *   madv      areas with MADV_DONTFORK, MADV_WIPEONFORK, MADV_DONTDUMP, MADV_HUGEPAGE,
 *             MADV_NOHUGEPAGE, MADV_MERGEABLE: VmFlags dc wf dd hg nh mg; a forked child sees
 *             the wipe-on-fork page zeroed.
 *   droppable a MAP_DROPPABLE area (6.11, VmFlags dp): still droppable (it came back private).
 *   growsdown a MAP_GROWSDOWN area (VmFlags gd): it still grows when touched below its start.
 *   mdwe      prctl(PR_SET_MDWE, MDWE_REFUSE_EXEC_GAIN): PR_GET_MDWE says so, and an
 *             mprotect adding PROT_EXEC to a writable area fails.
 *   secret    a memfd_secret page (fd closed): the dump must refuse it.
 *   hugetlb   a MAP_HUGETLB page (needs vm.nr_hugepages): the dump must refuse it.
 *   mm        brk grown by 3 pages with a pattern, argv/environ as started, AT_RANDOM bytes,
 *             /proc/self/exe, a personality with READ_IMPLIES_EXEC.
 */
#include "victim.h"
#include <setjmp.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define PG 4096UL
#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif
#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#define PR_MDWE_REFUSE_EXEC_GAIN 1
#endif

static volatile sig_atomic_t go;
static void on_usr1(int sig) { (void)sig; go = 1; }

#define MUST(x) do { long must_ = (long)(x); if (must_ < 0 || (void *)must_ == MAP_FAILED) { say("SETUP FAIL %s: %s\n", #x, strerror(errno)); exit(2); } } while (0)


/* ---- anonname ---- */
static char *named;
static void anonname_setup(void) {
  named = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  MUST(named);
  if (prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, named, 2 * PG, "ckpt-audit")) { say("SKIP anonname: %s (no CONFIG_ANON_VMA_NAME)\n", strerror(errno)); exit(3); }
  strcpy(named, "named data");
}
static void anonname_check(void) {
  char l[512], fl[512];
  smaps_area(named, l, sizeof l, fl, sizeof fl);
  self_check(strstr(l, "[anon:ckpt-audit]") != NULL && strcmp(named, "named data") == 0, "anon name", "area %s", l);
}

/* ---- guard ---- */
static unsigned char *guarded, *bigg;
#define BIG (4UL << 30)
static sigjmp_buf segv_jmp;
static void on_segv(int sig) { (void)sig; siglongjmp(segv_jmp, 1); }

/* 1 when reading *p faults. */
static int faults(volatile unsigned char *p) {
  struct sigaction sa = {0}, old;
  sa.sa_handler = on_segv;
  sa.sa_flags = SA_NODEFER;
  sigaction(SIGSEGV, &sa, &old);
  int hit = 0;
  if (sigsetjmp(segv_jmp, 1) == 0) (void)*p;
  else hit = 1;
  sigaction(SIGSEGV, &old, NULL);
  return hit;
}

static void guard_setup(void) {
  guarded = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  MUST(guarded);
  memset(guarded, 0x5a, 3 * PG);
  if (madvise(guarded + PG, PG, MADV_GUARD_INSTALL) != 0) { say("SKIP guard: %s\n", strerror(errno)); exit(3); }
  if (!faults(guarded + PG)) { say("SETUP FAIL guard page does not fault\n"); exit(2); }
  /* A 4 GiB sparse area (scanned, not read whole) with a guard run in its middle. */
  bigg = mmap(NULL, BIG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  MUST(bigg);
  bigg[0] = 1;
  bigg[BIG / 2 + 2 * PG] = 2;
  MUST(madvise(bigg + BIG / 2, 2 * PG, MADV_GUARD_INSTALL));
}
static void guard_check(void) {
  int g = faults(guarded + PG);
  self_check(g, "guard page still faults", "the guard page at %p reads %#x", (void *)(guarded + PG), g ? 0 : guarded[PG]);
  self_check(guarded[0] == 0x5a && guarded[2 * PG] == 0x5a && guarded[3 * PG - 1] == 0x5a, "pages around the guard", "bytes %#x %#x", guarded[0], guarded[2 * PG]);
  int b1 = faults(bigg + BIG / 2), b2 = faults(bigg + BIG / 2 + PG), b3 = faults(bigg + BIG / 2 + 2 * PG);
  self_check(b1 && b2 && !b3 && bigg[0] == 1 && bigg[BIG / 2 + 2 * PG] == 2, "guard run in a 4 GiB sparse area", "faults %d %d %d", b1, b2, b3);
}

/* ---- madv ---- */
static struct { const char *flag; int advice; unsigned char *p; } advs[] = {
  { "dc", MADV_DONTFORK, 0 }, { "wf", MADV_WIPEONFORK, 0 }, { "dd", MADV_DONTDUMP, 0 },
  { "hg", MADV_HUGEPAGE, 0 }, { "nh", MADV_NOHUGEPAGE, 0 }, { "mg", MADV_MERGEABLE, 0 },
};
#define NADV (sizeof advs / sizeof advs[0])
static void madv_setup(void) {
  for (unsigned i = 0; i < NADV; i++) {
    /* A gap page between areas so that none merges with its neighbour. */
    unsigned char *p = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    MUST(p);
    munmap(p + 3 * PG, PG);
    memset(p, 0x30 + i, 3 * PG);
    MUST(madvise(p, 3 * PG, advs[i].advice));
    advs[i].p = p;
  }
}
static void madv_check(void) {
  for (unsigned i = 0; i < NADV; i++) {
    char what[64];
    snprintf(what, sizeof what, "VmFlags %s", advs[i].flag);
    self_check(smaps_has_flag(advs[i].p, advs[i].flag) && advs[i].p[PG] == 0x30 + i, what, "flag %d byte %#x", smaps_has_flag(advs[i].p, advs[i].flag), advs[i].p[PG]);
  }
  pid_t c = fork();
  if (c == 0) _exit(advs[1].p[0] == 0 ? 0 : 1);
  int st = 0;
  waitpid(c, &st, 0);
  self_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "wipe-on-fork page zero in a child", "status %#x", st);
}

/* ---- droppable ---- */
#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
static unsigned char *droppable;
static void droppable_setup(void) {
  droppable = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_DROPPABLE | MAP_ANONYMOUS, -1, 0);
  MUST(droppable);
  droppable[0] = 0x42;
}
static void droppable_check(void) {
  /* The kernel may drop its pages under memory pressure: 0 is as good as 0x42. */
  self_check(smaps_has_flag(droppable, "dp") && (droppable[0] == 0x42 || droppable[0] == 0), "MAP_DROPPABLE area", "dp %d byte %#x", smaps_has_flag(droppable, "dp"), droppable[0]);
}

/* ---- growsdown ---- */
static unsigned char *down;
static void growsdown_setup(void) {
  /* Room below it: map 64 pages, free the lower 48 so that it can grow into them. */
  unsigned char *base = mmap(NULL, 64 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  MUST(base);
  munmap(base, 64 * PG);
  down = mmap(base + 48 * PG, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN | MAP_FIXED_NOREPLACE, -1, 0);
  MUST(down);
  down[PG] = 0x77;
}
static void growsdown_check(void) {
  self_check(smaps_has_flag(down, "gd") && down[PG] == 0x77, "MAP_GROWSDOWN flag", "gd %d byte %#x", smaps_has_flag(down, "gd"), down[PG]);
  /* Touch the page just below the area: the kernel extends it (a fault otherwise). */
  int f = faults(down - PG);
  self_check(!f && smaps_has_flag(down - PG, "gd"), "MAP_GROWSDOWN area grows", "fault %d", f);
}

/* ---- mdwe ---- */
static unsigned char *rw;
static void mdwe_setup(void) {
  rw = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  MUST(rw);
  MUST(prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0));
}
static void mdwe_check(void) {
  int m = prctl(PR_GET_MDWE, 0, 0, 0, 0);
  self_check(m == PR_MDWE_REFUSE_EXEC_GAIN, "PR_GET_MDWE", "got %d", m);
  int r = mprotect(rw, PG, PROT_READ | PROT_WRITE | PROT_EXEC);
  self_check(r != 0, "MDWE refuses W+X", "mprotect returned %d", r);
}

/* ---- mm ---- */
static char *brk0, *brk1;
static char exe0[256], cmd0[256], rnd0[16];
static ssize_t cmdlen0;
static void read_file(const char *path, char *out, size_t n, ssize_t *len) {
  FILE *f = fopen(path, "r");
  size_t k = f ? fread(out, 1, n, f) : 0;
  if (f) fclose(f);
  if (len) *len = (ssize_t)k;
}
static void mm_setup(void) {
  brk0 = sbrk(0);
  MUST(sbrk(3 * PG));
  for (unsigned i = 0; i < 3 * PG; i++) brk0[i] = (char)(i * 13);
  MUST(readlink("/proc/self/exe", exe0, sizeof exe0 - 1));
  read_file("/proc/self/cmdline", cmd0, sizeof cmd0, &cmdlen0);
  memcpy(rnd0, (void *)getauxval(AT_RANDOM), 16);
  MUST(personality(personality(0xffffffff) | READ_IMPLIES_EXEC));
  brk1 = sbrk(0); /* stdio's buffers may have grown it too */
}
static void mm_check(void) {
  int ok = sbrk(0) == brk1;
  for (unsigned i = 0; ok && i < 3 * PG; i++) ok = brk0[i] == (char)(i * 13);
  self_check(ok, "brk and its contents", "brk %p, was %p", sbrk(0), (void *)brk1);
  char exe[256] = {0}, cmd[256];
  ssize_t len;
  readlink("/proc/self/exe", exe, sizeof exe - 1);
  self_check(strcmp(exe, exe0) == 0, "/proc/self/exe", "%s, was %s", exe, exe0);
  read_file("/proc/self/cmdline", cmd, sizeof cmd, &len);
  self_check(len == cmdlen0 && memcmp(cmd, cmd0, len) == 0, "/proc/self/cmdline", "length %zd, was %zd", len, cmdlen0);
  self_check(memcmp(rnd0, (void *)getauxval(AT_RANDOM), 16) == 0, "AT_RANDOM", "bytes differ");
  int pers = personality(0xffffffff);
  self_check(pers & READ_IMPLIES_EXEC, "personality READ_IMPLIES_EXEC", "personality %#x", pers);
  void *p = mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  self_check(p != MAP_FAILED && smaps_has_flag(p, "ex"), "READ_IMPLIES_EXEC makes new areas executable", "ex %d", p == MAP_FAILED ? -1 : smaps_has_flag(p, "ex"));
}

/* ---- secret, hugetlb (refused at dump: the process runs on) ---- */
static char *secret, *huge;
static void secret_setup(void) {
  int fd = syscall(447 /* memfd_secret */, 0);
  if (fd < 0) { say("SKIP secret: %s\n", strerror(errno)); exit(3); }
  MUST(ftruncate(fd, PG));
  secret = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  MUST(secret);
  close(fd);
  strcpy(secret, "secret");
}
static void secret_check(void) { self_check(strcmp(secret, "secret") == 0, "secret memory", "reads %.8s", secret); }
static void hugetlb_setup(void) {
  huge = mmap(NULL, 2UL << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
  if (huge == MAP_FAILED) { say("SKIP hugetlb: %s\n", strerror(errno)); exit(3); }
  strcpy(huge, "huge");
}
static void hugetlb_check(void) { self_check(strcmp(huge, "huge") == 0, "huge page", "reads %.8s", huge); }

static const struct victim_feature features[] = {
  { "anonname", anonname_setup, anonname_check }, { "guard", guard_setup, guard_check },
  { "madv", madv_setup, madv_check }, { "growsdown", growsdown_setup, growsdown_check },
  { "droppable", droppable_setup, droppable_check },
  { "mdwe", mdwe_setup, mdwe_check }, { "mm", mm_setup, mm_check },
  { "secret", secret_setup, secret_check }, { "hugetlb", hugetlb_setup, hugetlb_check },
};
#define NFEAT (sizeof features / sizeof features[0])

int main(int argc, char **argv) {
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  run_features(features, NFEAT, argc, argv, &go);
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
