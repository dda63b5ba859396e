/* Reads lines from its standard input, as a program started with `< PATH` would: with
 * an argument it first opens PATH read-only as fd 0 (a FIFO, or /proc/PID/fd/N to share
 * another process's pipe). Prints "GOT line" for each line and "EOF" at end of file. */
#include "victim.h"
#include <fcntl.h>

int main(int argc, char **argv) {
  if (argc > 1) {
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0 || dup2(fd, 0) != 0) { say("FAIL open %s: %s\n", argv[1], strerror(errno)); return 1; }
    if (fd != 0) close(fd);
  }
  say("READY pid=%d\n", getpid());
  char line[256];
  while (fgets(line, sizeof line, stdin)) say("GOT %s", line);
  say("EOF\n");
  return 0;
}
