/**
 * What a lazy restore tells its lazy-pages server and guard: one JSON line per request
 * on their stdin, one line of answer ("ok" or "error MESSAGE") on their stdout.
 */
import { readSync } from 'node:fs';
import { z } from 'zod';

export type Log = (line: string) => void;

const Hex = z.string().regex(/^0x[0-9a-f]{1,16}$/);

/** A process whose areas are to be served: its userfaultfd is fd `fd` of process `from` (ckpt). */
export const AddRequest = z.object({
  op: z.literal('add'),
  pid: z.number().int().positive(),
  from: z.number().int().positive(),
  fd: z.number().int().min(0),
  /** The page file's id in the image set (ImageReader.pages). */
  pages: z.union([z.string().max(64), z.number().int().min(0)]),
  /** [start, end) of each lazily restored area. */
  areas: z.array(z.tuple([Hex, Hex])).max(1_000_000),
});
export type AddRequest = z.infer<typeof AddRequest>;

/** Whole lines from an fd that poll(2) said is readable. */
export class LineReader {
  private rest = '';
  private readonly buf = Buffer.alloc(64 * 1024);

  constructor(private readonly fd: number) {}

  /** One read: the complete lines it finished, and whether the writer closed its end. */
  read(): { lines: string[]; eof: boolean } {
    let n: number;
    try {
      n = readSync(this.fd, this.buf, 0, this.buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return { lines: [], eof: false };
      throw e;
    }
    if (n === 0) return { lines: this.rest ? [this.rest] : [], eof: true };
    this.rest += this.buf.subarray(0, n).toString('utf8');
    const parts = this.rest.split('\n');
    this.rest = parts.pop()!;
    return { lines: parts.filter((l) => l.length > 0), eof: false };
  }
}
