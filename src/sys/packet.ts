/**
 * Packet sockets (AF_PACKET) in this process: sockaddr_ll for bind/getsockname, the
 * PACKET_ADD_MEMBERSHIP request, and the NETLINK_SOCK_DIAG dump of packet sockets
 * (packet_diag: interface, copy threshold, multicast memberships with their counts,
 * rings, fanout, receive memory), which shows what no getsockopt does.
 */
import { call } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';
import { forEachAttr, sockDiagDump, type Range } from './sockdiag.js';

export const AF_PACKET = 17;
export const SOL_PACKET = 263;
export const PACKET_OPT = { ADD_MEMBERSHIP: 1, COPY_THRESH: 7 } as const;

const NR_PK = { bind: 49, getsockname: 51 } as const;

/** Where a packet socket is bound: the protocol (network byte order, as the kernel keeps it) and interface (0: all). */
export interface PacketAddr {
  protocol: number;
  ifindex: number;
}

export function bindPacket(fd: number, a: PacketAddr): void {
  const sa = Buffer.alloc(20); // struct sockaddr_ll
  sa.writeUInt16LE(AF_PACKET, 0);
  sa.writeUInt16LE(a.protocol, 2);
  sa.writeInt32LE(a.ifindex, 4);
  call(NR_PK.bind, [fd, addressOf(sa), sa.length], { name: 'bind(AF_PACKET)' });
}

export function packetName(fd: number): PacketAddr {
  const b = Buffer.alloc(32);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(b.length);
  call(NR_PK.getsockname, [fd, addressOf(b), addressOf(len)], { name: 'getsockname(AF_PACKET)' });
  return { protocol: b.readUInt16LE(2), ifindex: b.readInt32LE(4) };
}

/** One multicast/promiscuous membership (struct packet_mreq), added `count` times. */
export interface PacketMembership {
  ifindex: number;
  type: number;
  /** Hardware address bytes, hex (mr_alen of them). */
  addr: string;
  count: number;
}

export function addPacketMembership(fd: number, m: Omit<PacketMembership, 'count'>): void {
  const mreq = Buffer.alloc(16); // struct packet_mreq
  const addr = Buffer.from(m.addr, 'hex');
  mreq.writeInt32LE(m.ifindex, 0);
  mreq.writeUInt16LE(m.type, 4);
  mreq.writeUInt16LE(addr.length, 6);
  addr.copy(mreq, 8, 0, Math.min(8, addr.length));
  call(NR.setsockopt, [fd, SOL_PACKET, PACKET_OPT.ADD_MEMBERSHIP, addressOf(mreq), mreq.length], { name: 'setsockopt(PACKET_ADD_MEMBERSHIP)' });
}

export interface PacketDiag {
  ino: number;
  copyThresh: number;
  memberships: PacketMembership[];
  rxRing: boolean;
  txRing: boolean;
  fanout: boolean;
  /** SK_MEMINFO_RMEM_ALLOC: memory held by queued packets. */
  rmem: number;
}

const SHOW = { INFO: 1, MCLIST: 2, RING_CFG: 4, FANOUT: 8, MEMINFO: 0x10 } as const;
const ATTR = { INFO: 0, MCLIST: 1, RX_RING: 2, TX_RING: 3, FANOUT: 4, MEMINFO: 6 } as const;
const MCLIST_SIZE = 44; // struct packet_diag_mclist

function parseRecord(buf: Buffer, r: Range): PacketDiag {
  const d: PacketDiag = { ino: buf.readUInt32LE(r.start + 4), copyThresh: 0, memberships: [], rxRing: false, txRing: false, fanout: false, rmem: 0 };
  // After struct packet_diag_msg (16 bytes).
  forEachAttr(buf, { start: r.start + 16, end: r.end }, (type, p, len) => {
    if (type === ATTR.INFO && len >= 24) d.copyThresh = buf.readUInt32LE(p + 12); // struct packet_diag_info
    if (type === ATTR.RX_RING) d.rxRing = true;
    if (type === ATTR.TX_RING) d.txRing = true;
    if (type === ATTR.FANOUT) d.fanout = true;
    if (type === ATTR.MEMINFO && len >= 4) d.rmem = buf.readUInt32LE(p);
    if (type !== ATTR.MCLIST) return;
    for (let m = p; m + MCLIST_SIZE <= p + len; m += MCLIST_SIZE) {
      const alen = Math.min(buf.readUInt16LE(m + 10), 32);
      d.memberships.push({
        ifindex: buf.readUInt32LE(m), count: buf.readUInt32LE(m + 4), type: buf.readUInt16LE(m + 8),
        addr: buf.subarray(m + 12, m + 12 + alen).toString('hex'),
      });
    }
  });
  return d;
}

/** Every packet socket of this network namespace (needs the packet_diag module). */
export function packetDiagAll(): PacketDiag[] {
  const req = Buffer.alloc(20); // struct packet_diag_req
  req.writeUInt8(AF_PACKET, 0);
  req.writeUInt32LE(SHOW.INFO | SHOW.MCLIST | SHOW.RING_CFG | SHOW.FANOUT | SHOW.MEMINFO, 8); // pdiag_show
  const out: PacketDiag[] = [];
  sockDiagDump(req, (buf, r) => out.push(parseRecord(buf, r)));
  return out;
}

export function setCopyThresh(fd: number, value: number): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value);
  call(NR.setsockopt, [fd, SOL_PACKET, PACKET_OPT.COPY_THRESH, addressOf(v), 4], { name: 'setsockopt(PACKET_COPY_THRESH)' });
}

