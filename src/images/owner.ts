// Who could have written an image set. A restore run by root must not trust images
// that another user could have edited (docs/security.md): that is the owner of the
// directory (it can replace any file in it), the owner of each file (it can rewrite
// it in place), and anyone if the directory or a file is writable by group or others.
// Kept apart from the reader's other checks so that restore can ask it on its own.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ioError } from './io.js';

export interface ImageOwnership {
  /** Owners of the directory (and of the link naming it, if it is one) and of every file. */
  uids: number[];
  /** Group of the directory: the group the dump ran with, most often. */
  gid: number;
  /** A path (the directory or a file) that group or others may write, if any. */
  writableByOthers?: string;
}

const GROUP_OR_OTHER_WRITE = 0o022;

function lstatOf(p: string): fs.Stats {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    throw ioError(`read ${p}`, e);
  }
}

/** lstat, never following a link: a symlinked file counts with its link's owner (the reader refuses it anyway). */
export function imageOwnership(dir: string, files: readonly string[]): ImageOwnership {
  const uids = new Set<number>();
  let writableByOthers: string | undefined;
  const link = lstatOf(dir);
  if (link.isSymbolicLink()) uids.add(link.uid); // whoever owns the link can point it elsewhere
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw ioError(`read ${dir}`, e);
  }
  uids.add(st.uid);
  if (st.mode & GROUP_OR_OTHER_WRITE) writableByOthers = dir;
  for (const f of files) {
    const p = path.join(dir, f);
    const fst = lstatOf(p);
    uids.add(fst.uid);
    if (!fst.isSymbolicLink() && fst.mode & GROUP_OR_OTHER_WRITE) writableByOthers ??= p;
  }
  return { uids: [...uids], gid: st.gid, writableByOthers };
}
