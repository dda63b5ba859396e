import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { PageWriter } from '../../images/index.js';
import type { Pagemap } from '../../images/pagemap.js';
import { ObjectCopies } from './object-copy.js';
import { dataRanges } from './shmem.js';

const MiB = 1024 * 1024;

/** A sparse tmpfs file standing for a shared memory object: data in `parts`, holes between. */
function object(dir: string, args: { size: number; parts: [number, number][]; seed: number }): { fd: number; bytes: Buffer } {
  const path = join(dir, `obj-${args.seed}`);
  const fd = openSync(path, 'w+');
  const bytes = Buffer.alloc(args.size);
  for (const [at, len] of args.parts) {
    for (let i = 0; i < len; i++) bytes[at + i] = (at + i * 7 + args.seed) % 251 | 1;
    writeSync(fd, bytes, at, len, at);
  }
  rmSync(path);
  return { fd, bytes };
}

/** Saves the object through a sink of `copies` and returns the page file's pagemap (once complete) and path. */
function save(copies: ObjectCopies, args: { dir: string; fd: number; size: number; id: string }): { done: () => Pagemap | undefined; path: string } {
  let pagemap: Pagemap | undefined;
  const path = join(args.dir, `pages-${args.id}.img`);
  const sink = copies.sink(new PageWriter(path, { options: { checksum: false }, done: (r) => void (pagemap = r.pagemap) }));
  sink.copyLater!(args.fd, dataRanges(args.fd, args.size));
  sink.close();
  return { done: () => pagemap, path };
}

function check(args: { path: string; pagemap: Pagemap; bytes: Buffer; size: number }): void {
  const file = readFileSync(args.path);
  let pages = 0;
  for (const run of args.pagemap.runs) {
    const at = Number(run.vaddr);
    const len = run.nrPages * 4096;
    const want = Buffer.alloc(len);
    args.bytes.copy(want, 0, at, Math.min(at + len, args.size));
    assert.ok(file.subarray(Number(run.fileOffset), Number(run.fileOffset) + len).equals(want), `pages at ${at}`);
    pages += run.nrPages;
  }
  return void pages;
}

test('big objects are copied beside the dump and their page files completed at the join; small ones at once', () => {
  const dir = mkdtempSync('/dev/shm/ckpt-object-copy-');
  const fds: number[] = [];
  try {
    for (let round = 0; round < 2; round++) {
      const copies = new ObjectCopies();
      // Not page-aligned at the end, three data ranges, one of them over a piece boundary.
      const big = { size: 13 * MiB - 100, parts: [[0, 3 * MiB], [5 * MiB, 4096], [7 * MiB + 512, 6 * MiB - 612]] as [number, number][], seed: round };
      const small = { size: 64 * 1024, parts: [[4096, 8192]] as [number, number][], seed: 10 + round };
      const a = object(dir, big);
      const b = object(dir, small);
      fds.push(a.fd, b.fd);
      const savedA = save(copies, { dir, fd: a.fd, size: big.size, id: `a${round}` });
      const savedB = save(copies, { dir, fd: b.fd, size: small.size, id: `b${round}` });
      assert.equal(savedA.done(), undefined, 'the big object\'s page file waits for the join');
      assert.notEqual(savedB.done(), undefined, 'a small object is copied at once');
      copies.join();
      const pagemap = savedA.done();
      assert.ok(pagemap, 'completed at the join');
      assert.equal(pagemap.runs.length, 3);
      check({ path: savedA.path, pagemap, bytes: a.bytes, size: big.size });
      check({ path: savedB.path, pagemap: savedB.done()!, bytes: b.bytes, size: small.size });
    }
    // A failed dump cancels: nothing is completed, and the next dump copies as before.
    const cancelled = new ObjectCopies();
    const c = object(dir, { size: 8 * MiB, parts: [[0, 8 * MiB]], seed: 20 });
    fds.push(c.fd);
    const savedC = save(cancelled, { dir, fd: c.fd, size: 8 * MiB, id: 'c' });
    cancelled.cancel();
    assert.equal(savedC.done(), undefined);
    const again = new ObjectCopies();
    const savedD = save(again, { dir, fd: c.fd, size: 8 * MiB, id: 'd' });
    again.join();
    check({ path: savedD.path, pagemap: savedD.done()!, bytes: c.bytes, size: 8 * MiB });
  } finally {
    for (const fd of fds) closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});
