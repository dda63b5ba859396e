/* A PostgreSQL client in an open transaction, with its server as its child.
 * Args: SOCKDIR DATADIR UID GID [PORT]. Starts postgres as UID:GID with its unix socket in
 * SOCKDIR and, without PORT, no TCP; with PORT in its default configuration otherwise
 * (listen_addresses 'localhost', so TCP on 127.0.0.1 and ::1, on PORT). Connects (over
 * TCP to 127.0.0.1 when there is a PORT, else over the unix socket; trust auth, protocol
 * 3), creates a table, and inserts 42 inside BEGIN; prints READY. On SIGUSR1 it inserts
 * 43 and COMMITs on the same connection, then checks over a new connection on the unix
 * socket (and one over TCP) that both rows are there.
 * Prints "PASS what"/"FAIL what: why" per check and "DONE fails=N". */
#include "victim.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }
static char sockpath[256];
static int port; /* TCP on 127.0.0.1, or 0: none */

static int readn(int fd, void *b, size_t n) {
  for (size_t got = 0; got < n;) {
    struct pollfd p = { fd, POLLIN, 0 };
    if (poll(&p, 1, 10000) != 1) return -1;
    ssize_t k = read(fd, (char *)b + got, n - got);
    if (k <= 0) return -1;
    got += k;
  }
  return 0;
}

/* Reads messages until ReadyForQuery; returns its status byte ('I', 'T', 'E') or 0.
 * `tag` gets the last CommandComplete tag, `row` the first column of the last DataRow. */
static char until_ready(int fd, char *tag, char *row) {
  for (;;) {
    unsigned char h[5];
    if (readn(fd, h, 5) < 0) return 0;
    uint32_t len = ntohl(*(uint32_t *)(h + 1)) - 4;
    char body[4096] = { 0 };
    if (len >= sizeof body || readn(fd, body, len) < 0) return 0;
    if (h[0] == 'C' && tag) snprintf(tag, 64, "%.63s", body);
    if (h[0] == 'D' && row) {
      uint32_t cl = ntohl(*(uint32_t *)(body + 2));
      snprintf(row, 64, "%.*s", (int)cl, body + 6);
    }
    if (h[0] == 'E') say("server error: %s\n", body + 1);
    if (h[0] == 'Z') return body[0];
  }
}

static int pg_connect(int tcp) {
  int fd;
  if (tcp) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { close(fd); return -1; }
  } else {
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    snprintf(a.sun_path, sizeof a.sun_path, "%.107s", sockpath);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { close(fd); return -1; }
  }
  char m[128];
  const char params[] = "user\0postgres\0database\0postgres\0";
  uint32_t len = 8 + sizeof params;
  *(uint32_t *)m = htonl(len);
  *(uint32_t *)(m + 4) = htonl(196608);
  memcpy(m + 8, params, sizeof params);
  if (write(fd, m, len) != (ssize_t)len || until_ready(fd, NULL, NULL) != 'I') { close(fd); return -1; }
  return fd;
}

static char query(int fd, const char *q, char *tag, char *row) {
  char m[512];
  uint32_t len = 4 + strlen(q) + 1;
  m[0] = 'Q';
  *(uint32_t *)(m + 1) = htonl(len);
  memcpy(m + 5, q, strlen(q) + 1);
  if (write(fd, m, len + 1) != (ssize_t)len + 1) return 0;
  return until_ready(fd, tag, row);
}

int main(int argc, char **argv) {
  if (argc < 5) return 2;
  signal(SIGUSR1, on_usr1);
  port = argc > 5 ? atoi(argv[5]) : 0;
  char portarg[16];
  snprintf(portarg, sizeof portarg, "%d", port ? port : 5432);
  snprintf(sockpath, sizeof sockpath, "%s/.s.PGSQL.%s", argv[1], portarg);
  pid_t pg = fork();
  if (pg == 0) {
    if (setgid(atoi(argv[4])) < 0 || setuid(atoi(argv[3])) < 0) _exit(3);
    if (port) execl("/usr/local/bin/postgres", "postgres", "-D", argv[2], "-k", argv[1], "-p", portarg, (char *)NULL);
    else execl("/usr/local/bin/postgres", "postgres", "-D", argv[2], "-k", argv[1], "-c", "listen_addresses=", (char *)NULL);
    _exit(4);
  }
  int fd = -1;
  for (int i = 0; i < 1000 && fd < 0; i++) {
    fd = pg_connect(port != 0);
    if (fd < 0) usleep(10000);
  }
  if (fd < 0) { say("FAIL cannot connect\n"); return 2; }
  char tag[64] = "", row[64] = "";
  if (query(fd, "CREATE TABLE t (x int)", tag, NULL) != 'I' || query(fd, "BEGIN; INSERT INTO t VALUES (42)", tag, NULL) != 'T') {
    say("FAIL setup\n");
    return 2;
  }
  say("READY pid=%d server=%d\n", getpid(), pg);
  while (!go) usleep(10000);
  char st = query(fd, "INSERT INTO t VALUES (43); COMMIT", tag, NULL);
  self_check(st == 'I' && !strcmp(tag, "COMMIT"), "COMMIT of the open transaction", "status %c tag %s", st ? st : '0', tag);
  for (int tcp = 0; tcp <= (port != 0); tcp++) {
    int fd2 = pg_connect(tcp);
    self_check(fd2 >= 0, tcp ? "a new connection over TCP" : "a new connection over the unix socket", "refused");
    st = fd2 >= 0 ? query(fd2, "SELECT count(*) FROM t", tag, row) : 0;
    self_check(st == 'I' && !strcmp(row, "2"), "both rows committed", "status %c count %s", st ? st : '0', row);
    if (fd2 >= 0) close(fd2);
  }
  say("DONE fails=%d\n", self_check_fails);
  kill(pg, SIGTERM);
  return 0;
}
