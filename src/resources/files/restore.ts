/**
 * Restore of the fd table by injected syscalls in the process being rebuilt. It
 * starts with the restorer's fds: everything not saved is closed, inherited fds are
 * left alone, and every other entry is opened (wherever the kernel puts it), moved to
 * its number with dup3, and seeked. Entries come in fd order, so a dup's original is
 * always in place before the dup.
 */
import { listFds } from '../../proc/index.js';
import { SysError } from '../../sys/index.js';
import type { RestoreContext } from '../types.js';
import { isCloexec } from './flags.js';
import { restoreInherit } from './kinds/inherit.js';
import { restoreError, type KindRestoreContext, type Reopener, type ReopenKind } from './kinds/kind.js';
import { REOPENERS } from './registry.js';
import type { EntryOf, FdEntry, FilesState } from './schema.js';
import { TargetFds } from './target.js';

function describe(e: FdEntry): string {
  if (e.kind === 'inherit') return e.link;
  if (e.kind === 'dup') return `dup of fd ${e.of}`;
  return e.path;
}

function reopen(rc: KindRestoreContext, e: EntryOf<ReopenKind>): void {
  const reopener = REOPENERS[e.kind] as Reopener<ReopenKind>;
  const tmp = reopener.open(rc, e);
  rc.target.place(tmp, { fd: e.fd, cloexec: isCloexec(e.flags) });
  if (reopener.seekable(e)) rc.target.seek(e.fd, e.pos);
}

function restoreEntry(rc: KindRestoreContext, e: FdEntry, present: ReadonlySet<number>): void {
  switch (e.kind) {
    case 'inherit':
      restoreInherit(rc.ctx, { ...e, present: present.has(e.fd) });
      return;
    case 'dup':
      rc.target.dup(e.of, { fd: e.fd, cloexec: e.cloexec });
      return;
    default:
      reopen(rc, e);
  }
}

export function restoreFiles(ctx: RestoreContext, state: FilesState): void {
  const rc: KindRestoreContext = { ctx, target: new TargetFds(ctx.remote) };
  const saved = new Set(state.fds.map((e) => e.fd));
  const current = listFds(ctx.pid);
  // Saved numbers that are open now get replaced atomically by dup3; the rest must go.
  rc.target.closeAll(current.filter((fd) => !saved.has(fd)));
  const present = new Set(current);
  for (const e of state.fds) {
    try {
      restoreEntry(rc, e, present);
    } catch (err) {
      if (!(err instanceof SysError)) throw err;
      throw restoreError(ctx, { fd: e.fd, code: 'SYSCALL', reason: `${err.syscall} of ${describe(e)} failed with ${err.errnoName}`, cause: err });
    }
  }
}
