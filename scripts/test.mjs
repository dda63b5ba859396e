#!/usr/bin/env node
// Test entry point: builds the C victims, then runs unit tests (beside the code,
// src/**/*.test.ts) and end-to-end tests (test/e2e/**/*.test.ts) with node's test
// runner. `node scripts/test.mjs unit|e2e` runs one group.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

// `npm test` must work on a fresh clone: install first, and say what is missing.
if (!existsSync(join(root, 'node_modules'))) {
  console.log('node_modules is missing: running npm ci');
  const r = spawnSync('npm', [existsSync(join(root, 'package-lock.json')) ? 'ci' : 'install'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
if (spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status !== 0) {
  console.error('gcc is needed to build the test programs (test/victims): install gcc (e.g. apt-get install -y gcc libc6-dev)');
  process.exit(1);
}
const group = process.argv[2] ?? 'all';

function find(dir, out = []) {
  for (const name of readdirSync(join(root, dir))) {
    const rel = join(dir, name);
    if (statSync(join(root, rel)).isDirectory()) find(rel, out);
    else if (name.endsWith('.test.ts')) out.push(rel);
  }
  return out;
}

const files = [];
if (group === 'all' || group === 'unit') files.push(...find('src'));
if (group === 'all' || group === 'e2e') {
  const built = spawnSync(process.execPath, [join(root, 'scripts/build-victims.mjs')], { stdio: 'inherit' });
  if (built.status !== 0) process.exit(built.status ?? 1);
  files.push(...find('test/e2e'));
}
files.sort();
// Every restore in the suite reads the restored processes back and compares them with
// the images before they run (restore --check), so each test is also an audit.
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
  cwd: root,
  stdio: 'inherit',
  env: { CKPT_CHECK: '1', ...process.env },
});
process.exit(r.status ?? 1);
