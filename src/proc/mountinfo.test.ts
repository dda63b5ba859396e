import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMountinfo, readMountinfo, unescapeOctal } from './mountinfo.js';
import { readFileSync } from 'node:fs';

const fixture = (name: string): string => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

test('mountinfo on this machine: no propagation fields, root on /dev/vda', () => {
  const m = parseMountinfo(fixture('mountinfo.txt'));
  assert.equal(m.length, 20);
  assert.deepEqual(m[0], {
    mountId: 22, parentId: 27, major: 0, minor: 21, root: '/', mountPoint: '/proc', options: 'rw,relatime',
    optionalFields: [], fsType: 'proc', source: 'proc', superOptions: 'rw',
  });
  const root = m.find((e) => e.mountPoint === '/');
  assert.deepEqual([root?.major, root?.minor, root?.fsType, root?.source], [254, 0, 'ext4', '/dev/vda']);
});

test('optional fields, escaped names, a source with a backslash', () => {
  const [a, b, c] = parseMountinfo(fixture('mountinfo-odd.txt'));
  assert.deepEqual(a?.optionalFields, ['master:1']);
  assert.equal(a?.root, '/mnt1');
  assert.equal(b?.root, '/my dir');
  assert.equal(b?.mountPoint, '/srv/with space\ttab');
  assert.deepEqual(b?.optionalFields, ['shared:5', 'master:2', 'propagate_from:2']);
  assert.equal(b?.fsType, 'fuse.sshfs');
  assert.equal(b?.source, 'me@host:/a\\b');
  assert.equal(b?.superOptions, 'rw,user_id=0');
  assert.deepEqual(c?.optionalFields, ['unbindable']);
  assert.equal(unescapeOctal('a\\012b'), 'a\nb');
  assert.throws(() => parseMountinfo('1 2 3\n'), { name: 'CkptError', code: 'INTERNAL' });
});

test('readMountinfo(self) has a root mount', () => {
  assert.ok(readMountinfo(process.pid).some((e) => e.mountPoint === '/'));
});
