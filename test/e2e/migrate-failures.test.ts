/**
 * `ckpt migrate`'s failure modes, on this host (127.0.0.1; the destination in a PID
 * namespace of its own): the source through the API, the destination through the CLI.
 * bench-mem rewrites a working set and checks all its memory on SIGUSR1 (PASS/FAIL in its
 * log, which a restored copy writes too). Lost messages are made with CKPT_MIGRATE_FAULT
 * (api/migrate-commit.ts). At most one copy runs, and a copy always survives:
 * - an abort between pre-copy rounds: the source runs on, its memory tracking ended;
 * - READY lost: the source resumes, the destination (told on a new connection) kills its copy;
 * - GO lost: the source (its tree dead) tells the destination on a new connection, whose copy
 *   runs (restored with --lazy-pages: its pages come in after it runs, and it checks them);
 * - GO lost and never told: the destination leaves its copy stopped, and says so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { migrate, type MigrateOptions } from '../../src/api/migrate.js';
import { kill as sysKill } from '../../src/sys/index.js';
import { startVictim, waitGone, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { receiver, tokenFile, trackingLeft, type Receiver } from '../helpers/migrate-net.js';

const cleanups = useCleanups();
const SIGUSR1 = 10;
const dir = cleanups.tempDir('ckpt-migrate-f-');
const token = tokenFile(dir);

async function victim(): Promise<Victim> {
  const v = startVictim('bench-mem', { args: ['16', '2'] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY/);
  return v;
}

/** Checks its memory (SIGUSR1 to `pid`, this copy or the destination's) and waits for its verdict. */
async function checked(v: Victim, pid = v.pid): Promise<void> {
  const before = (v.output().match(/PASS|FAIL/g) ?? []).length;
  sysKill(pid, SIGUSR1);
  const deadline = Date.now() + 20_000;
  while ((v.output().match(/PASS|FAIL/g) ?? []).length === before) {
    if (Date.now() > deadline) throw new Error(`no verdict from ${pid}:\n${v.output()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.doesNotMatch(v.output(), /FAIL/);
}

/** The destination's copy of `pid`: the process whose innermost PID is `pid` in another PID namespace. */
function copyOf(pid: number): { pid: number; state: string } | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === pid) continue;
    try {
      const status = readFileSync(`/proc/${d}/status`, 'utf8');
      const ns = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/).map(Number);
      if (ns && ns.length > 1 && ns.at(-1) === pid && /^Name:\s+bench-mem$/m.test(status)) return { pid: Number(d), state: /^State:\s+(\S)/m.exec(status)![1]! };
    } catch {
      // gone
    }
  }
  return undefined;
}

function start(name: string, args: { extra?: string[]; env?: Record<string, string> } = {}): Receiver {
  return receiver(undefined, { cleanups, dir: join(dir, name), token, ...args });
}

async function run(v: Victim, r: Receiver, opts: Partial<MigrateOptions> & { fault?: string } = {}): Promise<ReturnType<typeof migrate>> {
  const port = await r.port;
  if (opts.fault) process.env['CKPT_MIGRATE_FAULT'] = opts.fault;
  try {
    return migrate(v.pid, { to: { address: '127.0.0.1', port }, authToken: token, workDir: join(dir, `work-${port}`), ...opts });
  } finally {
    delete process.env['CKPT_MIGRATE_FAULT'];
  }
}

test('an abort between pre-copy rounds leaves the source running with its memory tracking ended', async () => {
  const v = await victim();
  const r = start('abort');
  let armed: ReturnType<typeof trackingLeft> | undefined;
  await assert.rejects(run(v, r, {
    onEvent: (e) => {
      if (e.phase !== 'round') return;
      armed = trackingLeft(v.pid);
      throw new Error('abort after round 1');
    },
  }), /abort after round 1/);
  assert.ok(armed && armed.registered > 0 && armed.holders.length === 1, `tracking armed during the migration: ${JSON.stringify(armed)}`);
  assert.deepEqual(trackingLeft(v.pid), { registered: 0, holders: [] });
  await checked(v);
});

test('READY lost: the source resumes its tree, the destination kills its copy', async () => {
  const v = await victim();
  const r = start('ready', { env: { CKPT_MIGRATE_FAULT: 'drop-ready' } });
  await assert.rejects(run(v, r), /Cannot exchange images with page server 127\.0\.0\.1:\d+: .*closed/);
  assert.equal(await r.exited, 1, r.stderr());
  assert.match(r.stderr(), /the source resumed its tree after the connection broke \(the copy here is killed\)/);
  assert.equal(copyOf(v.pid), undefined);
  assert.deepEqual(trackingLeft(v.pid), { registered: 0, holders: [] });
  await checked(v);
});

test('GO lost: the source, its tree dead, tells the destination on a new connection, and the copy runs there (restored lazily)', async () => {
  const v = await victim();
  const r = start('go', { extra: ['--lazy-pages'] });
  const res = await run(v, r, { fault: 'drop-go' });
  assert.equal(res.final.parts.runMs, undefined);
  await waitGone(v.pid);
  assert.equal(await r.exited, 0, r.stderr());
  assert.match(r.stderr(), /in doubt: .*closed/);
  const copy = copyOf(v.pid);
  assert.ok(copy && copy.state !== 'T', `the copy runs: ${JSON.stringify(copy)}`);
  await checked(v, copy.pid);
});

test('GO lost and the source never heard again: the destination leaves its copy stopped, never running, never gone', async () => {
  const v = await victim();
  const r = start('quiet', { extra: ['--resolve-timeout', '2'] });
  await assert.rejects(run(v, r, { fault: 'drop-go-quiet', resolveTimeoutMs: 1000 }), /its tree was killed here once .* could not be told to let it run/);
  await waitGone(v.pid);
  assert.equal(await r.exited, 1, r.stderr());
  assert.match(r.stderr(), /the restored tree \(root pid \d+\) is left stopped here/);
  const copy = copyOf(v.pid);
  assert.ok(copy && copy.state === 'T', `the copy is stopped: ${JSON.stringify(copy)}`);
  // Resumed by hand (what the message says to do), it is whole.
  sysKill(copy.pid, 18);
  await checked(v, copy.pid);
});
