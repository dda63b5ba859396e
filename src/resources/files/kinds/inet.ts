/**
 * IPv4 and IPv6 sockets, TCP and UDP: listeners, bound or unbound sockets, connected
 * UDP sockets (and, with tcp-repair.ts, established TCP connections). The dump reads a
 * grabbed copy: domain/type/protocol, getsockname/getpeername, the TCP state (TCP_INFO),
 * the listen backlog and queue lengths from sock_diag, and the options that differ
 * from a fresh socket of the same kind. Restore creates the socket in the restorer,
 * sets the options, binds it to the same address, listens or connects, and hands it to
 * the target. Connections waiting in a listener's accept queue and queued UDP
 * datagrams cannot be carried over: the dump refuses, naming their counts.
 */
import { CkptError } from '../../../common/errors.js';
import {
  closeFd, F, fcntl, FIONREAD, getsockoptInt, ioctlInt, isErrno, SO, SOCK, SOL_SOCKET,
} from '../../../sys/index.js';
import {
  AF_INET, AF_INET6, bindInet, connectInet, formatAddr, getpeername, getsockname, getsockoptBuf, inetDiagAll,
  inetSocket, IPPROTO, listenSocket, POLL, pollNow, SIOC, SO_INET, sockProtoName, TCP_OPT, TCP_STATE, type InetAddr, type InetDiag,
} from '../../../sys/inet.js';
import { setsockoptInt } from '../../../sys/ioctl.js';
import { grabFd } from '../../transfer.js';
import { fdPath, type FdFacts } from '../facts.js';
import { O } from '../flags.js';
import type { DumpObjects } from '../objects.js';
import type { EntryOf, FilesState } from '../schema.js';
import { dumpError, restoreError, type KindDumpContext, type LocalReopener } from './kind.js';
import { applySockOpts, freshInet, pendingError, readSockOpts, restoreShutdown, SO_BUF_LOCK } from './sockopts.js';
import { dumpEstablished, restoreEstablished } from './tcp-repair.js';
import { halfClosed } from './tcp-fin.js';
import { joinMemberships, readMemberships } from './mcast.js';

const PROTO_NAMES = new Set(['TCP', 'UDP', 'TCPv6', 'UDPv6']);

/** Whether the fd is a TCP or UDP socket (the `system.sockprotoname` xattr of its inode). */
export function isInetSocket(f: FdFacts): boolean {
  return f.link.startsWith('socket:') && PROTO_NAMES.has(sockProtoName(fdPath(f.pid, f.fd)) ?? '');
}

const diagCache = new WeakMap<DumpObjects, Map<string, Map<number, InetDiag>>>();

/** The sock_diag record of socket `ino` (one INET_DIAG dump per family and protocol per process dump). */
function diagOf(dc: KindDumpContext, args: { family: number; protocol: number; ino: number }): InetDiag | undefined {
  let byKind = diagCache.get(dc.objects);
  if (!byKind) diagCache.set(dc.objects, (byKind = new Map()));
  const key = `${args.family}:${args.protocol}`;
  let m = byKind.get(key);
  if (!m) {
    try {
      m = new Map(inetDiagAll(args.family, args.protocol).map((d) => [d.ino, d]));
    } catch {
      m = new Map(); // no udp_diag module, say: the backlog and queue warnings fall back
    }
    byKind.set(key, m);
  }
  return m.get(args.ino);
}

const TCP_AO_INFO = 40;

/**
 * TCP_MD5SIG keys (sock_diag shows that some are set, not the keys) and TCP-AO keys
 * (TCP_AO_INFO answers when there are any; ENOPROTOOPT without CONFIG_TCP_AO) cannot be
 * read back whole: refused rather than restored without authentication.
 */
function refuseAuthKeys(f: FdFacts, s: { fd: number; diag: InetDiag | undefined }): void {
  if (s.diag?.md5) throw unsupported(f, 'TCP_MD5SIG keys are set on the socket; they cannot be read back');
  try {
    getsockoptBuf(s.fd, { level: IPPROTO.TCP, name: TCP_AO_INFO, size: 48 });
  } catch {
    return; // no TCP-AO keys (or no TCP-AO in this kernel)
  }
  throw unsupported(f, 'TCP-AO keys are set on the socket; they cannot be read back');
}

function unsupported(f: FdFacts, why: string) {
  return dumpError(f, { code: 'UNSUPPORTED', reason: `${why} (${f.link})` });
}

const isAny = (a: InetAddr) => /^0+$/.test(a.addr) && a.port === 0;

export function dumpInet(dc: KindDumpContext, f: FdFacts): EntryOf<'inet'> {
  const local = grabFd(f.pid, f.fd);
  try {
    const family = getsockoptInt(local, SOL_SOCKET, SO_INET.DOMAIN);
    const type = getsockoptInt(local, SOL_SOCKET, SO_INET.TYPE);
    const protocol = getsockoptInt(local, SOL_SOCKET, SO_INET.PROTOCOL);
    if ((family !== AF_INET && family !== AF_INET6) || !((type === SOCK.STREAM && protocol === IPPROTO.TCP) || (type === SOCK.DGRAM && protocol === IPPROTO.UDP))) {
      throw unsupported(f, `sockets of family ${family}, type ${type}, protocol ${protocol} are not supported`);
    }
    const ino = Number(/^socket:\[(\d+)\]$/.exec(f.link)?.[1] ?? 0);
    const diag = diagOf(dc, { family, protocol, ino });
    const name = getsockname(local);
    if (!name) throw unsupported(f, 'getsockname gave no IPv4/IPv6 address');
    const pending = pendingError(local);
    if (pending) throw unsupported(f, pending);
    if (protocol === IPPROTO.TCP) refuseAuthKeys(f, { fd: local, diag });
    const state = protocol === IPPROTO.TCP ? getsockoptBuf(local, { level: IPPROTO.TCP, name: TCP_OPT.INFO, size: 8 }).readUInt8(0) : undefined;
    const kind = { family: family as 2 | 10, proto: protocol === IPPROTO.TCP ? 'tcp' as const : 'udp' as const };
    const closed = state === TCP_STATE.CLOSE ? closedTcp(f, { fd: local, name, diag }) : undefined;
    // A connection's (live, over or given up) MSS, window clamp and buffers are the kernel's, tuned for it.
    const connection = protocol === IPPROTO.TCP && state !== TCP_STATE.LISTEN && closed !== 'never';
    const base = {
      kind: 'inet' as const, fd: f.fd, flags: f.flags, family: family as 2 | 10, protocol: protocol as 6 | 17,
      local: isAny(name) ? undefined : name,
      opts: readSockOpts(f, { fd: local, ...kind, established: connection, fresh: freshInet(family, type, protocol) }),
      ...(diag?.shutdown ? { shutdown: diag.shutdown } : {}),
    };
    if (protocol === IPPROTO.UDP) {
      let peer: InetAddr | undefined;
      try {
        peer = getpeername(local);
      } catch (e) {
        if (!isErrno(e, 'ENOTCONN')) throw e;
      }
      // Sent again at restore they would come from another socket: the sender's address, which a
      // server answers to, would be lost. Refused until they can be sent from that address.
      const queued = diag?.rqueue ?? ioctlInt(local, FIONREAD);
      if (queued > 0) throw unsupported(f, `UDP datagrams wait to be read (${queued} bytes of receive buffer); they cannot be put back with their senders' addresses (retry once the program has read them)`);
      // UDP_CORK or MSG_MORE keep appended data in the socket until the datagram is complete; nothing reads it back.
      const unsent = ioctlInt(local, SIOC.OUTQ);
      if (unsent > 0) throw unsupported(f, `${unsent} bytes of send buffer are in use (data appended under UDP_CORK or MSG_MORE, not sent yet, which cannot be read back; or a datagram still on its way out: retry)`);
      const groups = readMemberships(dc, { f, fd: local, family: kind.family });
      return { ...base, state: peer ? 'connected' : 'bound', peer, ...(groups.length > 0 ? { groups } : {}) };
    }
    if (state === TCP_STATE.LISTEN) {
      // A listener's idiag_wqueue is its backlog (sk_max_ack_backlog), idiag_rqueue its accept queue.
      // A connection in it exists only as the listener's child: a repaired socket cannot be made
      // one again (CRIU refuses too). The dump gave the program time to accept them before the
      // freeze, with the network lock keeping new ones out (net/lock.ts waitAcceptQueues).
      if (diag && diag.rqueue > 0) {
        const what = `${diag.rqueue} connection(s) wait in the accept queue of the listener at ${formatAddr(name)}`;
        if (!dc.ctx.skipInFlight) throw unsupported(f, `${what}; they cannot be put back, and the program did not accept them while the dump waited (retry once it has, or leave them out with --skip-in-flight)`);
        dc.ctx.warn(`fd ${f.fd} of process ${f.pid}: ${what}; left out (--skip-in-flight): their clients are reset after restore`);
      }
      return { ...base, state: 'listen', backlog: diag?.wqueue ?? 128 };
    }
    if (state === TCP_STATE.CLOSE) return closed === 'over' ? asClosed(base) : { ...base, state: 'bound' };
    // --tcp-close: the connection is given up, in whatever state (CRIU's meaning).
    if (dc.ctx.tcpClose && state !== TCP_STATE.LISTEN) return asClosed(base);
    if (state === TCP_STATE.ESTABLISHED || halfClosed(state ?? 0)) {
      const peer = getpeername(local);
      if (!peer || !base.local) throw unsupported(f, 'an established TCP connection without addresses');
      // A connection's buffer sizes are the kernel's (autotuning) unless the program locked them.
      const lock = base.opts.find((o) => o.level === SOL_SOCKET && o.name === SO_BUF_LOCK)?.value ?? 0;
      const fixed = [...(lock & 1 ? [SO.SNDBUF] : []), ...(lock & 2 ? [SO.RCVBUF] : [])];
      for (const name of fixed) base.opts.push({ level: SOL_SOCKET, name, value: getsockoptInt(local, SOL_SOCKET, name) });
      return { ...base, state: 'established', peer, tcp: dumpEstablished(dc, f, { fd: local, local: base.local, peer, state: state! }) };
    }
    if (state === TCP_STATE.SYN_SENT) return { ...base, ...connecting(f, { fd: local, diag }) };
    // SYN_RECV: a TCP Fast Open child, accepted before its handshake ended.
    const names = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'];
    throw unsupported(f, `TCP sockets in state ${names[state ?? 0] ?? state} (${formatAddr(name)}) are not supported yet`);
  } finally {
    closeFd(local);
  }
}

/**
 * A TCP socket in state CLOSE: one that never had a connection, unbound or bound (then
 * sock_diag still lists it), is saved as such. One whose connection is over (closed or
 * reset: tcp_done shuts it down both ways and releases its port, so POLLRDHUP and no
 * sock_diag entry) is saved as `closed`: a new socket shut down both ways reads EOF,
 * writes EPIPE and polls HUP|IN|RDHUP alike (getsockname loses the address the old one
 * kept; connect() on it is not refused with EISCONN). Others (bound and shut down; a
 * disconnect that kept an address) are refused.
 */
function closedTcp(f: FdFacts, s: { fd: number; name: InetAddr; diag: InetDiag | undefined }): 'never' | 'over' {
  const hup = pollNow(s.fd, POLL.RDHUP) & POLL.RDHUP;
  if (hup && !s.diag) return 'over';
  if (s.diag?.shutdown || hup || (!isAny(s.name) && !s.diag)) {
    throw unsupported(f, `TCP sockets in state CLOSE after a connection or a shutdown (${formatAddr(s.name)}) are not supported yet`);
  }
  return 'never';
}

/**
 * A connect() in progress (SYN_SENT): nothing of it has reached the peer's program (no
 * SYN-ACK came back, or it would be established), so connecting again from the same
 * address at restore is what the kernel's own SYN retransmit does, with a new initial
 * sequence number. The peer comes from sock_diag (getpeername says ENOTCONN until
 * established). Data queued with it (TCP Fast Open) is refused.
 */
function connecting(f: FdFacts, s: { fd: number; diag: InetDiag | undefined }): { state: 'connecting'; peer: InetAddr } {
  if (!s.diag) throw unsupported(f, 'a connecting TCP socket that sock_diag does not list');
  const queued = ioctlInt(s.fd, SIOC.OUTQ);
  if (queued > 0) throw unsupported(f, `a connecting TCP socket with ${queued} bytes queued to send (TCP Fast Open)`);
  return { state: 'connecting', peer: { family: s.diag.family as 2 | 10, addr: s.diag.dst, port: s.diag.dport } };
}

/** A TCP socket whose connection is over, or given up (--tcp-close): no addresses, shut down both ways. */
export function asClosed(e: Omit<EntryOf<'inet'>, 'state'>): EntryOf<'inet'> {
  const { local: _local, peer: _peer, tcp: _tcp, backlog: _backlog, shutdown: _shutdown, ...rest } = e;
  return { ...rest, state: 'closed', shutdown: 3 };
}

/** What a restore with --tcp-close makes of a process's fds: its established connections closed. */
export function withConnectionsClosed(state: FilesState): FilesState {
  return { ...state, fds: state.fds.map((e) => (e.kind === 'inet' && e.state === 'established' ? asClosed(e) : e)) };
}

/** A non-blocking connect (EINPROGRESS): the SYN goes out (held by the network lock until the restore ends). */
function connectAgain(fd: number, peer: InetAddr): void {
  fcntl(fd, F.SETFL, fcntl(fd, F.GETFL) | O.NONBLOCK);
  try {
    connectInet(fd, peer);
  } catch (e) {
    if (!isErrno(e, 'EINPROGRESS')) throw e;
  }
}

function inUse(pid: number, e: EntryOf<'inet'>, cause: unknown): CkptError {
  const a = e.local ? formatAddr(e.local) : 'its address';
  let why = '';
  try {
    const on = inetDiagAll(e.family, e.protocol).filter((d) => d.sport === e.local?.port);
    if (e.protocol === IPPROTO.TCP && on.length > 0 && on.every((d) => d.state === TCP_STATE.TIME_WAIT)) {
      const reuse = e.opts.some((o) => o.level === SOL_SOCKET && o.name === SO_INET.REUSEADDR && o.value);
      why = ` (by connections in TIME_WAIT left by the original${reuse ? '' : ', and the socket has no SO_REUSEADDR'})`;
    }
  } catch {
    // no diag: the plain message
  }
  return new CkptError('ADDRESS_IN_USE', `Cannot restore fd ${e.fd} of process ${pid}: ${a} is in use${why}`, { cause });
}

export const inetReopener: LocalReopener<'inet'> = {
  at: 'local',
  open(rc, saved) {
    const e = rc.ctx.options.tcpClose && saved.state === 'established' ? asClosed(saved) : saved;
    const type = e.protocol === IPPROTO.TCP ? SOCK.STREAM : SOCK.DGRAM;
    const fd = inetSocket(e.family, type, e.protocol);
    try {
      applySockOpts(fd, { opts: e.opts, phase: 'bind' });
      if (e.state === 'established') {
        restoreEstablished(rc, { e, fd });
        // Leaving repair mode resets SO_REUSEADDR: the socket-level ones go on again (IPV6_V6ONLY,
        // which the kernel sets on an IPv6 connection, cannot be set once the socket is bound).
        applySockOpts(fd, { opts: e.opts.filter((o) => o.level === SOL_SOCKET), phase: 'bind' });
      } else if (e.local) {
        // A TCP port may still have connections of the dead original in TIME_WAIT: bind as
        // SO_REUSEADDR does (a live listener on the port still refuses), then put the option back.
        const reuse = e.protocol === IPPROTO.TCP && !e.opts.some((o) => o.level === SOL_SOCKET && o.name === SO_INET.REUSEADDR && o.value);
        if (reuse) setsockoptInt(fd, { level: SOL_SOCKET, name: SO_INET.REUSEADDR, value: 1 });
        try {
          bindInet(fd, e.local);
        } catch (err) {
          if (isErrno(err, 'EADDRINUSE')) throw inUse(rc.ctx.pid, e, err);
          throw err;
        }
        if (reuse) setsockoptInt(fd, { level: SOL_SOCKET, name: SO_INET.REUSEADDR, value: 0 });
      }
      applySockOpts(fd, { opts: e.opts, phase: 'state' });
      joinMemberships(rc, { fd, e });
      if (e.state === 'listen') listenSocket(fd, e.backlog ?? 128);
      if (e.state === 'connected' && e.peer) connectInet(fd, e.peer);
      if (e.state === 'connecting' && e.peer) connectAgain(fd, e.peer);
      if (e.shutdown) restoreShutdown(fd, e.shutdown);
      const fl = fcntl(fd, F.GETFL);
      fcntl(fd, F.SETFL, (e.flags & O.NONBLOCK) ? fl | O.NONBLOCK : fl & ~O.NONBLOCK);
      return fd;
    } catch (err) {
      closeFd(fd);
      if (err instanceof CkptError && !(err.name === 'SysError')) throw err;
      if (!(err instanceof CkptError)) throw restoreError(rc, { fd: e.fd, code: 'SYSCALL', reason: `${(err as Error).message} (${e.local ? formatAddr(e.local) : 'unbound'} socket)`, cause: err });
      if (isErrno(err, 'EADDRINUSE') && e.local) throw inUse(rc.ctx.pid, e, err);
      throw restoreError(rc, { fd: e.fd, code: 'SYSCALL', reason: `${(err as Error).message} (${e.local ? formatAddr(e.local) : 'unbound'} socket)`, cause: err });
    }
  },
};
