/* inotify: an instance with watches whose numbers have gaps (watches added and
 * removed), on a directory (IN_CREATE), a file (IN_MODIFY|IN_ONESHOT), a symlink
 * itself (IN_DONT_FOLLOW) and a directory renamed after it was watched; a second,
 * blocking instance with no watch. On SIGUSR1 it makes each watch fire and checks the
 * event comes with the same watch number, printing "PASS name" / "FAIL name: why",
 * then "DONE".
 * argv[1] = "pending": one event is left unread (the dump must refuse).
 * argv[1] = "deleted": the only watch is on a file unlinked since (the dump must refuse). */
#include "victim.h"
#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/stat.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static int in, in2, wdir, wfile, wlink, wren;

/* Reads events until one for `wd` with a bit of `mask` comes (the instance is non-blocking). */
static int saw(int wd, uint32_t mask, const char *name) {
  char buf[4096] __attribute__((aligned(8)));
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0) {
    for (char *p = buf; p < buf + n;) {
      struct inotify_event *ev = (struct inotify_event *)p;
      if (ev->wd == wd && (ev->mask & mask) && (!name || (ev->len && strcmp(ev->name, name) == 0))) return 1;
      p += sizeof *ev + ev->len;
    }
  }
  return 0;
}

static void check(void) {
  char b[16];
  ssize_t r = read(in, b, sizeof b);
  verdict("inotify-empty", r < 0 && errno == EAGAIN, "the queue was not empty after restore (read gave %zd)", r);
  int fl = fcntl(in, F_GETFL), fl2 = fcntl(in2, F_GETFL);
  verdict("inotify-flags", (fl & O_NONBLOCK) && !(fl2 & O_NONBLOCK), "F_GETFL 0%o and 0%o", fl, fl2);
  close(open("w/new", O_CREAT | O_WRONLY, 0600));
  verdict("inotify-create", saw(wdir, IN_CREATE, "new"), "no IN_CREATE of w/new on watch %d", wdir);
  int fd = open("f", O_WRONLY);
  verdict("inotify-oneshot", fd >= 0 && write(fd, "x", 1) == 1 && saw(wfile, IN_MODIFY, NULL), "no IN_MODIFY on watch %d", wfile);
  verdict("inotify-oneshot-gone", write(fd, "y", 1) == 1 && !saw(wfile, IN_MODIFY, NULL), "the one-shot watch %d fired twice", wfile);
  close(fd);
  verdict("inotify-symlink", utimensat(AT_FDCWD, "ln", NULL, AT_SYMLINK_NOFOLLOW) == 0 && saw(wlink, IN_ATTRIB, NULL),
          "no IN_ATTRIB on the symlink's own watch %d", wlink);
  close(open("r2/x", O_CREAT | O_WRONLY, 0600));
  verdict("inotify-renamed", saw(wren, IN_CREATE, "x"), "no IN_CREATE of r2/x on watch %d", wren);
  int again = inotify_add_watch(in, "w", IN_CREATE);
  verdict("inotify-same-watch", again == wdir, "adding w again gave watch %d, not %d", again, wdir);
  say("DONE\n");
}

static void drain(void) {
  char buf[4096];
  while (read(in, buf, sizeof buf) > 0) {}
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  signal(SIGUSR1, on_usr1);
  in = inotify_init1(IN_NONBLOCK);
  in2 = inotify_init1(IN_CLOEXEC);
  if (in < 0 || in2 < 0 || mkdir("w", 0700) || mkdir("other", 0700) || mkdir("r1", 0700)) return say("SETUP FAIL %s\n", strerror(errno)), 1;
  if (strcmp(mode, "pending") == 0) {
    wdir = inotify_add_watch(in, "w", IN_CREATE);
    close(open("w/x", O_CREAT | O_WRONLY, 0600));
    say("READY pid=%d fd=%d\n", getpid(), in);
    for (;;) pause();
  }
  if (strcmp(mode, "deleted") == 0) {
    int keep = open("g", O_CREAT | O_RDWR, 0600);
    wfile = inotify_add_watch(in, "g", IN_MODIFY);
    if (keep < 0 || wfile < 0 || unlink("g")) return say("SETUP FAIL %s\n", strerror(errno)), 1;
    say("READY pid=%d fd=%d wd=%d\n", getpid(), in, wfile);
    for (;;) pause();
  }
  close(open("f", O_CREAT | O_WRONLY, 0600));
  if (symlink("f", "ln")) return say("SETUP FAIL symlink %s\n", strerror(errno)), 1;
  wdir = inotify_add_watch(in, "w", IN_CREATE | IN_DELETE);
  inotify_rm_watch(in, inotify_add_watch(in, "other", IN_ALL_EVENTS));
  wfile = inotify_add_watch(in, "f", IN_MODIFY | IN_ONESHOT);
  wlink = inotify_add_watch(in, "ln", IN_ATTRIB | IN_DONT_FOLLOW);
  for (int i = 0; i < 5; i++) inotify_rm_watch(in, inotify_add_watch(in, "other", IN_CREATE));
  wren = inotify_add_watch(in, "r1", IN_CREATE);
  if (wdir < 0 || wfile < 0 || wlink < 0 || wren < 0 || rename("r1", "r2")) return say("SETUP FAIL %s\n", strerror(errno)), 1;
  drain();
  say("READY pid=%d wds=%d,%d,%d,%d\n", getpid(), wdir, wfile, wlink, wren);
  while (!go) usleep(10000);
  check();
  for (;;) pause();
}
