/** Regular files and directories that still have their name: reopened by path. */
import { lstatSync, type Stats } from 'node:fs';
import type { FdFacts } from '../facts.js';
import { isPathOnly, reopenFlags } from '../flags.js';
import type { EntryOf } from '../schema.js';
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

export function dumpDirectory(_dc: KindDumpContext, f: FdFacts): EntryOf<'dir'> {
  return { kind: 'dir', fd: f.fd, flags: f.flags, pos: f.pos, path: savedPath(f, f.link) };
}

export const regularReopener: TargetReopener<'reg'> = {
  at: 'target',
  open(rc: KindRestoreContext, e: EntryOf<'reg'>): number {
    const st = lstatOrNull(e.path);
    if (!st) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} no longer exists` });
    if (!st.isFile()) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} is no longer a regular file` });
    // Legal (a log truncated by logrotate, an O_APPEND writer) but worth knowing: reads will see EOF.
    if (BigInt(st.size) < e.pos) {
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
