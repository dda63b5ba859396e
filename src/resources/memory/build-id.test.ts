import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { buildIdOf } from './build-id.js';

function withFd<T>(path: string, fn: (fd: number) => T): T {
  const fd = openSync(path, 'r');
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

test('the build ID of an ELF file is the one readelf shows', () => {
  const exe = process.execPath;
  const id = withFd(exe, buildIdOf);
  const readelf = spawnSync('readelf', ['-n', exe], { encoding: 'utf8' });
  const shown = /Build ID: ([0-9a-f]+)/.exec(readelf.stdout ?? '')?.[1];
  if (shown) assert.equal(id, shown);
  else assert.match(id ?? '', /^[0-9a-f]{16,128}$/);
});

test('a file that is not ELF has no build ID', () => {
  assert.equal(withFd('/etc/passwd', buildIdOf), undefined);
  assert.equal(withFd('/dev/null', buildIdOf), undefined);
});
