/* A parent fills 8 MiB of private anonymous memory and forks; the child rewrites the
 * first 1 MiB, so the other 7 MiB stay shared copy-on-write. Both then sleep. */
#include "victim.h"
#include <sys/mman.h>

#define SIZE (8 << 20)

int main(void) {
  unsigned char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { say("FAIL mmap\n"); return 1; }
  for (size_t i = 0; i < SIZE; i += 4096) p[i] = (unsigned char)(i >> 12) | 1;
  pid_t c = fork();
  if (c == 0) {
    for (size_t i = 0; i < (1 << 20); i += 4096) p[i] = 0xee;
    say("CHILD pid=%d area=%p\n", getpid(), (void *)p);
    for (;;) pause();
  }
  say("READY pid=%d child=%d area=%p\n", getpid(), c, (void *)p);
  for (;;) pause();
}
