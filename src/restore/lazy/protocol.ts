/**
 * What a lazy restore tells its lazy-pages server and guard, and what the server tells
 * the guard: JSON lines on a unix stream socket (fd 0 of each; fd 3 between server and
 * guard), a userfaultfd passed with the line that names it (SCM_RIGHTS). The sender
 * never waits for the receiver: the kernel queues lines and fds until the receiver,
 * still starting up perhaps, reads them.
 */
import { z } from 'zod';
import { isErrno, MSG, SOCK, socketpair, SO, SOL_SOCKET } from '../../sys/index.js';
import { setsockoptInt } from '../../sys/ioctl.js';
import { recvmsgControl, sendmsgRights } from '../../sys/unix-socket.js';

export type Log = (line: string) => void;

const Hex = z.string().regex(/^0x[0-9a-f]{1,16}$/);

/**
 * A process whose areas are to be served; its userfaultfd (registered by ckpt in MISSING
 * mode with the fork/remap/remove/unmap events) comes with this line.
 */
export const AddRequest = z.object({
  op: z.literal('add'),
  nfds: z.literal(1),
  pid: z.number().int().positive(),
  /** The page file's id in the image set (ImageReader.pages). */
  pages: z.union([z.string().max(64), z.number().int().min(0)]),
  /** [start, end) of each lazily restored area. */
  areas: z.array(z.tuple([Hex, Hex])).max(1_000_000),
});
export type AddRequest = z.infer<typeof AddRequest>;

/**
 * ckpt served the faults from the tree's let-go until the server was up: what is left,
 * per process (the userfaultfds of those forked meanwhile come with the line, in order).
 */
export const HandedOver = z.object({
  targets: z.array(z.object({
    pid: z.number().int(),
    /** Forked after the restore, from this pid (-1: unknown). */
    forked: z.number().int().optional(),
    pages: z.union([z.string().max(64), z.number().int().min(0)]),
    pending: z.array(z.tuple([Hex, Hex, Hex])),
    retry: z.array(Hex),
  })),
});
export type HandedOver = z.infer<typeof HandedOver>;

/** `lazy-pages serve DIR REMOTE`: the page server the page files are on, and which local page files it backs (local path → its name there). */
export const RemoteSource = z.object({
  address: z.string().max(64),
  port: z.number().int().min(1).max(65535),
  authToken: z.string().min(1).max(4096),
  dir: z.string().max(4096).optional(),
  files: z.record(z.string().max(4096), z.string().max(300)),
});

const MSG_CMSG_CLOEXEC = 0x40000000;
/** Lines ckpt may queue before the server reads any: every process's areas (bytes). */
const SEND_BUFFER = 16 * 1024 * 1024;

/** A connected pair of unix stream sockets (close-on-exec) whose first end may queue SEND_BUFFER bytes. */
export function channel(): [number, number] {
  const pair = socketpair(SOCK.STREAM);
  try {
    setsockoptInt(pair[0], { level: SOL_SOCKET, name: SO.SNDBUFFORCE, value: SEND_BUFFER });
  } catch {
    // without CAP_NET_ADMIN: the default buffer; a big tree then waits for the server to read
  }
  return pair;
}

/** Sends one line, with `fds` attached to its bytes (the line says how many: `nfds`). */
export function sendLine(sock: number, args: { line: object; fds?: readonly number[] }): void {
  const data = Buffer.from(`${JSON.stringify({ ...args.line, nfds: args.fds?.length ?? 0 })}\n`);
  let off = 0;
  while (off < data.length) {
    off += sendmsgRights(sock, { data: data.subarray(off), rights: off === 0 ? (args.fds ?? []) : [], flags: MSG.NOSIGNAL });
  }
}

/** A line read, and the fds that came with it (with an add line: its userfaultfd). */
export interface Line {
  msg: { op: string } & Record<string, unknown>;
  fds: number[];
}

/**
 * Whole lines from a socket that poll(2) said is readable, each with the fds received
 * with it. Fds ride on the first bytes of their line, so by the time a line is whole its
 * fds are in: they are handed out in order, to the line being completed.
 */
export class LineReader {
  private rest = '';
  private fds: number[] = [];
  private readonly buf = Buffer.alloc(256 * 1024);

  constructor(private readonly fd: number) {}

  /** One read: the complete lines it finished, and whether the writer closed its end. */
  read(): { lines: Line[]; eof: boolean } {
    let r;
    try {
      r = recvmsgControl(this.fd, this.buf, MSG.DONTWAIT | MSG_CMSG_CLOEXEC);
    } catch (e) {
      if (isErrno(e, 'EAGAIN')) return { lines: [], eof: false };
      throw e;
    }
    const lines: Line[] = [];
    this.fds.push(...r.rights);
    if (r.n === 0) return { lines, eof: true };
    this.rest += this.buf.subarray(0, r.n).toString('utf8');
    const parts = this.rest.split('\n');
    this.rest = parts.pop()!;
    for (const p of parts) {
      if (p.length === 0) continue;
      const msg = JSON.parse(p) as Line['msg'];
      const n = typeof msg['nfds'] === 'number' ? msg['nfds'] : 0;
      lines.push({ msg, fds: this.fds.splice(0, n) });
    }
    return { lines, eof: false };
  }
}
