/**
 * A userfaultfd of a stopped target's mm, held by ckpt: the target creates it (a
 * userfaultfd belongs to the mm of the process that made it), ckpt takes a copy with
 * pidfd_getfd and the target closes its own, so the program never sees it in its fd table.
 */
import { CkptError } from '../common/errors.js';
import { closeFd, NR, pidfdGetfd, pidfdOpen } from '../sys/index.js';
import { UFFD, uffdioApi } from '../sys/ioctl.js';
import { lowestFreeFds } from '../proc/index.js';
import type { RemoteTask } from './remote.js';

const O_CLOEXEC = 0o2000000;
const O_NONBLOCK = 0o4000;

/**
 * Makes a userfaultfd in the target and returns ckpt's copy, with the UFFDIO_API
 * handshake done for `features`. User-mode-only: it needs no privilege in the target
 * (vm.unprivileged_userfaultfd), and write-protect tracking takes no faults anyway.
 */
export function takeUserfaultfd(remote: RemoteTask, features: bigint): number {
  return takeUserfaultfdWith(remote, { features, userModeOnly: true });
}

/**
 * As takeUserfaultfd; `userModeOnly: false` for a userfaultfd whose faults ckpt serves:
 * a kernel access to a registered page (read(2) into a write-protected buffer) then waits
 * for ckpt too, where a user-mode-only one would fail it with EFAULT. The target needs
 * CAP_SYS_PTRACE or vm.unprivileged_userfaultfd = 1 for it (else EPERM).
 */
export function takeUserfaultfdWith(remote: RemoteTask, opts: { features: bigint; userModeOnly: boolean }): number {
  const { features } = opts;
  const pid = remote.tid;
  // The target is frozen: its new fd is its lowest free one, which it closes by itself if
  // ckpt dies before the close below (RemoteTask.closeIfLost; best effort where it cannot).
  const [free] = lowestFreeFds(pid, 1) as [number];
  const armed = remote.closeIfLost([free]);
  let inTarget = -1;
  try {
    inTarget = Number(remote.call(NR.userfaultfd, [O_CLOEXEC | O_NONBLOCK | (opts.userModeOnly ? UFFD.USER_MODE_ONLY : 0)], 'userfaultfd'));
  } finally {
    if (armed && inTarget < 0) remote.closeIfLost([]);
  }
  let local = -1;
  try {
    if (armed && inTarget !== free) throw new CkptError('INTERNAL', `Cannot track memory of process ${pid}: its userfaultfd got fd ${inTarget}, not ${free} (is its fd table shared with a running process?)`);
    const pidfd = pidfdOpen(pid);
    try {
      local = pidfdGetfd(pidfd, inTarget, { pid });
    } finally {
      closeFd(pidfd);
    }
  } finally {
    remote.call(NR.close, [inTarget], 'close(userfaultfd)');
    if (armed) remote.closeIfLost([]);
  }
  try {
    uffdioApi(local, features);
  } catch (e) {
    closeFd(local);
    throw e;
  }
  return local;
}
