/**
 * Files whose name is gone, through the real engine (fd-deleted.c): a sparse 3 GiB
 * deleted file (holes kept, content past 2 GiB), two hard links of one deleted file
 * (one file again), a file unlinked under one name but kept under another (the same
 * file, not a copy), a deleted FIFO with data and a deleted device node, and a removed
 * working directory. The victim checks each itself after restore.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { useCleanups } from '../helpers/cleanup.js';
import { selfCheckRoundTrip } from '../helpers/selfcheck.js';
import { startVictim } from '../helpers/victim.js';
import { dump } from '../../src/dump/dump.js';
import { kill, SIG } from '../../src/sys/index.js';

const cleanups = useCleanups();

async function roundTrip(mode: string): Promise<string> {
  const v = startVictim('fd-deleted', { args: [mode] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  const dir = cleanups.tempDir('ckpt-deleted-img-');
  await selfCheckRoundTrip(v, { imagesDir: dir, pass: ['deleted'] });
  return dir;
}

test('deleted files keep their holes, hard links, other names; deleted FIFOs and device nodes come back', async () => {
  const dir = await roundTrip('files');
  // The 3 GiB file has three pages of data: its holes are not in the images either.
  const bytes = readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).blocks * 512, 0);
  assert.ok(bytes < 16 << 20, `the images take ${bytes} bytes`);
});

test('a removed working directory comes back removed', async () => {
  await roundTrip('cwd');
});

test('a deleted file both mapped shared and open as an fd is refused, naming both; the process runs on', async () => {
  const v = startVictim('mapdel');
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=(\d+)/);
  const pid = Number(m[1]);
  assert.throws(() => dump(pid, { imagesDir: cleanups.tempDir('ckpt-mapdel-') }), {
    code: 'UNSUPPORTED',
    message: new RegExp(`mapped-deleted\\.dat is mapped shared at 0x[0-9a-f]+ and open as fd 3 of process ${pid}`),
  });
  kill(pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/);
  assert.match(v.output(), /^PASS a write through the fd shows in the mapping$/m);
});
