/*
 * Victim: a file mapped shared and held open as an fd after its name was removed.
 *   mapdel    prints READY, then on SIGUSR1 writes through the fd and checks the
 *             mapping sees it ("PASS ..."), then "DONE fails=N".
 * ckpt refuses such a process (the two would come back as two files); the test
 * checks the refusal and that the process runs on as it was.
 */
#include "victim.h"
#include <fcntl.h>
#include <sys/mman.h>

static volatile sig_atomic_t go;
static void on_usr1(int sig) { (void)sig; go = 1; }

int main(void) {
  int fd = open("mapped-deleted.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ftruncate(fd, 4096) < 0) { say("SETUP FAIL open\n"); return 2; }
  char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) { say("SETUP FAIL mmap\n"); return 2; }
  memcpy(m, "before", 6);
  unlink("mapped-deleted.dat");
  signal(SIGUSR1, on_usr1);
  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000); /* not pause(): see memstate.c */
  self_check(pwrite(fd, "after!", 6, 0) == 6 && memcmp(m, "after!", 6) == 0, "a write through the fd shows in the mapping", "mapping reads %.6s", m);
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
