/* A request/response pair over TCP, to test the network lock: requests must be
 * answered exactly once and in order through a dump and restore of the server.
 *
 * "tcp-lock server [4|6]": listens on 127.0.0.1 (or ::1), prints "PORT n", accepts one
 * client and answers each request line "N\n" with "N\n". It checks the requests come
 * numbered 1, 2, 3… with none missing or repeated (one acknowledged by the kernel and
 * then lost by a dump shows as a gap) and, when the client closes, prints
 * "PASS served N requests in order" or "FAIL …".
 *
 * "tcp-lock client PORT [4|6] [redis [KEY]]": connects and sends request after request, one
 * every millisecond whatever the answers (a dump must find requests arriving while it
 * runs), up to 1000 unanswered. With "redis" the request is "INCR KEY" (an inline
 * command; KEY tcp-lock by default) and the answer ":N": the counter must go 1, 2, 3…
 * as the answers come. On SIGUSR1 it stops sending, waits up to 20 s for the
 * outstanding answers, checks each came exactly once and in order, prints
 * "PASS N answers" or "FAIL …", and closes.
 *
 * "tcp-lock churn PORT KEY": a redis client that opens a new connection for each
 * "INCR KEY" (connect, ask, read the answer, close), so that a dump finds connections
 * being set up, waiting in the accept queue and being closed. On SIGUSR1 it stops and
 * prints "PASS N answers" if the answers went 1, 2, 3…, else "FAIL …".
 *
 * "tcp-lock http PORT PATH BODY": an HTTP/1.1 keep-alive client: one connection, on
 * which it asks "GET PATH?n=K" for K = 1, 2, 3…, the next as soon as the answer came,
 * and checks each answer is "200" with body BODY. On SIGUSR1 it stops: "PASS N answers"
 * or "FAIL …" (the server closing the connection is a failure). */
#include "victim.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

static volatile sig_atomic_t stop;
static void on_usr1(int s) { (void)s; stop = 1; }

static socklen_t addr_of(int v6, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof *ss);
  if (v6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    a->sin6_addr = in6addr_loopback;
    return sizeof *a;
  }
  struct sockaddr_in *a = (struct sockaddr_in *)ss;
  a->sin_family = AF_INET;
  a->sin_port = htons(port);
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sizeof *a;
}

static int server(int v6) {
  struct sockaddr_storage ss;
  socklen_t len = addr_of(v6, 0, &ss);
  int l = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  if (l < 0 || bind(l, (struct sockaddr *)&ss, len) < 0 || listen(l, 4) < 0) { say("FAIL listen: %s\n", strerror(errno)); return 1; }
  getsockname(l, (struct sockaddr *)&ss, &len);
  say("PORT %d\n", ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port));
  int c = accept(l, NULL, NULL);
  if (c < 0) { say("FAIL accept: %s\n", strerror(errno)); return 1; }
  say("READY\n");
  char buf[65536], line[32];
  size_t have = 0;
  unsigned long expect = 1, served = 0, gaps = 0;
  char first_gap[128] = "";
  for (;;) {
    ssize_t n = read(c, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0) snprintf(first_gap, sizeof first_gap, "read: %s", strerror(errno));
      break;
    }
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] != '\n') {
        if (have < sizeof line - 1) line[have++] = buf[i];
        continue;
      }
      line[have] = 0;
      have = 0;
      unsigned long r = strtoul(line, NULL, 10);
      if (r != expect) {
        if (!gaps++) snprintf(first_gap, sizeof first_gap, "request %lu came after %lu", r, expect - 1);
      }
      expect = r + 1;
      served++;
      char reply[32];
      int m = snprintf(reply, sizeof reply, "%lu\n", r);
      if (write(c, reply, m) != m) { snprintf(first_gap, sizeof first_gap, "write: %s", strerror(errno)); gaps++; }
    }
  }
  if (gaps || first_gap[0]) say("FAIL served %lu requests, %lu out of order: %s\n", served, gaps, first_gap);
  else say("PASS served %lu requests in order\n", served);
  return 0;
}

static int client(int port, int v6, const char *key) {
  int redis = key != NULL;
  signal(SIGUSR1, on_usr1);
  struct sockaddr_storage ss;
  socklen_t len = addr_of(v6, port, &ss);
  int c = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
  if (c < 0 || connect(c, (struct sockaddr *)&ss, len) < 0) { say("FAIL connect: %s\n", strerror(errno)); return 1; }
  fcntl(c, F_SETFL, O_NONBLOCK);
  say("CONNECTED\n");
  unsigned long sent = 0, answered = 0;
  char in[65536], line[32], fail[160] = "";
  size_t have = 0;
  double next = now_s(), deadline = 0;
  while (!fail[0]) {
    if (stop && !deadline) deadline = now_s() + 20;
    if (deadline && answered == sent) break;
    if (deadline && now_s() > deadline) {
      snprintf(fail, sizeof fail, "%lu of %lu requests never answered (hang)", sent - answered, sent);
      break;
    }
    if (!stop && now_s() >= next && sent - answered < 1000) {
      char req[32];
      int m = redis ? snprintf(req, sizeof req, "INCR %s\r\n", key) : snprintf(req, sizeof req, "%lu\n", sent + 1);
      ssize_t w = send(c, req, m, MSG_NOSIGNAL);
      if (w == m) sent++;
      else if (w >= 0) { snprintf(fail, sizeof fail, "short send"); break; }
      else if (errno != EAGAIN) { snprintf(fail, sizeof fail, "send: %s", strerror(errno)); break; }
      next = now_s() + 0.001;
    }
    struct pollfd p = {.fd = c, .events = POLLIN};
    if (poll(&p, 1, 1) < 0 && errno != EINTR) { snprintf(fail, sizeof fail, "poll: %s", strerror(errno)); break; }
    ssize_t n = recv(c, in, sizeof in, 0);
    if (n == 0) { snprintf(fail, sizeof fail, "the server closed the connection after %lu answers", answered); break; }
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) snprintf(fail, sizeof fail, "recv: %s after %lu answers", strerror(errno), answered);
      continue;
    }
    for (ssize_t i = 0; i < n && !fail[0]; i++) {
      if (in[i] != '\n') {
        if (have < sizeof line - 1) line[have++] = in[i];
        continue;
      }
      line[have] = 0;
      have = 0;
      unsigned long r = strtoul(line + (redis && line[0] == ':'), NULL, 10);
      if (r != answered + 1) snprintf(fail, sizeof fail, "answer %lu came after %lu", r, answered);
      else answered++;
    }
  }
  if (fail[0]) say("FAIL %s\n", fail);
  else say("PASS %lu answers\n", answered);
  close(c);
  return 0;
}

static int churn(int port, const char *key) {
  signal(SIGUSR1, on_usr1);
  struct sockaddr_storage ss;
  socklen_t len = addr_of(0, port, &ss);
  unsigned long answered = 0;
  char fail[160] = "", req[64], in[64];
  int m = snprintf(req, sizeof req, "INCR %s\r\n", key);
  say("CONNECTED\n");
  while (!stop && !fail[0]) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    /* A SYN the network lock drops is sent again by the kernel: connect waits through the dump. */
    if (connect(c, (struct sockaddr *)&ss, len) < 0) {
      if (errno == EINTR && stop) { close(c); break; } /* stopped before this request was sent */
      snprintf(fail, sizeof fail, "connect: %s after %lu answers", strerror(errno), answered);
      break;
    }
    if (send(c, req, m, MSG_NOSIGNAL) != m) { snprintf(fail, sizeof fail, "send: %s after %lu answers", strerror(errno), answered); break; }
    size_t have = 0;
    while (have == 0 || in[have - 1] != '\n') {
      struct pollfd p = {.fd = c, .events = POLLIN};
      int r = poll(&p, 1, 20000);
      if (r < 0 && errno == EINTR) continue; /* SIGUSR1: the answer is still due */
      if (r != 1) { snprintf(fail, sizeof fail, "no answer after %lu answers (hang)", answered); break; }
      ssize_t n = recv(c, in + have, sizeof in - 1 - have, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) { snprintf(fail, sizeof fail, "recv: %s after %lu answers", n ? strerror(errno) : "EOF", answered); break; }
      have += n;
    }
    close(c);
    if (fail[0]) break;
    in[have] = 0;
    unsigned long r = strtoul(in + (in[0] == ':'), NULL, 10);
    if (r != answered + 1) snprintf(fail, sizeof fail, "answer %lu came after %lu", r, answered);
    else answered++;
  }
  if (fail[0]) say("FAIL %s\n", fail);
  else say("PASS %lu answers\n", answered);
  return 0;
}

static int http(int port, const char *path, const char *body) {
  signal(SIGUSR1, on_usr1);
  struct sockaddr_storage ss;
  socklen_t len = addr_of(0, port, &ss);
  int c = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(c, (struct sockaddr *)&ss, len) < 0) { say("FAIL connect: %s\n", strerror(errno)); return 1; }
  say("CONNECTED\n");
  unsigned long answered = 0;
  char fail[200] = "", in[8192];
  while (!stop && !fail[0]) {
    char req[256];
    int m = snprintf(req, sizeof req, "GET %s?n=%lu HTTP/1.1\r\nHost: localhost\r\n\r\n", path, answered + 1);
    if (send(c, req, m, MSG_NOSIGNAL) != m) { snprintf(fail, sizeof fail, "send: %s after %lu answers", strerror(errno), answered); break; }
    /* The head, then Content-Length bytes of body. */
    size_t have = 0;
    char *end = NULL;
    long want = -1;
    while (!fail[0]) {
      if (!end && (end = memmem(in, have, "\r\n\r\n", 4))) {
        char *cl = memmem(in, end - in, "Content-Length: ", 16);
        if (strncmp(in, "HTTP/1.", 7) || strncmp(in + 9, "200", 3) || !cl) { snprintf(fail, sizeof fail, "answer %lu is not 200 with a length: %.40s", answered + 1, in); break; }
        want = (end + 4 - in) + atol(cl + 16);
      }
      if (end && (long)have >= want) break;
      struct pollfd p = {.fd = c, .events = POLLIN};
      int r = poll(&p, 1, 20000);
      if (r < 0 && errno == EINTR) continue; /* SIGUSR1: the answer is still due */
      if (r != 1) { snprintf(fail, sizeof fail, "no answer to request %lu (hang)", answered + 1); break; }
      ssize_t n = recv(c, in + have, sizeof in - 1 - have, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) { snprintf(fail, sizeof fail, "recv: %s after %lu answers", n ? strerror(errno) : "EOF", answered); break; }
      have += n;
    }
    if (fail[0]) break;
    if ((long)have != want || strncmp(end + 4, body, strlen(body)) || (long)strlen(body) != want - (end + 4 - in)) { snprintf(fail, sizeof fail, "answer %lu: wrong body or extra bytes", answered + 1); break; }
    answered++;
    usleep(1000);
  }
  if (fail[0]) say("FAIL %s\n", fail);
  else say("PASS %lu answers\n", answered);
  close(c);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 2 && !strcmp(argv[1], "server")) return server(argc >= 3 && !strcmp(argv[2], "6"));
  if (argc >= 3 && !strcmp(argv[1], "client")) {
    const char *key = argc >= 5 && !strcmp(argv[4], "redis") ? (argc >= 6 ? argv[5] : "tcp-lock") : NULL;
    return client(atoi(argv[2]), argc >= 4 && !strcmp(argv[3], "6"), key);
  }
  if (argc >= 4 && !strcmp(argv[1], "churn")) return churn(atoi(argv[2]), argv[3]);
  if (argc >= 5 && !strcmp(argv[1], "http")) return http(atoi(argv[2]), argv[3], argv[4]);
  say("usage: tcp-lock server [4|6] | client PORT [4|6] [redis [KEY]] | churn PORT KEY | http PORT PATH BODY\n");
  return 2;
}
