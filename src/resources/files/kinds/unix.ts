/**
 * Unix socketpairs (stream, datagram, seqpacket), within one process or between
 * processes of the tree, with their options (sockopts.ts) and shutdown state. The peer's inode comes from NETLINK_SOCK_DIAG (there is no
 * /proc field for it). Each socket's receive queue is read without consuming it from a
 * grabbed copy: SO_PEEK_OFF 0 and repeated MSG_PEEK, one message (with its boundary)
 * per call. Restore creates the pair in the restorer once for the whole tree
 * (`unix:<ino>` for both ends), queues each end's messages by sending them from the
 * other end, and hands each socket to its process.
 */
import type { UnixDiag } from '../../../sys/index.js';
import {
  closeFd, F, fcntl, FIONREAD, getsockoptInt, ioctlInt, isErrno, MSG, recvmsgPlain, send, SO, SOCK,
  socketpair, SOL_SOCKET, UNIX_DIAG,
} from '../../../sys/index.js';
import { setsockoptInt } from '../../../sys/ioctl.js';
import { grabFd } from '../../transfer.js';
import { applySockOpts, pendingError, readSockOpts, restoreShutdown, setBufSize, SO_BUF_LOCK } from './sockopts.js';
import type { FdFacts } from '../facts.js';
import { O } from '../flags.js';
import { loadPayload, savePayload } from '../objects.js';
import type { EntryOf, UnixObject } from '../schema.js';
import { dumpError, restoreError, type KindDumpContext, type KindRestoreContext, type LocalReopener } from './kind.js';

const TCP_LISTEN = 10;
const TYPES: Record<number, string> = { [SOCK.STREAM]: 'stream', [SOCK.DGRAM]: 'datagram', [SOCK.SEQPACKET]: 'seqpacket' };
/** Larger than any unix datagram (bounded by the sender's SO_SNDBUF, 208 KiB by default; wmem_max caps it). */
const DGRAM_MAX = 4 << 20;
const MAX_MESSAGES = 1 << 20;

export function socketIno(link: string): number | undefined {
  const m = /^socket:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

const peerOf = (d: UnixDiag) => d.attrs.get(UNIX_DIAG.PEER)?.readUInt32LE(0) ?? 0;
const nameOf = (d: UnixDiag) => {
  const n = d.attrs.get(UNIX_DIAG.NAME);
  if (!n) return undefined;
  return n[0] === 0 ? `@${n.subarray(1).toString('latin1')}` : n.toString('utf8').replace(/\0+$/, '');
};

function unsupported(f: FdFacts, why: string) {
  return dumpError(f, { code: 'UNSUPPORTED', reason: `${why} (${f.link})` });
}

/** The socket's diag record, checked to be one end of a socketpair-like connection ckpt can rebuild. */
function checkedPair(dc: KindDumpContext, f: FdFacts, ino: number): { d: UnixDiag; peer: number } {
  const diag = dc.objects.unixDiag();
  const d = diag.get(ino);
  if (!d) throw unsupported(f, 'sockets other than unix socketpairs are not supported yet (not a unix socket)');
  const name = nameOf(d);
  if (d.state === TCP_LISTEN) throw unsupported(f, `listening unix sockets${name ? ` (${name})` : ''} are not supported yet`);
  if (name !== undefined) throw unsupported(f, `named unix sockets (bound to ${name}) are not supported yet`);
  if (!(d.type in TYPES)) throw unsupported(f, `unix sockets of type ${d.type} are not supported`);
  const peer = peerOf(d);
  if (peer === 0) throw unsupported(f, 'unconnected unix sockets are not supported yet');
  const p = diag.get(peer);
  if (!p || peerOf(p) !== ino) throw unsupported(f, `one-way connected unix sockets are not supported yet (peer ${peer})`);
  const peerName = nameOf(p);
  if (peerName !== undefined) throw unsupported(f, `unix sockets connected to a named socket (${peerName}) are not supported yet`);
  return { d, peer };
}

const shutdownOf = (d: UnixDiag) => d.attrs.get(UNIX_DIAG.SHUTDOWN)?.readUInt8(0) ?? 0;

/** A fresh socketpair end of `type`, the reference for option defaults. */
const freshUnix = (type: number) => () => {
  const [a, b] = socketpair(type);
  closeFd(b);
  return a;
};

/** One peek with no control buffer: SCM_RIGHTS or credentials in the message show up as MSG_CTRUNC. */
function peekOnce(f: FdFacts, fd: number, buf: Buffer): number | undefined {
  let r;
  try {
    r = recvmsgPlain(fd, buf, MSG.PEEK | MSG.DONTWAIT);
  } catch (e) {
    if (isErrno(e, 'EAGAIN')) return undefined;
    throw e;
  }
  if (r.msgFlags & MSG.CTRUNC) {
    throw unsupported(f, 'unix sockets with file descriptors (SCM_RIGHTS) or credentials in flight are not supported yet');
  }
  if (r.msgFlags & MSG.TRUNC) throw unsupported(f, `a queued datagram is larger than ${buf.length} bytes`);
  return r.n;
}

/** The receive queue of local socket `fd`, message by message, left in place. */
function peekQueue(dc: KindDumpContext, f: FdFacts, sock: { fd: number; type: number }): Buffer[] {
  const { fd, type } = sock;
  const prev = getsockoptInt(fd, SOL_SOCKET, SO.PEEK_OFF);
  setsockoptInt(fd, { level: SOL_SOCKET, name: SO.PEEK_OFF, value: 0 });
  try {
    if (type === SOCK.STREAM) {
      const inq = ioctlInt(fd, FIONREAD);
      const buf = Buffer.alloc(inq);
      let got = 0;
      while (got < inq) {
        const n = peekOnce(f, fd, buf.subarray(got));
        if (!n) break;
        got += n;
      }
      return got > 0 ? [buf.subarray(0, got)] : [];
    }
    const buf = Buffer.alloc(DGRAM_MAX);
    const out: Buffer[] = [];
    for (;;) {
      const n = peekOnce(f, fd, buf);
      if (n === undefined) return out;
      if (n === 0) {
        // A zero-length datagram does not move the peek offset: the ones behind it cannot be seen.
        dc.ctx.warn(`fd ${f.fd} of process ${f.pid}: a zero-length datagram is queued; it and the datagrams after it are not saved`);
        return out;
      }
      out.push(Buffer.from(buf.subarray(0, n)));
      if (out.length > MAX_MESSAGES) throw unsupported(f, `more than ${MAX_MESSAGES} queued messages`);
    }
  } finally {
    setsockoptInt(fd, { level: SOL_SOCKET, name: SO.PEEK_OFF, value: prev });
  }
}

export function dumpUnix(dc: KindDumpContext, f: FdFacts): EntryOf<'unix'> {
  const ino = socketIno(f.link);
  if (ino === undefined) throw unsupported(f, 'cannot read the socket inode');
  const { d, peer } = checkedPair(dc, f, ino);
  if (!dc.objects.unix.has(ino)) {
    const local = grabFd(f.pid, f.fd);
    try {
      const pending = pendingError(local);
      if (pending) throw unsupported(f, pending);
      const opts = readSockOpts(f, { fd: local, proto: 'unix', fresh: freshUnix(d.type) });
      const msgs = peekQueue(dc, f, { fd: local, type: d.type });
      const shutdown = shutdownOf(d);
      const peerShutdown = shutdownOf(dc.objects.unixDiag().get(peer)!);
      dc.objects.unix.set(ino, {
        ino, peer, type: d.type as UnixObject['type'],
        sndbuf: getsockoptInt(local, SOL_SOCKET, SO.SNDBUF),
        rcvbuf: getsockoptInt(local, SOL_SOCKET, SO.RCVBUF),
        ...(opts.length > 0 ? { opts } : {}),
        ...(shutdown ? { shutdown } : {}),
        ...(peerShutdown ? { peerShutdown } : {}),
        lengths: msgs.map((m) => m.length),
        data: savePayload(dc.ctx, `fd-${f.pid}-unix-${ino}.queue`, Buffer.concat(msgs)),
      });
    } finally {
      closeFd(local);
    }
  }
  return { kind: 'unix', fd: f.fd, flags: f.flags, ino };
}


/** Queues `obj`'s saved messages at its socket by sending them from the peer end `from`. */
function queueAt(rc: KindRestoreContext, args: { e: EntryOf<'unix'>; obj: UnixObject; from: number }): void {
  const { e, obj, from } = args;
  const data = loadPayload(rc.ctx.blobs, obj.data);
  if (typeof data === 'string') throw restoreError(rc, { fd: e.fd, code: 'BAD_IMAGE', reason: `the queue of socket ${obj.ino} ${data}` });
  if (data.length === 0) return;
  const prev = getsockoptInt(from, SOL_SOCKET, SO.SNDBUF);
  // Setting a size locks it: the sender's lock bits are put back with its size.
  const lock = readBufLock(from);
  setBufSize(from, { name: SO.SNDBUF, value: Math.max(prev, 2 * data.length + (1 << 20)) }); // room for it all, whatever the peer's limit
  try {
    let off = 0;
    for (const len of obj.lengths) {
      const msg = data.subarray(off, off + len);
      off += len;
      if (obj.type === SOCK.STREAM) {
        for (let sent = 0; sent < len; ) sent += send(from, msg.subarray(sent), MSG.DONTWAIT | MSG.NOSIGNAL);
      } else if (send(from, msg, MSG.DONTWAIT | MSG.NOSIGNAL) !== len) {
        throw restoreError(rc, { fd: e.fd, code: 'INTERNAL', reason: `a ${len}-byte message was sent in part` });
      }
    }
  } finally {
    setBufSize(from, { name: SO.SNDBUF, value: prev });
    if (lock !== undefined) setsockoptInt(from, { level: SOL_SOCKET, name: SO_BUF_LOCK, value: lock });
  }
}

function readBufLock(fd: number): number | undefined {
  try {
    return getsockoptInt(fd, SOL_SOCKET, SO_BUF_LOCK);
  } catch {
    return undefined; // a kernel before 5.14
  }
}

export const unixReopener: LocalReopener<'unix'> = {
  at: 'local',
  open(rc, e) {
    const obj = rc.unix.get(e.ino);
    if (!obj) throw restoreError(rc, { fd: e.fd, code: 'BAD_IMAGE', reason: `its socket ${e.ino} is not saved` });
    const key = `unix:${e.ino}`;
    let mine = rc.ctx.shared.get(key);
    if (mine === undefined) {
      const [a, b] = socketpair(obj.type);
      rc.ctx.shared.set(key, a);
      rc.ctx.shared.set(`unix:${obj.peer}`, b);
      mine = a;
    }
    if (rc.ctx.shared.get(`${key}:queued`) === undefined) {
      const peerFd = rc.ctx.shared.get(`unix:${obj.peer}`)!;
      setBufSize(mine, { name: SO.SNDBUF, value: obj.sndbuf });
      setBufSize(mine, { name: SO.RCVBUF, value: obj.rcvbuf });
      queueAt(rc, { e, obj, from: peerFd });
      try {
        applySockOpts(mine, { opts: obj.opts ?? [], phase: 'bind' });
        applySockOpts(mine, { opts: obj.opts ?? [], phase: 'state' });
      } catch (err) {
        throw restoreError(rc, { fd: e.fd, code: 'SYSCALL', reason: `${(err as Error).message} (socket:[${e.ino}])`, cause: err });
      }
      rc.ctx.shared.set(`${key}:queued`, fcntl(mine, F.DUPFD_CLOEXEC, 0));
      // Both queues are refilled once the second end gets here: now either end may stop sending or receiving.
      if (rc.ctx.shared.get(`unix:${obj.peer}:queued`) !== undefined) {
        restoreShutdown(mine, obj.shutdown ?? 0);
        restoreShutdown(peerFd, obj.peerShutdown ?? 0);
      }
    }
    const fd = fcntl(mine, F.DUPFD_CLOEXEC, 0);
    // A socket has one open file description: its status flags are set once, here.
    const fl = fcntl(fd, F.GETFL);
    fcntl(fd, F.SETFL, (e.flags & O.NONBLOCK) ? fl | O.NONBLOCK : fl & ~O.NONBLOCK);
    return fd;
  },
};
