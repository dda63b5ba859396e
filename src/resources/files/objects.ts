/**
 * Kernel objects behind fds that are saved once per process beside the fd entries:
 * pipe buffers (anonymous pipes and FIFOs) and unix sockets. Several fds (and, in a
 * tree, several processes) may point at one object; each process's state carries
 * the objects its fds use, and restore creates each object once for the whole tree.
 */
import { unixDiagAll, UDIAG_SHOW, type UnixDiag } from '../../sys/index.js';
import type { BlobSource, DumpContext } from '../types.js';
import type { PassedFds, Payload, PipeObject, UnixObject } from './schema.js';

/** Payloads up to this size are saved inline (base64) in the state; larger ones as blobs. */
const INLINE_MAX = 64 * 1024;

export function savePayload(ctx: DumpContext, name: string, data: Buffer): Payload {
  if (data.length <= INLINE_MAX) return { size: data.length, data: data.toString('base64') };
  return { size: data.length, blob: ctx.blobs.put(name, data) };
}

export function loadPayload(blobs: BlobSource, p: Payload): Buffer | string {
  const data = p.blob !== undefined ? blobs.get(p.blob) : Buffer.from(p.data ?? '', 'base64');
  if (data.length !== p.size) return `has ${data.length} bytes saved, not ${p.size}`;
  return data;
}

/** Which ends of a pipe object this process holds. */
export interface PipeEnds {
  read: boolean;
  write: boolean;
}

/** Whether the pipe has readers and writers at all (anywhere), as poll on a copy of one of its ends tells. */
export interface PipePeers {
  /** Known from a write end (POLLERR: no reader left); undefined from a read end. */
  readers?: boolean;
  /** Known from a read end (POLLHUP: no writer left); undefined from a write end. */
  writers?: boolean;
}

export class DumpObjects {
  readonly pipes = new Map<string, PipeObject>();
  readonly pipeEnds = new Map<string, PipeEnds>();
  readonly pipePeers = new Map<string, PipePeers>();
  readonly unix = new Map<number, UnixObject>();
  /** Files passed with queued messages (SCM_RIGHTS). */
  readonly passed: PassedFds[] = [];
  private diag: Map<number, UnixDiag> | undefined;

  /** Every unix socket of the namespace by inode (one sock_diag dump per process dump). */
  unixDiag(): Map<number, UnixDiag> {
    this.diag ??= new Map(
      unixDiagAll(UDIAG_SHOW.NAME | UDIAG_SHOW.VFS | UDIAG_SHOW.PEER | UDIAG_SHOW.RQLEN | UDIAG_SHOW.ICONS).map((d) => [d.ino, d]),
    );
    return this.diag;
  }

  noteEnd(id: string, ends: PipeEnds): void {
    const seen = this.pipeEnds.get(id) ?? { read: false, write: false };
    this.pipeEnds.set(id, { read: seen.read || ends.read, write: seen.write || ends.write });
  }
}
