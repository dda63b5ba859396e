/**
 * Moving fds between the restorer and a process being rebuilt, without a unix socket
 * or parasite: the target takes a copy of one of our fds with pidfd_getfd (injected),
 * and we take a copy of one of its fds with pidfd_getfd (directly). Both leave the
 * open file description shared, offset and flags included.
 */
import { NR, pidfdGetfd, pidfdOpen, closeFd } from '../sys/index.js';
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
  const tmp = Number(remote.call(NR.pidfd_getfd, [restorerPidfd(remote), args.localFd, 0], 'pidfd_getfd'));
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
  return Number(remote.call(NR.pidfd_getfd, [restorerPidfd(remote), localFd, 0], 'pidfd_getfd'));
}

/** Closes the restorer pidfd the target holds (call once the target needs no more of our fds). */
export function dropRestorerPidfd(remote: RemoteTask): void {
  const fd = pidfds.get(remote);
  if (fd === undefined) return;
  remote.call(NR.close, [fd], 'close');
  pidfds.delete(remote);
}

/** A local copy of fd `fd` of process `pid` (the same open file description). */
export function grabFd(pid: number, fd: number): number {
  const pidfd = pidfdOpen(pid);
  try {
    return pidfdGetfd(pidfd, fd, { pid });
  } finally {
    closeFd(pidfd);
  }
}

