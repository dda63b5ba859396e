/** What a dump is asked to do (DumpOptions), what it reports as it goes (DumpEvent) and when it ends (DumpResult). */
import type { NetworkLockMethod } from '../resources/net/lock.js';
import type { BackgroundStats } from '../resources/memory/background.js';
import type { PageServerTarget } from './page-server.js';

export interface DumpOptions {
  imagesDir: string;
  /** Leave the process running after the dump (default: kill it). */
  leaveRunning?: boolean;
  /** Leave the processes stopped (SIGSTOP) after the dump, as CRIU's --leave-stopped (default: kill them). */
  leaveStopped?: boolean;
  /** CRC-32 page data too (slower; metadata is always checksummed). */
  pageChecksums?: boolean;
  /**
   * CRIU's `--ext-unix-sk`: a unix socket connected to a named socket outside the dump
   * is saved (else refused), and connected to the same name again at restore.
   */
  extUnixSk?: boolean;
  /** How long to wait for a thread to stop, ms. */
  timeoutMs?: number;
  /** Page data written so far and an estimate of the total (resident memory), in bytes. */
  onProgress?: (p: { bytes: number; total: number }) => void;
  /**
   * SIGINT, SIGTERM, SIGHUP and SIGPIPE are deferred during the dump; when one came,
   * this is called after the rollback (with its error) or the finished dump, just
   * before the signal is delivered again (the default disposition ends the process).
   */
  onSignal?: (error?: unknown) => void;
  /**
   * CRIU's `--network-lock`: how packets to and from the tree's TCP sockets are held
   * back from the freeze until the restore (after a kill) or the end of the dump (-R,
   * failure). Default nftables; `skip` dumps without a lock (docs/cli.md).
   */
  networkLock?: NetworkLockMethod;
  /** CRIU's --tcp-established: accepted; established connections are always saved. */
  tcpEstablished?: boolean;
  /**
   * CRIU's --tcp-close: connected TCP sockets (any state but listen) are saved as closed,
   * without repair mode or a lock; the kill closes them for the peer as usual.
   */
  tcpClose?: boolean;
  /**
   * CRIU's --skip-in-flight: connections still in a listener's accept queue once the dump
   * has waited for the program to accept them are left out (a warning names them) instead
   * of failing the dump; their peers are reset after restore.
   */
  skipInFlight?: boolean;
  /**
   * Each phase as it ends (logs, CRIU's action scripts): a throw fails the dump, which
   * is rolled back as any failure is (after 'written' the complete set is left).
   */
  onEvent?: (e: DumpEvent) => void;
  /**
   * CRIU's --prev-images-dir: a pre-dump (or a dump with trackMem and leaveRunning) this
   * dump is made against, relative to imagesDir or absolute. Only pages written since it
   * are saved; the rest are taken from it at restore.
   */
  parent?: string;
  /**
   * CRIU's --track-mem: with leaveRunning, memory tracking stays armed so that a later
   * dump can be made against this one. A dump that does not keep it ends it.
   */
  trackMem?: boolean;
  /**
   * With leaveRunning: the tree is frozen only to collect everything but page contents
   * and to write-protect its memory; the pages are copied while it runs on, a write to a
   * page not yet copied waiting for that page (resources/memory/background.ts).
   */
  background?: boolean;
  /**
   * CRIU's --page-server --address --port: the set is also sent to a page server (`ckpt
   * page-server`), and the page files go only there; imagesDir keeps the rest. Connected
   * and authenticated before the tree is frozen.
   */
  pageServer?: PageServerTarget;
}

/**
 * Phases of a dump, with ms since it started: the tree frozen, each process saved, the set
 * committed (the tree still frozen), the tree killed (a dump that kills it: SIGKILL sent to
 * every thread, their exits not yet waited for; past every point of return: a throw
 * there is only a warning).
 */
export type DumpEvent =
  | { phase: 'frozen'; pids: number[]; ms: number }
  | { phase: 'process'; pid: number; pages: number; bytes: number; memoryMs: number; ms: number }
  | { phase: 'written'; ms: number }
  | { phase: 'killed'; ms: number };

export interface DumpResult {
  pid: number;
  /** Processes in the dumped tree (zombies included). */
  processes: number;
  /** Their PIDs, parents before children. */
  pids: number[];
  imagesDir: string;
  pages: number;
  bytes: number;
  /** Always 0: ckpt writes every page itself (memory/copy.ts). Kept so that readers of `--json` keep working. */
  bytesByTarget: number;
  /** Time the process was stopped, ms. */
  frozenMs: number;
  /** Time it took to seize (freeze) the tree, ms. */
  freezingMs: number;
  /** Time spent reading and writing page data, ms (part of frozenMs). */
  memoryMs: number;
  totalMs: number;
  warnings: string[];
  /** Incremental dumps: pages left in the parent's images (unchanged since). */
  inParent?: number;
  /** A background dump: faults served, pages copied while frozen anyway, time of the copy after the tree ran again. */
  background?: BackgroundStats;
  /** The lock left on the tree's TCP ports until the restore lifts it (a dump that killed a tree with TCP sockets). */
  networkLock?: { name: string; method: string; ports: number };
}

