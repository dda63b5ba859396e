/** Probes of kernel interfaces that need no target process. */
import { accessSync, closeSync, constants, existsSync, openSync, readFileSync } from 'node:fs';
import { release } from 'node:os';
import { closeFd } from '../../sys/index.js';
import { PAGE_IS, pagemapScan, setsockoptInt, socket, UFFD, uffdioApi, userfaultfd } from '../../sys/ioctl.js';
import { CAP, effectiveCaps, hasCap } from './caps.js';
import type { Probe } from './types.js';

/** [major, minor] of the running kernel, e.g. "6.18.44-fc" → [6, 18]. */
export function kernelVersion(rel = release()): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function atLeast(v: [number, number], want: [number, number]): boolean {
  return v[0] > want[0] || (v[0] === want[0] && v[1] >= want[1]);
}

export const clone3Probe: Probe = {
  name: 'clone3_set_tid',
  required: true,
  disables: 'restoring processes with their original PIDs',
  run() {
    // Never call clone3 in Node itself: a child sharing nothing Node expects would crash.
    const v = kernelVersion();
    if (!atLeast(v, [5, 5])) throw new Error(`kernel ${release()} is older than 5.5 (no clone3 set_tid)`);
    const caps = effectiveCaps();
    const capOk = hasCap(caps, CAP.CHECKPOINT_RESTORE) || hasCap(caps, CAP.SYS_ADMIN);
    let lastPidWritable = false;
    try {
      accessSync('/proc/sys/kernel/ns_last_pid', constants.W_OK);
      lastPidWritable = true;
    } catch {
      // not writable: set_tid then depends on the capability alone
    }
    if (!capOk) throw new Error('neither CAP_CHECKPOINT_RESTORE nor CAP_SYS_ADMIN is in our effective set');
    return `kernel ${v.join('.')} has clone3 set_tid; capability present${lastPidWritable ? '; ns_last_pid writable' : ''}`;
  },
};

export const userfaultfdProbe: Probe = {
  name: 'userfaultfd',
  required: false,
  disables: 'incremental dumps (write-protect dirty tracking) and lazy restore',
  run() {
    const fd = userfaultfd(UFFD.USER_MODE_ONLY);
    try {
      const { features } = uffdioApi(fd);
      const has = (bit: number) => (features & BigInt(bit)) !== 0n;
      const wp = [
        has(UFFD.FEATURE_PAGEFAULT_FLAG_WP) && 'PAGEFAULT_FLAG_WP',
        has(UFFD.FEATURE_WP_ASYNC) && 'WP_ASYNC',
        has(UFFD.FEATURE_WP_UNPOPULATED) && 'WP_UNPOPULATED',
      ].filter(Boolean);
      if (!has(UFFD.FEATURE_WP_ASYNC)) throw new Error(`userfaultfd lacks UFFD_FEATURE_WP_ASYNC (has: ${wp.join(', ') || 'no write-protect'})`);
      return `userfaultfd with write-protect features: ${wp.join(', ')} (features 0x${features.toString(16)})`;
    } finally {
      closeFd(fd);
    }
  },
};

export const pagemapScanProbe: Probe = {
  name: 'pagemap_scan',
  required: false,
  disables: 'fast present/dirty page scans (incremental dumps)',
  run() {
    const maps = readFileSync('/proc/self/maps', 'utf8');
    const stack = maps.split('\n').find((l) => l.endsWith('[stack]'));
    if (!stack) throw new Error('no [stack] in /proc/self/maps to scan');
    const [lo, hi] = (stack.split(' ')[0] ?? '').split('-').map((h) => BigInt(`0x${h}`));
    const fd = openSync('/proc/self/pagemap', 'r');
    try {
      const r = pagemapScan(fd, { start: lo ?? 0n, end: hi ?? 0n, categoryMask: PAGE_IS.PRESENT, returnMask: PAGE_IS.PRESENT });
      return `PAGEMAP_SCAN found ${r.regions.length} present region(s) in our stack`;
    } finally {
      closeSync(fd);
    }
  },
};

const AF_INET = 2;
const SOCK_STREAM = 1;
const IPPROTO_TCP = 6;
const TCP_REPAIR = 19;

export const tcpRepairProbe: Probe = {
  name: 'tcp_repair',
  required: false,
  disables: 'checkpointing established TCP connections',
  run() {
    const fd = socket(AF_INET, SOCK_STREAM);
    try {
      setsockoptInt(fd, { level: IPPROTO_TCP, name: TCP_REPAIR, value: 1 });
      setsockoptInt(fd, { level: IPPROTO_TCP, name: TCP_REPAIR, value: 0 });
    } finally {
      closeFd(fd);
    }
    return 'setsockopt(TCP_REPAIR) on a TCP socket works';
  },
};

export const timeNsProbe: Probe = {
  name: 'time_ns',
  required: false,
  disables: 'restoring monotonic/boottime clocks on another host (time namespaces)',
  run() {
    if (!existsSync('/proc/self/ns/time')) throw new Error('/proc/self/ns/time is missing (kernel without CONFIG_TIME_NS or older than 5.6)');
    return 'time namespaces are available';
  },
};

export interface VdsoLayout {
  vdso: { start: bigint; size: bigint };
  /** Other vDSO-related areas, by name, with their offset from the vDSO's start. */
  around: { name: string; offset: bigint; size: bigint }[];
}

export function vdsoLayout(mapsText: string): VdsoLayout | undefined {
  const areas = new Map<string, { start: bigint; end: bigint }>();
  for (const line of mapsText.split('\n')) {
    const name = /\[(vvar|vvar_vclock|vdso)\]$/.exec(line)?.[1];
    if (!name) continue;
    const [s, e] = (line.split(' ')[0] ?? '').split('-');
    areas.set(name, { start: BigInt(`0x${s}`), end: BigInt(`0x${e}`) });
  }
  const v = areas.get('vdso');
  if (!v) return undefined;
  const around = [...areas].filter(([n]) => n !== 'vdso').map(([name, a]) => ({ name, offset: a.start - v.start, size: a.end - a.start }));
  return { vdso: { start: v.start, size: v.end - v.start }, around };
}

function hexOffset(n: bigint): string {
  return n < 0n ? `-0x${(-n).toString(16)}` : `+0x${n.toString(16)}`;
}

export const vdsoProbe: Probe = {
  name: 'vdso',
  required: false,
  disables: 'restoring processes that use the vDSO (clock_gettime) on this kernel',
  run() {
    const layout = vdsoLayout(readFileSync('/proc/self/maps', 'utf8'));
    if (!layout) throw new Error('no [vdso] in /proc/self/maps');
    const parts = layout.around.map((a) => `[${a.name}] at vdso${hexOffset(a.offset)} (${a.size / 1024n} KiB)`);
    return `[vdso] ${layout.vdso.size / 1024n} KiB; ${parts.join(', ') || 'no vvar areas'}`;
  },
};
