/**
 * Character devices (/dev/null, /dev/zero, /dev/urandom …) reopened by path. The
 * device number is saved and checked, so a path that now names another device (or a
 * plain file) is refused rather than silently opened.
 */
import { devName, isChr, type FdFacts } from '../facts.js';
import { isPathOnly, reopenFlags } from '../flags.js';
import type { EntryOf } from '../schema.js';
import { restoreError, savedPath, type KindDumpContext, type KindRestoreContext, type TargetReopener } from './kind.js';
import { lstatOrNull } from './regular.js';

export function dumpCharDevice(_dc: KindDumpContext, f: FdFacts): EntryOf<'chr'> {
  return { kind: 'chr', fd: f.fd, flags: f.flags, pos: f.pos, path: savedPath(f, f.link), rdev: f.stat.rdev };
}

export const charDeviceReopener: TargetReopener<'chr'> = {
  at: 'target',
  open(rc: KindRestoreContext, e: EntryOf<'chr'>): number {
    const st = lstatOrNull(e.path);
    if (!st) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} no longer exists` });
    if (!isChr(st) || st.rdev !== e.rdev) {
      const now = isChr(st) ? `device ${devName(st.rdev)}` : 'not a character device';
      throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} is no longer device ${devName(e.rdev)} (now ${now})` });
    }
    return rc.target.open(e.path, reopenFlags(e.flags, { directory: false }));
  },
  // Most devices ignore the offset (or refuse lseek); only a non-zero one is worth setting.
  seekable: (e) => !isPathOnly(e.flags) && e.pos !== 0n,
};
