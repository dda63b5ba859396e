/**
 * Where to run an injected syscall: any `syscall` instruction (0f 05) already in an
 * executable mapping of the target. The CPU decodes from wherever rip points, so the
 * two bytes need not start an instruction in the original code. Using existing code
 * means nothing in the target is modified (no COW of text pages).
 */
import { CkptError } from '../common/errors.js';
import { readMaps } from '../proc/index.js';
import { vmRead } from '../sys/index.js';
import { SIGRETURN_GADGETS } from './frame.js';

interface ExecArea {
  start: bigint;
  end: bigint;
  path: string;
}

function execAreas(pid: number): ExecArea[] {
  const out: ExecArea[] = readMaps(pid).filter((m) => m.prot.read && m.prot.exec);
  // The vDSO first: it is small and always has one; then the rest in address order.
  return out.sort((a, b) => Number(b.path === '[vdso]') - Number(a.path === '[vdso]'));
}

export function findSyscallSite(pid: number): bigint {
  for (const area of execAreas(pid)) {
    if (area.path === '[vsyscall]') continue;
    const len = Math.min(Number(area.end - area.start), 1 << 20);
    const buf = Buffer.alloc(len);
    let n: number;
    try {
      n = vmRead(pid, buf, [{ base: area.start, len }]);
    } catch {
      continue;
    }
    for (let i = buf.indexOf(0x0f); i >= 0 && i + 1 < n; i = buf.indexOf(0x0f, i + 1)) {
      if (buf[i + 1] === 0x05) return area.start + BigInt(i);
    }
  }
  throw new CkptError('UNSUPPORTED', `Cannot inject into process ${pid}: no syscall instruction in its executable mappings`);
}

/**
 * Where an `rt_sigreturn` gadget (`mov $15, %eax; syscall`) is in the target's code,
 * e.g. libc's __restore_rt; undefined if no executable mapping has one.
 */
export function findSigreturnGadget(pid: number): bigint | undefined {
  return findGadget(pid, SIGRETURN_GADGETS);
}

/** Kept for every search: a fresh MiB costs a fault per page here (docs/performance.md, "Cold memory"). */
let gadgetBuf: Buffer | undefined;

/** Where one of `gadgets` (byte strings of at most 16 bytes) is in the target's code, libc first. */
export function findGadget(pid: number, gadgets: readonly Buffer[]): bigint | undefined {
  const CHUNK = 1 << 20;
  // libc's __restore_rt is the usual find: libc first, then other files (a large
  // executable such as node's last among them), then anonymous code. One buffer for all
  // reads: a JIT or a loader may have thousands of small executable areas.
  const rank = (a: ExecArea) => (/\/libc[.-]/.test(a.path) ? 0 : a.path.startsWith('/') ? 1 : 2);
  const areas = execAreas(pid).sort((a, b) => rank(a) - rank(b));
  gadgetBuf ??= Buffer.allocUnsafeSlow(CHUNK + 16);
  const buf = gadgetBuf;
  for (const area of areas) {
    if (area.path === '[vsyscall]') continue;
    // Chunks overlap by 16 bytes so that no gadget is cut in two.
    for (let at = area.start; at < area.end; at += BigInt(CHUNK)) {
      const len = Number(area.end - at < BigInt(CHUNK + 16) ? area.end - at : BigInt(CHUNK + 16));
      let n: number;
      try {
        n = vmRead(pid, buf, [{ base: at, len }]);
      } catch {
        break;
      }
      for (const g of gadgets) {
        const i = buf.subarray(0, n).indexOf(g);
        if (i >= 0) return at + BigInt(i);
      }
    }
  }
  return undefined;
}
