/**
 * The controlling terminal of a process, when it is a pty pair of the tree
 * (kinds/tty.ts). A session leader takes it again with TIOCSCTTY as soon as it exists,
 * before memory and before its children are cloned, so they inherit it at fork as they
 * once did (no other process can acquire one); its foreground process group is set
 * once every group of the tree exists (setForeground, from the restore orchestrator).
 * A member whose terminal is not its parent's could not get it back: refused. A
 * controlling terminal outside the tree is the restorer's (or none), as before
 * (--shell-job, files/kinds/inherit.ts); nothing is saved for it.
 */
import { z } from 'zod';
import { readStat } from '../../proc/index.js';
import { CkptError } from '../../common/errors.js';
import { closeFd, NR, TTY } from '../../sys/index.js';
import type { RemoteTask } from '../../infect/index.js';
import { borrowLocalFd, dropRestorerPidfd, grabFd } from '../transfer.js';
import type { DumpContext, Resource, RestoreContext, SharedObjects } from '../types.js';
import { cttyIndex, ptyMastersOf } from './kinds/tty.js';
import { localPair, lockPair, readPty } from './kinds/tty-pair.js';
import type { FilesState } from './schema.js';
import { ptyState } from './tty-schema.js';

export const cttySchema = z
  .object({
    index: z.number().int().min(0).max(1 << 20),
    /** A session leader: the pair's state (to make it if no fd came first) and its foreground group. */
    leader: z.object({ pty: ptyState, fg: z.number().int().min(1).max(4194304) }).optional(),
  })
  .optional();
export type CttyState = z.output<typeof cttySchema>;

function dumpCtty(ctx: DumpContext): CttyState {
  const index = cttyIndex(ctx.pid);
  const master = index === undefined ? undefined : ptyMastersOf(ctx).get(index);
  if (index === undefined || !master) return undefined;
  const stat = readStat(ctx.pid);
  if (stat.session !== ctx.pid) {
    const parent = stat.ppid > 0 ? readStat(stat.ppid) : undefined;
    if (parent?.ttyNr !== stat.ttyNr || !ctx.treeDescriptions?.has(stat.ppid)) {
      throw new CkptError('UNSUPPORTED', `Cannot dump process ${ctx.pid}: its controlling terminal /dev/pts/${index} is not its parent's, so it could not get it back (only a session leader can take one)`);
    }
    return { index };
  }
  if (stat.tpgid <= 0) throw new CkptError('UNSUPPORTED', `Cannot dump process ${ctx.pid}: its terminal /dev/pts/${index} has no foreground process group`);
  const local = grabFd(master.pid, master.fd);
  try {
    const pty = readPty(local);
    if (typeof pty === 'string') throw new CkptError('UNSUPPORTED', `Cannot dump process ${ctx.pid}: its controlling terminal /dev/pts/${index}: ${pty}`);
    return { index, leader: { pty, fg: stat.tpgid } };
  } finally {
    closeFd(local);
  }
}

/** Runs `fn` on a temporary copy, in the target, of the restorer's slave of pty `index`. */
function withSlave(remote: RemoteTask, args: { shared: SharedObjects; index: number }, fn: (fd: number) => void): void {
  const slave = args.shared.get(`pty:${args.index}:s`);
  if (slave === undefined) throw new CkptError('INTERNAL', `Cannot restore the terminal of process ${remote.tid}: pty ${args.index} was not made`);
  const fd = borrowLocalFd(remote, slave);
  dropRestorerPidfd(remote);
  try {
    fn(fd);
  } finally {
    remote.call(NR.close, [fd], 'close');
  }
}

function restoreCtty(ctx: RestoreContext, state: CttyState): void {
  if (!state?.leader) return;
  const { pty } = state.leader;
  localPair(ctx.shared, { pty, fail: (reason) => new CkptError('UNSUPPORTED', `Cannot restore the terminal of process ${ctx.pid}: pty ${pty.index}: ${reason}`) });
  withSlave(ctx.remote, { shared: ctx.shared, index: state.index }, (fd) => ctx.remote.call(NR.ioctl, [fd, TTY.TIOCSCTTY, 0], 'ioctl(TIOCSCTTY)'));
}

/**
 * Once every process and group of the tree exists: each session leader makes its
 * terminal's foreground group the saved one, and the pairs saved locked are locked.
 */
export function finishTerminals(built: readonly { remote: RemoteTask; img: { resources: readonly { module: { name: string }; state: unknown }[] } }[], shared: SharedObjects): void {
  for (const p of built) {
    const stateOf = (name: string) => p.img.resources.find((r) => r.module.name === name)?.state;
    setForeground(p.remote, { shared, state: stateOf('ctty') as CttyState });
    for (const e of (stateOf('files') as FilesState | undefined)?.fds ?? []) if (e.kind === 'tty' && e.pty.locked) lockPair(shared, e.pty.index);
  }
}

function setForeground(remote: RemoteTask, args: { shared: SharedObjects; state: CttyState }): void {
  const leader = args.state?.leader;
  if (!leader) return;
  const pgrp = Buffer.alloc(4);
  pgrp.writeInt32LE(leader.fg);
  withSlave(remote, { shared: args.shared, index: args.state!.index }, (fd) => {
    remote.call(NR.ioctl, [fd, TTY.TIOCSPGRP, remote.put(pgrp, 0)], `ioctl(TIOCSPGRP ${leader.fg})`);
  });
}

export const ctty: Resource<CttyState> = {
  name: 'ctty',
  schema: cttySchema,
  dump: dumpCtty,
  restore: restoreCtty,
};
