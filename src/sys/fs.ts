/**
 * File system calls Node has no API for: mknodat (FIFOs and device nodes), and file
 * handles (name_to_handle_at / open_by_handle_at: an inode named by the file system,
 * independent of any path).
 */
import { call, callNum } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';

const AT_FDCWD = -100;
const AT_SYMLINK_FOLLOW = 0x400;
const MAX_HANDLE_SZ = 128;

/** Linux's dev_t as mknod(2) takes it (new_encode_dev), from a major and minor number. */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** mknodat(AT_FDCWD, path, mode, dev): mode includes the file type (S_IFIFO, S_IFCHR). */
export function mknod(path: string, args: { mode: number; dev?: number }): void {
  const p = Buffer.from(`${path}\0`);
  call(NR.mknodat, [AT_FDCWD, addressOf(p), args.mode, args.dev ?? 0], { name: `mknod(${path})` });
}

/** linkat(AT_FDCWD, from, AT_FDCWD, to, AT_SYMLINK_FOLLOW): from may be a /proc/self/fd/N link of a linked file. */
export function linkFollow(from: string, to: string): void {
  const a = Buffer.from(`${from}\0`);
  const b = Buffer.from(`${to}\0`);
  call(NR.linkat, [AT_FDCWD, addressOf(a), AT_FDCWD, addressOf(b), AT_SYMLINK_FOLLOW], { name: `linkat(${to})` });
}

const RENAME_EXCHANGE = 2;

/** renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE): swaps two paths atomically (both must exist). */
export function exchangePaths(a: string, b: string): void {
  const pa = Buffer.from(`${a}\0`);
  const pb = Buffer.from(`${b}\0`);
  call(NR.renameat2, [AT_FDCWD, addressOf(pa), AT_FDCWD, addressOf(pb), RENAME_EXCHANGE], { name: `renameat2(${b}, RENAME_EXCHANGE)` });
}

export interface FileHandle {
  type: number;
  /** The handle bytes, opaque to us. */
  bytes: Buffer;
  /** The mount the handle was taken on (mnt_id of /proc/PID/mountinfo). */
  mountId: number;
}

/** name_to_handle_at(AT_FDCWD, path, …, AT_SYMLINK_FOLLOW): a /proc/PID/fd/N link names the open file. */
export function nameToHandle(path: string): FileHandle {
  const p = Buffer.from(`${path}\0`);
  const h = Buffer.alloc(8 + MAX_HANDLE_SZ);
  h.writeUInt32LE(MAX_HANDLE_SZ, 0);
  const mnt = Buffer.alloc(4);
  call(NR.name_to_handle_at, [AT_FDCWD, addressOf(p), addressOf(h), addressOf(mnt), AT_SYMLINK_FOLLOW], { name: `name_to_handle_at(${path})` });
  const len = h.readUInt32LE(0);
  return { type: h.readInt32LE(4), bytes: Buffer.from(h.subarray(8, 8 + len)), mountId: mnt.readInt32LE(0) };
}

/** open_by_handle_at(mountFd, handle, flags); needs CAP_DAC_READ_SEARCH. */
export function openByHandle(mountFd: number, args: { type: number; bytes: Buffer; flags: number }): number {
  const h = Buffer.alloc(8 + args.bytes.length);
  h.writeUInt32LE(args.bytes.length, 0);
  h.writeInt32LE(args.type, 4);
  args.bytes.copy(h, 8);
  return callNum(NR.open_by_handle_at, [mountFd, addressOf(h), args.flags], { name: 'open_by_handle_at' });
}
