/* Forks short-lived children without pause, each exiting with a known status that the
 * parent checks with waitpid; TICK lines say PASS while every status was right. */
#include "victim.h"
#include <sys/wait.h>

int main(void) {
  unsigned long reaped = 0, bad = 0;
  say("READY pid=%d\n", getpid());
  double last = now_s();
  for (unsigned long k = 0;; k++) {
    pid_t c = fork();
    if (c == 0) _exit((int)(k & 0x7f));
    if (c < 0) { bad++; continue; }
    int st;
    pid_t w;
    while ((w = waitpid(c, &st, 0)) < 0 && errno == EINTR) {}
    if (w != c || !WIFEXITED(st) || WEXITSTATUS(st) != (int)(k & 0x7f)) bad++;
    reaped++;
    if (now_s() - last > 0.1) { last = now_s(); say("TICK %s reaped=%lu\n", bad ? "FAIL" : "PASS", reaped); }
  }
}
