/**
 * Dump of a unix socket (stream, datagram, seqpacket) of any shape: unnamed or bound to
 * a path or an abstract name; listening, with the clients of connections not accepted
 * yet; connected both ways (a socketpair, or a client and the socket accepted for it),
 * one way (a datagram socket connected to a named one), or not at all. What the kernel
 * shows comes from NETLINK_SOCK_DIAG (peer, name, bound file, backlog clients, queue
 * lengths), getpeername and SIOCUNIXFILE on a grabbed copy; the receive queue is read
 * in place with SO_PEEK_OFF and MSG_PEEK, one message (with its boundary and sender)
 * per call. What cannot be rebuilt exactly is refused, naming the socket.
 */
import { readlinkSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { UnixDiag } from '../../../sys/index.js';
import {
  closeFd, FIONREAD, getsockoptInt, ioctlInt, isErrno, MSG, recv, SO, SOCK, socketpair, SOL_SOCKET, UNIX_DIAG,
} from '../../../sys/index.js';
import { setsockoptInt } from '../../../sys/ioctl.js';
import { formatUnixAddr, peerCred, peerName, recvmsgControl, unixFile, type MessageCreds, type PeerCred } from '../../../sys/unix-socket.js';
import { readStatus } from '../../../proc/index.js';
import { grabFd } from '../../transfer.js';
import { pendingError, readSockOpts } from './sockopts.js';
import type { FdFacts } from '../facts.js';
import { savePayload } from '../objects.js';
import type { EntryOf, FdEntry, PassedFds, UnixFile, UnixObject } from '../schema.js';
import { dumpError, type KindDumpContext } from './kind.js';

export const TCP_ESTABLISHED = 1;
export const TCP_LISTEN = 10;
const TYPES: Record<number, string> = { [SOCK.STREAM]: 'stream', [SOCK.DGRAM]: 'datagram', [SOCK.SEQPACKET]: 'seqpacket' };
/** Larger than any unix datagram (bounded by the sender's SO_SNDBUF, 208 KiB by default; wmem_max caps it). */
const DGRAM_MAX = 4 << 20;
const MAX_MESSAGES = 1 << 20;

export function socketIno(link: string): number | undefined {
  const m = /^socket:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

const peerOf = (d: UnixDiag) => d.attrs.get(UNIX_DIAG.PEER)?.readUInt32LE(0) ?? 0;
const shutdownOf = (d: UnixDiag) => d.attrs.get(UNIX_DIAG.SHUTDOWN)?.readUInt8(0) ?? 0;
/** The name as raw sun_path bytes (a path without its NUL), or undefined when unnamed. */
export function addrOf(d: UnixDiag): Buffer | undefined {
  const n = d.attrs.get(UNIX_DIAG.NAME);
  if (!n || n.length === 0) return undefined;
  if (n[0] === 0) return n;
  const nul = n.indexOf(0);
  return nul < 0 ? n : n.subarray(0, nul);
}
/** [rqueue, wqueue]: for a listener the clients waiting and the backlog; else bytes queued in and out. */
const rqlenOf = (d: UnixDiag) => {
  const b = d.attrs.get(UNIX_DIAG.RQLEN);
  return b ? [b.readUInt32LE(0), b.readUInt32LE(4)] : [0, 0];
};
const vfsOf = (d: UnixDiag) => {
  const b = d.attrs.get(UNIX_DIAG.VFS);
  return b ? { ino: b.readUInt32LE(0), dev: b.readUInt32LE(4) } : undefined;
};
/** The clients (their inodes) of the connections waiting in a listener's backlog, in queue order. */
const waitingOf = (d: UnixDiag) => {
  const b = d.attrs.get(UNIX_DIAG.ICONS);
  const out: number[] = [];
  for (let i = 0; b && i + 4 <= b.length; i += 4) out.push(b.readUInt32LE(i));
  return out;
};
const hex = (b: Buffer) => b.toString('hex');

function unsupported(f: FdFacts, why: string) {
  return dumpError(f, { code: 'UNSUPPORTED', reason: `${why} (${f.link})` });
}

/** A fresh socketpair end of `type`, the reference for option defaults. */
const freshUnix = (type: number) => () => {
  const [a, b] = socketpair(type);
  closeFd(b);
  return a;
};

const MSG_CMSG_CLOEXEC = 0x40000000;

/**
 * One peek. Files passed with the message (SCM_RIGHTS) come as copies, which are saved
 * as what they are (dc.passedFd) and closed; credentials (SCM_CREDENTIALS, shown while
 * SO_PASSCRED is on) are returned when the message carries some (pid 0: none).
 */
function peekOnce(dc: KindDumpContext, f: FdFacts, args: { fd: number; buf: Buffer }): { n: number; from: Buffer; passed?: FdEntry[]; creds?: MessageCreds } | undefined {
  let r;
  try {
    r = recvmsgControl(args.fd, args.buf, MSG.PEEK | MSG.DONTWAIT | MSG_CMSG_CLOEXEC);
  } catch (e) {
    if (isErrno(e, 'EAGAIN')) return undefined;
    throw e;
  }
  try {
    if (r.msgFlags & MSG.CTRUNC) throw unsupported(f, 'a queued message carries more files or control data than ckpt reads');
    if (r.msgFlags & MSG.TRUNC) throw unsupported(f, `a queued datagram is larger than ${args.buf.length} bytes`);
    const creds = r.creds && r.creds.pid !== 0 ? r.creds : undefined;
    if (r.rights.length === 0) return { n: r.n, from: r.from, creds };
    if (!dc.passedFd) throw unsupported(f, 'files passed in a queued message (SCM_RIGHTS) cannot be saved here');
    const passed = r.rights.map((fd, i) => {
      try {
        return { ...dc.passedFd!(fd), fd: i } as FdEntry;
      } catch (e) {
        throw unsupported(f, `a file passed in a queued message cannot be saved: ${(e as Error).message.replace(/^Cannot dump fd \d+ of process \d+: /, '')}`);
      }
    });
    return { n: r.n, from: r.from, creds, passed };
  } finally {
    for (const x of r.rights) closeFd(x);
  }
}

interface Queue {
  msgs: Buffer[];
  /** Each datagram's sender address (empty: unnamed). */
  from: Buffer[];
  /** The files passed with message i. */
  passed: Map<number, FdEntry[]>;
  /** The credentials each message carries (SCM_CREDENTIALS), undefined for none. */
  creds: (MessageCreds | undefined)[];
}

function oobQueued(fd: number): boolean {
  try {
    return recv(fd, Buffer.alloc(1), MSG.OOB | MSG.PEEK | MSG.DONTWAIT) === 1;
  } catch (e) {
    if (isErrno(e, 'EINVAL') || isErrno(e, 'EAGAIN') || isErrno(e, 'EOPNOTSUPP')) return false;
    throw e;
  }
}

const sameCreds = (a: MessageCreds | undefined, b: MessageCreds | undefined) => a?.pid === b?.pid && a?.uid === b?.uid && a?.gid === b?.gid;
const SO_PASSCRED = 16;

/** The receive queue of local socket `fd`, message by message (a stream's in chunks that end where files were passed), left in place. */
function peekQueue(dc: KindDumpContext, f: FdFacts, sock: { fd: number; type: number }): Queue {
  const { fd, type } = sock;
  const prev = getsockoptInt(fd, SOL_SOCKET, SO.PEEK_OFF);
  // Credentials a message carries show only while SO_PASSCRED is on (they are kept either
  // way, and seen once the program turns it on): on for the peeks, then put back.
  const passcred = getsockoptInt(fd, SOL_SOCKET, SO_PASSCRED);
  setsockoptInt(fd, { level: SOL_SOCKET, name: SO.PEEK_OFF, value: 0 });
  if (!passcred) setsockoptInt(fd, { level: SOL_SOCKET, name: SO_PASSCRED, value: 1 });
  try {
    const out: Queue = { msgs: [], from: [], passed: new Map(), creds: [] };
    if (type === SOCK.STREAM) {
      // Peeks read an out-of-band byte as plain data, so it would come back in the
      // stream, its mark lost. Inline (SO_OOBINLINE) it is plain data already: EINVAL.
      if (oobQueued(fd)) throw unsupported(f, 'an out-of-band byte (MSG_OOB) is queued, which ckpt cannot put back at its place in the stream');
      const inq = ioctlInt(fd, FIONREAD);
      const buf = Buffer.alloc(inq);
      let got = 0;
      let chunk = 0;
      let creds: MessageCreds | undefined;
      const cut = () => {
        out.msgs.push(buf.subarray(chunk, got));
        out.creds.push(creds);
        chunk = got;
      };
      while (got < inq) {
        const r = peekOnce(dc, f, { fd, buf: buf.subarray(got) });
        if (!r || r.n === 0) break;
        // The kernel never glues bytes of different credentials in one read: nor do the messages.
        if (got > chunk && !sameCreds(creds, r.creds)) cut();
        creds = r.creds;
        got += r.n;
        // A peek stops after a chunk that carried files: the chunks up to there are one message.
        if (r.passed) {
          out.passed.set(out.msgs.length, r.passed);
          cut();
        }
      }
      if (got > chunk) cut();
      return out;
    }
    const buf = Buffer.alloc(DGRAM_MAX);
    for (;;) {
      const r = peekOnce(dc, f, { fd, buf });
      if (r === undefined) return out;
      // The peek offset does not move past an empty datagram, and one that was peeked
      // before is skipped by every later peek: it cannot be read reliably in place.
      if (r.n === 0) throw unsupported(f, 'a zero-length datagram is queued, which cannot be read without receiving it');
      if (r.passed) out.passed.set(out.msgs.length, r.passed);
      out.msgs.push(Buffer.from(buf.subarray(0, r.n)));
      out.from.push(r.from);
      out.creds.push(r.creds);
      if (out.msgs.length > MAX_MESSAGES) throw unsupported(f, `more than ${MAX_MESSAGES} queued messages`);
    }
  } finally {
    if (!passcred) setsockoptInt(fd, { level: SOL_SOCKET, name: SO_PASSCRED, value: 0 });
    setsockoptInt(fd, { level: SOL_SOCKET, name: SO.PEEK_OFF, value: prev });
  }
}

/**
 * The credentials of each queued message, for sending them again (SCM_CREDENTIALS): the
 * process they name must be in the dump, since the kernel takes only a live pid and
 * another process could have that pid at restore.
 */
function queuedCreds(dc: KindDumpContext, f: FdFacts, q: Queue): ({ pid: number; uid: number; gid: number } | null)[] | undefined {
  if (!q.creds.some((c) => c !== undefined)) return undefined;
  const inTree = dc.ctx.inTree ?? ((pid: number) => pid === dc.ctx.pid);
  const outside = q.creds.find((c) => c !== undefined && !inTree(c.pid));
  if (outside && !dc.ctx.checking) {
    throw unsupported(f, `a queued message carries the credentials of process ${outside.pid} (SCM_CREDENTIALS), which is not in the dump: they cannot be sent again`);
  }
  return q.creds.map((c) => (c ? { pid: c.pid, uid: c.uid, gid: c.gid } : null));
}

/** The socket file of a path-bound socket, as SIOCUNIXFILE finds it (wherever it is now). */
function boundFile(f: FdFacts, args: { fd: number; addr: Buffer }): UnixFile {
  const name = args.addr.toString('utf8');
  if (name.includes('\uFFFD')) throw unsupported(f, `its name is not valid UTF-8 (${formatUnixAddr(args.addr)})`);
  let file: number;
  try {
    file = unixFile(args.fd);
  } catch (e) {
    throw unsupported(f, `the file of the socket bound to ${name} cannot be found (${(e as Error).message})`);
  }
  try {
    const st = statSync(`/proc/self/fd/${file}`);
    const link = readlinkSync(`/proc/self/fd/${file}`);
    const gone = link.endsWith(' (deleted)');
    const out: UnixFile = { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, dev: st.dev, inode: st.ino, ...(gone ? { gone: true as const } : {}) };
    if (!name.startsWith('/')) {
      // A relative name is bound again from the directory it resolves in now. Once its
      // file moved or is gone any directory will do, since the file goes at once: the
      // one it moved to, or the process's.
      if (!gone && link.endsWith(`/${name}`)) return { ...out, dir: link.slice(0, -name.length - 1) || '/' };
      const dir = gone ? readlinkSync(`/proc/${f.pid}/cwd`) : dirname(link);
      return { ...out, dir, ...(gone ? {} : { movedTo: link }) };
    }
    if (!gone && link !== name) return { ...out, movedTo: link };
    return out;
  } finally {
    closeFd(file);
  }
}

/** Whether `d` (connected, named) got its name by being accepted, not by its own bind. */
function isAccepted(d: UnixDiag, args: { peer: UnixDiag; diag: Map<number, UnixDiag> }): boolean {
  const addr = addrOf(d)!;
  const vfs = vfsOf(d);
  for (const l of args.diag.values()) {
    if (l.state !== TCP_LISTEN || l.type !== d.type) continue;
    const la = addrOf(l);
    const lv = vfsOf(l);
    if (la?.equals(addr) && (vfs === undefined || (lv?.ino === vfs.ino && lv.dev === vfs.dev))) return true;
  }
  // The listener is gone: an unnamed peer was a client; of two named ends, the accepted
  // one got its inode at accept(), after its client's socket() (a heuristic).
  const peerAddr = addrOf(args.peer);
  return peerAddr === undefined || d.ino > args.peer.ino;
}

/** How the socket is connected: the fields of its object that say so. */
function connection(dc: KindDumpContext, f: FdFacts, args: { d: UnixDiag; fd: number }): Partial<UnixObject> {
  const { d, fd } = args;
  const diag = dc.objects.unixDiag();
  const inTree = (ino: number) => (dc.ctx.linkCount?.(`socket:[${ino}]`) ?? 1) > 0;
  const peer = peerOf(d);
  if (d.state === TCP_LISTEN) {
    const waiting = waitingOf(d);
    const outside = waiting.find((c) => !inTree(c));
    if (outside !== undefined) throw unsupported(f, `a connection from socket:[${outside}], outside the dump, waits in its backlog`);
    return { backlog: rqlenOf(d)[1] ?? 0, ...(waiting.length > 0 ? { waiting } : {}) };
  }
  if (peer === 0) {
    // A datagram socket another one connected to shows ESTABLISHED too: it is not connected itself.
    if (d.state !== TCP_ESTABLISHED || d.type === SOCK.DGRAM) return {};
    const listener = [...diag.values()].find((l) => l.state === TCP_LISTEN && waitingOf(l).includes(d.ino));
    // Its peer was closed: what it sent is still queued here, then end of file.
    if (!listener) return { peerClosed: true };
    const to = addrOf(listener)!;
    const queued = rqlenOf(d)[1] ?? 0;
    if (!inTree(listener.ino)) {
      if (dc.ctx.extUnixSk && queued === 0) return { external: true, peerAddr: hex(to) };
      throw unsupported(f, `its connection waits in the backlog of ${formatUnixAddr(to)}, a listener outside the dump${hint(dc)}`);
    }
    if (queued > 0) throw unsupported(f, `it sent ${queued} bytes on a connection that ${formatUnixAddr(to)} has not accepted yet, which cannot be read without accepting it`);
    return { pending: true, peerAddr: hex(to), connector: holderCred(f.pid) };
  }
  const p = diag.get(peer);
  if (!p) throw unsupported(f, `its peer socket:[${peer}] is not a unix socket ckpt can see`);
  const mutual = peerOf(p) === d.ino;
  const peerAddr = addrOf(p);
  if (!inTree(peer)) return outside(dc, f, { d, fd, p });
  if (!mutual) {
    if (d.type !== SOCK.DGRAM || peerAddr === undefined) throw unsupported(f, `it is connected one way to socket:[${peer}], which has no name`);
    return { peer, peerAddr: hex(peerName(fd)) };
  }
  const accepted = d.type !== SOCK.DGRAM && addrOf(d) !== undefined && isAccepted(d, { peer: p, diag });
  return { peer, ...(accepted ? { accepted: true as const } : {}) };
}

const hint = (dc: KindDumpContext) => (dc.ctx.extUnixSk ? '' : ' (--ext-unix-sk connects a client to that name again at restore)');

/**
 * A socket whose peer is outside the dump: with --ext-unix-sk, a client (or a datagram
 * socket) connected to a name is saved to be connected to that name again; its peer's
 * side is the outside's. The accepted end of an outside client cannot be made again.
 */
function outside(dc: KindDumpContext, f: FdFacts, args: { d: UnixDiag; fd: number; p: UnixDiag }): Partial<UnixObject> {
  const { d, fd, p } = args;
  const peerAddr = addrOf(p);
  const what = `its peer socket:[${p.ino}]${peerAddr ? ` (${formatUnixAddr(peerAddr)})` : ''} is outside the dump`;
  if (!peerAddr) throw unsupported(f, what);
  const client = d.type === SOCK.DGRAM || addrOf(d) === undefined || isAccepted(p, { peer: d, diag: dc.objects.unixDiag() });
  if (!client) throw unsupported(f, `${what}, and it was accepted from a client there`);
  if (!dc.ctx.extUnixSk) throw unsupported(f, `${what}${hint(dc)}`);
  const inq = d.type === SOCK.DGRAM ? 0 : (rqlenOf(d)[0] ?? 0);
  if (inq > 0) throw unsupported(f, `${what}, and ${inq} bytes it sent are queued, which cannot be sent again from there`);
  // Connected again from the process that holds it, so the outside server's accept() names it, not ckpt.
  return { external: true, peerAddr: hex(peerName(fd)), connector: holderCred(f.pid) };
}

/**
 * Who a connection not accepted yet is made again by: the embryo in the backlog holds the
 * credentials of whoever called connect(), which nothing shows before accept(); the
 * process holding the client, with its effective ids and groups now, is the best guess
 * (and not ckpt, which would hand the server root's credentials).
 */
function holderCred(pid: number): PeerCred {
  const st = readStatus(pid);
  return { pid, uid: st.uid[1], gid: st.gid[1], groups: st.groups };
}

/**
 * Its peer credentials, which restore reproduces by making the socket inside the process
 * they name (unix-cred.ts): refused when that process is not in the dump (it exited, or
 * lives outside), since no other process can give the kernel that pid. A socket connected
 * outside (--ext-unix-sk) gets the outside's again by connecting there.
 */
function credOf(dc: KindDumpContext, f: FdFacts, fd: number): PeerCred | undefined {
  const cred = peerCred(fd);
  if (!cred) return undefined;
  const inTree = dc.ctx.inTree ?? ((pid: number) => pid === dc.ctx.pid);
  // restore --check compares what it reads with the images instead, naming the field.
  if (!inTree(cred.pid) && !dc.ctx.checking) {
    throw unsupported(f, `its peer credentials (SO_PEERCRED) name process ${cred.pid}, which is not in the dump: no restored process could make the kernel record that pid again`);
  }
  return cred;
}

/** The saved object of socket `d`, read through `fd`, a local copy of it. */
function describe(dc: KindDumpContext, f: FdFacts, args: { d: UnixDiag; fd: number }): UnixObject {
  const { d, fd } = args;
  const pending = pendingError(fd);
  if (pending) throw unsupported(f, pending);
  const conn = connection(dc, f, args);
  const addr = addrOf(d);
  const file = addr && addr[0] !== 0 && !conn.accepted ? boundFile(f, { fd, addr }) : undefined;
  const opts = readSockOpts(f, { fd, proto: 'unix', fresh: freshUnix(d.type) });
  const q: Queue = conn.backlog !== undefined ? { msgs: [], from: [], passed: new Map(), creds: [] } : peekQueue(dc, f, { fd, type: d.type });
  const msgCreds = queuedCreds(dc, f, q);
  for (const [msg, fds] of q.passed) dc.objects.passed.push({ ino: d.ino, msg, fds: fds as PassedFds['fds'] });
  const peer = conn.peer ?? 0;
  const peerDiag = peer ? dc.objects.unixDiag().get(peer) : undefined;
  const peerAddr = peerDiag ? addrOf(peerDiag) : undefined;
  // Datagrams from another socket than the peer need their senders' names.
  const named = q.from.some((a) => a.length > 0 && !(peerAddr && a.equals(peerAddr)));
  if (named && peer !== 0 && peerDiag && peerOf(peerDiag) === d.ino) {
    throw unsupported(f, 'datagrams from other sockets than its peer are queued on a connected socket');
  }
  if (q.msgs.length > 0 && d.type === SOCK.DGRAM && addr === undefined && peer === 0) {
    throw unsupported(f, 'datagrams are queued on an unnamed socket that has no peer to have sent them');
  }
  const shutdown = shutdownOf(d);
  const peerShutdown = peerDiag ? shutdownOf(peerDiag) : 0;
  const cred = conn.external ? undefined : credOf(dc, f, fd);
  return {
    ...(cred ? { cred } : {}),
    ...(msgCreds ? { msgCreds } : {}),
    ino: d.ino, type: d.type as UnixObject['type'], ...conn, peer,
    ...(addr ? { addr: hex(addr) } : {}),
    ...(file ? { file } : {}),
    sndbuf: getsockoptInt(fd, SOL_SOCKET, SO.SNDBUF),
    rcvbuf: getsockoptInt(fd, SOL_SOCKET, SO.RCVBUF),
    ...(opts.length > 0 ? { opts } : {}),
    ...(shutdown ? { shutdown } : {}),
    ...(peerShutdown ? { peerShutdown } : {}),
    lengths: q.msgs.map((m) => m.length),
    ...(q.from.some((a) => a.length > 0) ? { senders: q.from.map(hex) } : {}),
    data: savePayload(dc.ctx, `fd-${f.pid}-unix-${d.ino}.queue`, Buffer.concat(q.msgs)),
  };
}

export function dumpUnix(dc: KindDumpContext, f: FdFacts): EntryOf<'unix'> {
  const ino = socketIno(f.link);
  if (ino === undefined) throw unsupported(f, 'cannot read the socket inode');
  const d = dc.objects.unixDiag().get(ino);
  if (!d) throw unsupported(f, 'sockets other than unix sockets are not supported yet (not a unix socket)');
  if (!(d.type in TYPES)) throw unsupported(f, `unix sockets of type ${d.type} are not supported`);
  if (!dc.objects.unix.has(ino)) {
    const local = grabFd(f.pid, f.fd);
    try {
      dc.objects.unix.set(ino, describe(dc, f, { d, fd: local }));
    } finally {
      closeFd(local);
    }
  }
  return { kind: 'unix', fd: f.fd, flags: f.flags, ino };
}
