/**
 * Queued terminal input that a plain copy would lose (pty-edge.c): lines ended by VEOF,
 * an empty one, an unfinished one, echo waiting on the master, raw bytes that
 * canonical mode would edit, through a dump that lets it run and one that kills it. And a pty whose index is taken at restore: refused, naming
 * it, with nothing left behind; restored once it is free.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG, TTY, ttyGetInt } from '../../src/sys/index.js';
import { startVictim, waitGone, killQuietly } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

/** Opens /dev/ptmx until we hold pty `index` (or pass it); returns every fd opened. */
function holdPty(index: number): number[] {
  const fds: number[] = [];
  for (let i = 0; i <= index + 64; i++) {
    const fd = openSync('/dev/ptmx', 'r+');
    fds.push(fd);
    if (ttyGetInt(fd, TTY.TIOCGPTN) >= index) break;
  }
  return fds;
}

test('queued terminal input comes back line by line, and a taken pty index is refused', async () => {
  const v = startVictim('pty-edge');
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ a=(\d+) b=(\d+)/);
  cleanups.push(() => killQuietly([v.pid]));
  // A dump that lets it run puts every queued byte back as it was (checked by the restore below).
  dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-tty-edge-run-'), leaveRunning: true });
  const dir = cleanups.tempDir('ckpt-tty-edge-img-');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);

  const held = holdPty(Number(m[1]));
  try {
    assert.equal(ttyGetInt(held.at(-1)!, TTY.TIOCGPTN), Number(m[1]), 'the test holds pair A\'s index');
    assert.throws(() => restore({ imagesDir: dir }), { code: 'UNSUPPORTED', message: new RegExp(`/dev/pts/${m[1]} is taken`) });
    await waitGone(v.pid, 5000); // a refused restore leaves nothing behind (its zombie is ours to reap)
  } finally {
    for (const fd of held) closeSync(fd);
  }

  const mark = v.output().length;
  restore({ imagesDir: dir });
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/, 10000).catch(() => undefined);
  const out = v.output().slice(mark);
  assert.doesNotMatch(out, /FAIL/, out);
  assert.match(out, /^DONE fails=0$/m, out);
});
