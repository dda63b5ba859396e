/* Blocks in nanosleep (argv[1]=ns) or in read() on a pipe fed by a child (argv[1]=pipe)
 * or in poll() with a timeout (argv[1]=poll), and reports FAIL if the call ever sees EINTR
 * or returns early; PASS lines otherwise. */
#include "victim.h"
#include <poll.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "ns";
  int fds[2];
  if (strcmp(mode, "ns") != 0) {
    if (pipe(fds)) return 1;
    if (fork() == 0) { /* feeder: one byte every 300 ms */
      close(fds[0]);
      for (unsigned char c = 0;; c++) { usleep(300000); if (write(fds[1], &c, 1) != 1) _exit(0); }
    }
    close(fds[1]);
  }
  say("READY pid=%d mode=%s\n", getpid(), mode);
  unsigned char expect = 0;
  for (int n = 1;; n++) {
    double t0 = now_s();
    if (strcmp(mode, "ns") == 0) {
      struct timespec ts = {0, 300 * 1000 * 1000};
      int r = nanosleep(&ts, NULL);
      double dt = now_s() - t0;
      if (r != 0) say("FAIL nanosleep r=%d errno=%d\n", r, errno);
      else if (dt < 0.29) say("FAIL nanosleep early dt=%.3f\n", dt);
      else say("PASS n=%d dt=%.3f\n", n, dt);
    } else if (strcmp(mode, "pipe") == 0) {
      unsigned char c;
      ssize_t r = read(fds[0], &c, 1);
      if (r != 1) say("FAIL read r=%zd errno=%d\n", r, errno);
      else if (c != expect) say("FAIL read byte %u want %u\n", c, expect);
      else say("PASS n=%d byte=%u\n", n, c);
      expect = c + 1;
    } else {
      struct pollfd p = {fds[0], POLLIN, 0};
      int r = poll(&p, 1, 10000);
      unsigned char c;
      if (r != 1) { say("FAIL poll r=%d errno=%d\n", r, errno); continue; }
      if (read(fds[0], &c, 1) != 1 || c != expect) say("FAIL poll data %u want %u\n", c, expect);
      else say("PASS n=%d byte=%u\n", n, c);
      expect = c + 1;
    }
  }
}
