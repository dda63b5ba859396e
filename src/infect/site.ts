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
  const out: ExecArea[] = readMaps(pid, { exec: true });
  // The vDSO first: it is small and always has one; then the rest in address order.
  return out.sort((a, b) => Number(b.path === '[vdso]') - Number(a.path === '[vdso]'));
}

export function findSyscallSite(pid: number): bigint {
  // The vDSO alone first (one line parsed): a process may have thousands of executable areas.
  const site = siteIn(pid, readMaps(pid, { path: '[vdso]', exec: true })) ?? siteIn(pid, execAreas(pid).filter((a) => a.path !== '[vdso]'));
  if (site !== undefined) return site;
  throw new CkptError('UNSUPPORTED', `Cannot inject into process ${pid}: no syscall instruction in its executable mappings`);
}

function siteIn(pid: number, areas: readonly ExecArea[]): bigint | undefined {
  for (const area of areas) {
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
  return undefined;
}

/**
 * Where an `rt_sigreturn` gadget (`mov $15, %eax; syscall`) is in the target's code,
 * e.g. libc's __restore_rt; undefined if no executable mapping has one.
 */
export function findSigreturnGadget(pid: number): bigint | undefined {
  return findGadget(pid, SIGRETURN_GADGETS);
}

/** Per list of gadgets, the area and offset of the last one found: processes of a tree (and the next dump) share their libc. */
const lastFound = new Map<string, { path: string; size: bigint; offset: bigint }>();
/** One read buffer for every search: a fresh 1 MiB costs its page faults each time (~6 ms a process here). */
let chunkBuf: Buffer | undefined;
const CHUNK = 1 << 20;
/**
 * The first read of an area is this small, and each next one twice the last (up to
 * CHUNK): libc's gadgets are in its first few hundred KiB (__restore_rt ~90 KiB in,
 * a `syscall; ret` ~400 KiB in), and a CLI run, which searches once, then copies and
 * faults in ~0.5 MiB instead of 2 MiB (~2 ms of a small dump).
 */
const FIRST_CHUNK = 64 << 10;

/** Whether one of `gadgets` starts at `addr` in the target. */
function gadgetAt(pid: number, args: { addr: bigint; gadgets: readonly Buffer[] }): boolean {
  const buf = Buffer.alloc(16);
  let n: number;
  try {
    n = vmRead(pid, buf, [{ base: args.addr, len: 16 }]);
  } catch {
    return false;
  }
  return args.gadgets.some((g) => g.length <= n && buf.subarray(0, g.length).equals(g));
}

/** Where one of `gadgets` (byte strings of at most 16 bytes) is in the target's code, libc first. */
export function findGadget(pid: number, gadgets: readonly Buffer[]): bigint | undefined {
  // libc's __restore_rt is the usual find: libc first, then other files (a large
  // executable such as node's last among them), then anonymous code. One buffer for all
  // reads: a JIT or a loader may have thousands of small executable areas, so the
  // files' areas are listed alone first (PROCMAP_QUERY walks only those).
  // Where the last search found one, if this process maps the same file's code alike
  // (the bytes decide, not the guess: they are read back).
  const key = gadgets.map((g) => g.toString('hex')).join(' ');
  const last = lastFound.get(key);
  const same = last && readMaps(pid, { path: last.path, exec: true }).find((a) => a.end - a.start === last.size);
  if (last && same && gadgetAt(pid, { addr: same.start + last.offset, gadgets })) return same.start + last.offset;
  const rank = (a: ExecArea) => (/\/libc[.-]/.test(a.path) ? 0 : 1);
  const files = readMaps(pid, { exec: true, files: true }).filter((a) => a.path.startsWith('/')).sort((a, b) => rank(a) - rank(b));
  const found = gadgetIn(pid, { areas: files, gadgets, key });
  if (found !== undefined) return found;
  const searched = new Set(files.map((a) => a.start));
  return gadgetIn(pid, { areas: execAreas(pid).filter((a) => !searched.has(a.start)), gadgets, key });
}

function gadgetIn(pid: number, args: { areas: readonly ExecArea[]; gadgets: readonly Buffer[]; key: string }): bigint | undefined {
  const buf = (chunkBuf ??= Buffer.allocUnsafeSlow(CHUNK + 16));
  for (const area of args.areas) {
    if (area.path === '[vsyscall]') continue;
    // Chunks overlap by 16 bytes so that no gadget is cut in two.
    for (let at = area.start, chunk = FIRST_CHUNK; at < area.end; at += BigInt(chunk), chunk = Math.min(chunk * 2, CHUNK)) {
      const len = Number(area.end - at < BigInt(chunk + 16) ? area.end - at : BigInt(chunk + 16));
      let n: number;
      try {
        n = vmRead(pid, buf, [{ base: at, len }]);
      } catch {
        break;
      }
      for (const g of args.gadgets) {
        const i = buf.subarray(0, n).indexOf(g);
        if (i >= 0) {
          const addr = at + BigInt(i);
          if (area.path.startsWith('/')) lastFound.set(args.key, { path: area.path, size: area.end - area.start, offset: addr - area.start });
          return addr;
        }
      }
    }
  }
  return undefined;
}
