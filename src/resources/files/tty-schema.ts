/**
 * The saved shape of a pseudo-terminal pair (kinds/tty.ts, tty-pair.ts): everything
 * the kernel keeps for it that a process can see, and the bytes buffered in either
 * direction. Untrusted at restore like every image field.
 */
import { z } from 'zod';

const u32 = z.number().int().min(0).max(0xffffffff);
const u16 = z.number().int().min(0).max(0xffff);
const b64 = z.string().max(1 << 20).regex(/^[A-Za-z0-9+/]*={0,2}$/);

/** struct termios2 as TCGETS2 gives it. */
export const termiosState = z.object({
  iflag: u32,
  oflag: u32,
  cflag: u32,
  lflag: u32,
  /** Only N_TTY (0) is saved; another line discipline refuses the dump. */
  line: z.literal(0),
  cc: z.array(z.number().int().min(0).max(255)).length(19),
  ispeed: u32,
  ospeed: u32,
});

/** A termios lock (TIOCGLCKTRMIOS): the same fields, any line discipline byte. */
export const termiosLock = termiosState.extend({ line: z.number().int().min(0).max(255) });

/**
 * Input the slave side has not read yet, as its line discipline holds it: in canonical
 * mode line by line ('line': ends with its terminator; 'eof': ended by VEOF, which is
 * not part of the bytes), and a last 'none' chunk not yet ended (or all of it in raw mode).
 */
export const inputChunk = z.object({ data: b64, end: z.enum(['line', 'eof', 'none']) });

/** A Unix98 pty pair: /dev/ptmx master and /dev/pts/`index`. */
export const ptyState = z.object({
  index: z.number().int().min(0).max(1 << 20),
  termios: termiosState,
  winsize: z.object({ row: u16, col: u16, xpixel: u16, ypixel: u16 }),
  /** TIOCGPKT, TIOCGPTLCK (master), TIOCGEXCL (slave). */
  packet: z.boolean(),
  locked: z.boolean(),
  exclusive: z.boolean(),
  /** The slave's node /dev/pts/N: owner and permission bits (grantpt, sshd's chown to the user, mesg). Absent in older images. */
  node: z.object({ uid: z.number().int().min(0).max(0xffffffff), gid: z.number().int().min(0).max(0xffffffff), mode: z.number().int().min(0).max(0o7777) }).optional(),
  /** TIOCGLCKTRMIOS of the slave, when it locks anything (set by a privileged program). */
  lockedTermios: termiosLock.optional(),
  /** Written by the slave side, not yet read from the master (base64). */
  output: b64,
  input: z.array(inputChunk).max(1 << 16),
});

export type TermiosState = z.output<typeof termiosState>;
export type PtyState = z.output<typeof ptyState>;
export type InputChunk = z.output<typeof inputChunk>;
