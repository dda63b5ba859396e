/**
 * IP multicast memberships of a UDP, UDP-Lite, ping or raw socket (IP_ADD_MEMBERSHIP,
 * IPV6_JOIN_GROUP, MCAST_JOIN_GROUP, source filters). No getsockopt lists them, but
 * MCAST_MSFILTER answers for one (group, interface) the socket joined, with its filter
 * mode and sources, and EADDRNOTAVAIL for one it did not. The candidates are the groups
 * joined on each interface of the namespace (/proc/PID/net/igmp, igmp6): every
 * membership of a socket is among them, so asking about each finds them all. Restore
 * joins each again (MCAST_JOIN_GROUP) and sets its filter (MCAST_MSFILTER) unless it is
 * the plain "any source" one a join gives.
 */
import { readJoinedGroups, type JoinedGroup } from '../../../proc/index.js';
import { readMulticastIf as readMulticastIfBpf, type MulticastIfLayout } from '../../../sys/bpf-iter.js';
import { IPPROTO } from '../../../sys/inet.js';
import { getGroupFilter, joinGroup, MCAST_MODE, setGroupFilter, type GroupRef } from '../../../sys/mcast.js';
import type { FdFacts } from '../facts.js';
import type { DumpObjects } from '../objects.js';
import type { McastMembership } from '../schema.js';
import type { KindDumpContext, KindRestoreContext } from './kind.js';
import { checkInterfaces, withIfname } from './netdev.js';
import { btfOffset, sockIterLayout } from './sockfields.js';

const cache = new WeakMap<DumpObjects, Map<string, JoinedGroup[]>>();

function joined(dc: KindDumpContext, pid: number, family: 'v4' | 'v6'): JoinedGroup[] {
  let m = cache.get(dc.objects);
  if (!m) cache.set(dc.objects, (m = new Map()));
  const key = `${pid}:${family}`;
  let list = m.get(key);
  if (!list) m.set(key, (list = readJoinedGroups(pid, family)));
  return list;
}

/** Every group socket `fd` (a copy of `f`) joined: IPv4 groups on any socket, IPv6 ones on an IPv6 socket. */
export function readMemberships(dc: KindDumpContext, args: { f: FdFacts; fd: number; family: 2 | 10 }): McastMembership[] {
  const out: McastMembership[] = [];
  const ask = (family: 2 | 10, groups: JoinedGroup[]) => {
    for (const g of groups) {
      const ref: GroupRef = { level: family === 2 ? IPPROTO.IP : IPPROTO.IPV6, ifindex: g.ifindex, family, group: g.group };
      const filter = getGroupFilter(args.fd, ref);
      if (filter) out.push({ family, ifindex: g.ifindex, ...withIfname(g.ifindex), group: g.group, mode: filter.mode as 0 | 1, sources: filter.sources });
    }
  };
  ask(2, joined(dc, args.f.pid, 'v4'));
  if (args.family === 10) ask(10, joined(dc, args.f.pid, 'v6'));
  // /proc lists the newest group first: a stable order, so a restored socket reads back the same.
  const key = (m: McastMembership) => `${m.family}:${String(m.ifindex).padStart(10, '0')}:${m.group}`;
  return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/** Joins fd `e.fd`'s saved groups on local socket `fd`, once each interface is checked to be the same device. */
export function joinMemberships(rc: KindRestoreContext, args: { fd: number; e: { fd: number; groups?: readonly McastMembership[] } }): void {
  const list = args.e.groups ?? [];
  const { fd } = args;
  checkInterfaces(rc.ctx, { fd: args.e.fd, list });
  for (const m of list) {
    const g: GroupRef = { level: m.family === 2 ? IPPROTO.IP : IPPROTO.IPV6, ifindex: m.ifindex, family: m.family, group: m.group };
    try {
      joinGroup(fd, g);
      if (!(m.mode === MCAST_MODE.EXCLUDE && m.sources.length === 0)) setGroupFilter(fd, { g, filter: m });
    } catch (e) {
      throw new Error(`cannot join multicast group ${m.group} on interface ${m.ifindex}: ${(e as Error).message}`, { cause: e });
    }
  }
}

let layout: MulticastIfLayout | null | undefined;

/** Where IP_MULTICAST_IF lives in this kernel (BTF), or undefined without BTF. */
function multicastIfLayout(): MulticastIfLayout | undefined {
  if (layout !== undefined) return layout ?? undefined;
  layout = null;
  const walk = sockIterLayout();
  const mcIndex = btfOffset('inet_sock', 'mc_index');
  const mcAddr = btfOffset('inet_sock', 'mc_addr');
  if (!walk || mcIndex === undefined || mcAddr === undefined) return undefined;
  layout = { ...walk, mcIndex, mcAddr };
  return layout;
}

/**
 * IP_MULTICAST_IF of socket `fd` (ours) as a struct ip_mreqn in hex (group 0, the
 * address, the interface index), which setsockopt takes back as is: getsockopt gives only
 * the address, and a socket set by index (address 0) would read as one never set. The
 * index comes from a BPF iterator (sys/bpf-iter.ts); undefined when it cannot run, and
 * the caller reads the address alone.
 */
export function readMulticastIf(fd: number): string | undefined {
  const l = multicastIfLayout();
  const v = l && readMulticastIfBpf(fd, l);
  if (!v) return undefined;
  const out = Buffer.alloc(12);
  v.addr.copy(out, 4);
  out.writeInt32LE(v.ifindex, 8);
  return out.toString('hex');
}
