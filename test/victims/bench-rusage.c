/* Benchmark helper, not a victim: runs a command and prints its CPU time, which Node's
 * spawnSync does not report.
 *
 *   bench-rusage CMD ARGS...
 *
 * The command's stdout and stderr are its own; on exit this prints one more line to
 * stderr, "RUSAGE cpu=MS wall=MS" (user + system time of the command and of the children
 * it waited for, from wait4; wall from fork to reaped), and exits with its status.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/wait.h>

static double ms(struct timeval t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; }

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: bench-rusage CMD ARGS...\n");
    return 2;
  }
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  pid_t pid = fork();
  if (pid < 0) return perror("fork"), 1;
  if (pid == 0) {
    execvp(argv[1], argv + 1);
    perror(argv[1]);
    _exit(127);
  }
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) return perror("wait4"), 1;
  clock_gettime(CLOCK_MONOTONIC, &b);
  double wall = (b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6;
  fprintf(stderr, "RUSAGE cpu=%.2f wall=%.2f\n", ms(ru.ru_utime) + ms(ru.ru_stime), wall);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
