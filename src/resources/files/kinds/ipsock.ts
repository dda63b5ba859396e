/**
 * IPv4/IPv6 sockets other than TCP and UDP: ICMP "ping" sockets (SOCK_DGRAM with
 * IPPROTO_ICMP/ICMPV6, allowed by net.ipv4.ping_group_range), UDP-Lite
 * (IPPROTO_UDPLITE: UDP with a checksum coverage) and raw sockets (SOCK_RAW with any
 * protocol). What they hold that a program sees: the bound address (for a ping socket
 * the port is the ICMP echo id; for a raw one it is the protocol, not bindable), the
 * address connect() set, and options (the UDP rows of sockopts.ts plus IP_HDRINCL,
 * ICMP_FILTER, IPV6_CHECKSUM, UDPLITE_*_CSCOV…). Restore creates the socket in the
 * restorer, sets the options, binds and connects, and hands it over. Refused: queued
 * datagrams (nothing can queue them again with their sender's address) and a socket
 * shut down for reading.
 */
import { readNetSockets, type NetSockLine } from '../../../proc/index.js';
import { closeFd, getsockoptInt, isErrno, SOCK, SOL_SOCKET } from '../../../sys/index.js';
import {
  AF_INET, AF_INET6, bindInet, connectInet, formatAddr, getpeername, getsockname, inetSocket, POLL, pollNow, SO_INET,
  type InetAddr,
} from '../../../sys/inet.js';
import { CkptError } from '../../../common/errors.js';
import { grabFd } from '../../transfer.js';
import type { FdFacts } from '../facts.js';
import type { EntryOf } from '../schema.js';
import { dumpError, restoreError, type KindDumpContext, type LocalReopener } from './kind.js';
import { sockProto } from './sockproto.js';
import { socketIno } from './unix.js';
import { joinMemberships, readMemberships } from './mcast.js';
import { checkInterfaces } from './netdev.js';
import { applySockOpts, freshInet, pendingError, readSockOpts, setNonblock, type SockProto } from './sockopts.js';

const SOCK_RAW = 3;
const IPPROTO_ICMP = 1;
const IPPROTO_ICMPV6 = 58;
const IPPROTO_UDPLITE = 136;
const PROTO_NAMES = new Set(['PING', 'PINGv6', 'UDP-Lite', 'UDPLITEv6', 'RAW', 'RAWv6']);

export const isIpSocket = (f: FdFacts) => PROTO_NAMES.has(sockProto(f) ?? '');

type Kind = Extract<SockProto, 'ping' | 'udplite' | 'raw'>;

function kindOf(s: { family: number; type: number; protocol: number }): Kind | undefined {
  if (s.type === SOCK_RAW) return 'raw';
  if (s.type !== SOCK.DGRAM) return undefined;
  if (s.protocol === IPPROTO_UDPLITE) return 'udplite';
  if ((s.family === AF_INET && s.protocol === IPPROTO_ICMP) || (s.family === AF_INET6 && s.protocol === IPPROTO_ICMPV6)) return 'ping';
  return undefined;
}

const NAMES: Record<Kind, string> = { ping: 'ICMP (ping)', udplite: 'UDP-Lite', raw: 'raw IP' };
/** The /proc/PID/net table listing each kind (IPv6: with a "6"). */
const TABLES: Record<Kind, string> = { ping: 'icmp', udplite: 'udplite', raw: 'raw' };
const TCP_ESTABLISHED = 1;
/** IP_MTU / IPV6_MTU answer only on a socket with a cached route, i.e. a connected one. */
const MTU = { 2: [0, 14], 10: [41, 24] } as const;

/**
 * The address connect() set. getpeername has it for UDP-Lite; for ping and raw sockets
 * (no destination port) it answers ENOTCONN, and the /proc/PID/net table has it. A ping
 * socket connected but never used has no echo id yet and is in no table: refused.
 */
function peerOf(f: FdFacts, s: { fd: number; kind: Kind; family: 2 | 10; line: NetSockLine | undefined }): InetAddr | undefined {
  if (s.kind === 'udplite') {
    try {
      return getpeername(s.fd);
    } catch (e) {
      if (!isErrno(e, 'ENOTCONN')) throw e;
      return undefined;
    }
  }
  if (s.line) return s.line.state === TCP_ESTABLISHED ? { family: s.family, addr: s.line.remote.addr, port: s.line.remote.port } : undefined;
  try {
    getsockoptInt(s.fd, MTU[s.family][0], MTU[s.family][1]);
  } catch {
    return undefined; // no route cached: not connected
  }
  throw unsupported(f, `this ${NAMES[s.kind]} socket is connected but has no echo id yet; its peer is not shown anywhere`);
}

function unsupported(f: FdFacts, why: string) {
  return dumpError(f, { code: 'UNSUPPORTED', reason: `${why} (${f.link})` });
}

const isZero = (a: InetAddr) => /^0+$/.test(a.addr);

/** The address to bind again: none when nothing was bound (a raw socket's port is its protocol, never bound). */
function boundName(kind: Kind, name: InetAddr): InetAddr | undefined {
  if (kind === 'raw') return isZero(name) ? undefined : { ...name, port: 0 };
  return isZero(name) && name.port === 0 ? undefined : name;
}

export function dumpIpSocket(dc: KindDumpContext, f: FdFacts): EntryOf<'ipsock'> {
  const local = grabFd(f.pid, f.fd);
  try {
    const family = getsockoptInt(local, SOL_SOCKET, SO_INET.DOMAIN);
    const type = getsockoptInt(local, SOL_SOCKET, SO_INET.TYPE);
    const protocol = getsockoptInt(local, SOL_SOCKET, SO_INET.PROTOCOL);
    const kind = kindOf({ family, type, protocol });
    if ((family !== AF_INET && family !== AF_INET6) || !kind) {
      throw unsupported(f, `sockets of family ${family}, type ${type}, protocol ${protocol} are not supported`);
    }
    const pending = pendingError(local);
    if (pending) throw unsupported(f, pending);
    const name = getsockname(local);
    if (!name) throw unsupported(f, 'getsockname gave no IPv4/IPv6 address');
    const what = `${NAMES[kind]} socket ${formatAddr(name)}`;
    const ino = socketIno(f.link);
    const line = readNetSockets(f.pid, `${TABLES[kind]}${family === AF_INET6 ? '6' : ''}`).find((l) => l.ino === ino);
    const ev = pollNow(local, POLL.IN | POLL.RDHUP);
    if (ev & POLL.RDHUP) throw unsupported(f, `${what} is shut down for reading, which ckpt cannot see apart from queued datagrams`);
    if (ev & POLL.IN) {
      const bytes = line ? ` (${line.rxQueue} bytes)` : '';
      throw unsupported(f, `datagrams are queued on ${what}${bytes}; ckpt cannot queue them again from their senders`);
    }
    const peer = peerOf(f, { fd: local, kind, family: family as 2 | 10, line });
    const opts = readSockOpts(f, { fd: local, proto: kind, family: family as 2 | 10, fresh: freshInet(family, type, protocol) });
    const bound = boundName(kind, name);
    const groups = readMemberships(dc, { f, fd: local, family: family as 2 | 10 });
    return {
      kind: 'ipsock', fd: f.fd, flags: f.flags, family: family as 2 | 10, type: type as 2 | 3, protocol, opts,
      ...(bound ? { local: bound } : {}), ...(peer ? { peer } : {}), ...(groups.length > 0 ? { groups } : {}),
    };
  } finally {
    closeFd(local);
  }
}

export const ipSocketReopener: LocalReopener<'ipsock'> = {
  at: 'local',
  open(rc, e) {
    const kind = kindOf(e) ?? 'raw';
    const what = `${NAMES[kind]} socket${e.local ? ` ${formatAddr(e.local)}` : ''}`;
    checkInterfaces(rc.ctx, { fd: e.fd, list: e.groups ?? [] });
    let fd: number;
    try {
      fd = inetSocket(e.family, e.type, e.protocol);
    } catch (err) {
      const hint = kind === 'ping' && isErrno(err, 'EACCES') ? ': net.ipv4.ping_group_range does not include the restorer\'s group' : '';
      throw restoreError(rc, { fd: e.fd, code: 'SYSCALL', reason: `cannot create the ${what}${hint} (${(err as Error).message})`, cause: err });
    }
    try {
      applySockOpts(fd, { opts: e.opts, phase: 'bind' });
      if (e.local) bindInet(fd, e.local);
      applySockOpts(fd, { opts: e.opts, phase: 'state' });
      joinMemberships(rc, { fd, e });
      if (e.peer) connectInet(fd, e.peer);
      setNonblock(fd, e.flags);
      return fd;
    } catch (err) {
      closeFd(fd);
      if (isErrno(err, 'EADDRINUSE')) {
        throw new CkptError('ADDRESS_IN_USE', `Cannot restore fd ${e.fd} of process ${rc.ctx.pid}: ${what} is in use`, { cause: err });
      }
      throw restoreError(rc, { fd: e.fd, code: 'SYSCALL', reason: `${(err as Error).message} (${what})`, cause: err });
    }
  },
};
