/* memfds whose mode, owner, size and seals were changed, checked by the victim itself
 * after restore (SIGUSR1):
 *   fd 3  memfd "ckpt-mode"   5000 bytes, fchmod 0642, owner 1234:5678, seals SHRINK|GROW
 *   fd 4  memfd "ckpt-noexec" MFD_NOEXEC_SEAL (F_SEAL_EXEC), fchmod 0604, 10 bytes
 */
#include "selfcheck.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif
#ifndef F_SEAL_EXEC
#define F_SEAL_EXEC 0x0020
#endif

static void check_name(int fd, const char *want) {
  char path[64], link[256] = {0};
  snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  CHECK(readlink(path, link, sizeof link - 1) > 0 && strcmp(link, want) == 0, "fd %d is %s, not %s", fd, link, want);
}

int main(void) {
  catch_usr1();
  unsigned char buf[5000];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 7);

  put_at(memfd_create("ckpt-mode", MFD_ALLOW_SEALING), 3);
  if (write(3, buf, sizeof buf) != sizeof buf) fatal("write");
  if (fchmod(3, 0642) < 0 || fchown(3, 1234, 5678) < 0) fatal("fchmod/fchown");
  if (fcntl(3, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) fatal("seals");
  put_at(memfd_create("ckpt-noexec", MFD_NOEXEC_SEAL), 4);
  if (write(4, "0123456789", 10) != 10 || fchmod(4, 0604) < 0) fatal("noexec memfd");
  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */

  struct stat st;
  CHECK(fstat(3, &st) == 0 && (st.st_mode & 07777) == 0642, "fd 3 mode %o", st.st_mode & 07777);
  CHECK(st.st_uid == 1234 && st.st_gid == 5678, "fd 3 owner %d:%d", st.st_uid, st.st_gid);
  CHECK(st.st_size == sizeof buf, "fd 3 size %ld", (long)st.st_size);
  CHECK(fcntl(3, F_GET_SEALS) == (F_SEAL_SHRINK | F_SEAL_GROW), "fd 3 seals %x", fcntl(3, F_GET_SEALS));
  unsigned char back[sizeof buf];
  CHECK(pread(3, back, sizeof back, 0) == sizeof back && memcmp(back, buf, sizeof buf) == 0, "fd 3 content");
  CHECK(ftruncate(3, 10) < 0 && errno == EPERM, "fd 3 shrank despite F_SEAL_SHRINK");
  check_name(3, "/memfd:ckpt-mode (deleted)");
  CHECK(fstat(4, &st) == 0 && (st.st_mode & 07777) == 0604, "fd 4 mode %o", st.st_mode & 07777);
  CHECK(st.st_size == 10, "fd 4 size %ld", (long)st.st_size);
  CHECK((fcntl(4, F_GET_SEALS) & F_SEAL_EXEC) != 0, "fd 4 seals %x", fcntl(4, F_GET_SEALS));
  CHECK(fchmod(4, 0705) < 0, "fd 4 could get exec bits despite F_SEAL_EXEC");
  check_name(4, "/memfd:ckpt-noexec (deleted)");
  if (fails == 0) say("PASS memfd\n");
  say("DONE\n");
  return fails ? 1 : 0;
}
