/* A shell job: counts on its terminal. Each line says whether stdin and stdout are
 * still terminals, still with the setting it made at start (VEOL '#') and with its
 * process group in the foreground; FAIL if not, or if the count ever goes back. On
 * SIGINT (Ctrl-C on its terminal) it says "GOT SIGINT" and exits with status 130. */
#include "victim.h"
#include <termios.h>

static void on_int(int s) {
  (void)s;
  static const char msg[] = "GOT SIGINT\n";
  if (write(1, msg, sizeof msg - 1) < 0) _exit(1);
  _exit(130);
}

int main(void) {
  signal(SIGINT, on_int);
  struct termios t;
  if (tcgetattr(0, &t) == 0) {
    t.c_cc[VEOL] = '#';
    tcsetattr(0, TCSANOW, &t);
  }
  say("READY pid=%d tty=%s\n", getpid(), isatty(1) ? ttyname(1) : "none");
  for (unsigned long n = 0;; n++) {
    int ok = isatty(0) && isatty(1) && tcgetattr(0, &t) == 0 && t.c_cc[VEOL] == '#' && tcgetpgrp(0) == getpgrp();
    say("COUNT %lu %s\n", n, ok ? "PASS" : "FAIL");
    usleep(100000);
  }
}
