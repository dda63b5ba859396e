/** The restorer's table of shared objects (see SharedObjects in types.ts). */
import { closeFd } from '../sys/index.js';
import type { SharedObjects } from './types.js';

export class LocalObjects implements SharedObjects {
  private fds = new Map<string, number>();

  get(key: string): number | undefined {
    return this.fds.get(key);
  }

  set(key: string, localFd: number): void {
    const old = this.fds.get(key);
    if (old !== undefined && old !== localFd) closeFd(old);
    this.fds.set(key, localFd);
  }

  /** Closes every local fd; the restored processes keep their own copies. */
  close(): void {
    for (const fd of this.fds.values()) {
      try {
        closeFd(fd);
      } catch {
        // already closed
      }
    }
    this.fds.clear();
  }
}
