/**
 * Character devices (/dev/null, /dev/zero, /dev/urandom …) reopened by path. The
 * device number is saved and checked, so a path that now names another device (or a
 * plain file) is refused rather than silently opened. A node whose name was removed
 * is recreated (mknod) under a free name for the target to open, then removed again.
 *
 * Only devices whose open file holds nothing but its flags and offset are reopened: the
 * memory devices of major 1, and /dev/kmsg opened for writing only (an O_PATH fd on
 * any device is pathonly.ts's: it never reaches the driver). Any other driver
 * may keep state per open file that a new open lacks (a tun fd's interface, a FUSE
 * connection, /dev/kmsg's read position, an evdev grab, a PM QoS request, a watchdog
 * armed by the open): refused, naming the device, rather than reopened blank.
 */
import { constants } from 'node:fs';
import { devName, isChr, major, minor, withoutDeletedSuffix, type FdFacts } from '../facts.js';
import { nameGone, recreateNode, removedNode } from '../nameless.js';
import { isPathOnly, O, reopenFlags } from '../flags.js';
import type { EntryOf, RemovedNode } from '../schema.js';
import { dumpError, restoreError, savedPath, type KindDumpContext, type KindRestoreContext, type TargetReopener } from './kind.js';
import { lstatOrNull } from './regular.js';

/** Major 1 (drivers/char/mem.c): mem, kmem, null, port, zero, full, random, urandom; 11 is kmsg. */
const MEM_MAJOR = 1;
const STATELESS_MEM = new Set([1, 2, 3, 4, 5, 7, 8, 9]);
const KMSG_MINOR = 11;

function isStateless(f: FdFacts): boolean {
  if (major(f.stat.rdev) !== MEM_MAJOR) return false;
  const m = minor(f.stat.rdev);
  return STATELESS_MEM.has(m) || (m === KMSG_MINOR && (f.flags & O.ACCMODE) === O.WRONLY);
}

export function dumpCharDevice(_dc: KindDumpContext, f: FdFacts): EntryOf<'chr'> {
  if (!isStateless(f)) {
    const reason = `character device ${devName(f.stat.rdev)} (${f.link}) is not supported: its driver may keep state in the open file (an interface, a connection, a read position) that a new open would not have`;
    throw dumpError(f, { code: 'UNSUPPORTED', reason });
  }
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
