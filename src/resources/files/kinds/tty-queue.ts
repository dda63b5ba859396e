/**
 * The bytes a pty pair holds in its two line disciplines, read out and put back.
 * Nothing reads a tty queue without consuming it, so the dump reads each queue and puts
 * it straight back; restore puts it into the new pair the same way. Putting back goes
 * through TIOCSTI, which hands bytes to the line discipline synchronously (a write to
 * the other side would be processed later, by a kernel worker, under whatever
 * settings hold by then):
 *
 * - output (slave → master) into the master's discipline, which is always raw;
 * - input (master → slave) into the slave's, under a "requeue" termios: the saved one
 *   with echo, signals, input translation and flow control off and the editing
 *   characters (erase, kill, word erase, reprint, literal next, end-of-file) moved to a
 *   byte the data does not use. Canonical mode stays as saved,
 *   so lines are marked again as they were: each line is read back one `read` at a
 *   time (a line ended by VEOF comes back without it and is ended by VEOF again), and
 *   the unfinished line after them is read with canonical mode briefly off.
 */
import { isErrno, readFd, setTermios, ttyInject, type Termios } from '../../../sys/index.js';
import type { InputChunk } from '../tty-schema.js';

/** termbits.h */
const I = { INLCR: 0o100, IGNCR: 0o200, ICRNL: 0o400, IUCLC: 0o1000, IXON: 0o2000, IXANY: 0o4000, IXOFF: 0o10000, ISTRIP: 0o40, INPCK: 0o20, PARMRK: 0o10, IMAXBEL: 0o20000 };
export const L = {
  ISIG: 0o1, ICANON: 0o2, XCASE: 0o4, ECHO: 0o10, ECHOE: 0o20, ECHOK: 0o40, ECHONL: 0o100, ECHOCTL: 0o1000, ECHOPRT: 0o2000, ECHOKE: 0o4000, IEXTEN: 0o100000, EXTPROC: 0o200000,
};
const V = { ERASE: 2, KILL: 3, EOF: 4, EOL: 11, REPRINT: 12, WERASE: 14, LNEXT: 15, EOL2: 16 };
const READ_MAX = 8192;
/** A line discipline holds at most 4 KiB and a pty's flip buffers 8 KiB more. */
const MAX_READS = 4096;

/** One read; undefined when it would block (or, with `eioIsEnd`, when the other side is gone). */
function readSome(fd: number, buf: Buffer, opts: { eioIsEnd: boolean }): number | undefined {
  try {
    return readFd(fd, buf);
  } catch (e) {
    if (isErrno(e, 'EAGAIN') || (opts.eioIsEnd && isErrno(e, 'EIO'))) return undefined;
    throw e;
  }
}

export const isCanonical = (t: Termios) => (t.lflag & L.ICANON) !== 0 && (t.lflag & L.EXTPROC) === 0;

/**
 * Reads everything `fd` gives until it would block (EIO: the other side is closed and
 * nothing is left), without the first `header` bytes of each read (packet mode's status byte).
 */
export function readAll(fd: number, header = 0): Buffer {
  const parts: Buffer[] = [];
  const buf = Buffer.alloc(READ_MAX);
  for (let i = 0; i < MAX_READS; i++) {
    const n = readSome(fd, buf, { eioIsEnd: true });
    if (n === undefined || n === 0) break;
    parts.push(Buffer.from(buf.subarray(Math.min(header, n), n)));
  }
  return Buffer.concat(parts);
}

/** The input queue of the slave (read through `slave`, our own non-blocking fd on it), consumed. */
export function takeInput(slave: number, t: Termios): InputChunk[] {
  if (!isCanonical(t)) {
    const raw = readAll(slave);
    return raw.length > 0 ? [{ data: raw.toString('base64'), end: 'none' }] : [];
  }
  const chunks: InputChunk[] = [];
  const ends = new Set([0x0a, t.cc[V.EOL]!, ...((t.lflag & L.IEXTEN) !== 0 ? [t.cc[V.EOL2]!] : [])]);
  const buf = Buffer.alloc(READ_MAX);
  for (let i = 0; i < MAX_READS; i++) {
    const n = readSome(slave, buf, { eioIsEnd: false });
    if (n === undefined) break;
    // One read gives one line; a line ended by VEOF comes without it (an empty one as 0 bytes).
    const line = buf.subarray(0, n);
    chunks.push({ data: line.toString('base64'), end: n > 0 && ends.has(line[n - 1]!) ? 'line' : 'eof' });
  }
  // The unfinished line is out of reach in canonical mode.
  setTermios(slave, { ...t, lflag: t.lflag & ~L.ICANON });
  try {
    const rest = readAll(slave);
    if (rest.length > 0) chunks.push({ data: rest.toString('base64'), end: 'none' });
  } finally {
    setTermios(slave, t);
  }
  return chunks;
}

/** Two byte values that occur nowhere in `data` and are none of `avoid`, or undefined. */
function unusedBytes(data: Buffer, avoid: readonly number[]): [number, number] | undefined {
  const used = new Set([...data, ...avoid, 0]);
  const free: number[] = [];
  for (let b = 1; b < 256 && free.length < 2; b++) if (!used.has(b)) free.push(b);
  return free.length === 2 ? [free[0]!, free[1]!] : undefined;
}

/**
 * Puts input chunks back into the slave's line discipline, through `slave`, then sets
 * termios `t` (the saved one). Returns a reason when the data cannot be put back faithfully.
 */
export function putInput(slave: number, args: { t: Termios; chunks: readonly InputChunk[] }): string | undefined {
  const { t, chunks } = args;
  const all = Buffer.concat(chunks.map((c) => Buffer.from(c.data, 'base64')));
  const canon = isCanonical(t);
  const ends = [0x0a, t.cc[V.EOL]!, t.cc[V.EOL2]!];
  // One byte for the editing characters (they must not match the data), another for VEOF (erase is checked first).
  const spare: [number, number] | undefined = canon ? unusedBytes(all, ends) : [0, 0];
  if (spare === undefined) return 'its unread input uses nearly every byte value, so none is left to stand for end-of-file while it is put back';
  const [dead, eof] = spare;
  const cc = [...t.cc];
  if (canon) {
    for (const v of [V.ERASE, V.KILL, V.WERASE, V.REPRINT, V.LNEXT]) cc[v] = dead;
    cc[V.EOF] = eof;
  }
  const requeue: Termios = {
    ...t,
    iflag: t.iflag & ~(I.INLCR | I.IGNCR | I.ICRNL | I.IUCLC | I.IXON | I.IXANY | I.IXOFF | I.ISTRIP | I.INPCK | I.PARMRK | I.IMAXBEL),
    // IEXTEN stays: it decides whether VEOL2 ends a line (its other characters are moved to the spare byte).
    lflag: t.lflag & ~(L.ISIG | L.XCASE | L.ECHO | L.ECHOE | L.ECHOK | L.ECHONL | L.ECHOCTL | L.ECHOPRT | L.ECHOKE),
    cc,
  };
  setTermios(slave, requeue);
  try {
    for (const c of chunks) {
      ttyInject(slave, Buffer.from(c.data, 'base64'));
      if (c.end === 'eof') ttyInject(slave, Buffer.of(eof));
    }
  } finally {
    setTermios(slave, t);
  }
  return undefined;
}
