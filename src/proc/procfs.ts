import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { CkptError } from '../common/errors.js';

/**
 * Shared plumbing for the readX(pid) functions: read a file under /proc/PID and
 * turn "the process is gone" into one stable error, so callers racing against
 * exiting processes need to handle only NO_PROCESS.
 */

export function procPath(pid: number, rel: string): string {
  return `/proc/${pid}/${rel}`;
}

function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e ? String((e as { code: unknown }).code) : undefined;
}

/** Map a failed access to /proc/PID/rel onto a CkptError; anything unexpected is rethrown as is. */
export function procError(pid: number, rel: string, e: unknown): Error {
  const code = errnoCode(e);
  const path = procPath(pid, rel);
  if (code === 'ESRCH' || (code === 'ENOENT' && !processExists(pid))) {
    return new CkptError('NO_PROCESS', `Cannot read ${path}: process ${pid} does not exist`, { cause: e });
  }
  if (code === 'ENOENT' && rel.startsWith('task/')) {
    // The process lives on but this thread exited: for the caller that is the same race.
    return new CkptError('NO_PROCESS', `Cannot read ${path}: thread ${rel.split('/')[1]} of process ${pid} does not exist`, { cause: e });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new CkptError('PERMISSION', `Cannot read ${path}: permission denied`, { cause: e });
  }
  // ENOENT for an fd that was closed meanwhile stays a plain ENOENT: the process is
  // fine and callers listing fds may want to skip it.
  return e instanceof Error ? e : new Error(String(e));
}

function processExists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

export function readProcText(pid: number, rel: string): string {
  try {
    return readFileSync(procPath(pid, rel), 'utf8');
  } catch (e) {
    throw procError(pid, rel, e);
  }
}

export function readProcBuffer(pid: number, rel: string): Buffer {
  try {
    return readFileSync(procPath(pid, rel));
  } catch (e) {
    throw procError(pid, rel, e);
  }
}

export function readProcDir(pid: number, rel: string): string[] {
  try {
    return readdirSync(procPath(pid, rel));
  } catch (e) {
    throw procError(pid, rel, e);
  }
}

export function readProcLink(pid: number, rel: string): string {
  try {
    return readlinkSync(procPath(pid, rel));
  } catch (e) {
    throw procError(pid, rel, e);
  }
}

/** Directory entries that are numbers (PIDs, TIDs, fds), ascending. */
export function numericEntries(names: string[]): number[] {
  const out: number[] = [];
  for (const n of names) if (/^\d+$/.test(n)) out.push(Number(n));
  return out.sort((a, b) => a - b);
}

/** A /proc file did not have the shape we expect: a kernel change or a bug of ours. */
export function malformed(file: string, why: string): CkptError {
  return new CkptError('INTERNAL', `Cannot parse ${file}: ${why}`);
}
