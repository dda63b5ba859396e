/**
 * The saved shape of a process's fd table: one entry per fd, discriminated by kind.
 * Everything here comes back from an image, so it is validated as untrusted input:
 * paths must be absolute and NUL-free, fd numbers unique, a dup must point at an
 * earlier fd.
 */
import { z } from 'zod';
import { zBig } from '../../images/index.js';

const PATH_MAX = 4096;
const FD_MAX = 0x7fffffff;

/** An absolute path as the target saw it; opened by the target at restore. */
export const zPath = z
  .string()
  .min(1)
  .max(PATH_MAX - 1)
  .refine((p) => p.startsWith('/'), 'path must be absolute')
  .refine((p) => !p.includes('\0'), 'path must not contain NUL');

const zFd = z.number().int().min(0).max(FD_MAX);
/** fdinfo "flags": the file's open flags, plus O_CLOEXEC when the fd has it. */
const zFlags = z.number().int().min(0).max(0xffffffff);
const zBlobName = z
  .string()
  .min(1)
  .max(255)
  .refine((n) => !n.includes('/') && !n.includes('\0') && n !== '.' && n !== '..', 'bad blob name');

const fileBase = { fd: zFd, flags: zFlags, pos: zBig };

/** A regular file reopened by path. `size` is what it had at dump (for a warning if it shrank). */
export const regEntry = z.object({ kind: z.literal('reg'), ...fileBase, path: zPath, size: zBig });
export const dirEntry = z.object({ kind: z.literal('dir'), ...fileBase, path: zPath });
/** A file with no name left (unlinked, O_TMPFILE): its content is the blob. */
export const deletedEntry = z.object({
  kind: z.literal('deleted'),
  ...fileBase,
  /** Where it lived, without the " (deleted)" suffix; the restored copy is created next to it. */
  path: zPath,
  blob: zBlobName,
  /** Permission bits (st_mode & 07777). */
  mode: z.number().int().min(0).max(0o7777),
  uid: z.number().int().min(0).max(0xffffffff),
  gid: z.number().int().min(0).max(0xffffffff),
  size: zBig,
});
/** A character device reopened by path; rdev is checked so the path still means the same device. */
export const chrEntry = z.object({ kind: z.literal('chr'), ...fileBase, path: zPath, rdev: z.number().int().min(0) });
/** fds 0-2 that cannot be reopened (pipe, socket, tty…): the restored process keeps the restorer's. */
export const inheritEntry = z.object({
  kind: z.literal('inherit'),
  /** Only the standard descriptors: the restorer's other fds are not the target's business. */
  fd: z.number().int().min(0).max(2),
  /** What it was at dump, e.g. "pipe:[123]" or "/dev/pts/3", for messages. */
  link: z.string().max(PATH_MAX),
  tty: z.boolean(),
});
/** An fd sharing its open file description (offset, flags) with an earlier fd. */
export const dupEntry = z.object({ kind: z.literal('dup'), fd: zFd, of: zFd, cloexec: z.boolean() });

export const fdEntry = z.discriminatedUnion('kind', [regEntry, dirEntry, deletedEntry, chrEntry, inheritEntry, dupEntry]);

export const filesSchema = z
  .object({ fds: z.array(fdEntry).max(1 << 20) })
  .superRefine((s, ctx) => {
    const seen = new Set<number>();
    for (const [i, e] of s.fds.entries()) {
      if (seen.has(e.fd)) ctx.addIssue({ code: 'custom', path: ['fds', i, 'fd'], message: `fd ${e.fd} appears twice` });
      if (e.kind === 'dup' && !(e.of < e.fd && seen.has(e.of))) {
        ctx.addIssue({ code: 'custom', path: ['fds', i, 'of'], message: `fd ${e.fd} duplicates fd ${e.of}, which is not an earlier entry` });
      }
      seen.add(e.fd);
    }
  });

export type FdEntry = z.output<typeof fdEntry>;
export type FdKindName = FdEntry['kind'];
export type EntryOf<K extends FdKindName> = Extract<FdEntry, { kind: K }>;
export type FilesState = z.output<typeof filesSchema>;
