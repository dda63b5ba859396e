/**
 * signalfd files (`anon_inode:[signalfd]`). A signalfd holds only its signal mask: it
 * reads the pending signals of whichever process reads it, so the restorer can create
 * it and hand it over. The pending signals themselves are the process module's.
 */
import { readFdinfo } from '../../../proc/index.js';
import { SFD, signalfd4 } from '../../../sys/anonfd.js';
import type { FdFacts } from '../facts.js';
import { O } from '../flags.js';
import type { EntryOf } from '../schema.js';
import { hex64, infoField } from './eventfd.js';
import type { KindDumpContext, LocalReopener } from './kind.js';

export function dumpSignalfd(_dc: KindDumpContext, f: FdFacts): EntryOf<'signalfd'> {
  // "sigmask:\t%016llx"
  const sigmask = infoField(f, readFdinfo(f.pid, f.fd), { key: 'sigmask', parse: hex64 });
  return { kind: 'signalfd', fd: f.fd, flags: f.flags, sigmask };
}

export const signalfdReopener: LocalReopener<'signalfd'> = {
  at: 'local',
  open(_rc, e) {
    return signalfd4(e.sigmask, SFD.CLOEXEC | (e.flags & O.NONBLOCK ? SFD.NONBLOCK : 0));
  },
};
