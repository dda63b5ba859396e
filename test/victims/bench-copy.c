/* Benchmark helper, not a victim: the kernel paths a dump or a restore of a big
 * process can take, each timed on one CPU, on cold and on warm memory.
 *
 *   bench-copy MIB DIR SLEEP_S MODE...
 *
 * It maps MIB MiB of anonymous memory and writes a pattern to every page (the
 * "process"), then for each MODE: sleeps SLEEP_S seconds (free page reporting hands
 * memory freed meanwhile back to the host, so the next allocation is cold), runs the
 * mode once (cold), and once more right away (warm: it reuses the pages the first run
 * just freed). Prints "MODE name cold=MS warm=MS".
 *
 * Dump modes (memory -> a new file in DIR, then fsync; the file is removed after):
 *   outside   process_vm_readv into a 4 MiB buffer + write(2): the one-CPU C outside copy
 *   write     write(2) straight from the memory: what the target's own pwritev does
 *   mmap      fallocate + MAP_SHARED mapping of the file + process_vm_readv into it
 *   vmsplice  vmsplice of the memory into a pipe + splice to the file (CRIU's page pipes)
 *   readv-pwrite  process_vm_readv into a 1 MiB buffer + pwrite (small buffer, stays in cache)
 * Restore modes (a page file written by one `write` first -> fresh anonymous memory):
 *   fill      mmap fresh anonymous memory + pread: the one-CPU C fill
 *   populate  mmap + MADV_POPULATE_WRITE + pread
 *   writev    mmap + pread into a 1 MiB buffer + process_vm_writev: ckpt's side of a restore
 */
#include "victim.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static char *mem;
static size_t len;
static const char *dir;
static char src_file[4096];

static void die(const char *what) { say("FAIL %s: %s\n", what, strerror(errno)); exit(1); }

static int new_file(const char *name, char *path) {
  snprintf(path, 4096, "%s/%s", dir, name);
  unlink(path);
  int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
  if (fd < 0) die("open");
  return fd;
}

static void write_all(int fd, const char *p, size_t n, off_t at) {
  while (n) {
    ssize_t w = pwrite(fd, p, n, at);
    if (w <= 0) die("pwrite");
    p += w, n -= (size_t)w, at += w;
  }
}

static void vm_read(void *dst, const void *src, size_t n) {
  struct iovec l = { dst, n }, r = { (void *)src, n };
  if (process_vm_readv(getpid(), &l, 1, &r, 1, 0) != (ssize_t)n) die("process_vm_readv");
}

static void dump_mode(const char *mode) {
  char path[4096];
  int fd = new_file("bench-copy.img", path);
  if (!strcmp(mode, "outside") || !strcmp(mode, "readv-pwrite")) {
    size_t chunk = !strcmp(mode, "outside") ? 4u << 20 : 1u << 20;
    static char *buf;
    static size_t have;
    if (have < chunk) { free(buf); buf = aligned_alloc(4096, chunk); have = chunk; memset(buf, 1, chunk); }
    for (size_t off = 0; off < len; off += chunk) {
      size_t n = len - off < chunk ? len - off : chunk;
      vm_read(buf, mem + off, n);
      write_all(fd, buf, n, (off_t)off);
    }
  } else if (!strcmp(mode, "write")) {
    write_all(fd, mem, len, 0);
  } else if (!strcmp(mode, "mmap")) {
    if (fallocate(fd, 0, 0, (off_t)len)) die("fallocate");
    char *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) die("mmap");
    for (size_t off = 0; off < len; off += 4u << 20) vm_read(map + off, mem + off, len - off < (4u << 20) ? len - off : 4u << 20);
    munmap(map, len);
  } else if (!strcmp(mode, "vmsplice")) {
    int p[2];
    if (pipe(p)) die("pipe");
    int sz = fcntl(p[1], F_SETPIPE_SZ, 16 << 20);
    if (sz < 0) sz = fcntl(p[1], F_GETPIPE_SZ);
    loff_t at = 0;
    for (size_t off = 0; off < len;) {
      size_t n = len - off < (size_t)sz ? len - off : (size_t)sz;
      struct iovec iov = { mem + off, n };
      ssize_t in = vmsplice(p[1], &iov, 1, 0);
      if (in <= 0) die("vmsplice");
      for (ssize_t left = in; left > 0;) {
        ssize_t out = splice(p[0], NULL, fd, &at, (size_t)left, SPLICE_F_MOVE);
        if (out <= 0) die("splice");
        left -= out;
      }
      off += (size_t)in;
    }
    close(p[0]), close(p[1]);
  } else {
    say("FAIL unknown mode %s\n", mode);
    exit(2);
  }
  if (fsync(fd)) die("fsync");
  close(fd);
  unlink(path);
}

static void restore_mode(const char *mode) {
  int fd = open(src_file, O_RDONLY);
  if (fd < 0) die("open page file");
  char *to = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (to == MAP_FAILED) die("mmap");
  if (!strcmp(mode, "populate") && madvise(to, len, MADV_POPULATE_WRITE)) die("madvise");
  if (!strcmp(mode, "writev")) {
    static char buf[1 << 20];
    for (size_t off = 0; off < len; off += sizeof buf) {
      size_t n = len - off < sizeof buf ? len - off : sizeof buf;
      if (pread(fd, buf, n, (off_t)off) != (ssize_t)n) die("pread");
      struct iovec l = { buf, n }, r = { to + off, n };
      if (process_vm_writev(getpid(), &l, 1, &r, 1, 0) != (ssize_t)n) die("process_vm_writev");
    }
  } else {
    for (size_t off = 0; off < len;) {
      ssize_t n = pread(fd, to + off, len - off, (off_t)off);
      if (n <= 0) die("pread");
      off += (size_t)n;
    }
  }
  if (memcmp(to + len / 2, mem + len / 2, 4096)) { say("FAIL %s: wrong bytes\n", mode); exit(1); }
  munmap(to, len);
  close(fd);
}

static int is_restore(const char *m) { return !strcmp(m, "fill") || !strcmp(m, "populate") || !strcmp(m, "writev"); }

static double timed(const char *mode) {
  double t0 = now_s();
  if (is_restore(mode)) restore_mode(mode);
  else dump_mode(mode);
  return (now_s() - t0) * 1e3;
}

int main(int argc, char **argv) {
  if (argc < 5) { say("usage: bench-copy MIB DIR SLEEP_S MODE...\n"); return 2; }
  len = strtoul(argv[1], NULL, 10) << 20;
  dir = argv[2];
  double pause_s = atof(argv[3]);
  mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  for (size_t i = 0; i < len / 8; i++) ((uint64_t *)mem)[i] = (i * 0x9E3779B97F4A7C15ULL) | 1;
  int need_src = 0;
  for (int i = 4; i < argc; i++) need_src |= is_restore(argv[i]);
  if (need_src) {
    snprintf(src_file, sizeof src_file, "%s/bench-copy-src.img", dir);
    unlink(src_file);
    int fd = open(src_file, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0) die("open");
    write_all(fd, mem, len, 0);
    close(fd);
  }
  for (int i = 4; i < argc; i++) {
    struct timespec ts = { (time_t)pause_s, (long)((pause_s - (time_t)pause_s) * 1e9) };
    nanosleep(&ts, NULL);
    double cold = timed(argv[i]);
    double warm = timed(argv[i]);
    say("MODE %s cold=%.1f warm=%.1f\n", argv[i], cold, warm);
  }
  if (need_src) unlink(src_file);
  return 0;
}
