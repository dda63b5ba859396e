/* A process with a handler for SIGTRAP, as vim and debuggers-in-process have. ckpt's
 * injected code must not take it away: a SIGTRAP raised by int3 while blocked (an
 * injection blocks every signal) makes the kernel reset its disposition to SIG_DFL.
 * On each SIGUSR1 it checks that the handler is still its own, with its flags, and
 * that raise(SIGTRAP) runs it and leaves SIGTRAP unblocked; "CHECK n PASS" or
 * "CHECK n FAIL: why". Prints READY first. */
#include "victim.h"
#include <fcntl.h>
#include <pthread.h>

static volatile sig_atomic_t got_usr1, got_trap;
static void on_usr1(int s) { (void)s; got_usr1++; }
static void on_trap(int s, siginfo_t *si, void *uc) { (void)s; (void)si; (void)uc; got_trap++; }

static void check(int n) {
  struct sigaction sa;
  sigaction(SIGTRAP, NULL, &sa);
  int handler_ok = sa.sa_sigaction == on_trap && (sa.sa_flags & SA_SIGINFO) && sigismember(&sa.sa_mask, SIGUSR2);
  sigset_t cur;
  sigprocmask(SIG_BLOCK, NULL, &cur);
  int unblocked = !sigismember(&cur, SIGTRAP);
  int before = got_trap;
  if (handler_ok) raise(SIGTRAP); /* with SIG_DFL this would dump core */
  int ran = got_trap == before + 1;
  if (handler_ok && unblocked && ran) say("CHECK %d PASS\n", n);
  else say("CHECK %d FAIL: handler %s, SIGTRAP %s, raise %s\n", n, handler_ok ? "ok" : "lost", unblocked ? "unblocked" : "blocked", ran ? "ran it" : "did not run it");
}

static void *idle(void *arg) { (void)arg; for (;;) pause(); return NULL; }

int main(void) {
  fcntl(1, F_SETFL, fcntl(1, F_GETFL) | O_APPEND); /* the restored copy writes after the original's lines */
  struct sigaction sa = {0};
  sa.sa_sigaction = on_trap;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaddset(&sa.sa_mask, SIGUSR2);
  sigaction(SIGTRAP, &sa, NULL);
  struct sigaction su = {0};
  su.sa_handler = on_usr1;
  sigaction(SIGUSR1, &su, NULL);
  pthread_t t; /* a second thread: restore then clones it in a batch of its own */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  pthread_create(&t, NULL, idle, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  say("READY pid=%d\n", getpid());
  int seen = 0;
  for (;;) {
    pause();
    while (seen < got_usr1) check(++seen);
  }
}
