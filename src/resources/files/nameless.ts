/**
 * Recreating something whose name was removed while it was in use (a deleted file,
 * FIFO, device node, working directory): it is made under a free name — the old path
 * if nobody took it since, else a hidden name next to it, else beside the images —
 * opened (or entered) by its user, and its name removed again. The name never
 * replaces an existing file, and its removal is on the undo stack until it is done.
 */
import { chmodSync, chownSync, lstatSync, rmdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { lazyCrypto } from '../../common/builtin.js';
import { CkptError } from '../../common/errors.js';
import { encodeDev, mknod } from '../../sys/index.js';
import type { RestoreContext } from '../types.js';
import { DELETED_SUFFIX, fdPath, major, minor, withoutDeletedSuffix, type FdFacts } from './facts.js';
import type { RemovedNode } from './schema.js';

export interface Nameless {
  path: string;
  /** Removes the name (the object lives on while it is open or in use). */
  remove(): void;
}

function errnoCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? String(e);
}

/**
 * Makes the object with `make(path)`, which must fail (EEXIST) rather than replace
 * anything, at the first name that works. `what` names the user, e.g. "fd 3 of process 12";
 * `sameParent`: only in the directory of `path`.
 */
export function createNameless(
  ctx: RestoreContext,
  args: { path: string; what: string; dir?: boolean; sameParent?: boolean; make(path: string): void },
): Nameless {
  const tag = `${ctx.pid}-${lazyCrypto().randomBytes(4).toString('hex')}`;
  const candidates = [
    args.path, // same name: /proc/PID/fd/N reads exactly as before
    join(dirname(args.path), `.ckpt-${basename(args.path)}-${tag}`),
    // Only where its parent (what ".." of a directory leads to) does not matter.
    ...(args.sameParent ? [] : [join(dirname(ctx.blobs.path('x')), `.ckpt-deleted-${tag}`)]),
  ];
  const tried: string[] = [];
  for (const path of candidates) {
    try {
      args.make(path);
    } catch (err) {
      if (err instanceof CkptError) throw err; // a bad image, not a bad place
      tried.push(`${path}: ${errnoCode(err)}`);
      continue;
    }
    let removed = false;
    const remove = () => {
      if (!removed) (args.dir ? rmdirSync : unlinkSync)(path);
      removed = true;
    };
    // Once removed, the name may be reused by someone else: the undo must not touch it then.
    ctx.undo.push(`remove ${path}`, () => {
      if (!removed) rmSync(path, { force: true, recursive: args.dir ?? false });
    });
    return { path, remove };
  }
  throw new CkptError('IO', `Cannot restore ${args.what}: cannot recreate deleted ${args.path} (${tried.join('; ')})`);
}

/** Whether the name of the fd's file is gone: no link left, or " (deleted)" and the name now is another file or none. */
export function nameGone(f: FdFacts): boolean {
  if (f.stat.nlink === 0) return true;
  if (!f.link.endsWith(DELETED_SUFFIX)) return false;
  try {
    const st = lstatSync(withoutDeletedSuffix(f.link));
    return st.ino !== f.stat.ino || st.dev !== f.stat.dev;
  } catch {
    return true;
  }
}

/** Mode and owner of a FIFO or device node whose name is gone, for recreateNode. */
export function removedNode(f: FdFacts): RemovedNode {
  const st = statSync(fdPath(f.pid, f.fd));
  return { mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
}

/**
 * A new FIFO (S_IFIFO) or character device node (S_IFCHR, `rdev` as stat shows it) in
 * place of one whose name is gone, owned as saved, mode 0600 until the caller has
 * opened it and calls `finish` (sets the saved mode, removes the name).
 */
export function recreateNode(
  ctx: RestoreContext,
  args: { what: string; path: string; type: number; rdev?: number; attrs: RemovedNode },
): { path: string; finish(): void } {
  const dev = args.rdev === undefined ? 0 : encodeDev(major(args.rdev), minor(args.rdev));
  const node = createNameless(ctx, { path: args.path, what: args.what, make: (path) => mknod(path, { mode: args.type | 0o600, dev }) });
  try {
    chownSync(node.path, args.attrs.uid, args.attrs.gid);
  } catch (err) {
    node.remove();
    throw err;
  }
  return {
    path: node.path,
    finish() {
      try {
        chmodSync(node.path, args.attrs.mode);
      } finally {
        node.remove();
      }
    },
  };
}
