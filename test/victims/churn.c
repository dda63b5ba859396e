/* Creates and joins threads without pause, each computing a known value; a few long-lived
 * threads keep counters. TICK lines say PASS while every joined result was right. */
#include "victim.h"
#include <pthread.h>

static volatile unsigned long joined, bad;
static volatile unsigned long steady[4];

static void *short_lived(void *arg) {
  unsigned long k = (unsigned long)arg, s = 0;
  for (unsigned long i = 0; i < 1000; i++) s += i ^ k;
  return (void *)s;
}

static void *long_lived(void *arg) {
  int i = (int)(long)arg;
  for (;;) { steady[i]++; usleep(500); }
  return NULL;
}

static void *creator(void *arg) {
  (void)arg;
  for (unsigned long k = 0;; k++) {
    pthread_t t;
    if (pthread_create(&t, NULL, short_lived, (void *)k)) { bad++; continue; }
    void *r;
    pthread_join(t, &r);
    unsigned long want = 0;
    for (unsigned long i = 0; i < 1000; i++) want += i ^ k;
    if ((unsigned long)r != want) bad++;
    joined++;
  }
  return NULL;
}

int main(void) {
  pthread_t t;
  for (long i = 0; i < 4; i++) pthread_create(&t, NULL, long_lived, (void *)i);
  for (int i = 0; i < 2; i++) pthread_create(&t, NULL, creator, NULL);
  say("READY pid=%d\n", getpid());
  unsigned long last = 0, last_steady[4] = {0};
  for (int tick = 0;; tick++) {
    usleep(100000);
    int ok = bad == 0 && joined > last;
    for (int i = 0; i < 4; i++) { ok = ok && steady[i] > last_steady[i]; last_steady[i] = steady[i]; }
    last = joined;
    say("TICK %d %s joined=%lu\n", tick, ok ? "PASS" : "FAIL", joined);
  }
}
