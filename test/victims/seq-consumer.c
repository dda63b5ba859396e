/* Reads "seq N" lines from stdin and checks that N goes up by one each line; reports on
 * stderr-free stdout... to argv[1] (a log file), since its stdout is a pipe's end. */
#include "victim.h"

int main(int argc, char **argv) {
  FILE *log = fopen(argc > 1 ? argv[1] : "/dev/null", "a");
  if (!log) return 1;
  setvbuf(log, NULL, _IOLBF, 0);
  char line[128];
  long expect = -1;
  unsigned long lines = 0;
  double last = now_s();
  fprintf(log, "READY consumer pid=%d\n", getpid());
  while (fgets(line, sizeof line, stdin)) {
    long n;
    if (sscanf(line, "seq %ld", &n) != 1) { fprintf(log, "FAIL garbled line '%s'\n", line); continue; }
    if (expect >= 0 && n != expect) fprintf(log, "FAIL seq %ld want %ld\n", n, expect);
    expect = n + 1;
    lines++;
    if (now_s() - last > 0.1) { last = now_s(); fprintf(log, "PASS seq=%ld lines=%lu\n", n, lines); }
  }
  fprintf(log, "EOF after %lu lines\n", lines);
  return 0;
}
