/**
 * System V IPC objects of a dumped tree: message queues and semaphore sets (shared
 * memory segments are memory objects, memory/sysv.ts). They live in the IPC namespace,
 * which the tree shares with the host and which restore does not create: it rebuilds
 * them in the restorer's namespace. So the dump saves the objects the tree *uses*, not
 * the whole namespace: a queue whose last sender or receiver (lspid, lrpid) is in the
 * tree, a set one of whose semaphores was last changed by the tree (GETPID), and any
 * object a thread of the tree waits on (msgrcv, msgsnd, semop, semtimedop: the id is
 * the call's first argument). Each is saved once per image set (image `sysvipc`).
 *
 * Semaphore undo adjustments are checked per process by undo.ts (a resource module):
 * a process holding one is refused.
 */
import { NR, ptrace, semGetPid, signed } from '../../sys/index.js';
import type { Undo } from '../../infect/index.js';
import { createMsgQueue, dumpMsgQueue, planMsgQueue, savedMessages } from './msg.js';
import { createSemSet, dumpSemSet, planSemSet } from './sem.js';
import type { SysvIpcState } from './state.js';
import { readIpcTable } from './table.js';

export { IPC_IMAGE, SysvIpcState } from './state.js';

/** The ids of the queues and sets the threads are blocked on (their syscall's first argument). */
function waitedIds(tids: readonly number[]): { msg: Set<number>; sem: Set<number> } {
  const msg = new Set<number>();
  const sem = new Set<number>();
  for (const tid of tids) {
    const regs = ptrace.getRegs(tid);
    const nr = Number(signed(regs.orig_rax));
    const id = Number(BigInt.asIntN(32, regs.rdi));
    if (nr === NR.msgrcv || nr === NR.msgsnd) msg.add(id);
    if (nr === NR.semop || nr === NR.semtimedop) sem.add(id);
  }
  return { msg, sem };
}

export interface IpcDumpArgs {
  /** Live processes of the tree and all their threads (stopped). */
  pids: readonly number[];
  tids: readonly number[];
  blob(name: string, data: Buffer): void;
}

export function dumpSysvIpc(args: IpcDumpArgs): SysvIpcState {
  const pids = new Set(args.pids);
  const waits = waitedIds(args.tids);
  const msg = readIpcTable('msg')
    .filter((r) => pids.has(r['lspid']!) || pids.has(r['lrpid']!) || waits.msg.has(r['msqid']!))
    .map((r) => dumpMsgQueue(r['msqid']!, args.blob))
    .filter((q) => q !== undefined);
  const usedSet = (id: number, nsems: number) => waits.sem.has(id) || Array.from({ length: nsems }, (_, i) => semGetPid(id, i)).some((p) => pids.has(p));
  const sem = readIpcTable('sem')
    .filter((r) => usedSet(r['semid']!, r['nsems']!))
    .map((r) => dumpSemSet(r['semid']!))
    .filter((s) => s !== undefined);
  return { msg, sem };
}

/**
 * Checks every saved object against the namespace first (nothing is made if one id or
 * key is someone else's), then creates the missing ones; each registers its removal.
 */
export function restoreSysvIpc(state: SysvIpcState, args: { blob(name: string): Buffer; undo: Undo }): void {
  const msgs = state.msg.map((q) => savedMessages(q, args.blob));
  const msgPlans = state.msg.map((q, i) => planMsgQueue(q, msgs[i]!));
  const semPlans = state.sem.map((s) => planSemSet(s));
  state.msg.forEach((q, i) => msgPlans[i] === 'create' && createMsgQueue(q, { msgs: msgs[i]!, undo: args.undo }));
  state.sem.forEach((s, i) => semPlans[i] === 'create' && createSemSet(s, args.undo));
}
