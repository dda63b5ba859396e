/* Blocks in one call and reports whether it comes back the way it should:
 *   read FIFO  fd 0 is FIFO (made here, opened O_RDWR, so it never sees EOF by itself): blocks in
 *              read(0); "PASS read n=N data=TEXT" per chunk, "EOF" and exit 0 at end of file
 *   pause      pause(); PASS when it returns after the SIGUSR1 handler ran, FAIL otherwise
 *   poll0      poll(NULL, 0, 3000); PASS when it returns 0 after >= 3 s, FAIL on EINTR/early
 * Any other return (EINTR where SA_RESTART applies, a short sleep) is a FAIL line. */
#include "victim.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>

static volatile sig_atomic_t usr1;
static void on_usr1(int s) { (void)s; usr1++; }

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "pause";
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, NULL);
  if (strcmp(mode, "read") == 0) {
    const char *path = argc > 2 ? argv[2] : "fifo";
    if (mkfifo(path, 0600) && errno != EEXIST) { say("FAIL mkfifo: %s\n", strerror(errno)); return 1; }
    int fd = open(path, O_RDWR);
    if (fd < 0 || dup2(fd, 0) != 0) { say("FAIL open fifo: %s\n", strerror(errno)); return 1; }
    close(fd);
  }
  say("READY pid=%d mode=%s\n", getpid(), mode);
  for (int n = 1;; n++) {
    if (strcmp(mode, "read") == 0) {
      char buf[256];
      ssize_t r = read(0, buf, sizeof buf - 1);
      if (r < 0) { say("FAIL read r=%zd errno=%d\n", r, errno); continue; }
      if (r == 0) { say("EOF\n"); return 0; }
      while (r > 0 && buf[r - 1] == '\n') r--;
      buf[r] = 0;
      say("PASS read n=%d data=%s\n", n, buf);
    } else if (strcmp(mode, "pause") == 0) {
      int before = usr1;
      int r = pause();
      int e = errno;
      if (r == -1 && e == EINTR && usr1 > before) say("PASS pause n=%d usr1=%d\n", n, (int)usr1);
      else say("FAIL pause r=%d errno=%d usr1=%d before=%d\n", r, e, (int)usr1, before);
    } else {
      double t0 = now_s();
      int r = poll(NULL, 0, 3000);
      int e = errno;
      double dt = now_s() - t0;
      if (r != 0) say("FAIL poll r=%d errno=%d\n", r, e);
      else if (dt < 2.99) say("FAIL poll early dt=%.3f\n", dt);
      else say("PASS poll n=%d dt=%.3f\n", n, dt);
    }
  }
}
