/* Shared by the TCP victims: reading an exact number of bytes, waiting 15 s at most. */
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

/* n bytes into buf; 0 on a timeout, EOF or error. */
static inline int recv_all(int fd, void *buf, size_t n) {
  size_t have = 0;
  while (have < n) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 15000) != 1) return 0;
    ssize_t r = recv(fd, (char *)buf + have, n - have, 0);
    if (r <= 0) return 0;
    have += r;
  }
  return 1;
}

/* The bytes of want (at most 64), next on fd. */
static inline int recv_str(int fd, const char *want) {
  char b[64];
  size_t n = strlen(want);
  return n <= sizeof b && recv_all(fd, b, n) && memcmp(b, want, n) == 0;
}
