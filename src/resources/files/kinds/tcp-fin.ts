/**
 * Half-closed TCP connections: the FINs a repaired socket must hold again. The kernel
 * has no repair call for a FIN, so (as CRIU's libsoccr does) each one is made to happen
 * while the socket is still in repair mode: ours by shutdown(SHUT_WR) with the send
 * queue selected (the FIN goes into the queue as sent and not yet acknowledged, and is
 * retransmitted in due course, like the queued bytes), the peer's by a segment forged
 * from the peer's address through a raw socket (its FIN, or the ACK of our FIN). The
 * socket takes them in as it would from the wire and moves to its saved state, which
 * is checked before repair mode ends. The forged segments carry FORGED_MARK, which the
 * network lock lets through; the socket's answers to them (ACKs) are held by the lock.
 *
 *   FIN_WAIT1  our FIN sent, not acknowledged      shutdown
 *   FIN_WAIT2  our FIN acknowledged                shutdown, forged ACK
 *   CLOSING    both FINs, ours not acknowledged    shutdown, forged FIN
 *   CLOSE_WAIT the peer's FIN received             forged FIN
 *   LAST_ACK   the peer's FIN, then ours           forged FIN, shutdown
 *
 * TIME_WAIT has no fd (the socket an fd holds is then CLOSE: inet.ts saves it as over).
 */
import { closeFd, SOL_SOCKET } from '../../../sys/index.js';
import { shutdownSocket } from '../../../sys/socket.js';
import {
  AF_INET, getsockoptBuf, inetSocket, IPPROTO, IPPROTO_RAW, SHUT, SO_MARK, SOCK_RAW, sendtoInet, TCP_OPT, TCP_REPAIR_Q, TCP_STATE,
  type InetAddr,
} from '../../../sys/inet.js';
import { setsockoptInt } from '../../../sys/ioctl.js';
import { sleepSync } from '../../../infect/wait.js';
import { FORGED_MARK } from '../../net/lock.js';
import { halfClosedState } from '../socket-schema.js';

const HALF_CLOSED = halfClosedState.options;
export type HalfClosed = (typeof HALF_CLOSED)[number];

const STATE_OF: Record<HalfClosed, number> = {
  'fin-wait1': TCP_STATE.FIN_WAIT1, 'fin-wait2': TCP_STATE.FIN_WAIT2, closing: TCP_STATE.CLOSING,
  'close-wait': TCP_STATE.CLOSE_WAIT, 'last-ack': TCP_STATE.LAST_ACK,
};

/** The half-closed state a TCP_INFO state number names, if it is one. */
export function halfClosed(state: number): HalfClosed | undefined {
  return HALF_CLOSED.find((s) => STATE_OF[s] === state);
}

/** Which FINs a state holds in its sequence space: ours (counted in write_seq), the peer's (in rcv_nxt). */
export function finsOf(state: HalfClosed | undefined): { ours: boolean; peers: boolean } {
  if (!state) return { ours: false, peers: false };
  return { ours: state !== 'close-wait', peers: state === 'closing' || state === 'close-wait' || state === 'last-ack' };
}

const TH = { FIN: 0x01, ACK: 0x10 } as const;

/** The Internet checksum (RFC 1071) over the concatenated buffers (each of even length but the last). */
function inetChecksum(parts: Buffer[]): number {
  let sum = 0;
  for (const b of parts) {
    for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
    if (b.length % 2) sum += b[b.length - 1]! << 8;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const V4_MAPPED = '00000000000000000000ffff';

/** An address as it is on the wire: a v4-mapped IPv6 address is IPv4. */
function onWire(a: InetAddr): InetAddr {
  return a.family !== AF_INET && a.addr.startsWith(V4_MAPPED) ? { family: AF_INET, addr: a.addr.slice(24), port: a.port } : a;
}

/** One TCP segment without options or payload, from `from` to `to`, in its IPv4 or IPv6 header. */
export function buildSegment(s: { from: InetAddr; to: InetAddr; seq: number; ack: number; flags: number; window: number }): Buffer {
  const from = onWire(s.from);
  const to = onWire(s.to);
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(from.port, 0);
  tcp.writeUInt16BE(to.port, 2);
  tcp.writeUInt32BE(s.seq >>> 0, 4);
  tcp.writeUInt32BE(s.ack >>> 0, 8);
  tcp.writeUInt8(5 << 4, 12); // data offset: 5 words, no options
  tcp.writeUInt8(s.flags, 13);
  tcp.writeUInt16BE(Math.min(s.window, 0xffff), 14);
  const src = Buffer.from(from.addr, 'hex');
  const dst = Buffer.from(to.addr, 'hex');
  const v4 = from.family === AF_INET;
  // The checksum covers a pseudo-header: the addresses, the protocol and the TCP length (RFC 793, RFC 8200).
  const pseudo = Buffer.alloc(v4 ? 4 : 8);
  pseudo.writeUInt32BE(v4 ? (IPPROTO.TCP << 16 | tcp.length) >>> 0 : tcp.length, 0);
  if (!v4) pseudo.writeUInt8(IPPROTO.TCP, 7);
  tcp.writeUInt16BE(inetChecksum([src, dst, pseudo, tcp]), 16);
  const ip = Buffer.alloc(v4 ? 20 : 40);
  if (v4) {
    ip.writeUInt8(0x45, 0);
    ip.writeUInt16BE(ip.length + tcp.length, 2);
    ip.writeUInt8(64, 8); // TTL
    ip.writeUInt8(IPPROTO.TCP, 9);
  } else {
    ip.writeUInt32BE(0x60000000, 0);
    ip.writeUInt16BE(tcp.length, 4);
    ip.writeUInt8(IPPROTO.TCP, 6);
    ip.writeUInt8(64, 7); // hop limit
  }
  src.copy(ip, v4 ? 12 : 8);
  dst.copy(ip, v4 ? 16 : 24);
  if (v4) ip.writeUInt16BE(inetChecksum([ip]), 10);
  return Buffer.concat([ip, tcp]);
}

/** Sends a segment forged from the peer to the restored socket (a raw socket needs CAP_NET_RAW). */
function sendForged(s: Parameters<typeof buildSegment>[0]): void {
  const packet = buildSegment(s);
  const to = onWire(s.to);
  const raw = inetSocket(to.family, SOCK_RAW, IPPROTO_RAW);
  try {
    setsockoptInt(raw, { level: SOL_SOCKET, name: SO_MARK, value: FORGED_MARK | 0 });
    sendtoInet(raw, { data: packet, to: { ...to, port: 0 } });
  } finally {
    closeFd(raw);
  }
}

/** Our FIN, queued as sent and not acknowledged (repair mode, send queue selected). */
function ourFin(fd: number): void {
  setsockoptInt(fd, { level: IPPROTO.TCP, name: TCP_OPT.REPAIR_QUEUE, value: TCP_REPAIR_Q.SEND });
  shutdownSocket(fd, SHUT.WR);
  setsockoptInt(fd, { level: IPPROTO.TCP, name: TCP_OPT.REPAIR_QUEUE, value: TCP_REPAIR_Q.NO });
}

const tcpState = (fd: number) => getsockoptBuf(fd, { level: IPPROTO.TCP, name: TCP_OPT.INFO, size: 8 }).readUInt8(0);

/**
 * Brings a repaired socket (connected, queues filled, window set, still in repair mode)
 * to its saved half-closed state. `recvNext` and `sendUna` are rcv_nxt and snd_una
 * before any FIN; `window` the peer's window as the segment field carries it.
 * Returns the state reached when it is not the saved one (the caller refuses).
 */
export function putFins(fd: number, c: { state: HalfClosed; local: InetAddr; peer: InetAddr; recvNext: number; sendUna: number; writeSeq: number; window: number }): string | undefined {
  const forge = (flags: number, seq: number, ack: number) => sendForged({ from: c.peer, to: c.local, seq, ack, flags, window: c.window });
  if (c.state === 'fin-wait1' || c.state === 'fin-wait2' || c.state === 'closing') ourFin(fd);
  if (finsOf(c.state).peers) forge(TH.FIN | TH.ACK, c.recvNext, c.sendUna);
  if (c.state === 'last-ack') ourFin(fd);
  // Our FIN acknowledged: the peer's ACK of write_seq and the FIN (rcv_nxt has no FIN of the peer's).
  if (c.state === 'fin-wait2') forge(TH.ACK, c.recvNext, c.writeSeq + 1);
  // The forged segment is taken in by the softirq that its send raises, on this CPU: usually done already.
  const want = STATE_OF[c.state];
  let now = tcpState(fd);
  for (let i = 0; i < 100 && now !== want; i++) {
    sleepSync(5);
    now = tcpState(fd);
  }
  if (now === want) return undefined;
  const names = Object.entries(TCP_STATE).find(([, v]) => v === now)?.[0] ?? String(now);
  return `it reached ${names} instead of ${c.state.toUpperCase().replace('-', '_')}`;
}
