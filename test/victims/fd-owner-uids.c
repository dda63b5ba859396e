/* An fd owner set by a process that gave up root (F_SETOWN after setresuid): the kernel
 * records the setter's real and effective uid with the owner (F_GETOWNER_UIDS), which
 * decide whether SIGIO may be sent. Checked by the victim after restore (SIGUSR1);
 * prints READY, PASS/FAIL owner-uids, DONE. */
#include "victim.h"
#include <fcntl.h>

#ifndef F_GETOWNER_UIDS
#define F_GETOWNER_UIDS 17
#endif

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

int main(void) {
  signal(SIGUSR1, on_usr1);
  int p[2];
  if (pipe(p) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0) {
    say("FAIL setup: %s\n", strerror(errno));
    return 2;
  }
  unsigned before[2] = {0, 0}, after[2] = {0, 0};
  if (fcntl(p[0], F_SETOWN, getpid()) < 0 || fcntl(p[0], F_GETOWNER_UIDS, before) < 0) {
    say("FAIL setup: owner %s\n", strerror(errno));
    return 2;
  }
  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000);
  int r = fcntl(p[0], F_GETOWNER_UIDS, after);
  verdict("owner-uids", r == 0 && after[0] == before[0] && after[1] == before[1] && before[0] == 65534,
          "recorded %u/%u, was %u/%u", after[0], after[1], before[0], before[1]);
  say("DONE\n");
  return 0;
}
