/** Kinds ckpt cannot save yet: their dump refuses with a message naming the kind. */
import type { FdFacts } from '../facts.js';
import { dumpError, type DumpFn } from './kind.js';

/** `what` is a plural noun phrase: "pipes", "eventfd files". */
export function unsupported(what: string | ((f: FdFacts) => string)): DumpFn {
  return (_ctx, f) => {
    const name = typeof what === 'string' ? what : what(f);
    throw dumpError(f, { code: 'UNSUPPORTED', reason: `${name} are not supported yet (${f.link})` });
  };
}

/** "anon_inode:[eventfd]" → "eventfd files", "anon_inode:bpf-map" → "bpf-map files". */
export function anonName(f: FdFacts): string {
  const m = /^anon_inode:\[?([^\]]*)\]?$/.exec(f.link);
  return `${m?.[1] || 'anonymous inode'} files`;
}
