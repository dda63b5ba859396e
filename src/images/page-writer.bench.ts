// Throughput of the page writer against a plain writeSync loop, and of crc32.
// Run: node --import tsx src/images/page-writer.bench.ts [dir=/dev/shm] [GiB=1]
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from './crc32.js';
import { ImageWriter } from './writer.js';

const base = process.argv[2] ?? '/dev/shm';
const total = Number(process.argv[3] ?? 1) * 1024 ** 3;
const CHUNK = 4 * 1024 * 1024;
const src = Buffer.alloc(CHUNK);
for (let i = 0; i < src.length; i += 4) src.writeUInt32LE((i * 2654435761) >>> 0, i);

function time(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function plain(): number {
  const f = path.join(base, `ckpt-bench-plain-${process.pid}`);
  const s = time(() => {
    const fd = fs.openSync(f, 'w', 0o600);
    for (let off = 0; off < total; off += CHUNK) fs.writeSync(fd, src);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  });
  fs.rmSync(f);
  return s;
}

function writer(opts: { checksum: boolean; piece: number }): number {
  const dir = path.join(base, `ckpt-bench-${process.pid}`);
  const s = time(() => {
    const w = ImageWriter.create(dir);
    const pw = w.pages(1, { checksum: opts.checksum });
    let vaddr = 0x7f0000000000n;
    for (let off = 0; off < total; off += CHUNK) {
      for (let p = 0; p < CHUNK; p += opts.piece) {
        pw.append(vaddr, src.subarray(p, p + opts.piece));
        vaddr += BigInt(opts.piece);
      }
    }
    pw.close();
    w.commit();
  });
  fs.rmSync(dir, { recursive: true });
  return s;
}

function crcOnly(): number {
  return time(() => {
    let c = 0;
    for (let off = 0; off < total; off += CHUNK) c = crc32(src, c);
  });
}

const cases: Record<string, () => number> = {
  'plain writeSync 4 MiB': plain,
  'pw.append 4 MiB, no checksum': () => writer({ checksum: false, piece: CHUNK }),
  'pw.append 4 MiB, crc32': () => writer({ checksum: true, piece: CHUNK }),
  'pw.append 64 KiB, crc32': () => writer({ checksum: true, piece: 64 * 1024 }),
  'crc32 only': crcOnly,
};
const results: Record<string, number[]> = {};
for (let round = 0; round < 5; round++) {
  for (const [name, fn] of Object.entries(cases)) (results[name] ??= []).push(fn());
}
const gib = total / 1024 ** 3;
for (const [name, xs] of Object.entries(results)) {
  const sorted = [...xs].sort((a, b) => a - b);
  const med = sorted[Math.floor(sorted.length / 2)]!;
  console.log(`${name.padEnd(32)} median ${(med * 1000).toFixed(0).padStart(5)} ms  ${(gib / med).toFixed(2)} GiB/s  (min ${(sorted[0]! * 1000).toFixed(0)} ms)`);
}
