/**
 * The standard descriptors that lead outside the dumped tree (a pipe from the shell, a
 * socket, the terminal) and CRIU's `--inherit-fd fd[N]:KEY`. What goes at such an fd is
 * decided here and never silently: an fd of ckpt named by `--inherit-fd` for the
 * resource as the dump recorded it (`pipe:[123]`, `socket:[456]`, a path); for a
 * terminal under --shell-job, ckpt's own fd of the same number; otherwise the restore
 * fails naming the fd and the option. How it gets into the target is the caller's
 * (TargetFds.install: an injected pidfd_getfd of ckpt's fd), so it does not matter
 * what the blank process inherited.
 */
import { fstatSync } from 'node:fs';
import { CkptError } from '../../../common/errors.js';
import type { RestoreContext } from '../../types.js';
import { isCloexec } from '../flags.js';
import type { FdFacts } from '../facts.js';
import type { EntryOf, FdEntry, FilesState } from '../schema.js';
import type { KindDumpContext } from './kind.js';
import { terminalSettings } from './tty.js';

/** Terminal character devices by major number: tty/ttyS (4), /dev/tty, console, ptmx (5), Unix98 pty slaves (136-143), BSD ptys (2, 3). */
const TTY_MAJORS = new Set([2, 3, 4, 5, 136, 137, 138, 139, 140, 141, 142, 143]);
const TTY_PATH = /^\/dev\/(pts\/|tty|console$|ptmx$)/;

export function isTty(f: Pick<FdFacts, 'link' | 'stat'>): boolean {
  return TTY_MAJORS.has(Number((BigInt(f.stat.rdev) >> 8n) & 0xfffn)) || TTY_PATH.test(f.link);
}

export function dumpInherit(_dc: KindDumpContext, f: FdFacts): EntryOf<'inherit'> {
  const tty = isTty(f) && f.link.startsWith('/');
  const entry: EntryOf<'inherit'> = { kind: 'inherit', fd: f.fd, link: f.link, tty, cloexec: isCloexec(f.flags) };
  if (tty) {
    const termios = terminalSettings(f);
    if (termios) entry.termios = termios;
  }
  return entry;
}

/** One `--inherit-fd fd[N]:KEY`: ckpt's fd N stands for the resource KEY. */
export interface InheritFd {
  fd: number;
  key: string;
}

/** Parses CRIU's `fd[N]:KEY`; checks that ckpt has fd N open. */
export function parseInheritFd(spec: string): InheritFd {
  const m = /^fd\[(\d{1,9})\]:(.+)$/s.exec(spec);
  if (!m) throw new CkptError('USAGE', `Cannot use --inherit-fd ${spec}: expected fd[N]:RESOURCE, e.g. fd[0]:pipe:[12345]`);
  const fd = Number(m[1]);
  try {
    fstatSync(fd);
  } catch {
    throw new CkptError('USAGE', `Cannot use --inherit-fd ${spec}: ckpt has no fd ${fd} open`);
  }
  return { fd, key: m[2]! };
}

/** CRIU names files by their path without the leading slash; both forms are accepted. */
const norm = (key: string) => key.replace(/^\/+/, '');

/** The resource an entry stands for, as `--inherit-fd` names it. */
function resourceKey(e: FdEntry): string | undefined {
  switch (e.kind) {
    case 'inherit': return e.link;
    case 'pipe': return `pipe:[${e.ino}]`;
    case 'unix': return `socket:[${e.ino}]`;
    case 'dup': case 'inet': case 'memfd': case 'eventfd': case 'timerfd': case 'signalfd': case 'epoll': case 'mqueue': case 'tty': case 'devtty': case 'netlink': case 'ipsock': case 'packet':
    case 'inotify': case 'pidfd': case 'fanotify': return undefined;
    default: return e.path;
  }
}

function givenFd(e: FdEntry, inheritFds: readonly InheritFd[] | undefined): number | undefined {
  const key = resourceKey(e);
  if (key === undefined) return undefined;
  return inheritFds?.find((i) => norm(i.key) === norm(key))?.fd;
}

/** The fd of ckpt that `--inherit-fd` gives for entry `e`, if any. */
export function inheritedFd(ctx: RestoreContext, e: FdEntry): number | undefined {
  return givenFd(e, ctx.options.inheritFds);
}

/**
 * `state` without the fds that `saved` (the image's table) had replaced by
 * `--inherit-fd`, nor the pipe and socket objects only they used: what a restore
 * check compares, since those fds are by request what the user gave.
 */
export function withoutGivenFds(state: FilesState, args: { saved: FilesState; inheritFds: readonly InheritFd[] }): FilesState {
  const given = new Set(args.saved.fds.filter((e) => givenFd(e, args.inheritFds) !== undefined).map((e) => e.fd));
  if (given.size === 0) return state;
  const fds = state.fds.filter((e) => !given.has(e.fd));
  const pipeIds = new Set(fds.flatMap((e) => (e.kind === 'pipe' ? [`pipe:${e.ino}`] : e.kind === 'fifo' ? [`fifo:${e.dev}:${e.ino}`] : [])));
  const socks = new Set(fds.flatMap((e) => (e.kind === 'unix' ? [e.ino] : [])));
  // As the dump writes them: an empty list of objects is left out.
  const pipes = (state.pipes ?? []).filter((p) => pipeIds.has(p.id));
  const unix = (state.unix ?? []).filter((u) => socks.has(u.ino));
  return { fds, ...(pipes.length > 0 ? { pipes } : {}), ...(unix.length > 0 ? { unix } : {}) };
}

/**
 * The fd of ckpt that goes at a standard fd leading outside the tree (an `inherit`
 * entry not named by --inherit-fd): the terminal under --shell-job, nothing else.
 */
export function stdioSource(ctx: RestoreContext, e: EntryOf<'inherit'>): number {
  const what = `fd ${e.fd} was ${e.link}, outside the dumped tree`;
  const use = `pass --inherit-fd fd[N]:${e.link} to give it ckpt's fd N`;
  if (!e.tty) throw new CkptError('USAGE', `Cannot restore fd ${e.fd} of process ${ctx.pid}: ${what}; ${use}`);
  if (!ctx.options.shellJob) {
    throw new CkptError('USAGE', `Cannot restore fd ${e.fd} of process ${ctx.pid}: ${what} (a terminal); use --shell-job to give it ckpt's terminal, or ${use}`);
  }
  try {
    fstatSync(e.fd);
  } catch {
    throw new CkptError('USAGE', `Cannot restore fd ${e.fd} of process ${ctx.pid}: ${what}; --shell-job gives it ckpt's fd ${e.fd}, which is not open`);
  }
  return e.fd;
}
