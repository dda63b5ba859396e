/* Benchmark helper, not a victim: the best this machine does at what restore does to
 * a big process. It maps fresh anonymous memory the size of FILE and fills it from
 * FILE with THREADS threads, each pread()ing its share (as restore's target and ckpt
 * do, on two CPUs), and prints "FILL ms=<time>". */
#include "victim.h"
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>

static int fd;
static char *mem;
static size_t len, share;

static void *fill(void *arg) {
  size_t off = (size_t)arg * share, end = off + share > len ? len : off + share;
  while (off < end) {
    ssize_t n = pread(fd, mem + off, end - off, (off_t)off);
    if (n <= 0) { say("FAIL pread %s\n", n < 0 ? strerror(errno) : "short"); exit(1); }
    off += (size_t)n;
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc < 3) { say("usage: bench-fill FILE THREADS\n"); return 2; }
  int threads = atoi(argv[2]);
  struct stat st;
  fd = open(argv[1], O_RDONLY);
  if (fd < 0 || fstat(fd, &st) || threads < 1 || threads > 64) { say("FAIL open %s\n", argv[1]); return 1; }
  len = (size_t)st.st_size;
  share = (len / threads + 4095) & ~(size_t)4095;
  double t0 = now_s();
  mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) { say("FAIL mmap %s\n", strerror(errno)); return 1; }
  pthread_t th[64];
  for (long i = 0; i < threads; i++) pthread_create(&th[i], NULL, fill, (void *)i);
  for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
  say("FILL ms=%.1f\n", (now_s() - t0) * 1e3);
  return 0;
}
