/**
 * File locks of every kind (CRIU's --file-locks, always on). Dump reads fdinfo's
 * "lock:" lines, which list the locks held through each open file whose owner is this
 * process's fd table (POSIX record locks) or the open file description itself (flock,
 * OFD locks, leases). Restore takes each lock again by a call injected into its owner
 * once every fd of the process is in place:
 *
 * - flock, OFD locks and leases belong to the description: taken once, by the process
 *   that opens the description (the others get the same description, lock included);
 * - POSIX locks belong to the process: taken by it, after every other restore step that
 *   opens and closes fds in it, since closing any fd of a file drops all its POSIX
 *   locks on that file (restoreFiles calls this last);
 * - a lease is set last: F_SETLEASE also makes the caller the file's SIGIO owner, which
 *   the saved owner (owners.ts) then replaces.
 *
 * A lock that cannot be taken non-blocking (someone else took it meanwhile) fails the
 * restore. A thread that was waiting for a lock (F_SETLKW, flock) was interrupted by the
 * dump with -ERESTARTSYS and simply waits again once it runs: waiters are not state.
 * Refused at dump: leases being broken, delegations and any other lock class, locks on
 * fds the restore does not rebuild (inherited standard fds), and POSIX locks taken by
 * another process sharing this fd table (CLONE_FILES: the lock would change its pid).
 */
import { parseLockLine, type LockLine } from '../../proc/index.js';
import { errnoName, NR } from '../../sys/index.js';
import type { FdFacts } from './facts.js';
import { dumpError, restoreError, type KindRestoreContext } from './kinds/kind.js';
import type { FileLock } from './schema.js';

const KINDS: Record<string, FileLock['kind'] | undefined> = { FLOCK: 'flock', POSIX: 'posix', OFDLCK: 'ofd', LEASE: 'lease' };
const F_SETLK = 6;
const F_OFD_SETLK = 37;
const F_SETLEASE = 1024;
const F_RDLCK = 0;
const F_WRLCK = 1;
const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;

function bytes(l: { start: bigint; end?: bigint }): string {
  return `bytes ${l.start}-${l.end ?? 'EOF'}`;
}

/** "flock write lock", "POSIX read lock on bytes 20-EOF", "read lease". */
export function describeLock(l: FileLock): string {
  switch (l.kind) {
    case 'flock':
      return `flock ${l.type} lock`;
    case 'lease':
      return `${l.type} lease`;
    default:
      return `${l.kind === 'posix' ? 'POSIX' : 'OFD'} ${l.type} lock on ${bytes(l)}`;
  }
}

/** One fdinfo lock line as a saved lock held through fd `via`, or a refusal naming it. */
function toLock(f: FdFacts, line: LockLine, via: number): FileLock {
  const kind = KINDS[line.class];
  const what = `${line.class} ${line.mode} ${line.type} lock on ${bytes(line)}`;
  const refuse = (why: string) => dumpError(f, { code: 'UNSUPPORTED', reason: `it holds a ${what}, which cannot be restored (${why})` });
  if (kind === undefined) throw refuse('an unknown kind of lock');
  if (line.mode !== (kind === 'lease' ? 'ACTIVE' : 'ADVISORY')) throw refuse(kind === 'lease' ? 'the lease is being broken' : 'not advisory');
  if (line.type !== 'READ' && line.type !== 'WRITE') throw refuse('neither a read nor a write lock');
  if (kind === 'posix' && line.pid !== f.pid) throw refuse(`taken by process ${line.pid}, which shares this fd table`);
  const lock: FileLock = { kind, fd: via, type: line.type === 'READ' ? 'read' : 'write', start: line.start };
  if (line.end !== undefined) lock.end = line.end;
  return lock;
}

/** Collects the locks of one process's fds, each once (dups list their description's locks again). */
export class LockCollector {
  readonly locks: FileLock[] = [];
  private readonly seen = new Set<string>();

  /**
   * The locks fdinfo shows on fd `f`. `via`: the fd they are restored through (the
   * earlier fd on the same description, for a dup); `restored`: whether the restore
   * rebuilds this fd's description at all (an inherited fd is not).
   */
  add(f: FdFacts, opts: { via: number; restored: boolean }): void {
    for (const text of f.locks ?? []) {
      const line = parseLockLine(text);
      const lock = toLock(f, line, opts.via);
      if (!opts.restored) {
        throw dumpError(f, { code: 'UNSUPPORTED', reason: `it holds a ${describeLock(lock)}, but the fd is inherited at restore, not reopened` });
      }
      // A POSIX lock is the process's on the file; the others are the description's.
      const owner = lock.kind === 'posix' ? `file ${line.file}` : `fd ${opts.via}`;
      const key = `${lock.kind} ${owner} ${lock.type} ${lock.start}-${lock.end ?? ''}`;
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      this.locks.push(lock);
    }
  }
}

/** struct flock (x86_64): l_type, l_whence (SEEK_SET), l_start, l_len (0: to EOF), l_pid. */
function encodeFlock(l: FileLock): Buffer {
  const b = Buffer.alloc(32);
  b.writeInt16LE(l.type === 'read' ? F_RDLCK : F_WRLCK, 0);
  b.writeBigInt64LE(l.start, 8);
  b.writeBigInt64LE(l.end === undefined ? 0n : l.end - l.start + 1n, 16);
  return b;
}

function take(rc: KindRestoreContext, l: FileLock): { r: bigint; call: string } {
  const remote = rc.ctx.remote;
  switch (l.kind) {
    case 'flock':
      return { r: remote.raw(NR.flock, [l.fd, (l.type === 'read' ? LOCK_SH : LOCK_EX) | LOCK_NB]), call: 'flock' };
    case 'lease':
      return { r: remote.raw(NR.fcntl, [l.fd, F_SETLEASE, l.type === 'read' ? F_RDLCK : F_WRLCK]), call: 'fcntl(F_SETLEASE)' };
    default: {
      const addr = remote.put(encodeFlock(l));
      const cmd = l.kind === 'posix' ? F_SETLK : F_OFD_SETLK;
      return { r: remote.raw(NR.fcntl, [l.fd, cmd, addr]), call: l.kind === 'posix' ? 'fcntl(F_SETLK)' : 'fcntl(F_OFD_SETLK)' };
    }
  }
}

/**
 * Takes the saved locks in the target. `opened`: the fds whose description this process
 * created (a description taken over from an earlier process already has its locks).
 */
export function restoreLocks(rc: KindRestoreContext, opts: { locks: readonly FileLock[]; opened: ReadonlySet<number> }): void {
  const mine = opts.locks.filter((l) => l.kind === 'posix' || opts.opened.has(l.fd));
  const leasesLast = [...mine.filter((l) => l.kind !== 'lease'), ...mine.filter((l) => l.kind === 'lease')];
  for (const l of leasesLast) {
    const { r, call } = take(rc, l);
    if (r >= 0n) continue;
    const errno = errnoName(Number(-r));
    const busy = errno === 'EAGAIN' || errno === 'EWOULDBLOCK' ? ' (another process holds a conflicting lock or open now)' : '';
    throw restoreError(rc, { fd: l.fd, code: 'SYSCALL', reason: `cannot take back its ${describeLock(l)}: ${call} failed with ${errno}${busy}` });
  }
}
