/*
 * A process group that outlives its leader: the root R is a child subreaper; its
 * child A makes its own group and forks Z into it, then A exits, so Z (reparented to
 * R) is in group A, whose leader is gone. With "zombie", Z then exits too and stays a
 * zombie of R. Such a group cannot be made again at restore: the dump must refuse.
 * Prints "READY pid=R z=Z pgid=A".
 */
#include "victim.h"
#include <sys/prctl.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
  int zombie = argc > 1 && strcmp(argv[1], "zombie") == 0;
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  int p[2];
  if (pipe(p) < 0) return 2;
  pid_t a = fork();
  if (a == 0) {
    setpgid(0, 0);
    pid_t z = fork();
    if (z == 0) {
      close(p[0]);
      if (write(p[1], "z", 1) != 1) _exit(2);
      usleep(100000);
      if (zombie) _exit(7);
      for (;;) pause();
    }
    _exit(0);
  }
  waitpid(a, NULL, 0); /* reap A: its pid, the group's id, is now no process's */
  char c;
  if (read(p[0], &c, 1) != 1) return 2;
  usleep(300000);
  pid_t z = -1;
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task/%d/children", getpid(), getpid());
  FILE *f = fopen(path, "r");
  if (f) { if (fscanf(f, "%d", &z) != 1) z = -1; fclose(f); }
  say("READY pid=%d z=%d pgid=%d\n", getpid(), z, a);
  for (;;) pause();
}
