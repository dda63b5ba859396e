/**
 * A pre-dump copies pages after the tree runs again: through /proc/PID/mem (it leaves
 * pages shared copy-on-write as they are, and reads any protection). A page whose area
 * went away meanwhile reads as zeros: whatever is mapped there at the next round is new
 * to the tracking (no `uw`) and saved whole, so that copy is never used. A page written
 * meanwhile is in the next round's written set, so its torn copy is never used either.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { checkInterrupted } from '../../infect/index.js';
import type { PageRun, PageSink } from './copy.js';

const PAGE = 4096;
const CHUNK = 4 * 1024 * 1024;

function readOr0(fd: number, buf: Buffer, at: bigint): number {
  try {
    return readSync(fd, buf, 0, buf.length, at);
  } catch {
    return 0;
  }
}

/** Copies `runs` of running process `pid` into `sink`; returns the pages that could not be read (zeros). */
export function copyRunning(pid: number, args: { runs: readonly PageRun[]; sink: PageSink; onBytes?: (n: number) => void }): { missing: number } {
  let missing = 0;
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  const buf = Buffer.allocUnsafeSlow(CHUNK);
  try {
    for (const r of args.runs) {
      for (let off = 0; off < r.len; off += CHUNK) {
        checkInterrupted();
        const len = Math.min(CHUNK, r.len - off);
        const at = r.vaddr + BigInt(off);
        const data = buf.subarray(0, len);
        const got = readOr0(fd, data, at);
        // Short: page by page, what cannot be read is zero.
        for (let p = Math.floor(got / PAGE) * PAGE; p < len; p += PAGE) {
          const page = data.subarray(p, p + PAGE);
          if (readOr0(fd, page, at + BigInt(p)) !== PAGE) {
            page.fill(0);
            missing++;
          }
        }
        args.sink.append(at, data);
        args.onBytes?.(len);
      }
    }
  } finally {
    closeSync(fd);
  }
  return { missing };
}
