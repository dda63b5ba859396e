/* Unusual but real file fds, each checked by the victim itself after restore (SIGUSR1):
 * a directory mid-readdir, O_PATH, O_TMPFILE (still linkable), status flags, devices,
 * a renamed file, memfd seals, an fd above 1024 near RLIMIT_NOFILE, /proc/self/status.
 * Runs in a scratch directory (its cwd). Prints READY, then PASS/FAIL lines and DONE. */
#include "victim.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static void fatal(const char *what) {
  say("FAIL setup: %s: %s\n", what, strerror(errno));
  exit(2);
}

static void put_at(int fd, int want) {
  if (fd < 0) fatal("open");
  if (fd == want) return;
  if (dup2(fd, want) < 0) fatal("dup2");
  close(fd);
}

#define NENTRIES 40
#define DIRBUF 256 /* a few entries per getdents call */

struct linux_dirent64 {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

/* Reads the next names of a directory fd into names (space-separated), at most one getdents call. */
static int next_names(int fd, char *names, size_t cap) {
  char buf[DIRBUF];
  long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
  if (n < 0) return -1;
  for (long off = 0; off < n;) {
    struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
    strncat(names, d->d_name, cap - strlen(names) - 2);
    strcat(names, " ");
    off += d->d_reclen;
  }
  return (int)n;
}

/* Every name left in the directory from fd's position on. */
static void rest_names(int fd, char *names, size_t cap) {
  names[0] = 0;
  while (next_names(fd, names, cap) > 0) {}
}

static const char tmpdata[] = "written to an O_TMPFILE file";

int main(void) {
  struct sigaction sa = {.sa_handler = on_usr1};
  sigaction(SIGUSR1, &sa, NULL);
  syscall(SYS_close_range, 3, ~0U, 0);

  /* fd 3: a directory of 40 files, read partly; what follows is recorded through a second fd (fd 4) at the same cookie */
  if (mkdir("many", 0755) < 0) fatal("mkdir");
  for (int i = 0; i < NENTRIES; i++) {
    char name[64];
    snprintf(name, sizeof name, "many/entry-%02d-with-a-longer-name", i);
    int f = open(name, O_CREAT | O_WRONLY, 0644);
    if (f < 0) fatal("create entry");
    close(f);
  }
  put_at(open("many", O_RDONLY | O_DIRECTORY), 3);
  char first[4096] = {0};
  next_names(3, first, sizeof first);
  next_names(3, first, sizeof first);
  off_t cookie = lseek(3, 0, SEEK_CUR);
  put_at(open("many", O_RDONLY | O_DIRECTORY), 4);
  lseek(4, cookie, SEEK_SET);
  static char expect_rest[8192];
  rest_names(4, expect_rest, sizeof expect_rest);
  close(4);

  /* fd 5: O_PATH on a file */
  int f = open("plain.txt", O_CREAT | O_WRONLY, 0600);
  if (f < 0 || write(f, "plain\n", 6) != 6) fatal("plain");
  close(f);
  put_at(open("plain.txt", O_PATH), 5);

  /* fd 6: O_TMPFILE, linkable; fd 7: O_TMPFILE|O_EXCL (never linkable: only the inode's I_LINKABLE shows it) */
  put_at(open(".", O_TMPFILE | O_RDWR, 0640), 6);
  if (write(6, tmpdata, sizeof tmpdata) != sizeof tmpdata) fatal("tmpfile write");
  put_at(open(".", O_TMPFILE | O_RDWR | O_EXCL, 0640), 7);

  /* fds 8-11: status flags */
  put_at(open("flags-append", O_CREAT | O_WRONLY | O_APPEND | O_SYNC, 0644), 8);
  put_at(open("flags-dsync", O_CREAT | O_RDWR | O_DSYNC | O_NOATIME, 0644), 9);
  int direct = open("flags-direct", O_CREAT | O_RDWR | O_DIRECT, 0644);
  int have_direct = direct >= 0;
  if (have_direct) put_at(direct, 10);
  put_at(open("/proc/self/status", O_RDONLY), 11);

  /* fds 12-14: devices */
  put_at(open("/dev/zero", O_RDONLY), 12);
  put_at(open("/dev/full", O_WRONLY), 13);
  put_at(open("/dev/null", O_WRONLY | O_APPEND), 14);

  /* fd 15: a file renamed after open */
  f = open("before-rename", O_CREAT | O_RDWR, 0644);
  if (f < 0 || write(f, "renamed", 7) != 7) fatal("rename file");
  put_at(f, 15);
  if (rename("before-rename", "after-rename") < 0) fatal("rename");

  /* fd 16: memfd with every seal but F_SEAL_SEAL and F_SEAL_FUTURE_WRITE */
  put_at(memfd_create("audit-seals", MFD_ALLOW_SEALING), 16);
  if (write(16, "sealed", 6) != 6) fatal("memfd write");
  if (fcntl(16, F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK) < 0) fatal("seals");

  /* fds 17-19: O_PATH on a symbolic link itself, a FIFO, a device no plain open could save */
  if (symlink("plain.txt", "link") < 0 || mkfifo("fifo", 0600) < 0) fatal("symlink/mkfifo");
  put_at(open("link", O_PATH | O_NOFOLLOW), 17);
  put_at(open("fifo", O_PATH), 18);
  put_at(open("/dev/net/tun", O_PATH), 19);
  struct stat lnk;
  lstat("link", &lnk);

  /* fd 1500 below RLIMIT_NOFILE 1501 */
  struct rlimit rl = {1501, 4096};
  if (setrlimit(RLIMIT_NOFILE, &rl) < 0) fatal("rlimit");
  put_at(open("plain.txt", O_RDONLY), 1500);
  lseek(1500, 3, SEEK_SET);

  struct stat renamed;
  fstat(15, &renamed);
  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000);

  struct stat st;
  char rest[8192];
  rest_names(3, rest, sizeof rest);
  verdict("dir-readdir", strcmp(rest, expect_rest) == 0, "after restore: [%s] expected [%s]", rest, expect_rest);

  int fl = fcntl(5, F_GETFL);
  verdict("o-path", fl >= 0 && (fl & O_PATH) && fstat(5, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 6,
          "flags %o size %ld", fl, (long)st.st_size);
  char b[64];
  errno = 0;
  verdict("o-path-no-read", read(5, b, 1) < 0 && errno == EBADF, "read on O_PATH: %s", strerror(errno));

  char got[sizeof tmpdata] = {0};
  verdict("tmpfile-data", pread(6, got, sizeof got, 0) == sizeof got && memcmp(got, tmpdata, sizeof got) == 0, "content %s", got);
  verdict("tmpfile-mode", fstat(6, &st) == 0 && (st.st_mode & 07777) == 0640 && st.st_nlink == 0, "mode %o nlink %ld",
          st.st_mode & 07777, (long)st.st_nlink);
  int lk = linkat(6, "", AT_FDCWD, "linked-tmpfile", AT_EMPTY_PATH);
  verdict("tmpfile-linkable", lk == 0, "linkat: %s", strerror(errno));
  errno = 0;
  lk = linkat(7, "", AT_FDCWD, "linked-excl-tmpfile", AT_EMPTY_PATH);
  verdict("tmpfile-excl-unlinkable", lk < 0 && errno == ENOENT, "linkat of an O_EXCL O_TMPFILE: %d %s", lk, strerror(errno));

  fl = fcntl(8, F_GETFL);
  verdict("flags-append-sync", (fl & (O_APPEND | O_SYNC | O_ACCMODE)) == (O_APPEND | O_SYNC | O_WRONLY), "flags %o", fl);
  fl = fcntl(9, F_GETFL);
  verdict("flags-dsync-noatime", (fl & (O_DSYNC | O_NOATIME | O_ACCMODE)) == (O_DSYNC | O_NOATIME | O_RDWR) && (fl & O_SYNC) != O_SYNC,
          "flags %o", fl);
  if (have_direct) {
    fl = fcntl(10, F_GETFL);
    verdict("flags-direct", (fl & O_DIRECT) != 0, "flags %o", fl);
  } else {
    say("PASS flags-direct\n");
  }
  char status[4096] = {0};
  pread(11, status, sizeof status - 1, 0);
  char pidline[64];
  snprintf(pidline, sizeof pidline, "\nPid:\t%d\n", getpid());
  verdict("proc-self-status", strstr(status, pidline) != NULL, "status does not name pid %d", getpid());

  verdict("dev-zero", fstat(12, &st) == 0 && st.st_rdev == makedev(1, 5) && read(12, b, 4) == 4 && b[0] == 0, "rdev %lx",
          (long)st.st_rdev);
  errno = 0;
  verdict("dev-full", fstat(13, &st) == 0 && st.st_rdev == makedev(1, 7) && write(13, "x", 1) < 0 && errno == ENOSPC,
          "rdev %lx %s", (long)st.st_rdev, strerror(errno));
  fl = fcntl(14, F_GETFL);
  verdict("dev-null-append", fstat(14, &st) == 0 && st.st_rdev == makedev(1, 3) && (fl & (O_APPEND | O_ACCMODE)) == (O_APPEND | O_WRONLY),
          "flags %o", fl);

  char link[256] = {0};
  readlink("/proc/self/fd/15", link, sizeof link - 1);
  verdict("renamed", fstat(15, &st) == 0 && st.st_ino == renamed.st_ino && strstr(link, "/after-rename") && lseek(15, 0, SEEK_CUR) == 7,
          "link %s ino %ld (was %ld)", link, (long)st.st_ino, (long)renamed.st_ino);

  int seals = fcntl(16, F_GET_SEALS);
  verdict("memfd-future-write", seals == (F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK), "seals %x", seals);
  errno = 0;
  verdict("memfd-future-write-enforced", pwrite(16, "x", 1, 0) < 0 && errno == EPERM, "write: %s", strerror(errno));

  char target[64] = {0};
  fl = fcntl(17, F_GETFL);
  verdict("o-path-symlink", fstat(17, &st) == 0 && S_ISLNK(st.st_mode) && st.st_ino == lnk.st_ino && (fl & (O_PATH | O_NOFOLLOW)) == (O_PATH | O_NOFOLLOW) &&
          readlinkat(17, "", target, sizeof target - 1) == 9 && strcmp(target, "plain.txt") == 0, "mode %o flags %o target [%s]", st.st_mode, fl, target);
  fl = fcntl(18, F_GETFL);
  verdict("o-path-fifo", fstat(18, &st) == 0 && S_ISFIFO(st.st_mode) && (fl & O_PATH), "mode %o flags %o", st.st_mode, fl);
  fl = fcntl(19, F_GETFL);
  verdict("o-path-device", fstat(19, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(10, 200) && (fl & O_PATH), "rdev %lx flags %o",
          (long)st.st_rdev, fl);

  getrlimit(RLIMIT_NOFILE, &rl);
  verdict("high-fd", lseek(1500, 0, SEEK_CUR) == 3 && rl.rlim_cur == 1501 && rl.rlim_max == 4096, "offset %ld limit %ld/%ld",
          (long)lseek(1500, 0, SEEK_CUR), (long)rl.rlim_cur, (long)rl.rlim_max);
  say("DONE\n");
  return 0;
}
