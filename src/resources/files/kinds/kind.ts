/**
 * What a file kind module provides. A dump rule (registry.ts) turns the facts about
 * one fd into a saved entry; a reopener rebuilds an entry of its kind, either in the
 * target (open a path there: 'target') or in the restorer (create a pipe or socket
 * here, handed to the target with pidfd_getfd: 'local'). 'inherit' and 'dup' entries
 * need no opening: the restore loop handles them itself.
 */
import { CkptError, type ErrorCode } from '../../../common/errors.js';
import type { DumpContext, RestoreContext } from '../../types.js';
import type { FdFacts } from '../facts.js';
import type { DumpObjects } from '../objects.js';
import type { EntryOf, FdEntry, PipeObject, UnixObject } from '../schema.js';
import type { TargetFds } from '../target.js';

export type ReopenKind =
  | 'reg' | 'dir' | 'path' | 'deleted' | 'chr' | 'pipe' | 'fifo' | 'unix' | 'memfd'
  | 'eventfd' | 'timerfd' | 'signalfd' | 'epoll' | 'inet' | 'mqueue' | 'tty' | 'devtty' | 'netlink' | 'ipsock' | 'packet'
  | 'inotify' | 'pidfd' | 'fanotify';

export interface KindDumpContext {
  ctx: DumpContext;
  /** Pipes and sockets met so far in this process, saved once each beside the fd entries. */
  objects: DumpObjects;
  /** Saves a file the restorer holds as local fd `fd` (one passed in a unix message), as what it is. */
  passedFd?(fd: number): FdEntry;
}

export interface KindRestoreContext {
  ctx: RestoreContext;
  target: TargetFds;
  /** The saved pipe objects (by id) and unix sockets (by inode) of this process's state. */
  pipes: ReadonlyMap<string, PipeObject>;
  unix: ReadonlyMap<number, UnixObject>;
  /** Every saved fd of this process (a deleted file's other names in it are made at once). */
  fds?: readonly FdEntry[];
  /** A new local fd of a file passed in a unix message (SCM_RIGHTS), reopened as its entry says. */
  passedFd?(entry: FdEntry): number;
}

export interface TargetReopener<K extends ReopenKind> {
  at: 'target';
  /** Opens the entry's file in the target with its saved flags; returns the fd the target got. */
  open(rc: KindRestoreContext, entry: EntryOf<K>): number;
  /** Whether the saved offset must be set with lseek after opening. */
  seekable(entry: EntryOf<K>): boolean;
}

export interface LocalReopener<K extends ReopenKind> {
  at: 'local';
  /**
   * Creates the entry's open file description in the restorer, with its saved status
   * flags; returns a new local fd, which the caller installs in the target and owns.
   */
  open(rc: KindRestoreContext, entry: EntryOf<K>): number;
}

export type Reopener<K extends ReopenKind> = TargetReopener<K> | LocalReopener<K>;

export type DumpFn = (dc: KindDumpContext, facts: FdFacts) => FdEntry;

export function dumpError(f: Pick<FdFacts, 'pid' | 'fd'>, err: { code: ErrorCode; reason: string }): CkptError {
  return new CkptError(err.code, `Cannot dump fd ${f.fd} of process ${f.pid}: ${err.reason}`);
}

export function restoreError(
  rc: KindRestoreContext | RestoreContext,
  err: { fd: number; code: ErrorCode; reason: string; cause?: unknown },
): CkptError {
  const pid = 'ctx' in rc ? rc.ctx.pid : rc.pid;
  return new CkptError(err.code, `Cannot restore fd ${err.fd} of process ${pid}: ${err.reason}`, { cause: err.cause });
}

/** The link of a path-backed fd, checked so that it can be stored and reopened. */
export function savedPath(f: FdFacts, path: string): string {
  if (!path.startsWith('/')) throw dumpError(f, { code: 'UNSUPPORTED', reason: `its path is not absolute (${f.link})` });
  // readlink bytes that are not UTF-8 come back with U+FFFD: reopening that name would miss the file.
  if (path.includes('\uFFFD')) throw dumpError(f, { code: 'UNSUPPORTED', reason: `its path is not valid UTF-8 (${f.link})` });
  return path;
}
