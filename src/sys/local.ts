/** Memory calls made by ckpt on itself: reading another process's pages into chosen local addresses. */
import { call } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';
import { encodeIovecs, type Iovec } from './codecs/iovec.js';

/** process_vm_readv with local destinations given as addresses (e.g. parts of one buffer). */
export function vmReadInto(pid: number, args: { local: readonly Iovec[]; remote: readonly Iovec[] }): number {
  const l = encodeIovecs(args.local);
  const r = encodeIovecs(args.remote);
  return Number(call(NR.process_vm_readv, [pid, addressOf(l), args.local.length, addressOf(r), args.remote.length, 0], { name: 'process_vm_readv', pid }));
}

/** fallocate(2): reserves the blocks now, so a full disk fails here and not in the middle of the copy. */
export function fallocate(fd: number, args: { offset: number; len: number }): void {
  call(NR.fallocate, [fd, 0, args.offset, args.len], { name: 'fallocate' });
}
