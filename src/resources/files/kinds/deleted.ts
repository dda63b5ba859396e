/**
 * Files whose name is gone (unlinked while open, O_TMPFILE): nothing to reopen, so
 * the content is saved, once per inode and sparse (SEEK_DATA/SEEK_HOLE, in a page file
 * keyed by file offset, streamed in chunks: no size limit). At restore the content is
 * written to a new file — at the old path if that name is free, else next to it, else
 * beside the images — with its holes, the target opens it, and it is unlinked again, so
 * the process holds a nameless file with the same content, offset and flags. Other
 * descriptions of the same inode (hard links, other opens, other processes) open that
 * same file again through a restorer fd on it, so they stay one file.
 */
import { chmodSync, chownSync, closeSync, fstatSync, ftruncateSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { copyObjectPages, fillObject } from '../../memory/shmem.js';
import { fdPath, withoutDeletedSuffix, type FdFacts } from '../facts.js';
import { isPathOnly, O, reopenFlags } from '../flags.js';
import { createNameless, type Nameless } from '../nameless.js';
import type { EntryOf } from '../schema.js';
import { dumpError, restoreError, savedPath, type KindDumpContext, type KindRestoreContext, type TargetReopener } from './kind.js';

export function dumpDeleted({ ctx }: KindDumpContext, f: FdFacts): EntryOf<'deleted'> {
  const path = savedPath(f, withoutDeletedSuffix(f.link));
  let local: number;
  try {
    // The magic link still opens the file after its last name is gone.
    local = openSync(fdPath(f.pid, f.fd), 'r');
  } catch (e) {
    throw dumpError(f, { code: 'IO', reason: `cannot read the deleted file ${f.link}: ${(e as Error).message}` });
  }
  try {
    const st = fstatSync(local);
    const pages = `deleted-${st.dev}-${st.ino}`;
    if (!ctx.pages) throw dumpError(f, { code: 'UNSUPPORTED', reason: `this dump cannot save the content of the deleted file ${f.link}` });
    // Saved once per dump, whichever fd of the tree meets the inode first.
    const sink = ctx.pages(pages);
    if (sink) {
      copyObjectPages(local, st.size, sink);
      sink.close();
    }
    return {
      kind: 'deleted', fd: f.fd, flags: f.flags, pos: f.pos, path, pages, dev: st.dev, ino: st.ino,
      mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: BigInt(st.size),
    };
  } finally {
    closeSync(local);
  }
}

function errnoCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** Writes the saved content (holes kept) into `fd`, a new empty file. */
function fill(rc: KindRestoreContext, e: EntryOf<'deleted'>, fd: number): void {
  const size = Number(e.size);
  if (e.pages !== undefined) {
    ftruncateSync(fd, size);
    fillObject(rc.ctx, fd, { pages: e.pages, size });
    return;
  }
  const data = rc.ctx.blobs.get(e.blob!);
  if (data.length !== size) {
    throw restoreError(rc, { fd: e.fd, code: 'BAD_IMAGE', reason: `the saved content of deleted ${e.path} has ${data.length} bytes, not ${e.size}` });
  }
  writeFileSync(fd, data);
}

/** Writes the content to a new file (never an existing one) and returns it. */
function createCopy(rc: KindRestoreContext, e: EntryOf<'deleted'>): Nameless {
  return createNameless(rc.ctx, {
    path: e.path,
    what: `fd ${e.fd} of process ${rc.ctx.pid}`,
    make(path) {
      // 0600 until the target has opened it: the saved mode may not let the owner open it as saved.
      const fd = openSync(path, 'wx', 0o600);
      try {
        fill(rc, e, fd);
      } catch (err) {
        rmSync(path, { force: true }); // ours: created just now
        throw err;
      } finally {
        closeSync(fd);
      }
    },
  });
}

/** ctx.shared key of the recreated file of a saved inode (an O_PATH fd of the restorer on it). */
const inodeKey = (e: EntryOf<'deleted'>) => `deleted:${e.pages ?? e.blob}`;

export const deletedReopener: TargetReopener<'deleted'> = {
  at: 'target',
  open(rc: KindRestoreContext, e: EntryOf<'deleted'>): number {
    const flags = reopenFlags(e.flags, { directory: false });
    // Another description of an inode recreated already (a hard link, another open): the same file.
    const known = rc.ctx.shared.get(inodeKey(e));
    if (known !== undefined) return rc.target.reopenLocal(known, flags);
    const copy = createCopy(rc, e);
    try {
      try {
        chownSync(copy.path, e.uid, e.gid);
      } catch (err) {
        rc.ctx.warn(`fd ${e.fd} of process ${rc.ctx.pid}: cannot give deleted ${e.path} its owner ${e.uid}:${e.gid} (${errnoCode(err)})`);
      }
      const fd = rc.target.open(copy.path, flags);
      chmodSync(copy.path, e.mode);
      rc.ctx.shared.set(inodeKey(e), openSync(copy.path, O.PATH | O.CLOEXEC));
      return fd;
    } finally {
      copy.remove();
    }
  },
  seekable: (e) => !isPathOnly(e.flags),
};
