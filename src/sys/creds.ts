/**
 * ckpt's own filesystem credentials and capabilities, per thread. These are the raw
 * syscalls (glibc's wrappers would broadcast a change to every thread): they change
 * only the calling thread, which is what a short "open this as that user" needs.
 */
import { call } from './call.js';
import { addressOf, rawSyscall } from './native.js';
import { NR } from './nr.js';

const LINUX_CAPABILITY_VERSION_3 = 0x20080522;

export interface CapSets {
  eff: bigint;
  prm: bigint;
  inh: bigint;
}

/** capset(2)/capget(2) arguments: a v3 header and two data structs (low and high 32 capability bits). */
export function encodeCapset(caps: CapSets, pid = 0): { header: Buffer; data: Buffer } {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(LINUX_CAPABILITY_VERSION_3, 0);
  header.writeInt32LE(pid, 4);
  const data = Buffer.alloc(24);
  for (let i = 0; i < 2; i++) {
    const part = (v: bigint): number => Number(BigInt.asUintN(32, v >> BigInt(32 * i)));
    data.writeUInt32LE(part(caps.eff), i * 12);
    data.writeUInt32LE(part(caps.prm), i * 12 + 4);
    data.writeUInt32LE(part(caps.inh), i * 12 + 8);
  }
  return { header, data };
}

/** This thread's capability sets. */
export function capgetSelf(): CapSets {
  const { header, data } = encodeCapset({ eff: 0n, prm: 0n, inh: 0n });
  call(NR.capget, [addressOf(header), addressOf(data)], { name: 'capget' });
  const get = (off: number): bigint => BigInt(data.readUInt32LE(off)) | (BigInt(data.readUInt32LE(off + 12)) << 32n);
  return { eff: get(0), prm: get(4), inh: get(8) };
}

export function capsetSelf(caps: CapSets): void {
  const { header, data } = encodeCapset(caps);
  call(NR.capset, [addressOf(header), addressOf(data)], { name: 'capset' });
}

/** setfsuid(2): returns the previous fsuid; setfsuid(-1) only reads it (the call never fails). */
export function setfsuid(uid: number): number {
  return Number(rawSyscall(NR.setfsuid, [uid]).ret);
}

export function setfsgid(gid: number): number {
  return Number(rawSyscall(NR.setfsgid, [gid]).ret);
}

export function getgroups(): number[] {
  const n = Number(call(NR.getgroups, [0, 0], { name: 'getgroups' }));
  const buf = Buffer.alloc(4 * Math.max(n, 1));
  const got = Number(call(NR.getgroups, [n, addressOf(buf)], { name: 'getgroups' }));
  return Array.from({ length: got }, (_, i) => buf.readUInt32LE(i * 4));
}

export function setgroups(groups: readonly number[]): void {
  const buf = Buffer.alloc(4 * Math.max(groups.length, 1));
  groups.forEach((g, i) => buf.writeUInt32LE(g, i * 4));
  call(NR.setgroups, [groups.length, addressOf(buf)], { name: 'setgroups' });
}
