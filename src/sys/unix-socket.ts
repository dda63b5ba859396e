/**
 * Unix socket addresses in this process: bind, connect, accept, sendto a name, peek a
 * datagram with its sender's name, getsockname/getpeername, and SIOCUNIXFILE (an
 * O_PATH fd of the file a socket is bound to, wherever it is now). An address is the
 * raw sun_path bytes the kernel reports: a leading NUL for an abstract name, else a
 * path without its terminating NUL; an empty one is an unnamed socket.
 */
import { call, callNum } from './call.js';
import { addressOf } from './native.js';
import { AF } from './socket.js';
import { closeFd } from './process.js';
import { getsockoptBuf } from './inet.js';
import { isErrno } from './error.js';

const NR_UNIX = { connect: 42, accept4: 288, bind: 49, getsockname: 51, getpeername: 52, recvmsg: 47, sendmsg: 46, sendto: 44, ioctl: 16 } as const;
const SUN_PATH = 108;
const SOCK_CLOEXEC = 0o2000000;
const SIOCUNIXFILE = 0x89e0;

export function sockaddrUn(addr: Buffer): Buffer {
  if (addr.length === 0 || addr.length > SUN_PATH - (addr[0] === 0 ? 0 : 1)) throw new RangeError(`bad unix address of ${addr.length} bytes`);
  const sa = Buffer.alloc(2 + addr.length + (addr[0] === 0 ? 0 : 1));
  sa.writeUInt16LE(AF.UNIX, 0);
  addr.copy(sa, 2);
  return sa;
}

/** The sun_path bytes of a sockaddr_un of `len` bytes, as defined above. */
export function addrFromSockaddr(sa: Buffer, len: number): Buffer {
  if (len <= 2) return Buffer.alloc(0);
  const path = sa.subarray(2, Math.min(len, sa.length));
  if (path[0] === 0) return Buffer.from(path);
  const nul = path.indexOf(0);
  return Buffer.from(nul < 0 ? path : path.subarray(0, nul));
}

/** "/run/x.sock", "@name" (abstract, NULs and other bytes escaped), or "unnamed", for messages. */
export function formatUnixAddr(addr: Buffer): string {
  if (addr.length === 0) return 'unnamed';
  if (addr[0] !== 0) return addr.toString('utf8');
  return `@${[...addr.subarray(1)].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('')}`;
}

export function bindUnix(fd: number, addr: Buffer): void {
  const sa = sockaddrUn(addr);
  call(NR_UNIX.bind, [fd, addressOf(sa), sa.length], { name: 'bind' });
}

export function connectUnix(fd: number, addr: Buffer): void {
  const sa = sockaddrUn(addr);
  call(NR_UNIX.connect, [fd, addressOf(sa), sa.length], { name: 'connect' });
}

export function acceptUnix(fd: number): number {
  return callNum(NR_UNIX.accept4, [fd, 0, 0, SOCK_CLOEXEC], { name: 'accept4' });
}

/** sendto `addr` (or the connected peer when `addr` is undefined); returns the bytes sent. */
export function sendtoUnix(fd: number, args: { data: Buffer; addr?: Buffer; flags: number }): number {
  const sa = args.addr === undefined ? undefined : sockaddrUn(args.addr);
  const r = callNum(NR_UNIX.sendto, [fd, addressOf(args.data), args.data.length, args.flags, sa ? addressOf(sa) : 0, sa ? sa.length : 0], { name: 'sendto' });
  void sa;
  return r;
}

function nameCall(nr: number, fd: number, name: string): Buffer {
  const sa = Buffer.alloc(2 + SUN_PATH);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(sa.length);
  call(nr, [fd, addressOf(sa), addressOf(len)], { name });
  return addrFromSockaddr(sa, len.readUInt32LE(0));
}

export const sockName = (fd: number) => nameCall(NR_UNIX.getsockname, fd, 'getsockname');
export const peerName = (fd: number) => nameCall(NR_UNIX.getpeername, fd, 'getpeername');

/** An O_PATH fd of the file socket `fd` is bound to (ENOENT: not bound to a path). */
export function unixFile(fd: number): number {
  return callNum(NR_UNIX.ioctl, [fd, SIOCUNIXFILE, 0], { name: 'ioctl(SIOCUNIXFILE)' });
}

const SCM_RIGHTS = 1;
const SCM_CREDENTIALS = 2;
/** A pidfd of the sender, installed by every receive (even a peek) when the socket has SO_PASSPIDFD. */
const SCM_PIDFD = 4;
/** Room for SCM_MAX_FD (253) fds and a struct ucred. */
const CONTROL = 2048;

export interface Received {
  n: number;
  msgFlags: number;
  from: Buffer;
  /** Fds passed with the message (SCM_RIGHTS), now ours; with MSG_PEEK, copies. */
  rights: number[];
  /** SCM_CREDENTIALS, when the socket has SO_PASSCRED. */
  creds?: { pid: number; uid: number; gid: number };
}

/**
 * A struct msghdr over one iovec of `data`, with an optional name and control buffer;
 * `keep` holds every buffer the kernel reads or writes through it (keep it referenced
 * until the call returns: koffi.address does not).
 */
function msghdr(args: { data: Buffer; name?: Buffer; control?: Buffer }): { msg: Buffer; keep: Buffer[] } {
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(addressOf(args.data), 0);
  iov.writeBigUInt64LE(BigInt(args.data.length), 8);
  const msg = Buffer.alloc(56);
  if (args.name) {
    msg.writeBigUInt64LE(addressOf(args.name), 0);
    msg.writeUInt32LE(args.name.length, 8);
  }
  msg.writeBigUInt64LE(addressOf(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  if (args.control) {
    msg.writeBigUInt64LE(addressOf(args.control), 32);
    msg.writeBigUInt64LE(BigInt(args.control.length), 40);
  }
  return { msg, keep: [iov, args.data, ...(args.name ? [args.name] : []), ...(args.control ? [args.control] : [])] };
}

/** recvmsg into `buf` with the sender's address and the fds and credentials that came with it. */
export function recvmsgControl(fd: number, buf: Buffer, flags: number): Received {
  const sa = Buffer.alloc(2 + SUN_PATH);
  const control = Buffer.alloc(CONTROL);
  const { msg, keep } = msghdr({ data: buf, name: sa, control });
  const n = callNum(NR_UNIX.recvmsg, [fd, addressOf(msg), flags], { name: 'recvmsg' });
  void keep;
  const out: Received = { n, msgFlags: msg.readInt32LE(48), from: addrFromSockaddr(sa, msg.readUInt32LE(8)), rights: [] };
  const total = Number(msg.readBigUInt64LE(40));
  for (let off = 0; off + 16 <= total; ) {
    const len = Number(control.readBigUInt64LE(off));
    if (len < 16) break;
    const level = control.readInt32LE(off + 8);
    const type = control.readInt32LE(off + 12);
    if (level === 1 && type === SCM_RIGHTS) for (let i = off + 16; i + 4 <= off + len; i += 4) out.rights.push(control.readInt32LE(i));
    if (level === 1 && type === SCM_CREDENTIALS && len >= 28) {
      out.creds = { pid: control.readInt32LE(off + 16), uid: control.readUInt32LE(off + 20), gid: control.readUInt32LE(off + 24) };
    }
    if (level === 1 && type === SCM_PIDFD && len >= 20) closeFd(control.readInt32LE(off + 16));
    off += (len + 7) & ~7;
  }
  return out;
}

/** Credentials to send with a message (SCM_CREDENTIALS): another pid or ids than our own need CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID. */
export interface MessageCreds {
  pid: number;
  uid: number;
  gid: number;
}

/** sendmsg of `data` with `rights` (SCM_RIGHTS) and `creds` (SCM_CREDENTIALS) attached, to `addr` or the connected peer. */
export function sendmsgRights(fd: number, args: { data: Buffer; rights: readonly number[]; creds?: MessageCreds; addr?: Buffer; flags: number }): number {
  const parts: Buffer[] = [];
  if (args.rights.length > 0) {
    const clen = 16 + 4 * args.rights.length;
    const c = Buffer.alloc((clen + 7) & ~7);
    c.writeBigUInt64LE(BigInt(clen), 0);
    c.writeInt32LE(1, 8);
    c.writeInt32LE(SCM_RIGHTS, 12);
    args.rights.forEach((r, i) => c.writeInt32LE(r, 16 + 4 * i));
    parts.push(c);
  }
  if (args.creds) {
    const c = Buffer.alloc(32);
    c.writeBigUInt64LE(28n, 0);
    c.writeInt32LE(1, 8);
    c.writeInt32LE(SCM_CREDENTIALS, 12);
    c.writeInt32LE(args.creds.pid, 16);
    c.writeUInt32LE(args.creds.uid, 20);
    c.writeUInt32LE(args.creds.gid, 24);
    parts.push(c);
  }
  const control = parts.length > 0 ? Buffer.concat(parts) : undefined;
  const { msg, keep } = msghdr({ data: args.data, name: args.addr === undefined ? undefined : sockaddrUn(args.addr), control });
  const n = callNum(NR_UNIX.sendmsg, [fd, addressOf(msg), args.flags], { name: `sendmsg(${args.creds ? 'SCM_CREDENTIALS' : 'SCM_RIGHTS'})` });
  void keep;
  return n;
}

const SOL_SOCKET = 1;
const SO_PEERCRED = 17;
const SO_PEERGROUPS = 59;

/** What the kernel recorded about a unix socket's peer when it was connected (SO_PEERCRED, SO_PEERGROUPS). */
export interface PeerCred extends MessageCreds {
  groups: number[];
}

/**
 * The peer credentials of socket `fd`: the process (its thread group) and its effective
 * ids and groups at socketpair(), connect() or listen() time; undefined when the kernel
 * recorded none (an unconnected or datagram-connected socket: pid 0).
 */
export function peerCred(fd: number): PeerCred | undefined {
  const u = getsockoptBuf(fd, { level: SOL_SOCKET, name: SO_PEERCRED, size: 12 });
  const pid = u.readInt32LE(0);
  if (pid === 0) return undefined;
  let g: Buffer;
  try {
    g = getsockoptBuf(fd, { level: SOL_SOCKET, name: SO_PEERGROUPS, size: 4096 });
  } catch (e) {
    if (!isErrno(e, 'ERANGE')) throw e;
    g = getsockoptBuf(fd, { level: SOL_SOCKET, name: SO_PEERGROUPS, size: 65536 * 4 });
  }
  const groups: number[] = [];
  for (let i = 0; i + 4 <= g.length; i += 4) groups.push(g.readUInt32LE(i));
  return { pid, uid: u.readUInt32LE(4), gid: u.readUInt32LE(8), groups };
}
