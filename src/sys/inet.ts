/**
 * IPv4/IPv6 sockets in this process: socket, bind, listen, connect, getsockname and
 * getpeername with sockaddr_in/sockaddr_in6 codecs, getsockopt into a buffer, and the
 * NETLINK_SOCK_DIAG INET_DIAG dump (state, queues, inode) of TCP and UDP sockets.
 */
import { call, callNum } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';
import { recv, send, SO, SOCK } from './socket.js';

export const AF_INET = 2;
export const AF_INET6 = 10;
export const IPPROTO = { IP: 0, TCP: 6, UDP: 17, IPV6: 41 } as const;
/** shutdown(2) `how` and the sk_shutdown bits sock_diag reports (RCV_SHUTDOWN 1, SEND_SHUTDOWN 2). */
export const SHUT = { RD: 0, WR: 1, RDWR: 2 } as const;
export const SO_INET = { TYPE: 3, REUSEADDR: 2, BROADCAST: 6, KEEPALIVE: 9, REUSEPORT: 15, PROTOCOL: 38, DOMAIN: 39 } as const;
export const TCP_OPT = {
  NODELAY: 1, MAXSEG: 2, KEEPIDLE: 4, KEEPINTVL: 5, KEEPCNT: 6, INFO: 11, QUICKACK: 12,
  REPAIR: 19, REPAIR_QUEUE: 20, QUEUE_SEQ: 21, REPAIR_OPTIONS: 22, REPAIR_WINDOW: 29, USER_TIMEOUT: 18,
} as const;
/** SIOCINQ, SIOCOUTQ, SIOCOUTQNSD: bytes in the receive queue, the send queue, and not yet sent. */
export const SIOC = { INQ: 0x541b, OUTQ: 0x5411, OUTQNSD: 0x894b } as const;
export const TCP_REPAIR_Q = { NO: 0, RECV: 1, SEND: 2 } as const;
/** TCP_REPAIR values: on, off (with a window probe), off without the probe. */
export const REPAIR = { ON: 1, OFF: 0, OFF_NO_WP: -1 } as const;
export const TCP_TIMESTAMP = 24;
/** TCP states (include/net/tcp_states.h). */
export const TCP_STATE = {
  ESTABLISHED: 1, SYN_SENT: 2, SYN_RECV: 3, FIN_WAIT1: 4, FIN_WAIT2: 5, TIME_WAIT: 6, CLOSE: 7, CLOSE_WAIT: 8, LAST_ACK: 9, LISTEN: 10, CLOSING: 11,
} as const;
/** A raw socket that writes whole IP packets (IP_HDRINCL implied, IPv4 and IPv6). */
export const SOCK_RAW = 3;
export const IPPROTO_RAW = 255;
export const SO_MARK = 36;

const NR_INET = { poll: 7, connect: 42, shutdown: 48, accept4: 288, bind: 49, listen: 50, getsockname: 51, getpeername: 52, getxattr: 191 } as const;

/** An IPv4 or IPv6 socket address; `addr` is the raw address bytes in hex (8 or 32 digits). */
export interface InetAddr {
  family: typeof AF_INET | typeof AF_INET6;
  addr: string;
  port: number;
  flowinfo?: number;
  scope?: number;
}

export function encodeSockaddr(a: InetAddr): Buffer {
  const raw = Buffer.from(a.addr, 'hex');
  if (a.family === AF_INET) {
    const b = Buffer.alloc(16);
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(a.port, 2);
    raw.copy(b, 4, 0, 4);
    return b;
  }
  const b = Buffer.alloc(28);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(a.port, 2);
  b.writeUInt32BE(a.flowinfo ?? 0, 4);
  raw.copy(b, 8, 0, 16);
  b.writeUInt32LE(a.scope ?? 0, 24);
  return b;
}

export function decodeSockaddr(b: Buffer): InetAddr | undefined {
  const fam = b.readUInt16LE(0);
  if (fam === AF_INET) return { family: AF_INET, port: b.readUInt16BE(2), addr: b.subarray(4, 8).toString('hex') };
  if (fam === AF_INET6) {
    const a: InetAddr = { family: AF_INET6, port: b.readUInt16BE(2), addr: b.subarray(8, 24).toString('hex') };
    const flow = b.readUInt32BE(4);
    const scope = b.readUInt32LE(24);
    if (flow) a.flowinfo = flow;
    if (scope) a.scope = scope;
    return a;
  }
  return undefined;
}

/** "127.0.0.1:80", "[::1]:80" */
export function formatAddr(a: InetAddr): string {
  const raw = Buffer.from(a.addr, 'hex');
  if (a.family === AF_INET) return `${[...raw].join('.')}:${a.port}`;
  const groups = Array.from({ length: 8 }, (_, i) => raw.readUInt16BE(i * 2));
  // The longest run of two or more zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (g: number[]) => g.map((x) => x.toString(16)).join(':');
  const s = best < 0 ? hex(groups) : `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
  return `[${s}]:${a.port}`;
}

export function inetSocket(family: number, type: number, protocol: number): number {
  return callNum(NR.socket, [family, type | SOCK.CLOEXEC, protocol], { name: 'socket' });
}

export function bindInet(fd: number, a: InetAddr): void {
  const sa = encodeSockaddr(a);
  call(NR_INET.bind, [fd, addressOf(sa), sa.length], { name: 'bind' });
}

export function connectInet(fd: number, a: InetAddr): void {
  const sa = encodeSockaddr(a);
  call(NR_INET.connect, [fd, addressOf(sa), sa.length], { name: 'connect' });
}

/** sendto `a` (a raw socket's destination); returns the bytes sent. */
export function sendtoInet(fd: number, args: { data: Buffer; to: InetAddr }): number {
  const sa = encodeSockaddr(args.to);
  return callNum(NR.sendto, [fd, addressOf(args.data), args.data.length, 0, addressOf(sa), sa.length], { name: 'sendto' });
}

export function listenSocket(fd: number, backlog: number): void {
  call(NR_INET.listen, [fd, backlog], { name: 'listen' });
}

function nameCall(nr: number, fd: number, what: string): InetAddr | undefined {
  const b = Buffer.alloc(128);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(b.length);
  call(nr, [fd, addressOf(b), addressOf(len)], { name: what });
  return decodeSockaddr(b);
}

export const getsockname = (fd: number) => nameCall(NR_INET.getsockname, fd, 'getsockname');
export const getpeername = (fd: number) => nameCall(NR_INET.getpeername, fd, 'getpeername');

/** getsockopt into a buffer of `size` bytes; returns the bytes the kernel wrote. */
export function getsockoptBuf(fd: number, opt: { level: number; name: number; size: number }): Buffer {
  const buf = Buffer.alloc(opt.size);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(opt.size);
  call(NR.getsockopt, [fd, opt.level, opt.name, addressOf(buf), addressOf(len)], { name: `getsockopt(${opt.level}, ${opt.name})` });
  return buf.subarray(0, len.readUInt32LE(0));
}

export function setsockoptBuf(fd: number, opt: { level: number; name: number; value: Buffer }): void {
  call(NR.setsockopt, [fd, opt.level, opt.name, addressOf(opt.value), opt.value.length], { name: `setsockopt(${opt.level}, ${opt.name})` });
}

/** struct sock_filter is 8 bytes: code (u16), jt, jf (u8), k (u32). */
const SOCK_FILTER_SIZE = 8;
const SO_GET_FILTER = 26;
const SO_ATTACH_FILTER = 26;

/**
 * The classic BPF program attached to a socket (SO_GET_FILTER), as raw sock_filter
 * instructions; empty when none. optlen counts instructions, not bytes. An eBPF program
 * (SO_ATTACH_BPF) has no classic form: the kernel answers EACCES.
 */
export function getSocketFilter(fd: number): Buffer {
  const len = Buffer.alloc(4);
  call(NR.getsockopt, [fd, SOL_SOCKET_INET, SO_GET_FILTER, 0, addressOf(len)], { name: 'getsockopt(SO_GET_FILTER)' });
  const count = len.readUInt32LE(0);
  if (count === 0) return Buffer.alloc(0);
  const buf = Buffer.alloc(count * SOCK_FILTER_SIZE);
  call(NR.getsockopt, [fd, SOL_SOCKET_INET, SO_GET_FILTER, addressOf(buf), addressOf(len)], { name: 'getsockopt(SO_GET_FILTER)' });
  return buf.subarray(0, len.readUInt32LE(0) * SOCK_FILTER_SIZE);
}

/** Attaches a classic BPF program (raw sock_filter instructions) with SO_ATTACH_FILTER. */
export function attachSocketFilter(fd: number, insns: Buffer): void {
  const prog = Buffer.alloc(16); // struct sock_fprog: u16 len, pad, pointer
  prog.writeUInt16LE(insns.length / SOCK_FILTER_SIZE, 0);
  prog.writeBigUInt64LE(addressOf(insns), 8);
  call(NR.setsockopt, [fd, SOL_SOCKET_INET, SO_ATTACH_FILTER, addressOf(prog), prog.length], { name: 'setsockopt(SO_ATTACH_FILTER)' });
  void insns; // keep alive until here
}

const SOL_SOCKET_INET = 1;
export const POLL = { IN: 1, ERR: 8, HUP: 0x10, RDHUP: 0x2000 } as const;

/** poll(2) on one fd without waiting; returns revents. */
export function pollNow(fd: number, events: number): number {
  const p = Buffer.alloc(8);
  p.writeInt32LE(fd, 0);
  p.writeInt16LE(events, 4);
  callNum(NR_INET.poll, [addressOf(p), 1, 0], { name: 'poll' });
  return p.readUInt16LE(6);
}

/** The `system.sockprotoname` xattr of a socket inode reached by path ("TCP", "UDPv6", "UNIX"…), or undefined. */
export function sockProtoName(path: string): string | undefined {
  const p = Buffer.from(`${path}\0`);
  const name = Buffer.from('system.sockprotoname\0');
  const out = Buffer.alloc(64);
  try {
    const n = callNum(NR_INET.getxattr, [addressOf(p), addressOf(name), addressOf(out), out.length], { name: 'getxattr' });
    return out.subarray(0, n).toString('latin1').replace(/\0+$/, '');
  } catch {
    return undefined;
  }
}

export interface InetDiag {
  family: number;
  state: number;
  ino: number;
  rqueue: number;
  wqueue: number;
  sport: number;
  dport: number;
  /** Raw addresses in hex (8 digits for IPv4, 32 for IPv6). */
  src: string;
  dst: string;
  /** sk_shutdown (INET_DIAG_SHUTDOWN): RCV_SHUTDOWN 1, SEND_SHUTDOWN 2. */
  shutdown?: number;
  /** TCP_MD5SIG keys are set (INET_DIAG_MD5SIG, shown to a CAP_NET_ADMIN reader). */
  md5?: boolean;
}

const INET_DIAG_INFO = 2;
const INET_DIAG_SHUTDOWN = 8;
const INET_DIAG_MD5SIG = 18;

/** INET_DIAG_SHUTDOWN and INET_DIAG_MD5SIG among the attributes after the 72-byte inet_diag_msg of a record. */
function diagAttrs(buf: Buffer, range: { start: number; end: number }): { shutdown?: number; md5?: boolean } {
  const out: { shutdown?: number; md5?: boolean } = {};
  for (let a = range.start; a + 4 <= range.end; ) {
    const alen = buf.readUInt16LE(a);
    if (alen < 4) break;
    const type = buf.readUInt16LE(a + 2);
    if (type === INET_DIAG_SHUTDOWN && alen >= 5) out.shutdown = buf.readUInt8(a + 4);
    if (type === INET_DIAG_MD5SIG && alen > 4) out.md5 = true;
    a += (alen + 3) & ~3;
  }
  return out;
}

const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;

/** Every socket of `family`/`protocol` in this network namespace (INET_DIAG, all states). */
export function inetDiagAll(family: number, protocol: number): InetDiag[] {
  const fd = callNum(NR.socket, [16, SOCK.DGRAM | SOCK.CLOEXEC, NETLINK_SOCK_DIAG], { name: 'socket(NETLINK_SOCK_DIAG)' });
  try {
    const req = Buffer.alloc(16 + 56);
    req.writeUInt32LE(req.length, 0);
    req.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
    req.writeUInt16LE(1 | 0x300, 6); // NLM_F_REQUEST | NLM_F_DUMP
    req.writeUInt32LE(1, 8);
    req.writeUInt8(family, 16);
    req.writeUInt8(protocol, 17);
    // idiag_ext: INET_DIAG_INFO, with which TCP also reports its MD5 keys (tcp_diag_get_aux).
    req.writeUInt8(1 << (INET_DIAG_INFO - 1), 18);
    req.writeUInt32LE(0xffffffff, 20); // idiag_states: all
    send(fd, req);
    const out: InetDiag[] = [];
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      const n = recv(fd, buf);
      if (n === 0) return out;
      for (let off = 0; off + 16 <= n; ) {
        const len = buf.readUInt32LE(off);
        const type = buf.readUInt16LE(off + 4);
        if (type === 3) return out; // NLMSG_DONE
        if (type === 2) throw new Error(`sock_diag: error ${-buf.readInt32LE(off + 16)}`); // NLMSG_ERROR
        const m = off + 16;
        out.push({
          family: buf.readUInt8(m), state: buf.readUInt8(m + 1),
          sport: buf.readUInt16BE(m + 4), dport: buf.readUInt16BE(m + 6),
          src: buf.subarray(m + 8, m + (family === AF_INET ? 12 : 24)).toString('hex'),
          dst: buf.subarray(m + 24, m + (family === AF_INET ? 28 : 40)).toString('hex'),
          rqueue: buf.readUInt32LE(m + 56), wqueue: buf.readUInt32LE(m + 60), ino: buf.readUInt32LE(m + 68),
          ...diagAttrs(buf, { start: m + 72, end: Math.min(off + len, n) }),
        });
        if (len < 16) break;
        off += (len + 3) & ~3;
      }
    }
  } finally {
    call(NR.close, [fd], { name: 'close' });
  }
}

/** shutdown(2) of one of our sockets: the peer reads EOF, our blocked reads return. */
export function shutdownSocket(fd: number, how: number): void {
  call(NR_INET.shutdown, [fd, how], { name: 'shutdown' });
}

/** accept4 (close-on-exec): the connection's fd and its peer's address. */
export function acceptInet(fd: number): { fd: number; peer: InetAddr | undefined } {
  const b = Buffer.alloc(128);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(b.length);
  const conn = callNum(NR_INET.accept4, [fd, addressOf(b), addressOf(len), SOCK.CLOEXEC], { name: 'accept4' });
  return { fd: conn, peer: decodeSockaddr(b) };
}

const SO_TIMEO = { RCV: 20, SND: 21 } as const;

/** SO_RCVTIMEO and SO_SNDTIMEO: a blocking read or write on `fd` fails with EAGAIN after `ms`. */
export function setSocketTimeouts(fd: number, ms: number): void {
  const tv = Buffer.alloc(16);
  tv.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
  tv.writeBigInt64LE(BigInt((ms % 1000) * 1000), 8);
  for (const name of [SO_TIMEO.RCV, SO_TIMEO.SND]) setsockoptBuf(fd, { level: SOL_SOCKET_INET, name, value: tv });
}

/** An IPv4 or IPv6 address in text ("10.0.0.2", "::1", "[::1]") with a port; undefined if it is not one (names are not resolved). */
export function parseInetAddr(text: string, port: number): InetAddr | undefined {
  const host = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4) {
    const bytes = v4.slice(1).map(Number);
    if (bytes.some((x) => x > 255)) return undefined;
    return { family: AF_INET, addr: Buffer.from(bytes).toString('hex'), port };
  }
  if (!/^[0-9a-fA-F:]+$/.test(host) || !host.includes(':')) return undefined;
  const halves = host.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const fill = 8 - head.length - tail.length;
  if ((halves.length === 2 ? fill < 1 : fill !== 0) || [...head, ...tail].some((g) => g.length === 0 || g.length > 4)) return undefined;
  const all = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...tail];
  return { family: AF_INET6, addr: all.map((g) => g.padStart(4, '0')).join('').toLowerCase(), port };
}

/**
 * Socket buffers of `bytes` each way (SO_SNDBUFFORCE/SO_RCVBUFFORCE, which root may set
 * above the sysctl limits; else the plain options, capped by them). Bulk transfers between
 * two busy processes move more per scheduling slice with big buffers.
 */
export function setSocketBuffers(fd: number, bytes: number): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(bytes);
  for (const [force, plain] of [[SO.SNDBUFFORCE, SO.SNDBUF], [SO.RCVBUFFORCE, SO.RCVBUF]] as const) {
    try {
      setsockoptBuf(fd, { level: SOL_SOCKET_INET, name: force, value: v });
    } catch {
      setsockoptBuf(fd, { level: SOL_SOCKET_INET, name: plain, value: v });
    }
  }
}
