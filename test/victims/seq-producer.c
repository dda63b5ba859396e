/* Writes "seq N" lines to stdout without end, in bursts, so pipes usually hold data. */
#include "victim.h"

int main(void) {
  char line[64];
  for (unsigned long n = 0;; n++) {
    int len = snprintf(line, sizeof line, "seq %lu\n", n);
    if (write(1, line, len) != len) return 1;
    if (n % 64 == 0) usleep(2000);
  }
}
