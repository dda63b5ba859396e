/* N mostly idle threads (argv[1]), like a server's pool: each wakes every 50 ms, bumps
 * its thread-local counter and checks its TID. Main prints READY with the TIDs, then
 * TICK n PASS|FAIL each 100 ms (FAIL if a thread saw another TID or stopped waking). */
#include "victim.h"
#include <pthread.h>
#include <sys/syscall.h>

#define MAXT 4096
static int n;
static pid_t tids[MAXT];
static volatile unsigned long progress[MAXT];
static volatile int failed;
static __thread unsigned long mine;

static void *worker(void *arg) {
  int i = (int)(long)arg;
  tids[i] = syscall(SYS_gettid);
  for (;;) {
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    if (syscall(SYS_gettid) != tids[i]) failed = 1;
    progress[i] = ++mine;
  }
  return NULL;
}

int main(int argc, char **argv) {
  n = argc > 1 ? atoi(argv[1]) : 8;
  if (n < 0 || n > MAXT) return 2;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t t;
  for (int i = 0; i < n; i++) if (pthread_create(&t, &attr, worker, (void *)(long)i)) { say("FAIL create %d\n", i); return 1; }
  usleep(200000);
  say("READY pid=%d threads=%d tids=", getpid(), n);
  for (int i = 0; i < n; i++) say("%d%s", tids[i], i + 1 < n ? "," : "");
  say("\n");
  unsigned long last[MAXT] = {0};
  int stale[MAXT] = {0};
  for (int tick = 0;; tick++) {
    usleep(100000);
    int ok = !failed;
    for (int i = 0; i < n; i++) {
      if (progress[i] == last[i]) { if (++stale[i] > 100) ok = 0; } else stale[i] = 0;
      last[i] = progress[i];
    }
    say("TICK %d %s\n", tick, ok ? "PASS" : "FAIL");
  }
}
