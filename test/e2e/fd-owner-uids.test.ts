/**
 * The uids an fd's owner was set with (F_GETOWNER_UIDS; fd-owner-uids.c): a process that
 * gave up root sets F_SETOWN; after restore the kernel must record its uids again, not
 * the root the restored process still is while its files are rebuilt.
 */
import { test } from 'node:test';
import { useCleanups } from '../helpers/cleanup.js';
import { selfCheckRoundTrip } from '../helpers/selfcheck.js';
import { startVictim } from '../helpers/victim.js';

const cleanups = useCleanups();

test('an fd owner keeps the uids it was set with', async () => {
  const v = startVictim('fd-owner-uids');
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  await selfCheckRoundTrip(v, { imagesDir: cleanups.tempDir('ckpt-owner-uids-'), pass: ['owner-uids'] });
});
