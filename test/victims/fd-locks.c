/* File locks of every kind, held by a parent and a child, checked by the victim itself
 * after restore (SIGUSR1 to the parent).
 *
 * Parent (runs in a scratch cwd):
 *   fd 3  flock.dat  O_RDWR   flock(LOCK_EX)          (the child has it too: one description)
 *   fd 4  posix.dat  O_RDWR   POSIX write 10-14, POSIX read 20-29; fd 8 is a dup of it
 *   fd 9  posix.dat  O_RDONLY POSIX read 200-EOF      (a second description of the same file)
 *   fd 5  ofd.dat    O_RDWR   OFD write 0-6           (the child has it too)
 *   fd 6  lease.dat  O_RDONLY read lease
 * Child: POSIX write 50-59 on posix.dat, then waits in F_SETLKW for 10-14 (the parent's);
 * a thread of it waits in flock(LOCK_EX) on flock.dat. READY once /proc/locks shows both
 * waiting. After SIGUSR1 a forked probe checks from
 * other descriptions that every lock is held by its owner, and then the parent releases
 * 10-14 and the flock: the child must get them only now (PASS waiter).
 *
 * argv[1] = "breaking": only a write lease on fd 3 (lease.dat), SIGIO ignored; READY.
 */
#include "selfcheck.h"
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <pthread.h>
#include <sys/wait.h>

static int open_file(const char *name, int flags) {
  int fd = open(name, flags | O_CREAT, 0644);
  if (fd < 0) fatal(name);
  return fd;
}

static int setlk(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  return fcntl(fd, cmd, &fl);
}

/* F_GETLK-style probe: the lock that would block a `type` lock on start/len (F_UNLCK: none). */
static struct flock getlk(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};
  if (fcntl(fd, cmd, &fl) < 0) fl.l_type = -1;
  return fl;
}

static void expect_lock(int fd, int cmd, off_t start, off_t len, short type, pid_t pid, const char *what) {
  struct flock fl = getlk(fd, cmd, F_WRLCK, start, len);
  CHECK(fl.l_type == type && (type == F_UNLCK || fl.l_pid == pid), "%s: found type %d pid %d, expected type %d pid %d",
        what, fl.l_type, fl.l_pid, type, pid);
}

/* Runs in a new process: other fd table, other descriptions. */
static int probe(pid_t parent, pid_t child) {
  int f = open("flock.dat", O_RDWR);
  CHECK(flock(f, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK, "flock: an exclusive flock from another description got through");
  CHECK(flock(f, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK, "flock: a shared flock from another description got through");
  int p = open("posix.dat", O_RDWR);
  expect_lock(p, F_GETLK, 10, 5, F_WRLCK, parent, "posix write 10-14");
  expect_lock(p, F_GETLK, 20, 10, F_RDLCK, parent, "posix read 20-29");
  expect_lock(p, F_GETLK, 300, 1, F_RDLCK, parent, "posix read 200-EOF at 300");
  expect_lock(p, F_GETLK, 50, 10, F_WRLCK, child, "child's posix write 50-59");
  expect_lock(p, F_GETLK, 30, 20, F_UNLCK, 0, "posix 30-49 is free");
  expect_lock(p, F_GETLK, 15, 5, F_UNLCK, 0, "posix 15-19 is free");
  struct flock rd = getlk(p, F_GETLK, F_RDLCK, 20, 10);
  CHECK(rd.l_type == F_UNLCK, "posix 20-29 is a write lock, not a read lock (type %d)", rd.l_type);
  int o = open("ofd.dat", O_RDWR);
  expect_lock(o, F_OFD_GETLK, 0, 7, F_WRLCK, -1, "ofd write 0-6");
  expect_lock(o, F_OFD_GETLK, 7, 0, F_UNLCK, 0, "ofd 7-EOF is free");
  return fails;
}

/* A thread of the child waits in flock(LOCK_EX) on its own description of flock.dat. */
static void *flock_waiter(void *arg) {
  volatile int *released = arg;
  int fd = open("flock.dat", O_RDWR);
  int r = flock(fd, LOCK_EX);
  CHECK(r == 0, "flock waiter: flock returned %d", r);
  CHECK(released[1], "flock waiter: got the flock before the parent released it");
  return NULL;
}

static int child_main(volatile int *released) {
  if (setlk(4, F_SETLK, F_WRLCK, 50, 10) < 0) fatal("child lock 50-59");
  pthread_t t;
  if (pthread_create(&t, NULL, flock_waiter, (void *)released) != 0) fatal("pthread_create");
  int r = setlk(4, F_SETLKW, F_WRLCK, 10, 5);
  CHECK(r == 0, "waiter: F_SETLKW returned %d", r);
  CHECK(released[0], "waiter: got 10-14 before the parent released it");
  pthread_join(t, NULL);
  if (fails == 0) say("PASS waiter\n");
  return fails;
}

/* Whether /proc/locks shows `pid` waiting for a lock of this class ("POSIX", "FLOCK"). */
static int waiting(pid_t pid, const char *class) {
  char want[64];
  snprintf(want, sizeof want, "-> %-6s ADVISORY  WRITE %d ", class, pid);
  FILE *f = fopen("/proc/locks", "r");
  char line[256];
  int found = 0;
  while (f && fgets(line, sizeof line, f))
    if (strstr(line, want)) found = 1;
  if (f) fclose(f);
  return found;
}

static __attribute__((noreturn)) void breaking(void) {
  signal(SIGIO, SIG_IGN);
  put_at(open_file("lease.dat", O_RDWR), 3);
  if (fcntl(3, F_SETLEASE, F_WRLCK) < 0) fatal("write lease");
  say("READY pid=%d\n", getpid());
  for (;;) pause();
}

int main(int argc, char **argv) {
  catch_usr1();
  if (argc > 1 && strcmp(argv[1], "breaking") == 0) breaking();

  volatile int *released = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (released == MAP_FAILED) fatal("mmap");
  put_at(open_file("flock.dat", O_RDWR), 3);
  if (flock(3, LOCK_EX) < 0) fatal("flock");
  put_at(open_file("posix.dat", O_RDWR), 4);
  if (ftruncate(4, 4096) < 0) fatal("ftruncate");
  /* Opened before any lock: put_at closes an fd of posix.dat, which drops our POSIX locks on it. */
  put_at(open_file("posix.dat", O_RDONLY), 9);
  if (setlk(4, F_SETLK, F_WRLCK, 10, 5) < 0 || setlk(4, F_SETLK, F_RDLCK, 20, 10) < 0) fatal("posix locks");
  if (dup2(4, 8) < 0) fatal("dup2");
  if (setlk(9, F_SETLK, F_RDLCK, 200, 0) < 0) fatal("posix read lock via fd 9");
  put_at(open_file("ofd.dat", O_RDWR), 5);
  if (setlk(5, F_OFD_SETLK, F_WRLCK, 0, 7) < 0) fatal("ofd lock");
  put_at(open_file("lease.dat", O_RDONLY), 6);
  if (fcntl(6, F_SETLEASE, F_RDLCK) < 0) fatal("read lease");

  pid_t child = fork();
  if (child < 0) fatal("fork");
  if (child == 0) _exit(child_main(released));
  while (!waiting(child, "POSIX") || !waiting(child, "FLOCK")) usleep(1000);
  say("READY pid=%d child=%d\n", getpid(), child);
  while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */

  CHECK(fcntl(6, F_GETLEASE) == F_RDLCK, "lease: F_GETLEASE is %d", fcntl(6, F_GETLEASE));
  pid_t pr = fork();
  if (pr == 0) _exit(probe(getppid(), child));
  int st;
  CHECK(waitpid(pr, &st, 0) == pr && WIFEXITED(st) && WEXITSTATUS(st) == 0, "probe failed (status %x)", st);
  if (fails == 0) say("PASS probe\n");
  released[0] = 1;
  if (setlk(4, F_SETLK, F_UNLCK, 10, 5) < 0) fatal("unlock 10-14");
  released[1] = 1;
  if (flock(3, LOCK_UN) < 0) fatal("flock(LOCK_UN)");
  CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0, "waiter failed (status %x)", st);
  if (fails == 0) say("PASS locks\n");
  say("DONE\n");
  return fails ? 1 : 0;
}
