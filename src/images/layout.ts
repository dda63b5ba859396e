// Names of the files in a checkpoint directory, and the inventory that lists them.
// A name read from an image is untrusted: it must be a plain file name (no '/', no
// '..') before it is joined to the directory.
import { z } from 'zod';
import { CkptError } from '../common/errors.js';

export const INVENTORY_FILE = 'inventory.img';
export const INVENTORY_KIND = 'inventory';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const FILE_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,135}$/;

export function checkName(name: string, what: string): void {
  if (!NAME_RE.test(name) || name.includes('..')) {
    throw new CkptError('USAGE', `Cannot use ${JSON.stringify(name)} as ${what} name: use letters, digits, '.', '_', '-'`);
  }
}

/** `core-123` → `core-123.img` */
export function imageFile(name: string): string {
  checkName(name, 'an image');
  if (name === INVENTORY_KIND) throw new CkptError('USAGE', `Cannot use "${name}" as an image name: it is reserved`);
  return `${name}.img`;
}

export function pagesFile(id: string | number): string {
  checkName(String(id), 'a page image id');
  return `pages-${id}.img`;
}

/** The metadata image (name, not file) that describes pages-ID.img. */
export function pagemapName(id: string | number): string {
  checkName(String(id), 'a page image id');
  return `pagemap-${id}`;
}

export function blobFile(name: string): string {
  checkName(name, 'a blob');
  return `${name}.blob`;
}

export const FileType = z.enum(['image', 'pages', 'blob']);
export type FileType = z.infer<typeof FileType>;

export const InventoryEntry = z.object({
  name: z.string().regex(FILE_RE).refine((n) => !n.includes('..'), 'not a plain file name'),
  type: FileType,
  size: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  // null for page files: their data is covered by the chunk CRCs in their pagemap image
  crc32: z.number().int().min(0).max(0xffffffff).nullable(),
});
export type InventoryEntry = z.infer<typeof InventoryEntry>;

/**
 * Format 1.4: the image set this one was dumped against (an incremental dump): its
 * directory relative to this one, and the SHA-256 of its inventory, so that a parent
 * moved, replaced or changed since is refused rather than mixed in.
 */
export const ParentRef = z.object({
  dir: z.string().min(1).max(4096).refine((d) => !d.includes('\0'), 'no NUL'),
  inventorySha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ParentRef = z.infer<typeof ParentRef>;

export const Inventory = z.object({
  format: z.object({ major: z.number().int(), minor: z.number().int() }),
  parent: ParentRef.optional(),
  /**
   * Format 1.4: a random id of this set, so that two sets with the same files (page data
   * is not in the inventory's CRCs) still have different inventories, and a child's
   * parent digest tells them apart.
   */
  id: z.string().regex(/^[0-9a-f-]{36}$/).optional(),
  files: z.array(InventoryEntry).refine(
    (files) => new Set(files.map((f) => f.name)).size === files.length,
    'duplicate file names',
  ),
});
export type Inventory = z.infer<typeof Inventory>;
