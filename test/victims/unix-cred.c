/* Peer credentials of unix sockets (SO_PEERCRED, SO_PEERGROUPS, SO_PEERPIDFD), checked
 * by the processes themselves after restore. The parent (root) listens on an abstract
 * name and makes a stream socketpair; child 1 keeps one end, connects to the listener
 * as root and only then becomes uid 1077 (the kernel keeps the credentials of connect
 * time); child 2 becomes uid 1000 (groups 55 and 1000) first, then makes a datagram
 * socketpair and connects to the listener. The parent accepts both. Every socket's peer
 * is then: the pair's maker, the listener (the parent, as root, for both clients), or
 * the client at connect time. Messages are queued with credentials (SCM_CREDENTIALS):
 * to child 1, one sent before anyone had SO_PASSCRED (none: pid 0, ids 65534) and one
 * with credentials the parent chose (child 2's pid, uid 4242, gid 4343); in child 2's
 * datagram pair, one with its own (SO_PASSCRED on the receiver). Child 2 also makes a
 * connection that the parent accepts only after restore. On SIGUSR1 the parent checks its side and lets the
 * children check theirs; "PASS what" / "FAIL what: why" per check, then "DONE fails=N".
 *
 * With the argument "outside", the parent makes a socketpair, gives both ends to its
 * child and closes them: a dump of the child alone must refuse (its peer credentials
 * name a process outside the dump). */
#include "victim.h"
#include <grp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

struct want { const char *what; int fd; pid_t pid; uid_t uid; gid_t gid; int ngroups; gid_t groups[4]; };

/* The Pid: line of a pidfd's fdinfo (-1 for a process that is gone, 0 if unreadable). */
static int pidfd_pid(int pidfd) {
  char path[64], line[128];
  snprintf(path, sizeof path, "/proc/self/fdinfo/%d", pidfd);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  int pid = 0;
  while (fgets(line, sizeof line, f)) if (sscanf(line, "Pid: %d", &pid) == 1) break;
  fclose(f);
  return pid;
}

static void check(const char *who, const struct want *w) {
  char what[160];
  struct ucred u = { 0 };
  socklen_t len = sizeof u;
  int r = getsockopt(w->fd, SOL_SOCKET, SO_PEERCRED, &u, &len);
  snprintf(what, sizeof what, "%s: SO_PEERCRED of %s", who, w->what);
  self_check(r == 0 && u.pid == w->pid && u.uid == w->uid && u.gid == w->gid, what,
             "pid %d uid %d gid %d, expected pid %d uid %d gid %d", u.pid, (int)u.uid, (int)u.gid, w->pid, (int)w->uid, (int)w->gid);
  gid_t g[16];
  len = sizeof g;
  r = getsockopt(w->fd, SOL_SOCKET, SO_PEERGROUPS, g, &len);
  int n = r == 0 ? (int)(len / sizeof(gid_t)) : -1;
  int same = n == w->ngroups;
  for (int i = 0; same && i < n; i++) same = g[i] == w->groups[i];
  snprintf(what, sizeof what, "%s: SO_PEERGROUPS of %s", who, w->what);
  self_check(same, what, "%d groups (first %d), expected %d", n, n > 0 ? (int)g[0] : -1, w->ngroups);
  int pidfd = -1;
  len = sizeof pidfd;
  r = getsockopt(w->fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len);
  int p = r == 0 ? pidfd_pid(pidfd) : 0;
  snprintf(what, sizeof what, "%s: SO_PEERPIDFD of %s", who, w->what);
  self_check(p == w->pid, what, "the pidfd is of pid %d (%s), expected %d", p, r ? strerror(errno) : "ok", w->pid);
  if (pidfd >= 0) close(pidfd);
}

/* recvmsg of one message on fd with its SCM_CREDENTIALS (pid -2 if none came); returns its length. */
static int recv_creds(int fd, char *buf, size_t size, struct ucred *c) {
  char cb[CMSG_SPACE(sizeof(struct ucred))];
  struct iovec io = { buf, size - 1 };
  struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = cb, .msg_controllen = sizeof cb };
  c->pid = -2;
  int n = (int)recvmsg(fd, &m, MSG_DONTWAIT);
  buf[n > 0 ? n : 0] = 0;
  for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); n >= 0 && h; h = CMSG_NXTHDR(&m, h))
    if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_CREDENTIALS) memcpy(c, CMSG_DATA(h), sizeof *c);
  return n;
}

static void check_msg(const char *who, int fd, const char *want, struct ucred w) {
  char buf[64], what[160];
  struct ucred c;
  int n = recv_creds(fd, buf, sizeof buf, &c);
  snprintf(what, sizeof what, "%s: message \"%s\" with its credentials", who, want);
  self_check(n == (int)strlen(want) && !strcmp(buf, want) && c.pid == w.pid && c.uid == w.uid && c.gid == w.gid, what,
             "got %d bytes \"%s\" with pid %d uid %d gid %d, expected pid %d uid %d gid %d", n, buf, c.pid, (int)c.uid, (int)c.gid, w.pid, (int)w.uid, (int)w.gid);
}

static void become(uid_t uid, gid_t gid, int ngroups, const gid_t *groups) {
  if (setgroups(ngroups, groups) || setresgid(gid, gid, gid) || setresuid(uid, uid, uid)) { perror("become"); exit(2); }
  prctl(PR_SET_DUMPABLE, 1);
}

static socklen_t abstract(struct sockaddr_un *a, pid_t pid) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "ckpt-cred-%d", pid);
  return offsetof(struct sockaddr_un, sun_path) + 1 + n;
}

static int outside(void) {
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp)) return 2;
  pid_t c = fork();
  if (c == 0) {
    signal(SIGUSR1, on_usr1);
    while (!go) usleep(10000);
    _exit(0);
  }
  close(sp[0]);
  close(sp[1]);
  say("READY pid=%d child=%d\n", getpid(), c);
  for (;;) pause();
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc > 1 && !strcmp(argv[1], "outside")) return outside();
  setgroups(0, NULL); /* the groups the checks expect of root, whatever the runner had */
  signal(SIGUSR1, on_usr1);
  pid_t parent = getpid();
  struct sockaddr_un a;
  socklen_t al = abstract(&a, parent);
  int L = socket(AF_UNIX, SOCK_STREAM, 0);
  if (bind(L, (struct sockaddr *)&a, al) || listen(L, 8)) { perror("listen"); return 2; }
  int sp[2];
  socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
  /* Queued while nobody has SO_PASSCRED: it carries no credentials (pid 0 when read with it). */
  write(sp[0], "plain", 5);
  int ready[2], acc[2];
  pipe(ready);
  pipe(acc);
  pid_t c1 = fork();
  if (c1 == 0) {
    close(sp[0]);
    int on = 1;
    setsockopt(sp[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    int cl = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(cl, (struct sockaddr *)&a, al)) { perror("connect 1"); exit(2); }
    gid_t g1[] = { 7 };
    become(1077, 77, 1, g1);
    write(ready[1], "1", 1);
    while (!go) usleep(10000);
    struct want w[] = {
      { "the parent's socketpair", sp[1], parent, 0, 0, 0, { 0 } },
      { "the client of the parent's listener", cl, parent, 0, 0, 0, { 0 } },
    };
    for (size_t i = 0; i < sizeof w / sizeof *w; i++) check("child 1", &w[i]);
    check_msg("child 1", sp[1], "plain", (struct ucred){ 0, 65534, 65534 });
    char forged[64];
    pid_t c2 = 0;
    struct ucred fc;
    int n = recv_creds(sp[1], forged, sizeof forged, &fc);
    sscanf(forged, "forged %d", &c2);
    self_check(n > 0 && c2 > 0 && fc.pid == c2 && fc.uid == 4242 && fc.gid == 4343, "child 1: message with credentials the parent chose",
               "got \"%s\" with pid %d uid %d gid %d", forged, fc.pid, (int)fc.uid, (int)fc.gid);
    exit(self_check_fails ? 1 : 0);
  }
  pid_t c2 = fork();
  if (c2 == 0) {
    close(sp[0]);
    close(sp[1]);
    gid_t g2[] = { 55, 1000 };
    become(1000, 1000, 2, g2);
    int dp[2], on = 1;
    socketpair(AF_UNIX, SOCK_DGRAM, 0, dp);
    /* With SO_PASSCRED on the receiver, a datagram carries its sender's pid and real ids. */
    setsockopt(dp[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    send(dp[0], "dgram", 5, 0);
    int cl = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(cl, (struct sockaddr *)&a, al)) { perror("connect 2"); exit(2); }
    write(ready[1], "2", 1);
    /* Once the parent accepted the first two: a connection it accepts only after restore. */
    char b;
    read(acc[0], &b, 1);
    int pend = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(pend, (struct sockaddr *)&a, al)) { perror("connect 3"); exit(2); }
    write(ready[1], "3", 1);
    while (!go) usleep(10000);
    struct want w[] = {
      { "its own datagram socketpair", dp[0], getpid(), 1000, 1000, 2, { 55, 1000 } },
      { "the other end of it", dp[1], getpid(), 1000, 1000, 2, { 55, 1000 } },
      { "the client of the parent's listener", cl, parent, 0, 0, 0, { 0 } },
    };
    for (size_t i = 0; i < sizeof w / sizeof *w; i++) check("child 2", &w[i]);
    check_msg("child 2", dp[1], "dgram", (struct ucred){ getpid(), 1000, 1000 });
    exit(self_check_fails ? 1 : 0);
  }
  close(sp[1]);
  char b;
  read(ready[0], &b, 1);
  read(ready[0], &b, 1);
  int x = accept(L, NULL, NULL), y = accept(L, NULL, NULL);
  write(acc[1], "a", 1);
  read(ready[0], &b, 1);
  {
    /* Credentials of another process and other ids, which root may send (CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID). */
    char text[32], cb[CMSG_SPACE(sizeof(struct ucred))];
    int tl = snprintf(text, sizeof text, "forged %d", c2);
    struct iovec io = { text, (size_t)tl };
    struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1, .msg_control = cb, .msg_controllen = sizeof cb };
    struct cmsghdr *h = CMSG_FIRSTHDR(&m);
    h->cmsg_level = SOL_SOCKET;
    h->cmsg_type = SCM_CREDENTIALS;
    h->cmsg_len = CMSG_LEN(sizeof(struct ucred));
    struct ucred fc = { c2, 4242, 4343 };
    memcpy(CMSG_DATA(h), &fc, sizeof fc);
    if (sendmsg(sp[0], &m, 0) != tl) { perror("sendmsg SCM_CREDENTIALS"); return 2; }
  }
  struct ucred u;
  socklen_t len = sizeof u;
  getsockopt(x, SOL_SOCKET, SO_PEERCRED, &u, &len);
  int a1 = u.pid == c1 ? x : y, a2 = u.pid == c1 ? y : x;
  say("READY pid=%d child=%d child2=%d\n", parent, c1, c2);
  while (!go) usleep(10000);
  struct want w[] = {
    { "its socketpair", sp[0], parent, 0, 0, 0, { 0 } },
    { "its listener", L, parent, 0, 0, 0, { 0 } },
    { "the connection accepted from child 1 (connected as root)", a1, c1, 0, 0, 0, { 0 } },
    { "the connection accepted from child 2 (uid 1000)", a2, c2, 1000, 1000, 2, { 55, 1000 } },
  };
  for (size_t i = 0; i < sizeof w / sizeof *w; i++) check("parent", &w[i]);
  struct want pw = { "the connection from child 2 accepted after restore", accept(L, NULL, NULL), c2, 1000, 1000, 2, { 55, 1000 } };
  check("parent", &pw);
  int st1 = 0, st2 = 0;
  kill(c1, SIGUSR1);
  kill(c2, SIGUSR1);
  waitpid(c1, &st1, 0);
  waitpid(c2, &st2, 0);
  self_check(WIFEXITED(st1) && WEXITSTATUS(st1) == 0, "child 1 passed", "status %#x", st1);
  self_check(WIFEXITED(st2) && WEXITSTATUS(st2) == 0, "child 2 passed", "status %#x", st2);
  say("DONE fails=%d\n", self_check_fails);
  return 0;
}
