/**
 * Packet sockets (AF_PACKET) in this process: sockaddr_ll for bind/getsockname, the
 * PACKET_ADD_MEMBERSHIP request, and the NETLINK_SOCK_DIAG dump of packet sockets
 * (packet_diag: interface, copy threshold, multicast memberships with their counts,
 * rings, fanout, receive memory), which shows what no getsockopt does.
 */
import { call, callNum } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';
import { AF, recv, send, SOCK } from './socket.js';

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

const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const SHOW = { INFO: 1, MCLIST: 2, RING_CFG: 4, FANOUT: 8, MEMINFO: 0x10 } as const;
const ATTR = { INFO: 0, MCLIST: 1, RX_RING: 2, TX_RING: 3, FANOUT: 4, MEMINFO: 6 } as const;
const MCLIST_SIZE = 44; // struct packet_diag_mclist

function parseRecord(buf: Buffer, range: { start: number; end: number }): PacketDiag {
  const d: PacketDiag = { ino: buf.readUInt32LE(range.start + 4), copyThresh: 0, memberships: [], rxRing: false, txRing: false, fanout: false, rmem: 0 };
  for (let a = range.start + 16; a + 4 <= range.end; ) { // after struct packet_diag_msg (16 bytes)
    const alen = buf.readUInt16LE(a);
    if (alen < 4) break;
    const p = a + 4;
    switch (buf.readUInt16LE(a + 2)) {
      case ATTR.INFO: if (alen >= 4 + 24) d.copyThresh = buf.readUInt32LE(p + 12); break;
      case ATTR.MCLIST:
        for (let m = p; m + MCLIST_SIZE <= a + alen; m += MCLIST_SIZE) {
          const alen2 = Math.min(buf.readUInt16LE(m + 10), 32);
          d.memberships.push({
            ifindex: buf.readUInt32LE(m), count: buf.readUInt32LE(m + 4), type: buf.readUInt16LE(m + 8),
            addr: buf.subarray(m + 12, m + 12 + alen2).toString('hex'),
          });
        }
        break;
      case ATTR.RX_RING: d.rxRing = true; break;
      case ATTR.TX_RING: d.txRing = true; break;
      case ATTR.FANOUT: d.fanout = true; break;
      case ATTR.MEMINFO: if (alen >= 8) d.rmem = buf.readUInt32LE(p); break;
    }
    a += (alen + 3) & ~3;
  }
  return d;
}

/** Every packet socket of this network namespace (needs the packet_diag module). */
export function packetDiagAll(): PacketDiag[] {
  const fd = callNum(NR.socket, [AF.NETLINK, SOCK.DGRAM | SOCK.CLOEXEC, NETLINK_SOCK_DIAG], { name: 'socket(NETLINK_SOCK_DIAG)' });
  try {
    const req = Buffer.alloc(16 + 20);
    req.writeUInt32LE(req.length, 0);
    req.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
    req.writeUInt16LE(1 | 0x300, 6); // NLM_F_REQUEST | NLM_F_DUMP
    req.writeUInt32LE(1, 8);
    req.writeUInt8(AF_PACKET, 16);
    req.writeUInt32LE(SHOW.INFO | SHOW.MCLIST | SHOW.RING_CFG | SHOW.FANOUT | SHOW.MEMINFO, 24); // pdiag_show
    send(fd, req);
    const out: PacketDiag[] = [];
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      const n = recv(fd, buf);
      if (n === 0) return out;
      for (let off = 0; off + 16 <= n; ) {
        const len = buf.readUInt32LE(off);
        const type = buf.readUInt16LE(off + 4);
        if (type === 3) return out; // NLMSG_DONE
        if (type === 2) throw new Error(`sock_diag: error ${-buf.readInt32LE(off + 16)}`); // NLMSG_ERROR
        out.push(parseRecord(buf, { start: off + 16, end: Math.min(off + len, n) }));
        if (len < 16) break;
        off += (len + 3) & ~3;
      }
    }
  } finally {
    call(NR.close, [fd], { name: 'close' });
  }
}

export function setCopyThresh(fd: number, value: number): void {
  const v = Buffer.alloc(4);
  v.writeInt32LE(value);
  call(NR.setsockopt, [fd, SOL_PACKET, PACKET_OPT.COPY_THRESH, addressOf(v), 4], { name: 'setsockopt(PACKET_COPY_THRESH)' });
}
