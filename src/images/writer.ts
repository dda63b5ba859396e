// ImageWriter: the one object a dump writes a checkpoint directory through.
// Every file it creates is recorded, so abort() can remove exactly those; commit()
// writes the inventory last, which is what makes the set valid.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { z } from 'zod';
import { CkptError } from '../common/errors.js';
import { crc32 } from './crc32.js';
import { FORMAT_VERSION } from './format.js';
import { createImageDir, fsyncDir, removeQuietly } from './image-dir.js';
import { closeQuietly, createFile, tryIo, writeAll } from './io.js';
import {
  blobFile, type FileType, imageFile, INVENTORY_FILE, INVENTORY_KIND, Inventory, type InventoryEntry, pagemapName, pagesFile,
} from './layout.js';
import { encodePayload, writeMetaFile } from './meta-file.js';
import { PageWriter, type PageWriterOptions } from './page-writer.js';
import { Pagemap } from './pagemap.js';

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
  /** Files in write order; null until the file is complete. */
  private readonly files = new Map<string, InventoryEntry | null>();
  private readonly pageWriters: PageWriter[] = [];
  private state: 'open' | 'committed' | 'aborted' = 'open';

  private constructor(dir: string, createdDir: boolean) {
    this.dir = dir;
    this.createdDir = createdDir;
  }

  /** Creates the checkpoint directory (see createImageDir) and a writer for it. */
  static create(dir: string): ImageWriter {
    return new ImageWriter(dir, createImageDir(dir).created);
  }

  /** Validates `value` against `schema` and writes it as image NAME.img. */
  write<S extends z.ZodType>(spec: ImageSpec<S> & { value: z.output<S> }): void {
    const file = this.reserve(imageFile(spec.name));
    const where = path.join(this.dir, file);
    const done = writeMetaFile(where, spec.kind, encodePayload(where, spec.schema, spec.value));
    this.complete(file, { type: 'image', ...done });
  }

  /** Starts page file pages-ID.img; its pagemap-ID image is written by close(). */
  pages(id: string | number, options: PageWriterOptions = {}): PageWriter {
    const file = this.reserve(pagesFile(id));
    const pw = new PageWriter(path.join(this.dir, file), {
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

  /** Writes the inventory, last: from here on the directory is a valid checkpoint. */
  commit(): void {
    this.checkOpen();
    const entries: InventoryEntry[] = [];
    for (const [name, entry] of this.files) {
      if (!entry) throw new CkptError('USAGE', `Cannot commit ${this.dir}: ${name} is still being written`);
      entries.push(entry);
    }
    const inventory = { format: { ...FORMAT_VERSION }, files: entries };
    const tmp = path.join(this.dir, INVENTORY_TMP);
    this.files.set(INVENTORY_TMP, null); // so abort() removes it if the rename never happens
    writeMetaFile(tmp, INVENTORY_KIND, encodePayload(tmp, Inventory, inventory));
    tryIo(`write ${path.join(this.dir, INVENTORY_FILE)}`, () => fs.renameSync(tmp, path.join(this.dir, INVENTORY_FILE)));
    this.files.delete(INVENTORY_TMP);
    fsyncDir(this.dir);
    this.state = 'committed';
  }

  /**
   * Removes every file this writer created, and the directory if it created it.
   * Never throws; does nothing after commit() (a complete set is never deleted here).
   */
  abort(): void {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    for (const pw of this.pageWriters) pw.discard();
    removeQuietly(this.dir, { files: this.files.keys(), rmdir: this.createdDir });
  }

  /** An open blob file: finish() makes it part of the set; fail() leaves it for abort(). */
  private blobSink(name: string): { write(chunk: Uint8Array): void; finish(): void; fail(): void } {
    const file = this.reserve(blobFile(name));
    const where = path.join(this.dir, file);
    const fd = createFile(where);
    let size = 0;
    let crc = 0;
    return {
      write: (chunk) => {
        tryIo(`write ${where}`, () => writeAll(fd, chunk));
        crc = crc32(chunk, crc);
        size += chunk.length;
      },
      finish: () => {
        try {
          tryIo(`write ${where}`, () => fs.fsyncSync(fd));
        } finally {
          closeQuietly(fd);
        }
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
