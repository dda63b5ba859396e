// Creating the checkpoint directory and committing its inventory. A dump is atomic
// at the set level: the inventory is written last, to a temporary name, fsync'd and
// renamed into place, so a directory with an inventory.img holds a complete set.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CkptError } from '../common/errors.js';
import { ioError, tryIo } from './io.js';

/**
 * Creates `dir` with mode 0700 (parents with the default mode). An existing empty
 * directory is accepted and chmod'ed 0700; a non-empty one is refused so that a dump
 * never mixes its files with another's. Returns whether the directory was created.
 */
export function createImageDir(dir: string): { created: boolean } {
  const what = `create image directory ${dir}`;
  mkdirParents(path.dirname(path.resolve(dir)), what);
  let created = true;
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(what, e);
    created = false;
    const st = tryIo(what, () => fs.lstatSync(dir));
    if (!st.isDirectory()) throw new CkptError('USAGE', `Cannot ${what}: it exists and is not a directory`);
    if (tryIo(what, () => fs.readdirSync(dir)).length > 0) {
      throw new CkptError('USAGE', `Cannot ${what}: it exists and is not empty`);
    }
  }
  tryIo(what, () => fs.chmodSync(dir, 0o700)); // mkdir's mode is filtered by the umask
  return { created };
}

/**
 * mkdir -p, one component at a time. Not fs.mkdirSync's `recursive`: on Node 20 it
 * spins forever where mkdir says ENOENT for a parent that exists (under /proc).
 */
function mkdirParents(dir: string, what: string): void {
  let at = '/';
  for (const part of dir.split('/').filter(Boolean)) {
    at = path.join(at, part);
    try {
      fs.mkdirSync(at, { mode: 0o755 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(what, e);
    }
  }
}

/** Removes files (and then the directory, if asked), ignoring what is already gone. */
export function removeQuietly(dir: string, opts: { files: Iterable<string>; rmdir: boolean }): void {
  for (const f of opts.files) {
    try {
      fs.unlinkSync(path.join(dir, f));
    } catch {
      // best effort: abort runs on failure paths and must not throw over the first error
    }
  }
  if (!opts.rmdir) return;
  try {
    fs.rmdirSync(dir);
  } catch {
    // not empty (someone else's files) or already gone: leave it
  }
}
