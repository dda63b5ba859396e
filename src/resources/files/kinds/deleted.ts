/**
 * Files whose name is gone (unlinked while open, O_TMPFILE): nothing to reopen, so
 * the content is saved as a blob. At restore the blob is written to a new file — at
 * the old path if that name is free, else next to it, else beside the images — the
 * target opens it, and it is unlinked again, so the process holds a nameless file
 * with the same content, offset and flags.
 */
import {
  chmodSync, chownSync, closeSync, openSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { DELETED_SUFFIX, fdPath, type FdFacts } from '../facts.js';
import { isPathOnly, reopenFlags } from '../flags.js';
import type { EntryOf } from '../schema.js';
import { locallyAs } from '../../process/fscreds.js';
import { dumpError, restoreError, savedPath, type KindDumpContext, type KindRestoreContext, type TargetReopener } from './kind.js';

export function dumpDeleted({ ctx }: KindDumpContext, f: FdFacts): EntryOf<'deleted'> {
  const named = f.link.endsWith(DELETED_SUFFIX) ? f.link.slice(0, -DELETED_SUFFIX.length) : f.link;
  const path = savedPath(f, named);
  if (f.stat.nlink > 0) {
    ctx.warn(`fd ${f.fd} of process ${f.pid}: ${path} was unlinked but its file has ${f.stat.nlink} other link(s); it is restored as a private copy`);
  }
  let data: Buffer;
  try {
    // The magic link still opens the file after its last name is gone.
    data = readFileSync(fdPath(f.pid, f.fd));
  } catch (e) {
    throw dumpError(f, { code: 'IO', reason: `cannot read the deleted file ${f.link}: ${(e as Error).message}` });
  }
  const blob = ctx.blobs.put(`fd-${f.pid}-${f.fd}.deleted`, data);
  const { mode, uid, gid } = statSync(fdPath(f.pid, f.fd));
  return {
    kind: 'deleted', fd: f.fd, flags: f.flags, pos: f.pos, path, blob,
    mode: mode & 0o7777, uid, gid, size: BigInt(data.length),
  };
}

function errnoCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/** Where the copy may be created, best first. */
function candidates(rc: KindRestoreContext, e: EntryOf<'deleted'>): string[] {
  const tag = `${rc.ctx.pid}-${e.fd}-${randomBytes(4).toString('hex')}`;
  return [
    e.path, // same name: /proc/PID/fd/N reads exactly as before
    join(dirname(e.path), `.ckpt-${basename(e.path)}-${tag}`),
    join(dirname(rc.ctx.blobs.path(e.blob)), `.ckpt-deleted-${tag}`),
  ];
}

/** Writes the content to a new file (never an existing one); its removal is registered on the undo stack. */
function createCopy(rc: KindRestoreContext, e: EntryOf<'deleted'>, data: Buffer): { path: string; remove(): void } {
  const tried: string[] = [];
  for (const path of candidates(rc, e)) {
    let fd: number;
    try {
      // 0600 until the target has opened it: the saved mode may not let the owner open it as saved.
      fd = openSync(path, 'wx', 0o600);
    } catch (err) {
      tried.push(`${path}: ${errnoCode(err)}`);
      continue;
    }
    try {
      writeFileSync(fd, data);
    } catch (err) {
      rmSync(path, { force: true }); // ours: created just now
      tried.push(`${path}: ${errnoCode(err)}`);
      continue;
    } finally {
      closeSync(fd);
    }
    let removed = false;
    const remove = () => {
      if (!removed) unlinkSync(path);
      removed = true;
    };
    // Once unlinked, the name may be reused by someone else: the undo must not touch it then.
    rc.ctx.undo.push(`remove ${path}`, () => {
      if (!removed) rmSync(path, { force: true });
    });
    return { path, remove };
  }
  throw restoreError(rc, { fd: e.fd, code: 'IO', reason: `cannot create a copy of deleted ${e.path} (${tried.join('; ')})` });
}

export const deletedReopener: TargetReopener<'deleted'> = {
  at: 'target',
  open(rc: KindRestoreContext, e: EntryOf<'deleted'>): number {
    const data = rc.ctx.blobs.get(e.blob);
    if (BigInt(data.length) !== e.size) {
      throw restoreError(rc, { fd: e.fd, code: 'BAD_IMAGE', reason: `the saved content of deleted ${e.path} has ${data.length} bytes, not ${e.size}` });
    }
    // Created, given away and chmod'ed with the process's credentials when the images are
    // not trusted: never a root-owned (or setuid) file made from an image's bytes.
    const as = rc.ctx.openAs;
    const copy = locallyAs(as, () => createCopy(rc, e, data));
    try {
      try {
        locallyAs(as, () => chownSync(copy.path, e.uid, e.gid));
      } catch (err) {
        rc.ctx.warn(`fd ${e.fd} of process ${rc.ctx.pid}: cannot give deleted ${e.path} its owner ${e.uid}:${e.gid} (${errnoCode(err)})`);
      }
      const fd = rc.target.open(copy.path, reopenFlags(e.flags, { directory: false }));
      locallyAs(as, () => chmodSync(copy.path, e.mode));
      return fd;
    } finally {
      copy.remove();
    }
  },
  seekable: (e) => !isPathOnly(e.flags),
};
