/**
 * fanotify groups (`anon_inode:[fanotify]`). fdinfo gives the group's init flags and
 * event flags ("fanotify flags:%x event-flags:%x"), then one line per mark: on an inode
 * ("ino:%lx sdev:%x" and its file handle), on a mount ("mnt_id:%x") or on a whole file
 * system ("sdev:%x"), each with its mark flags (FAN_MARK_IGNORED_SURV_MODIFY,
 * FAN_MARK_EVICTABLE, FAN_MARK_IGNORE), mask (FAN_ONDIR, FAN_EVENT_ON_CHILD included)
 * and ignored mask.
 *
 * Dump: an inode mark's path is found from its handle (as inotify's, watched.ts); a
 * mount mark's is its mount point, a file system mark's the mount point of that file
 * system's root. Refused: a group of class CONTENT or PRE_CONTENT (permission events: a
 * request read but not answered yet is shown nowhere), a group with unread events
 * (FIONREAD), and marks no path reaches.
 *
 * Restore: fanotify_init with the same flags in the restorer (CAP_SYS_ADMIN), then each
 * mark with fanotify_mark by path, its mask and its ignored mask as two adds.
 */
import { readFdinfo, readMountinfo } from '../../../proc/index.js';
import { closeFd, F, FAN, FAN_MARK, fanotifyInit, fanotifyMark, fcntl } from '../../../sys/index.js';
import type { FdFacts } from '../facts.js';
import { O } from '../flags.js';
import type { EntryOf, FanotifyMark } from '../schema.js';
import { dumpError, type KindDumpContext, type LocalReopener } from './kind.js';
import { mountsOf, pathOfInode, queuedBytes } from './watched.js';

const HEADER = /^fanotify flags:([0-9a-f]+) event-flags:([0-9a-f]+)$/;
const FLAGS = 'mflags:([0-9a-f]+) mask:([0-9a-f]+) ignored_mask:([0-9a-f]+)';
const INODE = new RegExp(`^fanotify ino:([0-9a-f]+) sdev:([0-9a-f]+) ${FLAGS}(?: fhandle-bytes:[0-9a-f]+ fhandle-type:([0-9a-f]+) f_handle:([0-9a-f]+))?`);
const MOUNT = new RegExp(`^fanotify mnt_id:([0-9a-f]+) ${FLAGS}`);
const FILESYSTEM = new RegExp(`^fanotify sdev:([0-9a-f]+) ${FLAGS}`);

const hex = (v: string | undefined) => parseInt(v ?? '', 16);

function parseMark(f: FdFacts, line: string): FanotifyMark {
  const refuse = (why: string) => dumpError(f, { code: 'UNSUPPORTED', reason: `its fanotify mark "${line}" ${why}` });
  const flags = (m: RegExpExecArray, at: number) => ({ mflags: hex(m[at]), mask: hex(m[at + 1]), ignored: hex(m[at + 2]) });
  let m = INODE.exec(line);
  if (m) {
    const handle = m[7] === undefined ? undefined : { type: hex(m[6]), bytes: Buffer.from(m[7], 'hex') };
    const found = pathOfInode({ ino: hex(m[1]), sdev: hex(m[2]), handle });
    if (found.path === undefined) throw refuse(`cannot be restored: ${found.why}`);
    return { type: 'inode', path: found.path, ...flags(m, 3) };
  }
  m = MOUNT.exec(line);
  if (m) {
    const id = hex(m[1]);
    const mount = readMountinfo(process.pid).find((x) => x.mountId === id);
    if (!mount) throw refuse(`is on mount ${id}, which ckpt cannot see`);
    return { type: 'mount', path: mount.mountPoint, ...flags(m, 2) };
  }
  m = FILESYSTEM.exec(line);
  if (m) {
    const mount = mountsOf(hex(m[1]))[0];
    if (!mount) throw refuse('is on a file system ckpt cannot see mounted');
    return { type: 'filesystem', path: mount.mountPoint, ...flags(m, 2) };
  }
  throw refuse('cannot be read');
}

export function dumpFanotify(_dc: KindDumpContext, f: FdFacts): EntryOf<'fanotify'> {
  const lines = readFdinfo(f.pid, f.fd).lines.filter((l) => l.startsWith('fanotify '));
  const header = HEADER.exec(lines[0] ?? '');
  if (!header) throw dumpError(f, { code: 'UNSUPPORTED', reason: `its fdinfo has no readable fanotify flags (${JSON.stringify(lines[0] ?? null)})` });
  const initFlags = hex(header[1]);
  if (initFlags & FAN.CLASS_MASK) {
    throw dumpError(f, { code: 'UNSUPPORTED', reason: 'its fanotify group is of class FAN_CLASS_CONTENT or FAN_CLASS_PRE_CONTENT (permission events), which is not supported' });
  }
  const marks = lines.slice(1).map((l) => parseMark(f, l));
  const queued = queuedBytes(f);
  if (queued > 0) {
    throw dumpError(f, { code: 'UNSUPPORTED', reason: `its fanotify group has ${queued} bytes of events not read yet, which cannot be saved without consuming them` });
  }
  return { kind: 'fanotify', fd: f.fd, flags: f.flags, initFlags, eventFlags: hex(header[2]), marks };
}

const TYPE_FLAG = { inode: FAN_MARK.DONT_FOLLOW, mount: FAN_MARK.MOUNT, filesystem: FAN_MARK.FILESYSTEM } as const;

export const fanotifyReopener: LocalReopener<'fanotify'> = {
  at: 'local',
  open(_rc, e) {
    const fd = fanotifyInit(e.initFlags, e.eventFlags);
    try {
      // fdinfo lists the newest mark first: added oldest first, they list as they did.
      for (const m of [...e.marks].reverse()) {
        const base = FAN_MARK.ADD | TYPE_FLAG[m.type] | (m.mflags & FAN_MARK.EVICTABLE);
        if (m.mask !== 0) fanotifyMark(fd, { flags: base, mask: m.mask, path: m.path });
        if (m.ignored !== 0) {
          const how = m.mflags & FAN_MARK.IGNORE ? FAN_MARK.IGNORE : FAN_MARK.IGNORED_MASK;
          fanotifyMark(fd, { flags: base | how | (m.mflags & FAN_MARK.IGNORED_SURV_MODIFY), mask: m.ignored, path: m.path });
        }
      }
      const nonblock = (e.flags & O.NONBLOCK) !== 0;
      if (nonblock !== ((e.initFlags & FAN.NONBLOCK) !== 0)) fcntl(fd, F.SETFL, nonblock ? O.NONBLOCK : 0);
    } catch (err) {
      closeFd(fd);
      throw err;
    }
    return fd;
  },
};
