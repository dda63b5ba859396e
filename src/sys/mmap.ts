/**
 * Mappings in this process: a file mapped read-only (the lazy-pages server copies pages
 * into a restored process straight from a mapping of the page file, one copy instead of
 * a read into a buffer and a copy from it).
 */
import { call } from './call.js';
import { NR } from './nr.js';

const PROT_READ = 1;
const MAP_SHARED = 0x01;
const MAP_POPULATE = 0x8000;

/** mmap(PROT_READ, MAP_SHARED) of `len` bytes of `fd` from `offset`; with `populate`, every page table entry is made now. */
export function mapFileReadOnly(fd: number, args: { len: number; offset?: number; populate?: boolean }): bigint {
  const flags = MAP_SHARED | (args.populate ? MAP_POPULATE : 0);
  return call(NR.mmap, [0, args.len, PROT_READ, flags, fd, args.offset ?? 0], { name: `mmap(fd ${fd}, ${args.len} bytes)` });
}

export function unmap(addr: bigint, len: number): void {
  call(NR.munmap, [addr, len], { name: 'munmap' });
}
