/*
 * Victim with many small mappings (issue 13's "many mappings" case, and a correctness
 * check for it):
 *
 *   manymaps N   maps N one-page anonymous areas that cannot merge (protections
 *                alternate between read-write and read-write-exec), writes a
 *                pattern into each, prints READY, waits for SIGUSR1, then checks that
 *                every area is there with its protection and pattern, and that
 *                /proc/self/maps still has at least N lines.
 */
#include "victim.h"
#include <sys/mman.h>

#define PG 4096UL

static volatile sig_atomic_t go;
static void on_usr1(int sig) { (void)sig; go = 1; }

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 10000;
  unsigned char **areas = calloc(n, sizeof *areas);
  if (!areas) return 2;
  for (int i = 0; i < n; i++) {
    int prot = PROT_READ | PROT_WRITE | ((i & 1) ? PROT_EXEC : 0);
    areas[i] = mmap(NULL, PG, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (areas[i] == MAP_FAILED) { say("SETUP FAIL mmap %d: %s\n", i, strerror(errno)); return 2; }
    for (unsigned long j = 0; j < PG; j += 512) areas[i][j] = (unsigned char)(i * 31 + j / 512);
  }
  signal(SIGUSR1, on_usr1);
  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000); /* not pause(): see memstate.c */

  int bad = -1;
  for (int i = 0; i < n && bad < 0; i++) {
    for (unsigned long j = 0; j < PG; j += 512) if (areas[i][j] != (unsigned char)(i * 31 + j / 512)) { bad = i; break; }
  }
  self_check(bad < 0, "every area holds its pattern", "area %d differs", bad);

  /* Protections: each area's maps line, found by binary search (maps is in address order). */
  struct line { unsigned long s, e; char w, x; } *maps = calloc(n + 4096, sizeof *maps);
  int lines = 0, wrong = 0, found = 0;
  FILE *f = fopen("/proc/self/maps", "r");
  char buf[512];
  while (f && maps && lines < n + 4096 && fgets(buf, sizeof buf, f)) {
    char perms[8];
    if (sscanf(buf, "%lx-%lx %4s", &maps[lines].s, &maps[lines].e, perms) != 3) continue;
    maps[lines].w = perms[1];
    maps[lines].x = perms[2];
    lines++;
  }
  if (f) fclose(f);
  for (int i = 0; maps && i < n; i++) {
    unsigned long a = (unsigned long)areas[i];
    int lo = 0, hi = lines - 1;
    while (lo <= hi) {
      int mid = (lo + hi) / 2;
      if (a < maps[mid].s) hi = mid - 1;
      else if (a >= maps[mid].e) lo = mid + 1;
      else {
        found++;
        if (maps[mid].w != 'w' || maps[mid].x != ((i & 1) ? 'x' : '-')) wrong++;
        break;
      }
    }
  }
  self_check(found == n && wrong == 0, "every area has its protection", "found %d of %d, %d wrong", found, n, wrong);
  self_check(lines >= n, "the areas are still separate", "%d maps lines", lines);
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
