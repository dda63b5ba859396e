/**
 * --shell-job: the restored tree becomes a job of the terminal ckpt runs on, as a shell
 * would start it. The root joins ckpt's session (it cannot lead one of its own and
 * still use this terminal) in a process group of its own, which also takes the members
 * of its old group when that group was led from outside (the old shell's); the
 * terminal gets the job's saved settings (termios), and, if ckpt is in the foreground,
 * the job becomes the terminal's foreground group, so Ctrl-C and Ctrl-Z reach it and
 * not ckpt. `handBack` gives the terminal back to ckpt's group with ckpt's settings
 * once the job is done, as a shell does.
 */
import type { Undo } from '../infect/index.js';
import { addressOf, callNum, getTermios, NR, setTermios, TTY, ttyGetInt, ttySetInt, type Termios } from '../sys/index.js';
import type { TreeEntry } from '../resources/images.js';
import type { FilesState } from '../resources/files/schema.js';
import type { CttyState } from '../resources/files/ctty.js';
import type { ProcessImages } from './images.js';

/** Session id standing for "the restorer's" (no process has it). */
const RESTORER_SESSION = 0;
const SIGTTOU = 22;
const SIG_BLOCK = 0;
const SIG_SETMASK = 2;

/** The tree as a job of ckpt's terminal: the root in ckpt's session and in a group of its own. */
export function asShellJob(entries: readonly TreeEntry[], root: ProcessImages | undefined): TreeEntry[] {
  const first = entries[0]!;
  const ctty = root?.resources.find((r) => r.module.name === 'ctty')?.state as CttyState;
  // A root that leads a session on a terminal of the tree keeps both.
  if (ctty?.leader) return [...entries];
  const pids = new Set(entries.map((e) => e.pid));
  const outsideGroup = !pids.has(first.pgid);
  return entries.map((e) => ({
    ...e,
    sid: e.sid === first.sid ? RESTORER_SESSION : e.sid,
    pgid: e.pid === first.pid || (outsideGroup && e.pgid === first.pgid) ? first.pid : e.pgid,
  }));
}

/** The first of ckpt's fds 0-2 for which `probe` works. */
function firstFd(probe: (fd: number) => unknown): number | undefined {
  for (const fd of [0, 1, 2]) {
    try {
      probe(fd);
      return fd;
    } catch {
      // not a terminal (or, for TIOCGPGRP, not ckpt's controlling one)
    }
  }
  return undefined;
}

/** The saved settings of the terminal the root had on its standard fds. */
function savedTermios(root: ProcessImages | undefined): Termios | undefined {
  const files = root?.resources.find((r) => r.module.name === 'files')?.state as FilesState | undefined;
  for (const e of files?.fds ?? []) if (e.kind === 'inherit' && e.tty && e.termios) return e.termios;
  return undefined;
}

/** Runs `fn` with SIGTTOU blocked in this thread: a background group may then set the terminal. */
function withoutSigttou(fn: () => void): void {
  const set = Buffer.alloc(8);
  set.writeBigUInt64LE(1n << BigInt(SIGTTOU - 1));
  const old = Buffer.alloc(8);
  callNum(NR.rt_sigprocmask, [SIG_BLOCK, addressOf(set), addressOf(old), 8], { name: 'rt_sigprocmask' });
  try {
    fn();
  } finally {
    callNum(NR.rt_sigprocmask, [SIG_SETMASK, addressOf(old), 0, 8], { name: 'rt_sigprocmask' });
  }
}

export interface TerminalJob {
  /** Gives the terminal back to ckpt's group and settings (after the job exited). */
  handBack(): void;
}

/**
 * Gives the terminal the job's settings and makes the job its foreground group; both
 * are undone by `undo` if the restore fails. Returns how to hand the terminal back,
 * or undefined when none of ckpt's fds 0-2 is a terminal. `warn` says why the
 * job is not put in the foreground.
 */
export function takeTerminal(args: { rootPid: number; root: ProcessImages | undefined; undo: Undo; warn: (m: string) => void }): TerminalJob | undefined {
  // The job's terminal is ckpt's controlling one, else whatever terminal its fds 0-2 give it.
  const ctty = firstFd((fd) => ttyGetInt(fd, TTY.TIOCGPGRP));
  const fd = ctty ?? firstFd(getTermios);
  if (fd === undefined) return undefined;
  const mine = getTermios(fd);
  const fg = ctty === undefined ? -1 : ttyGetInt(fd, TTY.TIOCGPGRP);
  const ours = callNum(NR.getpgid, [0], { name: 'getpgid' });
  const back = () => withoutSigttou(() => {
    if (fg === ours) ttySetInt(fd, TTY.TIOCSPGRP, ours);
    setTermios(fd, mine);
  });
  const saved = savedTermios(args.root);
  if (saved) setTermios(fd, saved);
  args.undo.push('give the terminal back', back);
  if (ctty === undefined) {
    args.warn(`the terminal on ckpt's fd ${fd} is not ckpt's controlling terminal: the restored job cannot be made its foreground group`);
  } else if (fg !== ours) {
    args.warn(`ckpt is not in the foreground of its terminal: the restored job (process group ${args.rootPid}) is left in the background`);
  } else {
    ttySetInt(fd, TTY.TIOCSPGRP, args.rootPid);
  }
  return { handBack: back };
}
