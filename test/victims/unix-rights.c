/* Files in flight in unix messages (SCM_RIGHTS), checked by the program after restore:
 * over a datagram socketpair, a regular file whose offset the sender's own fd shares, a
 * pipe's read end with bytes in the pipe, and a socket the sender also holds; over a
 * stream socketpair, an eventfd with its counter between plain bytes. On SIGUSR1 it
 * receives them all and uses each. Prints "PASS what"/"FAIL what: why", "DONE fails=N". */
#include "victim.h"
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static void send_fd(int sock, const char *what, int fd) {
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = { (void *)what, strlen(what) };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (sendmsg(sock, &m, 0) < 0) { perror("sendmsg"); exit(2); }
}

/* Receives one message; returns the fd that came with it (-1: none) and its bytes in b. */
static int recv_fd(int sock, char *b, size_t len) {
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = { b, len - 1 };
  struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
  memset(b, 0, len);
  if (recvmsg(sock, &m, MSG_DONTWAIT) < 0) return -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  int fd = -1;
  if (c && c->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

int main(void) {
  signal(SIGUSR1, on_usr1);
  int file = open("data.txt", O_RDWR | O_CREAT | O_TRUNC, 0600);
  write(file, "hello world", 11);
  lseek(file, 3, SEEK_SET);
  int dp[2], sp[2], sq[2], pp[2];
  socketpair(AF_UNIX, SOCK_DGRAM, 0, dp);
  socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
  socketpair(AF_UNIX, SOCK_STREAM, 0, sq);
  if (pipe(pp) < 0) return 2;
  write(pp[1], "piped", 5);
  send_fd(dp[0], "file", file);
  send_fd(dp[0], "pipe", pp[0]);
  close(pp[0]);
  send_fd(dp[0], "sock", sp[1]);
  int ev = eventfd(5, 0);
  write(sq[0], "abc", 3);
  send_fd(sq[0], "def", ev);
  close(ev);
  write(sq[0], "ghi", 3);
  say("READY pid=%d\n", getpid());
  while (!go) usleep(10000);
  char b[64];
  int f = recv_fd(dp[1], b, sizeof b);
  char r[8] = { 0 };
  self_check(f >= 0 && !strcmp(b, "file") && read(f, r, 4) == 4 && !strcmp(r, "lo w"), "a passed file reads from the shared offset", "got '%s' fd %d '%s'", b, f, r);
  self_check(lseek(file, 0, SEEK_CUR) == 7, "the sender's fd shares the passed file's offset", "offset %ld", (long)lseek(file, 0, SEEK_CUR));
  int p = recv_fd(dp[1], b, sizeof b);
  memset(r, 0, sizeof r);
  self_check(p >= 0 && !strcmp(b, "pipe") && read(p, r, 5) == 5 && !strcmp(r, "piped"), "a passed pipe keeps its bytes", "got '%s' fd %d '%s'", b, p, r);
  memset(r, 0, sizeof r);
  self_check(write(pp[1], "more", 4) == 4 && read(p, r, 4) == 4 && !strcmp(r, "more"), "the passed pipe is the sender's pipe", "'%s'", r);
  int s = recv_fd(dp[1], b, sizeof b);
  memset(r, 0, sizeof r);
  self_check(s >= 0 && !strcmp(b, "sock") && write(s, "x", 1) == 1 && read(sp[0], r, 1) == 1 && r[0] == 'x', "a passed socket is the sender's socket", "got '%s' fd %d", b, s);
  char all[64] = { 0 };
  size_t got = 0;
  int e = -1;
  while (got < 9) {
    int x = recv_fd(sq[1], all + got, sizeof all - got);
    if (x >= 0) e = x;
    size_t n = strlen(all + got);
    if (!n) break;
    got += n;
  }
  uint64_t v = 0;
  self_check(!strcmp(all, "abcdefghi"), "the stream's bytes around the passed file", "'%s'", all);
  self_check(e >= 0 && read(e, &v, 8) == 8 && v == 5, "a passed eventfd keeps its counter", "fd %d value %lu", e, (unsigned long)v);
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
