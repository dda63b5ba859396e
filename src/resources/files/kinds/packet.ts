/**
 * Packet sockets (AF_PACKET, SOCK_RAW or SOCK_DGRAM). Saved: the protocol the socket was
 * created with (SO_PROTOCOL) and where it is bound (getsockname: protocol and
 * interface), the multicast/promiscuous memberships with how many times each was added
 * and the copy threshold (packet_diag: no getsockopt reads them), and the options of the
 * table (PACKET_VERSION, PACKET_AUXDATA…, a classic filter). Refused: mmap'ed rings
 * (PACKET_RX_RING/TX_RING), fanout groups, SOCK_PACKET, and queued packets (they came
 * from the wire; nothing can queue them again as they were).
 */
import { closeFd, getsockoptInt, SOL_SOCKET } from '../../../sys/index.js';
import { POLL, pollNow, SO_INET } from '../../../sys/inet.js';
import { socket } from '../../../sys/ioctl.js';
import {
  AF_PACKET, addPacketMembership, bindPacket, packetDiagAll, packetName, setCopyThresh, type PacketDiag,
} from '../../../sys/packet.js';
import { grabFd } from '../../transfer.js';
import type { FdFacts } from '../facts.js';
import type { DumpObjects } from '../objects.js';
import type { EntryOf } from '../schema.js';
import { dumpError, restoreError, type KindDumpContext, type LocalReopener } from './kind.js';
import { applySockOpts, pendingError, readSockOpts, setNonblock } from './sockopts.js';
import { sockProto } from './sockproto.js';
import { checkInterfaces, withIfname } from './netdev.js';
import { socketIno } from './unix.js';

/** sockaddr_ll's hardware address holds 8 bytes; PACKET_ADD_MEMBERSHIP with a longer one needs packet_mreq_max. */
const MREQ_ADDR_MAX = 8;

export const isPacketSocket = (f: FdFacts) => sockProto(f) === 'PACKET';

const diagCache = new WeakMap<DumpObjects, Map<number, PacketDiag>>();

function diagOf(dc: KindDumpContext, f: FdFacts, ino: number): PacketDiag {
  let m = diagCache.get(dc.objects);
  if (!m) {
    try {
      m = new Map(packetDiagAll().map((d) => [d.ino, d]));
    } catch (e) {
      throw unsupported(f, `packet sockets need sock_diag for packet sockets (packet_diag), which answered: ${(e as Error).message}`);
    }
    diagCache.set(dc.objects, m);
  }
  const d = m.get(ino);
  if (!d) throw unsupported(f, 'packet_diag does not list this packet socket');
  return d;
}

function unsupported(f: FdFacts, why: string) {
  return dumpError(f, { code: 'UNSUPPORTED', reason: `${why} (${f.link})` });
}

export function dumpPacket(dc: KindDumpContext, f: FdFacts): EntryOf<'packet'> {
  const local = grabFd(f.pid, f.fd);
  try {
    const type = getsockoptInt(local, SOL_SOCKET, SO_INET.TYPE);
    const protocol = getsockoptInt(local, SOL_SOCKET, SO_INET.PROTOCOL);
    if (type !== 2 && type !== 3) throw unsupported(f, `packet sockets of type ${type} (SOCK_PACKET) are not supported`);
    const d = diagOf(dc, f, socketIno(f.link) ?? 0);
    if (d.rxRing || d.txRing) throw unsupported(f, `packet sockets with mmap'ed rings (PACKET_${d.rxRing ? 'RX' : 'TX'}_RING) are not supported`);
    if (d.fanout) throw unsupported(f, 'packet sockets in a fanout group (PACKET_FANOUT) are not supported');
    const pending = pendingError(local);
    if (pending) throw unsupported(f, pending);
    if (pollNow(local, POLL.IN) & POLL.IN) {
      throw unsupported(f, `packets are queued on this packet socket (${d.rmem} bytes of receive memory); they cannot be queued again`);
    }
    const long = d.memberships.find((m) => m.addr.length / 2 > MREQ_ADDR_MAX);
    if (long) throw unsupported(f, `a packet membership with a ${long.addr.length / 2}-byte address is not supported`);
    const name = packetName(local);
    const bound = { ...name, ...withIfname(name.ifindex) };
    const memberships = d.memberships.map((m) => ({ ...m, ...withIfname(m.ifindex) }));
    const opts = readSockOpts(f, { fd: local, proto: 'packet', fresh: () => socket(AF_PACKET, type, protocol) });
    return {
      kind: 'packet', fd: f.fd, flags: f.flags, type: type as 2 | 3, protocol, bound, opts,
      ...(d.copyThresh ? { copyThresh: d.copyThresh } : {}),
      ...(memberships.length > 0 ? { memberships } : {}),
    };
  } finally {
    closeFd(local);
  }
}

export const packetReopener: LocalReopener<'packet'> = {
  at: 'local',
  open(rc, e) {
    checkInterfaces(rc.ctx, { fd: e.fd, list: [e.bound, ...(e.memberships ?? [])] });
    const fd = socket(AF_PACKET, e.type, e.protocol);
    try {
      applySockOpts(fd, { opts: e.opts, phase: 'bind' });
      // bind() with protocol 0 keeps the socket's; a socket created with 0 and never bound stays as it is.
      if (e.bound.ifindex !== 0 || e.bound.protocol !== e.protocol) bindPacket(fd, e.bound);
      for (const m of e.memberships ?? []) for (let i = 0; i < m.count; i++) addPacketMembership(fd, m);
      if (e.copyThresh) setCopyThresh(fd, e.copyThresh);
      applySockOpts(fd, { opts: e.opts, phase: 'state' });
      setNonblock(fd, e.flags);
      return fd;
    } catch (err) {
      closeFd(fd);
      const where = `packet socket on interface ${e.bound.ifindex || 'any'}`;
      throw restoreError(rc, { fd: e.fd, code: 'SYSCALL', reason: `${(err as Error).message} (${where})`, cause: err });
    }
  },
};
