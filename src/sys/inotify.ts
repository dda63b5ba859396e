/** inotify instances made by the restorer, whose watches are added back with their old numbers. */
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
