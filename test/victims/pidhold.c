/* Takes a given PID: clone3 with set_tid makes a child with exactly that PID, which
 * sleeps until killed. Prints "HOLD <pid>" (or "FAIL errno") and exits. */
#include "victim.h"
#include <linux/sched.h>
#include <sys/syscall.h>

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  pid_t want = atoi(argv[1]);
  struct clone_args args = {0};
  args.exit_signal = SIGCHLD;
  args.set_tid = (unsigned long)&want;
  args.set_tid_size = 1;
  long r = syscall(SYS_clone3, &args, sizeof args);
  if (r == 0) { for (;;) pause(); }
  if (r < 0) { say("FAIL %d\n", errno); return 1; }
  say("HOLD %ld\n", r);
  return 0;
}
