/**
 * A dump into a directory that already holds a set replaces that set, as CRIU does, but
 * atomically: the new set is written into a fresh directory beside it, and once it is
 * complete the two are swapped with one renameat2(RENAME_EXCHANGE), so DIR always holds
 * one whole set, the old or the new, never a mix. The old set is then removed.
 *
 * Only a directory we can tell is a checkpoint (a ckpt inventory, or nothing but log
 * files) is replaced: `-D ~` must never swap a home directory away.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CkptError } from '../common/errors.js';
import { exchangePaths } from '../sys/index.js';

const INVENTORY = 'inventory.img';

export interface ImagesTarget {
  /** Where the dump writes: DIR itself, or a new directory beside it. */
  writeTo: string;
  /** DIR holds a set (or logs) that is replaced when the new one is complete. */
  replaces: boolean;
}

function entries(dir: string): fs.Dirent[] | undefined {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CkptError('IO', `Cannot dump into ${dir}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Where a dump into `dir` writes; throws if `dir` holds something that is not a checkpoint. */
export function imagesTarget(dir: string): ImagesTarget {
  // A symlink is not swapped away: the writer refuses it, as before.
  if (isSymlink(dir)) return { writeTo: dir, replaces: false };
  const list = entries(dir);
  if (list === undefined || list.length === 0) return { writeTo: dir, replaces: false };
  const odd = list.find((e) => !e.isFile());
  const ours = list.some((e) => e.name === INVENTORY) || list.every((e) => e.name.endsWith('.log'));
  if (odd || !ours) {
    const what = odd ? `${odd.name} is not a regular file` : 'it holds no ckpt image set';
    throw new CkptError('USAGE', `Cannot dump into ${dir}: it is not empty and ${what}; give a new or empty directory, or one an earlier dump wrote`);
  }
  const abs = path.resolve(dir);
  return { writeTo: path.join(path.dirname(abs), `.${path.basename(abs)}.ckpt-new-${process.pid}`), replaces: true };
}

/**
 * Swaps the complete new set at `target.writeTo` into `dir`, then removes the old set
 * (now at `writeTo`). Returns a warning if the old set could not all be removed.
 */
export function replaceImages(dir: string, target: ImagesTarget): string | undefined {
  if (!target.replaces) return undefined;
  try {
    exchangePaths(target.writeTo, dir);
  } catch (e) {
    throw new CkptError('IO', `Cannot replace the images in ${dir}: ${e instanceof Error ? e.message : String(e)}; the new set is in ${target.writeTo}`);
  }
  const left: string[] = [];
  for (const e of entries(target.writeTo) ?? []) {
    try {
      fs.unlinkSync(path.join(target.writeTo, e.name));
    } catch {
      left.push(e.name);
    }
  }
  try {
    fs.rmdirSync(target.writeTo);
  } catch {
    return `the old images could not all be removed: they are in ${target.writeTo}${left.length > 0 ? ` (${left.join(', ')})` : ''}`;
  }
  return undefined;
}
