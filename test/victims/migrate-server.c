/* A TCP server to migrate: listens on argv[1]:argv[2], accepts one client and streams
 * "seq N" lines to it without end (test/victims/seq-consumer.c checks them), while it
 * keeps rewriting a working set of argv[4] MiB inside argv[3] MiB of patterned memory
 * (the same values: the pattern holds, the pages are dirty for every pre-copy round).
 * Every ~0.3 s it checks all its memory and, if any word is wrong, sends a "FAIL" line,
 * which the client reports. Prints READY once listening, ACCEPTED once it has its client. */
#include "victim.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>

static inline uint64_t pat(uint64_t off) { return (off * 0x9E3779B97F4A7C15ULL) ^ 0x5A5AA5A5C3C33C3CULL; }

int main(int argc, char **argv) {
  if (argc < 5) return 2;
  size_t len = strtoul(argv[3], NULL, 10) << 20, hot = strtoul(argv[4], NULL, 10) << 20;
  uint64_t *mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 1;
  for (size_t i = 0; i < len / 8; i++) mem[i] = pat(i * 8);
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
  inet_pton(AF_INET, argv[1], &a.sin_addr);
  if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 1)) { say("FAIL listen: %s\n", strerror(errno)); return 1; }
  say("READY pid=%d\n", getpid());
  int c = accept(l, NULL, NULL);
  if (c < 0) { say("FAIL accept: %s\n", strerror(errno)); return 1; }
  say("ACCEPTED\n");
  char line[64];
  size_t at = 0;
  double checked = now_s();
  for (unsigned long n = 0;; n++) {
    int k = snprintf(line, sizeof line, "seq %lu\n", n);
    if (write(c, line, k) != k) { say("write: %s\n", strerror(errno)); return 1; }
    /* 64 KiB of the working set per line: about 2 GiB/s at most, paced by the sleeps. */
    for (int w = 0; w < 8192 && hot > 0; w++, at = (at + 8) % hot) mem[at / 8] = pat(at);
    if (n % 64 == 0) usleep(2000);
    if (now_s() - checked > 0.3) {
      size_t bad = 0;
      for (size_t i = 0; i < len / 8; i++) bad += mem[i] != pat(i * 8);
      if (bad) { k = snprintf(line, sizeof line, "FAIL memory %zu\n", bad); if (write(c, line, k) != k) return 1; }
      checked = now_s();
    }
  }
}
