/**
 * Terminal ioctls in this process (asm-generic/ioctls.h, termbits.h): struct termios2
 * and struct winsize as small codecs, the pty master's index, lock and packet mode,
 * exclusive mode, and TIOCSTI, which hands bytes to a tty's line discipline
 * synchronously as if they had come from the device (CAP_SYS_ADMIN, or
 * dev.tty.legacy_tiocsti=1).
 */
import { call } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';

export const TTY = {
  TCGETS2: 0x802c542a,
  TCSETS2: 0x402c542b,
  TIOCSCTTY: 0x540e,
  TIOCGPGRP: 0x540f,
  TIOCSPGRP: 0x5410,
  TIOCSTI: 0x5412,
  TIOCGWINSZ: 0x5413,
  TIOCSWINSZ: 0x5414,
  TIOCEXCL: 0x540c,
  TIOCPKT: 0x5420,
  TIOCGETD: 0x5424,
  TIOCGSID: 0x5429,
  TIOCGPTN: 0x80045430,
  TIOCSPTLCK: 0x40045431,
  TIOCGPKT: 0x80045438,
  TIOCGPTLCK: 0x80045439,
  TIOCGEXCL: 0x80045440,
  TIOCGLCKTRMIOS: 0x5456,
  TIOCSLCKTRMIOS: 0x5457,
} as const;

const NAMES = new Map<number, string>(Object.entries(TTY).map(([k, v]) => [v, k]));

/** struct termios2: four flag words, the line discipline byte, 19 control chars, two speeds. */
export interface Termios {
  iflag: number;
  oflag: number;
  cflag: number;
  lflag: number;
  line: number;
  cc: number[];
  ispeed: number;
  ospeed: number;
}

export const NCCS = 19;
const TERMIOS2_SIZE = 44;

export function decodeTermios(b: Buffer): Termios {
  return {
    iflag: b.readUInt32LE(0),
    oflag: b.readUInt32LE(4),
    cflag: b.readUInt32LE(8),
    lflag: b.readUInt32LE(12),
    line: b.readUInt8(16),
    cc: [...b.subarray(17, 17 + NCCS)],
    ispeed: b.readUInt32LE(36),
    ospeed: b.readUInt32LE(40),
  };
}

export function encodeTermios(t: Termios): Buffer {
  const b = Buffer.alloc(TERMIOS2_SIZE);
  b.writeUInt32LE(t.iflag, 0);
  b.writeUInt32LE(t.oflag, 4);
  b.writeUInt32LE(t.cflag, 8);
  b.writeUInt32LE(t.lflag, 12);
  b.writeUInt8(t.line, 16);
  Buffer.from(t.cc).copy(b, 17, 0, NCCS);
  b.writeUInt32LE(t.ispeed, 36);
  b.writeUInt32LE(t.ospeed, 40);
  return b;
}

function ioctlBuf(fd: number, req: number, buf: Buffer): Buffer {
  call(NR.ioctl, [fd, req, addressOf(buf)], { name: `ioctl(${NAMES.get(req) ?? `0x${req.toString(16)}`})` });
  return buf;
}

export function getTermios(fd: number): Termios {
  return decodeTermios(ioctlBuf(fd, TTY.TCGETS2, Buffer.alloc(TERMIOS2_SIZE)));
}

/** TCSETS2: takes effect at once, nothing is flushed or waited for. */
export function setTermios(fd: number, t: Termios): void {
  ioctlBuf(fd, TTY.TCSETS2, encodeTermios(t));
}

/**
 * The termios lock of a tty (TIOCGLCKTRMIOS; a pty master's answers for its slave): set
 * bits and non-zero control characters are fields no TCSETS* may change, even root's.
 * Read into a termios2-sized buffer (the kernel writes its struct termios, the first
 * 36 bytes); setting it needs CAP_SYS_ADMIN.
 */
export function getLockedTermios(fd: number): Termios {
  return decodeTermios(ioctlBuf(fd, TTY.TIOCGLCKTRMIOS, Buffer.alloc(TERMIOS2_SIZE)));
}

export function setLockedTermios(fd: number, t: Termios): void {
  ioctlBuf(fd, TTY.TIOCSLCKTRMIOS, encodeTermios(t));
}

/** Whether a termios lock locks anything. */
export function locksAnything(t: Termios): boolean {
  return t.iflag !== 0 || t.oflag !== 0 || t.cflag !== 0 || t.lflag !== 0 || t.line !== 0 || t.cc.some((c) => c !== 0) || t.ispeed !== 0 || t.ospeed !== 0;
}

export interface Winsize {
  row: number;
  col: number;
  xpixel: number;
  ypixel: number;
}

export function getWinsize(fd: number): Winsize {
  const b = ioctlBuf(fd, TTY.TIOCGWINSZ, Buffer.alloc(8));
  return { row: b.readUInt16LE(0), col: b.readUInt16LE(2), xpixel: b.readUInt16LE(4), ypixel: b.readUInt16LE(6) };
}

export function setWinsize(fd: number, w: Winsize): void {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(w.row, 0);
  b.writeUInt16LE(w.col, 2);
  b.writeUInt16LE(w.xpixel, 4);
  b.writeUInt16LE(w.ypixel, 6);
  ioctlBuf(fd, TTY.TIOCSWINSZ, b);
}

/** An int-valued "get" ioctl (TIOCGPTN, TIOCGPKT, TIOCGPTLCK, TIOCGEXCL, TIOCGETD). */
export function ttyGetInt(fd: number, req: number): number {
  return ioctlBuf(fd, req, Buffer.alloc(4)).readInt32LE(0);
}

/** An ioctl that takes a pointer to an int (TIOCSPTLCK, TIOCPKT). */
export function ttySetInt(fd: number, req: number, v: number): void {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v);
  ioctlBuf(fd, req, b);
}

/** An ioctl whose argument is a plain value or none (TIOCEXCL, TIOCSCTTY). */
export function ttyCall(fd: number, req: number, arg = 0): void {
  call(NR.ioctl, [fd, req, arg], { name: `ioctl(0x${req.toString(16)})` });
}

export const POLL = { IN: 1, PRI: 2 } as const;
const NR_POLL = 7;

/** poll(2) of one fd without waiting: the events it has now. */
export function pollNow(fd: number, events: number): number {
  const b = Buffer.alloc(8);
  b.writeInt32LE(fd, 0);
  b.writeInt16LE(events, 4);
  call(NR_POLL, [addressOf(b), 1, 0], { name: 'poll' });
  return b.readInt16LE(6);
}

/** Hands `data` to the line discipline of the tty behind `fd`, byte by byte (TIOCSTI). */
export function ttyInject(fd: number, data: Uint8Array): void {
  const b = Buffer.alloc(1);
  for (const byte of data) {
    b[0] = byte;
    ioctlBuf(fd, TTY.TIOCSTI, b);
  }
}
