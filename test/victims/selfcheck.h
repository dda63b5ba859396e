/* For victims that check their own state after restore: they set up, print READY,
 * wait for SIGUSR1 (go), run CHECKs (each failure prints a FAIL line and counts in
 * fails), then print PASS lines and DONE. */
#include "victim.h"
#include <fcntl.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }
static int fails;

#define CHECK(cond, ...)                                                   \
  do {                                                                     \
    if (!(cond)) {                                                         \
      fails++;                                                             \
      say("FAIL " __VA_ARGS__);                                            \
      say(" (line %d, errno %s)\n", __LINE__, strerror(errno));            \
    }                                                                      \
  } while (0)

static inline void fatal(const char *what) {
  say("FAIL setup: %s: %s\n", what, strerror(errno));
  exit(2);
}

/* Moves fd to number want (closing fd). */
static inline void put_at(int fd, int want) {
  if (fd < 0) fatal("open");
  if (fd == want) return;
  if (dup2(fd, want) < 0) fatal("dup2");
  close(fd);
}

/* SIGUSR1 sets go; call first thing in main. */
static inline void catch_usr1(void) {
  struct sigaction sa = {.sa_handler = on_usr1};
  sigaction(SIGUSR1, &sa, NULL);
}
