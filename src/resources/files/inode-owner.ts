/**
 * The owner of the inodes a restore makes anew: pipes and sockets. The kernel gives a new
 * pipe or socket inode its maker's fsuid and fsgid, and fchown may change them later; a
 * socket's owner is also its `sk_uid`, which uid routing rules (`ip rule uidrange`),
 * netfilter's owner match and `ss -e` use. The restorer makes these inodes as itself
 * (root), so each one whose saved owner differs is given it back with fchown on a copy
 * of the target's fd (sockfs sets `sk_uid` with it), with the process's own rights when
 * the images are not trusted (process/fscreds.ts).
 */
import { fchownSync, statSync } from 'node:fs';
import { closeFd } from '../../sys/index.js';
import { locallyAs } from '../process/fscreds.js';
import { grabFd } from '../transfer.js';
import { fdPath, type FdFacts } from './facts.js';
import { restoreError, type KindRestoreContext } from './kinds/kind.js';
import type { FdEntry } from './schema.js';

const MADE_ANEW: ReadonlySet<FdEntry['kind']> = new Set(['pipe', 'unix', 'inet', 'netlink', 'ipsock', 'packet']);

/** Saves the owner of the inode behind `entry` when the restore makes that inode anew. */
export function saveInodeOwner(entry: FdEntry, facts: FdFacts): void {
  const { uid, gid } = facts.stat;
  if (!MADE_ANEW.has(entry.kind) || uid === undefined || gid === undefined || !('flags' in entry)) return;
  (entry as { inode?: { uid: number; gid: number } }).inode = { uid, gid };
}

/** Gives every pipe and socket of the process the owner it had, where the restore made it another's. */
export function restoreInodeOwners(rc: KindRestoreContext, fds: readonly FdEntry[]): void {
  const pid = rc.ctx.pid;
  for (const e of fds) {
    if (!MADE_ANEW.has(e.kind) || !('inode' in e) || !e.inode) continue;
    const want = e.inode;
    const st = statSync(fdPath(pid, e.fd));
    if (st.uid === want.uid && st.gid === want.gid) continue;
    const local = grabFd(pid, e.fd);
    try {
      locallyAs(rc.ctx.openAs, () => fchownSync(local, want.uid, want.gid));
    } catch (err) {
      throw restoreError(rc, { fd: e.fd, code: 'PERMISSION', reason: `cannot give its ${e.kind === 'pipe' ? 'pipe' : 'socket'} the owner ${want.uid}:${want.gid} it had (${(err as NodeJS.ErrnoException).code ?? String(err)})`, cause: err });
    } finally {
      closeFd(local);
    }
  }
}
