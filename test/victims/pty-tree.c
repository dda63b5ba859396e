/* A pty pair held inside one tree: the parent holds the master (packet mode on, locked
 * again after the child opened the slave); the child is a session leader with the slave
 * as fds 0 and 2 and as its controlling terminal (echo off, a window size, exclusive
 * mode); the grandchild is its own process group, the terminal's foreground group, and
 * holds /dev/tty at fd 7. Before READY the parent writes "hello\npart" (input, not yet
 * read) and the child writes "out1\n" (output, not yet read by the parent). On SIGUSR1
 * every process checks its state: the parent reads "out1\r\n" (one packet) and writes
 * "ial\n"; the grandchild reads "hello\n" then "partial\n" through /dev/tty. Each prints
 * PASS/FAIL lines and "DONE <who> fails=N". */
#include "victim.h"
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>

static volatile sig_atomic_t go;
static int ready[2]; /* the grandchild says it holds /dev/tty */
static void on_usr1(int s) { (void)s; go = 1; }
static void wait_go(void) { while (!go) usleep(10000); go = 0; }

static void read_exact(int fd, const char *want, const char *what) {
  char got[256] = {0};
  size_t n = strlen(want), have = 0;
  while (have < n) {
    ssize_t r = read(fd, got + have, n - have);
    if (r <= 0) break;
    have += r;
  }
  self_check(have == n && memcmp(got, want, n) == 0, what, "read %zu bytes \"%.*s\"", have, (int)have, got);
}

static void grandchild(void) {
  int tty = open("/dev/tty", O_RDWR);
  if (tty < 0 || dup2(tty, 7) < 0) { say("SETUP FAIL /dev/tty: %s\n", strerror(errno)); exit(1); }
  close(tty);
  if (write(ready[1], "g", 1) != 1) exit(1);
  close(ready[1]);
  say("GRANDCHILD ready\n");
  wait_go();
  self_check(tcgetpgrp(7) == getpid(), "grandchild is the foreground group", "tcgetpgrp %d, me %d", tcgetpgrp(7), getpid());
  read_exact(7, "hello\n", "grandchild reads the queued line");
  read_exact(7, "partial\n", "grandchild reads the unfinished line, finished after restore");
  say("DONE grandchild fails=%d\n", self_check_fails);
  exit(0);
}

static void child(const char *slave_path, int index) {
  if (setsid() < 0) exit(1);
  int s = open(slave_path, O_RDWR); /* no O_NOCTTY: it becomes our controlling terminal */
  if (s < 0 || dup2(s, 0) < 0 || dup2(s, 2) < 0) { say("SETUP FAIL slave: %s\n", strerror(errno)); exit(1); }
  close(s);
  struct termios t;
  tcgetattr(0, &t);
  t.c_lflag &= ~(ECHO | ECHOCTL);
  tcsetattr(0, TCSANOW, &t);
  struct winsize ws = {.ws_row = 33, .ws_col = 101};
  ioctl(0, TIOCSWINSZ, &ws);
  pid_t g = fork();
  if (g == 0) { setpgid(0, 0); grandchild(); }
  close(ready[1]);
  setpgid(g, g);
  if (tcsetpgrp(0, g) < 0) { say("SETUP FAIL tcsetpgrp: %s\n", strerror(errno)); exit(1); }
  ioctl(0, TIOCEXCL);
  if (write(2, "out1\n", 5) != 5) exit(1);
  say("CHILD grandchild=%d\n", g);
  wait_go();
  kill(g, SIGUSR1);
  char want[64];
  snprintf(want, sizeof want, "/dev/pts/%d", index);
  const char *name = ttyname(0);
  self_check(name && strcmp(name, want) == 0, "child's fd 0 is the same slave", "ttyname %s, want %s", name ? name : "?", want);
  self_check(getsid(0) == getpid(), "child leads its session", "sid %d", getsid(0));
  self_check(tcgetpgrp(0) == g, "foreground group is the grandchild's", "tcgetpgrp %d, want %d", tcgetpgrp(0), g);
  self_check(tcgetsid(0) == getpid(), "the terminal is the session's", "tcgetsid %d", tcgetsid(0));
  tcgetattr(0, &t);
  self_check(!(t.c_lflag & ECHO) && (t.c_lflag & ICANON) && (t.c_oflag & ONLCR), "termios kept", "lflag %o oflag %o", t.c_lflag, t.c_oflag);
  ioctl(0, TIOCGWINSZ, &ws);
  self_check(ws.ws_row == 33 && ws.ws_col == 101, "window size kept", "%dx%d", ws.ws_row, ws.ws_col);
  int excl = -1;
  ioctl(0, TIOCGEXCL, &excl);
  self_check(excl == 1, "exclusive mode kept", "TIOCGEXCL %d", excl);
  int st = 0;
  waitpid(g, &st, 0);
  self_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "grandchild exited", "status %x", st);
  say("DONE child fails=%d\n", self_check_fails);
  exit(0);
}

int main(void) {
  signal(SIGUSR1, on_usr1);
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0 || grantpt(m) || unlockpt(m) || pipe(ready)) return 3;
  int index = -1;
  ioctl(m, TIOCGPTN, &index);
  char path[64];
  snprintf(path, sizeof path, "/dev/pts/%d", index);
  pid_t c = fork();
  if (c == 0) { close(m); close(ready[0]); child(path, index); }
  close(ready[1]);
  char g;
  if (read(ready[0], &g, 1) != 1) return 5;
  close(ready[0]);
  /* the child's write comes before its CHILD line */
  for (int i = 0; i < 500; i++) {
    int n = 0;
    ioctl(m, FIONREAD, &n);
    if (n >= 6) break;
    usleep(10000);
  }
  int on = 1;
  ioctl(m, TIOCPKT, &on);
  ioctl(m, TIOCSPTLCK, &on);
  if (write(m, "hello\npart", 10) != 10) return 4;
  usleep(100000); /* the line discipline takes it in the background */
  say("READY pid=%d child=%d pty=%d\n", getpid(), c, index);
  wait_go();
  kill(c, SIGUSR1);
  int pkt = -1, lck = -1;
  ioctl(m, TIOCGPKT, &pkt);
  ioctl(m, TIOCGPTLCK, &lck);
  self_check(pkt == 1, "packet mode kept", "TIOCGPKT %d", pkt);
  self_check(lck == 1, "lock kept", "TIOCGPTLCK %d", lck);
  char buf[64] = {0};
  ssize_t r = read(m, buf, sizeof buf);
  self_check(r == 7 && buf[0] == 0 && memcmp(buf + 1, "out1\r\n", 6) == 0, "parent reads the queued output as one packet", "read %zd: %02x \"%.*s\"", r, (unsigned char)buf[0], r > 1 ? (int)r - 1 : 0, buf + 1);
  if (write(m, "ial\n", 4) != 4) self_check(0, "write to master", "%s", strerror(errno));
  int st = 0;
  waitpid(c, &st, 0);
  self_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child exited", "status %x", st);
  say("DONE parent fails=%d\n", self_check_fails);
  return 0;
}
