/*
 * Victim for SysV shared memory kept or made again at restore (memory/sysv.ts):
 *
 *   shm-sysv KEY   a segment with key KEY, 3 pages, mode 0640, owner 1234:5678, page 0
 *                  and page 2 written, page 1 never touched; attached once.
 *
 * Prints "READY pid=N id=ID", waits for SIGUSR1, then checks that the key still leads
 * to the same id, the attributes and contents are as set, and that a write through its
 * mapping is seen through a second attach. "PASS what" / "FAIL what" lines, then
 * "DONE fails=N".
 */
#include "victim.h"
#include <sys/ipc.h>
#include <sys/shm.h>

#define PG 4096
static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

#define MUST(x) do { if ((long)(x) < 0) { say("SETUP FAIL %s: %s\n", #x, strerror(errno)); exit(2); } } while (0)

static int pattern_ok(const unsigned char *p, unsigned char seed) {
  for (int i = 0; i < PG; i++) if (p[i] != (unsigned char)(seed + i * 7)) return 0;
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 2) { say("usage: shm-sysv KEY\n"); return 2; }
  key_t key = (key_t)strtol(argv[1], NULL, 0);
  struct sigaction sa = { .sa_handler = on_usr1 };
  MUST(sigaction(SIGUSR1, &sa, NULL));
  int id = shmget(key, 3 * PG, IPC_CREAT | IPC_EXCL | 0640);
  MUST(id);
  struct shmid_ds ds;
  MUST(shmctl(id, IPC_STAT, &ds));
  ds.shm_perm.uid = 1234;
  ds.shm_perm.gid = 5678;
  MUST(shmctl(id, IPC_SET, &ds));
  unsigned char *p = shmat(id, NULL, 0);
  if (p == (void *)-1) MUST(-1);
  for (int i = 0; i < PG; i++) { p[i] = (unsigned char)(1 + i * 7); p[2 * PG + i] = (unsigned char)(3 + i * 7); }
  say("READY pid=%d id=%d\n", getpid(), id);
  while (!go) usleep(10000);

  self_check(shmget(key, 0, 0) == id, "key leads to the same id", "shmget gives %d, want %d", shmget(key, 0, 0), id);
  int st = shmctl(id, IPC_STAT, &ds);
  self_check(st == 0 && (ds.shm_perm.mode & 0777) == 0640 && ds.shm_perm.uid == 1234 && ds.shm_perm.gid == 5678 && ds.shm_segsz == 3 * PG,
             "attributes", "stat %d mode %o uid %d gid %d size %zu", st, ds.shm_perm.mode & 0777, (int)ds.shm_perm.uid, (int)ds.shm_perm.gid,
             (size_t)ds.shm_segsz);
  int zero = 1;
  for (int i = 0; i < PG; i++) zero &= p[PG + i] == 0;
  self_check(pattern_ok(p, 1) && zero && pattern_ok(p + 2 * PG, 3), "contents", "page0 %d page1 zero %d page2 %d", pattern_ok(p, 1), zero,
             pattern_ok(p + 2 * PG, 3));
  unsigned char *again = shmat(id, NULL, SHM_RDONLY);
  p[PG + 5] = 42;
  self_check(again != (void *)-1 && again[PG + 5] == 42, "mapping is the segment", "second attach %p", (void *)again);
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
