/**
 * System V message queues and semaphore sets in this process (svipc(7)): the raw
 * syscalls and the few fields of struct msqid64_ds / semid64_ds ckpt reads and sets
 * (x86_64: the 64-bit layout is the only one, and a cmd with IPC_64 (0x100) is EINVAL).
 */
import { call, callNum } from './call.js';
import { SysError } from './error.js';
import { addressOf, rawSyscall } from './native.js';
import { NR } from './nr.js';

export const IPC = { CREAT: 0o1000, EXCL: 0o2000, NOWAIT: 0o4000, RMID: 0, SET: 1, STAT: 2 } as const;
const MSG_COPY = 0o40000;
const SEM = { GETPID: 11, GETALL: 13, SETALL: 17 } as const;
const ENOMSG = 42;

/** struct ipc64_perm: key, uid, gid, cuid, cgid, mode at these offsets. */
export interface IpcPerm {
  key: number;
  uid: number;
  gid: number;
  mode: number;
}

function readPerm(b: Buffer): IpcPerm {
  return { key: b.readInt32LE(0), uid: b.readUInt32LE(4), gid: b.readUInt32LE(8), mode: b.readUInt32LE(20) & 0o777 };
}

function writePerm(b: Buffer, p: Omit<IpcPerm, 'key'>): void {
  b.writeUInt32LE(p.uid, 4);
  b.writeUInt32LE(p.gid, 8);
  b.writeUInt32LE(p.mode, 20);
}

export function msgget(key: number, flags: number): number {
  return callNum(NR.msgget, [key, flags], { name: `msgget(key 0x${(key >>> 0).toString(16)})` });
}

export interface MsgStat extends IpcPerm {
  qbytes: number;
  qnum: number;
}

/** msgctl(IPC_STAT): struct msqid64_ds is the perm (48 bytes), times, cbytes, qnum at 80, qbytes at 88. */
export function msgStat(id: number): MsgStat {
  const b = Buffer.alloc(120);
  call(NR.msgctl, [id, IPC.STAT, addressOf(b)], { name: `msgctl(${id}, IPC_STAT)` });
  return { ...readPerm(b), qnum: Number(b.readBigUInt64LE(80)), qbytes: Number(b.readBigUInt64LE(88)) };
}

/** msgctl(IPC_SET): owner, mode and qbytes (raising qbytes above msgmnb needs CAP_SYS_RESOURCE). */
export function msgSet(id: number, s: Omit<MsgStat, 'key' | 'qnum'>): void {
  const b = Buffer.alloc(120);
  writePerm(b, s);
  b.writeBigUInt64LE(BigInt(s.qbytes), 88);
  call(NR.msgctl, [id, IPC.SET, addressOf(b)], { name: `msgctl(${id}, IPC_SET)` });
}

export function ipcRemove(kind: 'msg' | 'sem' | 'shm', id: number): void {
  if (kind === 'msg') call(NR.msgctl, [id, IPC.RMID, 0], { name: `msgctl(${id}, IPC_RMID)` });
  else if (kind === 'shm') call(NR.shmctl, [id, IPC.RMID, 0], { name: `shmctl(${id}, IPC_RMID)` });
  else call(NR.semctl, [id, 0, IPC.RMID, 0], { name: `semctl(${id}, IPC_RMID)` });
}

export interface SysvMessage {
  type: bigint;
  data: Buffer;
}

/** Message `index` of the queue (0 = the oldest), copied without being taken (MSG_COPY); undefined past the end. */
export function msgCopy(id: number, args: { index: number; max: number }): SysvMessage | undefined {
  const b = Buffer.alloc(8 + args.max);
  const r = rawSyscall(NR.msgrcv, [id, addressOf(b), args.max, args.index, IPC.NOWAIT | MSG_COPY]);
  if (r.ret === -1n) {
    if (r.errno === ENOMSG) return undefined;
    throw new SysError(`msgrcv(${id}, MSG_COPY)`, r.errno);
  }
  return { type: b.readBigInt64LE(0), data: Buffer.from(b.subarray(8, 8 + Number(r.ret))) };
}

export function msgSend(id: number, m: SysvMessage): void {
  const b = Buffer.alloc(8 + m.data.length);
  b.writeBigInt64LE(m.type, 0);
  m.data.copy(b, 8);
  call(NR.msgsnd, [id, addressOf(b), m.data.length, IPC.NOWAIT], { name: `msgsnd(${id})` });
}

export function semget(key: number, args: { nsems: number; flags: number }): number {
  return callNum(NR.semget, [key, args.nsems, args.flags], { name: `semget(key 0x${(key >>> 0).toString(16)})` });
}

export interface SemStat extends IpcPerm {
  nsems: number;
}

/** semctl(IPC_STAT): struct semid64_ds (x86_64) is the perm (48 bytes), otime, unused, ctime, unused, nsems at 80. */
export function semStat(id: number): SemStat {
  const b = Buffer.alloc(104);
  call(NR.semctl, [id, 0, IPC.STAT, addressOf(b)], { name: `semctl(${id}, IPC_STAT)` });
  return { ...readPerm(b), nsems: Number(b.readBigUInt64LE(80)) };
}

export function semSet(id: number, p: Omit<IpcPerm, 'key'>): void {
  const b = Buffer.alloc(104);
  writePerm(b, p);
  call(NR.semctl, [id, 0, IPC.SET, addressOf(b)], { name: `semctl(${id}, IPC_SET)` });
}

/** shmctl(IPC_SET): owner and mode (struct shmid64_ds is 112 bytes, the perm first). */
export function shmSet(id: number, p: Omit<IpcPerm, 'key'>): void {
  const b = Buffer.alloc(112);
  writePerm(b, p);
  call(NR.shmctl, [id, IPC.SET, addressOf(b)], { name: `shmctl(${id}, IPC_SET)` });
}

export function semGetAll(id: number, nsems: number): number[] {
  const b = Buffer.alloc(2 * Math.max(nsems, 1));
  call(NR.semctl, [id, 0, SEM.GETALL, addressOf(b)], { name: `semctl(${id}, GETALL)` });
  return Array.from({ length: nsems }, (_, i) => b.readUInt16LE(2 * i));
}

/** SETALL: also clears every process's undo adjustment for the set. */
export function semSetAll(id: number, values: readonly number[]): void {
  const b = Buffer.alloc(2 * Math.max(values.length, 1));
  values.forEach((v, i) => b.writeUInt16LE(v, 2 * i));
  call(NR.semctl, [id, 0, SEM.SETALL, addressOf(b)], { name: `semctl(${id}, SETALL)` });
}

/** GETPID: the last process that changed semaphore `num` (semop, SETVAL, SETALL). */
export function semGetPid(id: number, num: number): number {
  return callNum(NR.semctl, [id, num, SEM.GETPID, 0], { name: `semctl(${id}, GETPID)` });
}
