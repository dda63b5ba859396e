/* Benchmark victim: a tree of argv[1] processes (default 100), numbered breadth-first
 * with fan-out 10 (the children of process i are 10i+1 .. 10i+10): for 100, the root,
 * its 10 children and their 89 children. Each process touches argv[2] KiB (default 16)
 * of its own memory with a pattern of its number, keeps the write end of a pipe to its
 * parent and the read ends of pipes from its children, and sleeps in pause().
 * Each prints "PROC i pid"; a process reports up its pipe once its whole subtree is up,
 * and the root then prints READY. On SIGUSR1 (sent to every process) each checks its
 * memory, collects the count of good processes from each child pipe, and sends its
 * subtree's count up; the root prints "PASS tree procs=N" or "FAIL tree good=K of N". */
#include "victim.h"

#define FAN 10
static volatile sig_atomic_t poked;
static void on_usr1(int s) { (void)s; poked = 1; }

static int n, me, up = -1, nkids, kid_fd[FAN];
static size_t kib;
static unsigned char *mem;

static unsigned char pat(size_t off) { return (unsigned char)(me * 31 + (off >> 12) * 7 + off) | 1; }

static void fill(void) {
  mem = malloc(kib << 10);
  if (!mem) { say("FAIL malloc\n"); exit(1); }
  for (size_t o = 0; o < kib << 10; o++) mem[o] = pat(o);
}

static int good(void) {
  for (size_t o = 0; o < kib << 10; o++) if (mem[o] != pat(o)) return 0;
  return 1;
}

static int read_int(int fd, int *v) {
  size_t got = 0;
  while (got < sizeof *v) {
    ssize_t r = read(fd, (char *)v + got, sizeof *v - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    got += r;
  }
  return 0;
}

static void write_int(int fd, int v) {
  while (write(fd, &v, sizeof v) < 0 && errno == EINTR) {}
}

/* Sum of the counts each child sends (-1 on a broken pipe). */
static int from_kids(void) {
  int sum = 0;
  for (int k = 0; k < nkids; k++) {
    int v;
    if (read_int(kid_fd[k], &v)) { say("FAIL %d pipe from child %d\n", me, k); return -1; }
    sum += v;
  }
  return sum;
}

static void start(void) {
  for (int c = FAN * me + 1; c <= FAN * me + FAN && c < n; c++) {
    int p[2];
    if (pipe(p)) { say("FAIL pipe %s\n", strerror(errno)); exit(1); }
    pid_t pid = fork();
    if (pid < 0) { say("FAIL fork %s\n", strerror(errno)); exit(1); }
    if (pid == 0) {
      /* the child keeps only the write end of its own pipe */
      for (int k = 0; k < nkids; k++) close(kid_fd[k]);
      if (up >= 0) close(up);
      close(p[0]);
      up = p[1];
      nkids = 0;
      me = c;
      start();
      return;
    }
    close(p[1]);
    kid_fd[nkids++] = p[0];
  }
}

int main(int argc, char **argv) {
  n = argc > 1 ? atoi(argv[1]) : 100;
  kib = argc > 2 ? strtoul(argv[2], NULL, 10) : 16;
  if (n < 1 || kib < 1) return 2;
  struct sigaction sa = { .sa_handler = on_usr1 };
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  start();
  fill();
  say("PROC %d %d\n", me, getpid());
  int below = from_kids();
  if (up >= 0) write_int(up, below + 1);
  else if (below + 1 == n) say("READY pid=%d procs=%d kib=%zu\n", getpid(), n, kib);
  else say("FAIL tree up=%d of %d\n", below + 1, n);
  for (;;) {
    while (!poked) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
    poked = 0;
    int ok = good();
    if (!ok) say("FAIL %d memory\n", me);
    int sum = from_kids();
    int mine = sum < 0 ? 0 : sum + ok;
    if (up >= 0) write_int(up, mine);
    else if (mine == n) say("PASS tree procs=%d\n", n);
    else say("FAIL tree good=%d of %d\n", mine, n);
  }
}
