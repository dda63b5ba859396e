// The receiving end of image sets (the page server): files arrive over an authenticated
// Channel and are written into a directory created 0700, each file 0600 with O_EXCL
// through one directory fd (as ImageWriter does). The peer is authenticated but still
// untrusted: every name, id, length and count it sends is checked, and the inventory it
// commits must list exactly the files that arrived, with their sizes and CRCs. A set not
// committed (an abort, a dropped connection, a bad frame) is removed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { CkptError } from '../../common/errors.js';
import { crc32 } from '../crc32.js';
import { checkVersion } from '../format.js';
import { createImageDir, removeQuietly } from '../image-dir.js';
import { closeQuietly, createFile, tryIo, writeAll } from '../io.js';
import { checkName, FileType, INVENTORY_FILE, INVENTORY_KIND, Inventory, InventoryEntry } from '../layout.js';
import { decodePayload, readMetaFile } from '../meta-file.js';
import { channelError, FRAME, MAX_PAYLOAD, type Channel, type Frame } from './channel.js';

/** Bounds on what one set may hold (a dump of a big tree has a few files per process). */
const MAX_FILES = 1_000_000;
const MAX_OPEN = 4096;

const Begin = z.object({ dir: z.string().max(128) });
const FileStart = z.object({ id: z.number().int().min(1).max(0xffffffff), name: InventoryEntry.shape.name, type: FileType });
const FileEnd = z.object({ id: z.number().int().min(1).max(0xffffffff), size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER) });

function parseJson<S extends z.ZodType>(ch: Channel, schema: S, f: Frame): z.output<S> {
  let v: unknown;
  try {
    v = JSON.parse(f.payload.toString('utf8'));
  } catch {
    throw channelError(ch.peer, `frame ${f.type} is not JSON`);
  }
  const r = schema.safeParse(v);
  if (!r.success) throw channelError(ch.peer, `frame ${f.type} does not match its schema: ${r.error.issues[0]?.message}`);
  return r.data;
}

interface Received {
  type: FileType;
  fd: number | undefined;
  size: number;
  crc: number;
  done: boolean;
}

/** One set being received into `dir`. */
export class SetReceiver {
  readonly dir: string;
  private readonly created: boolean;
  private readonly dirFd: number;
  private readonly files = new Map<string, Received>();
  private readonly open = new Map<number, { name: string; file: Received }>();
  private state: 'open' | 'committed' | 'aborted' = 'open';
  bytes = 0;

  constructor(dir: string) {
    this.dir = dir;
    this.created = createImageDir(dir).created;
    try {
      this.dirFd = tryIo(`open image directory ${dir}`, () => fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW));
    } catch (e) {
      removeQuietly(dir, { files: [], rmdir: this.created });
      throw e;
    }
  }

  private at(name: string): string {
    return `/proc/self/fd/${this.dirFd}/${name}`;
  }

  start(peer: string, f: z.infer<typeof FileStart>): void {
    if (f.name === INVENTORY_FILE || f.name.endsWith('.tmp')) throw channelError(peer, `${f.name} is not a file a set may send`);
    if (this.files.has(f.name)) throw channelError(peer, `${f.name} sent twice`);
    if (this.open.has(f.id)) throw channelError(peer, `file id ${f.id} is in use`);
    if (this.files.size >= MAX_FILES || this.open.size >= MAX_OPEN) throw channelError(peer, 'too many files');
    const file: Received = { type: f.type, fd: undefined, size: 0, crc: 0, done: false };
    this.files.set(f.name, file);
    file.fd = createFile(this.at(f.name), path.join(this.dir, f.name));
    this.open.set(f.id, { name: f.name, file });
  }

  data(peer: string, payload: Buffer): void {
    if (payload.length < 4) throw channelError(peer, 'short data frame');
    const id = payload.readUInt32LE(0);
    const o = this.open.get(id);
    if (!o) throw channelError(peer, `data for file id ${id}, which is not open`);
    const bytes = payload.subarray(4);
    if (o.file.size + bytes.length > Number.MAX_SAFE_INTEGER) throw channelError(peer, `${o.name} is too big`);
    tryIo(`write ${path.join(this.dir, o.name)}`, () => writeAll(o.file.fd!, bytes));
    // Page data is covered by the pagemap's chunk CRCs (the inventory lists none for it).
    if (o.file.type !== 'pages') o.file.crc = crc32(bytes, o.file.crc);
    o.file.size += bytes.length;
    this.bytes += bytes.length;
  }

  end(peer: string, f: z.infer<typeof FileEnd>): void {
    const o = this.open.get(f.id);
    if (!o) throw channelError(peer, `close of file id ${f.id}, which is not open`);
    if (o.file.size !== f.size) throw channelError(peer, `${o.name}: ${o.file.size} bytes arrived, ${f.size} were sent`);
    tryIo(`write ${path.join(this.dir, o.name)}`, () => fs.fsyncSync(o.file.fd!));
    closeQuietly(o.file.fd);
    o.file.fd = undefined;
    o.file.done = true;
    this.open.delete(f.id);
  }

  /** Checks the inventory against what arrived, then puts it in place: the set is complete. */
  commit(peer: string, inventory: Buffer): { files: number; bytes: number } {
    if (this.open.size > 0) throw channelError(peer, `commit with ${this.open.size} file(s) still open`);
    const tmp = `${INVENTORY_FILE}.tmp`;
    const shown = path.join(this.dir, tmp);
    this.files.set(tmp, { type: 'image', fd: undefined, size: 0, crc: 0, done: false }); // removed by abort() if anything fails
    const fd = createFile(this.at(tmp), shown);
    try {
      tryIo(`write ${shown}`, () => {
        writeAll(fd, inventory);
        fs.fsyncSync(fd);
      });
    } finally {
      closeQuietly(fd);
    }
    const inv = decodePayload(shown, Inventory, readMetaFile(this.at(tmp), INVENTORY_KIND).payload);
    checkVersion(shown, inv.format);
    const listed = new Set<string>();
    for (const e of inv.files) {
      const got = this.files.get(e.name);
      if (!got?.done) throw channelError(peer, `the inventory lists ${e.name}, which was not sent`);
      if (got.type !== e.type || got.size !== e.size || (e.crc32 !== null && e.crc32 !== got.crc)) {
        throw channelError(peer, `${e.name} is not the file the inventory lists (type, size or CRC differ)`);
      }
      listed.add(e.name);
    }
    const extra = [...this.files.keys()].filter((n) => n !== tmp && !listed.has(n));
    if (extra.length > 0) throw channelError(peer, `${extra[0]} was sent but is not in the inventory`);
    tryIo(`write ${path.join(this.dir, INVENTORY_FILE)}`, () => fs.renameSync(this.at(tmp), this.at(INVENTORY_FILE)));
    this.files.delete(tmp);
    tryIo(`sync ${this.dir}`, () => fs.fsyncSync(this.dirFd));
    closeQuietly(this.dirFd);
    this.state = 'committed';
    return { files: inv.files.length, bytes: this.bytes };
  }

  /** Removes every file received, and the directory if it was made for the set. Never throws. */
  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    for (const f of this.files.values()) closeQuietly(f.fd);
    removeQuietly(`/proc/self/fd/${this.dirFd}`, { files: this.files.keys(), rmdir: false });
    closeQuietly(this.dirFd);
    if (this.created) removeQuietly(this.dir, { files: [], rmdir: true });
  }
}

/** What a session did, set by set. */
export interface ReceivedSet {
  dir: string;
  files: number;
  bytes: number;
}

export interface SessionHooks {
  /** Called for each committed set (after the client was told). */
  onSet?: (s: ReceivedSet) => void;
  /**
   * A RESTORE request (ckpt migrate): its answer is sent back as OK or ERROR. The handler
   * may exchange frames on `ch` before it returns (the migration's two-phase commit).
   */
  onRestore?: (request: unknown, ch: Channel) => unknown;
  /** Stop after this many committed sets (the page server's default is one). */
  maxSets?: number;
  /** Every set goes into root itself, whatever name it gives (a one-dump page server); else into root/NAME, and a set must name one. */
  intoRoot?: boolean;
}

/**
 * Receives sets until the client ends the session (END, or closing after a commit) or
 * maxSets are in. Sets go into root/NAME, or `root` itself (intoRoot). A failure
 * removes the set being received, tells the client why (if it still listens) and throws.
 */
export function receiveSets(ch: Channel, args: { root: string } & SessionHooks): ReceivedSet[] {
  const done: ReceivedSet[] = [];
  const buf = Buffer.allocUnsafe(MAX_PAYLOAD);
  let set: SetReceiver | undefined;
  try {
    for (;;) {
      if (!set && args.maxSets !== undefined && done.length >= args.maxSets) return done;
      let f: Frame;
      try {
        f = ch.receive(buf);
      } catch (e) {
        // A client may hang up once its last set is in.
        if (!set && done.length > 0 && e instanceof CkptError && /was closed/.test(e.message)) return done;
        throw e;
      }
      if (f.type === FRAME.END && !set) return done;
      if (f.type === FRAME.RESTORE && !set) {
        if (!args.onRestore) throw channelError(ch.peer, 'this server does not restore');
        answer(ch, () => args.onRestore!(parseJson(ch, z.unknown(), f), ch));
        continue;
      }
      if (f.type === FRAME.BEGIN) {
        if (set) throw channelError(ch.peer, 'a set began inside another');
        const { dir } = parseJson(ch, Begin, f);
        if (args.intoRoot) set = new SetReceiver(args.root);
        else {
          if (dir === '') throw channelError(ch.peer, 'this server keeps sets apart, in directories the dumps name: the set has no name');
          checkName(dir, 'a set directory');
          set = new SetReceiver(path.join(args.root, dir));
        }
        continue;
      }
      if (!set) throw channelError(ch.peer, `frame ${f.type} outside a set`);
      if (f.type === FRAME.FILE) set.start(ch.peer, parseJson(ch, FileStart, f));
      else if (f.type === FRAME.DATA) set.data(ch.peer, f.payload);
      else if (f.type === FRAME.CLOSE) set.end(ch.peer, parseJson(ch, FileEnd, f));
      else if (f.type === FRAME.ABORT) {
        set.abort();
        set = undefined;
      } else if (f.type === FRAME.COMMIT) {
        const r = { dir: set.dir, ...set.commit(ch.peer, Buffer.from(f.payload)) };
        set = undefined;
        ch.sendJson(FRAME.OK, { files: r.files, bytes: r.bytes });
        done.push(r);
        args.onSet?.(r);
      } else throw channelError(ch.peer, `unexpected frame ${f.type}`);
    }
  } catch (e) {
    set?.abort();
    try {
      ch.send(FRAME.ERROR, Buffer.from((e as Error).message.slice(0, 4000)));
    } catch {
      // the client is gone
    }
    throw e;
  }
}

/** Runs a request's handler and sends its result (OK with JSON) or its failure (ERROR). */
function answer(ch: Channel, fn: () => unknown): void {
  let result: unknown;
  try {
    result = fn();
  } catch (e) {
    try {
      ch.send(FRAME.ERROR, Buffer.from((e as Error).message.slice(0, 4000)));
    } catch {
      // The connection is gone: the handler's failure is the one to report.
      throw e;
    }
    return;
  }
  ch.sendJson(FRAME.OK, result ?? {});
}
