/**
 * memfd fds. The memfd itself is a shared memory object of the memory module (saved
 * once per inode, whether it is held as an fd, mapped, or both, so an fd and a mapping
 * stay one object after restore). The restorer rebuilds the object once; each saved
 * description is a fresh open of it, with its own flags and offset.
 */
import { openSync, statfsSync } from 'node:fs';
import { call, NR } from '../../../sys/index.js';
import { dumpMemfdFd, memfdLocalFd } from '../../memory/shmem.js';
import { fdPath, type FdFacts } from '../facts.js';
import { dumpError, type KindDumpContext, type LocalReopener } from './kind.js';
import type { EntryOf } from '../schema.js';

const O_ACCMODE = 3;
const O_CLOEXEC = 0o2000000;
const O_NONBLOCK = 0o4000;
const O_APPEND = 0o2000;

const HUGETLBFS_MAGIC = 0x958458f6;

export function dumpMemfd(dc: KindDumpContext, f: FdFacts): EntryOf<'memfd'> {
  // MFD_HUGETLB: a hugetlbfs file (no write(2), pages from the huge page pool), which would come back an ordinary memfd.
  if (statfsSync(fdPath(f.pid, f.fd)).type === HUGETLBFS_MAGIC) {
    throw dumpError(f, { code: 'UNSUPPORTED', reason: `it is a hugetlb memfd (MFD_HUGETLB), which is not supported yet (${f.link})` });
  }
  return { kind: 'memfd', fd: f.fd, flags: f.flags, pos: f.pos, obj: dumpMemfdFd(dc.ctx, f.fd) };
}

export const memfdReopener: LocalReopener<'memfd'> = {
  at: 'local',
  open(rc, e) {
    const object = memfdLocalFd(rc.ctx, e.obj);
    const fd = openSync(`/proc/self/fd/${object}`, (e.flags & (O_ACCMODE | O_NONBLOCK | O_APPEND)) | O_CLOEXEC);
    call(NR.lseek, [fd, e.pos, 0 /* SEEK_SET */], { name: 'lseek(memfd)' });
    return fd;
  },
};
