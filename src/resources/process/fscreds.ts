/**
 * Opening paths with the credentials the restored process will have, not the
 * restorer's (docs/security.md). Everything a restore opens by a path an image names
 * (files, directories, devices, FIFOs, mapped files, the executable, cwd and root) is
 * opened while the thread doing it holds the process's future filesystem uid and gid,
 * its supplementary groups, and no effective capability it will not have. The kernel
 * then makes every permission decision itself, exactly as for the process (DAC,
 * CAP_DAC_OVERRIDE, CAP_NET_BIND_SERVICE, a device's own capability checks), which a
 * "check the mode bits, then open as root" scheme cannot match and would race.
 *
 * Why switch instead of setting the final credentials early: the restore still needs
 * the restorer's privilege between the files and the final credentials (chroot,
 * prlimit, PR_SET_MM, pidfd_getfd into the target), so the switch is only around the
 * opens. Only the fs ids, the groups and the effective set change; the real ids and
 * the permitted set stay the restorer's, which is what pidfd_getfd and
 * process_vm_writev (PTRACE_MODE_ATTACH_REALCREDS) look at. All of these are per
 * thread: the target's leader (where files are opened by injected openat) and ckpt's
 * own main thread (where local objects are made: FIFOs, sockets, copies of deleted
 * files) each switch and switch back.
 */
import { CkptError } from '../../common/errors.js';
import type { RemoteTask } from '../../infect/index.js';
import { readTaskStatus } from '../../proc/index.js';
import { capgetSelf, capsetSelf, encodeCapset, getgroups, NR, setfsgid, setfsuid, setgroups, type CapSets } from '../../sys/index.js';
import type { OpenCreds } from '../types.js';
import type { CredsState } from './creds.js';
import { callIn } from './inject.js';

/** The part of a process's saved credentials that decides what it may open. */
export function openCredsOf(s: CredsState): OpenCreds {
  return { fsuid: s.uid[3], fsgid: s.gid[3], groups: s.groups, capEff: s.caps.eff };
}

function refused(who: string, as: OpenCreds): CkptError {
  return new CkptError('PERMISSION', `Cannot restore ${who}: cannot take its filesystem credentials (uid ${as.fsuid}, gid ${as.fsgid}) to open its files`);
}

/** Runs `fn` with ckpt's own thread holding `as` (nothing to do without it); ours come back after. */
export function locallyAs<T>(as: OpenCreds | undefined, fn: () => T): T {
  if (!as) return fn();
  const caps = capgetSelf();
  const groups = getgroups();
  const fsuid = setfsuid(-1);
  const fsgid = setfsgid(-1);
  try {
    setgroups(as.groups);
    setfsgid(as.fsgid);
    setfsuid(as.fsuid);
    if (setfsuid(-1) !== as.fsuid || setfsgid(-1) !== as.fsgid) throw refused('a process', as);
    // Leaving fsuid 0 dropped the filesystem capabilities from the effective set; this sets it exactly.
    capsetSelf({ ...caps, eff: as.capEff & caps.prm });
    return fn();
  } finally {
    // Capabilities first: setgroups needs CAP_SETGID back in the effective set.
    capsetSelf(caps);
    setfsuid(fsuid);
    setfsgid(fsgid);
    setgroups(groups);
  }
}

/** Sets the ids and groups while the effective set still holds CAP_SETUID/CAP_SETGID: capset last when lowering, first when raising. */
function setTarget(r: RemoteTask, c: { fsuid: number; fsgid: number; groups: readonly number[]; caps: CapSets; raising: boolean }): void {
  const { header, data } = encodeCapset(c.caps);
  const capset = () => callIn(r, { nr: NR.capset, name: 'capset', data: Buffer.concat([header, data]), args: (addr) => [addr, addr + BigInt(header.length)] });
  if (c.raising) capset();
  const groups = Buffer.alloc(4 * Math.max(c.groups.length, 1));
  c.groups.forEach((g, i) => groups.writeUInt32LE(g, i * 4));
  callIn(r, { nr: NR.setgroups, name: 'setgroups', data: groups, args: (addr) => [c.groups.length, addr] });
  r.raw(NR.setfsgid, [c.fsgid]);
  r.raw(NR.setfsuid, [c.fsuid]);
  if (!c.raising) capset();
}

/**
 * Runs `fn` (which injects opens into the task of `remote`) with that task holding
 * `as`; its current credentials (the restorer's) come back after. On failure the
 * process is killed by the restore anyway, so nothing is put back then.
 */
export function inTargetAs<T>(remote: RemoteTask, args: { pid: number; as: OpenCreds | undefined }, fn: () => T): T {
  const as = args.as;
  if (!as) return fn();
  const cur = readTaskStatus(args.pid, remote.tid);
  const mine = { eff: cur.capEff, prm: cur.capPrm, inh: cur.capInh };
  setTarget(remote, { fsuid: as.fsuid, fsgid: as.fsgid, groups: as.groups, caps: { ...mine, eff: as.capEff & cur.capPrm }, raising: false });
  const now = readTaskStatus(args.pid, remote.tid);
  if (now.uid[3] !== as.fsuid || now.gid[3] !== as.fsgid) throw refused(`process ${args.pid}`, as);
  const result = fn();
  setTarget(remote, { fsuid: cur.uid[3]!, fsgid: cur.gid[3]!, groups: cur.groups, caps: mine, raising: true });
  return result;
}
