import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, readlinkSync } from 'node:fs';
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

/**
 * Files of a stopped process that several collectors read (status by sigactions, creds,
 * fs, seccomp and the batch's SIGTRAP probe; stat; comm; …), kept while `keepProcReads`
 * runs. Only files whose content nothing of ckpt's changes while the process is held
 * (not maps or smaps: ckpt's scratch area comes and goes).
 */
const KEEPABLE = /^(?:status|stat|comm|personality|cgroup|task\/\d+\/(?:status|stat|comm|cgroup))$/;
let kept: { pid: number; texts: Map<string, string> } | undefined;

/**
 * Runs `fn` with the keepable /proc files of `pid` read once each: restore --check reads
 * a process that does not run meanwhile, with the collectors the dump uses, which read
 * some files several times each.
 */
export function keepProcReads<T>(pid: number, fn: () => T): T {
  const outer = kept;
  kept = { pid, texts: new Map() };
  try {
    return fn();
  } finally {
    kept = outer;
  }
}

export function readProcText(pid: number, rel: string): string {
  const keep = kept?.pid === pid && KEEPABLE.test(rel) ? kept.texts : undefined;
  const known = keep?.get(rel);
  if (known !== undefined) return known;
  try {
    const text = readFileSync(procPath(pid, rel), 'utf8');
    keep?.set(rel, text);
    return text;
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

/** Reused by forEachLine (one reader at a time: callbacks must not read lines themselves). */
let lineBuf: Buffer | undefined;
const LINE_CHUNK = 256 * 1024;

/**
 * Calls fn for every line of /proc/PID/rel (bytes [start, end) of buf, without the
 * newline), reading it in chunks into one buffer that is kept for the next file:
 * smaps of a process with 10 000 areas is 7 MB, and a fresh 7 MB string (with its
 * fresh pages, a fault each on this VM) was most of its cost (issue 13).
 */
export function forEachProcLine(pid: number, rel: string, fn: (buf: Buffer, start: number, end: number) => void): void {
  try {
    forEachLine(procPath(pid, rel), fn);
  } catch (e) {
    throw procError(pid, rel, e);
  }
}

/** forEachChunk over /proc/PID/rel, with forEachProcLine's errors. */
export function forEachProcChunk(pid: number, rel: string, fn: (buf: Buffer, filled: number, eof: boolean) => number): void {
  try {
    forEachChunk(procPath(pid, rel), fn);
  } catch (e) {
    throw procError(pid, rel, e);
  }
}

/** forEachProcLine for any file; errors of open and read are thrown as they are. */
export function forEachLine(path: string, fn: (buf: Buffer, start: number, end: number) => void): void {
  forEachChunk(path, (buf, filled, eof) => {
    let pos = 0;
    for (let nl = buf.indexOf(0x0a, pos); nl >= 0 && nl < filled; nl = buf.indexOf(0x0a, pos)) {
      fn(buf, pos, nl);
      pos = nl + 1;
    }
    if (eof && pos < filled) {
      fn(buf, pos, filled);
      pos = filled;
    }
    return pos;
  });
}

/**
 * Reads a file in chunks into forEachLine's buffer: fn sees bytes [0, filled) and returns
 * how many it consumed (whole records); the rest is kept at the front for the next read.
 * With `eof` true, fn sees the last bytes of the file and should take them all.
 */
export function forEachChunk(path: string, fn: (buf: Buffer, filled: number, eof: boolean) => number): void {
  const fd = openSync(path, 'r');
  try {
    let buf = (lineBuf ??= Buffer.allocUnsafeSlow(LINE_CHUNK));
    let have = 0;
    for (;;) {
      if (have === buf.length) {
        // One record longer than the buffer (a path is at most 4096 bytes, so not from the kernel we know).
        const bigger = Buffer.allocUnsafeSlow(buf.length * 2);
        buf.copy(bigger, 0, 0, have);
        buf = lineBuf = bigger;
      }
      const got = readSync(fd, buf, have, buf.length - have, null);
      const filled = have + got;
      const pos = fn(buf, filled, got === 0);
      if (got === 0) return;
      have = filled - pos;
      if (have > 0 && pos > 0) buf.copy(buf, 0, pos, filled);
    }
  } finally {
    closeSync(fd);
  }
}

let boot: string | undefined;

/**
 * This boot's id (a random UUID the kernel makes at boot). Device and inode numbers
 * name the same file only within one boot of one machine: another host's disk may
 * have the same device number and other inodes.
 */
export function bootId(): string {
  boot ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return boot;
}
