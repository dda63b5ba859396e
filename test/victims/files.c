/* Holds a set of file descriptors of different kinds at fixed numbers, prints READY,
 * waits for SIGUSR1, then checks that every fd is as it left it (flags, offsets,
 * content, sharing) and prints PASS or FAIL lines, then DONE.
 * argv[1] = "pipe": also holds a pipe at fds 3 and 4 (which dump must refuse).
 * Runs in a scratch directory (its cwd): data.bin, log.txt, gone.txt are created there. */
#include "victim.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#define DATA_LEN 4096
#define GONE_LEN 3000
#define FL_MASK (O_ACCMODE | O_APPEND | O_NONBLOCK)

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static int fails;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      fails++;                                             \
      say("FAIL " __VA_ARGS__);                            \
      say(" (line %d, errno %s)\n", __LINE__, strerror(errno)); \
    }                                                      \
  } while (0)

static unsigned char pat(size_t i, int seed) { return (unsigned char)(i * 31 + seed); }

static void fatal(const char *what) {
  say("FAIL setup: %s: %s\n", what, strerror(errno));
  exit(2);
}

/* Moves fd to number want (with O_CLOEXEC if asked). */
static void put_at(int fd, int want, int cloexec) {
  if (fd < 0) fatal("open");
  if (fd == want) return;
  if (dup3(fd, want, cloexec ? O_CLOEXEC : 0) < 0) fatal("dup3");
  close(fd);
}

static void write_file(const char *name, size_t len, int seed) {
  unsigned char buf[DATA_LEN];
  for (size_t i = 0; i < len; i++) buf[i] = pat(i, seed);
  int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, buf, len) != (ssize_t)len) fatal(name);
  close(fd);
}

static int matches(int fd, size_t from, size_t len, int seed) {
  unsigned char buf[DATA_LEN];
  if (read(fd, buf, len) != (ssize_t)len) return 0;
  for (size_t i = 0; i < len; i++)
    if (buf[i] != pat(from + i, seed)) return 0;
  return 1;
}

static off_t cur(int fd) { return lseek(fd, 0, SEEK_CUR); }

int main(int argc, char **argv) {
  int with_pipe = argc > 1 && strcmp(argv[1], "pipe") == 0;
  struct sigaction sa = {.sa_handler = on_usr1};
  sigaction(SIGUSR1, &sa, NULL);
  /* Whatever fds the test runner leaked to us are not part of the test. */
  syscall(SYS_close_range, 3, ~0U, 0);

  if (with_pipe) {
    int p[2];
    if (pipe(p) < 0) fatal("pipe");
    put_at(p[0], 3, 0);
    put_at(p[1], 4, 0);
  }
  write_file("data.bin", DATA_LEN, 1);
  put_at(open("data.bin", O_RDONLY), 12, 0);
  lseek(12, 1234, SEEK_SET);
  if (dup2(12, 13) < 0) fatal("dup2"); /* shares fd 12's offset */
  put_at(open("log.txt", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0644), 7, 1);
  if (write(7, "first line\n", 11) != 11) fatal("write log");
  put_at(open("/dev/null", O_RDWR), 5, 0);
  put_at(open("/dev/urandom", O_RDONLY | O_NONBLOCK), 10, 0);
  write_file("gone.txt", GONE_LEN, 7);
  put_at(open("gone.txt", O_RDWR), 9, 0);
  chmod("gone.txt", 0640);
  lseek(9, 1500, SEEK_SET);
  if (unlink("gone.txt") < 0) fatal("unlink");
  put_at(open(".", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), 14, 1); /* as fts opens them */
  struct stat dir;
  if (fstat(14, &dir) < 0) fatal("fstat dir");

  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */

  struct stat st;
  /* fd 12 and its dup 13: read-only, offset 1234, one shared offset */
  CHECK((fcntl(12, F_GETFL) & FL_MASK) == O_RDONLY, "fd 12 flags %o", fcntl(12, F_GETFL));
  CHECK(fcntl(12, F_GETFD) == 0, "fd 12 has FD_CLOEXEC");
  CHECK(cur(12) == 1234, "fd 12 offset %ld", (long)cur(12));
  CHECK(cur(13) == 1234, "fd 13 offset %ld", (long)cur(13));
  CHECK(matches(13, 1234, 100, 1), "fd 13 content at 1234");
  CHECK(cur(12) == 1334, "fd 12 does not share fd 13's offset (%ld)", (long)cur(12));
  /* fd 7: append-only log, close-on-exec, opened O_NOFOLLOW (F_GETFL shows it); a write lands at the end */
  CHECK(fcntl(7, F_GETFL) & O_NOFOLLOW, "fd 7 lost O_NOFOLLOW: flags %o", fcntl(7, F_GETFL));
  CHECK((fcntl(7, F_GETFL) & FL_MASK) == (O_WRONLY | O_APPEND), "fd 7 flags %o", fcntl(7, F_GETFL));
  CHECK(fcntl(7, F_GETFD) == FD_CLOEXEC, "fd 7 lost FD_CLOEXEC");
  CHECK(cur(7) == 11, "fd 7 offset %ld", (long)cur(7));
  CHECK(write(7, "second line\n", 12) == 12, "fd 7 write");
  char logbuf[64] = {0};
  int lf = open("log.txt", O_RDONLY);
  CHECK(lf >= 0 && read(lf, logbuf, sizeof logbuf - 1) >= 0 && strcmp(logbuf, "first line\nsecond line\n") == 0,
        "log.txt is \"%s\"", logbuf);
  if (lf >= 0) close(lf);
  /* fd 5: /dev/null read-write */
  CHECK(fstat(5, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3), "fd 5 is not /dev/null");
  CHECK((fcntl(5, F_GETFL) & FL_MASK) == O_RDWR, "fd 5 flags %o", fcntl(5, F_GETFL));
  /* fd 10: /dev/urandom non-blocking */
  CHECK(fstat(10, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 9), "fd 10 is not /dev/urandom");
  CHECK((fcntl(10, F_GETFL) & FL_MASK) == (O_RDONLY | O_NONBLOCK), "fd 10 flags %o", fcntl(10, F_GETFL));
  unsigned char rnd[16];
  CHECK(read(10, rnd, sizeof rnd) == sizeof rnd, "fd 10 read");
  /* fd 9: the unlinked file, read-write, offset 1500, same content and mode */
  CHECK(fstat(9, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 0, "fd 9 is not an unlinked file (nlink %ld)",
        (long)st.st_nlink);
  CHECK(st.st_size == GONE_LEN && (st.st_mode & 07777) == 0640, "fd 9 size %ld mode %o", (long)st.st_size,
        st.st_mode & 07777);
  CHECK((fcntl(9, F_GETFL) & FL_MASK) == O_RDWR, "fd 9 flags %o", fcntl(9, F_GETFL));
  CHECK(cur(9) == 1500, "fd 9 offset %ld", (long)cur(9));
  CHECK(matches(9, 1500, GONE_LEN - 1500, 7), "fd 9 content after 1500");
  /* fd 14: the starting directory, close-on-exec, O_NOFOLLOW */
  CHECK(fstat(14, &st) == 0 && S_ISDIR(st.st_mode) && st.st_ino == dir.st_ino, "fd 14 is not the directory");
  CHECK(fcntl(14, F_GETFD) == FD_CLOEXEC, "fd 14 lost FD_CLOEXEC");
  CHECK(fcntl(14, F_GETFL) & O_NOFOLLOW, "fd 14 lost O_NOFOLLOW: flags %o", fcntl(14, F_GETFL));
  /* fds 1 and 2 share one offset (">log 2>&1"); 0 is /dev/null */
  CHECK(fstat(0, &st) == 0 && st.st_rdev == makedev(1, 3), "fd 0 is not /dev/null");
  CHECK(cur(1) == cur(2), "fds 1 and 2 have different offsets: %ld %ld", (long)cur(1), (long)cur(2));
  /* nothing else is open */
  for (int fd = 3; fd < 64; fd++) {
    int expected = fd == 5 || fd == 7 || fd == 9 || fd == 10 || fd == 12 || fd == 13 || fd == 14 ||
                   (with_pipe && (fd == 3 || fd == 4));
    errno = 0;
    int open_ = fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
    CHECK(open_ == expected, "fd %d is %s", fd, open_ ? "open" : "closed");
  }
  if (fails == 0) say("PASS files\n");
  fprintf(stderr, "STDERR line\n");
  say("DONE fails=%d\n", fails);
  return fails ? 1 : 0;
}
