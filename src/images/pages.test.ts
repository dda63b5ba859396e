import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isCkptError } from '../common/errors.js';
import { ImageReader, ImageWriter, PAGE_SIZE } from './index.js';
import { PageReader } from './page-reader.js';
import { type Pagemap, validatePagemap } from './pagemap.js';

function tmp(t: TestContext): string {
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-pages-'));
  t.after(() => fs.rmSync(base, { recursive: true, force: true }));
  return path.join(base, 'dump');
}

/** `n` pages whose bytes say which page they are. */
function pages(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n * PAGE_SIZE);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32LE((seed * 1_000_003 + i) >>> 0, i);
  return b;
}

function badImage(re: RegExp) {
  return (e: unknown) => isCkptError(e, 'BAD_IMAGE') && re.test(e.message);
}

function writeSample(dir: string, chunkSize?: number): Buffer[] {
  const w = ImageWriter.create(dir);
  const pw = w.pages(7, chunkSize ? { chunkSize } : {});
  const a = pages(3, 1);
  const b = pages(2, 2);
  const c = pages(1100, 3); // bigger than the staging buffer: written directly
  pw.append(0x400000n, a);
  pw.append(0x403000n, b); // contiguous with a: merged into one run
  pw.append(0x7f0000000000n, c);
  for (let i = 0; i < 5; i++) pw.append(0x7ffff0000000n + BigInt(i * PAGE_SIZE), pages(1, 10 + i)); // page by page
  assert.deepEqual(pw.close(), { nrRuns: 3, nrPages: 1110 });
  w.commit();
  return [Buffer.concat([a, b]), c, Buffer.concat([0, 1, 2, 3, 4].map((i) => pages(1, 10 + i)))];
}

test('page runs round-trip, contiguous appends merge, data is page-aligned in the file', (t) => {
  const dir = tmp(t);
  const want = writeSample(dir);
  const r = ImageReader.open(dir);
  t.after(() => r.close());
  const pr = r.pages(7);
  assert.deepEqual(pr.runs, [
    { vaddr: 0x400000n, nrPages: 5, fileOffset: 4096n },
    { vaddr: 0x7f0000000000n, nrPages: 1100, fileOffset: 4096n * 6n },
    { vaddr: 0x7ffff0000000n, nrPages: 5, fileOffset: 4096n * 1106n },
  ]);
  pr.runs.forEach((run, i) => assert.ok(pr.read(run).equals(want[i]!), `run ${i}`));
  pr.runs.forEach((run, i) => assert.ok(pr.read(run, { verify: true }).equals(want[i]!), `verified run ${i}`));
  assert.equal(pr.verify(), true);
  // What restore does: pread the run's bytes at its file offset from the fd.
  const direct = Buffer.alloc(PAGE_SIZE);
  fs.readSync(pr.fd(), direct, 0, PAGE_SIZE, Number(pr.runs[1]!.fileOffset));
  assert.ok(direct.equals(want[1]!.subarray(0, PAGE_SIZE)));
  assert.equal(fs.statSync(pr.path).size, PAGE_SIZE * 1111);
  assert.equal(fs.readFileSync(pr.path).subarray(0, 8).toString(), 'CKPTPAGE');
});

test('a flipped byte in page data fails verify() and a verified read, not a plain read', (t) => {
  const dir = tmp(t);
  writeSample(dir, 64 * 1024);
  const f = path.join(dir, 'pages-7.img');
  const fd = fs.openSync(f, 'r+');
  const off = PAGE_SIZE * 6 + 200_000; // inside run 1, chunk 3 of 64 KiB
  const byte = Buffer.alloc(1);
  fs.readSync(fd, byte, 0, 1, off);
  byte[0]! ^= 0x10;
  fs.writeSync(fd, byte, 0, 1, off);
  fs.closeSync(fd);
  const r = ImageReader.open(dir);
  t.after(() => r.close());
  const pr = r.pages(7);
  assert.throws(() => pr.verify(), badImage(/checksum mismatch in page data chunk 3/));
  assert.throws(() => pr.read(pr.runs[1]!, { verify: true }), badImage(/chunk 3/));
  assert.ok(pr.read(pr.runs[0]!, { verify: true }), 'other chunks still verify');
  assert.equal(pr.read(pr.runs[1]!).length, 1100 * PAGE_SIZE);
});

test('checksums can be turned off for the hot path', (t) => {
  const dir = tmp(t);
  const w = ImageWriter.create(dir);
  const pw = w.pages('x', { checksum: false });
  pw.append(0n, pages(2, 1));
  pw.close();
  w.commit();
  const r = ImageReader.open(dir);
  t.after(() => r.close());
  const pr = r.pages('x');
  assert.equal(pr.hasChecksums, false);
  assert.equal(pr.verify(), false);
});

test('the writer refuses unaligned, out-of-order and overlapping appends', (t) => {
  const w = ImageWriter.create(tmp(t));
  t.after(() => w.abort());
  const pw = w.pages(1);
  assert.throws(() => pw.append(0x1001n, pages(1, 0)), { code: 'USAGE' });
  assert.throws(() => pw.append(0x1000n, Buffer.alloc(100)), { code: 'USAGE' });
  pw.append(0x5000n, pages(2, 0));
  assert.throws(() => pw.append(0x6000n, pages(1, 0)), /below the end of the previous run/);
  assert.throws(() => pw.append(0x1000n, pages(1, 0)), /below the end/);
});

const ok: Pagemap = {
  pageSize: 4096,
  runs: [
    { vaddr: 0x1000n, nrPages: 2, fileOffset: 4096n },
    { vaddr: 0x10000n, nrPages: 1, fileOffset: 3n * 4096n },
  ],
  checksum: { algorithm: 'crc32', chunkSize: 4096, crcs: [0, 0, 0] },
};
const run = (i: number, patch: object): Pagemap => ({
  ...ok,
  runs: ok.runs.map((r, j) => (i === j ? { ...r, ...patch } : r)),
});

test('pagemap validation rejects overlapping, unordered, unaligned, out-of-file runs and runs sharing file bytes', () => {
  const size = 4 * 4096;
  validatePagemap('p', ok, size);
  const cases: [Pagemap, RegExp, number?][] = [
    [run(1, { vaddr: 0x2000n }), /overlaps/],
    [run(1, { vaddr: 0x0n }), /overlaps or is out of order/],
    [run(0, { vaddr: 0x1800n }), /vaddr not page-aligned/],
    [run(0, { fileOffset: 0n }), /past the header/],
    [run(0, { fileOffset: 4097n }), /page-aligned/],
    [run(1, { fileOffset: 4n * 4096n }), /past the end of the file/],
    [run(1, { fileOffset: 2n * 4096n }), /runs 0 and 1 share file bytes from offset 8192/],
    [run(1, { fileOffset: 4096n }), /runs 0 and 1 share file bytes from offset 4096/],
    [run(0, { fileOffset: 3n * 4096n, nrPages: 1 }), /runs 1 and 0 share file bytes|runs 0 and 1 share file bytes/],
    [run(1, { vaddr: (1n << 64n) - 4096n, nrPages: 2 }), /end of the address space/],
    [{ ...ok, checksum: { ...ok.checksum!, crcs: [0] } }, /1 chunk checksums for 3 chunks/],
    [ok, /not a whole number of pages/, size + 1],
  ];
  for (const [map, re, sz] of cases) assert.throws(() => validatePagemap('p', map, sz ?? size), badImage(re), String(re));
});

test('a PageReader refuses a page file that does not fit its pagemap', (t) => {
  const dir = tmp(t);
  writeSample(dir);
  const f = path.join(dir, 'pages-7.img');
  const map: Pagemap = { pageSize: 4096, runs: [{ vaddr: 0n, nrPages: 2000, fileOffset: 4096n }], checksum: null };
  assert.throws(() => new PageReader(f, map), badImage(/past the end of the file/));
  fs.truncateSync(f, 4096 * 10);
  assert.throws(() => ImageReader.open(dir), badImage(/pages-7\.img: truncated or changed/));
});

test('a page file of a newer major or with a foreign header is refused', (t) => {
  const dir = tmp(t);
  writeSample(dir);
  const f = path.join(dir, 'pages-7.img');
  const fd = fs.openSync(f, 'r+');
  const two = Buffer.alloc(8);
  two.writeUInt32LE(2); // major 2, minor 0
  fs.writeSync(fd, two, 0, 8, 8);
  const r = ImageReader.open(dir);
  t.after(() => r.close());
  assert.throws(() => r.pages(7), badImage(/pages-7\.img: image format 2\.0 is newer than this ckpt understands \(1\.x\)/));
  fs.writeSync(fd, Buffer.from('NOTPAGES'), 0, 8, 0);
  fs.closeSync(fd);
  assert.throws(() => r.pages(7), badImage(/not a ckpt page file/));
});

test('reserve() leaves room the caller fills in place, between ordinary appends', (t) => {
  const dir = tmp(t);
  const w = ImageWriter.create(dir);
  const pw = w.pages('r', { checksum: false });
  const a = pages(2, 1);
  const b = pages(3, 2);
  const c = pages(1, 3);
  pw.append(0x1000n, a);
  const slot = pw.reserve(0x3000n, b.length); // contiguous with a: same run
  pw.append(0x10000n, c);
  fs.writeSync(slot.fd, b, 0, b.length, slot.fileOffset);
  pw.close();
  w.commit();
  const r = ImageReader.open(dir);
  t.after(() => r.close());
  const pr = r.pages('r');
  assert.deepEqual(pr.runs.map((x) => [x.vaddr, x.nrPages]), [[0x1000n, 5], [0x10000n, 1]]);
  assert.ok(pr.read(pr.runs[0]!).equals(Buffer.concat([a, b])));
  assert.ok(pr.read(pr.runs[1]!).equals(c));
  assert.throws(() => ImageWriter.create(path.join(dir, '..', 'x')).pages(1).reserve(0x1000n, PAGE_SIZE), /checksummed/);
});

test('allocate() and placed(): pages written in any order are listed in address order, neighbours merged', (t) => {
  const dir = tmp(t);
  const w = ImageWriter.create(dir);
  const pw = w.pages('p', { checksum: false });
  const a = pages(2, 1);
  const b = pages(1, 2);
  const c = pages(3, 3);
  pw.append(0x1000n, a);
  // Placed out of order: c (high) first, then b, which follows a in memory but not in the file.
  const sc = pw.allocate(c.length);
  fs.writeSync(sc.fd, c, 0, c.length, sc.fileOffset);
  pw.placed(0x20000n, { len: c.length, fileOffset: sc.fileOffset });
  const sb = pw.allocate(b.length);
  fs.writeSync(sb.fd, b, 0, b.length, sb.fileOffset);
  pw.placed(0x3000n, { len: b.length, fileOffset: sb.fileOffset });
  pw.close();
  w.commit();
  const r = ImageReader.open(dir);
  t.after(() => r.close());
  const pr = r.pages('p');
  assert.deepEqual(pr.runs.map((x) => [x.vaddr, x.nrPages]), [[0x1000n, 2], [0x3000n, 1], [0x20000n, 3]]);
  assert.ok(pr.read(pr.runs[1]!).equals(b));
  assert.ok(pr.read(pr.runs[2]!).equals(c));
  const w2 = ImageWriter.create(path.join(dir, '..', 'y'));
  const twice = w2.pages('q', { checksum: false });
  const s1 = twice.allocate(PAGE_SIZE);
  twice.placed(0x5000n, { len: PAGE_SIZE, fileOffset: s1.fileOffset });
  twice.placed(0x5000n, { len: PAGE_SIZE, fileOffset: s1.fileOffset });
  assert.throws(() => twice.close(), /recorded twice/);
});

test('readAt copies the saved pages of a window at their offsets and leaves holes alone', (t) => {
  const dir = tmp(t);
  const [ab, c] = writeSample(dir);
  const r = ImageReader.open(dir);
  try {
    const pr = r.pages(7);
    // A window across the end of the first run (5 pages at 0x400000) and the hole after it.
    const into = Buffer.alloc(8 * PAGE_SIZE, 0xee);
    assert.deepEqual(pr.readAt(0x403000n, into), [{ vaddr: 0x403000n, len: 2 * PAGE_SIZE }]);
    assert.ok(into.subarray(0, 2 * PAGE_SIZE).equals(ab!.subarray(3 * PAGE_SIZE)));
    assert.ok(into.subarray(2 * PAGE_SIZE).every((x) => x === 0xee), 'a page the image lacks is left as it was');
    const mid = Buffer.alloc(PAGE_SIZE);
    assert.deepEqual(pr.readAt(0x7f0000000000n + 500n * 4096n, mid), [{ vaddr: 0x7f0000000000n + 500n * 4096n, len: PAGE_SIZE }]);
    assert.ok(mid.equals(c!.subarray(500 * PAGE_SIZE, 501 * PAGE_SIZE)));
    assert.deepEqual(pr.readAt(0x1000n, Buffer.alloc(PAGE_SIZE)), []);
  } finally {
    r.close();
  }
});

test('writers staging at the same time (the stage buffer is lent to one at a time) each write their own pages', (t) => {
  const dir = tmp(t);
  const w = ImageWriter.create(dir);
  const [p1, p2, p3] = [w.pages(1), w.pages(2), w.pages(3)];
  const want = new Map<number, Buffer[]>([[1, []], [2, []], [3, []]]);
  // Page by page, interleaved: all three have pages staged at once.
  for (let i = 0; i < 40; i++) {
    for (const [id, pw] of [[1, p1], [2, p2], [3, p3]] as const) {
      if (id === 2 && i > 20) continue;
      const data = pages(1, id * 100 + i);
      pw.append(0x400000n + BigInt(i * PAGE_SIZE), data);
      want.get(id)!.push(data);
    }
    if (i === 20) p2.close();
  }
  p1.close();
  p3.close();
  // A writer made after the others closed takes the buffer back.
  const p4 = w.pages(4);
  p4.append(0x1000n, pages(2, 7));
  p4.close();
  w.commit();
  const r = ImageReader.open(dir);
  t.after(() => r.close());
  for (const id of [1, 2, 3]) {
    const pr = r.pages(id);
    const expected = Buffer.concat(want.get(id)!.slice(0, id === 2 ? 21 : 40));
    assert.ok(pr.read(pr.runs[0]!).equals(expected), `writer ${id}`);
  }
  assert.ok(r.pages(4).read(r.pages(4).runs[0]!).equals(pages(2, 7)));
});
