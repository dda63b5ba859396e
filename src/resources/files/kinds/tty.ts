/**
 * Terminal fds. A pty pair is part of the dump when a process of the tree holds its
 * master: the master and every slave fd (opened from /dev/ptmx's peer or by path)
 * are saved with the pair's state (tty-pair.ts) and restored onto one new pair with
 * the same index. /dev/tty is reopened by the process once its controlling terminal is
 * back. A slave whose master lives outside the tree is only possible on a standard fd,
 * inherited from the restorer under --shell-job (inherit.ts); the system console,
 * virtual consoles and serial lines are refused with their name.
 */
import { readFdinfo, readStat } from '../../../proc/index.js';
import { forEachFdLink } from '../../sharing/descriptions.js';
import { closeFd, F, fcntl, getTermios, isErrno } from '../../../sys/index.js';
import { grabFd } from '../../transfer.js';
import type { DumpContext } from '../../types.js';
import { DELETED_SUFFIX, isChr, major, minor, type FdFacts, type MasterRef } from '../facts.js';
import { O } from '../flags.js';
import type { EntryOf } from '../schema.js';
import { dumpError, restoreError, type DumpFn, type KindDumpContext, type LocalReopener, type TargetReopener } from './kind.js';
import { localPair, openSlave, readPty } from './tty-pair.js';
import type { PtyState, TermiosState } from '../tty-schema.js';

const PTMX_LINK = /^\/dev\/(pts\/)?ptmx$/;
export const isPtyMaster = (f: Pick<FdFacts, 'link' | 'stat'>) => isChr(f.stat) && PTMX_LINK.test(f.link);
/** Unix98 slaves: majors 136-143 (UNIX98_PTY_SLAVE_MAJOR and the ones after it). */
export const ptyIndexOf = (rdev: number): number | undefined => {
  const maj = major(rdev);
  return maj >= 136 && maj <= 143 ? (maj - 136) * 256 + minor(rdev) : undefined;
};
export const isPtySlave = (f: Pick<FdFacts, 'stat'>) => isChr(f.stat) && ptyIndexOf(f.stat.rdev) !== undefined;
/** The slave of a pair whose master the tree holds. */
export const isTreeSlave = (f: FdFacts) => isPtySlave(f) && (f.ptyMasters?.has(ptyIndexOf(f.stat.rdev)!) ?? false);
export const isDevTty = (f: Pick<FdFacts, 'stat'>) => isChr(f.stat) && major(f.stat.rdev) === 5 && minor(f.stat.rdev) === 0;

/** Why a terminal that is no pty of the tree cannot be saved. */
export function otherTerminal(f: FdFacts): string {
  const maj = major(f.stat.rdev);
  const min = minor(f.stat.rdev);
  if (maj === 5 && min === 1) return `it is the system console (${f.link}), which cannot be checkpointed`;
  if (maj === 4 && min < 64) return `it is a virtual console (${f.link}), which cannot be checkpointed`;
  if (maj === 4) return `it is a serial line (${f.link}), which cannot be checkpointed`;
  // devpts removes a slave's node when its master is closed: the pair is hung up, and no new pair can be made hung up.
  if (isPtySlave(f) && f.link.endsWith(DELETED_SUFFIX)) return `its pty ${f.link} is hung up (its master was closed); hung-up terminals are not supported`;
  if (isPtySlave(f)) return `its pty ${f.link} has its master outside the dumped tree (only fds 0-2 can take the restorer's terminal, with --shell-job)`;
  return `terminals of this kind (${f.link}, device ${maj}:${min}) are not supported`;
}

export const refuseTerminal: DumpFn = (_dc, f) => {
  throw dumpError(f, { code: 'UNSUPPORTED', reason: otherTerminal(f) });
};

/** The pty index of process `pid`'s controlling terminal, if it has a pty as one. */
export function cttyIndex(pid: number): number | undefined {
  const nr = readStat(pid).ttyNr;
  return nr === 0 ? undefined : ptyIndexOf(nr);
}

/** Whether the process's controlling terminal is a pty of the tree. */
export const cttyInTree = (f: FdFacts) => {
  const index = cttyIndex(f.pid);
  return index !== undefined && (f.ptyMasters?.has(index) ?? false);
};

/** The termios of the terminal behind fd `f` (one the tree inherits), if it has N_TTY's. */
export function terminalSettings(f: Pick<FdFacts, 'pid' | 'fd'>): TermiosState | undefined {
  const local = grabFd(f.pid, f.fd);
  try {
    const t = getTermios(local);
    return t.line === 0 ? { ...t, line: 0 } : undefined;
  } catch (e) {
    if (isErrno(e, 'ENOTTY') || isErrno(e, 'EIO')) return undefined; // not a terminal after all, or hung up
    throw e;
  } finally {
    closeFd(local);
  }
}

const mastersByTree = new WeakMap<object, Map<number, MasterRef>>();

/** Every pty master held by the dumped processes, by index (from fdinfo's tty-index). */
export function ptyMastersOf(ctx: Pick<DumpContext, 'pid' | 'treeDescriptions'>): ReadonlyMap<number, MasterRef> {
  const key = ctx.treeDescriptions ?? undefined;
  const cached = key ? mastersByTree.get(key) : undefined;
  if (cached) return cached;
  const found = new Map<number, MasterRef>();
  forEachFdLink(key ? key.keys() : [ctx.pid], ({ pid, fd, link }) => {
    if (!PTMX_LINK.test(link)) return;
    const index = Number(readFdinfo(pid, fd).extra['tty-index']);
    if (Number.isInteger(index) && !found.has(index)) found.set(index, { pid, fd });
  });
  if (key) mastersByTree.set(key, found);
  return found;
}

/** The state of pair `index` read through master `ref` (saved once per process, then reused). */
function ptyOf(dc: KindDumpContext, f: FdFacts, ref: MasterRef): PtyState {
  const local = grabFd(ref.pid, ref.fd);
  try {
    const got = readPty(local);
    if (typeof got === 'string') throw dumpError(f, { code: 'UNSUPPORTED', reason: `its terminal ${f.link}: ${got}` });
    return got;
  } finally {
    closeFd(local);
  }
}

export function dumpPtyMaster(dc: KindDumpContext, f: FdFacts): EntryOf<'tty'> {
  if ((f.flags & O.ACCMODE) !== O.RDWR) throw dumpError(f, { code: 'UNSUPPORTED', reason: `its pty master ${f.link} is open read- or write-only` });
  return { kind: 'tty', fd: f.fd, flags: f.flags, end: 'master', pty: ptyOf(dc, f, { pid: f.pid, fd: f.fd }) };
}

export function dumpPtySlave(dc: KindDumpContext, f: FdFacts): EntryOf<'tty'> {
  const ref = f.ptyMasters?.get(ptyIndexOf(f.stat.rdev)!);
  if (!ref) throw dumpError(f, { code: 'UNSUPPORTED', reason: otherTerminal(f) });
  return { kind: 'tty', fd: f.fd, flags: f.flags, end: 'slave', pty: ptyOf(dc, f, ref) };
}

export function dumpDevTty(_dc: KindDumpContext, f: FdFacts): EntryOf<'devtty'> {
  return { kind: 'devtty', fd: f.fd, flags: f.flags };
}

/** Masters and slaves: made in the restorer (the pair once), handed over. */
export const ptyReopener: LocalReopener<'tty'> = {
  at: 'local',
  open(rc, e) {
    const pty = e.pty;
    const pair = localPair(rc.ctx.shared, { pty, fail: (reason) => restoreError(rc, { fd: e.fd, code: 'UNSUPPORTED', reason: `pty ${pty.index}: ${reason}` }) });
    if (e.end === 'slave') return openSlave(pair, e.flags);
    // A pair has one master description: it takes this entry's status flags.
    fcntl(pair.master, F.SETFL, e.flags & (O.NONBLOCK | O.APPEND));
    return fcntl(pair.master, F.DUPFD_CLOEXEC, 0);
  },
};

/** /dev/tty, opened by the process itself: it names the process's controlling terminal, restored before its fds. */
export const devttyReopener: TargetReopener<'devtty'> = {
  at: 'target',
  open(rc, e) {
    return rc.target.open('/dev/tty', (e.flags & (O.ACCMODE | O.NONBLOCK | O.APPEND | O.CLOEXEC)) | O.NOCTTY);
  },
  seekable: () => false,
};
