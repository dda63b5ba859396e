/**
 * A big page copy shared between the target and ckpt, so that two CPUs copy at once.
 * The target's own thread runs one injected syscall at a time (pwritev of its memory
 * into the page file at dump, preadv of the page file into its memory at restore) on
 * units taken from the front of the list, while ckpt copies units from the back
 * (process_vm_readv/writev). Each side takes its next unit when it is free, so the
 * split follows whichever is faster on a machine whose load changes by the second.
 */
import { checkInterrupted, type RemoteTask } from '../../infect/index.js';

/** Pages at `vaddr` in the target, at `fileOffset` in the page file. */
export interface Segment {
  vaddr: bigint;
  len: number;
  fileOffset: number;
  /** At dump: read through /proc/PID/mem by ckpt (see copy.ts). */
  viaMem?: boolean;
}

/** A piece of the copy: segments that follow each other in the file. */
export interface Unit {
  segs: Segment[];
  bytes: number;
  fileStart: number;
  fileEnd: number;
  /** The target can copy it itself (e.g. at dump, its pages are readable). */
  remoteOk: boolean;
}

/** Bytes per unit: small enough that the last units balance the two sides. */
export const UNIT_BYTES = 2 * 1024 * 1024;
/** Units per injected call: one call costs two ptrace stops, so the target takes several. */
const UNITS_PER_CALL = 16;
/** IOV_MAX: segments per injected pwritev/preadv. */
export const MAX_IOV = 1024;

/**
 * Cuts segments (ascending in the file) into units of at most UNIT_BYTES and MAX_IOV
 * segments; `remoteOk` says whether the target may copy a segment.
 */
export function unitsOf(segs: readonly (Segment & { remoteOk: boolean })[]): Unit[] {
  const units: Unit[] = [];
  let cur: Unit | undefined;
  for (const s of segs) {
    let off = 0;
    while (off < s.len) {
      const contiguous = cur !== undefined && cur.fileEnd === s.fileOffset + off;
      if (!cur || !contiguous || cur.bytes >= UNIT_BYTES || cur.segs.length >= MAX_IOV || cur.remoteOk !== s.remoteOk) {
        cur = { segs: [], bytes: 0, fileStart: s.fileOffset + off, fileEnd: s.fileOffset + off, remoteOk: s.remoteOk };
        units.push(cur);
      }
      const len = Math.min(s.len - off, UNIT_BYTES - cur.bytes);
      cur.segs.push({ vaddr: s.vaddr + BigInt(off), len, fileOffset: s.fileOffset + off, viaMem: s.viaMem });
      cur.bytes += len;
      cur.fileEnd += len;
      off += len;
    }
  }
  return units;
}

/** The segments of consecutive units as one iovec array (vaddr, len), for an injected call. */
export function iovecsOf(units: readonly Unit[]): { iov: Buffer; count: number } {
  const count = units.reduce((n, u) => n + u.segs.length, 0);
  const iov = Buffer.alloc(count * 16);
  let i = 0;
  for (const u of units) {
    for (const s of u.segs) {
      iov.writeBigUInt64LE(s.vaddr, i * 16);
      iov.writeBigUInt64LE(BigInt(s.len), i * 16 + 8);
      i++;
    }
  }
  return { iov, count };
}

export interface SharedCopy {
  units: readonly Unit[];
  remote: RemoteTask;
  /** Begins the target's call for `units` (file-contiguous, MAX_IOV segments at most) with remote.begin(). */
  begin(units: readonly Unit[]): void;
  /** Copies one unit in ckpt; throws if it cannot. */
  local(unit: Unit): void;
  onBytes?: (n: number) => void;
}

/**
 * Runs the copy on both sides until every unit is done. Whatever the target's call did
 * not do (a short or failed call: a guard page, say) ckpt does itself, so the target's
 * side only ever saves time; errors come from ckpt's side, with ckpt's messages.
 */
export function shareCopy(args: SharedCopy): { byTarget: number } {
  const { units, remote } = args;
  let byTarget = 0;
  let lo = 0;
  let hi = units.length - 1;
  let active: Unit[] | undefined;
  const done = (u: Unit) => args.onBytes?.(u.bytes);
  const settle = (result: bigint) => {
    let left = result > 0n ? Number(result) : 0;
    for (const u of active!) {
      if (left < u.bytes) args.local(u);
      else byTarget += u.bytes;
      left = Math.max(0, left - u.bytes);
      done(u);
    }
    active = undefined;
  };
  const claim = () => {
    // Units the target cannot copy wait for no one: ckpt takes them at the front too.
    while (lo <= hi && !units[lo]!.remoteOk) {
      checkInterrupted();
      args.local(units[lo]!);
      done(units[lo++]!);
    }
    if (lo > hi) return;
    // Fewer units per call as the work runs out, so that neither side waits long for
    // the other at the end (guided scheduling).
    const most = Math.max(1, Math.min(UNITS_PER_CALL, Math.floor((hi - lo + 1) / 3)));
    const group = [units[lo++]!];
    let segs = group[0]!.segs.length;
    while (lo <= hi && group.length < most) {
      const u = units[lo]!;
      if (!u.remoteOk || u.fileStart !== group.at(-1)!.fileEnd || segs + u.segs.length > MAX_IOV) break;
      group.push(u);
      segs += u.segs.length;
      lo++;
    }
    args.begin(group);
    active = group;
  };
  try {
    while (lo <= hi || active) {
      // Between units: a pending call of the target is ended by the catch below.
      checkInterrupted();
      if (!active) {
        claim();
        continue;
      }
      if (lo <= hi) {
        const u = units[hi--]!;
        args.local(u);
        done(u);
        const r = remote.poll();
        if (r !== undefined) settle(r);
      } else {
        settle(remote.end());
      }
    }
    return { byTarget };
  } catch (e) {
    if (active) {
      try {
        remote.end();
      } catch {
        // the target is gone; the caller reports the first error
      }
    }
    throw e;
  }
}
