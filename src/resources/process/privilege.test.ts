import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPrivilege, excessPrivilege, userPrivilege, type CredsRequest, type Privilege } from './privilege.js';

const ROOT_HERE: Privilege = { uid: [0, 0, 0, 0], gid: [0, 0, 0, 0], groups: [0], capEff: 0x1fffeffffffn, capBnd: 0x1fffeffffffn };
const USER: Privilege = { uid: [1000, 1000, 1000, 1000], gid: [1000, 1000, 1000, 1000], groups: [1000, 27], capEff: 0n, capBnd: 0x1ffffffffffn };
const noCaps = { inh: 0n, prm: 0n, eff: 0n, bnd: 0x1ffffffffffn, amb: 0n };

function req(over: Partial<CredsRequest>): CredsRequest {
  return { uid: [1000, 1000, 1000, 1000], gid: [1000, 1000, 1000, 1000], groups: [1000], caps: noCaps, ...over };
}

test('a process of the restorer itself needs no more privilege', () => {
  assert.equal(excessPrivilege(req({}), USER), undefined);
  assert.equal(excessPrivilege(req({ uid: [0, 0, 0, 0], caps: { ...noCaps, bnd: 0x1fffeffffffn, prm: 0x1fffeffffffn, eff: 1n } }), ROOT_HERE), undefined);
});

test('uid 0 asked of a restorer that is not root', () => {
  assert.equal(excessPrivilege(req({ uid: [0, 0, 0, 0] }), USER), 'real uid 0');
  assert.equal(excessPrivilege(req({ gid: [1000, 0, 1000, 1000] }), USER), 'effective gid 0');
  assert.equal(excessPrivilege(req({ groups: [1000, 4] }), USER), 'supplementary group 4');
});

test('a capability the restorer lacks, in any set, is named', () => {
  const sysResource = 1n << 24n;
  for (const set of ['prm', 'eff', 'inh', 'amb'] as const) {
    const r = req({ uid: [0, 0, 0, 0], caps: { ...noCaps, bnd: 0n, [set]: sysResource } });
    const name = { prm: 'permitted', eff: 'effective', inh: 'inheritable', amb: 'ambient' }[set];
    assert.equal(excessPrivilege(r, ROOT_HERE), `${name} capability CAP_SYS_RESOURCE`, set);
  }
  // A bounding set wider than the restorer's cannot be had either.
  assert.equal(excessPrivilege(req({ uid: [0, 0, 0, 0], caps: { ...noCaps, bnd: 0x1ffffffffffn } }), ROOT_HERE), 'bounding capability CAP_SYS_RESOURCE');
  assert.equal(excessPrivilege(req({ caps: { ...noCaps, eff: 1n << 7n } }), USER), 'effective capability CAP_SETUID');
});

test('checkPrivilege throws PERMISSION with the process and what is missing', () => {
  assert.throws(() => checkPrivilege(req({ uid: [0, 0, 0, 0] }), { pid: 42, have: USER }), {
    code: 'PERMISSION',
    message: 'Cannot restore process 42: its image asks for more privilege than the restorer has (real uid 0)',
  });
  assert.doesNotThrow(() => checkPrivilege(req({}), { pid: 42, have: USER }));
});

test('images owned by another user are held to what that user has', () => {
  const owner = { uid: 1000, have: USER };
  const limit = { owner };
  const bnd = 0x1fffeffffffn;
  assert.doesNotThrow(() => checkPrivilege(req({ caps: { ...noCaps, bnd } }), { pid: 7, have: ROOT_HERE, limit }));
  assert.throws(() => checkPrivilege(req({ uid: [1000, 0, 1000, 1000], caps: { ...noCaps, bnd } }), { pid: 7, have: ROOT_HERE, limit }), {
    code: 'PERMISSION',
    message: /more privilege than the images' owner \(uid 1000\) has \(effective uid 0\); .*--trust-images/,
  });
  assert.throws(() => checkPrivilege(req({ caps: { ...noCaps, bnd, amb: 1n << 21n } }), { pid: 7, have: ROOT_HERE, limit }), /ambient capability CAP_SYS_ADMIN/);
});

test('userPrivilege: an unknown user has its uid, the extra group, no capabilities', () => {
  const p = userPrivilege(4_000_000_123, { extraGid: 77, capBnd: 5n });
  assert.deepEqual(p, { uid: [4_000_000_123], gid: [77], groups: [77], capEff: 0n, capBnd: 5n });
  const root = userPrivilege(0, { capBnd: 1n });
  assert.ok(root.gid.includes(0), 'root: primary group 0 from /etc/passwd');
});
