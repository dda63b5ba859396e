/**
 * Moving fds between the restorer and a process being rebuilt, without a unix socket
 * or parasite: the target takes a copy of one of our fds with pidfd_getfd (injected),
 * and we take a copy of one of its fds with pidfd_getfd (directly). Both leave the
 * open file description shared, offset and flags included.
 */
import { CkptError } from '../common/errors.js';
import { AF, NR, pidfdGetfd, pidfdOpen, capgetSelf, capsetSelf, closeFd, SCM_RIGHTS, sendFd, SOCK, SOL_SOCKET, SysError } from '../sys/index.js';
import type { RemoteTask } from '../infect/index.js';

const O_CLOEXEC = 0o2000000;
const pidfds = new WeakMap<RemoteTask, number>();

/** A pidfd of the restorer, open inside the target (cached per RemoteTask). */
function restorerPidfd(remote: RemoteTask): number {
  let fd = pidfds.get(remote);
  if (fd === undefined) {
    fd = Number(remote.call(NR.pidfd_open, [process.pid, 0], 'pidfd_open(restorer)'));
    pidfds.set(remote, fd);
  }
  return fd;
}

/**
 * Gives the target our `localFd` as its fd number `fd` (replacing whatever is there).
 * The cached pidfd is dropped before the fd moves into place: kept open, it could sit
 * on a number that this or a later fd must take.
 */
export function installLocalFd(remote: RemoteTask, args: { localFd: number; fd: number; cloexec: boolean }): void {
  const tmp = takeLocalFd(remote, { pidfd: restorerPidfd(remote), localFd: args.localFd });
  dropRestorerPidfd(remote);
  if (tmp !== args.fd) {
    remote.call(NR.dup3, [tmp, args.fd, args.cloexec ? O_CLOEXEC : 0], 'dup3');
    remote.call(NR.close, [tmp], 'close');
  } else if (!args.cloexec) {
    remote.call(NR.fcntl, [args.fd, 2 /* F_SETFD */, 0], 'fcntl(F_SETFD)');
  }
}

/** Gives the target a copy of our `localFd` at whatever fd number is free (close-on-exec); returns it. */
export function borrowLocalFd(remote: RemoteTask, localFd: number): number {
  return takeLocalFd(remote, { pidfd: restorerPidfd(remote), localFd });
}

/**
 * pidfd_getfd of our fd `localFd` through `pidfd` (ours, open in the target), injected;
 * where the target may not (its ids and capabilities are another user's while it opens
 * the files of untrusted images, process/fscreds.ts), the fd goes over a socket pair
 * instead (passLocalFd).
 */
export function takeLocalFd(remote: RemoteTask, args: { pidfd: number; localFd: number }): number {
  const r = remote.raw(NR.pidfd_getfd, [args.pidfd, args.localFd, 0], 'pidfd_getfd');
  if (r >= 0n) return Number(r);
  if (r !== -1n /* EPERM */) throw new SysError('pidfd_getfd (injected)', Number(-r), remote.tid);
  return passLocalFd(remote, { pid: remote.tid, localFd: args.localFd });
}

/** Closes the restorer pidfd the target holds (call once the target needs no more of our fds). */
export function dropRestorerPidfd(remote: RemoteTask): void {
  const fd = pidfds.get(remote);
  if (fd === undefined) return;
  remote.call(NR.close, [fd], 'close');
  pidfds.delete(remote);
}

const MSG_CMSG_CLOEXEC = 0x40000000;

/**
 * Gives the target process `pid` a copy of our `localFd` (close-on-exec) through a unix
 * socket pair it creates: we take one end with pidfd_getfd and send the fd over it.
 * Unlike borrowLocalFd this needs no ptrace right of the target over ckpt, so it works
 * for a target that runs as another user than ckpt. Returns the fd number in the target.
 */
export function passLocalFd(remote: RemoteTask, args: { pid: number; localFd: number }): number {
  const pair = remote.scratch(256);
  remote.call(NR.socketpair, [AF.UNIX, SOCK.STREAM | SOCK.CLOEXEC, 0, pair], 'socketpair');
  const ends = remote.read(pair, 8);
  const sender = ends.readInt32LE(0);
  const receiver = ends.readInt32LE(4);
  try {
    const ours = grabFd(args.pid, sender);
    try {
      sendFd(ours, args.localFd);
    } finally {
      closeFd(ours);
    }
    // struct msghdr at +0, one iovec at +64, one data byte at +96, control at +128.
    const msg = Buffer.alloc(160);
    msg.writeBigUInt64LE(pair + 64n, 16);
    msg.writeBigUInt64LE(1n, 24);
    msg.writeBigUInt64LE(pair + 128n, 32);
    msg.writeBigUInt64LE(24n, 40);
    msg.writeBigUInt64LE(pair + 96n, 64);
    msg.writeBigUInt64LE(1n, 72);
    remote.write(pair, msg);
    remote.call(NR.recvmsg, [receiver, pair, MSG_CMSG_CLOEXEC], 'recvmsg(SCM_RIGHTS)');
    const cmsg = remote.read(pair + 128n, 24);
    if (cmsg.readInt32LE(8) !== SOL_SOCKET || cmsg.readInt32LE(12) !== SCM_RIGHTS || cmsg.readBigUInt64LE(0) < 20n) {
      throw new CkptError('INTERNAL', `Cannot pass an fd to process ${args.pid}: nothing arrived over its socket pair`);
    }
    return cmsg.readInt32LE(16);
  } finally {
    remote.raw(NR.close, [sender]);
    remote.raw(NR.close, [receiver]);
  }
}

const CAP_SYS_PTRACE = 1n << 19n;

/**
 * A local copy of fd `fd` of process `pid` (the same open file description).
 * While ckpt opens the files of untrusted images its effective capabilities are the
 * images' owner's (process/fscreds.ts locallyAs), and a target whose ids changed is
 * no longer dumpable: pidfd_getfd then needs CAP_SYS_PTRACE, raised for this one call
 * only (it grants no file access, unlike a wider raise around the opens).
 */
export function grabFd(pid: number, fd: number): number {
  const pidfd = pidfdOpen(pid);
  try {
    try {
      return pidfdGetfd(pidfd, fd, { pid });
    } catch (e) {
      const caps = e instanceof SysError && e.errnoName === 'EPERM' ? capgetSelf() : undefined;
      if (!caps || (caps.eff & CAP_SYS_PTRACE) !== 0n || (caps.prm & CAP_SYS_PTRACE) === 0n) throw e;
      capsetSelf({ ...caps, eff: caps.eff | CAP_SYS_PTRACE });
      try {
        return pidfdGetfd(pidfd, fd, { pid });
      } finally {
        capsetSelf(caps);
      }
    }
  } finally {
    closeFd(pidfd);
  }
}

