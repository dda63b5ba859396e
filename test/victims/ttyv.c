/* A shell job: counts on its terminal. Each line says whether stdin and stdout are
 * still terminals; FAIL if not, or if the count ever goes back. */
#include "victim.h"

int main(void) {
  say("READY pid=%d tty=%s\n", getpid(), isatty(1) ? ttyname(1) : "none");
  for (unsigned long n = 0;; n++) {
    int ok = isatty(0) && isatty(1);
    say("COUNT %lu %s\n", n, ok ? "PASS" : "FAIL");
    usleep(100000);
  }
}
