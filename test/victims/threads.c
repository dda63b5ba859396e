/* N threads (argv[1], default 8), each with a thread-local counter, its own TID check
 * and signal mask, some exchanging items through a mutex/condvar queue, some sleeping.
 * Main prints TICK lines; any thread that stops progressing, sees another TID, another
 * mask, or an item out of sequence makes it print FAIL. */
#include "victim.h"
#include <pthread.h>
#include <sys/syscall.h>

#define MAXT 1024
static int n;
static volatile unsigned long progress[MAXT];
static pid_t tids[MAXT];
static __thread unsigned long tls_counter;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static unsigned long queue_head, queue_tail, consumed_expect;
static volatile int failed;

static void fail(const char *what, int i) { say("FAIL %s thread=%d\n", what, i); failed = 1; }

static void *worker(void *arg) {
  int i = (int)(long)arg;
  tids[i] = syscall(SYS_gettid);
  sigset_t want, got;
  sigemptyset(&want);
  if (i % 2) sigaddset(&want, SIGUSR2);
  sigaddset(&want, SIGRTMIN + (i % 8));
  pthread_sigmask(SIG_SETMASK, &want, NULL);
  char name[16];
  snprintf(name, sizeof name, "worker-%d", i);
  pthread_setname_np(pthread_self(), name);
  for (;;) {
    tls_counter++;
    progress[i] = tls_counter;
    if ((tls_counter & 63) == 0) {
      if (syscall(SYS_gettid) != tids[i]) fail("tid", i);
      pthread_sigmask(SIG_SETMASK, NULL, &got);
      if (sigismember(&got, SIGUSR2) != (i % 2) || !sigismember(&got, SIGRTMIN + (i % 8))) fail("sigmask", i);
      char now[16];
      pthread_getname_np(pthread_self(), now, sizeof now);
      if (strcmp(now, name)) fail("name", i);
    }
    switch (i % 4) {
      case 0: { struct timespec ts = {0, 1000000}; if (nanosleep(&ts, NULL)) fail("nanosleep", i); break; }
      case 1:
        pthread_mutex_lock(&mu);
        if (queue_tail - queue_head < 64) { queue_tail++; pthread_cond_signal(&cv); }
        pthread_mutex_unlock(&mu);
        usleep(100);
        break;
      case 2:
        pthread_mutex_lock(&mu);
        while (queue_tail == queue_head) pthread_cond_wait(&cv, &mu);
        if (queue_head != consumed_expect) fail("sequence", i);
        queue_head++;
        consumed_expect = queue_head;
        pthread_mutex_unlock(&mu);
        break;
      default:
        if ((tls_counter & 0xffff) == 0) sched_yield();
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  n = argc > 1 ? atoi(argv[1]) : 8;
  if (n < 1 || n > MAXT) return 2;
  /* Every consumer needs a producer: make the last role a producer if it would be alone. */
  pthread_t t;
  for (int i = 0; i < n; i++) {
    if (pthread_create(&t, NULL, worker, (void *)(long)i)) { say("FAIL create %d\n", i); return 1; }
  }
  unsigned long last[MAXT] = {0};
  int stuck[MAXT] = {0};
  for (int tick = 0;; tick++) {
    usleep(100000);
    int ok = !failed;
    for (int i = 0; i < n; i++) {
      /* consumers (i%4==2) may wait legitimately when no producer exists */
      if (progress[i] == last[i] && !(i % 4 == 2 && n < 2)) { if (++stuck[i] > 100) { fail("stuck", i); ok = 0; } }
      else stuck[i] = 0;
      last[i] = progress[i];
    }
    if (tick == 0) {
      say("READY pid=%d threads=%d tids=", getpid(), n);
      for (int i = 0; i < n; i++) say("%d%s", tids[i], i + 1 < n ? "," : "\n");
    }
    say("TICK %d %s queue=%lu\n", tick, ok ? "PASS" : "FAIL", queue_head);
  }
}
