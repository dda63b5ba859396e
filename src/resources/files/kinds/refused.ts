/**
 * Kernel objects behind an fd that ckpt refuses for good reasons, each with a message
 * that says why (not the generic "not supported yet"): their state lives in the
 * kernel where no interface shows it, or they are not the process's to recreate.
 */
import type { FdFacts } from '../facts.js';
import { dumpError, type DumpFn } from './kind.js';

interface Refusal {
  match(f: FdFacts): boolean;
  what: string;
  why: string;
}

const anon = (name: string) => (f: FdFacts) => f.link === `anon_inode:[${name}]` || f.link === `anon_inode:${name}`;

export const REFUSALS: readonly Refusal[] = [
  {
    match: anon('userfaultfd'),
    what: 'userfaultfd files',
    why: 'the ranges registered on it, their modes and the faults waiting on it are shown by no interface',
  },
  {
    match: anon('io_uring'),
    what: 'io_uring instances',
    why: 'their rings, registered files and buffers, and the requests in flight cannot be read or rebuilt from outside',
  },
  {
    match: (f) => /^anon_inode:\[?bpf[-_]/.test(f.link),
    what: 'BPF objects',
    why: "maps, programs and links are loaded into the kernel and may be pinned or attached elsewhere; they are not the process's to recreate",
  },
  {
    match: anon('perf_event'),
    what: 'perf_event files',
    why: 'the counters, their groups and ring buffers cannot be saved and set back',
  },
  {
    match: anon('seccomp notify'),
    what: 'seccomp user notification listeners',
    why: 'the notifications waiting on them cannot be saved',
  },
];

/** The dump rule of a refusal: a clear UNSUPPORTED error naming the fd and why. */
export function refuse(r: Refusal): DumpFn {
  return (_dc, f) => {
    throw dumpError(f, { code: 'UNSUPPORTED', reason: `${r.what} are not supported: ${r.why} (${f.link})` });
  };
}
