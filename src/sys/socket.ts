/**
 * Sockets and fcntl in this process: socketpair, send/recv with flags (MSG_PEEK for
 * reading a queue without consuming it), get/setsockopt on ints, shutdown, and the
 * NETLINK_SOCK_DIAG exchange used to learn unix socket peers.
 */
import { call, callNum } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';

export const AF = { UNIX: 1, NETLINK: 16 } as const;
export const SOCK = { STREAM: 1, DGRAM: 2, SEQPACKET: 5, NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;
export const SOL_SOCKET = 1;
export const SCM_RIGHTS = 1;
export const SO = { SNDBUF: 7, RCVBUF: 8, SNDBUFFORCE: 32, RCVBUFFORCE: 33, PEEK_OFF: 42 } as const;
export const MSG = { OOB: 1, PEEK: 2, CTRUNC: 8, TRUNC: 0x20, DONTWAIT: 0x40, NOSIGNAL: 0x4000 } as const;
export const F = { GETFL: 3, SETFL: 4, DUPFD_CLOEXEC: 1030, SETPIPE_SZ: 1031, GETPIPE_SZ: 1032 } as const;
export const FIONREAD = 0x541b;

export function fcntl(fd: number, cmd: number, arg = 0): number {
  return callNum(NR.fcntl, [fd, cmd, arg], { name: `fcntl(${cmd})` });
}

export function socketpair(type: number): [number, number] {
  const fds = Buffer.alloc(8);
  call(NR.socketpair, [AF.UNIX, type | SOCK.CLOEXEC, 0, addressOf(fds)], { name: 'socketpair' });
  return [fds.readInt32LE(0), fds.readInt32LE(4)];
}

export function getsockoptInt(fd: number, level: number, name: number): number {
  const buf = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4);
  call(NR.getsockopt, [fd, level, name, addressOf(buf), addressOf(len)], { name: `getsockopt(${level}, ${name})` });
  return buf.readInt32LE(0);
}

export function send(fd: number, data: Buffer, flags = 0): number {
  return callNum(NR.sendto, [fd, addressOf(data), data.length, flags, 0, 0], { name: 'sendto' });
}

export function recv(fd: number, buf: Buffer, flags = 0): number {
  return callNum(NR.recvfrom, [fd, addressOf(buf), buf.length, flags, 0, 0], { name: 'recvfrom' });
}

/** recvmsg into `buf` with no control buffer; returns the length and msg_flags (MSG_TRUNC, MSG_CTRUNC). */
export function recvmsgPlain(fd: number, buf: Buffer, flags: number): { n: number; msgFlags: number } {
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(addressOf(buf), 0);
  iov.writeBigUInt64LE(BigInt(buf.length), 8);
  const msg = Buffer.alloc(56); // struct msghdr
  msg.writeBigUInt64LE(addressOf(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  const n = callNum(NR.recvmsg, [fd, addressOf(msg), flags], { name: 'recvmsg' });
  const msgFlags = msg.readInt32LE(48);
  void iov; // keep alive until here
  return { n, msgFlags };
}

/** Sends one byte with `fd` attached (SCM_RIGHTS) on a unix socket. */
export function sendFd(sock: number, fd: number): void {
  const byte = Buffer.from([0]);
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(addressOf(byte), 0);
  iov.writeBigUInt64LE(1n, 8);
  const control = Buffer.alloc(24); // CMSG_SPACE(sizeof(int))
  control.writeBigUInt64LE(20n, 0); // CMSG_LEN(sizeof(int))
  control.writeInt32LE(SOL_SOCKET, 8);
  control.writeInt32LE(SCM_RIGHTS, 12);
  control.writeInt32LE(fd, 16);
  const msg = Buffer.alloc(56);
  msg.writeBigUInt64LE(addressOf(iov), 16);
  msg.writeBigUInt64LE(1n, 24);
  msg.writeBigUInt64LE(addressOf(control), 32);
  msg.writeBigUInt64LE(24n, 40);
  callNum(NR.sendmsg, [sock, addressOf(msg), MSG.NOSIGNAL], { name: 'sendmsg(SCM_RIGHTS)' });
  void [byte, iov, control]; // keep alive until here
}

export function shutdownSocket(fd: number, how: number): void {
  call(NR.shutdown, [fd, how], { name: 'shutdown' });
}

export function readFd(fd: number, buf: Buffer): number {
  return callNum(NR.read, [fd, addressOf(buf), buf.length], { name: 'read' });
}

export function writeFd(fd: number, data: Buffer): number {
  return callNum(NR.write, [fd, addressOf(data), data.length], { name: 'write' });
}

export function ioctlInt(fd: number, request: number): number {
  const buf = Buffer.alloc(4);
  call(NR.ioctl, [fd, request, addressOf(buf)], { name: `ioctl(0x${request.toString(16)})` });
  return buf.readInt32LE(0);
}

const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
export const UDIAG_SHOW = { NAME: 1, VFS: 2, PEER: 4, ICONS: 8, RQLEN: 0x10, MEMINFO: 0x20 } as const;
export const UNIX_DIAG = { NAME: 0, VFS: 1, PEER: 2, ICONS: 3, RQLEN: 4, MEMINFO: 5, SHUTDOWN: 6 } as const;

export interface UnixDiag {
  ino: number;
  type: number;
  state: number;
  /** rtattr type → payload */
  attrs: Map<number, Buffer>;
}

/** Every unix socket of this network namespace, as NETLINK_SOCK_DIAG reports it with `show` attributes. */
export function unixDiagAll(show: number): UnixDiag[] {
  const fd = callNum(NR.socket, [AF.NETLINK, SOCK.DGRAM | SOCK.CLOEXEC, NETLINK_SOCK_DIAG], { name: 'socket(NETLINK_SOCK_DIAG)' });
  try {
    const req = Buffer.alloc(16 + 24);
    req.writeUInt32LE(req.length, 0);
    req.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
    req.writeUInt16LE(NLM_F_REQUEST | NLM_F_DUMP, 6);
    req.writeUInt32LE(1, 8);
    req.writeUInt8(AF.UNIX, 16); // sdiag_family
    req.writeUInt32LE(0xffffffff, 20); // udiag_states: all
    req.writeUInt32LE(show, 28); // udiag_show
    req.writeUInt32LE(0xffffffff, 32); // cookie: none
    req.writeUInt32LE(0xffffffff, 36);
    send(fd, req);
    const out: UnixDiag[] = [];
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      const n = recv(fd, buf);
      for (let off = 0; off + 16 <= n; ) {
        const len = buf.readUInt32LE(off);
        const type = buf.readUInt16LE(off + 4);
        if (type === NLMSG_DONE) return out;
        if (type === NLMSG_ERROR) throw new Error(`sock_diag: error ${-buf.readInt32LE(off + 16)}`);
        const m = off + 16;
        const attrs = new Map<number, Buffer>();
        for (let a = m + 16; a + 4 <= off + len; ) {
          const alen = buf.readUInt16LE(a);
          if (alen < 4) break;
          attrs.set(buf.readUInt16LE(a + 2), Buffer.from(buf.subarray(a + 4, a + alen)));
          a += (alen + 3) & ~3;
        }
        out.push({ type: buf.readUInt8(m + 1), state: buf.readUInt8(m + 2), ino: buf.readUInt32LE(m + 4), attrs });
        if (len < 16) break;
        off += (len + 3) & ~3;
      }
      if (n === 0) return out;
    }
  } finally {
    call(NR.close, [fd], { name: 'close' });
  }
}
