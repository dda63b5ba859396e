/**
 * Anonymous pipes and FIFOs. The data in a pipe's buffer belongs to the pipe object,
 * not to an fd: dump copies it once per object with tee() from a grabbed copy of an
 * end (the original keeps every byte), restore creates the object once for the whole
 * tree in the restorer (pipe2, or the FIFO opened O_RDWR), refills it, and registers
 * it in the shared table (`pipe:<ino>:r`/`:w`, `fifo:<dev>:<ino>`). Each open file
 * description is then a fresh open of /proc/self/fd/<object> with its saved flags,
 * handed to the target. A FIFO whose name was removed is recreated (mknod) under a
 * free name for the restorer to open, then removed again; one still linked elsewhere is
 * found by its file handle (handle.ts).
 */
import { constants, openSync } from 'node:fs';
import { closeFd, fcntl, F, FIONREAD, ioctlInt, isErrno, pipe2, readFd, tee, writeFd } from '../../../sys/index.js';
import { POLL, pollNow } from '../../../sys/inet.js';
import { grabFd } from '../../transfer.js';
import { isFifo, withoutDeletedSuffix, type FdFacts } from '../facts.js';
import { nameGone, recreateNode, removedNode } from '../nameless.js';
import { O } from '../flags.js';
import { loadPayload, savePayload } from '../objects.js';
import type { EntryOf, PipeObject } from '../schema.js';
import { dumpHandle, relinkHandle } from './handle.js';
import { dumpError, restoreError, savedPath, type KindDumpContext, type KindRestoreContext, type LocalReopener } from './kind.js';
import { lstatOrNull } from './regular.js';

const acc = (flags: number) => flags & O.ACCMODE;
const ends = (flags: number) => ({ read: acc(flags) !== O.WRONLY, write: acc(flags) !== O.RDONLY });

/**
 * The bytes in the buffer of the pipe behind local fd `fd`, without consuming them, and
 * where each read of them stopped: tee keeps a packet-mode buffer's mark (written
 * through an O_DIRECT end), and a read stops after such a buffer, so several reads mean packets.
 */
function peekPipe(fd: number, flags: number, capacity: number): { data: Buffer; reads: number[] } {
  // tee needs a readable end; a write-only copy is reopened for reading through /proc.
  const reader = ends(flags).read ? fd : openSync(`/proc/self/fd/${fd}`, O.RDONLY | O.NONBLOCK | O.CLOEXEC);
  const [r, w] = pipe2(O.NONBLOCK | O.CLOEXEC);
  try {
    fcntl(w, F.SETPIPE_SZ, capacity);
    let n = 0;
    try {
      n = tee(reader, w, capacity);
    } catch (e) {
      if (!isErrno(e, 'EAGAIN')) throw e; // empty
    }
    const out = Buffer.alloc(n);
    const reads: number[] = [];
    for (let got = 0; got < n; ) {
      const k = readFd(r, out.subarray(got));
      reads.push(k);
      got += k;
    }
    return { data: out, reads };
  } finally {
    closeFd(r);
    closeFd(w);
    if (reader !== fd) closeFd(reader);
  }
}

/**
 * Whether pipe `fd` is a watch queue (pipe2(O_NOTIFICATION_PIPE), CONFIG_WATCH_QUEUE): no
 * flag shows it, but F_SETPIPE_SZ answers EBUSY on one before it looks at its argument;
 * a size above 2^31 makes any other pipe answer EINVAL, so nothing is changed.
 */
function isNotificationPipe(fd: number): boolean {
  try {
    fcntl(fd, F.SETPIPE_SZ, 0x80000001);
  } catch (e) {
    return isErrno(e, 'EBUSY');
  }
  return false;
}

/** Saves the pipe object `id` (once per process) from fd `f`. */
function capturePipe(dc: KindDumpContext, f: FdFacts, id: string): void {
  dc.objects.noteEnd(id, ends(f.flags));
  if (dc.objects.pipes.has(id)) return;
  const local = grabFd(f.pid, f.fd);
  try {
    // Before peekPipe, which may open a reader of its own for a moment.
    const revents = pollNow(local, 0);
    const e = ends(f.flags);
    dc.objects.pipePeers.set(id, {
      readers: e.write ? (revents & POLL.ERR) === 0 : undefined,
      writers: e.read ? (revents & POLL.HUP) === 0 : undefined,
    });
    const capacity = fcntl(local, F.GETPIPE_SZ);
    if (isNotificationPipe(local)) {
      throw dumpError(f, { code: 'UNSUPPORTED', reason: `it is a notification pipe (O_NOTIFICATION_PIPE: key and device watches), which cannot be rebuilt (${f.link})` });
    }
    let peeked: { data: Buffer; reads: number[] };
    try {
      peeked = peekPipe(local, f.flags, capacity);
    } catch (e) {
      // A write-only end is reopened for reading through /proc: the pipe's owner (its creator) only.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EACCES' && code !== 'EPERM') throw e;
      throw dumpError(f, { code: 'PERMISSION', reason: `cannot read what ${f.link} holds: only its owner may open it for reading (${code})` });
    }
    const name = `fd-${f.pid}-${id.replace(/:/g, '-')}.pipe`;
    const obj: PipeObject = { id, capacity, data: savePayload(dc.ctx, name, peeked.data) };
    if (peeked.reads.length > 1) obj.packets = peeked.reads;
    dc.objects.pipes.set(id, obj);
  } finally {
    closeFd(local);
  }
}

export function pipeIno(link: string): number | undefined {
  const m = /^pipe:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

/**
 * Whether no process holds the other end of the pipe behind `f` (its writers are gone
 * for a read end, its readers for a write end): then nothing outside the tree is
 * attached to it, and it comes back as it is, its buffer with it (a pager's stdin once
 * the program that wrote it has exited).
 */
export function pipeOtherEndGone(f: FdFacts): boolean {
  const e = ends(f.flags);
  if (e.read === e.write) return false;
  const local = grabFd(f.pid, f.fd);
  try {
    return (pollNow(local, 0) & (e.read ? POLL.HUP : POLL.ERR)) !== 0;
  } finally {
    closeFd(local);
  }
}

export function dumpPipe(dc: KindDumpContext, f: FdFacts): EntryOf<'pipe'> {
  const ino = pipeIno(f.link);
  if (ino === undefined) throw dumpError(f, { code: 'UNSUPPORTED', reason: `cannot read the pipe inode from ${f.link}` });
  capturePipe(dc, f, `pipe:${ino}`);
  return { kind: 'pipe', fd: f.fd, flags: f.flags, ino };
}

export function dumpFifo(dc: KindDumpContext, f: FdFacts): EntryOf<'fifo'> {
  const gone = nameGone(f);
  const path = savedPath(f, gone ? withoutDeletedSuffix(f.link) : f.link);
  capturePipe(dc, f, `fifo:${f.stat.dev}:${f.stat.ino}`);
  const entry: EntryOf<'fifo'> = { kind: 'fifo', fd: f.fd, flags: f.flags, path, dev: f.stat.dev, ino: f.stat.ino };
  // No name left: a new FIFO; this name gone but others left: the same FIFO, by handle.
  if (gone && f.stat.nlink === 0) entry.deleted = removedNode(f);
  if (gone && f.stat.nlink > 0) entry.handle = dumpHandle(f);
  return entry;
}

/** The restorer's holder of a FIFO: its path opened O_RDWR, or a new FIFO if its name was removed. */
function openFifoHolder(rc: KindRestoreContext, e: EntryOf<'fifo'>): number {
  // O_RDWR never waits for a peer; holding both ends lets every later open go through at once.
  const flags = O.RDWR | O.NONBLOCK | O.CLOEXEC;
  if (e.handle) {
    const name = relinkHandle(rc, { ...e, handle: e.handle, type: constants.S_IFIFO });
    try {
      return openSync(name.path, flags);
    } finally {
      name.remove();
    }
  }
  if (e.deleted) {
    const what = `fd ${e.fd} of process ${rc.ctx.pid}`;
    const node = recreateNode(rc.ctx, { what, path: e.path, type: constants.S_IFIFO, attrs: e.deleted });
    try {
      return openSync(node.path, flags);
    } finally {
      node.finish();
    }
  }
  const st = lstatOrNull(e.path);
  if (!st) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} no longer exists` });
  if (!isFifo(st)) throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `${e.path} is no longer a named pipe` });
  return openSync(e.path, flags);
}

/** Flags for opening one more description of a pipe the restorer holds (never blocks: both ends are held). */
function descFlags(flags: number): number {
  return (flags & (O.ACCMODE | O.NONBLOCK)) | O.CLOEXEC;
}

function savedObject(rc: KindRestoreContext, e: { fd: number }, id: string): PipeObject {
  const obj = rc.pipes.get(id);
  if (!obj) throw restoreError(rc, { fd: e.fd, code: 'BAD_IMAGE', reason: `its pipe ${id} is not saved` });
  return obj;
}

/** Sets the capacity and writes the saved bytes into a new, empty pipe through its write end. */
function refill(rc: KindRestoreContext, args: { fd: number; obj: PipeObject; w: number }): void {
  const { obj, w } = args;
  const e = { fd: args.fd };
  const data = loadPayload(rc.ctx.blobs, obj.data);
  if (typeof data === 'string') throw restoreError(rc, { fd: e.fd, code: 'BAD_IMAGE', reason: `the data of ${obj.id} ${data}` });
  if (fcntl(w, F.GETPIPE_SZ) < obj.capacity) fcntl(w, F.SETPIPE_SZ, obj.capacity);
  if (!obj.packets) {
    for (let off = 0; off < data.length; ) off += writeFd(w, data.subarray(off));
    return;
  }
  if (obj.packets.reduce((a, b) => a + b, 0) !== data.length) {
    throw restoreError(rc, { fd: e.fd, code: 'BAD_IMAGE', reason: `the packets of ${obj.id} do not add up to its ${data.length} bytes` });
  }
  // One write through an O_DIRECT end is one packet (F_SETFL may set it on a pipe).
  const fl = fcntl(w, F.GETFL);
  fcntl(w, F.SETFL, fl | O.DIRECT);
  try {
    let off = 0;
    for (const size of obj.packets) {
      const n = writeFd(w, data.subarray(off, off + size));
      if (n !== size) throw restoreError(rc, { fd: e.fd, code: 'IO', reason: `cannot write a packet of ${size} bytes into ${obj.id} (wrote ${n})` });
      off += size;
    }
  } finally {
    fcntl(w, F.SETFL, fl);
  }
}

/**
 * One more description of a pipe the restorer holds. O_DIRECT (packet mode) cannot go
 * through open(2) on a pipe (EINVAL), but F_SETFL sets it.
 */
function reopenDesc(holder: number, flags: number): number {
  const fd = openSync(`/proc/self/fd/${holder}`, descFlags(flags));
  if (flags & O.DIRECT) fcntl(fd, F.SETFL, fcntl(fd, F.GETFL) | O.DIRECT);
  return fd;
}

export const pipeReopener: LocalReopener<'pipe'> = {
  at: 'local',
  open(rc, e) {
    const key = `pipe:${e.ino}`;
    let r = rc.ctx.shared.get(`${key}:r`);
    if (r === undefined) {
      const obj = savedObject(rc, e, key);
      const [pr, pw] = pipe2(O.NONBLOCK | O.CLOEXEC);
      rc.ctx.shared.set(`${key}:r`, pr);
      rc.ctx.shared.set(`${key}:w`, pw);
      refill(rc, { fd: e.fd, obj, w: pw });
      r = pr;
    }
    return reopenDesc(r, e.flags);
  },
};

export const fifoReopener: LocalReopener<'fifo'> = {
  at: 'local',
  open(rc, e) {
    const key = `fifo:${e.dev}:${e.ino}`;
    let holder = rc.ctx.shared.get(key);
    if (holder === undefined) {
      const obj = savedObject(rc, e, key);
      holder = openFifoHolder(rc, e);
      rc.ctx.shared.set(key, holder);
      const queued = ioctlInt(holder, FIONREAD);
      if (queued > 0) {
        // Someone outside kept the FIFO open: its buffer (with our data) outlived the dump.
        rc.ctx.warn(`fd ${e.fd} of process ${rc.ctx.pid}: ${e.path} still holds ${queued} bytes; its saved data is not written again`);
      } else {
        refill(rc, { fd: e.fd, obj, w: holder });
      }
    }
    return reopenDesc(holder, e.flags);
  },
};
