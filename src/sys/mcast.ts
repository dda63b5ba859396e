/**
 * Multicast memberships of one IPv4/IPv6 socket, through the protocol-independent API
 * (RFC 3678): getsockopt(MCAST_MSFILTER) reads the filter of a group the socket joined
 * on an interface (EADDRNOTAVAIL when it did not join it), setsockopt(MCAST_JOIN_GROUP)
 * joins, setsockopt(MCAST_MSFILTER) sets the mode and source list. `level` is
 * IPPROTO_IP for IPv4 groups (also on an IPv6 socket) and IPPROTO_IPV6 for IPv6 groups.
 */
import { call } from './call.js';
import { isErrno } from './error.js';
import { encodeSockaddr, decodeSockaddr } from './inet.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';

const MCAST_JOIN_GROUP = 42;
const MCAST_MSFILTER = 48;
/** struct group_filter: gf_interface, pad, gf_group (sockaddr_storage at 8), gf_fmode (136), gf_numsrc (140), gf_slist (144). */
const GF_HEAD = 144;
const SS = 128;
export const MCAST_MODE = { INCLUDE: 1, EXCLUDE: 0 } as const;

export interface GroupRef {
  level: number;
  ifindex: number;
  family: 2 | 10;
  /** The group address, network order, hex. */
  group: string;
}

export interface GroupFilter {
  mode: number;
  /** Source addresses (network order, hex). */
  sources: string[];
}

function storage(family: 2 | 10, addr: string): Buffer {
  const b = Buffer.alloc(SS);
  encodeSockaddr({ family, addr, port: 0 }).copy(b);
  return b;
}

function filterBuf(g: GroupRef, n: number): Buffer {
  const b = Buffer.alloc(GF_HEAD + n * SS);
  b.writeUInt32LE(g.ifindex, 0);
  storage(g.family, g.group).copy(b, 8);
  b.writeUInt32LE(n, 140);
  return b;
}

/** The socket's filter for group `g`, or undefined when it has not joined it on that interface. */
export function getGroupFilter(fd: number, g: GroupRef): GroupFilter | undefined {
  let n = 0;
  for (;;) {
    const b = filterBuf(g, n);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    try {
      call(NR.getsockopt, [fd, g.level, MCAST_MSFILTER, addressOf(b), addressOf(len)], { name: 'getsockopt(MCAST_MSFILTER)' });
    } catch (e) {
      if (isErrno(e, 'EADDRNOTAVAIL') || isErrno(e, 'EINVAL') || isErrno(e, 'ENOPROTOOPT')) return undefined;
      throw e;
    }
    const total = b.readUInt32LE(140);
    if (total > n) {
      n = total; // the list grew past our buffer: ask again with room for all
      continue;
    }
    const sources: string[] = [];
    for (let i = 0; i < total; i++) {
      const a = decodeSockaddr(b.subarray(GF_HEAD + i * SS, GF_HEAD + (i + 1) * SS));
      if (a) sources.push(a.addr);
    }
    return { mode: b.readUInt32LE(136), sources };
  }
}

export function joinGroup(fd: number, g: GroupRef): void {
  const req = Buffer.alloc(8 + SS); // struct group_req
  req.writeUInt32LE(g.ifindex, 0);
  storage(g.family, g.group).copy(req, 8);
  call(NR.setsockopt, [fd, g.level, MCAST_JOIN_GROUP, addressOf(req), req.length], { name: 'setsockopt(MCAST_JOIN_GROUP)' });
}

export function setGroupFilter(fd: number, args: { g: GroupRef; filter: GroupFilter }): void {
  const { g, filter } = args;
  const b = filterBuf(g, filter.sources.length);
  b.writeUInt32LE(filter.mode, 136);
  filter.sources.forEach((s, i) => storage(g.family, s).copy(b, GF_HEAD + i * SS));
  call(NR.setsockopt, [fd, g.level, MCAST_MSFILTER, addressOf(b), b.length], { name: 'setsockopt(MCAST_MSFILTER)' });
}
