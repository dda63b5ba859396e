/** Memory calls made by ckpt on itself: mapping an image file to fill it in place. */
import { call } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';
import { encodeIovecs, type Iovec } from './codecs/iovec.js';

export const PROT = { READ: 1, WRITE: 2 } as const;
export const MAP = { SHARED: 0x1, POPULATE: 0x8000 } as const;

export function mmapFile(args: { len: number; fd: number; offset: number; populate?: boolean }): bigint {
  const flags = MAP.SHARED | (args.populate ? MAP.POPULATE : 0);
  return call(NR.mmap, [0, args.len, PROT.READ | PROT.WRITE, flags, args.fd, args.offset], { name: 'mmap(image)' });
}

export function munmapLocal(addr: bigint, len: number): void {
  call(NR.munmap, [addr, len], { name: 'munmap(image)' });
}

/** process_vm_readv with local destinations given as addresses (e.g. inside an mmap'ed file). */
export function vmReadInto(pid: number, args: { local: readonly Iovec[]; remote: readonly Iovec[] }): number {
  const l = encodeIovecs(args.local);
  const r = encodeIovecs(args.remote);
  return Number(call(NR.process_vm_readv, [pid, addressOf(l), args.local.length, addressOf(r), args.remote.length, 0], { name: 'process_vm_readv', pid }));
}

/** pread(2) into a local address. */
export function preadAt(fd: number, args: { addr: bigint; len: number; pos: bigint }): number {
  return Number(call(NR.pread64, [fd, args.addr, args.len, args.pos], { name: 'pread' }));
}

/** fallocate(2): reserves the blocks now, so a full disk fails here and not on a page fault. */
export function fallocate(fd: number, args: { offset: number; len: number }): void {
  call(NR.fallocate, [fd, 0, args.offset, args.len], { name: 'fallocate' });
}
