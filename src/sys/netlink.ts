/**
 * Netlink sockets in this process: sockaddr_nl (port id and the first 32 groups),
 * bind/connect/getsockname/getpeername on it, NETLINK_LIST_MEMBERSHIPS (every group,
 * not only the first 32), and the NETLINK_SOCK_DIAG dump of netlink sockets
 * (netlink_diag: port ids, flags such as a dump in progress, receive memory); the
 * audit daemon's pid (AUDIT_GET).
 */
import { call, callNum } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';
import { closeFd } from './process.js';
import { AF, recv, send, SOCK } from './socket.js';
import { forEachAttr, sockDiagDump } from './sockdiag.js';

export const SOL_NETLINK = 270;
export const NETLINK_OPT = { ADD_MEMBERSHIP: 1, DROP_MEMBERSHIP: 2, LIST_MEMBERSHIPS: 9 } as const;
/** Netlink protocols (include/uapi/linux/netlink.h) ckpt names in messages. */
export const NETLINK_PROTO: Record<number, string> = {
  0: 'NETLINK_ROUTE', 2: 'NETLINK_USERSOCK', 4: 'NETLINK_SOCK_DIAG', 5: 'NETLINK_NFLOG', 6: 'NETLINK_XFRM',
  7: 'NETLINK_SELINUX', 8: 'NETLINK_ISCSI', 9: 'NETLINK_AUDIT', 10: 'NETLINK_FIB_LOOKUP', 11: 'NETLINK_CONNECTOR',
  12: 'NETLINK_NETFILTER', 13: 'NETLINK_IP6_FW', 14: 'NETLINK_DNRTMSG', 15: 'NETLINK_KOBJECT_UEVENT',
  16: 'NETLINK_GENERIC', 18: 'NETLINK_SCSITRANSPORT', 19: 'NETLINK_ECRYPTFS', 20: 'NETLINK_RDMA', 21: 'NETLINK_CRYPTO',
  22: 'NETLINK_SMC',
};
/** netlink_diag flags (NETLINK_DIAG_FLAGS): NDIAG_FLAG_CB_RUNNING is a dump the kernel is in the middle of. */
export const NDIAG_FLAG = { CB_RUNNING: 1 } as const;

const NR_NL = { connect: 42, bind: 49, getsockname: 51, getpeername: 52 } as const;

/** A netlink address: a port id and a bit mask of groups 1-32. */
export interface NetlinkAddr {
  portid: number;
  groups: number;
}

function encode(a: NetlinkAddr): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16LE(AF.NETLINK, 0);
  b.writeUInt32LE(a.portid >>> 0, 4);
  b.writeUInt32LE(a.groups >>> 0, 8);
  return b;
}

export function bindNetlink(fd: number, a: NetlinkAddr): void {
  const sa = encode(a);
  call(NR_NL.bind, [fd, addressOf(sa), sa.length], { name: 'bind(AF_NETLINK)' });
}

export function connectNetlink(fd: number, a: NetlinkAddr): void {
  const sa = encode(a);
  call(NR_NL.connect, [fd, addressOf(sa), sa.length], { name: 'connect(AF_NETLINK)' });
}

function nameCall(nr: number, fd: number, what: string): NetlinkAddr {
  const b = Buffer.alloc(12);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(b.length);
  call(nr, [fd, addressOf(b), addressOf(len)], { name: what });
  return { portid: b.readUInt32LE(4), groups: b.readUInt32LE(8) };
}

/** The socket's own port id (0 while unbound) and its groups 1-32. */
export const netlinkName = (fd: number) => nameCall(NR_NL.getsockname, fd, 'getsockname(AF_NETLINK)');
/** The default destination set by connect() (0/0 when not connected). */
export const netlinkPeer = (fd: number) => nameCall(NR_NL.getpeername, fd, 'getpeername(AF_NETLINK)');

/** Every group the socket is subscribed to (NETLINK_LIST_MEMBERSHIPS), in increasing order. */
export function netlinkGroups(fd: number): number[] {
  const len = Buffer.alloc(4);
  let buf = Buffer.alloc(32);
  for (;;) {
    len.writeUInt32LE(buf.length);
    call(NR.getsockopt, [fd, SOL_NETLINK, NETLINK_OPT.LIST_MEMBERSHIPS, addressOf(buf), addressOf(len)], { name: 'getsockopt(NETLINK_LIST_MEMBERSHIPS)' });
    const need = len.readUInt32LE(0);
    // The kernel says how many bytes the whole bitmap needs; a short buffer gets its first part.
    if (need <= buf.length) break;
    buf = Buffer.alloc(need);
  }
  const out: number[] = [];
  for (let w = 0; w * 4 < Math.min(len.readUInt32LE(0), buf.length); w++) {
    const word = buf.readUInt32LE(w * 4);
    for (let bit = 0; bit < 32; bit++) if (word & (1 << bit)) out.push(w * 32 + bit + 1);
  }
  return out;
}

export interface NetlinkDiag {
  protocol: number;
  portid: number;
  dstPortid: number;
  dstGroup: number;
  ino: number;
  /** NETLINK_DIAG_FLAGS */
  flags: number;
  /** SK_MEMINFO_RMEM_ALLOC: memory held by queued messages. */
  rmem: number;
}

const NDIAG_SHOW = { MEMINFO: 1, FLAGS: 8 } as const;
const NETLINK_DIAG = { MEMINFO: 0, FLAGS: 4 } as const;
const NDIAG_PROTO_ALL = 255;

/** Every netlink socket with a port id in this network namespace (unbound ones are not listed). */
export function netlinkDiagAll(): NetlinkDiag[] {
  const req = Buffer.alloc(20); // struct netlink_diag_req
  req.writeUInt8(AF.NETLINK, 0);
  req.writeUInt8(NDIAG_PROTO_ALL, 1);
  req.writeUInt32LE(NDIAG_SHOW.MEMINFO | NDIAG_SHOW.FLAGS, 8); // ndiag_show
  const out: NetlinkDiag[] = [];
  sockDiagDump(req, (buf, r) => {
    const m = r.start; // struct netlink_diag_msg, 28 bytes, then attributes
    const d: NetlinkDiag = {
      protocol: buf.readUInt8(m + 2), portid: buf.readUInt32LE(m + 4), dstPortid: buf.readUInt32LE(m + 8),
      dstGroup: buf.readUInt32LE(m + 12), ino: buf.readUInt32LE(m + 16), flags: 0, rmem: 0,
    };
    forEachAttr(buf, { start: m + 28, end: r.end }, (type, at, len) => {
      if (type === NETLINK_DIAG.FLAGS && len >= 4) d.flags = buf.readUInt32LE(at);
      if (type === NETLINK_DIAG.MEMINFO && len >= 4) d.rmem = buf.readUInt32LE(at);
    });
    out.push(d);
  });
  return out;
}

const NETLINK_AUDIT = 9;
const AUDIT_GET = 1000;

/**
 * The pid the audit subsystem sends its records to (auditd's, registered with
 * AUDIT_SET on its NETLINK_AUDIT socket), 0 when none; undefined when this process
 * may not ask (AUDIT_GET needs CAP_AUDIT_CONTROL and the initial PID namespace).
 */
export function auditDaemonPid(): number | undefined {
  let fd: number;
  try {
    fd = callNum(NR.socket, [AF.NETLINK, 3 /* SOCK_RAW */ | SOCK.CLOEXEC, NETLINK_AUDIT], { name: 'socket(NETLINK_AUDIT)' });
  } catch {
    return undefined;
  }
  try {
    const req = Buffer.alloc(16);
    req.writeUInt32LE(16, 0);
    req.writeUInt16LE(AUDIT_GET, 4);
    req.writeUInt16LE(1, 6); // NLM_F_REQUEST
    req.writeUInt32LE(1, 8);
    send(fd, req);
    const buf = Buffer.alloc(4096);
    const n = recv(fd, buf);
    // struct audit_status: mask, enabled, failure, pid, …
    if (n < 32 || buf.readUInt16LE(4) !== AUDIT_GET) return undefined;
    return buf.readUInt32LE(16 + 12);
  } catch {
    return undefined;
  } finally {
    closeFd(fd);
  }
}
