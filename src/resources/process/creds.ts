/**
 * Credentials: uids, gids, supplementary groups, capabilities, securebits (which
 * include keepcaps, bit SECBIT_KEEP_CAPS), no_new_privs and dumpable.
 *
 * Restore runs LAST in the orchestrator: once the process has its own uid and
 * capabilities, the restore can no longer do what needs privilege (chroot, prlimit,
 * PR_SET_MM …), and the blank process is the restorer's child, so up to this point it
 * has the restorer's privilege. Before touching anything, restore checks that the
 * image asks for no more privilege than the restorer has (privilege.ts).
 *
 * The order inside follows CRIU's restore_creds: groups first; SECBIT_NO_SETUID_FIXUP
 * so that changing uids does not drop capabilities; uids and gids; the saved
 * securebits; the bounding set (needs CAP_SETPCAP, still held); capset; ambient
 * capabilities (must be in permitted and inheritable); no_new_privs; dumpable last,
 * since a uid change resets it.
 *
 * Credentials are per thread in the kernel, and a raw setresuid/capset (as injected
 * here, without glibc's setxid broadcast) changes only the calling thread. The threads
 * are cloned from the leader long before this runs, with the restorer's credentials:
 * the orchestrator runs this restore in every thread (restoreCreds takes the thread's
 * RemoteTask). Dump refuses a process whose threads' credentials differ.
 */
import { z } from 'zod';
import { zBig } from '../../images/index.js';
import { listTasks, readStatus, readTaskStatus, type ProcStatus } from '../../proc/index.js';
import { CkptError } from '../../common/errors.js';
import { encodeCapset, NR, PR } from '../../sys/index.js';
import type { RemoteTask } from '../../infect/index.js';
import type { Resource } from '../types.js';
import { callIn, callsOut } from './inject.js';
import { capBit, checkPrivilege, type PrivilegeLimit } from './privilege.js';

const PR_GET_SECUREBITS = 27;
const PR_SET_SECUREBITS = 28;
const PR_CAPBSET_DROP = 24;
const PR_CAP_AMBIENT_RAISE = 2;
const PR_CAP_AMBIENT_CLEAR_ALL = 4;
const SECBIT_NO_SETUID_FIXUP = 1 << 2;
const LAST_CAP = 63;

type Quad = [number, number, number, number];

export interface CredsState {
  /** [real, effective, saved, filesystem] */
  uid: Quad;
  gid: Quad;
  groups: number[];
  caps: { inh: bigint; prm: bigint; eff: bigint; bnd: bigint; amb: bigint };
  /** PR_GET_SECUREBITS; bit 4 (SECBIT_KEEP_CAPS) is keepcaps. */
  securebits: number;
  noNewPrivs: boolean;
  /** PR_GET_DUMPABLE: 0, 1, or 2 (suid_dumpable). */
  dumpable: number;
}

const id = z.number().int().min(0).max(0xffffffff);
const quad = z.tuple([id, id, id, id]);
export const credsSchema: z.ZodType<CredsState> = z.object({
  uid: quad,
  gid: quad,
  groups: z.array(id),
  caps: z.object({ inh: zBig, prm: zBig, eff: zBig, bnd: zBig, amb: zBig }),
  securebits: z.number().int().min(0),
  noNewPrivs: z.boolean(),
  dumpable: z.number().int().min(0).max(2),
});

function prctl(remote: RemoteTask, args: (number | bigint)[], what: string): bigint {
  return remote.call(NR.prctl, args, `prctl(${what})`);
}

function sameSet(a: readonly number[], b: readonly number[]): boolean {
  const x = [...new Set(a)].sort((p, q) => p - q);
  const y = [...new Set(b)].sort((p, q) => p - q);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function sameIds(cur: ProcStatus, s: CredsState): boolean {
  return cur.uid.every((v, i) => v === s.uid[i]) && cur.gid.every((v, i) => v === s.gid[i]) && sameSet(cur.groups, s.groups);
}

/** Each call is skipped when it would change nothing, so an unprivileged restore of its own user's process works. */
function setIds(r: RemoteTask, cur: ProcStatus, s: CredsState): void {
  if (!sameSet(cur.groups, s.groups)) {
    const groups = Buffer.alloc(4 * s.groups.length);
    s.groups.forEach((g, i) => groups.writeUInt32LE(g, i * 4));
    callIn(r, { nr: NR.setgroups, name: 'setgroups', data: groups, args: (addr) => [s.groups.length, addr] });
  }
  if (!cur.gid.every((v, i) => v === s.gid[i])) {
    r.call(NR.setresgid, [s.gid[0], s.gid[1], s.gid[2]], 'setresgid');
    r.raw(NR.setfsgid, [s.gid[3]]); // returns the old fsgid, never an error
  }
  if (!cur.uid.every((v, i) => v === s.uid[i])) {
    r.call(NR.setresuid, [s.uid[0], s.uid[1], s.uid[2]], 'setresuid');
    r.raw(NR.setfsuid, [s.uid[3]]);
  }
}

function setCaps(r: RemoteTask, cur: ProcStatus, s: CredsState): void {
  for (let cap = 0; cap <= LAST_CAP; cap++) {
    if ((cur.capBnd & capBit(cap)) !== 0n && (s.caps.bnd & capBit(cap)) === 0n) prctl(r, [PR_CAPBSET_DROP, cap], `PR_CAPBSET_DROP ${cap}`);
  }
  if (cur.capEff !== s.caps.eff || cur.capPrm !== s.caps.prm || cur.capInh !== s.caps.inh) {
    const { header, data } = encodeCapset(s.caps);
    const addr = r.scratch(header.length + data.length);
    r.write(addr, Buffer.concat([header, data]));
    r.call(NR.capset, [addr, addr + BigInt(header.length)], 'capset');
  }
  if (cur.capAmb === s.caps.amb) return;
  prctl(r, [PR.CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0], 'PR_CAP_AMBIENT_CLEAR_ALL');
  for (let cap = 0; cap <= LAST_CAP; cap++) {
    if ((s.caps.amb & capBit(cap)) !== 0n) prctl(r, [PR.CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0], `PR_CAP_AMBIENT_RAISE ${cap}`);
  }
}

function setSecurebits(r: RemoteTask, bits: number): void {
  const cur = Number(prctl(r, [PR_GET_SECUREBITS], 'PR_GET_SECUREBITS'));
  if (cur !== bits) prctl(r, [PR_SET_SECUREBITS, bits], 'PR_SET_SECUREBITS');
}

/** The orchestrator may call this before building anything, to fail early; restore calls it again. */
export function checkCredsRestorable(pid: number, state: CredsState, limit?: PrivilegeLimit): void {
  checkPrivilege(state, { pid, limit });
  // The restored process inherits it from the restorer, and nothing clears it.
  if (!state.noNewPrivs && readStatus(process.pid).noNewPrivs) {
    throw new CkptError('PERMISSION', `Cannot restore process ${pid}: the restorer runs with no_new_privs, which the process did not have and could not drop`);
  }
}

function credsKey(st: ProcStatus): string {
  return JSON.stringify([st.uid, st.gid, [...st.groups].sort(), st.capInh, st.capPrm, st.capEff, st.capBnd, st.capAmb, st.noNewPrivs], (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** One set of credentials is saved per process: threads with their own (a raw setfsuid in one thread) are refused. */
function checkThreadsAlike(pid: number, leader: ProcStatus): void {
  const want = credsKey(leader);
  for (const tid of listTasks(pid)) {
    if (tid === pid) continue;
    let st: ProcStatus;
    try {
      st = readTaskStatus(pid, tid);
    } catch {
      continue; // exited while we looked: it has no credentials to lose
    }
    if (credsKey(st) !== want) throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: thread ${tid} has credentials other than the leader's (per-thread credentials are not saved)`);
  }
}

/** prctl(PR_SET_DUMPABLE) takes only 0 and 1: 2 (suid_dumpable after a uid change) cannot be given back. */
function dumpableOf(pid: number, v: bigint): number {
  if (v > 1n) throw new CkptError('UNSUPPORTED', `Cannot dump process ${pid}: its dumpable flag is ${v} (fs.suid_dumpable after a credential change), which prctl cannot set again`);
  return Number(v);
}

export const creds: Resource<CredsState> = {
  name: 'creds',
  schema: credsSchema,
  dump(ctx) {
    const st = readStatus(ctx.pid);
    checkThreadsAlike(ctx.pid, st);
    const [bits, dumpable] = callsOut(ctx.remote, [
      { nr: NR.prctl, name: 'prctl(PR_GET_SECUREBITS)', size: 0, args: () => [PR_GET_SECUREBITS] },
      { nr: NR.prctl, name: 'prctl(PR_GET_DUMPABLE)', size: 0, args: () => [PR.GET_DUMPABLE] },
    ]);
    return {
      uid: st.uid,
      gid: st.gid,
      groups: st.groups,
      caps: { inh: st.capInh, prm: st.capPrm, eff: st.capEff, bnd: st.capBnd, amb: st.capAmb },
      securebits: Number(bits!.ret),
      noNewPrivs: st.noNewPrivs,
      dumpable: dumpableOf(ctx.pid, dumpable!.ret),
    };
  },
  restore(ctx, s) {
    checkCredsRestorable(ctx.pid, s);
    const r = ctx.remote;
    // The task being changed: the leader, or a thread when the orchestrator runs this per thread.
    let cur = readTaskStatus(ctx.pid, r.tid);
    if (!sameIds(cur, s)) {
      // Keep every capability across the uid change; the saved securebits come right after.
      setSecurebits(r, SECBIT_NO_SETUID_FIXUP);
      setIds(r, cur, s);
    }
    setSecurebits(r, s.securebits);
    cur = readTaskStatus(ctx.pid, r.tid);
    setCaps(r, cur, s);
    const leader = r.tid === ctx.pid; // process-wide things (dumpable, checks) once, from the leader
    if (s.noNewPrivs && !cur.noNewPrivs) prctl(r, [PR.SET_NO_NEW_PRIVS, 1, 0, 0, 0], 'PR_SET_NO_NEW_PRIVS');
    if (!leader) return;
    if (s.dumpable > 1) throw new CkptError('BAD_IMAGE', `Cannot restore process ${ctx.pid}: dumpable ${s.dumpable} cannot be set (prctl takes 0 or 1)`);
    prctl(r, [PR.SET_DUMPABLE, s.dumpable], 'PR_SET_DUMPABLE');
  },
};
