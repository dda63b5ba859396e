/**
 * POSIX message queues (mq_overview(7)) in this process: the raw syscalls, which take
 * the queue's name without glibc's leading slash, struct mq_attr and struct sigevent.
 */
import { call, callNum } from './call.js';
import { SysError } from './error.js';
import { addressOf, rawSyscall } from './native.js';
import { NR } from './nr.js';

/** statfs f_type of the mqueue filesystem. */
export const MQUEUE_MAGIC = 0x19800202;
/** sigev_notify values (mq_notify). */
export const SIGEV = { SIGNAL: 0, NONE: 1, THREAD: 2 } as const;

const ETIMEDOUT = 110;
const EAGAIN = 11;

export interface MqAttr {
  flags: number;
  maxmsg: number;
  msgsize: number;
  curmsgs: number;
}

export interface MqMessage {
  prio: number;
  data: Buffer;
}

/** mq_open(name, flags, mode, {maxmsg, msgsize}); `name` without the leading slash. */
export function mqOpen(name: string, args: { flags: number; mode: number; maxmsg: number; msgsize: number }): number {
  const cname = Buffer.from(`${name}\0`);
  const attr = Buffer.alloc(64);
  attr.writeBigInt64LE(BigInt(args.maxmsg), 8);
  attr.writeBigInt64LE(BigInt(args.msgsize), 16);
  return callNum(NR.mq_open, [addressOf(cname), args.flags, args.mode, addressOf(attr)], { name: `mq_open(/${name})` });
}

export function mqUnlink(name: string): void {
  const cname = Buffer.from(`${name}\0`);
  call(NR.mq_unlink, [addressOf(cname)], { name: `mq_unlink(/${name})` });
}

export function mqGetattr(fd: number): MqAttr {
  const attr = Buffer.alloc(64);
  call(NR.mq_getsetattr, [fd, 0, addressOf(attr)], { name: 'mq_getsetattr' });
  const n = (o: number) => Number(attr.readBigInt64LE(o));
  return { flags: n(0), maxmsg: n(8), msgsize: n(16), curmsgs: n(24) };
}

/** Sends without ever blocking (an absolute timeout of 0): a full queue is EAGAIN or ETIMEDOUT. */
export function mqSend(fd: number, msg: MqMessage): void {
  const ts = Buffer.alloc(16);
  const data = msg.data.length > 0 ? msg.data : Buffer.alloc(1);
  call(NR.mq_timedsend, [fd, addressOf(data), msg.data.length, msg.prio, addressOf(ts)], { name: 'mq_timedsend' });
}

/** Takes the first message (highest priority, oldest) without blocking; undefined when the queue is empty. */
export function mqReceive(fd: number, msgsize: number): MqMessage | undefined {
  const buf = Buffer.alloc(Math.max(msgsize, 1));
  const prio = Buffer.alloc(4);
  const ts = Buffer.alloc(16);
  const r = rawSyscall(NR.mq_timedreceive, [fd, addressOf(buf), buf.length, addressOf(prio), addressOf(ts)]);
  if (r.ret === -1n) {
    if (r.errno === ETIMEDOUT || r.errno === EAGAIN) return undefined;
    throw new SysError('mq_timedreceive', r.errno);
  }
  return { prio: prio.readUInt32LE(0), data: Buffer.from(buf.subarray(0, Number(r.ret))) };
}

/** struct sigevent (64 bytes) for mq_notify: SIGEV_SIGNAL with its signal and value, or SIGEV_NONE. */
export function encodeSigevent(ev: { notify: number; signo: number; value: bigint }): Buffer {
  const b = Buffer.alloc(64);
  b.writeBigUInt64LE(BigInt.asUintN(64, ev.value), 0);
  b.writeInt32LE(ev.signo, 8);
  b.writeInt32LE(ev.notify, 12);
  return b;
}
