/** The saved shape of IP, packet and netlink sockets (fd entries of schema.ts). */
import { z } from 'zod';
import { payload, sockOpt, streamBase, zShutdown } from './schema-base.js';

/** An IPv4/IPv6 socket address: the raw address in hex (8 or 32 digits) and the port. */
export const inetAddr = z
  .object({
    family: z.union([z.literal(2), z.literal(10)]),
    addr: z.string().regex(/^([0-9a-f]{8}|[0-9a-f]{32})$/),
    port: z.number().int().min(0).max(65535),
    flowinfo: z.number().int().min(0).max(0xffffffff).optional(),
    scope: z.number().int().min(0).max(0xffffffff).optional(),
  })
  .refine((a) => a.addr.length === (a.family === 2 ? 8 : 32), 'address length does not match the family');
/**
 * A multicast group a socket joined on an interface (kinds/mcast.ts): the group address
 * (network order, hex), filter mode (MCAST_INCLUDE 1, MCAST_EXCLUDE 0) and sources.
 */
/** An interface's name at dump (checked at restore: the index must still mean that device). */
const zIfname = z.string().min(1).max(15).regex(/^[^/\0\s]+$/).optional();
export const mcastMembership = z.object({
  family: z.union([z.literal(2), z.literal(10)]),
  ifindex: z.number().int().min(0).max(0x7fffffff),
  ifname: zIfname,
  group: z.string().regex(/^([0-9a-f]{8}|[0-9a-f]{32})$/),
  mode: z.union([z.literal(0), z.literal(1)]),
  sources: z.array(z.string().regex(/^([0-9a-f]{8}|[0-9a-f]{32})$/)).max(1 << 12),
}).refine((m) => m.group.length === (m.family === 2 ? 8 : 32) && m.sources.every((s) => s.length === m.group.length), 'address length does not match the family');
/** A half-closed connection's TCP state (kinds/tcp-fin.ts); absent: ESTABLISHED. */
export const halfClosedState = z.enum(['fin-wait1', 'fin-wait2', 'closing', 'close-wait', 'last-ack']);
/** The TCP_REPAIR state of an established connection: sequence numbers, queued data, options, window. */
export const tcpRepairState = z.object({
  sendSeq: z.number().int().min(0).max(0xffffffff),
  recvSeq: z.number().int().min(0).max(0xffffffff),
  /** Sent but not acknowledged, then not yet sent: the whole send queue. */
  sendQueue: payload,
  /** Bytes of the send queue not yet sent (the rest was sent and awaits acknowledgement). */
  unsent: z.number().int().min(0),
  recvQueue: payload,
  mss: z.number().int().min(0).max(0xffff),
  sndWscale: z.number().int().min(0).max(14).optional(),
  rcvWscale: z.number().int().min(0).max(14).optional(),
  sack: z.boolean(),
  timestamps: z.boolean(),
  /** TCP_REPAIR_WINDOW: snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup (u32 each), as saved. */
  window: z.array(z.number().int().min(0).max(0xffffffff)).length(5).optional(),
  /** TCP_TIMESTAMP at dump (the restored socket's clock is shifted to go on from it). */
  timestamp: z.number().int().min(0).max(0xffffffff).optional(),
  /**
   * Half-closed: which FINs the connection holds. `sendSeq` and `recvSeq` count them (as the kernel's
   * write_seq and rcv_nxt do); the queues and `unsent` hold bytes only.
   */
  state: halfClosedState.optional(),
});
/** A TCP or UDP socket (IPv4/IPv6): listener, bound/unbound, connected UDP, or established TCP (`tcp`). */
export const inetEntry = z.object({
  kind: z.literal('inet'),
  ...streamBase,
  family: z.union([z.literal(2), z.literal(10)]),
  protocol: z.union([z.literal(6), z.literal(17)]),
  /** `closed`: a TCP connection that is over (or one --tcp-close gives up): restored unbound, shut down both ways. */
  /** `connecting`: TCP SYN_SENT, restored by connecting again from the same address. */
  state: z.enum(['bound', 'listen', 'connected', 'established', 'closed', 'connecting']),
  /** Absent when unbound (bound to the wildcard address with port 0). */
  local: inetAddr.optional(),
  peer: inetAddr.optional(),
  backlog: z.number().int().min(0).max(0x7fffffff).optional(),
  opts: z.array(sockOpt).max(256),
  shutdown: zShutdown,
  tcp: tcpRepairState.optional(),
  /** Multicast groups a UDP socket joined (absent in older images and when none). */
  groups: z.array(mcastMembership).max(1 << 12).optional(),
});

/**
 * An IPv4/IPv6 socket other than TCP/UDP (kinds/ipsock.ts): ping (SOCK_DGRAM, ICMP),
 * UDP-Lite (SOCK_DGRAM, 136) or raw (SOCK_RAW, any protocol); bound and connected addresses, options.
 */
export const ipsockEntry = z.object({
  kind: z.literal('ipsock'),
  ...streamBase,
  family: z.union([z.literal(2), z.literal(10)]),
  type: z.union([z.literal(2), z.literal(3)]),
  protocol: z.number().int().min(0).max(255),
  local: inetAddr.optional(),
  peer: inetAddr.optional(),
  opts: z.array(sockOpt).max(256),
  groups: z.array(mcastMembership).max(1 << 12).optional(),
});

/**
 * A packet socket (kinds/packet.ts): type, the protocol it was created with and where it
 * is bound (protocol in network byte order, interface index, 0 = all), its memberships
 * (each added `count` times), copy threshold and options.
 */
export const packetEntry = z.object({
  kind: z.literal('packet'),
  ...streamBase,
  type: z.union([z.literal(2), z.literal(3)]),
  protocol: z.number().int().min(0).max(0xffff),
  bound: z.object({ protocol: z.number().int().min(0).max(0xffff), ifindex: z.number().int().min(0).max(0x7fffffff), ifname: zIfname }),
  memberships: z.array(z.object({
    ifindex: z.number().int().min(0).max(0x7fffffff),
    ifname: zIfname,
    type: z.number().int().min(0).max(0xffff),
    addr: z.string().regex(/^([0-9a-f]{2}){0,8}$/),
    count: z.number().int().min(1).max(1 << 16),
  })).max(1 << 12).optional(),
  copyThresh: z.number().int().min(0).max(0x7fffffff).optional(),
  opts: z.array(sockOpt).max(256),
});

/**
 * A netlink socket (kinds/netlink.ts): protocol, type, its port id (0: never bound), every
 * group it joined, the default destination connect() set, and options.
 */
export const netlinkEntry = z.object({
  kind: z.literal('netlink'),
  ...streamBase,
  protocol: z.number().int().min(0).max(31),
  type: z.union([z.literal(2), z.literal(3)]),
  portid: z.number().int().min(0).max(0xffffffff),
  groups: z.array(z.number().int().min(1).max(0xffffffff)).max(1 << 16),
  peer: z.object({ portid: z.number().int().min(0).max(0xffffffff), groups: z.number().int().min(0).max(0xffffffff) }).optional(),
  opts: z.array(sockOpt).max(256),
});
