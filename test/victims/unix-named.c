/* Unix sockets with names, across two processes, checked by themselves after restore.
 * The parent holds: a stream listener at DIR/listen.sock (mode 0640) with one accepted
 * connection (data queued both ways) and one connection nobody accepted yet; a seqpacket
 * listener at an abstract name, likewise; a datagram socket at DIR/recv.sock with
 * datagrams queued from a named sender (alive), an abstract one (closed since) and an
 * unnamed one; a datagram socket at an abstract name that the child is connected to one
 * way; one bound to DIR/gone.sock then unlinked; one bound to the relative name rel.sock
 * then renamed to DIR/moved.sock; a stream whose peer wrote and closed. The child holds the clients.
 * On SIGUSR1 the parent checks its side, lets the child check its own (and send on the
 * connections not accepted yet), then accepts them, and makes a new connection.
 * Prints "PASS what"/"FAIL what: why" per check and "DONE fails=N". */
#include "victim.h"
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }
static char dir[200];
static char abs_seq[64], abs_r2[64], abs_s2[64];

static socklen_t addr_of(const char *name, struct sockaddr_un *a) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  if (name[0] == '@') {
    memcpy(a->sun_path + 1, name + 1, strlen(name + 1));
    return offsetof(struct sockaddr_un, sun_path) + strlen(name);
  }
  snprintf(a->sun_path, sizeof a->sun_path, "%s", name);
  return sizeof *a;
}

static int mk(int type, const char *name) {
  int fd = socket(AF_UNIX, type, 0);
  struct sockaddr_un a;
  if (name && bind(fd, (struct sockaddr *)&a, addr_of(name, &a)) < 0) { perror(name); exit(2); }
  return fd;
}

static void connect_to(int fd, const char *name) {
  struct sockaddr_un a;
  if (connect(fd, (struct sockaddr *)&a, addr_of(name, &a)) < 0) { perror(name); exit(2); }
}

/* Whether getsockname (peer 0) or getpeername (peer 1) of fd gives `name` ("" for unnamed). */
static int named(int fd, const char *name, int peer) {
  struct sockaddr_un a, want;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)&a, &len) < 0) return 0;
  if (!name[0]) return len == sizeof(sa_family_t);
  socklen_t wl = addr_of(name, &want);
  if (name[0] == '@') return len == wl && !memcmp(a.sun_path, want.sun_path, wl - offsetof(struct sockaddr_un, sun_path));
  return !strcmp(a.sun_path, want.sun_path);
}

static int readable(int fd) {
  struct pollfd p = { fd, POLLIN, 0 };
  return poll(&p, 1, 5000) == 1;
}

static int got(int fd, const char *want) {
  char b[64] = { 0 };
  if (!readable(fd)) return 0;
  ssize_t n = recv(fd, b, sizeof b - 1, MSG_DONTWAIT);
  return n == (ssize_t)strlen(want) && !memcmp(b, want, n);
}

/* recvfrom on fd gives `want` from `from`. */
static int got_from(int fd, const char *want, const char *from) {
  char b[64] = { 0 };
  struct sockaddr_un a;
  socklen_t len = sizeof a;
  memset(&a, 0, sizeof a);
  ssize_t n = recvfrom(fd, b, sizeof b - 1, MSG_DONTWAIT, (struct sockaddr *)&a, &len);
  if (n != (ssize_t)strlen(want) || memcmp(b, want, n)) return 0;
  if (!from[0]) return len == 0; /* an unnamed sender: no address */
  struct sockaddr_un w;
  socklen_t wl = addr_of(from, &w);
  if (from[0] == '@') return len == wl && !memcmp(a.sun_path, w.sun_path, wl - offsetof(struct sockaddr_un, sun_path));
  return !strcmp(a.sun_path, w.sun_path);
}

static char p_listen[256], p_recv[256], p_gone[256], p_moved[256], p_s1[256];

static void child_main(int ready) {
  int A = mk(SOCK_STREAM, NULL), B = mk(SOCK_STREAM, NULL);
  connect_to(A, p_listen);
  connect_to(B, p_listen);
  int QA = mk(SOCK_SEQPACKET, NULL), QB = mk(SOCK_SEQPACKET, NULL);
  connect_to(QA, abs_seq);
  connect_to(QB, abs_seq);
  int S1 = mk(SOCK_DGRAM, p_s1), S2 = mk(SOCK_DGRAM, abs_s2), S3 = mk(SOCK_DGRAM, NULL);
  struct sockaddr_un r;
  socklen_t rl = addr_of(p_recv, &r);
  sendto(S1, "from-s1", 7, 0, (struct sockaddr *)&r, rl);
  sendto(S2, "from-s2", 7, 0, (struct sockaddr *)&r, rl);
  sendto(S3, "from-anon", 9, 0, (struct sockaddr *)&r, rl);
  close(S2);
  int D = mk(SOCK_DGRAM, NULL);
  connect_to(D, abs_r2);
  write(A, "to-server", 9);
  send(QA, "seq-msg", 7, 0);
  write(ready, "c", 1);
  while (!go) usleep(10000);
  self_check(got(A, "to-client"), "child: the accepted connection's queued bytes", "nothing or other bytes");
  self_check(named(A, p_listen, 1), "child: getpeername of the client", "not %s", p_listen);
  self_check(named(A, "", 0), "child: getsockname of the client", "not unnamed");
  self_check(named(QA, abs_seq, 1), "child: getpeername of the seqpacket client", "not the abstract name");
  self_check(named(S1, p_s1, 0), "child: getsockname of the datagram sender", "not %s", p_s1);
  self_check(named(D, abs_r2, 1), "child: getpeername of the one-way datagram socket", "not the abstract name");
  self_check(write(B, "late", 4) == 4, "child: write on the connection not accepted yet", "%s", strerror(errno));
  self_check(send(QB, "late-seq", 8, 0) == 8, "child: send on the seqpacket connection not accepted yet", "%s", strerror(errno));
  self_check(send(D, "via-d", 5, 0) == 5, "child: send on the one-way datagram socket", "%s", strerror(errno));
  exit(self_check_fails ? 1 : 0);
}

int main(void) {
  signal(SIGUSR1, on_usr1);
  if (!getcwd(dir, sizeof dir)) return 2;
  snprintf(p_listen, sizeof p_listen, "%s/listen.sock", dir);
  snprintf(p_recv, sizeof p_recv, "%s/recv.sock", dir);
  snprintf(p_gone, sizeof p_gone, "%s/gone.sock", dir);
  snprintf(p_moved, sizeof p_moved, "%s/moved.sock", dir);
  snprintf(p_s1, sizeof p_s1, "%s/s1.sock", dir);
  snprintf(abs_seq, sizeof abs_seq, "@ckpt-seq-%d", getpid());
  snprintf(abs_r2, sizeof abs_r2, "@ckpt-r2-%d", getpid());
  snprintf(abs_s2, sizeof abs_s2, "@ckpt-s2-%d", getpid());
  int L = mk(SOCK_STREAM, p_listen);
  chmod(p_listen, 0640);
  listen(L, 7);
  int Q = mk(SOCK_SEQPACKET, abs_seq);
  listen(Q, 3);
  int R = mk(SOCK_DGRAM, p_recv), R2 = mk(SOCK_DGRAM, abs_r2);
  int X = mk(SOCK_DGRAM, p_gone);
  unlink(p_gone);
  int Y = mk(SOCK_DGRAM, "rel.sock");
  rename("rel.sock", p_moved);
  int hc[2]; /* half-closed: the peer wrote, then closed */
  socketpair(AF_UNIX, SOCK_STREAM, 0, hc);
  write(hc[1], "last words", 10);
  close(hc[1]);
  int ready[2];
  if (pipe(ready) < 0) return 2;
  pid_t child = fork();
  if (child == 0) {
    close(ready[0]);
    child_main(ready[1]);
  }
  close(ready[1]);
  char c;
  if (read(ready[0], &c, 1) != 1) return 2;
  int sa = accept(L, NULL, NULL), qa = accept(Q, NULL, NULL);
  write(sa, "to-client", 9);
  say("READY pid=%d child=%d\n", getpid(), child);
  while (!go) usleep(10000); /* not pause(): a handler that ran just before it would be a lost wakeup */
  struct stat st;
  self_check(named(L, p_listen, 0), "getsockname of the listener", "not %s", p_listen);
  self_check(stat(p_listen, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 07777) == 0640, "the listener's socket file and mode",
             "%s: mode %o", strerror(errno), st.st_mode);
  self_check(named(sa, p_listen, 0), "getsockname of the accepted socket", "not %s", p_listen);
  self_check(got(sa, "to-server"), "the accepted socket's queued bytes", "nothing or other bytes");
  self_check(named(qa, abs_seq, 0), "getsockname of the accepted seqpacket socket", "not the abstract name");
  self_check(got(qa, "seq-msg"), "the seqpacket message", "nothing or another message");
  self_check(got_from(R, "from-s1", p_s1), "datagram 1 and its named sender", "lost or from another address");
  self_check(got_from(R, "from-s2", abs_s2), "datagram 2 and its abstract sender (closed since)", "lost or from another address");
  self_check(got_from(R, "from-anon", ""), "datagram 3 and its unnamed sender", "lost or from another address");
  self_check(named(X, p_gone, 0) && access(p_gone, F_OK) < 0 && errno == ENOENT, "a socket whose file was unlinked", "its name or file differs");
  self_check(named(Y, "rel.sock", 0) && access("rel.sock", F_OK) < 0 && stat(p_moved, &st) == 0 && S_ISSOCK(st.st_mode),
             "a socket bound to a relative name, its file renamed", "its name or file differs");
  int t = mk(SOCK_DGRAM, NULL);
  struct sockaddr_un m;
  socklen_t ml = addr_of(p_moved, &m);
  sendto(t, "to-moved", 8, 0, (struct sockaddr *)&m, ml);
  self_check(got(Y, "to-moved"), "a datagram sent to the renamed file", "did not arrive");
  char hb[16] = { 0 };
  self_check(recv(hc[0], hb, sizeof hb, MSG_DONTWAIT) == 10 && !strcmp(hb, "last words") && recv(hc[0], hb, sizeof hb, MSG_DONTWAIT) == 0,
             "a stream whose peer closed: its bytes, then end of file", "got '%s'", hb);
  self_check(send(hc[0], "x", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE, "a stream whose peer closed: a send fails with EPIPE", "%s", strerror(errno));
  kill(child, SIGUSR1);
  int status = 0;
  waitpid(child, &status, 0);
  self_check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's checks", "status 0x%x", status);
  int b = readable(L) ? accept(L, NULL, NULL) : -1;
  self_check(b >= 0 && got(b, "late"), "the connection not accepted yet, accepted now", "%s", b < 0 ? "nothing to accept" : "other bytes");
  int qb = readable(Q) ? accept(Q, NULL, NULL) : -1;
  self_check(qb >= 0 && got(qb, "late-seq"), "the seqpacket connection not accepted yet", "%s", qb < 0 ? "nothing to accept" : "other bytes");
  self_check(got(R2, "via-d"), "the one-way datagram", "did not arrive");
  int n = mk(SOCK_STREAM, NULL);
  connect_to(n, p_listen);
  int ns = readable(L) ? accept(L, NULL, NULL) : -1;
  self_check(ns >= 0 && write(n, "new", 3) == 3 && got(ns, "new"), "a new connection to the listener", "failed");
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
