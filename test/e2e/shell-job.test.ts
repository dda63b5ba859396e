import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { startVictim, waitGone, VICTIM_BIN, killAll } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const children: ChildProcess[] = [];

const read = (f: string) => (existsSync(f) ? readFileSync(f, 'utf8') : '');
async function until(f: string, re: RegExp): Promise<RegExpMatchArray> {
  for (let i = 0; i < 500; i++) {
    const m = read(f).match(re);
    if (m) return m;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`no ${re} in ${f}:\n${read(f)}`);
}

// The shell script(1) starts either execs the job (which then leads its session and
// group) or forks it (the shell leads them, outside the dump): both shapes are tested,
// with SHELL fixed so the shape does not depend on the machine.
const shapes = [
  { what: 'leading its own session', command: (bin: string) => bin },
  { what: 'forked by the terminal\'s shell (session and group outside the dump)', command: (bin: string) => `${bin}; exit $?` },
];

for (const shape of shapes) test(`a job on a terminal, ${shape.what}, comes back on the restoring terminal with --shell-job and counts on`, async () => {
  // script(1) gives each side its own pseudo-terminal, as a shell would.
  const env = { SHELL: '/bin/bash' };
  const v = startVictim('/usr/bin/script', { args: ['-qfec', shape.command(join(VICTIM_BIN, 'ttyv')), 'before.log'], env });
  cleanups.push(() => v.cleanup());
  cleanups.push(() => { // before the victim's cleanup
    killAll('ttyv');
    for (const c of children) c.kill('SIGKILL');
  });
  const before = join(v.dir, 'before.log');
  const pid = Number((await until(before, /READY pid=(\d+) tty=\/dev\/pts/))[1]);
  await until(before, /COUNT 3 PASS/);
  const dir = join(tmpdir(), `ckpt-shelljob-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  dump(pid, { imagesDir: dir });
  await waitGone(pid);
  const last = Math.max(...[...read(before).matchAll(/COUNT (\d+)/g)].map((m) => Number(m[1])));

  const afterLog = join(v.dir, 'after.log');
  const cli = new URL('../../src/cli/main.ts', import.meta.url).pathname;
  const restore = `${process.execPath} --import tsx ${cli} restore -D ${dir} --shell-job -v 3`;
  // script's stdin is what is typed on the restoring terminal.
  const term = spawn('/usr/bin/script', ['-qfec', shape.command(restore), afterLog], { stdio: ['pipe', 'ignore', 'ignore'], cwd: new URL('../..', import.meta.url).pathname, env: { ...process.env, ...env } });
  children.push(term);
  const exited = new Promise<number | null>((r) => term.on('exit', (code) => r(code)));
  const next = await until(afterLog, /COUNT (\d+) (PASS|FAIL)/);
  assert.ok(Number(next[1]) > last, `it counts on from ${last} (${next[0]})`);
  await until(afterLog, new RegExp(`COUNT ${Number(next[1]) + 3} `));
  assert.doesNotMatch(read(afterLog), /FAIL/, 'its stdin and stdout are a terminal again, with its settings, in the foreground');
  // Ctrl-C reaches the job, not ckpt, which reports the job's exit as a shell would.
  term.stdin!.write('\x03');
  await until(afterLog, /GOT SIGINT/);
  await until(afterLog, new RegExp(`pid ${pid} exited with status 130`));
  assert.equal(await exited, 130, 'script exits with the status of ckpt, which is the job\'s');
  rmSync(dir, { recursive: true, force: true });
});
