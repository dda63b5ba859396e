/**
 * Signal-driven I/O through the real engine (fd-async.c): a pipe with O_ASYNC, an owner
 * and F_SETSIG to a real-time signal, a socket owned by a process group with SIGIO, and
 * a pipe with an owner but no O_ASYNC. After restore the victim reads them back and gets
 * (or does not get) its signals when data arrives.
 */
import { test } from 'node:test';
import { useCleanups } from '../helpers/cleanup.js';
import { selfCheckRoundTrip } from '../helpers/selfcheck.js';
import { startVictim } from '../helpers/victim.js';

const cleanups = useCleanups();

test('O_ASYNC descriptions keep their owner and signal, and signal again when data arrives', async () => {
  const v = startVictim('fd-async');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  await selfCheckRoundTrip(v, { imagesDir: cleanups.tempDir('ckpt-async-img-'), pass: ['async'] });
});
