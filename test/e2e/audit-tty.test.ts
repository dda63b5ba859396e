/**
 * Pty states (audit-tty.c): data queued both ways in raw mode, a termios lock
 * (TIOCSLCKTRMIOS) with a canonical line and an unfinished one behind it, a master whose
 * slave was closed. The victim checks itself after restore. A slave whose master was
 * closed (hung up) is refused, named as such.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dump } from '../../src/dump/dump.js';
import { useCleanups } from '../helpers/cleanup.js';
import { selfCheckRoundTrip } from '../helpers/selfcheck.js';
import { startVictim } from '../helpers/victim.js';

const cleanups = useCleanups();
const CHECKS = ['pty-input', 'pty-output', 'pty-raw-vmin', 'pty-locked-termios', 'pty-canonical-locked', 'pty-slave-closed'];

test('pty queues, raw mode, a termios lock and a closed slave come back as they were', async () => {
  const v = startVictim('audit-tty');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  await selfCheckRoundTrip(v, { imagesDir: cleanups.tempDir('ckpt-audit-tty-'), pass: CHECKS });
});

test('a pty slave whose master was closed (hung up) is refused at dump, and the process runs on', async () => {
  const v = startVictim('audit-tty', { args: ['hungup'] });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/HUNGUP fd=(\d+)/);
  await v.waitFor(/READY pid=\d+/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-audit-tty-') }), {
    code: 'UNSUPPORTED',
    message: new RegExp(`^Cannot dump fd ${m[1]} of process ${v.pid}: its pty /dev/pts/\\d+ \\(deleted\\) is hung up \\(its master was closed\\); hung-up terminals are not supported$`),
  });
  assert.ok(v.alive());
});
