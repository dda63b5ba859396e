import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configLine, expandConfig } from './config.js';
import { parseVerbosity } from './report.js';

test('config lines in CRIU\'s format', () => {
  assert.deepEqual(configLine('tcp-established', 'f:1'), ['--tcp-established']);
  assert.deepEqual(configLine('  shell-job   # a comment', 'f:1'), ['--shell-job']);
  assert.deepEqual(configLine('# only a comment', 'f:1'), []);
  assert.deepEqual(configLine('', 'f:1'), []);
  assert.deepEqual(configLine('work-dir "/home/u/criu/my \\"work\\" dir"', 'f:1'), ['--work-dir', '/home/u/criu/my "work" dir']);
  assert.deepEqual(configLine('log-file dump.log # here', 'f:1'), ['--log-file', 'dump.log']);
  assert.throws(() => configLine('work-dir "/a', 'f:1'), /unbalanced quotes/);
  assert.throws(() => configLine('log-file a b', 'f:1'), /more than one argument/);
  assert.throws(() => configLine('--x', 'f:1'), /not an option/);
});

test('--config options come right after the command, before the command line\'s own', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'ckpt-config-')), 'c.conf');
  writeFileSync(file, 'tcp-established\nverbosity 4\n');
  assert.deepEqual(expandConfig(['dump', '-t', '1', '--config', file, '-v0']), ['dump', '--tcp-established', '--verbosity', '4', '-t', '1', '--config', file, '-v0']);
  assert.deepEqual(expandConfig(['restore', `--config=${file}`]), ['restore', '--tcp-established', '--verbosity', '4', `--config=${file}`]);
  assert.deepEqual(expandConfig(['dump', '-t', '1']), ['dump', '-t', '1']);
  assert.throws(() => expandConfig(['dump', '--config', '/nonexistent/c.conf']), /Cannot read config \/nonexistent\/c.conf: ENOENT/);
});

test('CRIU\'s -v forms', () => {
  assert.equal(parseVerbosity('4'), 4);
  assert.equal(parseVerbosity('0'), 0);
  assert.equal(parseVerbosity(''), 3, 'a bare -v raises the default (2) by one');
  assert.equal(parseVerbosity('', 3), 4);
  assert.equal(parseVerbosity('vvv'), 4, '-vvvv: capped at 4');
  assert.equal(parseVerbosity('v', 0), 2);
  assert.equal(parseVerbosity('9'), 4);
  assert.throws(() => parseVerbosity('x'), /not a verbosity level/);
});
