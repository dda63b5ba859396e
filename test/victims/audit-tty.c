/* Pty states a terminal program leaves behind, checked by the victim itself after
 * restore (SIGUSR1): a pair with data queued both ways in raw mode (VMIN/VTIME), a locked
 * termios (TIOCSLCKTRMIOS), a master whose slave was closed (reads EIO), a slave whose
 * master was closed (hung up; argv[1] "hungup" only). Prints READY, PASS/FAIL lines, DONE. */
#include "victim.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static void fatal(const char *what) {
  say("FAIL setup: %s: %s\n", what, strerror(errno));
  exit(2);
}

static int open_master(void) {
  int m = posix_openpt(O_RDWR | O_NOCTTY);
  if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0) fatal("openpt");
  return m;
}

static int open_slave(int m) {
  int s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
  if (s < 0) fatal("TIOCGPTPEER");
  return s;
}

int main(int argc, char **argv) {
  int hungup = argc > 1 && strcmp(argv[1], "hungup") == 0;
  struct sigaction sa = {.sa_handler = on_usr1};
  sigaction(SIGUSR1, &sa, NULL);
  syscall(SYS_close_range, 3, ~0U, 0);

  /* pair 1: raw mode, VMIN 3 VTIME 0, locked c_cflag, input and output queued */
  int m1 = open_master(), s1 = open_slave(m1);
  struct termios t;
  tcgetattr(s1, &t);
  cfmakeraw(&t);
  t.c_cc[VMIN] = 3;
  t.c_cc[VTIME] = 0;
  if (tcsetattr(s1, TCSANOW, &t) < 0) fatal("tcsetattr");
  struct termios lock = {0};
  lock.c_cflag = CSIZE; /* the character size may not be changed */
  lock.c_lflag = ICANON;
  if (ioctl(s1, TIOCSLCKTRMIOS, &lock) < 0) fatal("TIOCSLCKTRMIOS");
  if (write(m1, "typed", 5) != 5) fatal("write master"); /* input the slave has not read */
  if (write(s1, "shown", 5) != 5) fatal("write slave");  /* output the master has not read */

  /* pair 4: canonical, ICANON locked, a whole line and an unfinished one typed */
  int m4 = open_master(), s4 = open_slave(m4);
  tcgetattr(s4, &t);
  t.c_lflag &= ~(ECHO | ECHOE | ECHOK | ECHONL);
  if (tcsetattr(s4, TCSANOW, &t) < 0) fatal("tcsetattr 4");
  struct termios lock4 = {.c_lflag = ICANON};
  if (ioctl(s4, TIOCSLCKTRMIOS, &lock4) < 0) fatal("TIOCSLCKTRMIOS 4");
  if (write(m4, "line1\npar", 9) != 9) fatal("write master 4");

  /* pair 2: the slave was opened and closed: the master reads EIO */
  int m2 = open_master();
  close(open_slave(m2));

  /* pair 3 ("hungup" only): the master was closed: the slave is hung up */
  int s3 = -1;
  if (hungup) {
    int m3 = open_master();
    s3 = open_slave(m3);
    close(m3);
    say("HUNGUP fd=%d\n", s3);
  }

  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000);

  char buf[16] = {0};
  struct pollfd pf = {.fd = s1, .events = POLLIN};
  ssize_t n = poll(&pf, 1, 1000) == 1 ? read(s1, buf, sizeof buf) : -1;
  verdict("pty-input", n == 5 && memcmp(buf, "typed", 5) == 0, "slave read %zd [%.*s]", n, n > 0 ? (int)n : 0, buf);
  pf.fd = m1;
  n = poll(&pf, 1, 1000) == 1 ? read(m1, buf, sizeof buf) : -1;
  verdict("pty-output", n == 5 && memcmp(buf, "shown", 5) == 0, "master read %zd [%.*s]", n, n > 0 ? (int)n : 0, buf);
  struct termios now;
  tcgetattr(s1, &now);
  verdict("pty-raw-vmin", !(now.c_lflag & ICANON) && now.c_cc[VMIN] == 3 && now.c_cc[VTIME] == 0, "lflag %o vmin %d vtime %d",
          now.c_lflag, now.c_cc[VMIN], now.c_cc[VTIME]);
  struct termios locked = {0};
  int r = ioctl(s1, TIOCGLCKTRMIOS, &locked);
  verdict("pty-locked-termios", r == 0 && locked.c_cflag == CSIZE && locked.c_lflag == ICANON, "locked cflag %o lflag %o",
          locked.c_cflag, locked.c_lflag);

  fcntl(s4, F_SETFL, O_NONBLOCK);
  char l1[32] = {0}, l2[32] = {0};
  ssize_t n1 = read(s4, l1, sizeof l1 - 1), n2 = read(s4, l2, sizeof l2 - 1);
  int again = n2 < 0 && errno == EAGAIN;
  if (write(m4, "\n", 1) != 1) fatal("write master 4 newline");
  n2 = read(s4, l2, sizeof l2 - 1);
  struct termios lk4 = {0};
  ioctl(s4, TIOCGLCKTRMIOS, &lk4);
  verdict("pty-canonical-locked", n1 == 6 && strcmp(l1, "line1\n") == 0 && again && n2 == 4 && strcmp(l2, "par\n") == 0 && lk4.c_lflag == ICANON,
          "read [%s] (%zd), then again %d, then [%s] (%zd: %02x %02x %02x %02x %02x), lock lflag %o", l1, n1, again, l2, n2, l2[0], l2[1], l2[2], l2[3], l2[4], lk4.c_lflag);

  fcntl(m2, F_SETFL, O_NONBLOCK);
  errno = 0;
  n = read(m2, buf, sizeof buf);
  verdict("pty-slave-closed", n < 0 && errno == EIO, "master of a closed slave read %zd (%s)", n, strerror(errno));

  if (!hungup) {
    say("DONE\n");
    return 0;
  }
  fcntl(s3, F_SETFL, O_NONBLOCK);
  errno = 0;
  n = read(s3, buf, sizeof buf);
  pf.fd = s3;
  pf.events = POLLIN;
  poll(&pf, 1, 0);
  verdict("pty-master-closed", n == 0 && (pf.revents & POLLHUP), "slave of a closed master read %zd (%s) revents %x", n, strerror(errno),
          pf.revents);
  say("DONE\n");
  return 0;
}
