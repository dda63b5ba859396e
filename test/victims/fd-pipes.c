/* Pipes, socketpairs and a FIFO with data in flight. On SIGUSR1 the victim reads
 * everything back and checks contents, message boundaries, pipe capacity and flags,
 * then checks the pipe still carries new data. Prints "CHECK PASS" or "CHECK FAIL: why".
 * Args: DIR (a directory for the FIFO). */
#include "victim.h"
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static int pp[2], dg[2], st[2], sq[2], ff;
static char fifo_path[4096];
static const int dsz[2][3] = {{1, 100, 5000}, {7, 300, 9000}};
static const int qsz[2][2] = {{3, 600}, {1, 70000 / 2}};
static char fail[9000];

#define CHECK(c, ...) do { if (!(c) && !fail[0]) snprintf(fail, sizeof fail, __VA_ARGS__); } while (0)

static void fill(unsigned char *b, int n, int seed) {
  for (int i = 0; i < n; i++) b[i] = (unsigned char)(seed * 31 + i * 7);
}

static void check_bytes(int fd, int n, int seed, const char *what) {
  static unsigned char got[1 << 17], want[1 << 17];
  int have = 0;
  while (have < n) {
    ssize_t r = read(fd, got + have, n - have);
    if (r <= 0) { CHECK(0, "%s: read %zd after %d of %d bytes (%s)", what, r, have, n, strerror(errno)); return; }
    have += r;
  }
  fill(want, n, seed);
  CHECK(memcmp(got, want, n) == 0, "%s: content differs", what);
}

static void check_empty(int fd, const char *what) {
  char c;
  ssize_t r = recv(fd, &c, 1, MSG_DONTWAIT);
  if (r < 0 && errno == ENOTSOCK) {
    int n = -1;
    ioctl(fd, FIONREAD, &n);
    CHECK(n == 0, "%s: %d bytes left over", what, n);
    return;
  }
  CHECK(r < 0 && errno == EAGAIN, "%s: more data than saved (r=%zd)", what, r);
}

static void check_msgs(int fd, const int *sizes, int n, int seed, const char *what) {
  static unsigned char got[1 << 17], want[1 << 17];
  for (int i = 0; i < n; i++) {
    ssize_t r = recv(fd, got, sizeof got, MSG_DONTWAIT);
    CHECK(r == sizes[i], "%s: message %d has %zd bytes, not %d (%s)", what, i, r, sizes[i], r < 0 ? strerror(errno) : "");
    fill(want, sizes[i], seed + i);
    CHECK(r != sizes[i] || memcmp(got, want, r) == 0, "%s: message %d content differs", what, i);
  }
  check_empty(fd, what);
}

static void send_msgs(int fd, const int *sizes, int n, int seed) {
  static unsigned char b[1 << 17];
  for (int i = 0; i < n; i++) {
    fill(b, sizes[i], seed + i);
    if (send(fd, b, sizes[i], 0) != sizes[i]) { say("SETUP FAIL send %s\n", strerror(errno)); exit(1); }
  }
}

static void write_bytes(int fd, int n, int seed) {
  static unsigned char b[1 << 17];
  fill(b, n, seed);
  if (write(fd, b, n) != n) { say("SETUP FAIL write %s\n", strerror(errno)); exit(1); }
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  signal(SIGUSR1, on_usr1);
  if (pipe(pp) || fcntl(pp[1], F_SETPIPE_SZ, 128 * 1024) < 0) return 3;
  fcntl(pp[0], F_SETFL, O_NONBLOCK);
  write_bytes(pp[1], 1000, 1);
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, dg)) return 4;
  send_msgs(dg[0], dsz[0], 3, 10);
  send_msgs(dg[1], dsz[1], 3, 20);
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, st)) return 5;
  write_bytes(st[0], 3000, 30);
  write_bytes(st[1], 10, 31);
  if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq)) return 6;
  send_msgs(sq[0], qsz[0], 2, 40);
  send_msgs(sq[1], qsz[1], 2, 50);
  snprintf(fifo_path, sizeof fifo_path, "%s/fifo", argv[1]);
  if (mkfifo(fifo_path, 0600) || (ff = open(fifo_path, O_RDWR)) < 0) return 7;
  write_bytes(ff, 777, 60);
  say("READY pid=%d\n", getpid());
  for (;;) {
    while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
    go = 0;
    fail[0] = 0;
    CHECK(fcntl(pp[0], F_GETPIPE_SZ) == 128 * 1024, "pipe capacity %d", fcntl(pp[0], F_GETPIPE_SZ));
    CHECK(fcntl(pp[0], F_GETFL) & O_NONBLOCK, "pipe read end lost O_NONBLOCK");
    CHECK(!(fcntl(pp[1], F_GETFL) & O_NONBLOCK), "pipe write end gained O_NONBLOCK");
    CHECK((fcntl(pp[0], F_GETFL) & O_ACCMODE) == O_RDONLY && (fcntl(pp[1], F_GETFL) & O_ACCMODE) == O_WRONLY, "pipe access modes");
    check_bytes(pp[0], 1000, 1, "pipe");
    check_empty(pp[0], "pipe");
    check_msgs(dg[1], dsz[0], 3, 10, "dgram 0->1");
    check_msgs(dg[0], dsz[1], 3, 20, "dgram 1->0");
    check_bytes(st[1], 3000, 30, "stream 0->1");
    check_bytes(st[0], 10, 31, "stream 1->0");
    check_empty(st[0], "stream 1->0");
    check_empty(st[1], "stream 0->1");
    check_msgs(sq[1], qsz[0], 2, 40, "seqpacket 0->1");
    check_msgs(sq[0], qsz[1], 2, 50, "seqpacket 1->0");
    int n = -1;
    ioctl(ff, FIONREAD, &n);
    CHECK(n == 777, "fifo holds %d bytes, not 777", n);
    check_bytes(ff, 777, 60, "fifo");
    char link[4096] = {0}, self[64];
    snprintf(self, sizeof self, "/proc/self/fd/%d", ff);
    CHECK(readlink(self, link, sizeof link - 1) > 0 && strcmp(link, fifo_path) == 0, "fifo fd is %s, not %s", link, fifo_path);
    /* Still working afterwards, both ways. */
    write_bytes(pp[1], 50, 2);
    check_bytes(pp[0], 50, 2, "pipe after");
    send_msgs(dg[0], dsz[0], 1, 70);
    check_msgs(dg[1], dsz[0], 1, 70, "dgram after");
    write_bytes(st[1], 20, 71);
    check_bytes(st[0], 20, 71, "stream after");
    write_bytes(ff, 5, 72);
    check_bytes(ff, 5, 72, "fifo after");
    say(fail[0] ? "CHECK FAIL: %s\n" : "CHECK PASS%s\n", fail);
    /* Put everything back for the next check. */
    write_bytes(pp[1], 1000, 1);
    send_msgs(dg[0], dsz[0], 3, 10);
    send_msgs(dg[1], dsz[1], 3, 20);
    write_bytes(st[0], 3000, 30);
    write_bytes(st[1], 10, 31);
    send_msgs(sq[0], qsz[0], 2, 40);
    send_msgs(sq[1], qsz[1], 2, 50);
    write_bytes(ff, 777, 60);
    say("REFILLED\n");
  }
}
