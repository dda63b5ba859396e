/**
 * Unix sockets with the peer credentials they had. The kernel records them once, from
 * the calling thread: socketpair() gives both ends the caller's (its thread group's pid,
 * effective uid and gid, groups); listen() gives the listener the caller's, which its
 * clients copy at connect(); connect() gives the accepted end the client caller's.
 * SO_PEERCRED, SO_PEERGROUPS and SO_PEERPIDFD read them back, and nothing can set them
 * afterwards. So these three calls are injected into the process the saved credentials
 * name, whose leader holds the saved effective ids and groups for the call (all its
 * other state, and the real ids, stay the restorer's: the files phase runs before any
 * process takes its own credentials, restore/process.ts). The sockets are then taken
 * into ckpt, which does the rest (bind, queues, options) as for any socket.
 */
import { CkptError } from '../../../common/errors.js';
import type { RemoteTask } from '../../../infect/index.js';
import { readTaskStatus } from '../../../proc/index.js';
import { AF, closeFd, encodeCapset, NR, SOCK } from '../../../sys/index.js';
import { sockaddrUn, type PeerCred } from '../../../sys/unix-socket.js';
import { armParentDeathKill } from '../../process/misc.js';
import { callIn } from '../../process/inject.js';
import { borrowLocalFd, dropRestorerPidfd, grabFd } from '../../transfer.js';
import type { RestoreContext } from '../../types.js';

const KEEP = 0xffffffff; // -1: leave this id as it is

function setGroups(r: RemoteTask, groups: readonly number[]): void {
  const data = Buffer.alloc(4 * Math.max(groups.length, 1));
  groups.forEach((g, i) => data.writeUInt32LE(g, i * 4));
  callIn(r, { nr: NR.setgroups, name: 'setgroups', data, args: (addr) => [groups.length, addr] });
}

function setCaps(r: RemoteTask, caps: { eff: bigint; prm: bigint; inh: bigint }): void {
  const { header, data } = encodeCapset(caps);
  callIn(r, { nr: NR.capset, name: 'capset', data: Buffer.concat([header, data]), args: (addr) => [addr, addr + BigInt(header.length)] });
}

/**
 * Images of another user (ctx.openAs, docs/security.md) may name only ids that user
 * has: the credentials a socket or a queued message carries are what a server that
 * trusts SO_PEERCRED or SCM_CREDENTIALS acts on (an --ext-unix-sk connection to a
 * root-only daemon, say).
 */
export function refuseForeignIds(ctx: RestoreContext, args: { ids: { uid: number; gid: number; groups?: readonly number[] }; what: string }): void {
  const o = ctx.openAs;
  if (!o) return;
  const { uid, gid, groups = [] } = args.ids;
  const hasGroup = (g: number) => g === o.fsgid || o.groups.includes(g);
  if (uid !== o.fsuid || !hasGroup(gid) || !groups.every(hasGroup)) {
    throw new CkptError('PERMISSION', `Cannot restore ${args.what}: its credentials (uid ${uid}, gid ${gid}) are more than the images' owner has (uid ${o.fsuid}); restore images from others only with --trust-images`);
  }
}

const sameGroups = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((g, i) => g === b[i]);

/**
 * Runs `fn` with the injected calls of process `cred.pid` (its leader), which holds the
 * effective uid, gid and groups of `cred` meanwhile; its own come back after (the
 * effective ones by the real uid, which stays the restorer's; then fs ids and capabilities
 * exactly as they were). Changing ids clears the parent-death signal: armed again.
 */
export function asPeer<T>(ctx: RestoreContext, args: { cred: PeerCred; what: string }, fn: (remote: RemoteTask) => T): T {
  const { cred } = args;
  refuseForeignIds(ctx, { ids: cred, what: args.what });
  const remote = ctx.remoteOf?.(cred.pid) ?? (cred.pid === ctx.pid ? ctx.remote : undefined);
  if (!remote) {
    throw new CkptError('BAD_IMAGE', `Cannot restore ${args.what}: its peer credentials name process ${cred.pid}, which is not restored`);
  }
  const cur = readTaskStatus(cred.pid, remote.tid);
  const groups = [...cred.groups].sort((a, b) => a - b);
  if (cur.uid[1] === cred.uid && cur.gid[1] === cred.gid && sameGroups([...cur.groups].sort((a, b) => a - b), groups)) return fn(remote);
  const caps = { eff: cur.capEff, prm: cur.capPrm, inh: cur.capInh };
  try {
    if (caps.eff !== caps.prm) setCaps(remote, { ...caps, eff: caps.prm });
    setGroups(remote, cred.groups);
    remote.call(NR.setresgid, [KEEP, cred.gid, KEEP], 'setresgid');
    remote.call(NR.setresuid, [KEEP, cred.uid, KEEP], 'setresuid');
  } catch (e) {
    throw new CkptError('PERMISSION', `Cannot restore ${args.what}: process ${cred.pid} cannot take its peer credentials (uid ${cred.uid}, gid ${cred.gid}): ${(e as Error).message}`, { cause: e });
  }
  try {
    return fn(remote);
  } finally {
    // Back to the restorer's effective uid first: it gives back the capabilities the rest needs.
    remote.call(NR.setresuid, [KEEP, cur.uid[1], KEEP], 'setresuid');
    remote.call(NR.setresgid, [KEEP, cur.gid[1], KEEP], 'setresgid');
    setGroups(remote, cur.groups);
    remote.raw(NR.setfsuid, [cur.uid[3]]);
    remote.raw(NR.setfsgid, [cur.gid[3]]);
    setCaps(remote, caps);
    armParentDeathKill(remote);
  }
}

/** A socket pair made by the process `cred` names, as two new local fds. */
export function pairAs(ctx: RestoreContext, args: { cred: PeerCred; type: number; what: string }): [number, number] {
  return asPeer(ctx, args, (r) => {
    const at = r.scratch(8);
    r.call(NR.socketpair, [AF.UNIX, args.type | SOCK.CLOEXEC, 0, at], 'socketpair');
    const ends = r.read(at, 8);
    const fds = [ends.readInt32LE(0), ends.readInt32LE(4)];
    try {
      const a = grabFd(args.cred.pid, fds[0]!);
      try {
        return [a, grabFd(args.cred.pid, fds[1]!)];
      } catch (e) {
        closeFd(a);
        throw e;
      }
    } finally {
      for (const fd of fds) r.call(NR.close, [fd], 'close');
    }
  });
}

/** Runs `call` on a copy of our socket `fd` given to the process `cred` names (as it, see asPeer). */
function onSocketAs(ctx: RestoreContext, args: { cred: PeerCred; fd: number; what: string }, call: (r: RemoteTask, fd: number) => void): void {
  asPeer(ctx, args, (r) => {
    const theirs = borrowLocalFd(r, args.fd);
    dropRestorerPidfd(r);
    try {
      call(r, theirs);
    } finally {
      r.call(NR.close, [theirs], 'close');
    }
  });
}

/** listen() on our socket `fd`, called by the process `cred` names. */
export function listenAs(ctx: RestoreContext, args: { cred: PeerCred; fd: number; backlog: number; what: string }): void {
  onSocketAs(ctx, args, (r, fd) => void r.call(NR.listen, [fd, args.backlog], 'listen'));
}

/** connect() of our socket `fd` to `addr` (an absolute path or an abstract name), called by the process `cred` names. */
export function connectAs(ctx: RestoreContext, args: { cred: PeerCred; fd: number; addr: Buffer; what: string }): void {
  const sa = sockaddrUn(args.addr);
  onSocketAs(ctx, args, (r, fd) => void callIn(r, { nr: NR.connect, name: 'connect', data: sa, args: (addr) => [fd, addr, sa.length] }));
}
