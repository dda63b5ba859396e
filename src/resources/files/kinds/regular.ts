/**
 * Regular files and directories that still have their name: reopened by path. A file
 * whose name this fd used was removed while the file keeps another name (a hard link)
 * is not deleted: it is reopened by its file handle (handle.ts).
 */
import { constants, lstatSync, type Stats } from 'node:fs';
import { withoutDeletedSuffix, type FdFacts } from '../facts.js';
import { isPathOnly, reopenFlags } from '../flags.js';
import type { EntryOf, SavedHandle } from '../schema.js';
import { dumpHandle, relinkHandle } from './handle.js';
import { restoreError, savedPath, type KindDumpContext, type KindRestoreContext, type TargetReopener } from './kind.js';

export function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch {
    return null;
  }
}

export function dumpRegular(_dc: KindDumpContext, f: FdFacts): EntryOf<'reg'> {
  return { kind: 'reg', fd: f.fd, flags: f.flags, pos: f.pos, path: savedPath(f, f.link), size: BigInt(f.stat.size) };
}

/** A file unlinked from this fd's name but linked elsewhere: saved as its file handle. */
export function dumpOtherLink(_dc: KindDumpContext, f: FdFacts): EntryOf<'reg'> {
  const path = savedPath(f, withoutDeletedSuffix(f.link));
  return { kind: 'reg', fd: f.fd, flags: f.flags, pos: f.pos, path, size: BigInt(f.stat.size), handle: dumpHandle(f) };
}

/** The file of a saved handle, linked under its old name again, opened there by the target, unlinked. */
function openByHandleIn(rc: KindRestoreContext, e: EntryOf<'reg'> & { handle: SavedHandle }): number {
  const name = relinkHandle(rc, { ...e, type: constants.S_IFREG });
  try {
    return rc.target.open(name.path, reopenFlags(e.flags, { directory: false }));
  } finally {
    name.remove();
  }
}

export function dumpDirectory(_dc: KindDumpContext, f: FdFacts): EntryOf<'dir'> {
  return { kind: 'dir', fd: f.fd, flags: f.flags, pos: f.pos, path: savedPath(f, f.link) };
}

export const regularReopener: TargetReopener<'reg'> = {
  at: 'target',
  open(rc: KindRestoreContext, e: EntryOf<'reg'>): number {
    if (e.handle) return openByHandleIn(rc, { ...e, handle: e.handle });
    const st = lstatOrNull(e.path);
    if (!st) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} no longer exists` });
    if (!st.isFile()) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} is no longer a regular file` });
    // Legal (a log truncated by logrotate, an O_APPEND writer) but worth knowing: reads will see EOF.
    // Not for /proc and /sys files, whose size is always 0 (top keeps /proc/stat open and rereads it).
    if (BigInt(st.size) < e.pos && !/^\/(proc|sys)\//.test(e.path)) {
      rc.ctx.warn(`fd ${e.fd} of process ${rc.ctx.pid}: ${e.path} is now ${st.size} bytes, shorter than its saved offset ${e.pos}`);
    }
    return rc.target.open(e.path, reopenFlags(e.flags, { directory: false }));
  },
  seekable: (e) => !isPathOnly(e.flags),
};

export const directoryReopener: TargetReopener<'dir'> = {
  at: 'target',
  open(rc: KindRestoreContext, e: EntryOf<'dir'>): number {
    const st = lstatOrNull(e.path);
    if (!st) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} no longer exists` });
    if (!st.isDirectory()) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} is no longer a directory` });
    return rc.target.open(e.path, reopenFlags(e.flags, { directory: true }));
  },
  // A directory offset is a getdents cookie; lseek to it resumes a readdir where it was.
  seekable: (e) => !isPathOnly(e.flags) && e.pos !== 0n,
};
