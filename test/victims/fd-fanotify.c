/* fanotify: a non-blocking FAN_CLASS_NOTIF group with a mark on directory "w" for
 * FAN_CLOSE_WRITE of its children, and an ignore mark (surviving modification) on
 * "w/skip". On SIGUSR1 it closes a written "w/skip" then "w/a" and checks that the
 * event for "w/a" alone comes, printing "PASS name" / "FAIL name: why", then "DONE".
 * argv[1] = "pending": an event is left unread (the dump must refuse).
 * argv[1] = a directory where a file system of its own is mounted: a mount mark and a
 * file system mark on it are checked the same way (the event for a file closed there). */
#include "victim.h"
#include <fcntl.h>
#include <sys/fanotify.h>
#include <sys/stat.h>

static volatile sig_atomic_t go;
static void on_usr1(int s) { (void)s; go = 1; }

static void touch(const char *path) {
  int fd = open(path, O_CREAT | O_WRONLY, 0600);
  if (fd >= 0 && write(fd, "x", 1) != 1) say("write %s failed\n", path);
  if (fd >= 0) close(fd);
}

int main(int argc, char **argv) {
  signal(SIGUSR1, on_usr1);
  int pending = argc > 1 && strcmp(argv[1], "pending") == 0;
  if (mkdir("w", 0700)) return say("SETUP FAIL %s\n", strerror(errno)), 1;
  touch("w/skip");
  int fan = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
  if (fan < 0 || fanotify_mark(fan, FAN_MARK_ADD, FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD, AT_FDCWD, "w") ||
      fanotify_mark(fan, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_CLOSE_WRITE, AT_FDCWD, "w/skip"))
    return say("SETUP FAIL %s\n", strerror(errno)), 1;
  if (pending) touch("w/a");
  const char *mnt = argc > 1 && !pending ? argv[1] : NULL;
  int fan2 = mnt ? fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY) : -1;
  if (mnt && (fan2 < 0 || fanotify_mark(fan2, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CLOSE_WRITE, AT_FDCWD, mnt) ||
              fanotify_mark(fan2, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_OPEN, AT_FDCWD, mnt)))
    return say("SETUP FAIL %s\n", strerror(errno)), 1;
  say("READY pid=%d fd=%d\n", getpid(), fan);
  while (!go) usleep(10000);
  char buf[4096] __attribute__((aligned(8)));
  ssize_t n = read(fan, buf, sizeof buf);
  verdict("fanotify-empty", n < 0 && errno == EAGAIN, "the queue was not empty after restore (read gave %zd)", n);
  touch("w/skip");
  touch("w/a");
  n = read(fan, buf, sizeof buf);
  int seen_a = 0, seen_skip = 0;
  for (struct fanotify_event_metadata *m = (void *)buf; n > 0 && FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
    char link[64], path[512] = "";
    snprintf(link, sizeof link, "/proc/self/fd/%d", m->fd);
    ssize_t l = readlink(link, path, sizeof path - 1);
    if (l > 0) path[l] = 0;
    if (m->mask & FAN_CLOSE_WRITE) {
      if (strstr(path, "/w/a")) seen_a = 1;
      if (strstr(path, "/w/skip")) seen_skip = 1;
    }
    close(m->fd);
  }
  verdict("fanotify-event", seen_a, "no FAN_CLOSE_WRITE for w/a");
  verdict("fanotify-ignore", !seen_skip, "w/skip was reported despite its ignore mark");
  if (mnt) {
    char f[512];
    snprintf(f, sizeof f, "%s/m", mnt);
    touch(f);
    n = read(fan2, buf, sizeof buf);
    int opened = 0, closed = 0;
    for (struct fanotify_event_metadata *m = (void *)buf; n > 0 && FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
      opened |= (m->mask & FAN_OPEN) != 0;
      closed |= (m->mask & FAN_CLOSE_WRITE) != 0;
      close(m->fd);
    }
    verdict("fanotify-mount-fs", opened && closed, "events on the mounted file system: open %d, close-write %d", opened, closed);
  }
  say("DONE\n");
  for (;;) pause();
}
