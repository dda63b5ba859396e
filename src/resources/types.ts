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

export interface BlobSink {
  /** Stores bytes under a name unique in the image directory; returns the name. */
  put(name: string, data: Buffer): string;
}

export interface BlobSource {
  get(name: string): Buffer;
  /** Absolute path of the blob file, for the target to open itself. */
  path(name: string): string;
}

export interface DumpContext {
  pid: number;
  /** The seized process; every thread is stopped. */
  proc: SeizedProcess;
  /** Injected syscalls run in the thread group leader. */
  remote: RemoteTask;
  blobs: BlobSink;
  /** Warnings for the dump summary (things saved approximately). */
  warn(message: string): void;
}

export interface RestoreOptions {
  /** --shell-job: the process may keep the restorer's terminal as its controlling tty. */
  shellJob: boolean;
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
  warn(message: string): void;
}

export interface Resource<S> {
  /** Key under which the state is stored in the core image. */
  name: string;
  schema: z.ZodType<S>;
  dump(ctx: DumpContext): S;
  restore(ctx: RestoreContext, state: S): void;
}
