/**
 * tmux, a real terminal multiplexer, through dump and restore (tmux-session.py drives it
 * and checks it): a server daemon holding pty masters, a listening unix socket and its
 * event loop's fds, with bash (a counter in a shell variable), less and vim (an unsaved
 * buffer) and top (/proc files held open) in its panes. First the server alone, dumped by its pid; then the whole
 * session with a client attached on a pty the holder python keeps the master of.
 * After restore the panes show the same screens and take keys. Skipped without tmux,
 * vim, less or python3.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { kill, SIG } from '../../src/sys/index.js';
import { killQuietly, startVictim, waitGone } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const PYTHON = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p));
const SCRIPT = new URL('../victims/tmux-session.py', import.meta.url).pathname;
const missing = ['tmux', 'vim', 'less'].filter((p) => !existsSync(`/usr/bin/${p}`));
const skip = !PYTHON ? 'no python3' : missing.length ? `no ${missing.join(', ')} on this machine (.ci/run installs them)` : false;

/** Every process under `pid` (the tree the dump takes). */
function treeOf(pid: number): number[] {
  const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return [pid, ...kids.flatMap(treeOf)];
}

for (const mode of ['detached', 'attached'] as const) {
  const what = mode === 'detached' ? 'a tmux server dumped by its pid' : 'a tmux session with a client attached on a pty';
  test(`${what}: bash, less, vim and top in its panes carry on after restore`, { timeout: 60_000, skip }, async () => {
    const base = cleanups.tempDir('ckpt-tmux-');
    const v = startVictim(PYTHON!, { args: [SCRIPT, base, mode] });
    cleanups.push(() => v.cleanup());
    const m = await v.waitFor(/READY pid=\d+ server=(\d+)/, 30_000);
    const server = Number(m[1]);
    const root = mode === 'detached' ? server : v.pid;
    const pids = treeOf(root);
    cleanups.push(() => killQuietly(mode === 'detached' ? pids : [...pids, server]));
    assert.ok(pids.includes(server) && pids.length >= 5, `server, bash, less, vim and top: ${pids.join(' ')}`);

    const dir = cleanups.tempDir('ckpt-tmux-img-');
    const r = dump(root, { imagesDir: dir });
    for (const pid of r.pids) await waitGone(pid);
    const mark = v.output().length;
    const res = restore({ imagesDir: dir });
    assert.deepEqual(res.warnings, []);
    kill(v.pid, SIG.SIGUSR1);
    await v.waitFor(/DONE fails=\d+/, 30_000).catch(() => undefined);
    const out = v.output().slice(mark);
    assert.doesNotMatch(out, /FAIL/, out);
    assert.match(out, /^DONE fails=0$/m, out);
    assert.equal(out.match(/^PASS /gm)?.length, mode === 'attached' ? 7 : 5, out);
  });
}
