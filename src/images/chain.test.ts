import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isCkptError } from '../common/errors.js';
import { ImageReader, ImageWriter, PAGE_SIZE, parentRefFor } from './index.js';
import { piecesIn } from './chain.js';

const P = BigInt(PAGE_SIZE);
const page = (tag: number) => Buffer.alloc(PAGE_SIZE, tag);

function base(t: TestContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-chain-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A set in dir/name: pages (vaddr page number → tag) and pages left in `parent`. */
function set(dir: string, name: string, args: { own: [number, number][]; inParent?: [number, number][]; parent?: string }): string {
  const d = path.join(dir, name);
  const w = ImageWriter.create(d);
  const pw = w.pages(1, { checksum: false });
  for (const [at, tag] of args.own) pw.append(BigInt(at) * P, page(tag));
  for (const [at, n] of args.inParent ?? []) pw.fromParent(BigInt(at) * P, n);
  pw.close();
  if (args.parent) w.setParent(parentRefFor(d, path.join(dir, args.parent)));
  w.commit();
  return d;
}

/** What the chain gives for each page: its tag, from whichever layer holds it. */
function contents(dir: string): Map<number, number> {
  const r = ImageReader.open(dir);
  try {
    const out = new Map<number, number>();
    for (const l of r.pages(1).layers) {
      for (const run of l.runs) {
        const data = l.reader.read(run);
        for (let i = 0; i < run.nrPages; i++) out.set(Number(run.vaddr / P) + i, data[i * PAGE_SIZE]!);
      }
    }
    return out;
  } finally {
    r.close();
  }
}

test('piecesIn cuts ranges to the runs that hold them, with file offsets', () => {
  const runs = [{ vaddr: 10n * P, nrPages: 4, fileOffset: P }, { vaddr: 20n * P, nrPages: 2, fileOffset: 5n * P }];
  assert.deepEqual(piecesIn([{ vaddr: 12n * P, nrPages: 10 }], runs), [
    { vaddr: 12n * P, nrPages: 2, fileOffset: 3n * P },
    { vaddr: 20n * P, nrPages: 2, fileOffset: 5n * P },
  ]);
  assert.deepEqual(piecesIn([{ vaddr: 0n, nrPages: 10 }], runs), []);
});

test('a chain of three sets: each page from the newest set that holds it, absent ones zero', (t) => {
  const dir = base(t);
  set(dir, 'p1', { own: [[1, 11], [2, 12], [3, 13], [4, 14]] });
  // p2: page 2 rewritten, 1 and 3 unchanged, 4 gone, 5 new.
  set(dir, 'p2', { own: [[2, 22], [5, 25]], inParent: [[1, 1], [3, 1]], parent: 'p1' });
  // final: page 3 rewritten; 1, 2, 5 unchanged; 4 present again but not written since p2 (zero then).
  const d3 = set(dir, 'final', { own: [[3, 33]], inParent: [[1, 2], [4, 2]], parent: 'p2' });
  assert.deepEqual(contents(d3), new Map([[1, 11], [2, 22], [3, 33], [5, 25]]));
});

test('readAt and locate of a chained reader take each page from the newest set that holds it, and skip absent ones', (t) => {
  const dir = base(t);
  set(dir, 'p1', { own: [[1, 11], [2, 12], [3, 13], [4, 14]] });
  set(dir, 'p2', { own: [[2, 22], [5, 25]], inParent: [[1, 1], [3, 1]], parent: 'p1' });
  const d3 = set(dir, 'final', { own: [[3, 33]], inParent: [[1, 2], [4, 2]], parent: 'p2' });
  const r = ImageReader.open(d3);
  try {
    const pr = r.pages(1);
    const into = Buffer.alloc(6 * PAGE_SIZE, 0xee);
    const got = pr.readAt(P, into);
    assert.deepEqual(got.map((g) => [Number(g.vaddr / P), g.len / PAGE_SIZE]), [[1, 1], [2, 1], [3, 1], [5, 1]]);
    assert.deepEqual([0, 1, 2, 3, 4, 5].map((i) => into[i * PAGE_SIZE]), [11, 22, 33, 0xee, 25, 0xee]);
    assert.deepEqual(pr.locate(2n * P, 2 * PAGE_SIZE).map((l) => [Number(l.vaddr / P), path.basename(path.dirname(l.reader.path))]), [[2, 'p2'], [3, 'final']]);
  } finally {
    r.close();
  }
});

test('a missing or replaced parent is refused', (t) => {
  const dir = base(t);
  set(dir, 'p1', { own: [[1, 11]] });
  const d2 = set(dir, 'final', { own: [[2, 22]], inParent: [[1, 1]], parent: 'p1' });
  fs.renameSync(path.join(dir, 'p1'), path.join(dir, 'away'));
  assert.throws(() => contents(d2), (e: unknown) => isCkptError(e, 'BAD_IMAGE') && /parent images \.\.\/p1 .* are missing/.test(e.message));
  set(dir, 'p1', { own: [[1, 99]] });
  assert.throws(() => contents(d2), (e: unknown) => isCkptError(e, 'BAD_IMAGE') && /not the ones it was dumped against/.test(e.message));
});

test('parent runs that overlap the own runs are refused', (t) => {
  const dir = base(t);
  set(dir, 'p1', { own: [[1, 11]] });
  const d = path.join(dir, 'bad');
  const w = ImageWriter.create(d);
  const pw = w.pages(1, { checksum: false });
  pw.append(P, page(1));
  pw.fromParent(P, 1);
  pw.close();
  w.setParent(parentRefFor(d, path.join(dir, 'p1')));
  w.commit();
  assert.throws(() => contents(d), (e: unknown) => isCkptError(e, 'BAD_IMAGE') && /overlaps another run/.test(e.message));
});
