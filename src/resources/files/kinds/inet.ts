/**
 * IPv4 and IPv6 sockets, TCP and UDP: listeners, bound or unbound sockets, connected
 * UDP sockets (and, with tcp-repair.ts, established TCP connections). The dump reads a
 * grabbed copy: domain/type/protocol, getsockname/getpeername, the TCP state (TCP_INFO),
 * the listen backlog and queue lengths from sock_diag, and the options that differ
 * from a fresh socket of the same kind. Restore creates the socket in the restorer,
 * sets the options, binds it to the same address, listens or connects, and hands it to
 * the target. Connections waiting in a listener's accept queue and queued UDP
 * datagrams cannot be carried over: the dump warns with their counts.
 */
import { CkptError } from '../../../common/errors.js';
import {
  closeFd, F, fcntl, FIONREAD, getsockoptInt, ioctlInt, isErrno, SO, SOCK, SOL_SOCKET,
} from '../../../sys/index.js';
import {
  AF_INET, AF_INET6, bindInet, connectInet, formatAddr, getpeername, getsockname, getsockoptBuf, inetDiagAll,
  inetSocket, IPPROTO, listenSocket, SO_INET, sockProtoName, TCP_OPT, TCP_STATE, type InetAddr, type InetDiag,
} from '../../../sys/inet.js';
import { setsockoptInt } from '../../../sys/ioctl.js';
import { grabFd } from '../../transfer.js';
import { fdPath, type FdFacts } from '../facts.js';
import { O } from '../flags.js';
import type { DumpObjects } from '../objects.js';
import type { EntryOf, InetOpt } from '../schema.js';
import { dumpError, restoreError, type KindDumpContext, type LocalReopener } from './kind.js';
import { dumpEstablished, restoreEstablished } from './tcp-repair.js';

const PROTO_NAMES = new Set(['TCP', 'UDP', 'TCPv6', 'UDPv6']);

/** Whether the fd is a TCP or UDP socket (the `system.sockprotoname` xattr of its inode). */
export function isInetSocket(f: FdFacts): boolean {
  return f.link.startsWith('socket:') && PROTO_NAMES.has(sockProtoName(fdPath(f.pid, f.fd)) ?? '');
}

/** The options saved when they differ from a fresh socket's: [level, name, families, protocols]. */
const OPTS: readonly (readonly [number, number, string])[] = [
  [SOL_SOCKET, SO_INET.REUSEADDR, 'all'],
  [SOL_SOCKET, SO_INET.REUSEPORT, 'all'],
  [SOL_SOCKET, SO_INET.KEEPALIVE, 'all'],
  [SOL_SOCKET, SO_INET.BROADCAST, 'udp'],
  [SOL_SOCKET, SO.SNDBUF, 'all'],
  [SOL_SOCKET, SO.RCVBUF, 'all'],
  [IPPROTO.TCP, TCP_OPT.NODELAY, 'tcp'],
  [IPPROTO.TCP, TCP_OPT.KEEPIDLE, 'tcp'],
  [IPPROTO.TCP, TCP_OPT.KEEPINTVL, 'tcp'],
  [IPPROTO.TCP, TCP_OPT.KEEPCNT, 'tcp'],
  [IPPROTO.TCP, TCP_OPT.USER_TIMEOUT, 'tcp'],
  [IPPROTO.IP, 1 /* IP_TOS */, 'v4'],
  [IPPROTO.IP, 2 /* IP_TTL */, 'v4'],
  [IPPROTO.IPV6, 26 /* IPV6_V6ONLY */, 'v6'],
  [IPPROTO.IPV6, 16 /* IPV6_UNICAST_HOPS */, 'v6'],
];
/** Every option a saved entry may name (checked by the schema). */
export const INET_OPTS = new Set(OPTS.map(([l, n]) => `${l}:${n}`));

function optsFor(family: number, protocol: number) {
  return OPTS.filter(([, , w]) =>
    w === 'all' || (w === 'tcp' && protocol === IPPROTO.TCP) || (w === 'udp' && protocol === IPPROTO.UDP) ||
    (w === 'v4' && family === AF_INET) || (w === 'v6' && family === AF_INET6));
}

function readOpts(fd: number, kind: { family: number; protocol: number }): Map<string, number> {
  const out = new Map<string, number>();
  for (const [level, name] of optsFor(kind.family, kind.protocol)) {
    try {
      out.set(`${level}:${name}`, getsockoptInt(fd, level, name));
    } catch {
      // not supported by this socket or kernel: nothing to save
    }
  }
  return out;
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
    const base = {
      kind: 'inet' as const, fd: f.fd, flags: f.flags, family: family as 2 | 10, protocol: protocol as 6 | 17,
      local: isAny(name) ? undefined : name,
      opts: savedOpts(local, { family, type, protocol }),
    };
    const where = `fd ${f.fd} of process ${f.pid} (${formatAddr(name)})`;
    if (protocol === IPPROTO.UDP) {
      let peer: InetAddr | undefined;
      try {
        peer = getpeername(local);
      } catch (e) {
        if (!isErrno(e, 'ENOTCONN')) throw e;
      }
      const queued = diag?.rqueue ?? ioctlInt(local, FIONREAD);
      if (queued > 0) dc.ctx.warn(`${where}: ${queued} bytes of queued UDP datagrams are not saved; the restored socket starts empty`);
      return { ...base, state: peer ? 'connected' : 'bound', peer };
    }
    const state = getsockoptBuf(local, { level: IPPROTO.TCP, name: TCP_OPT.INFO, size: 8 }).readUInt8(0);
    if (state === TCP_STATE.LISTEN) {
      // A listener's idiag_wqueue is its backlog (sk_max_ack_backlog), idiag_rqueue its accept queue.
      if (diag && diag.rqueue > 0) {
        dc.ctx.warn(`${where}: ${diag.rqueue} connection(s) waiting to be accepted are lost; their clients see the connection reset`);
      }
      return { ...base, state: 'listen', backlog: diag?.wqueue ?? 128 };
    }
    if (state === TCP_STATE.CLOSE) return { ...base, state: 'bound' };
    if (state === TCP_STATE.ESTABLISHED) {
      const peer = getpeername(local);
      if (!peer || !base.local) throw unsupported(f, 'an established TCP connection without addresses');
      // Buffer sizes of a connection differ from a fresh socket's by autotuning: setting them would lock them.
      const opts = base.opts.filter((o) => !(o.level === SOL_SOCKET && (o.name === SO.SNDBUF || o.name === SO.RCVBUF)));
      return { ...base, opts, state: 'established', peer, tcp: dumpEstablished(dc, f, { fd: local, local: base.local, peer }) };
    }
    const names = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'];
    throw unsupported(f, `TCP sockets in state ${names[state] ?? state} (${formatAddr(name)}: connecting or half-closed) are not supported yet`);
  } finally {
    closeFd(local);
  }
}

function savedOpts(fd: number, kind: { family: number; type: number; protocol: number }): InetOpt[] {
  const mine = readOpts(fd, kind);
  const fresh = inetSocket(kind.family, kind.type, kind.protocol);
  let defaults;
  try {
    defaults = readOpts(fresh, kind);
  } finally {
    closeFd(fresh);
  }
  const out: InetOpt[] = [];
  for (const [key, value] of mine) {
    if (defaults.get(key) === value) continue;
    const [level, name] = key.split(':').map(Number) as [number, number];
    out.push({ level, name, value });
  }
  return out;
}

/** Sets a buffer size as saved (getsockopt reports twice what setsockopt was given); FORCE needs CAP_NET_ADMIN. */
function setOpt(fd: number, o: InetOpt): void {
  const force = o.level === SOL_SOCKET && o.name === SO.SNDBUF ? SO.SNDBUFFORCE : o.level === SOL_SOCKET && o.name === SO.RCVBUF ? SO.RCVBUFFORCE : undefined;
  if (force === undefined) {
    setsockoptInt(fd, o);
    return;
  }
  try {
    setsockoptInt(fd, { level: SOL_SOCKET, name: force, value: o.value >> 1 });
  } catch {
    setsockoptInt(fd, { level: SOL_SOCKET, name: o.name, value: o.value >> 1 });
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
  open(rc, e) {
    const type = e.protocol === IPPROTO.TCP ? SOCK.STREAM : SOCK.DGRAM;
    const fd = inetSocket(e.family, type, e.protocol);
    try {
      for (const o of e.opts) setOpt(fd, o);
      if (e.state === 'established') {
        restoreEstablished(rc, { e, fd });
        // Leaving repair mode resets SO_REUSEADDR: the options go on again.
        for (const o of e.opts) setOpt(fd, o);
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
      if (e.state === 'listen') listenSocket(fd, e.backlog ?? 128);
      if (e.state === 'connected' && e.peer) connectInet(fd, e.peer);
      const fl = fcntl(fd, F.GETFL);
      fcntl(fd, F.SETFL, (e.flags & O.NONBLOCK) ? fl | O.NONBLOCK : fl & ~O.NONBLOCK);
      return fd;
    } catch (err) {
      closeFd(fd);
      if (err instanceof CkptError && !(err.name === 'SysError')) throw err;
      if (isErrno(err, 'EADDRINUSE') && e.local) throw inUse(rc.ctx.pid, e, err);
      throw restoreError(rc, { fd: e.fd, code: 'SYSCALL', reason: `${(err as Error).message} (${e.local ? formatAddr(e.local) : 'unbound'} socket)`, cause: err });
    }
  },
};
