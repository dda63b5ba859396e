/**
 * O_PATH fds on what is neither a regular file nor a directory: a symbolic link itself
 * (O_PATH|O_NOFOLLOW, as path-walking code such as systemd's and runc's holds them), a
 * FIFO, a socket file, a device node. Such an fd never reaches the object behind the
 * inode (no read, no driver open), so it is saved as its path, type and inode and
 * reopened with O_PATH; the inode is checked as for regular files (regular.ts).
 */
import { constants } from 'node:fs';
import { isBlk, isChr, isFifo, withoutDeletedSuffix, type FdFacts, type FdStat } from '../facts.js';
import { nameGone } from '../nameless.js';
import { O, reopenFlags } from '../flags.js';
import type { EntryOf } from '../schema.js';
import { dumpError, restoreError, savedPath, type KindDumpContext, type KindRestoreContext, type TargetReopener } from './kind.js';
import { checkIdentity, identityOf, lstatOrNull } from './regular.js';

type PathType = EntryOf<'path'>['type'];

function typeOf(st: Pick<FdStat, 'mode'>): PathType | undefined {
  const t = st.mode & constants.S_IFMT;
  if (t === constants.S_IFLNK) return 'symlink';
  if (isFifo(st as FdStat)) return 'fifo';
  if (t === constants.S_IFSOCK) return 'socket';
  if (isChr(st as FdStat)) return 'chr';
  if (isBlk(st as FdStat)) return 'blk';
  return undefined;
}

export function dumpPathOnly(_dc: KindDumpContext, f: FdFacts): EntryOf<'path'> {
  const type = typeOf(f.stat);
  if (!type) throw dumpError(f, { code: 'UNSUPPORTED', reason: `O_PATH fds on files of mode 0${f.stat.mode.toString(8)} are not supported (${f.link})` });
  if (nameGone(f)) throw dumpError(f, { code: 'UNSUPPORTED', reason: `its O_PATH ${type} ${withoutDeletedSuffix(f.link)} has no name left; such fds are not supported` });
  const path = savedPath(f, f.link);
  // A socket file is made again (a new inode) when the tree's own socket is bound again at restore.
  const identity = type === 'socket' ? undefined : identityOf(f, path);
  return { kind: 'path', fd: f.fd, flags: f.flags, pos: 0n, path, type, ...(identity && { identity }) };
}

export const pathOnlyReopener: TargetReopener<'path'> = {
  at: 'target',
  open(rc: KindRestoreContext, e: EntryOf<'path'>): number {
    const st = lstatOrNull(e.path);
    if (!st) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} no longer exists` });
    const now = typeOf(st);
    if (now !== e.type) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} is no longer a ${e.type} (now ${now ?? 'a file or directory'})` });
    checkIdentity(rc, e);
    // A symbolic link is opened itself only with O_NOFOLLOW, which its saved flags hold.
    return rc.target.open(e.path, reopenFlags(e.flags, { directory: false }) | O.PATH);
  },
  seekable: () => false,
};
