/**
 * Private areas that were never writable while mapped (VmFlags without `ac`, VM_ACCOUNT)
 * yet hold pages: written through /proc/PID/mem (a debugger, a JIT's guard page, a JVM's
 * PROT_NONE pages). Restore maps every other filled area writable to fill it, which
 * charges it to the commit limit and sets VM_ACCOUNT for good (mprotect back does not
 * clear it). These are mapped with their own protection instead, and ckpt writes their
 * pages through /proc/PID/mem as the program once did (FOLL_FORCE: a private copy).
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { openImage } from '../../images/index.js';
import type { Vma } from './state.js';

const PAGE = 4096n;

type Run = { vaddr: bigint; nrPages: number; fileOffset: bigint };

/** Filled areas whose pages go in through /proc/PID/mem (see the file comment). */
export function unaccounted(filled: ReadonlySet<Vma>): Set<Vma> {
  return new Set([...filled].filter((v) => !v.shared && !(v.prot & 2) && !v.flags.includes('ac') && !v.flags.includes('nr')));
}

/** Splits `runs` into the parts inside `areas` and the rest (a run may span adjacent areas). */
export function splitRuns<R extends Run>(runs: readonly R[], areas: Set<Vma>): { rest: R[]; inside: Run[] } {
  if (areas.size === 0) return { rest: [...runs], inside: [] };
  const sorted = [...areas].sort((a, b) => (a.start < b.start ? -1 : 1));
  const rest: R[] = [];
  const inside: Run[] = [];
  const piece = (run: R, from: bigint, to: bigint) => ({ ...run, vaddr: from, nrPages: Number((to - from) / PAGE), fileOffset: run.fileOffset + (from - run.vaddr) });
  for (const run of runs) {
    const end = run.vaddr + BigInt(run.nrPages) * PAGE;
    let at = run.vaddr;
    for (const v of sorted) {
      if (v.end <= at || v.start >= end) continue;
      if (v.start > at) rest.push(piece(run, at, v.start));
      const to = v.end < end ? v.end : end;
      inside.push(piece(run, v.start > at ? v.start : at, to));
      at = to;
    }
    if (at < end) rest.push(at === run.vaddr ? run : piece(run, at, end));
  }
  return { rest, inside };
}

/** Copies `runs` from the page file into the process through /proc/PID/mem. */
export function fillThroughMem(pid: number, args: { path: string; runs: readonly Run[] }): void {
  if (args.runs.length === 0) return;
  const file = openImage(args.path);
  let mem = -1;
  try {
    mem = openSync(`/proc/${pid}/mem`, 'r+');
    for (const run of args.runs) {
      const buf = Buffer.allocUnsafe(run.nrPages * Number(PAGE));
      const got = readSync(file, buf, 0, buf.length, Number(run.fileOffset));
      if (got !== buf.length) throw new CkptError('BAD_IMAGE', `Cannot restore process ${pid}: page image ${args.path} is truncated (read ${got} of ${buf.length} bytes at ${run.fileOffset})`);
      const put = writeSync(mem, buf, 0, buf.length, Number(run.vaddr)); // user addresses are below 2^47
      if (put !== buf.length) throw new CkptError('INTERNAL', `Cannot restore process ${pid}: wrote ${put} of ${buf.length} bytes of memory at 0x${run.vaddr.toString(16)}`);
    }
  } finally {
    if (mem >= 0) closeSync(mem);
    closeSync(file);
  }
}
