/* An ITIMER_REAL that came due while its process could not take the signal: every
 * 50 ms, SIGALRM blocked, so after the first expiry the timer sits inactive with
 * SIGALRM pending (the kernel re-arms it only when the signal is taken), and getitimer
 * shows it_value 0 with its interval: what a dump sees of any periodic timer that came
 * due while the process was frozen. Prints READY, waits for SIGUSR1, then checks that
 * the interval is still there and that, once SIGALRM is unblocked, the timer goes on
 * firing. "PASS what" / "FAIL what: why", then "DONE fails=N". */
#include "victim.h"
#include <sys/time.h>

static volatile sig_atomic_t go, alarms;
static void on_usr1(int sig) { (void)sig; go = 1; }
static void on_alrm(int sig) { (void)sig; alarms++; }

int main(void) {
  signal(SIGUSR1, on_usr1);
  signal(SIGALRM, on_alrm);
  sigset_t alrm;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  sigprocmask(SIG_BLOCK, &alrm, NULL);
  struct itimerval every = { { 0, 50000 }, { 0, 50000 } };
  if (setitimer(ITIMER_REAL, &every, NULL) < 0) { say("SETUP FAIL setitimer: %s\n", strerror(errno)); return 2; }
  sigset_t pending;
  do {
    usleep(10000);
    sigpending(&pending);
  } while (!sigismember(&pending, SIGALRM));
  struct itimerval now;
  getitimer(ITIMER_REAL, &now);
  if (now.it_value.tv_sec || now.it_value.tv_usec) { say("SETUP FAIL the due timer shows %ld us left\n", (long)now.it_value.tv_usec); return 2; }
  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000);

  getitimer(ITIMER_REAL, &now);
  self_check(now.it_interval.tv_sec == 0 && now.it_interval.tv_usec == 50000, "the due ITIMER_REAL keeps its interval", "%ld us", (long)now.it_interval.tv_usec);
  sigprocmask(SIG_UNBLOCK, &alrm, NULL);
  for (int i = 0; i < 200 && alarms < 4; i++) usleep(10000);
  self_check(alarms >= 4, "it fires again once SIGALRM is taken", "%d alarms in 2 s", (int)alarms);
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
