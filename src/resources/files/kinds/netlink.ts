/**
 * Netlink sockets of the protocols whose kernel side keeps no state about the socket
 * beyond what a socket shows: NETLINK_ROUTE (also the socket glibc's
 * mq_notify(SIGEV_THREAD) reads from; that registration itself is refused by
 * mqueue.ts), NETLINK_SOCK_DIAG, NETLINK_GENERIC and NETLINK_KOBJECT_UEVENT. Saved: the
 * port id (getsockname: the kernel gives the first socket of a process its pid, so
 * the restored socket is bound to it explicitly), every group it is subscribed to
 * (NETLINK_LIST_MEMBERSHIPS, beyond the 32 of nl_groups), the default destination set
 * by connect(), and the options that differ from a fresh socket's. Refused: other
 * protocols (the audit daemon's socket, netfilter queues and logs, connector, xfrm…: the kernel holds
 * registrations keyed by port id that no socket call reads back), a dump the kernel is
 * in the middle of answering (netlink_diag CB_RUNNING), and messages in the receive
 * queue (sent by the kernel, from port 0: no process can queue them again).
 */
import { CkptError } from '../../../common/errors.js';
import { closeFd, getsockoptInt, isErrno, SOL_SOCKET } from '../../../sys/index.js';
import { setsockoptInt, socket } from '../../../sys/ioctl.js';
import { POLL, pollNow, SO_INET } from '../../../sys/inet.js';
import {
  auditDaemonPid, bindNetlink, connectNetlink, NDIAG_FLAG, NETLINK_OPT, NETLINK_PROTO, netlinkDiagAll, netlinkGroups, netlinkName,
  netlinkPeer, SOL_NETLINK, type NetlinkDiag,
} from '../../../sys/netlink.js';
import { grabFd } from '../../transfer.js';
import type { FdFacts } from '../facts.js';
import type { DumpObjects } from '../objects.js';
import type { EntryOf } from '../schema.js';
import { dumpError, restoreError, type KindDumpContext, type LocalReopener } from './kind.js';
import { sockProto } from './sockproto.js';
import { socketIno } from './unix.js';
import { applySockOpts, pendingError, readSockOpts, setNonblock } from './sockopts.js';

const AF_NETLINK = 16;
/** Protocols with no per-socket kernel state beyond address, groups and options. */
const STATELESS = new Set([0, 4, 15, 16]);

const NETLINK_AUDIT = 9;

/**
 * A NETLINK_AUDIT socket is only a way to send user records (dbus-daemon's, sshd's
 * AVC and login messages) and to read the log group, both saved like any netlink
 * socket's, unless its process is the audit daemon: the kernel's registration of that
 * socket (AUDIT_SET) is not something a restore can make again.
 */
function refuseAuditDaemon(f: FdFacts): void {
  const daemon = auditDaemonPid();
  if (daemon === undefined) throw unsupported(f, 'NETLINK_AUDIT sockets are supported only where ckpt can ask the kernel whose socket the audit daemon\'s is (AUDIT_GET: CAP_AUDIT_CONTROL, the initial PID namespace)');
  if (daemon === f.pid) throw unsupported(f, `process ${f.pid} is the audit daemon: the kernel's registration of its NETLINK_AUDIT socket cannot be made again`);
}

export const isNetlinkSocket = (f: FdFacts) => sockProto(f) === 'NETLINK';

const diagCache = new WeakMap<DumpObjects, Map<number, NetlinkDiag>>();

/** The netlink_diag record of socket `ino` (one dump per process dump); undefined for an unbound socket. */
function diagOf(dc: KindDumpContext, ino: number): NetlinkDiag | undefined {
  let m = diagCache.get(dc.objects);
  if (!m) diagCache.set(dc.objects, (m = new Map(netlinkDiagAll().map((d) => [d.ino, d]))));
  return m.get(ino);
}

function unsupported(f: FdFacts, why: string) {
  return dumpError(f, { code: 'UNSUPPORTED', reason: `${why} (${f.link})` });
}

const protoName = (p: number) => NETLINK_PROTO[p] ?? `netlink protocol ${p}`;

export function dumpNetlink(dc: KindDumpContext, f: FdFacts): EntryOf<'netlink'> {
  const local = grabFd(f.pid, f.fd);
  try {
    const protocol = getsockoptInt(local, SOL_SOCKET, SO_INET.PROTOCOL);
    const type = getsockoptInt(local, SOL_SOCKET, SO_INET.TYPE);
    if (protocol === NETLINK_AUDIT) refuseAuditDaemon(f);
    else if (!STATELESS.has(protocol)) {
      throw unsupported(f, `${protoName(protocol)} sockets are not supported (the kernel keeps state about them that ckpt cannot read back)`);
    }
    if (type !== 2 && type !== 3) throw unsupported(f, `netlink sockets of type ${type} are not supported`);
    const pending = pendingError(local);
    if (pending) throw unsupported(f, pending);
    const name = netlinkName(local);
    const diag = name.portid !== 0 ? diagOf(dc, socketIno(f.link) ?? 0) : undefined;
    if (diag && diag.flags & NDIAG_FLAG.CB_RUNNING) {
      throw unsupported(f, `the kernel is in the middle of answering a dump request on this ${protoName(protocol)} socket; its rest cannot be saved`);
    }
    if (pollNow(local, POLL.IN) & POLL.IN) {
      const held = diag ? ` (${diag.rmem} bytes of receive memory)` : '';
      throw unsupported(f, `messages from the kernel are queued on this ${protoName(protocol)} socket${held}; they cannot be queued again`);
    }
    const peer = netlinkPeer(local);
    const groups = netlinkGroups(local);
    const opts = readSockOpts(f, { fd: local, proto: 'netlink', fresh: () => socket(AF_NETLINK, type, protocol) });
    return {
      kind: 'netlink', fd: f.fd, flags: f.flags, protocol, type: type as 2 | 3, portid: name.portid, groups, opts,
      ...(peer.portid || peer.groups ? { peer } : {}),
    };
  } finally {
    closeFd(local);
  }
}

export const netlinkReopener: LocalReopener<'netlink'> = {
  at: 'local',
  open(rc, e) {
    const fd = socket(AF_NETLINK, e.type, e.protocol);
    try {
      applySockOpts(fd, { opts: e.opts, phase: 'bind' });
      // The port id the kernel gave (or the program chose) is taken explicitly; groups are joined one by one (beyond 32 too).
      if (e.portid !== 0) bindNetlink(fd, { portid: e.portid, groups: 0 });
      for (const g of e.groups) setsockoptInt(fd, { level: SOL_NETLINK, name: NETLINK_OPT.ADD_MEMBERSHIP, value: g });
      if (e.peer) connectNetlink(fd, e.peer);
      applySockOpts(fd, { opts: e.opts, phase: 'state' });
      setNonblock(fd, e.flags);
      return fd;
    } catch (err) {
      closeFd(fd);
      if (isErrno(err, 'EADDRINUSE')) {
        const why = `port id ${e.portid} of ${protoName(e.protocol)} is taken by another socket`;
        throw new CkptError('ADDRESS_IN_USE', `Cannot restore fd ${e.fd} of process ${rc.ctx.pid}: ${why}`, { cause: err });
      }
      throw restoreError(rc, { fd: e.fd, code: 'SYSCALL', reason: `${(err as Error).message} (${protoName(e.protocol)} socket)`, cause: err });
    }
  },
};
