/**
 * NUMA memory policy: the thread's (set_mempolicy, per thread) and each memory area's
 * own (mbind). Both were reset to the default by a restore before.
 *
 * The thread's is read with an injected get_mempolicy (mode with its MPOL_F_* flags,
 * and the node mask: the one the program gave for MPOL_F_STATIC_NODES or
 * MPOL_F_RELATIVE_NODES, else the nodes in force). An area's own policy is read with
 * get_mempolicy(MPOL_F_ADDR) at its start (mbind splits an area where a policy starts
 * or ends, so one area has one policy), which answers the default for an area without
 * one. Which areas to ask: /proc/PID/numa_maps shows an area's own policy or else the
 * thread's, so with the default thread policy those it does not show as "default";
 * with another (a program started by numactl), every area. A shared memory object keeps its policy per
 * range of the object: read at the start of each area that maps it, which misses a
 * range given a policy through another mapping only (docs/saved-state.md).
 *
 * At restore, after the memory: mbind on each area, then set_mempolicy. A policy naming
 * nodes this host lacks (or a cpuset forbids) fails the restore, naming it. Every thread
 * sets its own, the default included: the leader would keep the blank's (ckpt's own,
 * inherited), and threads are cloned from the leader after this.
 *
 * Not shown by any interface and so not saved: the home node of an area
 * (set_mempolicy_home_node), and the interleave cursor (which node the next page goes to).
 */
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { zBig } from '../../images/index.js';
import { CkptError } from '../../common/errors.js';
import { parseNumaMapsPolicied, procPath, readMaps } from '../../proc/index.js';
import { readProcText } from '../../proc/procfs.js';
import { NR } from '../../sys/index.js';
import type { RemoteTask } from '../../infect/index.js';
import type { Resource } from '../types.js';
import { callIn, callsOut, type StructOut } from './inject.js';

/** Nodes the mask holds (MAX_NUMNODES with CONFIG_NODES_SHIFT=10, the largest x86_64 config). */
const MAX_NODES = 1024;
const MASK_BYTES = MAX_NODES / 8;
const MPOL_F_ADDR = 2;
const MPOL_DEFAULT = 0;
const MODE_FLAGS = (1 << 15) | (1 << 14) | (1 << 13); // MPOL_F_STATIC_NODES, _RELATIVE_NODES, _NUMA_BALANCING
const MODES = ['default', 'preferred', 'bind', 'interleave', 'local', 'preferred-many', 'weighted-interleave'];

const policySchema = z.object({
  /** MPOL_* mode with its MPOL_F_* mode flags, as get_mempolicy gives it. */
  mode: z.number().int().min(0).max(0xffff).refine((m) => (m & ~MODE_FLAGS) < MODES.length, 'unknown memory policy mode'),
  nodes: z.array(z.number().int().min(0).max(MAX_NODES - 1)).max(MAX_NODES),
});
type Policy = z.infer<typeof policySchema>;

export interface MempolicyState {
  /** The thread's own policy. */
  thread: Policy;
  /** Areas with a policy of their own (the leader's state only: they belong to the process). */
  areas?: (Policy & { start: bigint; end: bigint })[];
}

export const mempolicySchema: z.ZodType<MempolicyState> = z.object({
  thread: policySchema,
  areas: z.array(policySchema.extend({ start: zBig, end: zBig })).max(1 << 20).optional(),
});

/** get_mempolicy(&mode, mask, maxnode, addr, flags): the mode in the first 8 bytes, the mask after. */
const read = (addr: bigint, flags: number): StructOut => ({
  nr: NR.get_mempolicy,
  name: 'get_mempolicy',
  size: 8 + MASK_BYTES,
  args: (out) => [out, out + 8n, MAX_NODES + 1, addr, flags],
});

function decode(out: Buffer): Policy {
  const nodes: number[] = [];
  for (let i = 0; i < MAX_NODES; i++) if ((out[8 + (i >> 3)]! >> (i & 7)) & 1) nodes.push(i);
  return { mode: out.readInt32LE(0), nodes };
}

function encodeMask(nodes: readonly number[]): Buffer {
  const b = Buffer.alloc(MASK_BYTES);
  for (const n of nodes) b[n >> 3]! |= 1 << (n & 7);
  return b;
}

function describe(p: Policy): string {
  const name = MODES[p.mode & ~MODE_FLAGS] ?? String(p.mode);
  return p.nodes.length > 0 ? `${name} on nodes ${p.nodes.join(',')}` : name;
}

/** numa_maps exists only with CONFIG_NUMA, as do get_mempolicy and set_mempolicy. */
const NUMA = existsSync('/proc/self/numa_maps');

/** Start addresses of the areas that may have a policy of their own; none without CONFIG_NUMA. */
function policiedAreas(pid: number, opts: { all: boolean }): bigint[] {
  let text: string;
  try {
    text = readProcText(pid, 'numa_maps');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return [];
    throw e;
  }
  return parseNumaMapsPolicied(procPath(pid, 'numa_maps'), text, opts);
}

/** Runs `nr` with the policy's node mask in the target (`args` given its address); an error names `what`. */
function apply(remote: RemoteTask, c: { what: string; policy: Policy; nr: number; args: (mask: bigint) => (bigint | number)[] }): void {
  try {
    callIn(remote, { nr: c.nr, name: c.nr === NR.mbind ? 'mbind' : 'set_mempolicy', data: encodeMask(c.policy.nodes), args: c.args });
  } catch (e) {
    throw new CkptError('UNSUPPORTED', `Cannot restore ${c.what}: its memory policy (${describe(c.policy)}) cannot be set here: ${(e as Error).message}`, { cause: e });
  }
}

export const mempolicy: Resource<MempolicyState> = {
  name: 'mempolicy',
  schema: mempolicySchema,
  dump(ctx) {
    const r = ctx.remote;
    // Without CONFIG_NUMA get_mempolicy is ENOSYS and every policy is the default.
    if (!NUMA) return { thread: { mode: MPOL_DEFAULT, nodes: [] } };
    const state: MempolicyState = { thread: decode(callsOut(r, [read(0n, 0)])[0]!.out) };
    if (r.tid !== ctx.pid) return state;
    const starts = policiedAreas(ctx.pid, { all: state.thread.mode !== MPOL_DEFAULT });
    const outs = starts.length > 0 ? callsOut(r, starts.map((a) => read(a, MPOL_F_ADDR))) : [];
    state.areas = [];
    // One maps read for all of them: numa_maps names each area by its start.
    const ends = starts.length > 0 ? new Map(readMaps(ctx.pid).map((a) => [a.start, a])) : new Map();
    for (const [i, start] of starts.entries()) {
      const p = decode(outs[i]!.out);
      if (p.mode === MPOL_DEFAULT) continue;
      const area = ends.get(start);
      if (!area) throw new CkptError('INTERNAL', `Cannot dump process ${ctx.pid}: numa_maps shows an area at 0x${start.toString(16)} that maps does not`);
      state.areas.push({ start, end: area.end, ...p });
    }
    return state;
  },
  restore(ctx, s) {
    const r = ctx.remote;
    if (!NUMA && s.thread.mode === MPOL_DEFAULT && (s.areas ?? []).length === 0) return;
    for (const a of s.areas ?? []) {
      const what = `area 0x${a.start.toString(16)}-0x${a.end.toString(16)} of process ${ctx.pid}`;
      apply(r, { what, policy: a, nr: NR.mbind, args: (mask) => [a.start, a.end - a.start, a.mode, mask, MAX_NODES + 1, 0] });
    }
    // Always, the default too: a leader has the blank's policy (ckpt's, inherited: ckpt run
    // under numactl), a thread its leader's (it was cloned from it).
    apply(r, { what: `thread ${r.tid} of process ${ctx.pid}`, policy: s.thread, nr: NR.set_mempolicy, args: (mask) => [s.thread.mode, mask, MAX_NODES + 1] });
  },
};
