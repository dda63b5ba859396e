import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const ROOT = new URL('../../', import.meta.url).pathname;

function ckpt(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

interface Result { name: string; ok: boolean; required: boolean; detail: string; disables: string }

test('check --json: core probes pass, CAP_SYS_RESOURCE missing is only a warning', () => {
  const r = ckpt('check', '--json');
  assert.equal(r.code, 0, r.err);
  const report = JSON.parse(r.out) as { ok: boolean; results: Result[] };
  assert.equal(report.ok, true);
  const by = new Map(report.results.map((x) => [x.name, x]));
  for (const name of ['ptrace', 'process_vm_readv', 'pidfd_getfd', 'kcmp']) {
    assert.equal(by.get(name)?.ok, true, `${name}: ${by.get(name)?.detail}`);
    assert.equal(by.get(name)?.required, true);
  }
  const res = by.get('cap_sys_resource');
  assert.ok(res, 'cap_sys_resource probe missing');
  assert.equal(res.ok, false, 'root here is expected to lack CAP_SYS_RESOURCE');
  assert.equal(res.required, false);
  assert.match(res.disables, /rlimit/);
  for (const x of report.results) assert.ok(x.detail.length > 0 && x.disables.length > 0, x.name);
});

test('check (human): one line per probe, a verdict and what works here', () => {
  const r = ckpt('check');
  assert.equal(r.code, 0, r.err);
  const lines = r.out.trimEnd().split('\n');
  assert.equal(lines.at(-2), 'Looks good.');
  assert.equal(lines.at(-1), 'Here, as root: dump works; restore works.');
  assert.match(r.out, /^ok\s+kcmp\s/m);
  assert.match(r.out, /^warning\s+cap_sys_resource\s.*disables restoring rlimits/m);
});

test('check --feature kcmp exits 0 and runs only that probe', () => {
  const r = ckpt('check', '--feature', 'kcmp', '--json');
  assert.equal(r.code, 0, r.err);
  assert.deepEqual((JSON.parse(r.out) as { results: Result[] }).results.map((x) => x.name), ['kcmp']);
});

test('check --feature of a missing feature exits 1', () => {
  const r = ckpt('check', '--feature', 'cap_sys_resource');
  assert.equal(r.code, 1);
  assert.match(r.out, /cap_sys_resource is missing\.$/m);
});

test('check --feature bogus exits 2 listing the known names on one line', () => {
  const r = ckpt('check', '--feature', 'bogus');
  assert.equal(r.code, 2);
  assert.equal(r.err.trimEnd().split('\n').length, 1, r.err);
  assert.match(r.err, /^ckpt: .*bogus.*ptrace.*kcmp.*cap_sys_resource/);
});
