/**
 * The contract every resource module follows (after Firecracker's Persist): a saved
 * shape with its zod schema, `dump(ctx) -> state` run against a seized, stopped
 * process, and `restore(ctx, state)` run against the process being rebuilt. Each
 * module sits next to a round-trip test.
 *
 * Modules never touch image files directly: the orchestrator stores each module's
 * state in the process's core image under the module's name, validated with its
 * schema on the way in and out. Bulk data (file contents, pipe buffers) goes through
 * `blobs`.
 */
import type { z } from 'zod';
import type { RemoteTask, SeizedProcess, Undo } from '../infect/index.js';
import type { ShmemObject } from './memory/state.js';
import type { KeptPages } from './memory/kept-pages.js';

export interface BlobSink {
  /** Stores bytes under a name unique in the image directory; returns the name. */
  put(name: string, data: Buffer): string;
}

export interface BlobSource {
  get(name: string): Buffer;
  /** Absolute path of the blob file, for the target to open itself. */
  path(name: string): string;
}

/**
 * Kernel objects shared by several processes of a restored tree (an open file
 * description, a pipe, a shared memory object). The restorer keeps one local fd per
 * object; each process that needs it takes its own copy with pidfd_getfd (see
 * resources/transfer.ts). Keys are chosen by the module that owns the object kind,
 * e.g. `desc:17`, `shmem:3`.
 */
export interface SharedObjects {
  get(key: string): number | undefined;
  /** Keeps `localFd` (a fd of the restorer) as object `key` until the restore ends. */
  set(key: string, localFd: number): void;
}

/** Page file for an object shared by processes of the tree (a shmem object): pages keyed by object offset. */
export interface ObjectPageSink {
  append(offset: bigint, data: Uint8Array): void;
  /**
   * Instead of appends: saves the object's data `ranges` (object offsets, page-aligned)
   * from the object open at `fd`, now or later in the dump (it keeps a dup of `fd`); the
   * dump joins such copies before it releases the tree (resources/memory/object-copy.ts).
   */
  copyLater?(fd: number, ranges: readonly { offset: number; len: number }[]): void;
  /** Done with the object (after copyLater, the page file is completed at the join). */
  close(): void;
}

/** A saved object page file, for the restorer (or the target) to read. */
export interface ObjectPages {
  path: string;
  runs: readonly { vaddr: bigint; nrPages: number; fileOffset: bigint }[];
}

export interface DumpContext {
  pid: number;
  /**
   * Tree-wide id of the open file description behind fd `fd` of this process, the same
   * number for every fd (in any process of the dump) that shares it (found with kcmp).
   */
  descriptionOf?(fd: number): number | undefined;
  /** In a tree dump: every process of the tree, by pid, with each fd's description id. */
  treeDescriptions?: ReadonlyMap<number, ReadonlyMap<number, number>>;
  /**
   * How many fds of the whole dumped tree point at `link` (e.g. "pipe:[123]"): a pipe
   * on a standard fd whose other end is in the tree is part of it, not inherited.
   */
  linkCount?(link: string): number;
  /**
   * restore --check reads a restored process back with these collectors: ckpt, the
   * restorer, still holds the objects it made (pipe ends…), which a dump would see as
   * held outside the tree.
   */
  checking?: boolean;
  /** Whether process `pid` (alive or a zombie) is part of the dumped tree; without it, only `pid` itself is. */
  inTree?(pid: number): boolean;
  /** Called as page data is written, with the bytes just written (for a progress bar). */
  progress?(bytes: number): void;
  /** The seized process; every thread is stopped. */
  proc: SeizedProcess;
  /** Injected syscalls run in the thread group leader. */
  remote: RemoteTask;
  blobs: BlobSink;
  /**
   * Starts page file `id` of the image set (e.g. `shmem-42`), or returns undefined when
   * this dump (of any process of the tree) already started it: the object is saved once.
   */
  pages?(id: string): ObjectPageSink | undefined;
  /**
   * Shared memory objects this dump described already (any process of the tree), by
   * kind, device and inode: the next process that maps one takes the description as it
   * is, without opening, stat'ing and checking the object again (issue 13).
   */
  shmemObjects?: Map<string, ShmemObject>;
  /** Warnings for the dump summary (things saved approximately). */
  warn(message: string): void;
  /** --ext-unix-sk: a unix socket connected to a named socket outside the dump is saved, to be connected to that name again. */
  extUnixSk?: boolean;
  /** CRIU's --tcp-close: connected TCP sockets are saved as closed (no repair, no lock). */
  tcpClose?: boolean;
  /** CRIU's --skip-in-flight: connections in a listener's accept queue are left out with a warning. */
  skipInFlight?: boolean;
}

export interface RestoreOptions {
  /** --shell-job: the process may keep the restorer's terminal as its controlling tty. */
  shellJob: boolean;
  /** --inherit-fd fd[N]:KEY: ckpt's fd N stands for the resource the dump recorded as KEY. */
  inheritFds?: readonly { fd: number; key: string }[];
  /** --ext-unix-sk: unix sockets saved connected to a name outside the dump are connected to it again. */
  extUnixSk?: boolean;
  /** CRIU's --tcp-close: established TCP connections are restored closed. */
  tcpClose?: boolean;
  /** CRIU's --manage-cgroups: 'ignore' leaves the tree in the restorer's cgroup. */
  manageCgroups?: 'ignore' | 'soft';
}

/** What decides which paths a process may open: its fs ids, groups and effective capabilities. */
export interface OpenCreds {
  fsuid: number;
  fsgid: number;
  groups: number[];
  capEff: bigint;
}

export interface RestoreContext {
  /** PID of the process being rebuilt (its old PID). */
  pid: number;
  /** Injected syscalls run in the process being rebuilt. */
  remote: RemoteTask;
  blobs: BlobSource;
  /** Changes outside the new process (files created, …) register their undo here. */
  undo: Undo;
  options: RestoreOptions;
  /** Objects shared across the processes of this restore. */
  shared: SharedObjects;
  /** The RemoteTask of process `pid` of the tree, once it exists (a zombie's too, until it dies). */
  remoteOf?(pid: number): RemoteTask | undefined;
  /** The saved states of resource module `name` of every process of the tree (unix sockets are made all at once). */
  treeStates?(name: string): unknown[];
  /**
   * Set when the images are not trusted (owned by another user, docs/security.md): every
   * path the images name is opened with these credentials, the process's own, instead
   * of the restorer's (process/fscreds.ts).
   */
  openAs?: OpenCreds;
  /** Page file `id` of the image set (BAD_IMAGE if it is missing or invalid). */
  pages?(id: string): ObjectPages;
  /** Called as page data is restored, with the bytes just restored (for a progress bar). */
  progress?(bytes: number): void;
  warn(message: string): void;
  /**
   * Lazy restore (restore/lazy/): set for a process whose private anonymous pages are
   * left to the lazy-pages server. `serve` hands it the userfaultfd made in the process
   * (fd `uffd` there) with the areas to register; from its return on, the server serves
   * their faults.
   */
  lazy?: LazyPages;
  /**
   * A restore whose page files are on a page server (images/remote/page-files.ts):
   * called with the page runs of a file before they are read, to fetch them into it.
   */
  fetchPages?(pages: { path: string; runs: readonly { fileOffset: bigint; nrPages: number }[] }): void;
  /** restore --check: page data to keep as written, for the check to compare with (memory/kept-pages.ts). */
  keptPages?: KeptPages;
}

export interface LazyPages {
  serve(args: { pid: number; uffd: number; areas: readonly { start: bigint; end: bigint }[] }): void;
}

export interface Resource<S> {
  /** Key under which the state is stored in the core image. */
  name: string;
  schema: z.ZodType<S>;
  dump(ctx: DumpContext): S;
  restore(ctx: RestoreContext, state: S): void;
}
