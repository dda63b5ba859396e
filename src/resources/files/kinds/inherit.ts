/**
 * Standard descriptors that cannot be reopened (a pipe from the shell, a socket, the
 * terminal): the restored process keeps what the restorer gave it at that number,
 * which is what "run it again under this shell" means.
 */
import type { RestoreContext } from '../../types.js';
import type { FdFacts } from '../facts.js';
import type { EntryOf } from '../schema.js';
import type { KindDumpContext } from './kind.js';

/** Terminal character devices by major number: tty/ttyS (4), /dev/tty, console, ptmx (5), Unix98 pty slaves (136-143), BSD ptys (2, 3). */
const TTY_MAJORS = new Set([2, 3, 4, 5, 136, 137, 138, 139, 140, 141, 142, 143]);
const TTY_PATH = /^\/dev\/(pts\/|tty|console$|ptmx$)/;

export function isTty(f: Pick<FdFacts, 'link' | 'stat'>): boolean {
  return TTY_MAJORS.has(Number((BigInt(f.stat.rdev) >> 8n) & 0xfffn)) || TTY_PATH.test(f.link);
}

export function dumpInherit(_dc: KindDumpContext, f: FdFacts): EntryOf<'inherit'> {
  return { kind: 'inherit', fd: f.fd, link: f.link, tty: isTty(f) && f.link.startsWith('/') };
}

/** Nothing to open; only say when the result may not be what the user expects. */
export function restoreInherit(ctx: RestoreContext, e: EntryOf<'inherit'> & { present: boolean }): void {
  if (!e.present) {
    ctx.warn(`fd ${e.fd} of process ${ctx.pid} was ${e.link} at dump; the restorer has no fd ${e.fd}, so it stays closed`);
  } else if (e.tty && !ctx.options.shellJob) {
    ctx.warn(`fd ${e.fd} of process ${ctx.pid} was the terminal ${e.link}; it gets the restorer's fd ${e.fd} instead (use --shell-job to restore a job of this shell)`);
  }
}
