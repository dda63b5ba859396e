/**
 * The few fd operations restore injects into the target: open a path, move an fd to
 * its number, seek, close. Paths travel through the RemoteTask's scratch memory.
 */
import type { RemoteTask } from '../../infect/index.js';
import { NR } from '../../sys/index.js';
import { O } from './flags.js';

const AT_FDCWD = -100;
const SEEK_SET = 0;
const PATH_MAX = 4096;

export class TargetFds {
  constructor(private readonly remote: RemoteTask) {}

  /** openat(AT_FDCWD, path, flags, 0) in the target; returns the fd it got (the lowest free one). */
  open(path: string, flags: number): number {
    const bytes = Buffer.from(`${path}\0`);
    const addr = this.remote.scratch(Math.max(bytes.length, PATH_MAX));
    this.remote.write(addr, bytes);
    return Number(this.remote.call(NR.openat, [AT_FDCWD, addr, flags, 0], 'openat'));
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
