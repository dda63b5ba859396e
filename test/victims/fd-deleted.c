/* Files whose name is gone, checked by the victim itself after restore (SIGUSR1).
 * Runs in a scratch directory (fd 9 keeps it).
 * argv[1] = "files":
 *   fd 3  a sparse deleted file of 3 GiB: data pages at 0, 1 MiB and near the end, holes between
 *   fd 4  deleted file "h1" (O_RDWR) and fd 5 its hard link "h2" (O_RDONLY), both names gone: one file
 *   fd 6  "alias", unlinked, but the file keeps its other name "kept": not really deleted
 *   fd 7  a deleted FIFO with "hello" in its buffer
 *   fd 8  a deleted character device node (1,3 = /dev/null), mode 0620
 *   fd 10 FIFO "fifo2-alias" with "world" in it, unlinked, but the FIFO keeps its name "fifo2"
 * argv[1] = "cwd": the working directory is an empty directory removed since.
 */
#include "selfcheck.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#define GiB (1024L * 1024 * 1024)
#define SPARSE_SIZE (3 * GiB)

static const off_t marks[] = {0, 1 << 20, SPARSE_SIZE - 10};

static void setup_files(void) {
  put_at(open("sparse", O_RDWR | O_CREAT | O_TRUNC, 0600), 3);
  if (ftruncate(3, SPARSE_SIZE) < 0) fatal("ftruncate");
  for (int i = 0; i < 3; i++)
    if (pwrite(3, "ABC" + i, 1, marks[i]) != 1) fatal("pwrite");
  unlink("sparse");

  put_at(open("h1", O_RDWR | O_CREAT | O_TRUNC, 0600), 4);
  if (write(4, "one file", 8) != 8 || link("h1", "h2") < 0) fatal("h1/h2");
  put_at(open("h2", O_RDONLY), 5);
  unlink("h1");
  unlink("h2");

  put_at(open("kept", O_RDWR | O_CREAT | O_TRUNC, 0644), 6);
  if (link("kept", "alias") < 0) fatal("link alias");
  put_at(open("alias", O_RDWR), 6);
  unlink("alias");
  lseek(6, 3, SEEK_SET);

  if (mkfifo("fifo", 0600) < 0) fatal("mkfifo");
  put_at(open("fifo", O_RDWR | O_NONBLOCK), 7);
  if (write(7, "hello", 5) != 5) fatal("write fifo");
  unlink("fifo");

  if (mkfifo("fifo2", 0600) < 0 || link("fifo2", "fifo2-alias") < 0) fatal("fifo2");
  put_at(open("fifo2-alias", O_RDWR | O_NONBLOCK), 10);
  if (write(10, "world", 5) != 5) fatal("write fifo2");
  unlink("fifo2-alias");

  if (mknod("null", S_IFCHR | 0620, makedev(1, 3)) < 0) fatal("mknod");
  chmod("null", 0620);
  put_at(open("null", O_WRONLY), 8);
  unlink("null");
}

static void check_files(void) {
  struct stat st, st2;
  /* fd 3: 3 GiB, three data pages, holes kept */
  CHECK(fstat(3, &st) == 0 && st.st_size == SPARSE_SIZE && st.st_nlink == 0, "sparse: size %ld nlink %ld",
        (long)st.st_size, (long)st.st_nlink);
  CHECK(st.st_blocks * 512L < (1L << 20), "sparse: its holes were filled (%ld blocks)", (long)st.st_blocks);
  for (int i = 0; i < 3; i++) {
    char c = 0;
    CHECK(pread(3, &c, 1, marks[i]) == 1 && c == "ABC"[i], "sparse: byte at %ld is %d", (long)marks[i], c);
  }
  CHECK(lseek(3, 0, SEEK_HOLE) == 4096, "sparse: first hole at %ld", (long)lseek(3, 0, SEEK_HOLE));
  CHECK(lseek(3, 4096, SEEK_DATA) == (1 << 20), "sparse: second data at %ld", (long)lseek(3, 4096, SEEK_DATA));
  /* fds 4 and 5: one inode */
  CHECK(fstat(4, &st) == 0 && fstat(5, &st2) == 0 && st.st_ino == st2.st_ino && st.st_dev == st2.st_dev,
        "hard links: fds 4 and 5 are different files (%ld, %ld)", (long)st.st_ino, (long)st2.st_ino);
  CHECK(st.st_nlink == 0, "hard links: nlink %ld", (long)st.st_nlink);
  char buf[16] = {0};
  CHECK(pwrite(4, "ONE", 3, 0) == 3 && pread(5, buf, 8, 0) == 8 && memcmp(buf, "ONE file", 8) == 0,
        "hard links: a write through fd 4 is not seen through fd 5 (\"%s\")", buf);
  CHECK((fcntl(5, F_GETFL) & O_ACCMODE) == O_RDONLY, "hard links: fd 5 flags %o", fcntl(5, F_GETFL));
  /* fd 6: the file still named "kept" */
  CHECK(fstat(6, &st) == 0 && fstatat(9, "kept", &st2, 0) == 0 && st.st_ino == st2.st_ino,
        "other link: fd 6 is not the file named kept");
  CHECK(lseek(6, 0, SEEK_CUR) == 3 && write(6, "xy", 2) == 2, "other link: offset or write");
  int k = openat(9, "kept", O_RDONLY);
  CHECK(k >= 0 && pread(k, buf, 5, 0) == 5 && memcmp(buf + 3, "xy", 2) == 0, "other link: kept does not see the write");
  close(k);
  /* fd 7: deleted FIFO with its data */
  memset(buf, 0, sizeof buf);
  CHECK(fstat(7, &st) == 0 && S_ISFIFO(st.st_mode) && st.st_nlink == 0, "fifo: mode %o nlink %ld", st.st_mode,
        (long)st.st_nlink);
  CHECK(read(7, buf, sizeof buf) == 5 && strcmp(buf, "hello") == 0, "fifo: read \"%s\"", buf);
  CHECK(write(7, "again", 5) == 5 && read(7, buf, sizeof buf) == 5, "fifo: no longer a pipe");
  /* fd 10: the FIFO still named fifo2: same inode, same pipe */
  memset(buf, 0, sizeof buf);
  CHECK(fstat(10, &st) == 0 && fstatat(9, "fifo2", &st2, 0) == 0 && st.st_ino == st2.st_ino,
        "other fifo link: fd 10 is not the FIFO named fifo2");
  CHECK(read(10, buf, sizeof buf) == 5 && strcmp(buf, "world") == 0, "other fifo link: read \"%s\"", buf);
  int w = openat(9, "fifo2", O_WRONLY | O_NONBLOCK);
  CHECK(w >= 0 && write(w, "via", 3) == 3 && read(10, buf, sizeof buf) == 3, "other fifo link: not the same pipe");
  close(w);
  /* fd 8: deleted device node */
  CHECK(fstat(8, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3) && st.st_nlink == 0,
        "device: mode %o rdev %lx nlink %ld", st.st_mode, (unsigned long)st.st_rdev, (long)st.st_nlink);
  CHECK((st.st_mode & 07777) == 0620, "device: mode %o", st.st_mode & 07777);
  CHECK(write(8, "x", 1) == 1, "device: write");
  CHECK((fcntl(8, F_GETFL) & O_ACCMODE) == O_WRONLY, "device: flags %o", fcntl(8, F_GETFL));
}

int main(int argc, char **argv) {
  catch_usr1();
  int cwd_mode = argc > 1 && strcmp(argv[1], "cwd") == 0;
  put_at(open(".", O_RDONLY | O_DIRECTORY), 9);
  if (cwd_mode) {
    if (mkdir("gone-dir", 0751) < 0 || chdir("gone-dir") < 0 || rmdir("../gone-dir") < 0) fatal("gone-dir");
  } else {
    setup_files();
  }
  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */

  if (cwd_mode) {
    struct stat st;
    char buf[256];
    CHECK(stat(".", &st) == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 0, "cwd: mode %o nlink %ld", st.st_mode,
          (long)st.st_nlink);
    CHECK((st.st_mode & 07777) == 0751, "cwd: mode %o", st.st_mode & 07777);
    CHECK(getcwd(buf, sizeof buf) == NULL && errno == ENOENT, "cwd: getcwd works (%s)", buf);
    CHECK(open("x", O_WRONLY | O_CREAT, 0600) < 0 && errno == ENOENT, "cwd: a file can be created in it");
    struct stat parent;
    CHECK(chdir("..") == 0 && stat(".", &st) == 0 && fstat(9, &parent) == 0 && st.st_ino == parent.st_ino,
          "cwd: its .. is not the directory it was made in");
    CHECK(fchdir(9) == 0 && access("gone-dir", F_OK) < 0, "cwd: gone-dir exists again");
  } else {
    check_files();
  }
  if (fails == 0) say("PASS deleted\n");
  say("DONE\n");
  return fails ? 1 : 0;
}
