/** sched_getattr/sched_setattr and CPU affinity of any thread, called by ckpt itself. */
import { call } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';

/** struct sched_attr (SCHED_ATTR_SIZE_VER1, 56 bytes). */
export interface SchedAttr {
  policy: number;
  flags: bigint;
  nice: number;
  /** sched_priority (SCHED_FIFO/SCHED_RR). */
  priority: number;
  /** SCHED_DEADLINE runtime; for fair policies the slice (EEVDF). */
  runtime: bigint;
  deadline: bigint;
  period: bigint;
  utilMin: number;
  utilMax: number;
}

const SIZE = 56;

export function schedGetattr(tid: number): SchedAttr {
  const b = Buffer.alloc(SIZE);
  call(NR.sched_getattr, [tid, addressOf(b), SIZE, 0], { name: 'sched_getattr', pid: tid });
  return {
    policy: b.readUInt32LE(4), flags: b.readBigUInt64LE(8), nice: b.readInt32LE(16), priority: b.readUInt32LE(20),
    runtime: b.readBigUInt64LE(24), deadline: b.readBigUInt64LE(32), period: b.readBigUInt64LE(40),
    utilMin: b.readUInt32LE(48), utilMax: b.readUInt32LE(52),
  };
}

export function schedSetattr(tid: number, a: SchedAttr): void {
  const b = Buffer.alloc(SIZE);
  b.writeUInt32LE(SIZE, 0);
  b.writeUInt32LE(a.policy, 4);
  b.writeBigUInt64LE(a.flags, 8);
  b.writeInt32LE(a.nice, 16);
  b.writeUInt32LE(a.priority, 20);
  b.writeBigUInt64LE(a.runtime, 24);
  b.writeBigUInt64LE(a.deadline, 32);
  b.writeBigUInt64LE(a.period, 40);
  b.writeUInt32LE(a.utilMin, 48);
  b.writeUInt32LE(a.utilMax, 52);
  call(NR.sched_setattr, [tid, addressOf(b), 0], { name: 'sched_setattr', pid: tid });
}

/** The thread's CPU mask, as many bytes as the kernel's cpumask has. */
export function schedGetaffinity(tid: number): Buffer {
  const b = Buffer.alloc(1024);
  const n = Number(call(NR.sched_getaffinity, [tid, b.length, addressOf(b)], { name: 'sched_getaffinity', pid: tid }));
  return Buffer.from(b.subarray(0, n));
}

export function schedSetaffinity(tid: number, mask: Buffer): void {
  call(NR.sched_setaffinity, [tid, mask.length, addressOf(mask)], { name: 'sched_setaffinity', pid: tid });
}

const IOPRIO_WHO_PROCESS = 1;

/** The thread's I/O priority (class << 13 | level; 0: none, it follows the nice value). */
export function ioprioGet(tid: number): number {
  return Number(call(NR.ioprio_get, [IOPRIO_WHO_PROCESS, tid], { name: 'ioprio_get', pid: tid }));
}

export function ioprioSet(tid: number, ioprio: number): void {
  call(NR.ioprio_set, [IOPRIO_WHO_PROCESS, tid, ioprio], { name: 'ioprio_set', pid: tid });
}
