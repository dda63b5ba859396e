/**
 * eventfd files (`anon_inode:[eventfd]`). fdinfo gives the counter (hex) and, on
 * kernels since 6.6, whether it is a semaphore. Restore creates a new eventfd in the
 * restorer with the saved counter and flags; processes sharing the description get
 * copies of that one (the `desc` mechanism of restore.ts).
 */
import { readFdinfo, type Fdinfo } from '../../../proc/index.js';
import { EFD, eventfd2 } from '../../../sys/anonfd.js';
import { writeFd } from '../../../sys/index.js';
import type { FdFacts } from '../facts.js';
import { O } from '../flags.js';
import type { EntryOf } from '../schema.js';
import { dumpError, type KindDumpContext, type LocalReopener } from './kind.js';

/** Field `key` of the fd's fdinfo, parsed; a missing or malformed field refuses the dump. */
export function infoField<T>(f: FdFacts, info: Fdinfo, args: { key: string; parse: (v: string) => T | undefined }): T {
  const raw = info.extra[args.key];
  const v = raw === undefined ? undefined : args.parse(raw);
  if (v === undefined) {
    throw dumpError(f, { code: 'UNSUPPORTED', reason: `its fdinfo has no readable "${args.key}" (${f.link}: ${JSON.stringify(raw ?? null)})` });
  }
  return v;
}

export const hex64 = (v: string): bigint | undefined => (/^[0-9a-f]{1,16}$/i.test(v) ? BigInt(`0x${v}`) : undefined);

export function dumpEventfd(_dc: KindDumpContext, f: FdFacts): EntryOf<'eventfd'> {
  const info = readFdinfo(f.pid, f.fd);
  // "eventfd-count: %16llx": hex, space-padded.
  const count = infoField(f, info, { key: 'eventfd-count', parse: hex64 });
  const sem = info.extra['eventfd-semaphore'];
  if (sem === undefined) {
    throw dumpError(f, { code: 'UNSUPPORTED', reason: 'this kernel (before 6.6) does not show whether the eventfd is a semaphore (EFD_SEMAPHORE), which is not saved' });
  }
  return { kind: 'eventfd', fd: f.fd, flags: f.flags, count, semaphore: sem === '1' };
}

export const eventfdReopener: LocalReopener<'eventfd'> = {
  at: 'local',
  open(_rc, e) {
    const flags = EFD.CLOEXEC | (e.flags & O.NONBLOCK ? EFD.NONBLOCK : 0) | (e.semaphore ? EFD.SEMAPHORE : 0);
    // eventfd2 takes an unsigned int; a larger count is written in (it cannot block on an empty counter).
    const small = e.count <= 0xffffffffn;
    const fd = eventfd2(small ? Number(e.count) : 0, flags);
    if (!small) {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(e.count);
      writeFd(fd, b);
    }
    return fd;
  },
};
