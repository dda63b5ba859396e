/* An established TCP connection with the options a program tunes (tcp-shapes.test.ts).
 *
 * "tcp-shapes FAMILY" (4: 127.0.0.1, 6: ::1, m: ::ffff:127.0.0.1 through a dual-stack
 * listener, or an address of this machine to listen on): the client sets keepalive
 * (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT), TCP_MAXSEG before connecting, TCP_NODELAY,
 * TCP_USER_TIMEOUT, TCP_CONGESTION reno, TCP_NOTSENT_LOWAT and SO_LINGER; the server end
 * keepalive, TCP_CORK (with 3 bytes corked, unsent), SO_PRIORITY and IP_TOS or
 * IPV6_TCLASS. Each end has bytes from the other unread. It reads every option back,
 * and from TCP_INFO the state, the negotiated options (timestamps, SACK, window
 * scaling), both window shifts and the send MSS; prints READY. On SIGUSR1 it reads them
 * all again and compares, then checks the queued bytes arrive, the corked ones once
 * uncorked, and new ones go both ways (which they would not if the timestamps the peer
 * sees went backwards: PAWS would drop them): "PASS shapes" or "FAIL …". */
#include "victim.h"
#include "tcp-victim.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

static volatile sig_atomic_t go;
static void on_usr(int s) { go = s; }
static char fail[512];
#define CHECK(cond, ...) do { if (!fail[0] && !(cond)) snprintf(fail, sizeof fail, __VA_ARGS__); } while (0)
#define SET(fd, level, name, val) do { int v_ = (val); if (setsockopt(fd, level, name, &v_, sizeof v_)) { say("FAIL setup %s: %s\n", #name, strerror(errno)); exit(1); } } while (0)

struct opt { int *fd; int level, name; const char *what; unsigned char val[64]; socklen_t len; };
static int c, s;
static struct opt opts[] = {
  {&c, SOL_SOCKET, SO_KEEPALIVE, "c SO_KEEPALIVE"}, {&c, IPPROTO_TCP, TCP_KEEPIDLE, "c TCP_KEEPIDLE"},
  {&c, IPPROTO_TCP, TCP_KEEPINTVL, "c TCP_KEEPINTVL"}, {&c, IPPROTO_TCP, TCP_KEEPCNT, "c TCP_KEEPCNT"},
  {&c, IPPROTO_TCP, TCP_NODELAY, "c TCP_NODELAY"}, {&c, IPPROTO_TCP, TCP_USER_TIMEOUT, "c TCP_USER_TIMEOUT"},
  {&c, IPPROTO_TCP, TCP_CONGESTION, "c TCP_CONGESTION"}, {&c, IPPROTO_TCP, TCP_NOTSENT_LOWAT, "c TCP_NOTSENT_LOWAT"},
  {&c, SOL_SOCKET, SO_LINGER, "c SO_LINGER"}, {&c, IPPROTO_TCP, TCP_MAXSEG, "c TCP_MAXSEG"},
  {&s, SOL_SOCKET, SO_KEEPALIVE, "s SO_KEEPALIVE"}, {&s, IPPROTO_TCP, TCP_KEEPIDLE, "s TCP_KEEPIDLE"},
  {&s, IPPROTO_TCP, TCP_CORK, "s TCP_CORK"}, {&s, SOL_SOCKET, SO_PRIORITY, "s SO_PRIORITY"},
  {&s, IPPROTO_TCP, TCP_MAXSEG, "s TCP_MAXSEG"}, {&s, IPPROTO_TCP, TCP_CONGESTION, "s TCP_CONGESTION"},
  {&s, IPPROTO_IP, IP_TOS, "s IP_TOS"}, {&s, IPPROTO_IPV6, IPV6_TCLASS, "s IPV6_TCLASS"},
};
#define NOPTS (int)(sizeof opts / sizeof opts[0])

struct shape { int state, options, snd_wscale, rcv_wscale, snd_mss; };

static struct shape shape_of(int fd) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  memset(&ti, 0, sizeof ti);
  getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len);
  return (struct shape){ti.tcpi_state, ti.tcpi_options, ti.tcpi_snd_wscale, ti.tcpi_rcv_wscale, ti.tcpi_snd_mss};
}

static void read_opts(struct opt *o) {
  o->len = sizeof o->val;
  memset(o->val, 0, sizeof o->val);
  if (getsockopt(*o->fd, o->level, o->name, o->val, &o->len)) o->len = 0; /* not on this family */
}

int main(int argc, char **argv) {
  signal(SIGUSR1, on_usr);
  const char *family = argc >= 2 ? argv[1] : "4";
  int v4 = !strcmp(family, "4") || strchr(family, '.');
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  int l = socket(v4 ? AF_INET : AF_INET6, SOCK_STREAM, 0);
  if (v4) {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    a->sin_family = AF_INET;
    inet_pton(AF_INET, strcmp(family, "4") ? family : "127.0.0.1", &a->sin_addr);
    len = sizeof *a;
  } else {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    a->sin6_family = AF_INET6;
    if (!strcmp(family, "m")) SET(l, IPPROTO_IPV6, IPV6_V6ONLY, 0);
    else inet_pton(AF_INET6, strcmp(family, "6") ? family : "::1", &a->sin6_addr);
    len = sizeof *a;
  }
  if (bind(l, (struct sockaddr *)&ss, len) || listen(l, 4) || getsockname(l, (struct sockaddr *)&ss, &len)) { say("FAIL setup: %s\n", strerror(errno)); return 1; }
  if (!strcmp(family, "m")) inet_pton(AF_INET6, "::ffff:127.0.0.1", &((struct sockaddr_in6 *)&ss)->sin6_addr);
  c = socket(ss.ss_family, SOCK_STREAM, 0);
  SET(c, IPPROTO_TCP, TCP_MAXSEG, 1000);
  if (connect(c, (struct sockaddr *)&ss, len)) { say("FAIL connect: %s\n", strerror(errno)); return 1; }
  s = accept(l, NULL, NULL);
  close(l);
  SET(c, SOL_SOCKET, SO_KEEPALIVE, 1);
  SET(c, IPPROTO_TCP, TCP_KEEPIDLE, 31);
  SET(c, IPPROTO_TCP, TCP_KEEPINTVL, 7);
  SET(c, IPPROTO_TCP, TCP_KEEPCNT, 3);
  SET(c, IPPROTO_TCP, TCP_NODELAY, 1);
  SET(c, IPPROTO_TCP, TCP_USER_TIMEOUT, 9000);
  SET(c, IPPROTO_TCP, TCP_NOTSENT_LOWAT, 4096);
  struct linger lg = {.l_onoff = 1, .l_linger = 3};
  setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  if (setsockopt(c, IPPROTO_TCP, TCP_CONGESTION, "reno", 4)) { say("FAIL setup TCP_CONGESTION: %s\n", strerror(errno)); return 1; }
  SET(s, SOL_SOCKET, SO_KEEPALIVE, 1);
  SET(s, IPPROTO_TCP, TCP_KEEPIDLE, 23);
  SET(s, SOL_SOCKET, SO_PRIORITY, 5);
  if (ss.ss_family == AF_INET || !strcmp(family, "m")) SET(s, IPPROTO_IP, IP_TOS, 0x10);
  if (ss.ss_family == AF_INET6) SET(s, IPPROTO_IPV6, IPV6_TCLASS, 0x20);
  send(c, "to-s", 4, 0);
  send(s, "to-c", 4, 0);
  usleep(20000);
  SET(s, IPPROTO_TCP, TCP_CORK, 1);
  send(s, "cork", 4, 0); /* held: less than a segment, corked */
  struct opt saved[NOPTS];
  for (int i = 0; i < NOPTS; i++) read_opts(&opts[i]), saved[i] = opts[i];
  struct shape sc = shape_of(c), sv = shape_of(s);
  if (sc.state != TCP_ESTABLISHED || !(sc.options & TCPI_OPT_TIMESTAMPS) || !(sc.options & TCPI_OPT_WSCALE) || !(sc.options & TCPI_OPT_SACK)) {
    say("FAIL setup: state %d, options %#x\n", sc.state, sc.options);
    return 1;
  }
  say("READY mss=%d/%d wscale=%d/%d\n", sc.snd_mss, sv.snd_mss, sc.rcv_wscale, sv.rcv_wscale);
  while (!go) usleep(10000);
  for (int i = 0; i < NOPTS; i++) {
    read_opts(&opts[i]);
    CHECK(opts[i].len == saved[i].len && !memcmp(opts[i].val, saved[i].val, saved[i].len), "%s differs after restore (%d, was %d)", saved[i].what, *(int *)opts[i].val, *(int *)saved[i].val);
  }
  struct shape rc = shape_of(c), rs = shape_of(s);
  CHECK(!memcmp(&rc, &sc, sizeof rc), "c TCP_INFO: state %d/%d options %#x/%#x wscale %d,%d/%d,%d mss %d/%d", rc.state, sc.state, rc.options, sc.options, rc.snd_wscale, rc.rcv_wscale, sc.snd_wscale, sc.rcv_wscale, rc.snd_mss, sc.snd_mss);
  CHECK(!memcmp(&rs, &sv, sizeof rs), "s TCP_INFO: state %d/%d options %#x/%#x wscale %d,%d/%d,%d mss %d/%d", rs.state, sv.state, rs.options, sv.options, rs.snd_wscale, rs.rcv_wscale, sv.snd_wscale, sv.rcv_wscale, rs.snd_mss, sv.snd_mss);
  CHECK(recv_str(s, "to-s") && recv_str(c, "to-c"), "the queued bytes (%s)", strerror(errno));
  /* The corked bytes go out when the cork is taken out (or by its 200 ms ceiling). */
  SET(s, IPPROTO_TCP, TCP_CORK, 0);
  CHECK(recv_str(c, "cork"), "the corked bytes (%s)", strerror(errno));
  CHECK(send(c, "more", 4, 0) == 4 && recv_str(s, "more"), "c → s after restore (%s)", strerror(errno));
  CHECK(send(s, "back", 4, 0) == 4 && recv_str(c, "back"), "s → c after restore (%s)", strerror(errno));
  if (fail[0]) say("FAIL %s\n", fail);
  else say("PASS shapes\n");
  return 0;
}
