/** `ckpt sharing`: kernel objects shared within the trees under some PIDs. */
import { CkptError } from '../common/errors.js';
import { findSharing, type SharingReport } from '../resources/sharing/index.js';
import { processTree, treePids } from './ps.js';

export type { SharingReport, ProcessKind, FdRef } from '../resources/sharing/index.js';

export function sharing(pids: readonly number[]): SharingReport {
  if (pids.length === 0) throw new CkptError('USAGE', 'Cannot find shared resources: no PID given');
  const all = new Set<number>();
  for (const pid of pids) for (const p of treePids(processTree(pid))) all.add(p);
  // Zombies in the trees come back in `vanished`: they hold no resources any more.
  return findSharing([...all]);
}
