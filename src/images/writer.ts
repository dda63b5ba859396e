// ImageWriter: the one object a dump writes a checkpoint directory through.
// Every file it creates is recorded, so abort() can remove exactly those; commit()
// writes the inventory last, which is what makes the set valid.
//
// Every file is created relative to ONE fd of the directory, opened once: renaming
// or replacing the directory (or a parent) during a dump cannot split the set
// across two places. Node's fs has no openat() and this layer uses no syscalls, so
// files are named /proc/self/fd/N/<name>: the kernel resolves the magic link to the
// directory the fd holds, whatever its path is now, and the file is then created
// with O_EXCL (a symlink there is never followed). Messages name the path given.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { z } from 'zod';
import { lazyCrypto } from '../common/builtin.js';
import { CkptError } from '../common/errors.js';
import { crc32 } from './crc32.js';
import { FORMAT_VERSION } from './format.js';
import { createImageDir, removeQuietly } from './image-dir.js';
import { closeQuietly, createFile, tryIo, writeAll } from './io.js';
import {
  blobFile, type FileType, imageFile, INVENTORY_FILE, INVENTORY_KIND, Inventory, type InventoryEntry, pagemapName, pagesFile, type ParentRef,
} from './layout.js';
import { encodePayload, writeMetaFile } from './meta-file.js';
import { PageWriter, type PageWriterOptions } from './page-writer.js';
import { Pagemap } from './pagemap.js';
import type { RemoteSet } from './remote/sender.js';

/**
 * A random v4 UUID naming a new image set. The kernel makes one per read of this file;
 * node:crypto's randomUUID would load node:crypto (~3 ms of a CLI dump) for 16 bytes.
 */
function newSetId(): string {
  try {
    const id = fs.readFileSync('/proc/sys/kernel/random/uuid', 'latin1').trim();
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id)) return id;
  } catch {
    // no /proc here: the slower way
  }
  return lazyCrypto().randomUUID();
}

/** Names a metadata image: its file is NAME.img, its header carries KIND. */
export interface ImageSpec<S extends z.ZodType> {
  name: string;
  kind: string;
  schema: S;
}

const INVENTORY_TMP = `${INVENTORY_FILE}.tmp`;

export class ImageWriter {
  readonly dir: string;
  private readonly createdDir: boolean;
  /** fd of the directory, and /proc/self/fd/<it>: every file is created through it. */
  private readonly dirFd: number;
  private readonly base: string;
  /** Files in write order; null until the file is complete. */
  private readonly files = new Map<string, InventoryEntry | null>();
  private readonly pageWriters: PageWriter[] = [];
  private state: 'open' | 'committed' | 'aborted' = 'open';
  private parent: ParentRef | undefined;
  /**
   * A page server the set also goes to: every file is sent there as it completes, and page
   * files only there (the local directory keeps the rest, as CRIU's does); the inventory is
   * committed there before here.
   */
  private readonly remote: RemoteSet | undefined;

  private constructor(dir: string, args: { created: boolean; dirFd: number; remote?: RemoteSet }) {
    this.dir = dir;
    this.createdDir = args.created;
    this.dirFd = args.dirFd;
    this.base = `/proc/self/fd/${args.dirFd}`;
    this.remote = args.remote;
  }

  /** Creates the checkpoint directory (see createImageDir) and a writer for it; `remote`: a page server's set, see above. */
  static create(dir: string, opts: { remote?: RemoteSet } = {}): ImageWriter {
    const { created } = createImageDir(dir);
    let dirFd: number;
    try {
      dirFd = tryIo(`open image directory ${dir}`, () => fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW));
    } catch (e) {
      removeQuietly(dir, { files: [], rmdir: created });
      throw e;
    }
    return new ImageWriter(dir, { created, dirFd, remote: opts.remote });
  }

  /** Where to create FILE (through the directory fd), and how to name it. */
  private at(file: string): { at: string; shown: string } {
    return { at: path.join(this.base, file), shown: path.join(this.dir, file) };
  }

  /** Validates `value` against `schema` and writes it as image NAME.img. */
  write<S extends z.ZodType>(spec: ImageSpec<S> & { value: z.output<S> }): void {
    const file = this.reserve(imageFile(spec.name));
    const { at, shown } = this.at(file);
    const { bytes, ...done } = writeMetaFile(shown, { kind: spec.kind, payload: encodePayload(shown, spec.schema, spec.value), at });
    this.remote?.put(file, 'image', bytes);
    this.complete(file, { type: 'image', ...done });
  }

  /** Starts page file pages-ID.img; its pagemap-ID image is written by close(). */
  pages(id: string | number, options: PageWriterOptions = {}): PageWriter {
    const file = this.reserve(pagesFile(id));
    const pw = new PageWriter(path.join(this.dir, file), {
      at: this.at(file).at,
      remote: this.remote?.open(file, 'pages'),
      options,
      done: ({ size, pagemap }) => {
        this.complete(file, { type: 'pages', size, crc32: null });
        this.write({ name: pagemapName(id), kind: 'pagemap', schema: Pagemap, value: pagemap });
      },
    });
    this.pageWriters.push(pw);
    return pw;
  }

  /** Writes raw bytes (e.g. the contents of an unlinked file) as NAME.blob. */
  blob(name: string, data: Uint8Array | Iterable<Uint8Array>): void {
    const sink = this.blobSink(name);
    try {
      for (const chunk of data instanceof Uint8Array ? [data] : data) sink.write(chunk);
    } catch (e) {
      sink.fail();
      throw e;
    }
    sink.finish();
  }

  /** Like blob(), from a stream or any async source. */
  async blobFrom(name: string, source: AsyncIterable<Uint8Array>): Promise<void> {
    const sink = this.blobSink(name);
    try {
      for await (const chunk of source) sink.write(chunk);
    } catch (e) {
      sink.fail();
      throw e;
    }
    sink.finish();
  }

  /** Names the set this one was dumped against (see chain.ts); written into the inventory. */
  setParent(ref: ParentRef): void {
    this.checkOpen();
    this.parent = ref;
  }

  /** Writes the inventory, last: from here on the directory is a valid checkpoint. */
  commit(): void {
    this.checkOpen();
    const entries: InventoryEntry[] = [];
    for (const [name, entry] of this.files) {
      if (!entry) throw new CkptError('USAGE', `Cannot commit ${this.dir}: ${name} is still being written`);
      entries.push(entry);
    }
    const inventory: Inventory = { format: { ...FORMAT_VERSION }, files: entries, id: newSetId() };
    if (this.parent) inventory.parent = this.parent;
    const tmp = this.at(INVENTORY_TMP);
    this.files.set(INVENTORY_TMP, null); // so abort() removes it if the rename never happens
    const { bytes } = writeMetaFile(tmp.shown, { kind: INVENTORY_KIND, payload: encodePayload(tmp.shown, Inventory, inventory), at: tmp.at });
    // The page server's copy is the one a restore uses: committed there first, or not here either.
    this.remote?.commit(bytes);
    const inv = this.at(INVENTORY_FILE);
    tryIo(`write ${inv.shown}`, () => fs.renameSync(tmp.at, inv.at));
    this.files.delete(INVENTORY_TMP);
    tryIo(`sync ${this.dir}`, () => fs.fsyncSync(this.dirFd));
    closeQuietly(this.dirFd);
    this.state = 'committed';
  }

  /**
   * Removes every file this writer created, and the directory if it created it.
   * Never throws; does nothing after commit() (a complete set is never deleted here).
   */
  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    this.remote?.abort();
    for (const pw of this.pageWriters) pw.discard();
    // Files through the fd (wherever the directory is now); the directory by its name.
    removeQuietly(this.base, { files: this.files.keys(), rmdir: false });
    closeQuietly(this.dirFd);
    if (this.createdDir) removeQuietly(this.dir, { files: [], rmdir: true });
  }

  /** An open blob file: finish() makes it part of the set; fail() leaves it for abort(). */
  private blobSink(name: string): { write(chunk: Uint8Array): void; finish(): void; fail(): void } {
    const file = this.reserve(blobFile(name));
    const { at, shown: where } = this.at(file);
    const fd = createFile(at, where);
    const remote = this.remote?.open(file, 'blob');
    let size = 0;
    let crc = 0;
    return {
      write: (chunk) => {
        tryIo(`write ${where}`, () => writeAll(fd, chunk));
        remote?.write(chunk);
        crc = crc32(chunk, crc);
        size += chunk.length;
      },
      finish: () => {
        try {
          tryIo(`write ${where}`, () => fs.fsyncSync(fd));
        } finally {
          closeQuietly(fd);
        }
        remote?.close();
        this.complete(file, { type: 'blob', size, crc32: crc });
      },
      fail: () => closeQuietly(fd),
    };
  }

  private reserve(file: string): string {
    this.checkOpen();
    if (this.files.has(file)) throw new CkptError('USAGE', `Cannot write ${path.join(this.dir, file)}: written twice`);
    this.files.set(file, null);
    return file;
  }

  private complete(file: string, e: { type: FileType; size: number; crc32: number | null }): void {
    this.files.set(file, { name: file, ...e });
  }

  private checkOpen(): void {
    if (this.state !== 'open') throw new CkptError('USAGE', `Cannot write to ${this.dir}: the image set is ${this.state}`);
  }
}
