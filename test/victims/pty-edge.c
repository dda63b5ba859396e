/* Two pty pairs held by one process (no controlling terminal), with input queued that
 * the line discipline holds in ways a plain copy would lose. Pair A, canonical with
 * echo: "one\n", "two" ended by VEOF, an empty line ended by VEOF, and "par" not yet
 * ended; the echo ("one\r\ntwopar") waits on the master. Pair B, raw: bytes a
 * canonical discipline would edit ("\x01\x02\r\x7f\x15x"). Prints "READY pid=N a=IA
 * b=IB". On SIGUSR1 it reads everything back and checks it, writes "tial\n" to finish
 * A's last line; "PASS what" / "FAIL what: why", then "DONE fails=N". */
#include "victim.h"
#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static int pair(int *slave) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0 || grantpt(m) || unlockpt(m)) exit(3);
  *slave = open(ptsname(m), O_RDWR | O_NOCTTY);
  if (*slave < 0) exit(3);
  return m;
}

static void expect_read(int fd, const char *want, size_t n, const char *what) {
  char got[256];
  ssize_t r = read(fd, got, sizeof got);
  self_check(r == (ssize_t)n && memcmp(got, want, n) == 0, what, "read %zd bytes \"%.*s\"", r, r > 0 ? (int)r : 0, got);
}

int main(void) {
  signal(SIGUSR1, on_usr1);
  int sa, sb;
  int ma = pair(&sa), mb = pair(&sb);
  struct termios t;
  tcgetattr(sb, &t);
  cfmakeraw(&t);
  t.c_cc[VMIN] = 1;
  tcsetattr(sb, TCSANOW, &t);
  tcgetattr(sa, &t);
  char eof = (char)t.c_cc[VEOF];
  char in_a[] = {'o', 'n', 'e', '\n', 't', 'w', 'o', eof, eof, 'p', 'a', 'r'};
  if (write(ma, in_a, sizeof in_a) != (ssize_t)sizeof in_a) return 4;
  static const char in_b[] = "\x01\x02\r\x7f\x15x";
  if (write(mb, in_b, 6) != 6) return 4;
  usleep(100000); /* the line disciplines take it in the background */
  int ia = -1, ib = -1;
  ioctl(ma, TIOCGPTN, &ia);
  ioctl(mb, TIOCGPTN, &ib);
  say("READY pid=%d a=%d b=%d\n", getpid(), ia, ib);
  while (!go) usleep(10000);

  expect_read(ma, "one\r\ntwopar", 11, "A's echo waits on the master");
  expect_read(sa, "one\n", 4, "A's first line");
  expect_read(sa, "two", 3, "A's line ended by VEOF");
  expect_read(sa, "", 0, "A's empty line ended by VEOF");
  if (write(ma, "tial\n", 5) != 5) self_check(0, "write", "%s", strerror(errno));
  expect_read(sa, "partial\n", 8, "A's unfinished line, finished after restore");
  expect_read(sb, in_b, 6, "B's raw bytes, unedited");
  tcgetattr(sb, &t);
  self_check(!(t.c_lflag & ICANON) && !(t.c_lflag & ECHO), "B stays raw", "lflag %o", t.c_lflag);
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
