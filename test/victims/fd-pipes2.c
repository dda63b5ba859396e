/* A parent and child joined by two pipes (one each way) and a stream socketpair, with
 * data in flight both ways, and a fork-inherited regular file whose offset they share.
 * On SIGUSR1 the parent tells the child; the child reads and checks its data, writes 3
 * bytes to the shared file (moving the shared offset) and reports over the socket; the
 * parent checks its data, the child's report and the offset. Prints "CHECK PASS" or
 * "CHECK FAIL: why". Args: DIR (for the shared file). */
#include "victim.h"
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }
static char fail[700];
#define CHECK(c, ...) do { if (!(c) && !fail[0]) snprintf(fail, sizeof fail, __VA_ARGS__); } while (0)

static void fill(unsigned char *b, int n, int seed) {
  for (int i = 0; i < n; i++) b[i] = (unsigned char)(seed * 13 + i * 5);
}
static void put(int fd, int n, int seed) {
  unsigned char b[4096];
  fill(b, n, seed);
  if (write(fd, b, n) != n) { say("SETUP FAIL write %s\n", strerror(errno)); exit(1); }
}
static void get(int fd, int n, int seed, const char *what) {
  unsigned char got[4096], want[4096];
  int have = 0;
  while (have < n) {
    ssize_t r = read(fd, got + have, n - have);
    if (r <= 0) { CHECK(0, "%s: read %zd after %d of %d (%s)", what, r, have, n, strerror(errno)); return; }
    have += r;
  }
  fill(want, n, seed);
  CHECK(memcmp(got, want, n) == 0, "%s: content differs", what);
}
static int inq(int fd) { int n = -1; ioctl(fd, FIONREAD, &n); return n; }

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  int down[2], up[2], sp[2];
  char path[4096];
  snprintf(path, sizeof path, "%s/shared.txt", argv[1]);
  int file = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (file < 0 || pipe(down) || pipe(up) || socketpair(AF_UNIX, SOCK_STREAM, 0, sp)) return 3;
  put(file, 5, 0);
  signal(SIGUSR1, on_usr1);
  pid_t child = fork();
  if (child == 0) {
    close(down[1]); close(up[0]); close(sp[0]);
    put(up[1], 300, 2);
    put(sp[1], 100, 4);
    for (;;) {
      while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
      go = 0;
      fail[0] = 0;
      get(down[0], 500, 1, "child pipe");
      get(sp[1], 200, 3, "child socket");
      if (write(file, "abc", 3) != 3) CHECK(0, "child write: %s", strerror(errno));
      char msg[600];
      int n = snprintf(msg, sizeof msg, "%s%s", fail[0] ? "FAIL " : "PASS", fail);
      if (write(sp[1], msg, n + 1) != n + 1) return 4;
    }
  }
  close(down[0]); close(up[1]); close(sp[1]);
  put(down[1], 500, 1);
  put(sp[0], 200, 3);
  while (inq(up[0]) < 300 || inq(sp[0]) < 100) usleep(1000);
  say("READY pid=%d child=%d\n", getpid(), child);
  for (;;) {
    while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
    go = 0;
    fail[0] = 0;
    kill(child, SIGUSR1);
    get(up[0], 300, 2, "parent pipe");
    get(sp[0], 100, 4, "parent socket");
    char msg[600] = {0};
    for (int i = 0; i < (int)sizeof msg - 1; i++) {
      if (read(sp[0], msg + i, 1) != 1) { CHECK(0, "no report from the child"); break; }
      if (!msg[i]) break;
    }
    CHECK(strncmp(msg, "PASS", 4) == 0, "child: %s", msg);
    off_t off = lseek(file, 0, SEEK_CUR);
    CHECK(off == 8, "the file offset is %lld, not 8: the child's write did not move it", (long long)off);
    say(fail[0] ? "CHECK FAIL: %s\n" : "CHECK PASS%s\n", fail);
  }
}
