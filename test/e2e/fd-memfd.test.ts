/**
 * memfd attributes through the real engine (fd-memfd.c): a memfd's mode (fchmod),
 * owner, name, size, content and seals, and a MFD_NOEXEC_SEAL memfd, checked by the
 * victim itself after restore.
 */
import { test } from 'node:test';
import { useCleanups } from '../helpers/cleanup.js';
import { selfCheckRoundTrip } from '../helpers/selfcheck.js';
import { startVictim } from '../helpers/victim.js';

const cleanups = useCleanups();

test('a memfd keeps its mode, owner, name, size and seals', async () => {
  const v = startVictim('fd-memfd');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  await selfCheckRoundTrip(v, { imagesDir: cleanups.tempDir('ckpt-memfd-img-'), pass: ['memfd'] });
});
