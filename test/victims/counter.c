/* Counts forever and checks a 1 MiB pattern buffer; reports TICK lines with PASS/FAIL.
 * argv[1] (optional): path of a file it appends its count to. */
#include "victim.h"
#include <pthread.h>

static volatile unsigned long counter;
static unsigned char buf[1 << 20];

int main(int argc, char **argv) {
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 7 + 3);
  uint64_t sum = fnv1a(buf, sizeof buf);
  FILE *f = argc > 1 ? fopen(argv[1], "a") : NULL;
  say("READY pid=%d counter=%p buf=%p len=%zu sum=%llu tls=%p\n", getpid(), (void *)&counter, (void *)buf, sizeof buf,
      (unsigned long long)sum, (void *)pthread_self());
  double last = now_s();
  for (;;) {
    counter++;
    if ((counter & 0xfff) == 0 && now_s() - last > 0.05) {
      last = now_s();
      int ok = fnv1a(buf, sizeof buf) == sum;
      say("TICK pid=%d counter=%lu mem=%s\n", getpid(), counter, ok ? "PASS" : "FAIL");
      if (f) { fprintf(f, "%lu\n", counter); fflush(f); }
      usleep(1000);
    }
  }
}
