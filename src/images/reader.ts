// ImageReader: opens a checkpoint directory for restore. Nothing in the directory is
// trusted: the inventory must exist and parse, every file it lists must be a regular
// file of the listed size, and every image is checked (CRC, then schema) when read.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { z } from 'zod';
import { CkptError } from '../common/errors.js';
import { crc32 } from './crc32.js';
import { badImage, checkVersion, type FormatVersion, hex } from './format.js';
import { closeQuietly, ioError, openImage, preadFull, tryIo } from './io.js';
import {
  blobFile, type FileType, imageFile, INVENTORY_FILE, INVENTORY_KIND, Inventory, type InventoryEntry, pagemapName, pagesFile,
} from './layout.js';
import { decodePayload, readMetaFile } from './meta-file.js';
import { imageOwnership, type ImageOwnership } from './owner.js';
import { PageReader } from './page-reader.js';
import { Pagemap } from './pagemap.js';
import type { ImageSpec } from './writer.js';
import { checkedParentDir, MAX_CHAIN, resolveLayers } from './chain.js';
import type { ParentRef } from './layout.js';

/** r.blob() reads into one Buffer; bigger blobs need a streaming reader (not yet needed). */
export const MAX_BLOB_READ = 1024 * 1024 * 1024;

export class ImageReader {
  readonly dir: string;
  /** Format version the set was written with (same major as ours). */
  readonly version: FormatVersion;
  private readonly entries: Map<string, InventoryEntry>;
  /** The set this one was dumped against (an incremental dump), as the inventory names it. */
  readonly parentRef: ParentRef | undefined;
  private readonly pageReaders: PageReader[] = [];
  private parentReader: ImageReader | undefined;
  private readonly depth: number;

  private constructor(dir: string, inventory: Inventory, depth: number) {
    this.dir = dir;
    this.version = inventory.format;
    this.entries = new Map(inventory.files.map((e) => [e.name, e]));
    this.parentRef = inventory.parent;
    this.depth = depth;
  }

  /**
   * Opens a committed checkpoint directory; refuses an incomplete or foreign one.
   * `pagesElsewhere`: the set's page files went to a page server (a dump's own directory,
   * read for its metadata only): missing page files are not an error, and pages() fails.
   */
  static open(dir: string, opts: { depth?: number; pagesElsewhere?: boolean } = {}): ImageReader {
    const st = statDir(dir);
    if (!st.isDirectory()) throw new CkptError('USAGE', `Cannot read images in ${dir}: not a directory`);
    const invPath = path.join(dir, INVENTORY_FILE);
    if (!fs.existsSync(invPath)) {
      // Image files without an inventory are a dump that was cut short; nothing of ours is a wrong directory.
      const ours = tryIo(`read images in ${dir}`, () => fs.readdirSync(dir)).some((n) => n.endsWith('.img') || n.endsWith('.img.tmp'));
      if (!ours) throw new CkptError('USAGE', `Cannot read images in ${dir}: not a ckpt image directory (no ${INVENTORY_FILE})`);
      throw new CkptError('BAD_IMAGE', `Cannot read images in ${dir}: no inventory (the dump did not complete)`);
    }
    const { payload } = readMetaFile(invPath, INVENTORY_KIND);
    const inventory = decodePayload(invPath, Inventory, payload);
    checkVersion(invPath, inventory.format);
    for (const e of inventory.files) {
      if (opts.pagesElsewhere && e.type === 'pages' && !fs.existsSync(path.join(dir, e.name))) continue;
      checkListedFile(dir, e);
    }
    return new ImageReader(dir, inventory, opts.depth ?? 0);
  }

  /**
   * The parent set, opened once and checked against the reference (missing or changed:
   * BAD_IMAGE); undefined for a set that has none.
   */
  parent(): ImageReader | undefined {
    if (!this.parentRef) return undefined;
    if (!this.parentReader) {
      if (this.depth >= MAX_CHAIN) throw badImage(path.join(this.dir, INVENTORY_FILE), `its chain of parent images is longer than ${MAX_CHAIN}`);
      this.parentReader = ImageReader.open(checkedParentDir(this.dir, this.parentRef), { depth: this.depth + 1 });
    }
    return this.parentReader;
  }

  /** Every file of the set, as the inventory lists it. */
  list(): InventoryEntry[] {
    return [...this.entries.values()].map((e) => ({ ...e }));
  }

  /** Who could have written this set: owners of the directory and of every file (owner.ts). */
  ownership(): ImageOwnership {
    return imageOwnership(this.dir, [INVENTORY_FILE, ...this.entries.keys()]);
  }

  /** Whether metadata image NAME was written (e.g. optional kinds such as pipes). */
  has(name: string): boolean {
    return this.entries.get(imageFile(name))?.type === 'image';
  }

  /** Reads image NAME.img: checks header, kind, CRC, then parses it with `schema`. */
  read<S extends z.ZodType>(spec: ImageSpec<S>): z.output<S> {
    const where = this.listed(imageFile(spec.name), 'image');
    const { payload, file } = readMetaFile(where.path, spec.kind);
    if (file.size !== where.entry.size || file.crc32 !== where.entry.crc32) {
      throw badImage(where.path, 'checksum mismatch with the inventory (replaced after the dump?)');
    }
    return decodePayload(where.path, spec.schema, payload);
  }

  /**
   * Opens page file ID with its validated runs; close() closes it (or r.close()). Pages
   * it keeps in the parent set are found there (pr.layers), the parents opened as needed.
   */
  pages(id: string | number): PageReader {
    const pr = this.ownPages(id);
    if (pr.inParent.length > 0) {
      pr.setLayers(resolveLayers(pr, (depth) => {
        let r = this.parent();
        for (let i = 1; i < depth && r; i++) r = r.parent();
        return r?.hasPages(id) ? r.ownPages(id) : undefined;
      }));
    }
    return pr;
  }

  /** Whether page file ID is in the set. */
  hasPages(id: string | number): boolean {
    return this.entries.get(pagesFile(id))?.type === 'pages';
  }

  /** Page file ID alone, without following its parent runs. */
  private ownPages(id: string | number): PageReader {
    const where = this.listed(pagesFile(id), 'pages');
    const map = this.read({ name: pagemapName(id), kind: 'pagemap', schema: Pagemap });
    const pr = new PageReader(where.path, map);
    this.pageReaders.push(pr);
    return pr;
  }

  /** Reads blob NAME whole and checks its CRC. */
  blob(name: string): Buffer {
    const where = this.listed(blobFile(name), 'blob');
    const size = where.entry.size;
    if (size > MAX_BLOB_READ) throw badImage(where.path, `blob of ${size} bytes is too big to read at once`);
    const buf = Buffer.allocUnsafe(size);
    const fd = openImage(where.path);
    try {
      if (tryIo(`read ${where.path}`, () => preadFull(fd, buf, 0)) !== size) throw badImage(where.path, 'truncated');
    } finally {
      closeQuietly(fd);
    }
    const got = crc32(buf);
    if (got !== where.entry.crc32) {
      throw badImage(where.path, `checksum mismatch (crc32 ${hex(got)}, inventory says ${hex(where.entry.crc32 ?? 0)})`);
    }
    return buf;
  }

  /** Closes every page reader handed out. */
  close(): void {
    for (const pr of this.pageReaders) pr.close();
    this.pageReaders.length = 0;
    this.parentReader?.close();
  }

  private listed(file: string, type: FileType): { path: string; entry: InventoryEntry } {
    const p = path.join(this.dir, file);
    const entry = this.entries.get(file);
    if (!entry || entry.type !== type) throw badImage(p, `not in the inventory as ${type === 'image' ? 'an' : 'a'} ${type} file`);
    return { path: p, entry };
  }
}

function statDir(dir: string): fs.Stats {
  try {
    return fs.statSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new CkptError('USAGE', `Cannot read images in ${dir}: the directory does not exist`);
    throw ioError(`read images in ${dir}`, e);
  }
}

/** A listed file must be a regular file (not a symlink) of the listed size. */
function checkListedFile(dir: string, e: InventoryEntry): void {
  const p = path.join(dir, e.name);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw badImage(p, 'missing (listed in the inventory)');
    throw ioError(`read ${p}`, err);
  }
  if (!st.isFile()) throw badImage(p, 'not a regular file');
  if (st.size !== e.size) throw badImage(p, `truncated or changed: ${st.size} bytes, the inventory says ${e.size}`);
}
