/**
 * Dump of a stopped process's fd table: read-only, from /proc and kcmp; nothing is
 * injected. Each fd goes to the first registry rule that matches it; an fd on the
 * same open file description as an earlier one is saved as a dup of it.
 */
import { listFds } from '../../proc/index.js';
import type { DumpContext } from '../types.js';
import { DupFinder } from './dups.js';
import { readFacts } from './facts.js';
import { isCloexec } from './flags.js';
import { chooseRule } from './registry.js';
import type { FdEntry, FilesState } from './schema.js';

export function dumpFiles(ctx: DumpContext): FilesState {
  const fds: FdEntry[] = [];
  const dups = new DupFinder(ctx.pid);
  for (const fd of listFds(ctx.pid)) {
    const facts = readFacts(ctx.pid, fd);
    const rule = chooseRule(facts);
    // An inherited fd keeps whatever the restorer has at that number, shared or not.
    const of = rule.kind === 'inherit' ? undefined : dups.find(facts);
    if (of !== undefined) {
      fds.push({ kind: 'dup', fd, of, cloexec: isCloexec(facts.flags) });
      continue;
    }
    fds.push(rule.dump(ctx, facts));
    dups.add(facts);
  }
  return { fds };
}
