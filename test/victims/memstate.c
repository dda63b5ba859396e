/*
 * Victim for memory-area state that must survive dump and restore (issue 10):
 *
 *   memstate FEATURE...   sets up each feature, prints READY, waits for SIGUSR1, then
 *                         checks each feature and prints "PASS what" or
 *                         "FAIL what (detail)", then "DONE fails=N".
 *
 * Features:
 *   sparse    a 2 TiB MAP_NORESERVE area with pages written at its start, middle
 *             and end (and nothing else).
 *   mlock     an mlock()ed area, a MAP_LOCKED area and an mlock2(MLOCK_ONFAULT)
 *             area; each must come back locked (smaps VmFlags lo / lf), and an
 *             unlocked area must stay unlocked.
 *   mlockall  mlockall(MCL_CURRENT|MCL_FUTURE|MCL_ONFAULT): an area mapped after the
 *             restore must be locked on fault.
 *   future    mlockall(MCL_FUTURE) alone, then an area mapped: areas mapped before
 *             (the stack) stay unlocked, an area mapped after the restore is locked.
 *   futurebare  mlockall(MCL_FUTURE) as the last thing before READY, nothing mapped
 *             since (no area is locked at the dump): an area mapped after the restore
 *             is locked, and VmLck in /proc/self/status grows by it.
 *   stacklock the stack mlock()ed, no MCL_FUTURE: an area mapped after the restore
 *             is not locked (ckpt once read MCL_FUTURE off the stack).
 *   mapfile   a file opened O_RDWR and mapped MAP_SHARED PROT_READ: mprotect to
 *             PROT_WRITE must work after restore, and writes must reach the file;
 *             a memfd mapped MAP_SHARED from a read-only fd must stay unwritable.
 *   unaccounted  a PROT_NONE and a PROT_READ private page written through
 *             /proc/self/mem (never writable, so not charged: VmFlags without ac):
 *             contents kept, and still without ac; and pages written, dropped
 *             (MADV_DONTNEED) and made PROT_NONE (a reserve): still charged (ac).
 *   setuid    after the setup, drop to uid/gid 65534 (locks must survive it).
 */
#include "victim.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define PG 4096UL
#define SPARSE (2UL << 40)

static volatile sig_atomic_t go;
static void on_usr1(int sig) { (void)sig; go = 1; }

#define MUST(x) do { if ((long)(x) < 0 || (void *)(long)(x) == MAP_FAILED) { say("SETUP FAIL %s: %s\n", #x, strerror(errno)); exit(2); } } while (0)


/* ---- sparse ---- */
static unsigned char *sparse;
static const unsigned long sparse_at[] = { 0, SPARSE / 2, SPARSE - PG };

static void sparse_setup(void) {
  sparse = mmap(NULL, SPARSE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  MUST(sparse);
  for (unsigned i = 0; i < 3; i++) for (unsigned long j = 0; j < PG; j += 64) sparse[sparse_at[i] + j] = (unsigned char)(i * 7 + j / 64 + 1);
}

static void sparse_check(void) {
  for (unsigned i = 0; i < 3; i++) {
    unsigned long bad = 0;
    for (unsigned long j = 0; j < PG; j += 64) if (sparse[sparse_at[i] + j] != (unsigned char)(i * 7 + j / 64 + 1)) bad++;
    char what[64];
    snprintf(what, sizeof what, "sparse page at +0x%lx", sparse_at[i]);
    self_check(bad == 0, what, "%lu bytes differ, first reads %d", bad, sparse[sparse_at[i]]);
  }
  self_check(smaps_has_flag(sparse, "nr"), "sparse area still MAP_NORESERVE", "VmFlags lack nr");
  self_check(sparse[PG] == 0 && sparse[SPARSE - 2 * PG] == 0, "sparse untouched pages read zero", "nonzero");
}

/* ---- mlock ---- */
static unsigned char *locked, *maplocked, *onfault, *unlocked;

static void mlock_setup(void) {
  locked = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  MUST(locked);
  memset(locked, 0x11, 4 * PG);
  MUST(mlock(locked, 4 * PG));
  maplocked = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
  MUST(maplocked);
  maplocked[0] = 0x22;
  onfault = mmap(NULL, 8 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  MUST(onfault);
  MUST(syscall(SYS_mlock2, onfault, 8 * PG, 1 /* MLOCK_ONFAULT */));
  unlocked = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  MUST(unlocked);
  unlocked[0] = 0x33;
}

static void mlock_check(void) {
  self_check(smaps_has_flag(locked, "lo") && !smaps_has_flag(locked, "lf") && locked[PG] == 0x11, "mlock()ed area locked", "not lo");
  self_check(smaps_has_flag(maplocked, "lo") && maplocked[0] == 0x22, "MAP_LOCKED area locked", "not lo");
  self_check(smaps_has_flag(onfault, "lo") && smaps_has_flag(onfault, "lf"), "MLOCK_ONFAULT area locked on fault", "not lo+lf");
  unsigned char vec[8];
  self_check(mincore(onfault, 8 * PG, vec) == 0 && !(vec[5] & 1), "MLOCK_ONFAULT pages not faulted in", "page 5 resident");
  self_check(!smaps_has_flag(unlocked, "lo") && unlocked[0] == 0x33, "unlocked area not locked", "lo");
}

/* ---- mlockall ---- */
static unsigned char *before_all;

static void mlockall_setup(void) {
  before_all = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  MUST(before_all);
  MUST(mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT));
}

static void mlockall_check(void) {
  self_check(smaps_has_flag(before_all, "lo") && smaps_has_flag(before_all, "lf"), "area present at mlockall locked on fault", "not lo+lf");
  void *fresh = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  self_check(fresh != MAP_FAILED && smaps_has_flag(fresh, "lo") && smaps_has_flag(fresh, "lf"), "area mapped after restore locked (MCL_FUTURE|MCL_ONFAULT)", "not lo+lf");
  if (fresh != MAP_FAILED) munmap(fresh, 4 * PG);
}

static void future_check(void) {
  char here;
  self_check(!smaps_has_flag(&here, "lo"), "the stack, mapped before mlockall(MCL_FUTURE), is not locked", "lo");
  void *fresh = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  self_check(fresh != MAP_FAILED && smaps_has_flag(fresh, "lo") && !smaps_has_flag(fresh, "lf"), "area mapped after restore locked (MCL_FUTURE)", "not lo, or lf");
  if (fresh != MAP_FAILED) munmap(fresh, 4 * PG);
}

/* VmLck of /proc/self/status in KiB, read without malloc (nothing may be mapped before READY). */
static long vmlck_kb(void) {
  char buf[4096];
  int fd = open("/proc/self/status", O_RDONLY);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return -1;
  buf[n] = 0;
  char *at = strstr(buf, "VmLck:");
  return at ? strtol(at + 6, NULL, 10) : -1;
}

static void futurebare_check(void) {
  long before = vmlck_kb();
  void *fresh = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  long after = vmlck_kb();
  self_check(before == 0 && after == 4 * PG / 1024, "area mapped after restore counts in VmLck (MCL_FUTURE, nothing mapped since the call)", "VmLck %ld kB, then %ld kB", before, after);
  self_check(fresh != MAP_FAILED && smaps_has_flag(fresh, "lo") && !smaps_has_flag(fresh, "lf"), "area mapped after restore locked (MCL_FUTURE, nothing mapped since the call)", "not lo, or lf");
  if (fresh != MAP_FAILED) munmap(fresh, 4 * PG);
}

static void stacklock_setup(void) {
  char here;
  MUST(mlock((void *)(((unsigned long)&here & ~(PG - 1)) - 4 * PG), 5 * PG));
}

static void stacklock_check(void) {
  char here;
  self_check(smaps_has_flag(&here, "lo"), "the mlock()ed stack is locked", "not lo");
  void *fresh = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  self_check(fresh != MAP_FAILED && !smaps_has_flag(fresh, "lo"), "area mapped after restore not locked (no MCL_FUTURE)", "lo");
  if (fresh != MAP_FAILED) munmap(fresh, 4 * PG);
}

/* ---- unaccounted ---- */
static unsigned char *ua_none, *ua_ro, *ua_was_rw;

static void unaccounted_setup(void) {
  ua_none = mmap(NULL, PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  MUST(ua_none);
  ua_ro = mmap(NULL, 2 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  MUST(ua_ro);
  ua_was_rw = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  MUST(ua_was_rw);
  ua_was_rw[PG] = 1;
  MUST(madvise(ua_was_rw, 3 * PG, MADV_DONTNEED));
  MUST(mprotect(ua_was_rw, 3 * PG, PROT_NONE));
  int mem = open("/proc/self/mem", O_RDWR);
  MUST(mem);
  MUST(pwrite(mem, "guarded", 7, (off_t)(unsigned long)ua_none));
  MUST(pwrite(mem, "readonly", 8, (off_t)(unsigned long)ua_ro + PG));
  close(mem);
}

static void unaccounted_check(void) {
  char buf[8] = { 0 };
  int mem = open("/proc/self/mem", O_RDONLY);
  self_check(mem >= 0 && pread(mem, buf, 7, (off_t)(unsigned long)ua_none) == 7 && memcmp(buf, "guarded", 7) == 0, "PROT_NONE page written through /proc/self/mem keeps its bytes", "reads %.7s", buf);
  if (mem >= 0) close(mem);
  self_check(memcmp(ua_ro + PG, "readonly", 8) == 0 && ua_ro[0] == 0, "PROT_READ page written through /proc/self/mem keeps its bytes", "reads %.8s", ua_ro + PG);
  self_check(!smaps_has_flag(ua_none, "ac") && !smaps_has_flag(ua_ro, "ac"), "never-writable pages are still not charged (no ac)", "ac");
  self_check(smaps_has_flag(ua_was_rw, "ac") && !smaps_has_flag(ua_was_rw, "wr") && !smaps_has_flag(ua_was_rw, "rd"), "a page made PROT_NONE after it was writable is still charged (ac)", "no ac, or not PROT_NONE");
}

/* ---- mapfile ---- */
static unsigned char *mapped;
static int mapfd = -1;
static unsigned char *ro_map;

static void mapfile_setup(void) {
  int fd = open("mapped.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
  MUST(fd);
  MUST(ftruncate(fd, 2 * PG));
  MUST(pwrite(fd, "before", 6, 0));
  mapped = mmap(NULL, 2 * PG, PROT_READ, MAP_SHARED, fd, 0);
  MUST(mapped);
  close(fd);
  mapfd = open("mapped.dat", O_RDONLY);
  MUST(mapfd);
  /* A memfd mapped shared from a read-only fd: no VM_MAYWRITE. */
  int mfd = memfd_create("ckpt-ro", 0);
  MUST(mfd);
  MUST(ftruncate(mfd, PG));
  MUST(pwrite(mfd, "memfd", 5, 0));
  char path[64];
  snprintf(path, sizeof path, "/proc/self/fd/%d", mfd);
  int ro = open(path, O_RDONLY);
  MUST(ro);
  ro_map = mmap(NULL, PG, PROT_READ, MAP_SHARED, ro, 0);
  MUST(ro_map);
  close(ro);
  close(mfd);
}

static void mapfile_check(void) {
  self_check(memcmp(mapped, "before", 6) == 0, "shared file mapping contents", "reads %.6s", mapped);
  int r = mprotect(mapped, 2 * PG, PROT_READ | PROT_WRITE);
  self_check(r == 0, "mprotect(PROT_WRITE) of a shared mapping of a file opened O_RDWR", "%s", strerror(errno));
  int ro = mprotect(ro_map, PG, PROT_READ | PROT_WRITE);
  self_check(ro < 0 && errno == EACCES && memcmp(ro_map, "memfd", 5) == 0, "mprotect(PROT_WRITE) of a memfd mapped from a read-only fd still fails", "returned %d", ro);
  if (r != 0) return;
  memcpy(mapped + PG, "after", 5);
  char buf[6] = { 0 };
  self_check(pread(mapfd, buf, 5, PG) == 5 && memcmp(buf, "after", 5) == 0, "write through the mapping reaches the file", "file reads %.5s", buf);
}

int main(int argc, char **argv) {
  int on_sparse = 0, on_mlock = 0, on_mlockall = 0, on_mapfile = 0, on_setuid = 0, on_future = 0, on_futurebare = 0, on_stacklock = 0, on_unaccounted = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "sparse")) on_sparse = 1;
    else if (!strcmp(argv[i], "mlock")) on_mlock = 1;
    else if (!strcmp(argv[i], "mlockall")) on_mlockall = 1;
    else if (!strcmp(argv[i], "mapfile")) on_mapfile = 1;
    else if (!strcmp(argv[i], "future")) on_future = 1;
    else if (!strcmp(argv[i], "futurebare")) on_futurebare = 1;
    else if (!strcmp(argv[i], "stacklock")) on_stacklock = 1;
    else if (!strcmp(argv[i], "unaccounted")) on_unaccounted = 1;
    else if (!strcmp(argv[i], "setuid")) on_setuid = 1;
    else { say("SETUP FAIL unknown feature %s\n", argv[i]); return 2; }
  }
  signal(SIGUSR1, on_usr1);
  if (on_sparse) sparse_setup();
  if (on_mlock) mlock_setup();
  if (on_mapfile) mapfile_setup();
  if (on_mlockall) mlockall_setup();
  if (on_future) {
    MUST(mlockall(MCL_FUTURE));
    /* As a program does after it: maps something (then locked, which is how ckpt sees MCL_FUTURE). */
    MUST(mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  }
  if (on_stacklock) stacklock_setup();
  if (on_unaccounted) unaccounted_setup();
  if (on_setuid) {
    MUST(setgid(65534));
    MUST(setuid(65534));
  }
  if (on_futurebare) {
    say("SETUP futurebare\n"); /* stdout's buffer exists before the call: READY maps nothing */
    MUST(mlockall(MCL_FUTURE));
    if (vmlck_kb() != 0) say("SETUP FAIL futurebare: something is locked already\n");
  }
  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
  if (on_sparse) sparse_check();
  if (on_mlock) mlock_check();
  if (on_mlockall) mlockall_check();
  if (on_future) future_check();
  if (on_futurebare) futurebare_check();
  if (on_stacklock) stacklock_check();
  if (on_unaccounted) unaccounted_check();
  if (on_mapfile) mapfile_check();
  if (on_setuid) self_check(getuid() == 65534, "uid", "%d", getuid());
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
