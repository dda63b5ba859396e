/**
 * Placing the kernel's own areas in the process being rebuilt. [vvar], [vvar_vclock]
 * and [vdso] must keep their relative layout (the vDSO finds its data pages at fixed
 * offsets below itself), so they move together, with one mremap of the whole span.
 */
import { CkptError } from '../../common/errors.js';
import { NR } from '../../sys/index.js';
import { readMaps, type MapEntry } from '../../proc/index.js';
import type { RemoteTask } from '../../infect/index.js';
import type { Vma } from './state.js';

const SPAN_KINDS = ['[vvar]', '[vvar_vclock]', '[vdso]'];
const KIND_OF: Record<string, string> = { vvar: '[vvar]', vvar_vclock: '[vvar_vclock]', vdso: '[vdso]' };

interface Span {
  start: bigint;
  end: bigint;
  parts: { name: string; off: bigint; size: bigint }[];
}

function spanOf(areas: { name: string; start: bigint; end: bigint }[]): Span | undefined {
  if (areas.length === 0) return undefined;
  const start = areas.reduce((m, a) => (a.start < m ? a.start : m), areas[0]!.start);
  const end = areas.reduce((m, a) => (a.end > m ? a.end : m), areas[0]!.end);
  const parts = areas.map((a) => ({ name: a.name, off: a.start - start, size: a.end - a.start })).sort((a, b) => Number(a.off - b.off));
  return { start, end, parts };
}

export function currentSpan(maps: MapEntry[]): Span | undefined {
  return spanOf(maps.filter((m) => SPAN_KINDS.includes(m.path)).map((m) => ({ name: m.path, start: m.start, end: m.end })));
}

export function savedSpan(vmas: Vma[]): Span | undefined {
  return spanOf(vmas.filter((v) => KIND_OF[v.kind]).map((v) => ({ name: KIND_OF[v.kind]!, start: v.start, end: v.end })));
}

function sameLayout(a: Span, b: Span): boolean {
  return a.parts.length === b.parts.length && a.parts.every((p, i) => p.name === b.parts[i]!.name && p.off === b.parts[i]!.off && p.size === b.parts[i]!.size);
}

const describe = (s: Span) => s.parts.map((p) => `${p.name}+0x${p.off.toString(16)}:0x${p.size.toString(16)}`).join(' ');

/**
 * Unmaps everything in the new process except the vDSO span and the page holding the
 * current injection site, then moves the vDSO span to where the dumped process had it.
 * The caller then injects from the vDSO and unmaps the old site's page.
 */
export function placeVdso(remote: RemoteTask, vmas: Vma[]): void {
  const pid = remote.tid;
  const maps = readMaps(pid);
  const cur = currentSpan(maps);
  const want = savedSpan(vmas);
  if (!cur) throw new CkptError('INTERNAL', `Cannot restore process ${pid}: the new process has no vDSO`);
  if (want && !sameLayout(cur, want)) {
    throw new CkptError('UNSUPPORTED', `Cannot restore process ${pid}: the vDSO layout of this kernel (${describe(cur)}) differs from the dumped one (${describe(want)})`);
  }
  for (const m of maps) {
    if (SPAN_KINDS.includes(m.path) || m.path === '[vsyscall]') continue;
    if (m.start <= remote.site && remote.site < m.end) continue;
    remote.call(NR.munmap, [m.start, m.end - m.start], 'munmap');
  }
  remote.dropScratch();
  if (!want) {
    remote.call(NR.munmap, [cur.start, cur.end - cur.start], 'munmap');
    return;
  }
  if (want.start === cur.start) return;
  const len = cur.end - cur.start;
  const MREMAP_MAYMOVE_FIXED = 3;
  const overlaps = want.start < cur.end && cur.start < want.end;
  let from = cur.start;
  if (overlaps) {
    // mremap refuses overlapping source and destination: go through a free spot.
    const tmp = BigInt.asUintN(64, remote.call(NR.mmap, [0, len, 0, 0x22, -1, 0], 'mmap'));
    remote.call(NR.mremap, [from, len, len, MREMAP_MAYMOVE_FIXED, tmp], 'mremap(vdso)');
    from = tmp;
  }
  remote.call(NR.mremap, [from, len, len, MREMAP_MAYMOVE_FIXED, want.start], 'mremap(vdso)');
}

/** A free hole of `size` bytes, outside every saved area and every area the new process has now. */
export function findHole(pid: number, args: { vmas: Vma[]; size: bigint }): bigint {
  const busy = [...args.vmas.map((v) => [v.start, v.end] as const), ...readMaps(pid).map((m) => [m.start, m.end] as const)];
  const gap = 1n << 20n;
  for (let addr = 0x100000000n; addr < 0x7f0000000000n; addr += 0x40000000n) {
    const lo = addr - gap;
    const hi = addr + args.size + gap;
    if (busy.every(([s, e]) => e <= lo || s >= hi)) return addr;
  }
  throw new CkptError('INTERNAL', `Cannot restore process ${pid}: no free address range for scratch memory`);
}
