/**
 * Standard descriptors that cannot be reopened (a pipe from the shell, a socket, the
 * terminal): the restored process gets the restorer's own fd at that number (0-2),
 * which is what "run it again under this shell" means. It takes it from ckpt by an
 * injected pidfd_getfd: the blank process holds none of ckpt's fds, so that a killed
 * restore leaves nothing that keeps ckpt's stdout open.
 */
import { fstatSync } from 'node:fs';
import type { FdFacts } from '../facts.js';
import type { EntryOf } from '../schema.js';
import type { KindDumpContext, KindRestoreContext } from './kind.js';

/** Terminal character devices by major number: tty/ttyS (4), /dev/tty, console, ptmx (5), Unix98 pty slaves (136-143), BSD ptys (2, 3). */
const TTY_MAJORS = new Set([2, 3, 4, 5, 136, 137, 138, 139, 140, 141, 142, 143]);
const TTY_PATH = /^\/dev\/(pts\/|tty|console$|ptmx$)/;

export function isTty(f: Pick<FdFacts, 'link' | 'stat'>): boolean {
  return TTY_MAJORS.has(Number((BigInt(f.stat.rdev) >> 8n) & 0xfffn)) || TTY_PATH.test(f.link);
}

export function dumpInherit(_dc: KindDumpContext, f: FdFacts): EntryOf<'inherit'> {
  return { kind: 'inherit', fd: f.fd, link: f.link, tty: isTty(f) && f.link.startsWith('/') };
}

/** Whether ckpt itself has fd `fd` open (only 0-2 are ever handed on). */
function restorerHas(fd: number): boolean {
  if (fd > 2) return false;
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/** Our fd at that number, or none; says so when the result may not be what the user expects. */
export function restoreInherit(rc: KindRestoreContext, e: EntryOf<'inherit'>): void {
  const ctx = rc.ctx;
  if (!restorerHas(e.fd)) {
    rc.target.closeAll([e.fd]); // the blank's /dev/null, if the number is open
    ctx.warn(`fd ${e.fd} of process ${ctx.pid} was ${e.link} at dump; the restorer has no fd ${e.fd}, so it stays closed`);
    return;
  }
  rc.target.install(e.fd, { fd: e.fd, cloexec: false });
  if (e.tty && !ctx.options.shellJob) {
    ctx.warn(`fd ${e.fd} of process ${ctx.pid} was the terminal ${e.link}; it gets the restorer's fd ${e.fd} instead (use --shell-job to restore a job of this shell)`);
  }
}
