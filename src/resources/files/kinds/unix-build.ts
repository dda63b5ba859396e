/**
 * Restore of every unix socket of the tree at once, in the restorer, the first time a
 * process needs one: names and connections depend on each other across processes (a
 * listener's name is also its accepted sockets'; a datagram socket must be bound before
 * another connects to it, and filled before it connects itself). The order:
 *
 * 1. stale socket files at the names to bind are removed (only a socket inode saved as
 *    this socket's file, bound by no live socket; anything else there refuses);
 * 2. each accepted connection is made through a temporary listener bound to the saved
 *    name, so both ends get their names (getsockname, getpeername), then it goes;
 * 3. the other sockets are made: socketpairs (their named ends bound after), listeners
 *    (bound, listening), the rest bound when they were;
 * 4. receive queues are filled: a stream's from its peer, each datagram from a socket
 *    bound to its sender's name (the sender itself when it is in the tree, else a
 *    temporary one), before any datagram socket connects (a connected one accepts only
 *    its peer's);
 * 5. one-way connections are made, and the clients of connections not accepted yet
 *    connect to their listener in backlog order;
 * 6. options and shutdown; then each socket file gets its mode and owner, and is
 *    unlinked or renamed when it was after bind.
 */
import { lstatSync, renameSync, rmSync, chmodSync, chownSync } from 'node:fs';
import { CkptError, type ErrorCode } from '../../../common/errors.js';
import {
  AF, closeFd, F, fcntl, getsockoptInt, isErrno, MSG, send, SO, SOCK, socketpair, SOL_SOCKET, SysError, UDIAG_SHOW, UNIX_DIAG, unixDiagAll,
} from '../../../sys/index.js';
import { setsockoptInt, socket } from '../../../sys/ioctl.js';
import { listenSocket } from '../../../sys/inet.js';
import { acceptUnix, bindUnix, connectUnix, formatUnixAddr, sendmsgRights, sendtoUnix } from '../../../sys/unix-socket.js';
import type { RestoreContext } from '../../types.js';
import { major, minor } from '../facts.js';
import { loadPayload } from '../objects.js';
import type { FdEntry, UnixObject } from '../schema.js';
import { connectAs, listenAs, pairAs, refuseForeignIds } from './unix-cred.js';
import type { PeerCred } from '../../../sys/unix-socket.js';
import { applySockOpts, restoreShutdown, setBufSize, SO_BUF_LOCK } from './sockopts.js';

/** Files in flight: by `ino:msg`, and how to open one (restore.ts's passedFd). */
export interface Passing {
  passed: ReadonlyMap<string, readonly FdEntry[]>;
  open(entry: FdEntry): number;
}

const addrBuf = (hex: string) => Buffer.from(hex, 'hex');
const isPath = (hex: string) => !hex.startsWith('00');

class Builder {
  readonly fds = new Map<number, number>();
  private temps: number[] = [];
  private tempFiles: string[] = [];
  private senders = new Map<string, number>();
  /** The stand-in peers of streams whose peer was closed, by the stream's inode. */
  private closedPeers = new Map<number, number>();
  private liveFiles: Set<string> | undefined;
  /** Datagram sockets connected to each other by name, connected once both are bound. */
  private mutualByName: UnixObject[] = [];

  constructor(
    private readonly ctx: RestoreContext,
    private readonly all: ReadonlyMap<number, UnixObject>,
    private readonly passing: Passing,
  ) {}

  /** Local fds of the files passed with message `i` of socket `o` (none: empty). */
  private passedWith(o: UnixObject, i: number): number[] {
    const entries = this.passing.passed.get(`${o.ino}:${i}`) ?? [];
    const out: number[] = [];
    try {
      for (const e of entries) {
        const sock = e.kind === 'unix' ? this.fds.get(e.ino) : undefined;
        if (e.kind === 'unix' && sock === undefined) throw this.error(o, { code: 'BAD_IMAGE', reason: `the socket:[${e.ino}] passed in its queue is not saved` });
        out.push(sock !== undefined ? fcntl(sock, F.DUPFD_CLOEXEC, 0) : this.passing.open(e));
      }
    } catch (err) {
      for (const fd of out) closeFd(fd);
      throw err;
    }
    return out;
  }

  private error(o: UnixObject, err: { code: ErrorCode; reason: string; cause?: unknown }): CkptError {
    const name = o.addr ? ` (${formatUnixAddr(addrBuf(o.addr))})` : '';
    return new CkptError(err.code, `Cannot restore unix socket:[${o.ino}]${name}: ${err.reason}`, { cause: err.cause });
  }

  /** The path a name resolves to (a relative one in the directory it was bound in). */
  private pathOf(o: UnixObject, hex = o.addr!): string {
    const name = addrBuf(hex).toString('utf8');
    if (name.startsWith('/')) return name;
    const dir = o.file?.dir ?? [...this.all.values()].find((l) => l.addr === hex && l.file?.dir)?.file?.dir;
    if (!dir) throw this.error(o, { code: 'BAD_IMAGE', reason: `the directory of its relative name ${name} is not saved` });
    return `${dir}/${name}`;
  }

  /** Runs `fn` in the directory a relative name was bound in. */
  private inDirOf<T>(o: UnixObject, hex: string, fn: () => T): T {
    const name = addrBuf(hex).toString('utf8');
    if (!isPath(hex) || name.startsWith('/')) return fn();
    const path = this.pathOf(o, hex);
    const back = process.cwd();
    process.chdir(path.slice(0, path.length - name.length - 1) || '/');
    try {
      return fn();
    } finally {
      process.chdir(back);
    }
  }

  private bind(o: UnixObject, fd: number, hex: string): void {
    try {
      this.inDirOf(o, hex, () => bindUnix(fd, addrBuf(hex)));
    } catch (e) {
      if (isErrno(e, 'EADDRINUSE')) throw this.error(o, { code: 'ADDRESS_IN_USE', reason: `${formatUnixAddr(addrBuf(hex))} is taken`, cause: e });
      throw e;
    }
  }

  /** "dev:ino" of every socket file a live socket is bound to. */
  private live(): Set<string> {
    this.liveFiles ??= new Set(
      unixDiagAll(UDIAG_SHOW.VFS).flatMap((d) => {
        const v = d.attrs.get(UNIX_DIAG.VFS);
        return v ? [`${v.readUInt32LE(4)}:${v.readUInt32LE(0)}`] : [];
      }),
    );
    return this.liveFiles;
  }

  /** Frees `path` of this socket's own stale file; anything else there refuses. */
  private clearStale(o: UnixObject, path: string): void {
    let st;
    try {
      st = lstatSync(path);
    } catch {
      return; // nothing there
    }
    const f = o.file!;
    const kdev = `${(major(st.dev) << 20) | minor(st.dev)}:${st.ino}`;
    if (st.isSocket() && st.ino === f.inode && st.dev === f.dev && !this.live().has(kdev)) {
      rmSync(path, { force: true });
      return;
    }
    throw this.error(o, { code: 'ADDRESS_IN_USE', reason: `${path} exists and is not the stale file of this socket` });
  }

  private socket(o: UnixObject): number {
    const fd = socket(AF.UNIX, o.type);
    this.fds.set(o.ino, fd);
    setBufSize(fd, { name: SO.SNDBUF, value: o.sndbuf });
    setBufSize(fd, { name: SO.RCVBUF, value: o.rcvbuf });
    return fd;
  }

  /** Binds `fd` to the socket's own name, if it had one of its own. */
  private bindOwn(o: UnixObject, fd: number): void {
    if (!o.addr || o.accepted) return;
    this.bind(o, fd, o.addr);
    if (isPath(o.addr)) {
      const path = this.pathOf(o);
      const final = o.file?.movedTo ?? path;
      this.ctx.undo.push(`remove socket file ${final}`, () => rmSync(o.file?.gone ? path : final, { force: true }));
    }
  }

  /**
   * An accepted socket and its client, through a temporary listener at the accepted one's
   * name: listen() by the process the client's credentials name, connect() by the one the
   * accepted socket's name (unix-cred.ts).
   */
  private acceptPair(a: UnixObject, c: UnixObject): void {
    const listener = socket(AF.UNIX, a.type);
    let tempPath: string | undefined;
    try {
      this.bind(a, listener, a.addr!);
      if (isPath(a.addr!)) tempPath = this.pathOf(a);
      this.listen(c, { fd: listener, backlog: 1 });
      const client = this.socket(c);
      this.bindOwn(c, client);
      if (a.cred) {
        connectAs(this.ctx, { cred: a.cred, fd: client, addr: this.absolute(a, a.addr!), what: this.what(c) });
      } else {
        this.inDirOf(a, a.addr!, () => connectUnix(client, addrBuf(a.addr!)));
      }
      const fd = acceptUnix(listener);
      this.fds.set(a.ino, fd);
      setBufSize(fd, { name: SO.SNDBUF, value: a.sndbuf });
      setBufSize(fd, { name: SO.RCVBUF, value: a.rcvbuf });
    } finally {
      closeFd(listener);
      if (tempPath) rmSync(tempPath, { force: true });
    }
  }

  /** Name `hex` as another process can connect to it: a path made absolute (it must fit sun_path), an abstract name as is. */
  private absolute(o: UnixObject, hex: string): Buffer {
    if (!isPath(hex)) return addrBuf(hex);
    const path = Buffer.from(this.pathOf(o, hex));
    if (path.length > 107) throw this.error(o, { code: 'UNSUPPORTED', reason: `the path ${path.toString()} is too long to connect to from another process` });
    return path;
  }

  private what(o: UnixObject): string {
    return `unix socket:[${o.ino}]${o.addr ? ` (${formatUnixAddr(addrBuf(o.addr))})` : ''}`;
  }

  /** listen() on `fd`, by the process `o`'s credentials name (the listener's own, or its client's). */
  private listen(o: UnixObject, args: { fd: number; backlog: number }): void {
    if (o.cred) listenAs(this.ctx, { cred: o.cred, fd: args.fd, backlog: args.backlog, what: this.what(o) });
    else listenSocket(args.fd, args.backlog);
  }

  /** A socket pair, made by the process the credentials of its ends name. */
  private pair(o: UnixObject): [number, number] {
    return o.cred ? pairAs(this.ctx, { cred: o.cred, type: o.type, what: this.what(o) }) : socketpair(o.type);
  }

  /** A socket bound to `hex` to send datagrams from: one of the tree's, or a temporary one. */
  private senderFor(o: UnixObject, hex: string): number {
    const own = [...this.all.values()].find((s) => s.type === SOCK.DGRAM && s.addr === hex && !s.accepted);
    if (own) return this.fds.get(own.ino)!;
    let fd = this.senders.get(hex);
    if (fd === undefined) {
      fd = socket(AF.UNIX, SOCK.DGRAM);
      this.temps.push(fd);
      if (hex !== '') {
        if (isPath(hex)) {
          const path = this.pathOf(o, hex);
          try {
            lstatSync(path);
            throw this.error(o, { code: 'ADDRESS_IN_USE', reason: `a datagram from ${path} is queued, and ${path} exists` });
          } catch (e) {
            if (e instanceof CkptError) throw e;
          }
          this.bind(o, fd, hex);
          this.tempFiles.push(path);
        } else {
          this.bind(o, fd, hex);
        }
      }
      this.senders.set(hex, fd);
    }
    return fd;
  }

  private fillQueue(o: UnixObject): void {
    const data = loadPayload(this.ctx.blobs, o.data);
    if (typeof data === 'string') throw this.error(o, { code: 'BAD_IMAGE', reason: `its queue ${data}` });
    if (data.length === 0) return;
    const peer = o.peer ? this.all.get(o.peer) : undefined;
    const mutual = peer?.peer === o.ino;
    if (o.msgCreds && o.msgCreds.length !== o.lengths.length) throw this.error(o, { code: 'BAD_IMAGE', reason: 'the credentials of its queued messages do not match them' });
    // As at dump: only a process of the tree may be named (ckpt, as root, could name any).
    const stranger = o.msgCreds?.find((c) => c && this.ctx.remoteOf && !this.ctx.remoteOf(c.pid));
    if (stranger) throw this.error(o, { code: 'BAD_IMAGE', reason: `a queued message carries the credentials of process ${stranger.pid}, which is not restored` });
    for (const c of o.msgCreds ?? []) if (c) refuseForeignIds(this.ctx, { ids: c, what: `a message queued on unix socket ${o.ino} of process ${this.ctx.pid}` });
    let off = 0;
    const flags = MSG.DONTWAIT | MSG.NOSIGNAL;
    for (const [i, len] of o.lengths.entries()) {
      const msg = data.subarray(off, off + len);
      off += len;
      const rights = this.passedWith(o, i);
      // Credentials the message carried are sent with it again (ckpt may name any pid and ids as root).
      const creds = o.msgCreds?.[i] ?? undefined;
      const sendPart = (from: number, part: { data: Buffer; first: boolean; addr?: Buffer }) => {
        const attach = part.first ? rights : [];
        if (attach.length > 0 || creds) return sendmsgRights(from, { data: part.data, rights: attach, creds, addr: part.addr, flags });
        return part.addr ? sendtoUnix(from, { data: part.data, addr: part.addr, flags }) : send(from, part.data, flags);
      };
      try {
        if (mutual || o.type !== SOCK.DGRAM) {
          const from = o.peerClosed ? this.closedPeers.get(o.ino) : this.fds.get(o.peer);
          if (from === undefined) throw this.error(o, { code: 'BAD_IMAGE', reason: 'it has queued data but no saved peer to send it' });
          withRoom(from, msg.length, () => {
            // The files go with the first bytes (the whole chunk, for a stream: the receiver gets them with its first byte).
            let sent = sendPart(from, { data: msg, first: true });
            if (o.type !== SOCK.STREAM && sent !== len) throw this.error(o, { code: 'INTERNAL', reason: `a ${len}-byte message was sent in part` });
            while (sent < len) sent += sendPart(from, { data: msg.subarray(sent), first: false });
          });
          continue;
        }
        if (!o.addr) throw this.error(o, { code: 'BAD_IMAGE', reason: 'datagrams are queued on an unnamed socket with no peer' });
        const from = this.senderFor(o, o.senders?.[i] ?? '');
        const addr = addrBuf(o.addr);
        withRoom(from, msg.length, () => {
          this.inDirOf(o, o.addr!, () => sendPart(from, { data: msg, first: true, addr }));
        });
      } finally {
        for (const fd of rights) closeFd(fd);
      }
    }
  }

  /** Connects `o` to the name `to`: by the process `as` names when given (unix-cred.ts), else by ckpt. */
  private connect(o: UnixObject, to: string, as?: PeerCred): void {
    try {
      if (as) connectAs(this.ctx, { cred: as, fd: this.fds.get(o.ino)!, addr: this.absolute(o, to), what: this.what(o) });
      else this.inDirOf(o, to, () => connectUnix(this.fds.get(o.ino)!, addrBuf(to)));
    } catch (e) {
      if (e instanceof SysError) throw this.error(o, { code: 'SYSCALL', reason: `connect to ${formatUnixAddr(addrBuf(to))} failed with ${e.errnoName}`, cause: e });
      throw e;
    }
  }

  private finish(o: UnixObject): void {
    const fd = this.fds.get(o.ino)!;
    try {
      applySockOpts(fd, { opts: o.opts ?? [], phase: 'bind' });
      applySockOpts(fd, { opts: o.opts ?? [], phase: 'state' });
    } catch (err) {
      throw this.error(o, { code: 'SYSCALL', reason: (err as Error).message, cause: err });
    }
    restoreShutdown(fd, o.shutdown ?? 0);
  }

  private placeFile(o: UnixObject): void {
    const f = o.file!;
    const path = this.pathOf(o);
    if (f.gone) {
      rmSync(path, { force: true });
      return;
    }
    chownSync(path, f.uid, f.gid);
    chmodSync(path, f.mode);
    if (f.movedTo) renameSync(path, f.movedTo);
  }

  build(): void {
    const socks = [...this.all.values()];
    const own = socks.filter((o) => o.file && !o.accepted);
    for (const o of own) {
      this.clearStale(o, this.pathOf(o));
      if (o.file!.movedTo) this.clearStale(o, o.file!.movedTo);
    }
    for (const o of socks) {
      if (!o.accepted || this.fds.has(o.ino)) continue;
      const c = this.all.get(o.peer);
      if (!c) throw this.error(o, { code: 'BAD_IMAGE', reason: `its client socket:[${o.peer}] is not saved` });
      this.acceptPair(o, c);
    }
    for (const o of socks) {
      if (this.fds.has(o.ino)) continue;
      const p = o.peer ? this.all.get(o.peer) : undefined;
      if (p && p.peer === o.ino) {
        if (!o.cred && !p.cred && o.type === SOCK.DGRAM && o.addr && p.addr) {
          // Two datagram sockets connected to each other by name: no credentials, no pair.
          for (const s of [o, p]) this.bindOwn(s, this.socket(s));
          this.mutualByName.push(o, p);
          continue;
        }
        const [a, b] = this.pair(o.cred ? o : p);
        for (const [s, fd] of [[o, a], [p, b]] as const) {
          this.fds.set(s.ino, fd);
          setBufSize(fd, { name: SO.SNDBUF, value: s.sndbuf });
          setBufSize(fd, { name: SO.RCVBUF, value: s.rcvbuf });
          this.bindOwn(s, fd);
        }
        continue;
      }
      if (o.peerClosed) {
        // The peer end fills the queue, then goes (closed in build(), after the queues).
        const [a, b] = this.pair(o);
        this.fds.set(o.ino, a);
        this.closedPeers.set(o.ino, b);
        setBufSize(a, { name: SO.SNDBUF, value: o.sndbuf });
        setBufSize(a, { name: SO.RCVBUF, value: o.rcvbuf });
        this.bindOwn(o, a);
        continue;
      }
      const fd = this.socket(o);
      this.bindOwn(o, fd);
      if (o.backlog !== undefined) this.listen(o, { fd, backlog: o.backlog });
    }
    for (const o of this.mutualByName) this.connect(o, this.all.get(o.peer)!.addr!);
    for (const o of socks) this.fillQueue(o);
    for (const fd of this.closedPeers.values()) closeFd(fd);
    this.closedPeers.clear();
    for (const o of socks) {
      if (o.external && !this.ctx.options.extUnixSk) {
        throw this.error(o, { code: 'UNSUPPORTED', reason: `it was connected to ${formatUnixAddr(addrBuf(o.peerAddr ?? ''))}, outside the dump: restore with --ext-unix-sk to connect it there again` });
      }
      if (o.peerAddr && !o.pending) this.connect(o, o.peerAddr, o.external ? o.connector : undefined);
    }

    const waiting = new Set<number>();
    for (const l of socks) {
      for (const c of l.waiting ?? []) {
        const co = this.all.get(c);
        if (!co?.pending || !co.peerAddr) throw this.error(l, { code: 'BAD_IMAGE', reason: `the client socket:[${c}] of a connection in its backlog is not saved` });
        this.connect(co, co.peerAddr, co.connector);
        waiting.add(c);
      }
    }
    for (const o of socks) if (o.pending && !waiting.has(o.ino)) this.connect(o, o.peerAddr!, o.connector);
    for (const o of socks) this.finish(o);
    for (const o of own) this.placeFile(o);
  }

  /** Drops the temporary senders; on failure also every socket made. */
  close(failed: boolean): void {
    for (const fd of [...this.temps, ...this.closedPeers.values()]) closeFd(fd);
    for (const p of this.tempFiles) rmSync(p, { force: true });
    if (failed) for (const fd of this.fds.values()) closeFd(fd);
  }
}

/** Runs `fn` with room for `len` more bytes in `fd`'s send buffer, whatever the peer's limit. */
function withRoom(fd: number, len: number, fn: () => void): void {
  const prev = getsockoptInt(fd, SOL_SOCKET, SO.SNDBUF);
  // Setting a size locks it: the sender's lock bits are put back with its size.
  const lock = readBufLock(fd);
  setBufSize(fd, { name: SO.SNDBUF, value: Math.max(prev, 2 * len + (1 << 20)) });
  try {
    fn();
  } finally {
    setBufSize(fd, { name: SO.SNDBUF, value: prev });
    if (lock !== undefined) setsockoptInt(fd, { level: SOL_SOCKET, name: SO_BUF_LOCK, value: lock });
  }
}

function readBufLock(fd: number): number | undefined {
  try {
    return getsockoptInt(fd, SOL_SOCKET, SO_BUF_LOCK);
  } catch {
    return undefined; // a kernel before 5.14
  }
}

/**
 * Makes every unix socket in `all` (the whole tree's) and keeps each in the shared
 * table as `unix:<ino>`. Nothing is left behind on failure but what the undo removes.
 */
export function buildUnixSockets(ctx: RestoreContext, args: { all: ReadonlyMap<number, UnixObject> } & Passing): void {
  const b = new Builder(ctx, args.all, args);
  let failed = true;
  try {
    b.build();
    failed = false;
  } finally {
    b.close(failed);
  }
  for (const [ino, fd] of b.fds) ctx.shared.set(`unix:${ino}`, fd);
}
