/**
 * POSIX message queues (an fd on the mqueue filesystem; its link is the queue's name,
 * with " (deleted)" once unlinked). Saved: the name or the unlinked state, mq_maxmsg,
 * mq_msgsize, mode and owner, every queued message with its priority, and the
 * mq_notify registration (SIGEV_SIGNAL with its signal and value, or SIGEV_NONE).
 *
 * The kernel has no peek for a queue, so the dump receives every message on a
 * description of its own (opened through /proc/PID/fd/N: the target's flags and access
 * mode are not touched) and sends them back in the order received, with their
 * priorities, which rebuilds the same queue. That happens in a `finally`, so a
 * failure half-way still puts every message back (and a failed send back says how many
 * were lost). The registration's value is shown nowhere: the dump fires it (a probe
 * message sent into the emptied queue), reads the value from the signal queued to the
 * stopped owner, takes that signal out again with an injected rt_sigtimedwait, and
 * registers it again in the owner (injected mq_notify) once the messages are back,
 * so the refill does not fire it.
 *
 * Restore creates the queue once per restore in the restorer (mq_open with the saved
 * name and attributes; an unlinked queue under a private name, unlinked at once),
 * fills it, and opens one description per saved description through /proc/self/fd.
 * A named queue still there (it outlives a killed process) is kept if it is the same
 * in every saved field and message, and refused otherwise. The registration is made
 * again by the owner once its whole fd table is in place: any close of a queue fd by
 * the owner removes it.
 */
import { closeSync, fchmodSync, fchownSync, fstatSync, openSync, readSync, statfsSync } from 'node:fs';
import { CkptError } from '../../../common/errors.js';
import {
  isErrno, MQUEUE_MAGIC, mqGetattr, mqOpen, mqReceive, mqSend, mqUnlink, encodeSigevent, NR, ptrace, SIGEV,
  type MqMessage,
} from '../../../sys/index.js';
import type { RemoteTask } from '../../../infect/index.js';
import { callIn } from '../../process/inject.js';
import type { DumpContext } from '../../types.js';
import { DELETED_SUFFIX, fdPath, isReg, type FdFacts } from '../facts.js';
import { O } from '../flags.js';
import { loadPayload, savePayload } from '../objects.js';
import type { EntryOf, FdEntry } from '../schema.js';
import { dumpError, restoreError, type KindRestoreContext, type LocalReopener } from './kind.js';

const SI_MESGQ = -3;
/** Our own description of a queue: read and write, never blocking. */
const OWN = O.RDWR | O.NONBLOCK | O.CLOEXEC;

type Notify = NonNullable<EntryOf<'mqueue'>['notify']>;

export function isMqueue(f: FdFacts): boolean {
  if (!isReg(f.stat)) return false;
  try {
    return statfsSync(fdPath(f.pid, f.fd)).type === MQUEUE_MAGIC;
  } catch {
    return false;
  }
}

/** What reading the queue file shows: "QSIZE:5  NOTIFY:0  SIGNO:12  NOTIFY_PID:9585". */
interface QueueInfo {
  notify: number;
  signo: number;
  notifyPid: number;
}

function readInfo(fd: number): QueueInfo {
  const buf = Buffer.alloc(256);
  const text = buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString();
  const field = (k: string) => {
    const m = new RegExp(`${k}:(-?\\d+)`).exec(text);
    if (!m) throw new CkptError('UNSUPPORTED', `Cannot read message queue state: no ${k} in ${JSON.stringify(text)}`);
    return Number(m[1]);
  };
  return { notify: field('NOTIFY'), signo: field('SIGNO'), notifyPid: field('NOTIFY_PID') };
}

/** Receives every message, oldest of the highest priority first (at most `max`). */
function drain(fd: number, args: { msgsize: number; max: number }): MqMessage[] {
  const out: MqMessage[] = [];
  for (let m = mqReceive(fd, args.msgsize); m !== undefined; m = out.length < args.max ? mqReceive(fd, args.msgsize) : undefined) {
    out.push(m);
  }
  return out;
}

/** Sends the messages back in order; says how many could not be. */
function putBack(fd: number, msgs: readonly MqMessage[], what: string): void {
  for (const [i, m] of msgs.entries()) {
    try {
      mqSend(fd, m);
    } catch (e) {
      throw new CkptError('SYSCALL', `Cannot put back the messages of ${what}: ${msgs.length - i} of ${msgs.length} lost (${(e as Error).message})`, { cause: e });
    }
  }
}

function sigBit(signo: number): bigint {
  return 1n << BigInt(signo - 1);
}

/**
 * Fires the registration of the (emptied) queue with a probe message, reads its value
 * from the signal queued to the stopped owner and takes that signal out again.
 */
function fireNotification(ctx: DumpContext, args: { fd: number; info: QueueInfo; f: FdFacts; msgsize: number }): Notify {
  const { info, f } = args;
  if (info.notify === SIGEV.NONE) {
    mqSend(args.fd, { prio: 0, data: Buffer.alloc(0) });
    mqReceive(args.fd, args.msgsize);
    return { notify: SIGEV.NONE, signo: 0, value: 0n };
  }
  const tid = ctx.remote.tid;
  const queued = () => [...ptrace.peekSiginfo(tid, { shared: true }), ...ptrace.peekSiginfo(tid, { shared: false })];
  if (queued().some((s) => s.signo === info.signo)) {
    throw dumpError(f, { code: 'UNSUPPORTED', reason: `signal ${info.signo} of its message queue notification is already pending, so its value cannot be read` });
  }
  mqSend(args.fd, { prio: 0, data: Buffer.alloc(0) });
  mqReceive(args.fd, args.msgsize);
  const sent = ptrace.peekSiginfo(tid, { shared: true }).find((s) => s.signo === info.signo && s.code === SI_MESGQ);
  if (!sent) throw dumpError(f, { code: 'UNSUPPORTED', reason: `its message queue notification (signal ${info.signo}) did not arrive when fired` });
  const set = Buffer.alloc(8);
  set.writeBigUInt64LE(sigBit(info.signo));
  const zero = Buffer.alloc(16);
  const r = ctx.remote;
  r.call(NR.rt_sigtimedwait, [r.put(set, 0), 0, r.put(zero, 64), 8], `rt_sigtimedwait(${info.signo})`);
  return { notify: SIGEV.SIGNAL, signo: info.signo, value: sent.raw.readBigUInt64LE(24) };
}

function register(remote: RemoteTask, args: { fd: number; notify: Notify }): void {
  const data = encodeSigevent(args.notify);
  callIn(remote, { nr: NR.mq_notify, name: 'mq_notify', data, args: (addr) => [args.fd, addr] });
}

export function dumpMqueue(dc: { ctx: DumpContext }, f: FdFacts): EntryOf<'mqueue'> {
  const ctx = dc.ctx;
  const deleted = f.stat.nlink === 0 || f.link.endsWith(DELETED_SUFFIX);
  const name = f.link.slice(f.link.lastIndexOf('/') + 1);
  const q = openSync(fdPath(f.pid, f.fd), OWN);
  try {
    const info = readInfo(q);
    const attr = mqGetattr(q);
    const st = fstatSync(q);
    if (info.notifyPid !== 0 && info.notify === SIGEV.THREAD) {
      throw dumpError(f, { code: 'UNSUPPORTED', reason: `its message queue is registered for mq_notify(SIGEV_THREAD), which ckpt cannot restore (${f.link})` });
    }
    const ours = info.notifyPid === f.pid;
    if (info.notifyPid !== 0 && !ours && attr.curmsgs > 0) {
      throw dumpError(f, { code: 'UNSUPPORTED', reason: `its message queue has a notification registered by process ${info.notifyPid}; ckpt reads a non-empty queue only from the registering process (${f.link})` });
    }
    const what = `message queue ${f.link} (fd ${f.fd} of process ${f.pid})`;
    let msgs: MqMessage[] = [];
    let notify: Notify | undefined;
    try {
      msgs = drain(q, { msgsize: attr.msgsize, max: attr.maxmsg * 2 });
      if (ours) notify = fireNotification(ctx, { fd: q, info, f, msgsize: attr.msgsize });
    } finally {
      putBack(q, msgs, what);
      if (notify) register(ctx.remote, { fd: f.fd, notify });
    }
    const data = Buffer.concat(msgs.map((m) => m.data));
    return {
      kind: 'mqueue', fd: f.fd, flags: f.flags, ino: f.stat.ino,
      ...(deleted ? {} : { name }),
      maxmsg: attr.maxmsg, msgsize: attr.msgsize, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid,
      messages: msgs.map((m) => ({ prio: m.prio, size: m.data.length })),
      data: savePayload(ctx, `mqueue-${f.pid}-${f.fd}`, data),
      ...(notify ? { notify } : {}),
    };
  } finally {
    closeSync(q);
  }
}

function savedMessages(rc: KindRestoreContext, e: EntryOf<'mqueue'>): MqMessage[] {
  const bad = (reason: string) => restoreError(rc, { fd: e.fd, code: 'BAD_IMAGE', reason: `its message queue ${reason}` });
  const data = loadPayload(rc.ctx.blobs, e.data);
  if (typeof data === 'string') throw bad(data);
  if (e.messages.length > e.maxmsg) throw bad(`has ${e.messages.length} messages saved, more than its mq_maxmsg ${e.maxmsg}`);
  const msgs: MqMessage[] = [];
  let at = 0;
  for (const m of e.messages) {
    if (m.size > e.msgsize || at + m.size > data.length) throw bad('has a message longer than mq_msgsize or than its saved data');
    msgs.push({ prio: m.prio, data: data.subarray(at, at + m.size) });
    at += m.size;
  }
  if (at !== data.length) throw bad('has saved data beyond its messages');
  return msgs;
}

/** A named queue that outlived the dumped process: kept only if it is the saved one in every field and message. */
function reuseExisting(rc: KindRestoreContext, args: { e: EntryOf<'mqueue'>; name: string; msgs: MqMessage[] }): number {
  const { e, name, msgs } = args;
  const q = mqOpen(name, { flags: OWN, mode: 0, maxmsg: 0, msgsize: 0 });
  const differs = (why: string) =>
    restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `message queue /${name} exists and differs from the saved one (${why}); remove it (mq_unlink) to restore the saved queue` });
  try {
    const attr = mqGetattr(q);
    const st = fstatSync(q);
    const info = readInfo(q);
    if (attr.maxmsg !== e.maxmsg || attr.msgsize !== e.msgsize) throw differs(`mq_maxmsg ${attr.maxmsg}, mq_msgsize ${attr.msgsize}`);
    if ((st.mode & 0o7777) !== e.mode || st.uid !== e.uid || st.gid !== e.gid) throw differs(`mode 0${(st.mode & 0o7777).toString(8)}, owner ${st.uid}:${st.gid}`);
    if (info.notifyPid !== 0) throw differs(`process ${info.notifyPid} is registered for its notification`);
    if (attr.curmsgs !== msgs.length) throw differs(`${attr.curmsgs} messages, not ${msgs.length}`);
    let now: MqMessage[] = [];
    try {
      now = drain(q, { msgsize: attr.msgsize, max: attr.maxmsg * 2 });
    } finally {
      putBack(q, now, `message queue /${name}`);
    }
    const same = now.length === msgs.length && now.every((m, i) => m.prio === msgs[i]!.prio && m.data.equals(msgs[i]!.data));
    if (!same) throw differs('its messages are not the saved ones');
    return q;
  } catch (err) {
    closeSync(q);
    throw err;
  }
}

function createQueue(rc: KindRestoreContext, e: EntryOf<'mqueue'>): number {
  const msgs = savedMessages(rc, e);
  const name = e.name ?? `ckpt-${rc.ctx.pid}-${e.ino}-${process.pid}`;
  let q: number;
  try {
    q = mqOpen(name, { flags: OWN | O.CREAT | O.EXCL, mode: 0o600, maxmsg: e.maxmsg, msgsize: e.msgsize });
  } catch (err) {
    if (e.name !== undefined && isErrno(err, 'EEXIST')) return reuseExisting(rc, { e, name, msgs });
    throw err;
  }
  try {
    if (e.name === undefined) mqUnlink(name);
    else rc.ctx.undo.push(`remove message queue /${name}`, () => mqUnlink(name));
    // mq_open applied our umask: the saved mode and owner are set on the queue itself.
    fchmodSync(q, e.mode);
    fchownSync(q, e.uid, e.gid);
    putBack(q, msgs, `message queue /${name}`);
    return q;
  } catch (err) {
    closeSync(q);
    throw err;
  }
}

export const mqueueReopener: LocalReopener<'mqueue'> = {
  at: 'local',
  open(rc, e) {
    // One queue however many descriptions of it the tree has (two opens, or several processes).
    const key = `mqueue:${e.ino}`;
    let q = rc.ctx.shared.get(key);
    if (q === undefined) {
      q = createQueue(rc, e);
      rc.ctx.shared.set(key, q);
    }
    return openSync(`/proc/self/fd/${q}`, (e.flags & (O.ACCMODE | O.NONBLOCK)) | O.CLOEXEC);
  },
};

/** Registers each saved notification from its owner, once its whole fd table is in place. */
export function restoreMqueueNotify(rc: KindRestoreContext, fds: readonly FdEntry[]): void {
  const done = new Set<number>();
  for (const e of fds) {
    if (e.kind !== 'mqueue' || !e.notify || done.has(e.ino)) continue;
    register(rc.ctx.remote, { fd: e.fd, notify: e.notify });
    done.add(e.ino);
  }
}
