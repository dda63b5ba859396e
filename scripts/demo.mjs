#!/usr/bin/env node
// The ckpt demo: checkpoint a running counter, show that it is gone, look at its
// images, restore it and watch it carry on counting from where it was, with the
// same PID. Works on a fresh clone: installs and builds first when needed. Exits
// non-zero if any step fails or the count does not continue.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const tty = process.stdout.isTTY;
const bold = (s) => (tty ? `\x1b[1m${s}\x1b[0m` : s);
const step = (s) => console.log(`\n${bold(`==> ${s}`)}`);
const say = (s) => console.log(`    ${s}`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

class DemoError extends Error {}
const fail = (msg) => {
  throw new DemoError(msg);
};

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) fail(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
  return r;
}

function prepare() {
  if (process.platform !== 'linux' || process.arch !== 'x64') fail('ckpt runs on Linux x86_64 only');
  if (process.getuid?.() !== 0) fail('the demo needs root (ptrace, clone3 with set_tid): run it as root, e.g. sudo npm run demo');
  if (spawnSync('python3', ['-c', '0']).status !== 0) fail('the demo program is a python3 script: install python3');
  if (!existsSync(join(root, 'node_modules'))) {
    step('Installing dependencies (npm ci)');
    run('npm', [existsSync(join(root, 'package-lock.json')) ? 'ci' : 'install']);
  }
  if (!existsSync(join(root, 'dist/cli/main.js'))) {
    step('Building (npm run build)');
    run('npm', ['run', 'build']);
  }
}

// The program we checkpoint: a python3 script counting once a second into a log file
// it keeps open.
const COUNTER = `import sys, time
n = 0
with open(sys.argv[1], 'a', buffering=1) as log:
    while True:
        n += 1
        log.write(f'count={n}\\n')
        time.sleep(1)
`;

const ckpt = (args, opts) => run(process.execPath, [join(root, 'bin/ckpt.js'), ...args], opts);
const counts = (log) => (existsSync(log) ? [...readFileSync(log, 'utf8').matchAll(/^count=(\d+)$/gm)].map((m) => Number(m[1])) : []);

function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return false;
  }
}

async function until(what, cond, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) fail(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

/** Starts the counter detached (double fork), with only fds 0-2, so ckpt sees a plain process. */
function startCounter(dir, log) {
  const script = join(dir, 'counter.py');
  writeFileSync(script, COUNTER);
  const closeFds = 'for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null;';
  const r = spawnSync('bash', ['-c', `${closeFds} python3 '${script}' '${log}' >/dev/null 2>&1 </dev/null & echo $!`], { encoding: 'utf8' });
  const pid = Number(r.stdout.trim());
  if (!pid) fail(`cannot start the counter: ${r.stderr}`);
  return pid;
}

async function demo(dir, state) {
  const log = join(dir, 'count.log');
  const images = join(dir, 'images');
  const pidfile = join(dir, 'restored.pid');

  step('Starting a program that counts once a second (python3, detached)');
  const pid = startCounter(dir, log);
  state.pid = pid;
  say(`pid ${pid}, writing count=N lines to ${log}`);
  await until('it has counted to 3', () => counts(log).length >= 3);
  say(`it has counted to ${counts(log).at(-1)}`);

  step(`Checkpointing it: ckpt dump -t ${pid} -D ${images}`);
  ckpt(['dump', '-t', String(pid), '-D', images]);
  const atDump = counts(log).at(-1) ?? 0;
  await until(`pid ${pid} is gone`, () => !alive(pid), 3000);
  say(`pid ${pid} is gone (ckpt killed it after the dump); last count: ${atDump}`);
  await sleep(2000);
  if ((counts(log).at(-1) ?? 0) !== atDump) fail('the log kept growing after the dump');
  say(`2 s later the log still ends at count=${atDump}: nothing is running`);

  step(`What the images hold: ckpt show ${images}`);
  const shown = ckpt(['show', images], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' }).stdout.trimEnd().split('\n');
  const SHOW_LINES = 14;
  for (const l of shown.slice(0, SHOW_LINES)) say(l);
  if (shown.length > SHOW_LINES) say(`... ${shown.length - SHOW_LINES} more lines (ckpt show --json decodes everything)`);

  step(`Restoring it: ckpt restore -D ${images} -d --pidfile ${pidfile}`);
  ckpt(['restore', '-D', images, '-d', '--pidfile', pidfile]);
  const restored = Number(readFileSync(pidfile, 'utf8').trim());
  if (restored !== pid) fail(`restored as pid ${restored}, not ${pid}`);
  if (!alive(pid)) fail(`pid ${pid} is not running after the restore`);
  say(`pid ${pid} is back: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()}`);

  step('Watching it carry on counting');
  await until('it has counted 3 more', () => counts(log).length >= atDump + 3, 8000);
  const all = counts(log);
  const after = all.slice(atDump);
  say(`log after the restore: ${after.map((n) => `count=${n}`).join(', ')}`);
  all.forEach((n, i) => {
    if (n !== i + 1) fail(`line ${i + 1} of the log is count=${n}, expected count=${i + 1}: the count did not continue`);
  });
  say(`it went on from count=${atDump} to count=${atDump + 1}, same pid ${pid}`);
}

const state = { pid: 0 };
let dir;
let code = 0;
try {
  prepare();
  dir = mkdtempSync(join(tmpdir(), 'ckpt-demo-'));
  await demo(dir, state);
  step('Demo passed');
} catch (e) {
  console.error(`\ndemo failed: ${e instanceof DemoError ? e.message : e?.stack ?? e}`);
  code = 1;
} finally {
  if (state.pid && alive(state.pid)) {
    try {
      process.kill(state.pid, 'SIGKILL');
      say(`stopped pid ${state.pid}`);
    } catch {
      // already gone
    }
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
