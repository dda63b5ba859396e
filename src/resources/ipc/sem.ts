/**
 * System V semaphore sets: attributes from semctl(IPC_STAT) and every value (GETALL).
 * Restore as for message queues (msg.ts): kept when unchanged, created again with
 * sem_next_id and SETALL when the id is free, refused otherwise. What processes wait
 * on a set is not saved here: a waiting thread is restarted into its semop (cpu.ts).
 */
import { CkptError } from '../../common/errors.js';
import { IPC, ipcRemove, semget, semGetAll, semSet, semSetAll, semStat } from '../../sys/index.js';
import type { Undo } from '../../infect/index.js';
import type { SysvSemSet } from './state.js';
import { createWithId, hexKey, keyHolder, statOrNone } from './table.js';

export function dumpSemSet(id: number): SysvSemSet | undefined {
  const st = statOrNone(() => semStat(id));
  if (!st) return undefined;
  return { key: st.key, id, mode: st.mode, uid: st.uid, gid: st.gid, values: semGetAll(id, st.nsems) };
}

export function planSemSet(s: SysvSemSet): 'keep' | 'create' {
  const what = `SysV semaphore set ${s.id} (key ${hexKey(s.key)})`;
  const st = statOrNone(() => semStat(s.id));
  if (st) {
    const now = semGetAll(s.id, st.nsems);
    const same = st.key === s.key && st.mode === s.mode && st.uid === s.uid && st.gid === s.gid &&
      now.length === s.values.length && now.every((v, i) => v === s.values[i]);
    if (same) return 'keep';
    throw new CkptError('FILE_CHANGED', `Cannot restore ${what}: id ${s.id} is in use by a set that is not the saved one (key ${hexKey(st.key)}, values ${now.join(',')}); remove it (ipcrm -s ${s.id}) to restore the saved set`);
  }
  const other = s.key === 0 ? undefined : keyHolder(() => semget(s.key, { nsems: 0, flags: 0 }));
  if (other !== undefined) throw new CkptError('FILE_CHANGED', `Cannot restore ${what}: key ${hexKey(s.key)} is in use by set ${other}`);
  return 'create';
}

export function createSemSet(s: SysvSemSet, undo: Undo): void {
  const id = createWithId('sem', {
    id: s.id,
    create: () => semget(s.key, { nsems: s.values.length, flags: IPC.CREAT | IPC.EXCL | s.mode }),
    consume: () => ipcRemove('sem', semget(0, { nsems: 1, flags: IPC.CREAT | 0o600 })),
  });
  undo.push(`remove SysV semaphore set ${id}`, () => ipcRemove('sem', id));
  if (id !== s.id) throw new CkptError('UNSUPPORTED', `Cannot restore SysV semaphore set ${s.id}: the kernel gave id ${id}`);
  semSetAll(id, s.values);
  semSet(id, { uid: s.uid, gid: s.gid, mode: s.mode });
}
