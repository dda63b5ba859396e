/**
 * Shared memory objects (shmem inodes): anonymous shared memory, memfds and SysV
 * segments. At dump each object is opened through /proc/PID/map_files (or /proc/PID/fd)
 * and its data pages (SEEK_DATA/SEEK_HOLE) saved once per dump in page file
 * `<kind>-<ino>`, keyed by object offset, so pages no process maps are kept too.
 *
 * At restore the restorer makes the object once per tree restore (`objectLocalFd`),
 * fills it with pwrite, and keeps its fd in ctx.shared under `<kind>:<ino>`; every
 * process then maps that one object, so writes by one are seen by the others.
 */
import { closeSync, fchmodSync, fchownSync, fstatSync, ftruncateSync, openSync, readlinkSync, readSync, statSync, writeSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { addressOf, NR, rawSyscall, SysError } from '../../sys/index.js';
import type { SmapsEntry } from '../../proc/index.js';
import { forEachFdLink } from '../sharing/descriptions.js';
import type { DumpContext, RestoreContext } from '../types.js';
import type { ShmemObject } from './state.js';
import { createSysvSegment, readSysvSegment } from './sysv.js';
import { UNIT_BYTES, unitBuffer } from './split.js';

const PAGE = 4096;
/** Object pages go through the page copy's one buffer (split.ts: a fresh one costs a fault per page here). */
const CHUNK = UNIT_BYTES;
const SEEK_DATA = 3;
const SEEK_HOLE = 4;
const F_ADD_SEALS = 1033;
const F_GET_SEALS = 1034;
const F_SEAL_FUTURE_WRITE = 0x10;
const F_SEAL_EXEC = 0x20;
const MFD = { CLOEXEC: 1, ALLOW_SEALING: 2, NOEXEC_SEAL: 8, EXEC: 0x10 } as const;
const ENXIO = 6;
const SYSV_PATH = /^\/SYSV[0-9a-f]{8}$/;

export type ShmemKind = ShmemObject['kind'];

/** The kind of shared memory object behind an smaps area, or undefined for anything else. */
export function shmemKindOf(e: Pick<SmapsEntry, 'path' | 'deleted'>): { kind: ShmemKind; name?: string } | undefined {
  if (e.path.startsWith('[anon_shmem:')) return { kind: 'shmem', name: e.path.slice(12, -1) };
  if (!e.deleted) return undefined;
  if (e.path === '/dev/zero') return { kind: 'shmem' };
  if (e.path.startsWith('/memfd:')) return { kind: 'memfd', name: e.path.slice(7) };
  if (SYSV_PATH.test(e.path)) return { kind: 'sysv' };
  // Any other file mapped after its last name went (a POSIX semaphore in /dev/shm, a
  // replaced library): its contents can only come from the image; it comes back as a
  // memfd named after it.
  if (e.path.startsWith('/')) return { kind: 'memfd', name: e.path.slice(e.path.lastIndexOf('/') + 1) };
  return undefined;
}

/** ctx.shared key and page file id of an object. */
export const sharedKey = (o: Pick<ShmemObject, 'kind' | 'ino'>) => `${o.kind}:${o.ino}`;
const pagesId = (kind: ShmemKind, ino: number) => `${kind}-${ino}`;

function lseek(fd: number, off: number, whence: number): number {
  const r = rawSyscall(NR.lseek, [fd, off, whence]);
  if (r.ret === -1n) {
    if (r.errno === ENXIO) return -1;
    throw new SysError('lseek', r.errno);
  }
  return Number(r.ret);
}

/** The data ranges of the object open at `fd` (size bytes), page-aligned (the last one may end past the size). */
export function dataRanges(fd: number, size: number): { offset: number; len: number }[] {
  const out: { offset: number; len: number }[] = [];
  let pos = 0;
  while (pos < size) {
    const data = lseek(fd, pos, SEEK_DATA);
    if (data < 0 || data >= size) break;
    const hole = Math.min(size, lseek(fd, data, SEEK_HOLE));
    const at = data - (data % PAGE);
    const end = Math.ceil(hole / PAGE) * PAGE;
    out.push({ offset: at, len: end - at });
    pos = end;
  }
  return out;
}

/** Appends every data range of the object open at `fd` (size bytes) to `sink`, page-aligned. */
export function copyObjectPages(fd: number, size: number, sink: { append(offset: bigint, data: Uint8Array): void }): void {
  const buf = unitBuffer();
  for (const r of dataRanges(fd, size)) {
    for (let at = r.offset; at < r.offset + r.len;) {
      const len = Math.min(CHUNK, r.offset + r.len - at);
      const n = readSync(fd, buf, 0, len, at);
      buf.fill(0, n, len); // the tail of the last page, past the object's size
      sink.append(BigInt(at), buf.subarray(0, len));
      at += len;
    }
  }
}

/**
 * Describes the object open at `fd` (opened by the caller through /proc) and saves its
 * pages unless this dump already did. `ino` is what /proc showed, checked against fstat.
 */
function saveObject(ctx: DumpContext, args: { fd: number; kind: ShmemKind; name?: string; via: string }): ShmemObject {
  const { fd, kind } = args;
  const st = fstatSync(fd);
  const ino = st.ino;
  const obj: ShmemObject = { kind, ino, size: st.size, pages: pagesId(kind, ino) };
  if (args.name !== undefined) obj.name = args.name;
  if (kind === 'memfd') {
    const r = rawSyscall(NR.fcntl, [fd, F_GET_SEALS, 0]);
    obj.seals = r.ret === -1n ? 0 : Number(r.ret);
    Object.assign(obj, { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
  }
  if (kind === 'sysv') obj.sysv = readSysvSegment(ctx.pid, ino);
  if (!ctx.pages) throw new CkptError('UNSUPPORTED', `Cannot dump process ${ctx.pid}: ${args.via} is shared memory and this dump cannot save object pages`);
  const sink = ctx.pages(obj.pages);
  if (sink) {
    // A tree dump copies big objects beside its other work (object-copy.ts).
    if (sink.copyLater) sink.copyLater(fd, dataRanges(fd, obj.size));
    else copyObjectPages(fd, obj.size, sink);
    sink.close();
  }
  return obj;
}

function openVia(ctx: DumpContext, via: string): number {
  try {
    return openSync(via, 'r');
  } catch (e) {
    throw new CkptError('UNSUPPORTED', `Cannot dump process ${ctx.pid}: cannot open shared memory object ${via}: ${(e as Error).message}`);
  }
}

/**
 * A deleted file mapped (shared or private) comes back as a memfd with its contents; one the tree
 * also holds open as an fd would come back as two files (the fd's is recreated by the
 * files side), and a write through the fd would no longer show in the mapping. Refused.
 */
function refuseAlsoOpen(ctx: DumpContext, args: { e: SmapsEntry; via: string }): void {
  const { e } = args;
  let ino: number;
  let dev: number;
  try {
    ({ ino, dev } = statSync(args.via));
  } catch {
    return; // saveObject says why it cannot be read
  }
  const link = `${e.path} (deleted)`;
  let holder: { pid: number; fd: number } | undefined;
  forEachFdLink(ctx.treeDescriptions?.keys() ?? [ctx.pid], ({ pid, fd, link: l }) => {
    if (holder || l !== link) return;
    try {
      const st = statSync(`/proc/${pid}/fd/${fd}`);
      if (st.ino === ino && st.dev === dev) holder = { pid, fd };
    } catch {
      // closed meanwhile: the processes are stopped, so not by them
    }
  });
  if (holder) {
    throw new CkptError('UNSUPPORTED', `Cannot dump process ${ctx.pid}: the deleted file ${e.path} is mapped${e.shared ? ' shared' : ''} at 0x${e.start.toString(16)} and open as fd ${holder.fd} of process ${holder.pid}; a file both mapped and open after its name went is not supported yet`);
  }
}

/** The shared memory objects one process uses, each described (and saved) once. */
export class ShmemTable {
  readonly objects: ShmemObject[] = [];
  private index = new Map<string, number>();
  constructor(private ctx: DumpContext) {}

  /** Index of the object behind smaps area `e` (of kind `k`). */
  addArea(e: SmapsEntry, k: { kind: ShmemKind; name?: string }): number {
    const i = this.objectIndex(e, k);
    const seals = this.objects[i]!.seals ?? 0;
    // A writable shared mapping made before F_SEAL_FUTURE_WRITE keeps writing; the restore
    // seals the memfd when it makes it, and the kernel then refuses that mapping (EPERM).
    if (e.shared && e.prot.write && (seals & F_SEAL_FUTURE_WRITE) !== 0) {
      throw new CkptError(
        'UNSUPPORTED',
        `Cannot dump process ${this.ctx.pid}: its writable shared mapping at 0x${e.start.toString(16)} of memfd ${e.path} was made before F_SEAL_FUTURE_WRITE, which forbids making it again`,
      );
    }
    return i;
  }

  private objectIndex(e: SmapsEntry, k: { kind: ShmemKind; name?: string }): number {
    const key = `${k.kind}:${e.inode}`;
    const known = this.index.get(key);
    if (known !== undefined) return known;
    const treeKey = `${k.kind}:${e.dev.major}:${e.dev.minor}:${e.inode}`;
    const seen = this.ctx.shmemObjects?.get(treeKey);
    if (seen) {
      // Described (and checked, and saved) for another process of the tree.
      this.objects.push(seen);
      this.index.set(key, this.objects.length - 1);
      return this.objects.length - 1;
    }
    const via = `/proc/${this.ctx.pid}/map_files/${e.start.toString(16)}-${e.end.toString(16)}`;
    if (k.kind === 'memfd' && !e.path.startsWith('/memfd:')) refuseAlsoOpen(this.ctx, { e, via });
    const fd = openVia(this.ctx, via);
    try {
      // [anon_shmem:x] names the area, not the object.
      const obj = saveObject(this.ctx, { fd, kind: k.kind, name: k.kind === 'memfd' ? k.name : undefined, via });
      if (obj.ino !== e.inode) throw new CkptError('INTERNAL', `Cannot dump process ${this.ctx.pid}: ${via} is inode ${obj.ino}, maps says ${e.inode}`);
      this.objects.push(obj);
      this.ctx.shmemObjects?.set(treeKey, obj);
    } finally {
      closeSync(fd);
    }
    this.index.set(key, this.objects.length - 1);
    return this.objects.length - 1;
  }
}

/**
 * For the files side: describes the memfd open as fd `fd` of the dumped process and
 * saves its contents (once per dump). Keep the result in the fd's state and hand it
 * to memfdLocalFd at restore.
 */
export function dumpMemfdFd(ctx: DumpContext, fd: number): ShmemObject {
  const via = `/proc/${ctx.pid}/fd/${fd}`;
  const link = readlinkSync(via);
  const m = /^\/memfd:(.*) \(deleted\)$/.exec(link);
  if (!m) throw new CkptError('INTERNAL', `Cannot dump fd ${fd} of process ${ctx.pid}: ${link} is not a memfd`);
  const local = openVia(ctx, via);
  try {
    return saveObject(ctx, { fd: local, kind: 'memfd', name: m[1]!, via });
  } finally {
    closeSync(local);
  }
}

// ---- restore ----

function memfdCreate(name: string, flags: number): number {
  const nameBuf = Buffer.from(`${name}\0`);
  const r = rawSyscall(NR.memfd_create, [addressOf(nameBuf), flags]);
  if (r.ret === -1n) throw new SysError(`memfd_create(${name})`, r.errno);
  return Number(r.ret);
}

/** A new anonymous shmem object ("/dev/zero (deleted)") of `size` bytes, as a local fd. */
function createAnonShmem(size: number): number {
  const len = Math.max(PAGE, Math.ceil(size / PAGE) * PAGE);
  // MAP_SHARED|MAP_ANONYMOUS in the restorer, reopened through map_files, unmapped again.
  const r = rawSyscall(NR.mmap, [0, len, 0, 0x21, -1, 0]);
  if (r.ret === -1n || r.ret < 0n) return memfdCreate('dev/zero', MFD.CLOEXEC);
  const addr = BigInt.asUintN(64, r.ret);
  try {
    return openSync(`/proc/self/map_files/${addr.toString(16)}-${(addr + BigInt(len)).toString(16)}`, 'r+');
  } catch {
    return memfdCreate('dev/zero', MFD.CLOEXEC);
  } finally {
    rawSyscall(NR.munmap, [addr, len]);
  }
}

function createMemfd(obj: ShmemObject): number {
  const name = obj.name ?? '';
  const sealExec = ((obj.seals ?? 0) & F_SEAL_EXEC) !== 0;
  const flags = MFD.CLOEXEC | MFD.ALLOW_SEALING | (sealExec ? MFD.NOEXEC_SEAL : MFD.EXEC);
  try {
    return memfdCreate(name, flags);
  } catch {
    return memfdCreate(name, MFD.CLOEXEC | MFD.ALLOW_SEALING); // kernels before MFD_EXEC
  }
}

/** A memfd's saved owner and permission bits (a new one is ours, 0777 or 0666). */
function setOwnerAndMode(fd: number, obj: ShmemObject): void {
  const st = fstatSync(fd);
  if (obj.uid !== undefined && obj.gid !== undefined && (st.uid !== obj.uid || st.gid !== obj.gid)) fchownSync(fd, obj.uid, obj.gid);
  // After chown, which clears set-id bits.
  if (obj.mode !== undefined && (st.mode & 0o7777) !== obj.mode) fchmodSync(fd, obj.mode);
}

/** Writes the object's saved pages into the local fd at their object offsets (holes stay holes). */
export function fillObject(ctx: RestoreContext, fd: number, obj: Pick<ShmemObject, 'pages' | 'size'>): void {
  if (!ctx.pages) throw new CkptError('INTERNAL', `Cannot restore process ${ctx.pid}: no access to object page files`);
  const src = ctx.pages(obj.pages);
  if (src.runs.length === 0) return;
  const pf = openSync(src.path, 'r');
  const buf = unitBuffer();
  try {
    for (const run of src.runs) {
      const bytes = run.nrPages * PAGE;
      if (run.vaddr + BigInt(bytes) > BigInt(Math.ceil(obj.size / PAGE) * PAGE)) {
        throw new CkptError('BAD_IMAGE', `Cannot restore process ${ctx.pid}: ${src.path} has pages past the end of its object (${obj.size} bytes)`);
      }
      for (let done = 0; done < bytes; ) {
        const len = Math.min(CHUNK, bytes - done);
        const n = readSync(pf, buf, 0, len, Number(run.fileOffset) + done);
        if (n !== len) throw new CkptError('BAD_IMAGE', `Cannot restore process ${ctx.pid}: ${src.path} is truncated`);
        const at = Number(run.vaddr) + done;
        // Never past the object's size: that would grow it (or fail on a sealed memfd).
        const keep = Math.min(len, obj.size - at);
        if (keep > 0) writeSync(fd, buf, 0, keep, at);
        done += len;
      }
    }
  } finally {
    closeSync(pf);
  }
}

/**
 * The restorer-local fd of saved object `obj`, made (created, sized, filled, sealed)
 * by the first process of the restore that needs it and kept in ctx.shared.
 */
export function objectLocalFd(ctx: RestoreContext, obj: ShmemObject): number {
  const key = sharedKey(obj);
  const known = ctx.shared.get(key);
  if (known !== undefined) return known;
  let fd: number;
  let fill = true;
  if (obj.kind === 'sysv') {
    if (!obj.sysv) throw new CkptError('BAD_IMAGE', `Cannot restore process ${ctx.pid}: SysV segment ${obj.ino} has no attributes`);
    ({ fd, fill } = createSysvSegment(ctx, obj.sysv, obj.size));
  } else {
    fd = obj.kind === 'memfd' ? createMemfd(obj) : createAnonShmem(obj.size);
    if (fstatSync(fd).size !== obj.size) ftruncateSync(fd, obj.size);
  }
  try {
    // A SysV segment kept as it was holds the saved contents already.
    if (fill) fillObject(ctx, fd, obj);
    // Before the seals: F_SEAL_EXEC forbids changing the exec bits.
    if (obj.kind === 'memfd') setOwnerAndMode(fd, obj);
    const seals = (obj.seals ?? 0) & ~F_SEAL_EXEC;
    if (obj.kind === 'memfd' && seals !== 0) {
      const r = rawSyscall(NR.fcntl, [fd, F_ADD_SEALS, seals]);
      if (r.ret === -1n) throw new SysError(`fcntl(F_ADD_SEALS) on memfd ${obj.name}`, r.errno);
    }
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  ctx.shared.set(key, fd);
  return fd;
}

/**
 * For the files side: the restorer-local fd of a memfd saved with dumpMemfdFd (or by a
 * mapping), the same object for every fd and mapping of it in the restored tree.
 * Install it with installLocalFd; the key in ctx.shared is `memfd:<ino>`.
 */
export function memfdLocalFd(ctx: RestoreContext, obj: ShmemObject): number {
  if (obj.kind !== 'memfd') throw new CkptError('BAD_IMAGE', `Cannot restore process ${ctx.pid}: object ${obj.ino} is not a memfd`);
  return objectLocalFd(ctx, obj);
}
