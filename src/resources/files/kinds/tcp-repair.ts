/**
 * Established TCP connections, with TCP_REPAIR (needs CAP_NET_ADMIN), in the order
 * CRIU's libsoccr uses. Dump: repair mode on a grabbed copy freezes the socket; read
 * the queue lengths (SIOCINQ, SIOCOUTQ, SIOCOUTQNSD), the negotiated options (TCP_INFO,
 * TCP_MAXSEG, TCP_TIMESTAMP), the window (TCP_REPAIR_WINDOW), and for each queue its
 * sequence number (TCP_QUEUE_SEQ) and bytes (MSG_PEEK with TCP_REPAIR_QUEUE). The
 * socket is left in repair mode: when the dump kills the tree it closes silently (no
 * FIN or RST to the peer, no TIME_WAIT holding the address); a leave-running or failed
 * dump turns repair off again (the process's undo stack). Restore: a new socket in
 * repair mode, bound to the same address, both queue sequence numbers set, connect()
 * (no SYN in repair mode), options, queued bytes written into each queue, window, then
 * repair off without a window probe (the peer may not be restored yet).
 */
import {
  closeFd, getsockoptInt, ioctlInt, isErrno, recv, send, MSG, SO, SOL_SOCKET,
} from '../../../sys/index.js';
import {
  bindInet, connectInet, formatAddr, getsockoptBuf, inetDiagAll, IPPROTO, REPAIR, setsockoptBuf, SIOC, TCP_OPT,
  TCP_REPAIR_Q, TCP_TIMESTAMP, type InetAddr,
} from '../../../sys/inet.js';
import { setsockoptInt } from '../../../sys/ioctl.js';
import { grabFd } from '../../transfer.js';
import type { FdFacts } from '../facts.js';
import { loadPayload, savePayload } from '../objects.js';
import type { EntryOf, TcpRepairState } from '../schema.js';
import { dumpError, restoreError, type KindDumpContext, type KindRestoreContext } from './kind.js';
import { urgentUnacked } from './sockfields.js';
import { setBufSize } from './sockopts.js';
import { finsOf, halfClosed, putFins } from './tcp-fin.js';

const TCPI_OPT = { TIMESTAMPS: 1, SACK: 2, WSCALE: 4, ECN: 8, USEC_TS: 64 } as const;
const TCP_SAVED_SYN = 28;

/**
 * What the handshake agreed that TCP_REPAIR_OPTIONS cannot set again: ECN (the restored
 * connection would go on without it) and microsecond timestamps (`tcp_usec_ts` route
 * feature: a restored socket counts in milliseconds, its timestamps would go backwards
 * for the peer, which would drop its segments as old).
 */
function unrepairable(options: number): string | undefined {
  if (options & TCPI_OPT.ECN) return 'ECN was negotiated';
  if (options & TCPI_OPT.USEC_TS) return 'it uses microsecond timestamps (tcp_usec_ts)';
  return undefined;
}

/**
 * A SYN saved with TCP_SAVE_SYN and not read yet: getsockopt(TCP_SAVED_SYN) with no room
 * answers EINVAL when there is one, without consuming it (a read frees it).
 */
function savedSynPending(fd: number): boolean {
  try {
    getsockoptBuf(fd, { level: IPPROTO.TCP, name: TCP_SAVED_SYN, size: 0 });
    return false;
  } catch (e) {
    return isErrno(e, 'EINVAL');
  }
}
const TCPOPT = { MAXSEG: 2, WINDOW: 3, SACK_PERM: 4, TIMESTAMP: 8 } as const;

/** The smallest and largest TCP_MAXSEG the kernel takes (TCP_MIN_MSS, MAX_TCP_WINDOW). */
const TCP_MIN_MSS = 88;
const MAX_TCP_WINDOW = 32767;

const tcpSet = (fd: number, name: number, value: number) => setsockoptInt(fd, { level: IPPROTO.TCP, name, value });

/** The socket of the tree (by inode) at the other end of local→peer, if any is in this namespace. */
function peerInode(local: InetAddr, peer: InetAddr): number | undefined {
  try {
    return inetDiagAll(local.family, IPPROTO.TCP).find(
      (d) => d.sport === peer.port && d.dport === local.port && d.src === peer.addr && d.dst === local.addr,
    )?.ino;
  } catch {
    return undefined;
  }
}

function peekQueue(f: FdFacts, fd: number, args: { queue: number; len: number }): { seq: number; data: Buffer } {
  tcpSet(fd, TCP_OPT.REPAIR_QUEUE, args.queue);
  const seq = getsockoptInt(fd, IPPROTO.TCP, TCP_OPT.QUEUE_SEQ) >>> 0;
  const buf = Buffer.alloc(args.len + 1);
  const n = args.len === 0 ? 0 : recv(fd, buf, MSG.PEEK | MSG.DONTWAIT);
  if (n > args.len && args.queue === TCP_REPAIR_Q.RECV) {
    // Repair mode does not stop the receive path: only the network lock keeps packets out.
    throw dumpError(f, { code: 'UNSUPPORTED', reason: `bytes arrived on the TCP connection while the dump read its receive queue (dumped with --network-lock skip?); try again` });
  }
  if (n !== args.len) {
    throw dumpError(f, { code: 'INTERNAL', reason: `the TCP ${args.queue === TCP_REPAIR_Q.RECV ? 'receive' : 'send'} queue has ${n} bytes, not ${args.len}` });
  }
  return { seq, data: buf.subarray(0, n) };
}

/**
 * An urgent byte (MSG_OOB) received and not read: TCP_REPAIR has no way to put the
 * urgent pointer back, so the byte would be lost (or read inline). Peeked on the copy
 * before repair mode (which refuses MSG_OOB): EINVAL means none, or SO_OOBINLINE;
 * EAGAIN that the peer announced one that has not arrived yet.
 */
function urgentPending(fd: number): boolean {
  // Held past the call: koffi's address does not keep a buffer alive, and the kernel writes the byte into it.
  const byte = Buffer.alloc(1);
  try {
    return recv(fd, byte, MSG.OOB | MSG.PEEK | MSG.DONTWAIT) > 0;
  } catch (e) {
    return isErrno(e, 'EAGAIN');
  } finally {
    void byte.readUInt8(0);
  }
}

/** An established or half-closed connection (`state`: TCP_INFO's, checked again in repair mode). */
export function dumpEstablished(dc: KindDumpContext, f: FdFacts, s: { fd: number; local: InetAddr; peer: InetAddr; state: number }): TcpRepairState {
  const { fd } = s;
  const what = `the TCP connection ${formatAddr(s.local)} → ${formatAddr(s.peer)}`;
  const handshake = unrepairable(getsockoptBuf(fd, { level: IPPROTO.TCP, name: TCP_OPT.INFO, size: 8 }).readUInt8(5));
  if (handshake) throw dumpError(f, { code: 'UNSUPPORTED', reason: `${handshake} on ${what}; TCP repair cannot set it again (--tcp-close gives the connection up)` });
  if (savedSynPending(fd)) throw dumpError(f, { code: 'UNSUPPORTED', reason: `the SYN saved by TCP_SAVE_SYN on ${what} was not read yet; it cannot be put back` });
  if (urgentPending(fd)) {
    throw dumpError(f, { code: 'UNSUPPORTED', reason: `an urgent byte (MSG_OOB) waits to be read on the TCP connection ${formatAddr(s.local)} → ${formatAddr(s.peer)}; TCP repair cannot put it back` });
  }
  // Only unacknowledged bytes can hold an urgent one: the BPF read (~200 ms to load once) is for those.
  if (ioctlInt(fd, SIOC.OUTQ) > 0 && urgentUnacked(fd) === true) {
    throw dumpError(f, { code: 'UNSUPPORTED', reason: `urgent data (MSG_OOB) sent on ${what} is not acknowledged yet; TCP repair cannot set the urgent pointer again (it would go out as plain data)` });
  }
  try {
    tcpSet(fd, TCP_OPT.REPAIR, REPAIR.ON);
  } catch (e) {
    throw dumpError(f, { code: 'PERMISSION', reason: `cannot put the TCP connection ${formatAddr(s.local)} → ${formatAddr(s.peer)} in repair mode (${(e as Error).message}); it needs CAP_NET_ADMIN` });
  }
  // Repair mode only while the queues are read, so that a ckpt killed later leaves a
  // working connection; the dump's kill turns it on again just before SIGKILL, so the
  // socket closes silently (no FIN or RST to the peer) and the restore can bind its port.
  const { pid } = f;
  const setRepair = (mode: number) => {
    const again = grabFd(pid, f.fd);
    try {
      tcpSet(again, TCP_OPT.REPAIR, mode);
    } finally {
      closeFd(again);
    }
  };
  dc.ctx.proc.undo.push(`TCP_REPAIR off on fd ${f.fd} of ${pid}`, () => setRepair(REPAIR.OFF));
  dc.ctx.proc.atKill.push(() => setRepair(REPAIR.ON));
  const info = getsockoptBuf(fd, { level: IPPROTO.TCP, name: TCP_OPT.INFO, size: 8 });
  if (info.readUInt8(0) !== s.state) throw dumpError(f, { code: 'UNSUPPORTED', reason: 'the TCP connection changed state during the dump' });
  const half = halfClosed(s.state);
  const options = info.readUInt8(5);
  // SIOCINQ leaves the peer's FIN out; SIOCOUTQ and SIOCOUTQNSD count our FIN while it is not
  // acknowledged (not sent): the queues are saved as bytes, the FINs as the state.
  const ourFin = finsOf(half).ours ? 1 : 0;
  const inq = ioctlInt(fd, SIOC.INQ);
  const outq = Math.max(0, ioctlInt(fd, SIOC.OUTQ) - ourFin);
  const unsent = Math.max(0, ioctlInt(fd, SIOC.OUTQNSD) - ourFin);
  const r = peekQueue(f, fd, { queue: TCP_REPAIR_Q.RECV, len: inq });
  const w = peekQueue(f, fd, { queue: TCP_REPAIR_Q.SEND, len: outq });
  tcpSet(fd, TCP_OPT.REPAIR_QUEUE, TCP_REPAIR_Q.NO);
  const win = getsockoptBuf(fd, { level: IPPROTO.TCP, name: TCP_OPT.REPAIR_WINDOW, size: 20 });
  const peerIno = peerInode(s.local, s.peer);
  if (peerIno === undefined || (dc.ctx.linkCount?.(`socket:[${peerIno}]`) ?? 0) === 0) {
    dc.ctx.warn(
      `fd ${f.fd} of process ${f.pid}: the TCP connection ${formatAddr(s.local)} → ${formatAddr(s.peer)} goes to a peer outside the dump; ` +
      'it resumes after restore only if that peer is still there and nothing reset it meanwhile',
    );
  }
  const base = `fd-${f.pid}-${f.fd}-tcp`;
  const state: TcpRepairState = {
    recvSeq: r.seq, sendSeq: w.seq,
    recvQueue: savePayload(dc.ctx, `${base}.recv`, r.data),
    sendQueue: savePayload(dc.ctx, `${base}.send`, w.data),
    unsent,
    mss: getsockoptInt(fd, IPPROTO.TCP, TCP_OPT.MAXSEG),
    sack: (options & TCPI_OPT.SACK) !== 0,
    timestamps: (options & TCPI_OPT.TIMESTAMPS) !== 0,
    ...(options & TCPI_OPT.WSCALE ? { sndWscale: info.readUInt8(6) & 0xf, rcvWscale: info.readUInt8(6) >> 4 } : {}),
    ...(options & TCPI_OPT.TIMESTAMPS ? { timestamp: getsockoptInt(fd, IPPROTO.TCP, TCP_TIMESTAMP) >>> 0 } : {}),
    window: win.length === 20 ? [0, 4, 8, 12, 16].map((o) => win.readUInt32LE(o)) : undefined,
    ...(half ? { state: half } : {}),
  };
  tcpSet(fd, TCP_OPT.REPAIR, REPAIR.OFF);
  return state;
}

function fillQueue(fd: number, args: { queue: number; data: Buffer }): void {
  if (args.data.length === 0) return;
  tcpSet(fd, TCP_OPT.REPAIR_QUEUE, args.queue);
  // In repair mode the kernel allocates one linear skb per send: big chunks may fail with ENOMEM.
  let chunk = args.data.length;
  for (let off = 0; off < args.data.length; ) {
    try {
      off += send(fd, args.data.subarray(off, off + chunk));
    } catch (e) {
      if (chunk <= 1024) throw e;
      chunk >>= 1;
    }
  }
}

export function restoreEstablished(rc: KindRestoreContext, args: { e: EntryOf<'inet'>; fd: number }): void {
  const { e, fd } = args;
  const t = e.tcp;
  if (!t || !e.local || !e.peer) throw restoreError(rc, { fd: e.fd, code: 'BAD_IMAGE', reason: 'an established TCP connection without its addresses or state' });
  const load = (p: TcpRepairState['recvQueue'], what: string) => {
    const d = loadPayload(rc.ctx.blobs, p);
    if (typeof d === 'string') throw restoreError(rc, { fd: e.fd, code: 'BAD_IMAGE', reason: `the TCP ${what} queue ${d}` });
    return d;
  };
  const recvData = load(t.recvQueue, 'receive');
  const sendData = load(t.sendQueue, 'send');
  // The sequence numbers before the FINs: they are put back last (tcp-fin.ts).
  const fins = finsOf(t.state);
  const recvNext = (t.recvSeq - (fins.peers ? 1 : 0)) >>> 0;
  const writeSeq = (t.sendSeq - (fins.ours ? 1 : 0)) >>> 0;
  tcpSet(fd, TCP_OPT.REPAIR, REPAIR.ON);
  // The repair connect computes the segment size from the MSS clamp as it then is (the default,
  // 536) and TCP_REPAIR_OPTIONS does not compute it again: the connection would send 524-byte
  // segments. As the user MSS the saved clamp is what connect() uses; cleared once connected.
  // The user MSS cannot exceed MAX_TCP_WINDOW: over loopback (MSS 65483) segments are half as big.
  if (t.mss >= TCP_MIN_MSS) tcpSet(fd, TCP_OPT.MAXSEG, Math.min(t.mss, MAX_TCP_WINDOW));
  bindInet(fd, e.local);
  tcpSet(fd, TCP_OPT.REPAIR_QUEUE, TCP_REPAIR_Q.RECV);
  tcpSet(fd, TCP_OPT.QUEUE_SEQ, (recvNext - recvData.length) | 0);
  tcpSet(fd, TCP_OPT.REPAIR_QUEUE, TCP_REPAIR_Q.SEND);
  tcpSet(fd, TCP_OPT.QUEUE_SEQ, (writeSeq - sendData.length) | 0);
  connectInet(fd, e.peer);
  const opts: [number, number][] = [];
  if (t.sack) opts.push([TCPOPT.SACK_PERM, 0]);
  if (t.sndWscale !== undefined && t.rcvWscale !== undefined) opts.push([TCPOPT.WINDOW, t.sndWscale + (t.rcvWscale << 16)]);
  if (t.timestamps) opts.push([TCPOPT.TIMESTAMP, 0]);
  opts.push([TCPOPT.MAXSEG, t.mss]);
  const ob = Buffer.alloc(opts.length * 8);
  opts.forEach(([code, val], i) => {
    ob.writeUInt32LE(code, i * 8);
    ob.writeUInt32LE(val, i * 8 + 4);
  });
  setsockoptBuf(fd, { level: IPPROTO.TCP, name: TCP_OPT.REPAIR_OPTIONS, value: ob });
  tcpSet(fd, TCP_OPT.MAXSEG, 0);
  if (t.timestamp !== undefined) tcpSet(fd, TCP_TIMESTAMP, t.timestamp | 0);
  fillQueue(fd, { queue: TCP_REPAIR_Q.RECV, data: recvData });
  // The whole send queue is charged to the send buffer at once: make room (SO_BUF_LOCK, restored
  // with the other options afterwards, puts the lock back as it was).
  if (getsockoptInt(fd, SOL_SOCKET, SO.SNDBUF) < 2 * sendData.length + (1 << 16)) {
    setBufSize(fd, { name: SO.SNDBUF, value: 2 * sendData.length + (1 << 20) });
  }
  // The unsent part goes in as sent too: sending it for real now could reach a peer not restored
  // yet (and draw a reset); as "sent, not acknowledged" it is retransmitted in due course.
  fillQueue(fd, { queue: TCP_REPAIR_Q.SEND, data: sendData });
  if (t.window) {
    const wb = Buffer.alloc(20);
    t.window.forEach((v, i) => wb.writeUInt32LE(v, i * 4));
    // rcv_wup may not be past rcv_nxt, which has no FIN of the peer's yet: the window starts one earlier.
    if (fins.peers) {
      wb.writeUInt32LE((t.window[3]! + 1) >>> 0, 12);
      wb.writeUInt32LE((t.window[4]! - 1) >>> 0, 16);
    }
    setsockoptBuf(fd, { level: IPPROTO.TCP, name: TCP_OPT.REPAIR_WINDOW, value: wb });
  }
  tcpSet(fd, TCP_OPT.REPAIR_QUEUE, TCP_REPAIR_Q.NO);
  if (t.state) {
    const why = putFins(fd, {
      state: t.state, local: e.local, peer: e.peer, recvNext, writeSeq,
      sendUna: (writeSeq - sendData.length) >>> 0,
      // The peer's window as its segments carry it (scaled down by its shift).
      window: t.window ? t.window[1]! >>> (t.sndWscale ?? 0) : 0xffff,
    });
    if (why) throw restoreError(rc, { fd: e.fd, code: 'SYSCALL', reason: `the half-closed TCP connection ${formatAddr(e.local)} → ${formatAddr(e.peer)} could not be put back: ${why}` });
  }
  tcpSet(fd, TCP_OPT.REPAIR, REPAIR.OFF_NO_WP);
}
