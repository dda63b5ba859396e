/* A Landlock domain that forbids exec anywhere (auditproc, auditpolicy): the dump must refuse it. */
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static void landlock_setup(void) {
  struct landlock_ruleset_attr attr = { .handled_access_fs = LANDLOCK_ACCESS_FS_EXECUTE };
  int fd = syscall(SYS_landlock_create_ruleset, &attr, sizeof attr, 0);
  if (fd < 0) { say("SKIP landlock: %s\n", strerror(errno)); exit(3); }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_landlock_restrict_self, fd, 0) < 0) {
    say("SETUP FAIL landlock: %s\n", strerror(errno));
    exit(2);
  }
  close(fd);
}
static void landlock_check(void) {
  int r = execl("/bin/true", "true", (char *)NULL); /* returns only when refused */
  self_check(r < 0 && errno == EACCES, "Landlock forbids exec", "execl returned %d (%s)", r, strerror(errno));
}
