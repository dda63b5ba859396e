/* Signal-driven I/O, checked by the victim itself after restore (SIGUSR1):
 *   fd 3  read end of a pipe (fd 4 its write end): O_ASYNC, owner this process, F_SETSIG SIGRTMIN+3
 *   fd 5  a socketpair end (fd 6 its peer): O_ASYNC, owner this process group, SIGIO (no F_SETSIG)
 *   fd 7  read end of a second pipe (fd 8): owner and F_SETSIG set, but no O_ASYNC: no signal
 * After restore: F_GETOWN_EX/F_GETSIG/F_GETFL read back as set; data written to fd 4
 * brings SIGRTMIN+3 with si_fd 3, data to fd 6 brings SIGIO, data to fd 8 brings nothing.
 */
#include "selfcheck.h"
#include <fcntl.h>
#include <sys/socket.h>

static volatile sig_atomic_t rt_count, rt_fd = -1, io_count;
static void on_rt(int s, siginfo_t *si, void *uc) {
  (void)s, (void)uc;
  rt_count++;
  rt_fd = si->si_fd;
}
static void on_io(int s) { (void)s; io_count++; }

static void own(int fd, int type, pid_t who) {
  struct f_owner_ex ex = {.type = type, .pid = who};
  if (fcntl(fd, F_SETOWN_EX, &ex) < 0) fatal("F_SETOWN_EX");
}

static void check_owner(int fd, int type, pid_t who, int sig, int async) {
  struct f_owner_ex ex = {0};
  CHECK(fcntl(fd, F_GETOWN_EX, &ex) == 0 && ex.type == type && ex.pid == who, "fd %d owner %d:%d, expected %d:%d", fd,
        ex.type, ex.pid, type, who);
  CHECK(fcntl(fd, F_GETSIG) == sig, "fd %d signal %d, expected %d", fd, fcntl(fd, F_GETSIG), sig);
  CHECK(!!(fcntl(fd, F_GETFL) & O_ASYNC) == async, "fd %d O_ASYNC is %s", fd, async ? "off" : "on");
}

/* Waits up to 2 s for *count to reach want. */
static int wait_for(volatile sig_atomic_t *count, int want) {
  for (int i = 0; i < 2000 && *count < want; i++) usleep(1000);
  return *count >= want;
}

int main(void) {
  catch_usr1();
  struct sigaction rt = {.sa_sigaction = on_rt, .sa_flags = SA_SIGINFO};
  sigaction(SIGRTMIN + 3, &rt, NULL);
  struct sigaction io = {.sa_handler = on_io};
  sigaction(SIGIO, &io, NULL);
  /* Our own group, so a group owner never signals whoever started us. */
  if (setpgid(0, 0) < 0) fatal("setpgid");
  pid_t me = getpid();

  int p[2], s[2], q[2];
  if (pipe(p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, s) < 0 || pipe(q) < 0) fatal("pipe/socketpair");
  put_at(p[0], 13), put_at(p[1], 14), put_at(s[0], 15), put_at(s[1], 16), put_at(q[0], 17), put_at(q[1], 18);
  for (int i = 3; i <= 8; i++) put_at(i + 10, i);
  own(3, F_OWNER_PID, me);
  if (fcntl(3, F_SETSIG, SIGRTMIN + 3) < 0) fatal("F_SETSIG");
  if (fcntl(3, F_SETFL, fcntl(3, F_GETFL) | O_ASYNC | O_NONBLOCK) < 0) fatal("O_ASYNC 3");
  own(5, F_OWNER_PGRP, me);
  if (fcntl(5, F_SETFL, fcntl(5, F_GETFL) | O_ASYNC) < 0) fatal("O_ASYNC 5");
  own(7, F_OWNER_PID, me);
  if (fcntl(7, F_SETSIG, SIGRTMIN + 3) < 0) fatal("F_SETSIG 7");
  say("READY pid=%d\n", me);
  while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */

  check_owner(3, F_OWNER_PID, me, SIGRTMIN + 3, 1);
  check_owner(5, F_OWNER_PGRP, me, 0, 1);
  check_owner(7, F_OWNER_PID, me, SIGRTMIN + 3, 0);
  CHECK(rt_count == 0 && io_count == 0, "signals before any data: rt %d io %d", rt_count, io_count);
  CHECK(write(8, "z", 1) == 1, "write fd 8");
  CHECK(write(4, "x", 1) == 1, "write fd 4");
  CHECK(wait_for(&rt_count, 1) && rt_fd == 3, "no SIGRTMIN+3 for fd 3 (count %d, si_fd %d)", rt_count, rt_fd);
  CHECK(rt_count == 1, "fd 7 without O_ASYNC signalled too (count %d)", rt_count);
  CHECK(write(6, "y", 1) == 1, "write fd 6");
  CHECK(wait_for(&io_count, 1), "no SIGIO for fd 5");
  if (fails == 0) say("PASS async\n");
  say("DONE\n");
  return fails ? 1 : 0;
}
