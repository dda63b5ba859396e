import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseLimits, readLimits, RLIM_INFINITY } from './limits.js';
import { readFileSync } from 'node:fs';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

test('limits: 16 rows in RLIMIT order, unlimited as RLIM_INFINITY, empty units', () => {
  const l = parseLimits(fixture('limits.txt'));
  assert.equal(l.length, 16);
  assert.deepEqual(l.map((r) => r.resource), [...Array(16).keys()]);
  assert.deepEqual(l[7], { name: 'Max open files', resource: 7, soft: 20000n, hard: 20000n, units: 'files' });
  assert.deepEqual(l[3], { name: 'Max stack size', resource: 3, soft: 8388608n, hard: RLIM_INFINITY, units: 'bytes' });
  assert.equal(l[0]?.soft, 0xffffffffffffffffn);
  assert.deepEqual(l[13], { name: 'Max nice priority', resource: 13, soft: 0n, hard: 0n, units: '' });
  assert.equal(l[15]?.units, 'us');
});

test('an unknown row keeps its name and gets resource -1', () => {
  const extra = parseLimits(fixture('limits-odd.txt')).at(-1);
  assert.deepEqual(extra, { name: 'Max future widgets', resource: -1, soft: 12n, hard: RLIM_INFINITY, units: 'widgets' });
});

test('readLimits(self)', () => {
  const l = readLimits(process.pid);
  assert.equal(l.length, 16);
  for (const r of l) assert.ok(r.soft <= r.hard, r.name);
});
