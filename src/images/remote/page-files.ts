/**
 * Pages read from a page server on demand (issue 14, CRIU's `lazy-pages --page-server`):
 * the server side answers READ {name, pos, len} with the bytes of one of its files; the
 * restoring side mirrors a set's metadata into its own directory (every file whole but
 * the page files, which are made sparse at their size with only their header page) and
 * fetches a page file's bytes into that file the first time something reads them
 * (`RemotePages.ensure`). So every reader of the set works on local files as before, and a
 * byte is in the local file before any process sees it (`restore --check` compares
 * with it). The channel is the page server's (channel.ts: the same token, a MAC per
 * frame); the page files' own chunk CRCs are not checked on this path (the MAC covers
 * the transfer).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { CkptError } from '../../common/errors.js';
import { closeQuietly, preadFull, tryIo, writeAll } from '../io.js';
import { INVENTORY_FILE, INVENTORY_KIND, Inventory } from '../layout.js';
import { decodePayload, readMetaFile } from '../meta-file.js';
import { PAGE_SIZE } from '../pagemap.js';
import { type Channel, FRAME, type Frame, MAX_PAYLOAD } from './channel.js';

/** A file the server serves: a plain name, or a set's directory and a plain name (migrate's rounds: `final/pages-7.img`). */
const SERVED_NAME = /^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,127}\/)?[A-Za-z0-9][A-Za-z0-9._-]{0,135}$/;
/** One READ's bytes at most: 4 MiB (a frame may carry 8). */
export const READ_MAX = 4 * 1024 * 1024;

export const ReadRequest = z.object({
  name: z.string().regex(SERVED_NAME).refine((n) => !n.split('/').includes('..'), 'not a plain name'),
  pos: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  len: z.number().int().positive().max(READ_MAX),
});

/** Answers READ frames with the bytes of files under `root` (opened once each, kept open until close). */
export class FileServer {
  private readonly fds = new Map<string, number>();
  private readonly buf = Buffer.allocUnsafe(READ_MAX);
  /** Bytes served so far. */
  served = 0;

  constructor(private readonly root: string) {}

  /** Answers one READ frame on `ch` with the bytes asked for, or ERROR (a name not served, a read that failed). */
  answer(ch: Channel, f: Frame): void {
    let n: number;
    try {
      const req = ReadRequest.parse(JSON.parse(f.payload.toString('utf8')));
      let fd = this.fds.get(req.name);
      if (fd === undefined) {
        const file = path.join(this.root, req.name);
        fd = tryIo(`open ${file}`, () => fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW));
        this.fds.set(req.name, fd);
      }
      const at = fd;
      n = tryIo(`read ${req.name}`, () => preadFull(at, this.buf.subarray(0, req.len), req.pos));
    } catch (e) {
      ch.send(FRAME.ERROR, Buffer.from((e as Error).message.slice(0, 1000)));
      return;
    }
    ch.send(FRAME.OK, this.buf.subarray(0, n));
    this.served += n;
  }

  close(): void {
    for (const fd of this.fds.values()) closeQuietly(fd);
    this.fds.clear();
  }
}

/**
 * Answers READs with `files` until the client ends the session: 'done' when it said END
 * (it has every page it needs: the server may stop), 'closed' when the connection ended
 * otherwise (a restore that handed over to its lazy-pages server).
 */
export function servePageFiles(ch: Channel, args: { files: FileServer; log: (line: string) => void }): 'done' | 'closed' {
  const from = args.files.served;
  const served = () => `${args.files.served - from} bytes served`;
  for (;;) {
    let f;
    try {
      f = ch.receive();
    } catch (e) {
      args.log(`session with ${ch.peer} ended: ${(e as Error).message} (${served()})`);
      return 'closed';
    }
    if (f.type === FRAME.END) {
      args.log(`session with ${ch.peer} done: it has every page (${served()})`);
      return 'done';
    }
    if (f.type === FRAME.READ) args.files.answer(ch, f);
    else ch.send(FRAME.ERROR, Buffer.from(`unexpected frame ${f.type}: this server serves page files (page-server --lazy-pages)`));
  }
}

/** Where a lazy restore's pages come from: a page server serving the set's files (`page-server --lazy-pages`). */
export interface PageSourceAddress {
  address: string;
  port: number;
  authToken: string;
  /** The set's directory under the server's (default: the server's directory itself). */
  dir?: string;
}

/** A local page file whose bytes are on the server, fetched as they are needed. */
interface Backed {
  /** Its name on the server. */
  name: string;
  fd: number;
  /** One byte per page: 1 once fetched. */
  have: Uint8Array;
}

/**
 * The restoring side: one connection (made when first needed, so that a restore and its
 * lazy-pages server, which takes over, each hold one in turn), and the local files
 * backed by the server.
 */
export class RemotePages {
  private ch: Channel | undefined;
  private readonly files = new Map<string, Backed>();
  private readonly buf = Buffer.allocUnsafe(READ_MAX);
  /** A connection that is not ours to close (ckpt migrate's), used first. */
  private borrowed: Channel | undefined;
  /** Bytes fetched so far. */
  fetched = 0;

  /**
   * `files`: local path → the name on the server, of every page file to fetch from it.
   * `connect` makes a connection when there is none (or the one in use failed: one new
   * try per read); `borrowed`, a connection to use first and never close.
   */
  constructor(private readonly connect: () => Channel, files: Readonly<Record<string, string>>, opts: { borrowed?: Channel } = {}) {
    this.borrowed = opts.borrowed;
    this.ch = opts.borrowed;
    for (const [local, name] of Object.entries(files)) {
      const fd = tryIo(`open ${local}`, () => fs.openSync(local, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW));
      const size = fs.fstatSync(fd).size;
      const have = new Uint8Array(Math.ceil(size / PAGE_SIZE));
      // The header page came with the mirror.
      if (have.length > 0) have[0] = 1;
      this.files.set(local, { name, fd, have });
    }
  }

  /** local path → name on the server (for another process to open its own RemotePages). */
  get backed(): Record<string, string> {
    return Object.fromEntries([...this.files].map(([local, b]) => [local, b.name]));
  }

  /** Makes sure bytes [pos, pos+len) of local file `file` are in it (fetched from the server if they were not). */
  ensure(file: string, pos: number, len: number): void {
    const b = this.files.get(file);
    if (!b || len <= 0) return;
    const first = Math.floor(pos / PAGE_SIZE);
    const end = Math.min(b.have.length, Math.ceil((pos + len) / PAGE_SIZE));
    for (let p = first; p < end;) {
      if (b.have[p]) {
        p++;
        continue;
      }
      let q = p;
      while (q < end && !b.have[q] && (q - p + 1) * PAGE_SIZE <= READ_MAX) q++;
      this.fetch(b, { pos: p * PAGE_SIZE, len: (q - p) * PAGE_SIZE });
      b.have.fill(1, p, q);
      p = q;
    }
  }

  /** ensure() for page runs of `file` (a restore's page source). */
  ensureRuns(file: string, runs: readonly { fileOffset: bigint | number; nrPages: number }[]): void {
    for (const r of runs) this.ensure(file, Number(r.fileOffset), r.nrPages * PAGE_SIZE);
  }

  /** Tells the server every page is in (it may stop), then closes. Never throws. */
  done(): void {
    try {
      this.channel().send(FRAME.END);
    } catch {
      // the server is gone: nothing more to tell it
    }
    this.close();
  }

  close(): void {
    if (this.ch !== this.borrowed) this.ch?.close();
    this.ch = undefined;
    this.borrowed = undefined;
    for (const b of this.files.values()) closeQuietly(b.fd);
    this.files.clear();
  }

  private channel(): Channel {
    this.ch ??= this.connect();
    return this.ch;
  }

  private fetch(b: Backed, at: { pos: number; len: number }): void {
    const read = () => readRemote(this.channel(), { name: b.name, pos: at.pos, into: this.buf.subarray(0, at.len) });
    let data: Buffer;
    try {
      data = read();
    } catch (e) {
      // A connection that broke (the borrowed one, or one the server dropped as idle): one new one.
      if (!this.ch || (e instanceof CkptError && / says: /.test(e.message))) throw e;
      if (this.ch !== this.borrowed) this.ch.close();
      this.ch = undefined;
      this.borrowed = undefined;
      data = read();
    }
    // The end of the file may be short of a page boundary only if the file is: it is not (page files are whole pages).
    tryIo(`write ${b.name}`, () => writeAll(b.fd, data, at.pos));
    this.fetched += data.length;
  }
}

/** One READ: the bytes the server has at `pos` (fewer at its end of file). */
function readRemote(ch: Channel, args: { name: string; pos: number; into: Buffer }): Buffer {
  ch.sendJson(FRAME.READ, { name: args.name, pos: args.pos, len: args.into.length });
  const f = ch.receive(args.into);
  if (f.type === FRAME.ERROR) throw new CkptError('NETWORK', `Cannot read ${args.name} from ${ch.peer}: it says: ${f.payload.toString('utf8').slice(0, 1000)}`);
  if (f.type !== FRAME.OK) throw new CkptError('NETWORK', `Cannot read ${args.name} from ${ch.peer}: unexpected frame ${f.type}`);
  if (f.payload.length > args.into.length) throw new CkptError('NETWORK', `Cannot read ${args.name} from ${ch.peer}: it sent ${f.payload.length} bytes for ${args.into.length}`);
  return f.payload;
}

/** A whole file from the server, in READ_MAX pieces, up to `max` bytes. */
function readWhole(ch: Channel, args: { name: string; max: number }): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  for (;;) {
    const got = Buffer.from(readRemote(ch, { name: args.name, pos: total, into: Buffer.allocUnsafe(READ_MAX) }));
    parts.push(got);
    total += got.length;
    if (total > args.max) throw new CkptError('NETWORK', `Cannot read ${args.name} from ${ch.peer}: larger than ${args.max} bytes`);
    if (got.length < READ_MAX) return Buffer.concat(parts);
  }
}

/**
 * Mirrors the set `dir` of the server into local directory `local` (new or empty; made
 * 0700): every file whole but the page files, made sparse at their size with their
 * header page; the inventory last, so a mirror cut short is no set. Returns local path →
 * name on the server of each page file.
 */
export function mirrorSet(ch: Channel, args: { local: string; dir?: string }): Record<string, string> {
  const local = args.local;
  fs.mkdirSync(local, { recursive: true, mode: 0o700 });
  if (fs.readdirSync(local).length > 0) throw new CkptError('USAGE', `Cannot restore from ${ch.peer} into ${local}: it is not empty (its images are fetched there)`);
  const remote = (name: string) => (args.dir ? `${args.dir}/${name}` : name);
  const inventoryBytes = readWhole(ch, { name: remote(INVENTORY_FILE), max: MAX_PAYLOAD });
  const part = path.join(local, `${INVENTORY_FILE}.part`);
  fs.writeFileSync(part, inventoryBytes, { mode: 0o600, flag: 'wx' });
  const inventory = decodePayload(part, Inventory, readMetaFile(part, INVENTORY_KIND).payload);
  const backed: Record<string, string> = {};
  for (const e of inventory.files) {
    const file = path.join(local, e.name);
    const fd = tryIo(`create ${file}`, () => fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600));
    try {
      if (e.type === 'pages') {
        fs.ftruncateSync(fd, e.size);
        const head = readRemote(ch, { name: remote(e.name), pos: 0, into: Buffer.allocUnsafe(Math.min(PAGE_SIZE, e.size)) });
        writeAll(fd, head, 0);
        backed[file] = remote(e.name);
      } else {
        writeAll(fd, readWhole(ch, { name: remote(e.name), max: e.size }), 0);
      }
    } finally {
      closeQuietly(fd);
    }
  }
  fs.renameSync(part, path.join(local, INVENTORY_FILE));
  return backed;
}
