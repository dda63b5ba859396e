/**
 * Socket options, as a table: for each kind of socket ckpt saves (unix socketpairs,
 * TCP, UDP), every option the kernel lets us read back. At dump each one is read on a
 * grabbed copy and on a fresh socket of the same kind, and saved when they differ (or
 * always, for the few whose default cannot be told apart). At restore they are set in
 * the table's order, in two phases: `bind` before bind() (the kernel checks them
 * there: IP_FREEBIND, IP_TRANSPARENT, SO_REUSEADDR, SO_BINDTODEVICE…), `state` once
 * the socket is bound (and, for TCP, connected or listening). An option whose value
 * cannot be set back is refused by name. docs/saved-state.md lists the table.
 */
import { readMulticastIf } from './mcast.js';
import { closeFd, F, fcntl, getsockoptInt, isErrno, shutdownSocket, SO, SOL_SOCKET } from '../../../sys/index.js';
import {
  attachSocketFilter, getSocketFilter, getsockoptBuf, inetSocket, IPPROTO, POLL, pollNow, setsockoptBuf,
} from '../../../sys/inet.js';
import { setsockoptInt } from '../../../sys/ioctl.js';
import type { FdFacts } from '../facts.js';
import { O } from '../flags.js';
import type { SockOpt } from '../schema.js';
import { dumpError } from './kind.js';
import { reuseportProgAttached } from './sockfields.js';

/** What a socket is, for choosing its rows: the protocol, the family, and whether it is a live connection. */
export interface SockKind {
  proto: SockProto;
  family?: 2 | 10;
  /** An established TCP connection: options the kernel tunes by itself are not the program's. */
  established?: boolean;
}

/**
 * ping, UDP-Lite and raw IP sockets take the rows of UDP (IP and IPv6 options, multicast) and
 * their own; netlink and packet sockets the SOL_SOCKET ones and their own.
 */
export type SockProto = 'unix' | 'tcp' | 'udp' | 'udplite' | 'ping' | 'raw' | 'netlink' | 'packet';
const LIKE_UDP: ReadonlySet<SockProto> = new Set(['udplite', 'ping', 'raw']);

export interface OptRow {
  /** The option's name, for messages and docs. */
  name: string;
  level: number;
  opt: number;
  /** Socket protocols it applies to; `v4`/`v6` narrow an inet row to a family. */
  on: readonly SockProto[];
  family?: 'v4' | 'v6';
  /** int: a 32-bit value; raw: up to `size` bytes as getsockopt returns them; mreqn: IP_MULTICAST_IF with its index (mcast.ts). */
  codec: 'int' | 'raw' | 'filter' | 'mreqn';
  size?: number;
  phase: 'bind' | 'state';
  /** Saved whatever its value: SO_BUF_LOCK, which setting a buffer size changes as a side effect. */
  always?: boolean;
  /** On an established TCP connection the kernel sets it (window clamp, MSS…): derived, not saved. */
  tunedWhenEstablished?: boolean;
  /** The value cannot be set back: a socket with any other value than a fresh one's is refused. */
  refuse?: string;
}

/** Which buffer sizes the program fixed (SOCK_SNDBUF_LOCK 1, SOCK_RCVBUF_LOCK 2); setting a size sets its bit. */
export const SO_BUF_LOCK = 72;
const TCP = IPPROTO.TCP;
const IP = IPPROTO.IP;
const V6 = IPPROTO.IPV6;
const SOL_NETLINK = 270;
const SOL_PACKET = 263;
const ALL = ['unix', 'tcp', 'udp', 'netlink', 'packet'] as const;
const INET = ['tcp', 'udp'] as const;
const row = (name: string, [level, opt]: [number, number], rest: Omit<OptRow, 'name' | 'level' | 'opt'>): OptRow => ({ name, level, opt, ...rest });

/**
 * Every option, in restore order. Order matters: SO_RCVLOWAT may grow a TCP socket's
 * receive buffer, so it goes before SO_RCVBUF; setting a buffer size locks it, so
 * SO_BUF_LOCK comes after both; SO_LOCK_FILTER after the filter.
 */
export const OPT_TABLE: readonly OptRow[] = [
  // Checked by bind() or by the port lookup: before bind.
  row('SO_REUSEADDR', [SOL_SOCKET, 2], { on: INET, codec: 'int', phase: 'bind' }),
  row('SO_REUSEPORT', [SOL_SOCKET, 15], { on: INET, codec: 'int', phase: 'bind' }),
  row('SO_BINDTODEVICE', [SOL_SOCKET, 25], { on: ALL, codec: 'raw', size: 16, phase: 'bind' }),
  row('IP_FREEBIND', [IP, 15], { on: INET, codec: 'int', phase: 'bind' }),
  row('IP_TRANSPARENT', [IP, 19], { on: INET, codec: 'int', phase: 'bind' }),
  row('IP_BIND_ADDRESS_NO_PORT', [IP, 24], { on: INET, codec: 'int', phase: 'bind' }),
  row('IP_LOCAL_PORT_RANGE', [IP, 51], { on: INET, codec: 'int', phase: 'bind' }),
  // On a connection the repair bind() sets it (to 1 for a native IPv6 address, and a v4-mapped one needs 0),
  // and it cannot be set on a bound socket: derived there. It matters to binding and listening only.
  row('IPV6_V6ONLY', [V6, 26], { on: INET, family: 'v6', codec: 'int', phase: 'bind', tunedWhenEstablished: true }),
  row('IPV6_FREEBIND', [V6, 78], { on: INET, family: 'v6', codec: 'int', phase: 'bind' }),
  row('IPV6_TRANSPARENT', [V6, 75], { on: INET, family: 'v6', codec: 'int', phase: 'bind' }),
  // SOL_SOCKET
  row('SO_DEBUG', [SOL_SOCKET, 1], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_DONTROUTE', [SOL_SOCKET, 5], { on: INET, codec: 'int', phase: 'state' }),
  row('SO_BROADCAST', [SOL_SOCKET, 6], { on: ['udp'], codec: 'int', phase: 'state' }),
  row('SO_KEEPALIVE', [SOL_SOCKET, 9], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_OOBINLINE', [SOL_SOCKET, 10], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_NO_CHECK', [SOL_SOCKET, 11], { on: ['udp'], codec: 'int', phase: 'state' }),
  row('SO_PRIORITY', [SOL_SOCKET, 12], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_LINGER', [SOL_SOCKET, 13], { on: ALL, codec: 'raw', size: 8, phase: 'state' }),
  row('SO_PASSCRED', [SOL_SOCKET, 16], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_RCVLOWAT', [SOL_SOCKET, 18], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_SNDBUF', [SOL_SOCKET, SO.SNDBUF], { on: [...INET, 'netlink', 'packet'], codec: 'int', phase: 'state', tunedWhenEstablished: true }),
  row('SO_RCVBUF', [SOL_SOCKET, SO.RCVBUF], { on: [...INET, 'netlink', 'packet'], codec: 'int', phase: 'state', tunedWhenEstablished: true }),
  row('SO_BUF_LOCK', [SOL_SOCKET, SO_BUF_LOCK], { on: ALL, codec: 'int', phase: 'state', always: true }),
  row('SO_RCVTIMEO', [SOL_SOCKET, 20], { on: ALL, codec: 'raw', size: 16, phase: 'state' }),
  row('SO_SNDTIMEO', [SOL_SOCKET, 21], { on: ALL, codec: 'raw', size: 16, phase: 'state' }),
  row('SO_TIMESTAMPING', [SOL_SOCKET, 37], { on: ALL, codec: 'raw', size: 8, phase: 'state' }),
  row('SO_TIMESTAMP', [SOL_SOCKET, 29], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_TIMESTAMP_NEW', [SOL_SOCKET, 63], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_TIMESTAMPNS', [SOL_SOCKET, 35], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_TIMESTAMPNS_NEW', [SOL_SOCKET, 64], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_PASSSEC', [SOL_SOCKET, 34], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_MARK', [SOL_SOCKET, 36], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_RXQ_OVFL', [SOL_SOCKET, 40], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_WIFI_STATUS', [SOL_SOCKET, 41], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_NOFCS', [SOL_SOCKET, 43], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_SELECT_ERR_QUEUE', [SOL_SOCKET, 45], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_BUSY_POLL', [SOL_SOCKET, 46], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_MAX_PACING_RATE', [SOL_SOCKET, 47], { on: ALL, codec: 'raw', size: 8, phase: 'state' }),
  row('SO_ZEROCOPY', [SOL_SOCKET, 60], { on: INET, codec: 'int', phase: 'state' }),
  row('SO_TXTIME', [SOL_SOCKET, 61], { on: ALL, codec: 'raw', size: 8, phase: 'state' }),
  row('SO_PREFER_BUSY_POLL', [SOL_SOCKET, 69], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_BUSY_POLL_BUDGET', [SOL_SOCKET, 70], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_RESERVE_MEM', [SOL_SOCKET, 73], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_RCVMARK', [SOL_SOCKET, 75], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_PASSPIDFD', [SOL_SOCKET, 76], { on: ['unix'], codec: 'int', phase: 'state' }),
  row('SO_RCVPRIORITY', [SOL_SOCKET, 82], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_PASSRIGHTS', [SOL_SOCKET, 83], { on: ['unix'], codec: 'int', phase: 'state' }),
  row('SO_PEEK_OFF', [SOL_SOCKET, 42], { on: ALL, codec: 'int', phase: 'state' }),
  row('SO_TXREHASH', [SOL_SOCKET, 74], { on: INET, codec: 'int', phase: 'state' }),
  // The program may set it on a listener (a SO_REUSEPORT group then prefers the listener of the receiving CPU);
  // the kernel sets it on every packet a connection or UDP socket receives.
  row('SO_INCOMING_CPU', [SOL_SOCKET, 49], { on: INET, codec: 'int', phase: 'state', tunedWhenEstablished: true }),
  // IPv4 (also on IPv6 sockets, for v4-mapped traffic)
  row('IP_TOS', [IP, 1], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_TTL', [IP, 2], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_OPTIONS', [IP, 4], { on: INET, family: 'v4', codec: 'raw', size: 40, phase: 'state' }),
  row('IP_RECVOPTS', [IP, 6], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_RETOPTS', [IP, 7], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_PKTINFO', [IP, 8], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_MTU_DISCOVER', [IP, 10], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_RECVERR', [IP, 11], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_RECVTTL', [IP, 12], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_RECVTOS', [IP, 13], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_PASSSEC', [IP, 18], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_MINTTL', [IP, 21], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_CHECKSUM', [IP, 23], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_RECVFRAGSIZE', [IP, 25], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_RECVORIGDSTADDR', [IP, 20], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_RECVERR_RFC4884', [IP, 26], { on: INET, codec: 'int', phase: 'state' }),
  row('IP_MULTICAST_IF', [IP, 32], { on: ['udp'], codec: 'mreqn', size: 4, phase: 'state' }),
  row('IP_MULTICAST_TTL', [IP, 33], { on: ['udp'], codec: 'int', phase: 'state' }),
  row('IP_MULTICAST_LOOP', [IP, 34], { on: ['udp'], codec: 'int', phase: 'state' }),
  row('IP_MULTICAST_ALL', [IP, 49], { on: ['udp'], codec: 'int', phase: 'state' }),
  row('IP_UNICAST_IF', [IP, 50], { on: INET, codec: 'int', phase: 'state' }),
  // IPv6
  // The RFC 2292 receive options keep bits of their own beside the RFC 3542 ones.
  row('IPV6_2292PKTINFO', [V6, 2], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_2292HOPOPTS', [V6, 3], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_2292DSTOPTS', [V6, 4], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_2292RTHDR', [V6, 5], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_2292HOPLIMIT', [V6, 8], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_FLOWINFO', [V6, 11], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_FLOWINFO_SEND', [V6, 33], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_ADDR_PREFERENCES', [V6, 72], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  // Sticky extension headers sent with every packet (getsockopt gives the header as set; up to 2048 bytes).
  row('IPV6_HOPOPTS', [V6, 54], { on: INET, family: 'v6', codec: 'raw', size: 2048, phase: 'state' }),
  row('IPV6_RTHDRDSTOPTS', [V6, 55], { on: INET, family: 'v6', codec: 'raw', size: 2048, phase: 'state' }),
  row('IPV6_RTHDR', [V6, 57], { on: INET, family: 'v6', codec: 'raw', size: 2048, phase: 'state' }),
  row('IPV6_DSTOPTS', [V6, 59], { on: INET, family: 'v6', codec: 'raw', size: 2048, phase: 'state' }),
  row('IPV6_UNICAST_HOPS', [V6, 16], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_MULTICAST_IF', [V6, 17], { on: ['udp'], family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_MULTICAST_HOPS', [V6, 18], { on: ['udp'], family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_MULTICAST_LOOP', [V6, 19], { on: ['udp'], family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_MTU_DISCOVER', [V6, 23], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_RECVERR', [V6, 25], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_MULTICAST_ALL', [V6, 29], { on: ['udp'], family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_RECVERR_RFC4884', [V6, 31], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_RECVPKTINFO', [V6, 49], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_RECVHOPLIMIT', [V6, 51], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_RECVHOPOPTS', [V6, 53], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_RECVRTHDR', [V6, 56], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_RECVDSTOPTS', [V6, 58], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_RECVPATHMTU', [V6, 60], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_DONTFRAG', [V6, 62], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_RECVTCLASS', [V6, 66], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_TCLASS', [V6, 67], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_AUTOFLOWLABEL', [V6, 70], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_MINHOPCOUNT', [V6, 73], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_RECVORIGDSTADDR', [V6, 74], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_UNICAST_IF', [V6, 76], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_RECVFRAGSIZE', [V6, 77], { on: INET, family: 'v6', codec: 'int', phase: 'state' }),
  // TCP
  row('TCP_NODELAY', [TCP, 1], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_MAXSEG', [TCP, 2], { on: ['tcp'], codec: 'int', phase: 'state', tunedWhenEstablished: true }),
  row('TCP_CORK', [TCP, 3], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_KEEPIDLE', [TCP, 4], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_KEEPINTVL', [TCP, 5], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_KEEPCNT', [TCP, 6], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_SYNCNT', [TCP, 7], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_LINGER2', [TCP, 8], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_DEFER_ACCEPT', [TCP, 9], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_WINDOW_CLAMP', [TCP, 10], { on: ['tcp'], codec: 'int', phase: 'state', tunedWhenEstablished: true }),
  row('TCP_QUICKACK', [TCP, 12], { on: ['tcp'], codec: 'int', phase: 'state', tunedWhenEstablished: true }),
  row('TCP_CONGESTION', [TCP, 13], { on: ['tcp'], codec: 'raw', size: 16, phase: 'state' }),
  row('TCP_THIN_LINEAR_TIMEOUTS', [TCP, 16], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_USER_TIMEOUT', [TCP, 18], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_FASTOPEN', [TCP, 23], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_NOTSENT_LOWAT', [TCP, 25], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_SAVE_SYN', [TCP, 27], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_FASTOPEN_CONNECT', [TCP, 30], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_ULP', [TCP, 31], { on: ['tcp'], codec: 'raw', size: 16, phase: 'state', refuse: 'an upper-layer protocol (kTLS, …) keeps state ckpt cannot read' }),
  row('TCP_FASTOPEN_KEY', [TCP, 33], { on: ['tcp'], codec: 'raw', size: 32, phase: 'state' }),
  row('TCP_FASTOPEN_NO_COOKIE', [TCP, 34], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_INQ', [TCP, 36], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_TX_DELAY', [TCP, 37], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_RTO_MAX_MS', [TCP, 44], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_RTO_MIN_US', [TCP, 45], { on: ['tcp'], codec: 'int', phase: 'state' }),
  row('TCP_DELACK_MAX_US', [TCP, 46], { on: ['tcp'], codec: 'int', phase: 'state' }),
  // SOL_UDP (UDP-Lite answers them too). UDP_CORK with datagram data appended is refused by the UDP kinds.
  row('UDP_CORK', [IPPROTO.UDP, 1], { on: ['udp'], codec: 'int', phase: 'state' }),
  row('UDP_ENCAP', [IPPROTO.UDP, 100], { on: ['udp'], codec: 'int', phase: 'state' }),
  row('UDP_NO_CHECK6_TX', [IPPROTO.UDP, 101], { on: ['udp'], family: 'v6', codec: 'int', phase: 'state' }),
  row('UDP_NO_CHECK6_RX', [IPPROTO.UDP, 102], { on: ['udp'], family: 'v6', codec: 'int', phase: 'state' }),
  row('UDP_SEGMENT', [IPPROTO.UDP, 103], { on: ['udp'], codec: 'int', phase: 'state' }),
  row('UDP_GRO', [IPPROTO.UDP, 104], { on: ['udp'], codec: 'int', phase: 'state' }),
  // UDP-Lite checksum coverage (SOL_UDPLITE)
  row('UDPLITE_SEND_CSCOV', [136, 10], { on: ['udplite'], codec: 'int', phase: 'state' }),
  row('UDPLITE_RECV_CSCOV', [136, 11], { on: ['udplite'], codec: 'int', phase: 'state' }),
  // Raw IP sockets (the ICMP filters only answer on sockets of that protocol)
  row('IP_HDRINCL', [IP, 3], { on: ['raw'], family: 'v4', codec: 'int', phase: 'state' }),
  row('IP_NODEFRAG', [IP, 22], { on: ['raw'], family: 'v4', codec: 'int', phase: 'state' }),
  row('ICMP_FILTER', [255, 1], { on: ['raw'], family: 'v4', codec: 'raw', size: 4, phase: 'state' }),
  row('IPV6_CHECKSUM', [V6, 7], { on: ['raw'], family: 'v6', codec: 'int', phase: 'state' }),
  row('IPV6_HDRINCL', [V6, 36], { on: ['raw'], family: 'v6', codec: 'int', phase: 'state' }),
  row('ICMPV6_FILTER', [58, 1], { on: ['raw'], family: 'v6', codec: 'raw', size: 32, phase: 'state' }),
  // Netlink (SOL_NETLINK); group memberships are saved with the address, not here.
  row('NETLINK_PKTINFO', [SOL_NETLINK, 3], { on: ['netlink'], codec: 'int', phase: 'state' }),
  row('NETLINK_BROADCAST_ERROR', [SOL_NETLINK, 4], { on: ['netlink'], codec: 'int', phase: 'state' }),
  row('NETLINK_NO_ENOBUFS', [SOL_NETLINK, 5], { on: ['netlink'], codec: 'int', phase: 'state' }),
  row('NETLINK_LISTEN_ALL_NSID', [SOL_NETLINK, 8], { on: ['netlink'], codec: 'int', phase: 'state' }),
  row('NETLINK_CAP_ACK', [SOL_NETLINK, 10], { on: ['netlink'], codec: 'int', phase: 'state' }),
  row('NETLINK_EXT_ACK', [SOL_NETLINK, 11], { on: ['netlink'], codec: 'int', phase: 'state' }),
  row('NETLINK_GET_STRICT_CHK', [SOL_NETLINK, 12], { on: ['netlink'], codec: 'int', phase: 'state' }),
  // Packet sockets (SOL_PACKET). PACKET_STATISTICS is never read: reading it resets the counters.
  row('PACKET_VERSION', [SOL_PACKET, 10], { on: ['packet'], codec: 'int', phase: 'bind' }),
  row('PACKET_RESERVE', [SOL_PACKET, 12], { on: ['packet'], codec: 'int', phase: 'bind' }),
  row('PACKET_AUXDATA', [SOL_PACKET, 8], { on: ['packet'], codec: 'int', phase: 'state' }),
  row('PACKET_ORIGDEV', [SOL_PACKET, 9], { on: ['packet'], codec: 'int', phase: 'state' }),
  row('PACKET_LOSS', [SOL_PACKET, 14], { on: ['packet'], codec: 'int', phase: 'state' }),
  row('PACKET_VNET_HDR', [SOL_PACKET, 15], { on: ['packet'], codec: 'int', phase: 'state' }),
  row('PACKET_TIMESTAMP', [SOL_PACKET, 17], { on: ['packet'], codec: 'int', phase: 'state' }),
  row('PACKET_TX_HAS_OFF', [SOL_PACKET, 19], { on: ['packet'], codec: 'int', phase: 'state' }),
  row('PACKET_QDISC_BYPASS', [SOL_PACKET, 20], { on: ['packet'], codec: 'int', phase: 'state' }),
  row('PACKET_IGNORE_OUTGOING', [SOL_PACKET, 23], { on: ['packet'], codec: 'int', phase: 'state' }),
  row('PACKET_VNET_HDR_SZ', [SOL_PACKET, 24], { on: ['packet'], codec: 'int', phase: 'state' }),
  row('PACKET_FANOUT', [SOL_PACKET, 18], { on: ['packet'], codec: 'int', phase: 'state', refuse: 'a fanout group is shared with other sockets ckpt does not rebuild' }),
  // Last: a locked filter cannot be replaced.
  row('SO_ATTACH_FILTER', [SOL_SOCKET, 26], { on: ALL, codec: 'filter', phase: 'state' }),
  row('SO_LOCK_FILTER', [SOL_SOCKET, 44], { on: ALL, codec: 'int', phase: 'state' }),
];

const byKey = new Map(OPT_TABLE.map((r) => [`${r.level}:${r.opt}`, r]));

/** The row of a saved option, or undefined for one this version does not know. */
export function optRow(o: Pick<SockOpt, 'level' | 'name'>): OptRow | undefined {
  return byKey.get(`${o.level}:${o.name}`);
}

export function rowsFor(k: SockKind): OptRow[] {
  return OPT_TABLE.filter((r) =>
    (r.on.includes(k.proto) || (LIKE_UDP.has(k.proto) && r.on.includes('udp'))) &&
    !(r.family === 'v4' && k.family !== 2) && !(r.family === 'v6' && k.family !== 10) &&
    !(k.established && r.tunedWhenEstablished));
}

/** IP_MULTICAST_IF where the BPF iterator cannot run: getsockopt gives only the address. */
const INDEX_UNREADABLE = 'index-unreadable';

/** A value as getsockopt gives it: a number for int rows, the bytes (hex) for the others; undefined when not readable. */
function readRow(fd: number, r: OptRow): number | string | undefined {
  try {
    if (r.codec === 'int') return getsockoptInt(fd, r.level, r.opt);
    if (r.codec === 'filter') return getSocketFilter(fd).toString('hex');
    if (r.codec === 'mreqn') return readMulticastIf(fd) ?? INDEX_UNREADABLE;
    return getsockoptBuf(fd, { level: r.level, name: r.opt, size: r.size ?? 4 }).toString('hex');
  } catch (e) {
    // An eBPF program has no classic form to read back.
    if (r.codec === 'filter' && (e as { errnoName?: string }).errnoName === 'EACCES') return 'ebpf';
    return undefined; // not supported by this socket or kernel
  }
}

/**
 * The options of fd `f` (read on `k.fd`, a copy of it) that differ from a fresh
 * socket's (`k.fresh()` makes one of the same kind), in table order. A value ckpt
 * cannot set back fails the dump, naming the option.
 */
export function readSockOpts(f: FdFacts, k: SockKind & { fd: number; fresh: () => number }): SockOpt[] {
  const { fd } = k;
  const refuse = (why: string) => dumpError(f, { code: 'UNSUPPORTED', reason: `${why} (${f.link})` });
  const rows = rowsFor(k);
  const ref = k.fresh();
  const out: SockOpt[] = [];
  try {
    for (const r of rows) {
      const mine = readRow(fd, r);
      if (mine === undefined) continue;
      if (mine === INDEX_UNREADABLE) {
        throw refuse('its IP_MULTICAST_IF may have been set by interface index alone, which only a BPF iterator can read (getsockopt gives the address only), and it cannot run here (the kernel\'s BTF, CAP_BPF and CAP_PERFMON are needed)');
      }
      const dflt = readRow(ref, r);
      if (mine === dflt && !r.always) continue;
      if (mine === 'ebpf') throw refuse('an eBPF socket filter (SO_ATTACH_BPF) is attached; only classic BPF filters (SO_ATTACH_FILTER) can be saved');
      if (r.refuse) throw refuse(`${r.name} is set (${r.refuse})`);
      out.push(typeof mine === 'number' ? { level: r.level, name: r.opt, value: mine } : { level: r.level, name: r.opt, raw: mine });
    }
  } finally {
    closeFd(ref);
  }
  if (out.some((o) => o.level === SOL_SOCKET && o.name === SO_REUSEPORT && o.value)) checkReuseportProg(fd, refuse);
  return out;
}

const SO_REUSEPORT = 15;

/**
 * A SO_REUSEPORT group may have a BPF program that picks the socket for each packet or
 * connection (SO_ATTACH_REUSEPORT_CBPF/EBPF). No getsockopt reads it back (they are
 * set-only); the group's `prog` is read with the BPF iterator. Saving it is not built:
 * a group with one is refused, and so is any SO_REUSEPORT socket when the iterator
 * cannot run (no BTF, CAP_BPF, CAP_PERFMON), since it would be lost without a trace.
 */
function checkReuseportProg(fd: number, refuse: (why: string) => Error): void {
  const attached = reuseportProgAttached(fd);
  if (attached === false) return;
  throw refuse(attached
    ? 'its SO_REUSEPORT group has a BPF program choosing the socket (SO_ATTACH_REUSEPORT_CBPF/EBPF), which ckpt cannot read back'
    : 'it is in a SO_REUSEPORT group, whose BPF program (SO_ATTACH_REUSEPORT_CBPF/EBPF) can only be seen with a BPF iterator, which cannot run here (the kernel\'s BTF, CAP_BPF and CAP_PERFMON are needed)');
}

/** A fresh inet socket of the given kind (the reference for defaults). */
export function freshInet(family: number, type: number, protocol: number): () => number {
  return () => inetSocket(family, type, protocol);
}

/** Sets a buffer size as saved (getsockopt reports twice what setsockopt was given); FORCE needs CAP_NET_ADMIN. */
export function setBufSize(fd: number, args: { name: number; value: number }): void {
  const force = args.name === SO.SNDBUF ? SO.SNDBUFFORCE : SO.RCVBUFFORCE;
  try {
    setsockoptInt(fd, { level: SOL_SOCKET, name: force, value: args.value >> 1 });
  } catch {
    setsockoptInt(fd, { level: SOL_SOCKET, name: args.name, value: args.value >> 1 });
  }
}

const SO_LINGER = 13;
const SO_TXREHASH = 74;

function setRow(fd: number, r: OptRow, o: SockOpt): void {
  if (r.codec === 'filter') {
    if (o.raw) attachSocketFilter(fd, Buffer.from(o.raw, 'hex'));
    return;
  }
  if (o.value !== undefined) {
    if (r.level === SOL_SOCKET && (r.opt === SO.SNDBUF || r.opt === SO.RCVBUF)) setBufSize(fd, { name: r.opt, value: o.value });
    else setsockoptInt(fd, { level: r.level, name: r.opt, value: r.opt === SO_TXREHASH && o.value === 255 ? -1 : o.value });
    return;
  }
  const value = Buffer.from(o.raw ?? '', 'hex');
  if (r.level === SOL_SOCKET && r.opt === SO_LINGER && value.length === 8 && value.readInt32LE(0) === 0 && value.readInt32LE(4) !== 0) {
    // Off with a time kept from before: setting it off leaves the time alone, so set it on first.
    const on = Buffer.from(value);
    on.writeInt32LE(1, 0);
    setsockoptBuf(fd, { level: r.level, name: r.opt, value: on });
  }
  setsockoptBuf(fd, { level: r.level, name: r.opt, value });
}

/**
 * Sets the saved options of one phase on `fd`, in table order. Throws an Error naming
 * the option when one is unknown to this version or the kernel refuses it.
 */
export function applySockOpts(fd: number, args: { opts: readonly SockOpt[]; phase: OptRow['phase'] }): void {
  const saved = new Map(args.opts.map((o) => [`${o.level}:${o.name}`, o]));
  for (const o of args.opts) if (!optRow(o)) throw new Error(`the image names socket option ${o.level}:${o.name}, which this version does not know`);
  for (const r of OPT_TABLE) {
    if (r.phase !== args.phase) continue;
    const o = saved.get(`${r.level}:${r.opt}`);
    if (!o) continue;
    try {
      setRow(fd, r, o);
    } catch (e) {
      throw new Error(`cannot set ${r.name}: ${(e as Error).message}`, { cause: e });
    }
  }
}

/** The name of a saved option, for messages. */
export function optName(o: Pick<SockOpt, 'level' | 'name'>): string {
  return optRow(o)?.name ?? `${o.level}:${o.name}`;
}

/** Sets O_NONBLOCK on a new socket as the saved fdinfo flags have it (the one status flag a socket keeps). */
export function setNonblock(fd: number, flags: number): void {
  const fl = fcntl(fd, F.GETFL);
  fcntl(fd, F.SETFL, (flags & O.NONBLOCK) ? fl | O.NONBLOCK : fl & ~O.NONBLOCK);
}

/** Puts back sk_shutdown bits (RCV 1, SEND 2) with shutdown(how = bits - 1); an unconnected socket answers ENOTCONN but keeps them. */
export function restoreShutdown(fd: number, bits: number): void {
  if (bits < 1 || bits > 3) return;
  try {
    shutdownSocket(fd, bits - 1);
  } catch (e) {
    if (!isErrno(e, 'ENOTCONN')) throw e;
  }
}

/**
 * A pending error (SO_ERROR) or queued errors (MSG_ERRQUEUE) show as POLLERR; reading
 * them would consume them, and nothing can put them back: the reason to refuse, if any.
 */
export function pendingError(fd: number): string | undefined {
  if (!(pollNow(fd, 0) & POLL.ERR)) return undefined;
  return 'the socket has a pending error or queued errors (SO_ERROR, MSG_ERRQUEUE), which cannot be read without consuming them nor set back';
}
