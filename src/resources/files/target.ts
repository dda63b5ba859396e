/**
 * The few fd operations restore injects into the target: open a path, move an fd to
 * its number, seek, close, and take a copy of one of the restorer's fds. Paths travel
 * through the RemoteTask's scratch memory.
 */
import type { RemoteTask } from '../../infect/index.js';
import { NR } from '../../sys/index.js';
import { takeLocalFd } from '../transfer.js';
import { O } from './flags.js';

const AT_FDCWD = -100;
const SEEK_SET = 0;
const PATH_MAX = 4096;
const F_DUPFD_CLOEXEC = 1030;

export class TargetFds {
  /** A pidfd of the restorer inside the target, kept above every saved fd number so no dup3 replaces it. */
  private pidfd: number | undefined;

  /** `above`: the highest fd number the target will have once restored. */
  constructor(private readonly remote: RemoteTask, private readonly above = 0) {}

  /** openat(AT_FDCWD, path, flags, 0) in the target; returns the fd it got (the lowest free one). */
  open(path: string, flags: number): number {
    const bytes = Buffer.from(`${path}\0`);
    const addr = this.remote.scratch(Math.max(bytes.length, PATH_MAX));
    this.remote.write(addr, bytes);
    return Number(this.remote.call(NR.openat, [AT_FDCWD, addr, flags, 0], 'openat'));
  }

  /**
   * Opens a new description, with `flags`, of the file behind the restorer's fd
   * `localFd` (an O_PATH fd will do), through the target's own /proc/self/fd: the
   * target opens it with its own rights. Returns the fd the target got.
   */
  reopenLocal(localFd: number, flags: number): number {
    const tmp = takeLocalFd(this.remote, { pidfd: this.restorerPidfd(), localFd });
    try {
      // Through the /proc magic link O_NOFOLLOW would fail (ELOOP): the one flag such a reopen cannot keep.
      return this.open(`/proc/self/fd/${tmp}`, flags & ~O.NOFOLLOW);
    } finally {
      this.remote.call(NR.close, [tmp], 'close');
    }
  }

  /**
   * Makes `from` appear as fd `to` with the given close-on-exec flag, and frees `from`.
   * `from` was a free number when it was opened, so it is never an fd already restored:
   * opening and placing one fd at a time cannot clobber another saved fd.
   */
  place(from: number, to: { fd: number; cloexec: boolean }): void {
    if (from === to.fd) return; // opened with O_CLOEXEC exactly when the fd had it
    this.remote.call(NR.dup3, [from, to.fd, to.cloexec ? O.CLOEXEC : 0], 'dup3');
    this.remote.call(NR.close, [from], 'close');
  }

  /**
   * Gives the target a copy of the restorer's fd `localFd` (the same open file
   * description) as fd `to.fd`, by an injected pidfd_getfd.
   */
  install(localFd: number, to: { fd: number; cloexec: boolean }): void {
    const tmp = takeLocalFd(this.remote, { pidfd: this.restorerPidfd(), localFd });
    // pidfd_getfd always sets close-on-exec; place() keeps it only when asked.
    if (tmp === to.fd && !to.cloexec) this.remote.call(NR.fcntl, [tmp, 2 /* F_SETFD */, 0], 'fcntl(F_SETFD)');
    else this.place(tmp, to);
  }

  private restorerPidfd(): number {
    if (this.pidfd === undefined) {
      const low = Number(this.remote.call(NR.pidfd_open, [process.pid, 0], 'pidfd_open(restorer)'));
      try {
        this.pidfd = Number(this.remote.call(NR.fcntl, [low, F_DUPFD_CLOEXEC, this.above + 1], 'fcntl(F_DUPFD_CLOEXEC)'));
      } finally {
        this.remote.call(NR.close, [low], 'close');
      }
    }
    return this.pidfd;
  }

  /** Closes what the target holds only for the restore (the restorer's pidfd). */
  dispose(): void {
    if (this.pidfd === undefined) return;
    const fd = this.pidfd;
    this.pidfd = undefined;
    this.remote.call(NR.close, [fd], 'close');
  }

  /** A second fd on the same open file description (shared offset and flags). */
  dup(of: number, to: { fd: number; cloexec: boolean }): void {
    this.remote.call(NR.dup3, [of, to.fd, to.cloexec ? O.CLOEXEC : 0], 'dup3');
  }

  seek(fd: number, pos: bigint): void {
    this.remote.call(NR.lseek, [fd, pos, SEEK_SET], 'lseek');
  }

  /** Closes the given fds, one close_range call per run of consecutive numbers. */
  closeAll(fds: readonly number[]): void {
    const sorted = [...fds].sort((a, b) => a - b);
    for (let i = 0; i < sorted.length; ) {
      let j = i;
      while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
      this.remote.call(NR.close_range, [sorted[i]!, sorted[j]!, 0], 'close_range');
      i = j + 1;
    }
  }
}
