/* Shared bits for test victims: line-buffered reporting, checksums, time. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static inline void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#include <stdarg.h>
static inline void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  fflush(stdout);
}

static inline uint64_t fnv1a(const unsigned char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ULL; }
  return h;
}

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One self-check's verdict: "PASS what", or "FAIL what: why" (why formatted like printf). */
static inline void verdict(const char *what, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void verdict(const char *what, int ok, const char *fmt, ...) {
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof why, fmt, ap);
  va_end(ap);
  if (ok) say("PASS %s\n", what);
  else say("FAIL %s: %s\n", what, why);
}

/* verdict() with the failures counted, for a final "DONE fails=N". */
static int self_check_fails;
static inline void self_check(int ok, const char *what, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void self_check(int ok, const char *what, const char *fmt, ...) {
  char detail[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  if (!ok) self_check_fails++;
  verdict(what, ok, "%s", detail);
}

/* SIGUSR1 and SIGUSR2 handlers with SA_RESTART (a victim's "check now" and "next step"). */
static inline void handle_usr(void (*usr1)(int), void (*usr2)(int)) {
  struct sigaction sa = {0};
  sa.sa_flags = SA_RESTART;
  sa.sa_handler = usr1;
  sigaction(SIGUSR1, &sa, NULL);
  sa.sa_handler = usr2;
  sigaction(SIGUSR2, &sa, NULL);
}

/* The smaps entry containing addr: its first line (if line_out) and its VmFlags as
 * " f1 f2 ... " (spaces around every flag, for strstr); both empty if none. */
/* The line of fd's own fdinfo that starts with `key`, or "". */
static inline void fdinfo_line(int fd, const char *key, char *out, size_t cap) {
  char path[64], buf[4096] = {0};
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
  int f = open(path, O_RDONLY);
  out[0] = 0;
  if (f < 0) return;
  ssize_t n = read(f, buf, sizeof buf - 1);
  close(f);
  if (n <= 0) return;
  char *p = strstr(buf, key);
  if (!p) return;
  size_t len = strcspn(p, "\n");
  if (len >= cap) len = cap - 1;
  memcpy(out, p, len);
  out[len] = 0;
}

static inline void smaps_area(void *addr, char *line_out, size_t n1, char *flags_out, size_t n2) {
  if (line_out) line_out[0] = 0;
  flags_out[0] = 0;
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return;
  char line[512];
  int in = 0;
  unsigned long a = (unsigned long)addr;
  while (fgets(line, sizeof line, f)) {
    unsigned long s, e;
    if (sscanf(line, "%lx-%lx ", &s, &e) == 2 && strchr(line, '-') < strchr(line, ' ')) {
      in = s <= a && a < e;
      if (in && line_out) { snprintf(line_out, n1, "%s", line); line_out[strcspn(line_out, "\n")] = 0; }
    } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
      snprintf(flags_out, n2, "%s ", line + 8);
      flags_out[strcspn(flags_out, "\n")] = ' ';
      break;
    }
  }
  fclose(f);
}

/* Whether the area containing addr has VmFlags flag (two letters). */
static inline int smaps_has_flag(void *addr, const char *flag) {
  char fl[512], want[8];
  smaps_area(addr, NULL, 0, fl, sizeof fl);
  snprintf(want, sizeof want, " %s ", flag);
  return strstr(fl, want) != NULL;
}

/* A victim made of features (auditmem, auditpolicy): each has a setup and a check. */
struct victim_feature { const char *name; void (*setup)(void); void (*check)(void); };

/* Sets up each feature the arguments name ("SETUP FAIL" and exit 2 for an unknown one),
 * prints READY, waits until *go is set (a SIGUSR1 handler), then runs their checks in order. */
static inline void run_features(const struct victim_feature *f, unsigned n, int argc, char **argv, volatile sig_atomic_t *go) {
  for (int a = 1; a < argc; a++) {
    unsigned i = 0;
    while (i < n && strcmp(f[i].name, argv[a])) i++;
    if (i == n) { say("SETUP FAIL unknown feature %s\n", argv[a]); exit(2); }
    f[i].setup();
  }
  say("READY pid=%d\n", getpid());
  while (!*go) pause();
  for (int a = 1; a < argc; a++)
    for (unsigned i = 0; i < n; i++) if (strcmp(f[i].name, argv[a]) == 0) f[i].check();
}
