// Disk full during a dump, on a real 64 KiB tmpfs (needs root / mount rights;
// skipped where mounting is not allowed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isCkptError } from '../common/errors.js';
import { ImageWriter, PAGE_SIZE } from './index.js';

test('ENOSPC while writing pages is an IO error naming the file; abort cleans up', (t) => {
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'ckpt-enospc-'));
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt], { encoding: 'utf8' });
  if (m.status !== 0) {
    fs.rmdirSync(mnt);
    t.skip(`cannot mount a tmpfs here: ${(m.stderr || m.error?.message || '').trim()}`);
    return;
  }
  t.after(() => {
    spawnSync('umount', [mnt]);
    fs.rmdirSync(mnt);
  });
  const dir = path.join(mnt, 'dump');
  const w = ImageWriter.create(dir);
  const pw = w.pages(1);
  const file = path.join(dir, 'pages-1.img');
  assert.throws(
    () => {
      // Small appends are staged, so the error may come from a later flush or close().
      for (let i = 0; i < 64; i++) pw.append(BigInt(i * 4 * PAGE_SIZE), Buffer.alloc(4 * PAGE_SIZE, 1));
      pw.close();
    },
    (e) =>
      isCkptError(e, 'IO') &&
      e.message === `Cannot write ${file}: no space left on device (ENOSPC)` &&
      (e.cause as NodeJS.ErrnoException).code === 'ENOSPC',
  );
  assert.throws(() => pw.append(0x1000000n, Buffer.alloc(PAGE_SIZE)), { code: 'USAGE' });
  w.abort();
  assert.deepEqual(fs.readdirSync(mnt), []);
});
