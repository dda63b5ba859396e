/*
 * One process holding every kind of shared memory ckpt restores:
 *  - a MAP_SHARED|MAP_ANONYMOUS area whose first 4 pages were unmapped (so the
 *    mapping starts at offset 16 KiB of its object);
 *  - a memfd "ckpt-shm" with an fd, a shared mapping and seals (SHRINK|GROW);
 *  - a POSIX shm file /dev/shm/ckpt-shm-PID mapped shared;
 *  - a SysV segment (IPC_PRIVATE) attached once.
 * Every tick it bumps a counter in each area, checks the areas against its private
 * copy, and checks the sharing itself: a pwrite to the memfd fd shows in its mapping,
 * a second shmat of the segment sees the first, the /dev/shm file holds what the
 * mapping wrote. With argument "nofd" the memfd fd is closed (mapping only). Prints "TICK n ok" or "FAIL what".
 */
#include "victim.h"
#include <fcntl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

#define PG 4096
static unsigned char *anon, *mfd_map, *posix_map, *sysv_map;
static int mfd, sysv_id;
static char posix_name[64];

static void fail(const char *what) {
  say("FAIL %s (errno %d)\n", what, errno);
  exit(1);
}

static int check_pattern(const unsigned char *p, size_t len, unsigned seed) {
  for (size_t i = 8; i < len; i += 509) if (p[i] != (unsigned char)(seed + i)) return 0;
  return 1;
}

static void fill(unsigned char *p, size_t len, unsigned seed) {
  for (size_t i = 8; i < len; i++) p[i] = (unsigned char)(seed + i);
}

int main(int argc, char **argv) {
  int keep_fd = !(argc > 1 && strcmp(argv[1], "nofd") == 0);
  unsigned char *whole = mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (whole == MAP_FAILED) fail("mmap anon shared");
  fill(whole, 16 * PG, 1);
  munmap(whole, 4 * PG);
  anon = whole + 4 * PG; /* 12 pages, object offset 16 KiB */

  mfd = memfd_create("ckpt-shm", MFD_ALLOW_SEALING);
  if (mfd < 0) fail("memfd_create");
  if (ftruncate(mfd, 8 * PG) < 0) fail("ftruncate memfd");
  mfd_map = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
  if (mfd_map == MAP_FAILED) fail("mmap memfd");
  fill(mfd_map, 8 * PG, 2);
  if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) fail("F_ADD_SEALS");

  snprintf(posix_name, sizeof posix_name, "/ckpt-shm-%d", getpid());
  int pfd = shm_open(posix_name, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (pfd < 0) fail("shm_open");
  if (ftruncate(pfd, 4 * PG) < 0) fail("ftruncate shm");
  posix_map = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, pfd, 0);
  if (posix_map == MAP_FAILED) fail("mmap shm");
  close(pfd);
  fill(posix_map, 4 * PG, 3);

  sysv_id = shmget(IPC_PRIVATE, 8 * PG, IPC_CREAT | 0600);
  if (sysv_id < 0) fail("shmget");
  sysv_map = shmat(sysv_id, NULL, 0);
  if (sysv_map == (void *)-1) fail("shmat");
  shmctl(sysv_id, IPC_RMID, NULL); /* gone once the last detach happens */
  fill(sysv_map, 8 * PG, 4);

  if (!keep_fd) close(mfd); /* the mapping alone keeps the memfd */
  memset(anon, 0, 8);
  say("READY pid=%d anon=%p memfd=%d sysv=%d posix=%s\n", getpid(), (void *)anon, mfd, sysv_id, posix_name);
  uint64_t n = 0;
  for (;;) {
    n++;
    unsigned char *areas[] = { anon, mfd_map, posix_map, sysv_map };
    size_t lens[] = { 12 * PG, 8 * PG, 4 * PG, 8 * PG };
    unsigned seeds[] = { 1 + 4 * PG, 2, 3, 4 };
    for (int k = 0; k < 4; k++) {
      if (*(uint64_t *)areas[k] != n - 1) { say("FAIL counter of area %d: %lu, want %lu\n", k, (unsigned long)*(uint64_t *)areas[k], (unsigned long)(n - 1)); exit(1); }
      if (!check_pattern(areas[k], lens[k], seeds[k])) { say("FAIL pattern of area %d\n", k); exit(1); }
      *(uint64_t *)areas[k] = n;
    }
    /* memfd: the fd and the mapping are one object; seals kept; name kept */
    uint64_t v = n * 7, got = 0;
    if (keep_fd) {
    if (pwrite(mfd, &v, 8, PG) != 8) fail("pwrite memfd");
    memcpy(&got, mfd_map + PG, 8);
    if (got != v) fail("memfd write through fd not seen in its mapping");
    if (fcntl(mfd, F_GET_SEALS) != (F_SEAL_SHRINK | F_SEAL_GROW)) fail("memfd seals");
    char link[128] = {0}, path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", mfd);
    if (readlink(path, link, sizeof link - 1) < 0 || strcmp(link, "/memfd:ckpt-shm (deleted)") != 0) fail("memfd name");
    }
    /* SysV: a second attach sees the first */
    unsigned char *again = shmat(sysv_id, NULL, SHM_RDONLY);
    if (again == (void *)-1) fail("second shmat");
    if (*(uint64_t *)again != n) fail("second shmat does not see the segment");
    shmdt(again);
    struct shmid_ds ds;
    if (shmctl(sysv_id, IPC_STAT, &ds) < 0 || ds.shm_segsz != 8 * PG) fail("shmctl IPC_STAT");
    /* POSIX shm: the file holds what the mapping wrote */
    int f = shm_open(posix_name, O_RDONLY, 0);
    if (f < 0 || pread(f, &got, 8, 0) != 8 || got != n) fail("/dev/shm file does not match its mapping");
    close(f);
    say("TICK %lu ok\n", (unsigned long)n);
    usleep(50000);
  }
}
