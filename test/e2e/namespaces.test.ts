/**
 * ckpt saves no namespace and a restore puts the processes in the restorer's: a process
 * in namespaces other than ckpt's (a container, a systemd service with PrivateTmp, a
 * sandbox) would come back with another hostname, network or mounts while the restore
 * says it succeeded. The dump refuses it, naming the namespace, and the process runs on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { dump } from '../../src/api/index.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim, VICTIM_BIN } from '../helpers/victim.js';

const cleanups = useCleanups();

const CASES = [
  { flags: ['--uts'], what: 'UTS \\(hostname\\)', link: 'uts' },
  { flags: ['--net'], what: 'network', link: 'net' },
  { flags: ['--ipc'], what: 'IPC', link: 'ipc' },
  { flags: ['--mount'], what: 'mount', link: 'mnt' },
  { flags: ['--user', '--map-root-user'], what: 'user', link: 'user' },
];

for (const c of CASES) {
  test(`a process in its own ${c.link} namespace is refused at dump, naming it; it counts on`, async () => {
    // unshare execs the counter: the same pid, in the new namespace.
    const v = startVictim('/usr/bin/unshare', { args: [...c.flags, join(VICTIM_BIN, 'counter')] });
    cleanups.push(() => v.cleanup());
    await v.waitFor(/TICK pid=\d+ counter=\d+ mem=PASS/);
    assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-ns-') }), {
      code: 'UNSUPPORTED',
      message: new RegExp(`^Cannot dump process ${v.pid}: it is in another ${c.what} namespace than ckpt \\(${c.link}:\\[\\d+\\], ckpt's ${c.link}:\\[\\d+\\]\\)`),
    });
    const ticks = (v.output().match(/^TICK/gm) ?? []).length;
    await v.waitFor(new RegExp(`(?:TICK[^\\n]*\\n[^]*){${ticks + 1}}`));
    assert.doesNotMatch(v.output(), /FAIL/);
  });
}
