/**
 * System V message queues. Dump: attributes from msgctl(IPC_STAT), every message
 * copied without being taken (msgrcv with MSG_COPY, by position). Restore, in the
 * restorer (it shares the IPC namespace the tree will run in): a queue that is still
 * there with the same id, key, attributes and messages (it outlives a killed process)
 * is kept; a free id is created again with msg_next_id, its owner, mode and qbytes set
 * and its messages sent back in order; anything else is refused before anything is made.
 */
import { readFileSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { IPC, ipcRemove, msgCopy, msgget, msgSend, msgSet, msgStat, type MsgStat, type SysvMessage } from '../../sys/index.js';
import type { Undo } from '../../infect/index.js';
import type { SysvMsgQueue } from './state.js';
import { createWithId, hexKey, keyHolder, statOrNone } from './table.js';

function readMessages(id: number, st: MsgStat): SysvMessage[] {
  const msgmax = Number(readFileSync('/proc/sys/kernel/msgmax', 'utf8'));
  const max = Math.max(st.qbytes, msgmax);
  const out: SysvMessage[] = [];
  for (let m = msgCopy(id, { index: 0, max }); m !== undefined; m = msgCopy(id, { index: out.length, max })) out.push(m);
  return out;
}

export function dumpMsgQueue(id: number, blob: (name: string, data: Buffer) => void): SysvMsgQueue | undefined {
  const st = statOrNone(() => msgStat(id));
  if (!st) return undefined;
  const msgs = readMessages(id, st);
  const q: SysvMsgQueue = {
    key: st.key, id, mode: st.mode, uid: st.uid, gid: st.gid, qbytes: st.qbytes,
    messages: msgs.map((m) => ({ type: m.type, size: m.data.length })),
  };
  if (msgs.some((m) => m.data.length > 0)) {
    q.blob = `sysv-msg-${id}`;
    blob(q.blob, Buffer.concat(msgs.map((m) => m.data)));
  }
  return q;
}

export function savedMessages(q: SysvMsgQueue, blob: (name: string) => Buffer): SysvMessage[] {
  const data = q.blob === undefined ? Buffer.alloc(0) : blob(q.blob);
  const total = q.messages.reduce((a, m) => a + m.size, 0);
  if (total !== data.length) throw new CkptError('BAD_IMAGE', `Cannot restore SysV message queue ${q.id}: its messages add up to ${total} bytes, ${data.length} saved`);
  let at = 0;
  return q.messages.map((m) => ({ type: m.type, data: data.subarray(at, (at += m.size)) }));
}

/** 'keep' (the saved queue is there unchanged) or 'create'; throws when the id or key is someone else's. */
export function planMsgQueue(q: SysvMsgQueue, msgs: readonly SysvMessage[]): 'keep' | 'create' {
  const what = `SysV message queue ${q.id} (key ${hexKey(q.key)})`;
  const st = statOrNone(() => msgStat(q.id));
  if (st) {
    const now = readMessages(q.id, st);
    const same =
      st.key === q.key && st.mode === q.mode && st.uid === q.uid && st.gid === q.gid && st.qbytes === q.qbytes &&
      now.length === msgs.length && now.every((m, i) => m.type === msgs[i]!.type && m.data.equals(msgs[i]!.data));
    if (same) return 'keep';
    throw new CkptError('FILE_CHANGED', `Cannot restore ${what}: id ${q.id} is in use by a queue that is not the saved one (key ${hexKey(st.key)}, ${now.length} messages); remove it (ipcrm -q ${q.id}) to restore the saved queue`);
  }
  const other = q.key === 0 ? undefined : keyHolder(() => msgget(q.key, 0));
  if (other !== undefined) throw new CkptError('FILE_CHANGED', `Cannot restore ${what}: key ${hexKey(q.key)} is in use by queue ${other}`);
  return 'create';
}

export function createMsgQueue(q: SysvMsgQueue, args: { msgs: readonly SysvMessage[]; undo: Undo }): void {
  const id = createWithId('msg', {
    id: q.id,
    create: () => msgget(q.key, IPC.CREAT | IPC.EXCL | q.mode),
    consume: () => ipcRemove('msg', msgget(0, IPC.CREAT | 0o600)),
  });
  args.undo.push(`remove SysV message queue ${id}`, () => ipcRemove('msg', id));
  if (id !== q.id) throw new CkptError('UNSUPPORTED', `Cannot restore SysV message queue ${q.id}: the kernel gave id ${id}`);
  msgSet(id, { uid: q.uid, gid: q.gid, mode: q.mode, qbytes: q.qbytes });
  for (const m of args.msgs) msgSend(id, m);
}
