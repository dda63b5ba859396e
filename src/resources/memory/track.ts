/**
 * Dirty-page tracking between dump rounds, for incremental dumps (pre-dump, then a
 * dump against it). This kernel has no soft-dirty bits; it has userfaultfd
 * write-protection in async mode, where a write to a protected page just clears the
 * page's protection, and the PAGEMAP_SCAN ioctl, which reports the pages whose
 * protection is gone ("written") and protects them again in the same call.
 *
 * The userfaultfd must stay open between rounds (closing it drops the registration),
 * and ckpt does not run between rounds. It is kept by a holder process ckpt starts
 * (`tail -f /dev/null --pid=ROOT`, which exits with the dumped tree's root): the
 * userfaultfds are its fds 3, 4, …, and the next round takes copies with
 * pidfd_getfd. The tracked program never has the fd; what it can see is the VmFlags
 * `uw` of its areas in smaps (docs/architecture.md, "Incremental dumps").
 *
 * An area registered at the parent round still shows `uw`; one mapped since (or
 * moved by mremap, which drops the registration) does not, and is saved whole.
 */
import { closeSync, readlinkSync } from 'node:fs';
import { z } from 'zod';
import { lazyChildProcess } from '../../common/builtin.js';
import { CkptError } from '../../common/errors.js';
import { closeFd, pidfdGetfd, pidfdOpen, pidfdSendSignal, SIG } from '../../sys/index.js';
import { PAGE_IS, PM_SCAN, pagemapScan, UFFD, uffdioRegister } from '../../sys/ioctl.js';
import { openPagemap, readStat } from '../../proc/index.js';
import { sleepSync, takeUserfaultfd, type RemoteTask } from '../../infect/index.js';
import { zBig } from '../../images/index.js';

const Identity = { pid: z.number().int().positive(), startTime: zBig };

export const TrackingState = z.object({
  /** The process that keeps the userfaultfds open between rounds. */
  holder: z.object(Identity),
  /** Each tracked process and the holder's fd of its userfaultfd. */
  processes: z.array(z.object({ ...Identity, fd: z.number().int().min(3).max(1 << 20) })),
});
export type TrackingState = z.infer<typeof TrackingState>;

/** tracking.img: written by a round that leaves tracking armed for the next one. */
export const TRACKING_IMAGE = { name: 'tracking', kind: 'tracking', schema: TrackingState } as const;

export interface AddressRange {
  start: bigint;
  end: bigint;
}

const FEATURES = BigInt(UFFD.FEATURE_WP_ASYNC | UFFD.FEATURE_WP_UNPOPULATED);

interface Tracked {
  pid: number;
  startTime: bigint;
  uffd: number;
  /** Its userfaultfd came from the parent round: areas showing `uw` are tracked since then. */
  sinceParent: boolean;
}

/** The written pages of `range` since it was last armed, arming it again (one PAGEMAP_SCAN pass). */
export function scanWritten(pagemapFd: number, range: AddressRange): AddressRange[] {
  const out: AddressRange[] = [];
  let at = range.start;
  while (at < range.end) {
    const { regions, walkEnd } = pagemapScan(pagemapFd, {
      start: at, end: range.end, flags: PM_SCAN.WP_MATCHING | PM_SCAN.CHECK_WPASYNC, maxRegions: 1024,
      categoryMask: PAGE_IS.WRITTEN, returnMask: PAGE_IS.WRITTEN,
    });
    for (const r of regions) {
      const last = out.at(-1);
      if (last && last.end === r.start) last.end = r.end;
      else out.push({ start: r.start, end: r.end });
    }
    if (walkEnd <= at) throw new CkptError('INTERNAL', `Cannot scan written pages: PAGEMAP_SCAN made no progress at 0x${at.toString(16)}`);
    at = walkEnd;
  }
  return out;
}

/** The tracking of one process during one round; used while it is stopped. */
export class ProcessTracker {
  private pagemapFd = -1;
  constructor(
    private readonly owner: MemoryTracking,
    private readonly pid: number,
    /** The process's injection handle, made when first needed (a new userfaultfd). */
    private readonly remote: () => RemoteTask,
  ) {}

  /**
   * The pages of an area written since the parent round, re-arming it; undefined when the
   * area has not been tracked since then (saved whole). `registered`: smaps shows `uw`.
   */
  dirtySince(area: AddressRange & { registered: boolean }): AddressRange[] | undefined {
    const t = this.owner.tracked(this.pid);
    if (!area.registered || !t?.sinceParent) return undefined;
    this.owner.spend();
    return scanWritten(this.fd(), area);
  }

  /**
   * Registers the areas not yet tracked and arms them, so that the next round sees what
   * is written from now on. An area the kernel refuses to register is left untracked: the
   * next round saves it whole.
   */
  arm(areas: readonly (AddressRange & { registered: boolean })[]): void {
    let t = this.owner.tracked(this.pid);
    // No registered area left (exec'd since, or all remapped): a new mm wants a new userfaultfd.
    if (t && !areas.some((a) => a.registered)) {
      this.owner.forget(this.pid);
      t = undefined;
    }
    if (!t) t = this.owner.add(this.pid, takeUserfaultfd(this.remote(), FEATURES));
    for (const a of areas) {
      if (!a.registered) {
        try {
          uffdioRegister(t.uffd, { ...a, mode: UFFD.REGISTER_MODE_WP });
        } catch {
          continue;
        }
      }
      // The first scan of a newly registered area reports every page; it only arms here.
      scanWritten(this.fd(), a);
    }
  }

  close(): void {
    if (this.pagemapFd >= 0) closeSync(this.pagemapFd);
    this.pagemapFd = -1;
  }

  private fd(): number {
    if (this.pagemapFd < 0) this.pagemapFd = openPagemap(this.pid);
    return this.pagemapFd;
  }
}

/**
 * The userfaultfds of a dump round: taken from the parent round's holder, made for new
 * processes, and at the end either handed to a new holder (keep) or closed (release),
 * which ends the tracking.
 */
export class MemoryTracking {
  private readonly procs = new Map<number, Tracked>();
  private oldHolder: { pidfd: number; pid: number } | undefined;
  private newHolder: { pidfd: number; pid: number } | undefined;
  /** A parent's userfaultfd was scanned: the parent's record no longer says what changed since it. */
  private spent = false;

  /** Takes the tracking a parent round left (its tracking.img); refuses when it is gone. */
  static resume(state: TrackingState, parentDir: string): MemoryTracking {
    const t = new MemoryTracking();
    const gone = (why: string) => new CkptError('USAGE', `Cannot dump against ${parentDir}: its memory tracking is gone (${why}); make a pre-dump without --prev-images-dir first`);
    let pidfd: number;
    try {
      pidfd = pidfdOpen(state.holder.pid);
    } catch {
      throw gone(`its holder process ${state.holder.pid} exited: the tracked tree exited, or a later round used the tracking`);
    }
    t.oldHolder = { pidfd, pid: state.holder.pid };
    try {
      if (startTimeOf(state.holder.pid) !== state.holder.startTime) throw gone(`process ${state.holder.pid} is not its holder any more`);
      for (const p of state.processes) {
        let fd: number;
        try {
          fd = pidfdGetfd(pidfd, p.fd, { pid: state.holder.pid });
        } catch {
          throw gone(`its holder process ${state.holder.pid} has no fd ${p.fd}`);
        }
        if (readlinkSync(`/proc/self/fd/${fd}`) !== 'anon_inode:[userfaultfd]') {
          closeFd(fd);
          throw gone(`fd ${p.fd} of its holder process ${state.holder.pid} is not a userfaultfd`);
        }
        t.procs.set(p.pid, { pid: p.pid, startTime: p.startTime, uffd: fd, sinceParent: true });
      }
    } catch (e) {
      t.release();
      throw e;
    }
    return t;
  }

  /** The tracker of process `pid` (stopped; `remote` gives its injection handle). */
  forProcess(pid: number, remote: () => RemoteTask): ProcessTracker {
    const t = this.procs.get(pid);
    // Same PID, another process (the tracked one exited): it is new to the tracking.
    if (t && t.startTime !== startTimeOf(pid)) this.forget(pid);
    return new ProcessTracker(this, pid, remote);
  }

  /** @internal */
  tracked(pid: number): Tracked | undefined {
    return this.procs.get(pid);
  }

  /** @internal */
  add(pid: number, uffd: number): Tracked {
    const t = { pid, startTime: startTimeOf(pid), uffd, sinceParent: false };
    this.procs.set(pid, t);
    return t;
  }

  /** @internal */
  forget(pid: number): void {
    const t = this.procs.get(pid);
    if (t) closeFd(t.uffd);
    this.procs.delete(pid);
  }

  /** @internal */
  spend(): void {
    this.spent = true;
  }

  /**
   * Hands the userfaultfds of `pids` to a new holder that lives as long as process
   * `watch` (the tree's root); returns what the next round needs (tracking.img).
   */
  keep(pids: readonly number[], watch: number): TrackingState {
    for (const pid of [...this.procs.keys()]) if (!pids.includes(pid)) this.forget(pid);
    const list = [...this.procs.values()];
    const child = lazyChildProcess().spawn('tail', ['-f', '/dev/null', `--pid=${watch}`], { stdio: ['ignore', 'ignore', 'ignore', ...list.map((t) => t.uffd)], detached: true });
    child.on('error', () => {});
    child.unref();
    if (child.pid === undefined) throw new CkptError('INTERNAL', 'Cannot keep memory tracking: the holder process (tail) did not start');
    this.newHolder = { pidfd: pidfdOpen(child.pid), pid: child.pid };
    return { holder: { pid: child.pid, startTime: startTimeOf(child.pid) }, processes: list.map((t, i) => ({ pid: t.pid, startTime: t.startTime, fd: 3 + i })) };
  }

  /** The round is committed: the parent's holder goes (its record is spent), ckpt's copies are closed. */
  commit(): void {
    this.stopHolder('oldHolder');
    if (this.newHolder) closeFd(this.newHolder.pidfd);
    this.newHolder = undefined;
    for (const pid of [...this.procs.keys()]) this.forget(pid);
  }

  /**
   * Ends the tracking (a final dump, or a failed round): every holder goes and every
   * copy is closed, so the last reference of each userfaultfd closes and the kernel
   * unregisters the areas. A failed round that did not scan leaves the parent's holder:
   * the parent can still be dumped against.
   */
  release(opts: { failed?: boolean } = {}): void {
    this.stopHolder('newHolder');
    if (!opts.failed || this.spent) this.stopHolder('oldHolder');
    else if (this.oldHolder) closeFd(this.oldHolder.pidfd);
    this.oldHolder = undefined;
    for (const pid of [...this.procs.keys()]) this.forget(pid);
  }

  private stopHolder(which: 'oldHolder' | 'newHolder'): void {
    const h = this[which];
    if (!h) return;
    try {
      pidfdSendSignal(h.pidfd, SIG.SIGKILL, { pid: h.pid });
      waitDead(h.pid);
    } catch {
      // gone already
    }
    closeFd(h.pidfd);
    this[which] = undefined;
  }
}

/**
 * Until the holder has exited (its fds closed): the kill is asynchronous, and a round
 * started right after must not find the old holder with its userfaultfds still open.
 */
function waitDead(pid: number): void {
  const until = performance.now() + 2000;
  while (performance.now() < until) {
    let state: string;
    try {
      state = readStat(pid).state;
    } catch {
      return;
    }
    if (state === 'Z' || state === 'X') return;
    sleepSync(1);
  }
}

function startTimeOf(pid: number): bigint {
  return readStat(pid).startTime;
}
