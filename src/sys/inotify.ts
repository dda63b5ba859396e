/** inotify and fanotify instances made by the restorer, whose watches and marks are added back. */
import { call, callNum } from './call.js';
import { addressOf } from './native.js';
import { NR } from './nr.js';

export const IN = { NONBLOCK: 0o4000, CLOEXEC: 0o2000000 } as const;

export function inotifyInit1(flags: number): number {
  return callNum(NR.inotify_init1, [flags], { name: 'inotify_init1' });
}

/** inotify_add_watch(fd, path, mask): the watch descriptor the kernel gave. */
export function inotifyAddWatch(fd: number, args: { path: string; mask: number }): number {
  const p = Buffer.from(`${args.path}\0`);
  const wd = callNum(NR.inotify_add_watch, [fd, addressOf(p), args.mask >>> 0], { name: `inotify_add_watch(${args.path})` });
  p.fill(0); // keeps `p` referenced until the call has returned
  return wd;
}

export function inotifyRmWatch(fd: number, wd: number): void {
  call(NR.inotify_rm_watch, [fd, wd], { name: `inotify_rm_watch(${wd})` });
}

export const FAN = { NONBLOCK: 0x2, CLASS_MASK: 0xc } as const;
export const FAN_MARK = {
  ADD: 0x1, DONT_FOLLOW: 0x4, IGNORED_MASK: 0x20, IGNORED_SURV_MODIFY: 0x40, MOUNT: 0x10, FILESYSTEM: 0x100, EVICTABLE: 0x200, IGNORE: 0x400,
} as const;

export function fanotifyInit(flags: number, eventFlags: number): number {
  return callNum(NR.fanotify_init, [flags >>> 0, eventFlags >>> 0], { name: 'fanotify_init' });
}

/** fanotify_mark(fd, flags, mask, AT_FDCWD, path). */
export function fanotifyMark(fd: number, args: { flags: number; mask: number; path: string }): void {
  const p = Buffer.from(`${args.path}\0`);
  call(NR.fanotify_mark, [fd, args.flags >>> 0, BigInt(args.mask >>> 0), -100, addressOf(p)], { name: `fanotify_mark(${args.path})` });
  p.fill(0);
}
