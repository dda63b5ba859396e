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
import { chmodSync, chownSync, closeSync, fchmodSync, fchownSync, fstatSync, ftruncateSync, linkSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { copyObjectPages, fillObject } from '../../memory/shmem.js';
import { fdPath, withoutDeletedSuffix, type FdFacts } from '../facts.js';
import { isPathOnly, O, reopenFlags } from '../flags.js';
import { createNameless, type Nameless } from '../nameless.js';
import type { EntryOf } from '../schema.js';
import { locallyAs } from '../../process/fscreds.js';
import { dumpError, restoreError, savedPath, type KindDumpContext, type KindRestoreContext, type TargetReopener } from './kind.js';
import { inodeLinkable } from './sockfields.js';

/**
 * Whether an O_TMPFILE file may still be given a name (made without O_EXCL, never linked
 * since); undefined for another nameless file. Refused when it cannot be read: restored
 * the wrong way, linkat would succeed where it failed, or fail where it worked.
 */
function tmpfileLinkable(f: FdFacts, local: number): boolean | undefined {
  if (!(f.flags & O.TMPFILE_BIT)) return undefined;
  const linkable = inodeLinkable(local);
  if (linkable === undefined) {
    throw dumpError(f, {
      code: 'UNSUPPORTED',
      reason: `cannot tell whether its O_TMPFILE file may still be linked (made with O_EXCL or not: the inode's I_LINKABLE, read with a BPF iterator, needs the kernel's BTF, CAP_BPF and CAP_PERFMON) (${f.link})`,
    });
  }
  return linkable;
}

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
    const linkable = tmpfileLinkable(f, local);
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
      mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: BigInt(st.size), ...(linkable === undefined ? {} : { linkable }),
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

/**
 * ctx.shared key of the recreated file of a saved inode (an O_PATH fd of the restorer
 * on it), by the name it had (`path`), or any name (no `path`).
 */
const inodeKey = (e: EntryOf<'deleted'>, path?: string) => `deleted:${e.pages ?? e.blob}${path === undefined ? '' : `:${path}`}`;

/**
 * The other names this process's fds knew the inode of `e` by (hard links): linked to
 * the copy before any is removed, so each fd reopens its own name, "(deleted)", as before.
 */
function linkOtherNames(rc: KindRestoreContext, e: EntryOf<'deleted'>, copy: Nameless): Nameless[] {
  const names = new Set<string>();
  for (const o of rc.fds ?? []) {
    if (o.kind === 'deleted' && inodeKey(o) === inodeKey(e) && o.path !== e.path) names.add(o.path);
  }
  const made: Nameless[] = [];
  for (const path of names) {
    const name = createNameless(rc.ctx, { path, what: `fd ${e.fd} of process ${rc.ctx.pid}`, make: (p) => linkSync(copy.path, p) });
    made.push(name);
    rc.ctx.shared.set(inodeKey(e, path), openSync(name.path, O.PATH | O.CLOEXEC));
  }
  return made;
}

/**
 * The recreated file gets its saved owner, or the restore fails naming it: a file of
 * another owner (the restorer's group, say) would be silently different.
 */
function giveOwner(rc: KindRestoreContext, e: EntryOf<'deleted'>, args: { what: string; chown: () => void }): void {
  try {
    args.chown();
  } catch (err) {
    throw restoreError(rc, { fd: e.fd, code: 'PERMISSION', reason: `cannot give ${args.what} its owner ${e.uid}:${e.gid} (${errnoCode(err)})`, cause: err });
  }
}

/**
 * A file made with O_TMPFILE (`__O_TMPFILE` stays in its f_flags): made again the same
 * way, by the target in the same directory, so it keeps the flag and can still be given
 * a name with linkat(AT_EMPTY_PATH), as a program finishing an atomic write does; one
 * that could not (made with O_EXCL, or linked and unlinked since) is made with O_EXCL.
 * The restorer fills it through the target's fd.
 */
function openTmpfile(rc: KindRestoreContext, e: EntryOf<'deleted'>): number {
  // O_TMPFILE needs write access; the saved access mode is one of those (the kernel refuses O_RDONLY).
  const flags = reopenFlags(e.flags, { directory: true }) | O.TMPFILE_BIT | (e.linkable === false ? O.EXCL : 0);
  let fd: number;
  try {
    fd = rc.target.open(dirname(e.path), flags);
  } catch (err) {
    throw restoreError(rc, { fd: e.fd, code: 'FILE_CHANGED', reason: `cannot make its O_TMPFILE file in ${dirname(e.path)} again (${(err as Error).message})`, cause: err });
  }
  const local = openSync(`/proc/${rc.ctx.pid}/fd/${fd}`, O.RDWR | O.CLOEXEC);
  try {
    fill(rc, e, local);
    locallyAs(rc.ctx.openAs, () => {
      giveOwner(rc, e, { what: `its O_TMPFILE file in ${dirname(e.path)}`, chown: () => fchownSync(local, e.uid, e.gid) });
      fchmodSync(local, e.mode);
    });
    const path = openSync(`/proc/self/fd/${local}`, O.PATH | O.CLOEXEC);
    rc.ctx.shared.set(inodeKey(e), path);
    rc.ctx.shared.set(inodeKey(e, e.path), openSync(`/proc/self/fd/${path}`, O.PATH | O.CLOEXEC));
  } finally {
    closeSync(local);
  }
  return fd;
}

export const deletedReopener: TargetReopener<'deleted'> = {
  at: 'target',
  open(rc: KindRestoreContext, e: EntryOf<'deleted'>): number {
    const flags = reopenFlags(e.flags, { directory: false });
    // Another description of an inode recreated already (a hard link, another open): the
    // same file, through its own name if this process made it, else through any.
    const known = rc.ctx.shared.get(inodeKey(e, e.path)) ?? rc.ctx.shared.get(inodeKey(e));
    if (known !== undefined) return rc.target.reopenLocal(known, flags);
    if (e.flags & O.TMPFILE_BIT) return openTmpfile(rc, e);
    // Created, given away and chmod'ed with the process's credentials when the images are
    // not trusted: never a root-owned (or setuid) file made from an image's bytes.
    const as = rc.ctx.openAs;
    const copy = locallyAs(as, () => createCopy(rc, e));
    const names = [copy];
    try {
      giveOwner(rc, e, { what: `deleted ${e.path}`, chown: () => locallyAs(as, () => chownSync(copy.path, e.uid, e.gid)) });
      const fd = rc.target.open(copy.path, flags);
      locallyAs(as, () => chmodSync(copy.path, e.mode));
      const local = openSync(copy.path, O.PATH | O.CLOEXEC);
      rc.ctx.shared.set(inodeKey(e), local);
      rc.ctx.shared.set(inodeKey(e, e.path), openSync(`/proc/self/fd/${local}`, O.PATH | O.CLOEXEC));
      names.push(...locallyAs(as, () => linkOtherNames(rc, e, copy)));
      return fd;
    } finally {
      for (const n of names) n.remove();
    }
  },
  seekable: (e) => !isPathOnly(e.flags),
};
