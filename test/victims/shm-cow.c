/* A parent fills 8 MiB of private anonymous memory and forks; the child rewrites the
 * first 1 MiB, so the other 7 MiB stay shared copy-on-write. Both then sleep; on
 * SIGUSR1 each checks its own copy and prints PASS or FAIL. */
#include "victim.h"
#include <sys/mman.h>

#define SIZE (8 << 20)
static volatile sig_atomic_t poked;
static void on_usr1(int s) { (void)s; poked = 1; }

static void check(const char *who, unsigned char *p, int child) {
  for (size_t i = 0; i < SIZE; i += 4096) {
    unsigned char want = child && i < (1 << 20) ? 0xee : ((unsigned char)(i >> 12) | 1);
    if (p[i] != want) { say("FAIL %s page %zu\n", who, i >> 12); return; }
  }
  say("PASS %s\n", who);
}

int main(void) {
  struct sigaction sa = {0};
  sa.sa_handler = on_usr1;
  sigaction(SIGUSR1, &sa, NULL);
  unsigned char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { say("FAIL mmap\n"); return 1; }
  for (size_t i = 0; i < SIZE; i += 4096) p[i] = (unsigned char)(i >> 12) | 1;
  pid_t c = fork();
  if (c == 0) {
    for (size_t i = 0; i < (1 << 20); i += 4096) p[i] = 0xee;
    say("CHILD pid=%d area=%p\n", getpid(), (void *)p);
    for (;;) { while (!poked) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */ poked = 0; check("child", p, 1); }
  }
  say("READY pid=%d child=%d area=%p\n", getpid(), c, (void *)p);
  for (;;) { while (!poked) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */ poked = 0; check("parent", p, 0); }
}
