/**
 * Dump of a stopped process's fd table, from /proc and kcmp, plus copies of fds taken
 * with pidfd_getfd to read pipe buffers and socket queues (nothing is injected). Each
 * fd goes to the first registry rule that matches it. An fd on the same open file
 * description as an earlier fd of this process is saved as a dup of it; every other
 * entry carries its description id, so that fds of other processes on the same
 * description are restored onto one.
 */
import { listFds, readFdinfo } from '../../proc/index.js';
import { forEachFdLink } from '../sharing/descriptions.js';
import { closeFd, kcmp, pidfdOpen } from '../../sys/index.js';
import type { DumpContext } from '../types.js';
import { DupFinder } from './dups.js';
import { isChr, readFacts, type FdFacts } from './facts.js';
import { isCloexec, isPathOnly, O } from './flags.js';
import { dumpError, type KindDumpContext } from './kinds/kind.js';
import { saveInodeOwner } from './inode-owner.js';
import { LockCollector } from './locks.js';
import { dumpFcntlState } from './owner.js';
import { DumpObjects } from './objects.js';
import { chooseRule } from './registry.js';
import { ptyMastersOf } from './kinds/tty.js';
import { pipeOtherEndGone } from './kinds/pipe.js';
import type { FdEntry, FilesState } from './schema.js';

/** The description id of an entry: tree-wide when the orchestrator knows it, else the fd's own number. */
function descOf(ctx: DumpContext, fd: number): number | undefined {
  return ctx.descriptionOf ? ctx.descriptionOf(fd) : fd;
}

/**
 * pipeOtherEndGone, except when restore --check reads a process back: the restorer then
 * still holds both ends of every pipe it made, so a pipe it holds is one of the tree's.
 */
function stdPipeOtherEndGone(ctx: DumpContext, f: FdFacts): boolean {
  if (!ctx.checking) return pipeOtherEndGone(f);
  let mine = false;
  forEachFdLink([process.pid], ({ link }) => (mine ||= link === f.link));
  return mine;
}

export function dumpFiles(ctx: DumpContext): FilesState {
  const fds: FdEntry[] = [];
  const dups = new DupFinder(ctx.pid);
  const dc: KindDumpContext = { ctx, objects: new DumpObjects(), passedFd: (fd) => dumpPassedFd(dc, fd) };
  const locks = new LockCollector();
  // One pidfd for the copies of all the process's fds (owner.ts).
  const pidfd = pidfdOpen(ctx.pid);
  try {
    for (const fd of listFds(ctx.pid)) {
      const facts = readFacts(ctx.pid, fd);
      facts.inTree = (ctx.linkCount?.(facts.link) ?? 0) > 1;
      if (fd <= 2 && !facts.inTree && facts.link.startsWith('pipe:')) facts.otherEndGone = stdPipeOtherEndGone(ctx, facts);
      if (isChr(facts.stat)) facts.ptyMasters = ptyMastersOf(ctx);
      const rule = chooseRule(facts);
      // An inherited fd keeps whatever the restorer has at that number, shared or not.
      const of = rule.kind === 'inherit' ? undefined : dups.find(facts);
      if (of !== undefined) {
        fds.push({ kind: 'dup', fd, of, cloexec: isCloexec(facts.flags) });
        locks.add(facts, { via: of, restored: true });
        continue;
      }
      const entry = rule.dump(dc, facts);
      locks.add(facts, { via: fd, restored: entry.kind !== 'inherit' });
      // An O_PATH description has no owner (fcntl F_GETOWN_EX answers EBADF there).
      if (entry.kind !== 'inherit' && entry.kind !== 'dup') {
        const { owner, rwHint } = isPathOnly(facts.flags) ? {} : dumpFcntlState(facts, { pidfd, regular: entry.kind === 'reg' || entry.kind === 'deleted' });
        // fcntl(F_NOTIFY) makes its caller the directory fd's owner; its watch is shown nowhere.
        if (owner && entry.kind === 'dir') {
          throw dumpError(facts, { code: 'UNSUPPORTED', reason: `its directory ${facts.link} has an owner (${owner.type} ${owner.id}, signal ${owner.sig}): a dnotify watch (F_NOTIFY), which no interface shows` });
        }
        if (owner) entry.owner = owner;
        if (rwHint && (entry.kind === 'reg' || entry.kind === 'deleted')) entry.rwHint = rwHint;
        saveInodeOwner(entry, facts);
        const desc = descOf(ctx, fd);
        if (desc !== undefined) entry.desc = desc;
      }
      fds.push(entry);
      dups.add(facts);
    }
  } finally {
    closeFd(pidfd);
  }
  checkLonelyEnds(ctx, dc.objects, fds);
  const state: FilesState = { fds };
  if (dc.objects.pipes.size > 0) state.pipes = [...dc.objects.pipes.values()];
  if (dc.objects.unix.size > 0) state.unix = [...dc.objects.unix.values()];
  if (locks.locks.length > 0) state.locks = locks.locks;
  if (dc.objects.passed.length > 0) state.passed = dc.objects.passed;
  return state;
}

/** Kinds whose dump reads only the file itself (not its owner process), so that a passed copy of ours can be saved. */
const PASSABLE = new Set(['reg', 'dir', 'chr', 'pipe', 'fifo', 'unix', 'eventfd']);

/**
 * A file passed in a unix message, which the peek gave us as local fd `fd`: saved by its
 * rule, with the tree-wide id of its open file description when a process of the tree
 * holds it too (kcmp against every fd of the tree).
 */
function dumpPassedFd(dc: KindDumpContext, fd: number): FdEntry {
  const facts = readFacts(process.pid, fd);
  const rule = chooseRule(facts);
  if (!PASSABLE.has(rule.kind)) throw dumpError(facts, { code: 'UNSUPPORTED', reason: `a file of this kind in flight in a unix message cannot be saved yet (${facts.link})` });
  const entry = rule.dump(dc, facts);
  for (const [pid, fds] of dc.ctx.treeDescriptions ?? []) {
    for (const [theirs, desc] of fds) {
      if (kcmp({ pid1: process.pid, pid2: pid, type: 'FILE', idx1: fd, idx2: theirs }) === 0) {
        if (entry.kind !== 'dup' && entry.kind !== 'inherit') entry.desc = desc;
        return entry;
      }
    }
  }
  return entry;
}

/** Whether a process of the tree other than this one holds `link` open for reading or for writing. */
function treeHolds(ctx: DumpContext, link: string, end: 'read' | 'write'): boolean {
  const others = [...(ctx.treeDescriptions?.keys() ?? [])].filter((pid) => pid !== ctx.pid);
  let holds = false;
  forEachFdLink(others, ({ pid, fd, link: l }) => {
    if (holds || l !== link) return;
    let acc: number;
    try {
      acc = readFdinfo(pid, fd).flags & O.ACCMODE;
    } catch {
      return; // closed meanwhile: the processes are stopped, so not by them
    }
    holds = end === 'read' ? acc !== O.WRONLY : acc !== O.RDONLY;
  });
  return holds;
}

/**
 * A pipe end whose other end lives outside the dump would come back without it: a
 * writer would get EPIPE, a reader EOF. That is refused, naming the fd. A pipe with no
 * reader (or no writer) left at all is restored as it is, which is the same. A socket
 * whose peer is elsewhere cannot be rebuilt at all. (In a tree dump the other end may
 * be another process's; the unix peer check is then the orchestrator's.)
 */
function checkLonelyEnds(ctx: DumpContext, objects: DumpObjects, fds: FdEntry[]): void {
  // Only a dump knows its tree; restore --check reads a process back while the restorer
  // itself still holds the pipes it made, which would look like ends outside.
  for (const [id, ends] of ctx.treeDescriptions && !ctx.checking ? objects.pipeEnds : []) {
    if (!id.startsWith('pipe:') || ends.read === ends.write) continue;
    const peers = objects.pipePeers.get(id);
    const missing = ends.write ? 'read' : 'write';
    const exists = missing === 'read' ? peers?.readers : peers?.writers;
    const link = `pipe:[${id.slice(5)}]`;
    if (!exists || treeHolds(ctx, link, missing)) continue;
    const fd = fds.find((x) => x.kind === 'pipe' && `pipe:${x.ino}` === id)?.fd ?? -1;
    throw dumpError({ pid: ctx.pid, fd }, {
      code: 'UNSUPPORTED',
      reason: `it holds only the ${ends.write ? 'write' : 'read'} end of ${link}, whose ${missing} end is held outside the dump (dump the process that holds it too)`,
    });
  }
  if (ctx.descriptionOf) return;
  for (const u of objects.unix.values()) {
    if (u.peer !== 0 && !objects.unix.has(u.peer)) {
      const fd = fds.find((x) => x.kind === 'unix' && x.ino === u.ino)?.fd ?? -1;
      throw dumpError({ pid: ctx.pid, fd }, {
        code: 'UNSUPPORTED',
        reason: `its unix socket socket:[${u.ino}] is connected to socket:[${u.peer}], which is outside the dumped process (dump the whole tree)`,
      });
    }
  }
}
