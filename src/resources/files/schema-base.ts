/**
 * Building blocks of the fd table's schema (schema.ts) that the socket entries
 * (socket-schema.ts) share with the other kinds.
 */
import { z } from 'zod';
import { zBig } from '../../images/index.js';

export const PATH_MAX = 4096;
const FD_MAX = 0x7fffffff;

/** An absolute path as the target saw it; opened by the target at restore. */
export const zPath = z
  .string()
  .min(1)
  .max(PATH_MAX - 1)
  .refine((p) => p.startsWith('/'), 'path must be absolute')
  .refine((p) => !p.includes('\0'), 'path must not contain NUL');

export const zFd = z.number().int().min(0).max(FD_MAX);
/** fdinfo "flags": the file's open flags, plus O_CLOEXEC when the fd has it. */
export const zFlags = z.number().int().min(0).max(0xffffffff);
export const zBlobName = z
  .string()
  .min(1)
  .max(255)
  .refine((n) => !n.includes('/') && !n.includes('\0') && n !== '.' && n !== '..', 'bad blob name');

/**
 * `desc`: id of the open file description, the same for every fd (in any process of
 * the dump) that shares it. At restore the first fd of a description opens it and
 * registers it in the shared table; the others take a copy of that one.
 */
export const zDesc = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional();
/**
 * Who gets the description's I/O signals (F_GETOWN_EX: a thread, process or process
 * group) and which signal (F_GETSIG, 0 = SIGIO); absent when neither is set.
 */
export const fdOwner = z.object({
  type: z.enum(['tid', 'pid', 'pgrp']),
  id: z.number().int().min(0).max(0x7fffffff),
  sig: z.number().int().min(0).max(64),
  /** F_GETOWNER_UIDS: the real and effective uid of whoever set the owner (SIGIO permission); absent when root's. */
  uids: z.tuple([z.number().int().min(0).max(0xffffffff), z.number().int().min(0).max(0xffffffff)]).optional(),
});
export const fileBase = { fd: zFd, flags: zFlags, pos: zBig, desc: zDesc, owner: fdOwner.optional() };
/**
 * The owner of an inode the restore makes anew (a pipe's, a socket's: `fstat` shows it,
 * and a socket's is its `sk_uid`, which routing rules and netfilter's owner match use):
 * the fsuid/fsgid of whoever made it, or a later fchown. Absent in older images.
 */
export const inodeOwner = z.object({ uid: z.number().int().min(0).max(0xffffffff), gid: z.number().int().min(0).max(0xffffffff) });
/** Kinds with no file offset (pipes, sockets). */
export const streamBase = { fd: zFd, flags: zFlags, desc: zDesc, owner: fdOwner.optional(), inode: inodeOwner.optional() };
export const zIno = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

/** Bytes saved inline (base64) when small, else as a blob; `size` is checked at restore. */
export const payload = z
  .object({ size: z.number().int().min(0).max(2 ** 40), data: z.string().max(1 << 20).optional(), blob: zBlobName.optional() })
  .refine((p) => (p.data === undefined) !== (p.blob === undefined), 'exactly one of data and blob');

/**
 * A socket option that differed from a fresh socket's (kinds/sockopts.ts lists the ones
 * set back): an int `value`, or the raw bytes getsockopt gave (`raw`, hex).
 */
export const sockOpt = z
  .object({
    level: z.number().int().min(0).max(0xffff),
    name: z.number().int().min(0).max(0xffff),
    value: z.number().int().optional(),
    raw: z.string().max(1 << 16).regex(/^([0-9a-f]{2})*$/).optional(),
  })
  .refine((o) => (o.value === undefined) !== (o.raw === undefined), 'exactly one of value and raw');
/** sk_shutdown as sock_diag reports it: RCV_SHUTDOWN 1, SEND_SHUTDOWN 2. */
export const zShutdown = z.number().int().min(0).max(3).optional();
