/*
 * Victim for a pipe whose other end is outside the dump (resources/files/dump.ts):
 *
 *   pipe-out reader    the parent keeps the read end and reads; the child, which the
 *                      test dumps, holds only the write end (the dump must refuse it)
 *   pipe-out noreader  the parent closes the read end and waits: the child's pipe has
 *                      no reader at all (restored as it is: writes still fail, EPIPE)
 *
 * The child prints "READY pid=CHILD", waits for SIGUSR1, writes one byte and prints
 * "PASS ..." or "FAIL ..." and "DONE fails=N"; the parent prints "PARENT got N" for
 * what it reads.
 */
#include "victim.h"
#include <poll.h>
#include <sys/wait.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

int main(int argc, char **argv) {
  int reader = argc > 1 && strcmp(argv[1], "reader") == 0;
  int p[2];
  /* Only 0-2 from whoever started us (a test runner may leak a pipe): the pipe is fds 3 and 4. */
  for (int fd = 3; fd < 1024; fd++) close(fd);
  if (pipe(p) < 0) { say("SETUP FAIL pipe\n"); return 2; }
  struct sigaction sa = { .sa_handler = on_usr1 };
  sigaction(SIGUSR1, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  pid_t child = fork();
  if (child == 0) {
    close(p[0]);
    /* Until the parent has closed its read end: POLLERR on a write end means no reader. */
    struct pollfd pf = { .fd = p[1], .events = 0 };
    while (!reader && !(poll(&pf, 1, 0) == 1 && (pf.revents & POLLERR))) usleep(1000);
    say("READY pid=%d\n", getpid());
    while (!go) usleep(10000);
    ssize_t n = write(p[1], "x", 1);
    if (reader) self_check(n == 1, "write reaches the reader", "write %zd errno %d", n, errno);
    else self_check(n < 0 && errno == EPIPE, "write fails with EPIPE, as before", "write %zd errno %d", n, errno);
    say("DONE fails=%d\n", self_check_fails);
    return 0;
  }
  close(p[1]);
  if (!reader) close(p[0]);
  char c;
  if (reader) say("PARENT got %zd\n", read(p[0], &c, 1));
  /* Reaps the child when the dump kills it, so that its PID is free for the restore. */
  while (wait(NULL) < 0 && errno == EINTR) {}
  for (;;) pause();
}
