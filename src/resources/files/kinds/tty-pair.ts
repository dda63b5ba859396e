/**
 * A Unix98 pty pair as a whole: what the dump saves of it (through a copy of the
 * master taken with pidfd_getfd and a slave fd of our own, TIOCGPTPEER) and how
 * restore makes it again, once for the whole tree, in the restorer: /dev/ptmx opened
 * until it gives the saved index (devpts hands out the lowest free one; a taken index
 * is refused, since programs and the restored /proc name it), configured, and kept
 * under `pty:N:m` / `pty:N:s` for the fds, the controlling terminal and the check.
 */
import { fchmodSync, fchownSync, fstatSync, openSync } from 'node:fs';
import { CkptError } from '../../../common/errors.js';
import {
  callNum, closeFd, F, fcntl, getLockedTermios, getTermios, getWinsize, locksAnything, NR, POLL, pollNow, setLockedTermios, setTermios, setWinsize,
  ttyCall, ttyGetInt, ttyInject, ttySetInt, TTY, type Termios,
} from '../../../sys/index.js';
import type { SharedObjects } from '../../types.js';
import { O } from '../flags.js';
import type { PtyState } from '../tty-schema.js';
import { putInput, readAll, takeInput } from './tty-queue.js';

const TIOCGPTPEER = 0x5441;
const F_SETFD = 2;
const FD_CLOEXEC = 1;

/**
 * A new description of the slave of `master` (TIOCGPTPEER: no path, so no other devpts
 * can answer). The flags go into the file as given (no open(2) filtering), so
 * O_CLOEXEC, which would show in fdinfo as the fd's own flag, is set on the fd instead.
 */
function peer(master: number, flags: number): number {
  const fd = callNum(NR.ioctl, [master, TIOCGPTPEER, flags | O.NOCTTY], { name: 'ioctl(TIOCGPTPEER)' });
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
}

/** Our own non-blocking fd on the slave of `master`. */
function openPeer(master: number, locked: boolean): number {
  if (locked) ttySetInt(master, TTY.TIOCSPTLCK, 0);
  try {
    return peer(master, O.RDWR | O.NONBLOCK);
  } finally {
    if (locked) ttySetInt(master, TTY.TIOCSPTLCK, 1);
  }
}

/**
 * What the master has to read, consumed: the description is made non-blocking for the
 * read. In packet mode each read is one packet: a status byte (TIOCPKT_DATA, 0) and data.
 */
function takeOutput(master: number, packet: boolean): Buffer {
  const fl = fcntl(master, F.GETFL);
  fcntl(master, F.SETFL, fl | O.NONBLOCK);
  try {
    return readAll(master, packet ? 1 : 0);
  } finally {
    fcntl(master, F.SETFL, fl);
  }
}

/**
 * Reads the state of the pair behind `master` (a local copy of a master fd of the
 * tree) and puts its queues back. Returns a reason instead when part of it cannot be saved.
 */
export function readPty(master: number): PtyState | string {
  const index = ttyGetInt(master, TTY.TIOCGPTN);
  const packet = ttyGetInt(master, TTY.TIOCGPKT) !== 0;
  const locked = ttyGetInt(master, TTY.TIOCGPTLCK) !== 0;
  const slave = openPeer(master, locked);
  // A termios lock would silently keep the queue readers' termios changes from happening: lifted while they run.
  const lock = getLockedTermios(slave);
  const locking = locksAnything(lock);
  if (locking) setLockedTermios(slave, NO_LOCK);
  try {
    const state = readPair(master, { slave, index, packet, locked });
    return typeof state === 'string' || !locking ? state : { ...state, lockedTermios: lock };
  } finally {
    if (locking) setLockedTermios(slave, lock);
    closeFd(slave);
  }
}

const NO_LOCK: Termios = { iflag: 0, oflag: 0, cflag: 0, lflag: 0, line: 0, cc: new Array<number>(19).fill(0), ispeed: 0, ospeed: 0 };

/** readPty once the slave is open and its termios lock lifted. */
function readPair(master: number, args: { slave: number; index: number; packet: boolean; locked: boolean }): PtyState | string {
  const { slave, index, packet, locked } = args;
  const ldisc = ttyGetInt(slave, TTY.TIOCGETD);
  if (ldisc !== 0) return `its line discipline is ${ldisc}, not N_TTY`;
  // A packet-mode status (a flush, a stop) is read once and cannot be queued again: refused before any read.
  if (packet && (pollNow(master, POLL.PRI) & POLL.PRI) !== 0) return 'a packet-mode status byte waits to be read from its master';
  const t = getTermios(slave);
  const output = takeOutput(master, packet);
  const state: PtyState = {
    index,
    termios: { ...t, line: 0 },
    winsize: getWinsize(slave),
    packet,
    locked,
    exclusive: ttyGetInt(slave, TTY.TIOCGEXCL) !== 0,
    node: slaveNode(slave),
    output: output.toString('base64'),
    input: [],
  };
  // Switching termios with packet mode on would queue a flow-control status for the master.
  if (packet) ttySetInt(master, TTY.TIOCPKT, 0);
  try {
    state.input = takeInput(slave, t);
    const why = putInput(slave, { t, chunks: state.input });
    // Nothing is lost: the bytes go back raw (their line marks would be).
    if (why) ttyInject(slave, Buffer.concat(state.input.map((c) => Buffer.from(c.data, 'base64'))));
    return why ?? state;
  } finally {
    // Whatever happened, what the master had to read is back.
    ttyInject(master, output);
    if (packet) ttySetInt(master, TTY.TIOCPKT, 1);
  }
}

function slaveNode(slave: number): NonNullable<PtyState['node']> {
  const st = fstatSync(slave);
  return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
}

/** Opens /dev/ptmx until it gives pty `index`; the others opened on the way are closed. */
function openPtmxAt(index: number): number {
  const extra: number[] = [];
  try {
    for (;;) {
      const fd = openSync('/dev/ptmx', O.RDWR | O.NOCTTY | O.CLOEXEC);
      const n = ttyGetInt(fd, TTY.TIOCGPTN);
      if (n === index) return fd;
      extra.push(fd);
      if (n > index || extra.length > index) {
        throw new CkptError('UNSUPPORTED', `Cannot restore pty ${index}: /dev/pts/${index} is taken by another terminal (the restored programs name it)`);
      }
    }
  } finally {
    for (const fd of extra) closeFd(fd);
  }
}

export interface LocalPair {
  master: number;
  slave: number;
}

/**
 * The restorer's master and slave of pair `pty.index`, made and configured at the
 * first call. `reason` turns a refusal into the caller's error.
 */
export function localPair(shared: SharedObjects, args: { pty: PtyState; fail: (reason: string) => Error }): LocalPair {
  const { pty } = args;
  const mk = `pty:${pty.index}:m`;
  const sk = `pty:${pty.index}:s`;
  const known = shared.get(mk);
  if (known !== undefined) return { master: known, slave: shared.get(sk)! };
  const master = openPtmxAt(pty.index);
  shared.set(mk, master);
  ttySetInt(master, TTY.TIOCSPTLCK, 0);
  const slave = openPeer(master, false);
  shared.set(sk, slave);
  // devpts makes the node the opener's (ckpt's, or the process's with untrusted images), 0600.
  const node = slaveNode(slave);
  try {
    if (pty.node && (node.uid !== pty.node.uid || node.gid !== pty.node.gid)) fchownSync(slave, pty.node.uid, pty.node.gid);
    if (pty.node && node.mode !== pty.node.mode) fchmodSync(slave, pty.node.mode);
  } catch (e) {
    throw args.fail(`cannot give /dev/pts/${pty.index} its owner ${pty.node!.uid}:${pty.node!.gid} and mode ${pty.node!.mode.toString(8)}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const t = { ...pty.termios, cc: [...pty.termios.cc] };
  const why = putInput(slave, { t, chunks: pty.input });
  if (why) throw args.fail(why);
  ttyInject(master, Buffer.from(pty.output, 'base64'));
  setTermios(slave, t);
  // No session has it yet, so this sends no SIGWINCH.
  setWinsize(slave, pty.winsize);
  if (pty.exclusive) ttyCall(slave, TTY.TIOCEXCL);
  if (pty.packet) ttySetInt(master, TTY.TIOCPKT, 1);
  // Last: it would hold back our own termios changes above.
  if (pty.lockedTermios) setLockedTermios(slave, pty.lockedTermios);
  // Locked only once the tree is built (lockPair): opening the slave or /dev/tty needs it unlocked.
  return { master, slave };
}

/** A new open file description of the slave of a restored pair (not locked yet), with status flags `flags`. */
export function openSlave(pair: LocalPair, flags: number): number {
  return peer(pair.master, flags & (O.ACCMODE | O.NONBLOCK | O.APPEND | O.LARGEFILE));
}

/** Locks restored pair `index` (TIOCSPTLCK) once nothing more opens its slave. */
export function lockPair(shared: SharedObjects, index: number): void {
  const master = shared.get(`pty:${index}:m`);
  if (master !== undefined) ttySetInt(master, TTY.TIOCSPTLCK, 1);
}
