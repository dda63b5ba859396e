/**
 * Character devices (/dev/null, /dev/zero, /dev/urandom …) reopened by path. The
 * device number is saved and checked, so a path that now names another device (or a
 * plain file) is refused rather than silently opened. A node whose name was removed
 * is recreated (mknod) under a free name for the target to open, then removed again.
 */
import { constants } from 'node:fs';
import { devName, isChr, withoutDeletedSuffix, type FdFacts } from '../facts.js';
import { nameGone, recreateNode, removedNode } from '../nameless.js';
import { isPathOnly, reopenFlags } from '../flags.js';
import type { EntryOf, RemovedNode } from '../schema.js';
import { restoreError, savedPath, type KindDumpContext, type KindRestoreContext, type TargetReopener } from './kind.js';
import { lstatOrNull } from './regular.js';

export function dumpCharDevice(_dc: KindDumpContext, f: FdFacts): EntryOf<'chr'> {
  if (!nameGone(f)) return { kind: 'chr', fd: f.fd, flags: f.flags, pos: f.pos, path: savedPath(f, f.link), rdev: f.stat.rdev };
  // A device node is only a name for the device: a new node with the same number is the same device.
  const path = savedPath(f, withoutDeletedSuffix(f.link));
  return { kind: 'chr', fd: f.fd, flags: f.flags, pos: f.pos, path, rdev: f.stat.rdev, deleted: removedNode(f) };
}

/** A node for a device whose node was removed: recreated, opened by the target, removed again. */
function openRemoved(rc: KindRestoreContext, e: EntryOf<'chr'> & { deleted: RemovedNode }): number {
  const what = `fd ${e.fd} of process ${rc.ctx.pid}`;
  const node = recreateNode(rc.ctx, { what, path: e.path, type: constants.S_IFCHR, rdev: e.rdev, attrs: e.deleted });
  try {
    return rc.target.open(node.path, reopenFlags(e.flags, { directory: false }));
  } finally {
    node.finish();
  }
}

export const charDeviceReopener: TargetReopener<'chr'> = {
  at: 'target',
  open(rc: KindRestoreContext, e: EntryOf<'chr'>): number {
    if (e.deleted) return openRemoved(rc, { ...e, deleted: e.deleted });
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
