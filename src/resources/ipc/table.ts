/**
 * The IPC namespace's tables as /proc/sysvipc shows them, and creating an object with a
 * chosen id: the kernel takes the next id from /proc/sys/kernel/{msg,sem,shm}_next_id
 * (CONFIG_CHECKPOINT_RESTORE) and resets it to -1 once used.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { isErrno } from '../../sys/index.js';

export type IpcKind = 'msg' | 'sem' | 'shm';

/** The rows of /proc/sysvipc/KIND, each as numbers by column name (perms read as octal). */
export function readIpcTable(kind: IpcKind): Record<string, number>[] {
  const [head, ...lines] = readFileSync(`/proc/sysvipc/${kind}`, 'utf8').split('\n');
  const cols = (head ?? '').trim().split(/\s+/);
  const rows: Record<string, number>[] = [];
  for (const line of lines) {
    const f = line.trim().split(/\s+/);
    if (f.length < cols.length) continue;
    rows.push(Object.fromEntries(cols.map((c, i) => [c, c === 'perms' ? parseInt(f[i]!, 8) : Number(f[i])])));
  }
  return rows;
}

/**
 * Runs `create` (an IPC_CREAT get) with the kernel asked for id `id` first; returns its
 * result. The kernel drops the request once a get uses it, and this kernel refuses a
 * write of -1, so after a failed get the request is used up by `consume` (make and
 * remove a private object), or the next get of anyone would take the id.
 */
export function createWithId<T>(kind: IpcKind, args: { id: number; create: () => T; consume: () => void }): T {
  writeFileSync(`/proc/sys/kernel/${kind}_next_id`, String(args.id));
  try {
    return args.create();
  } catch (e) {
    args.consume();
    throw e;
  }
}

/** A SysV key as ipcs prints it. */
export const hexKey = (key: number): string => `0x${(key >>> 0).toString(16).padStart(8, '0')}`;

/** The result of an IPC_STAT of an id, or undefined when no object has that id (EINVAL, EIDRM). */
export function statOrNone<T>(stat: () => T): T | undefined {
  try {
    return stat();
  } catch (e) {
    if (isErrno(e, 'EINVAL') || isErrno(e, 'EIDRM')) return undefined;
    throw e;
  }
}

/** The id of the object that holds a key now (a get without IPC_CREAT), or undefined (ENOENT). */
export function keyHolder(get: () => number): number | undefined {
  try {
    return get();
  } catch (e) {
    if (isErrno(e, 'ENOENT')) return undefined;
    throw e;
  }
}
