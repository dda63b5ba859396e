import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkPrivilege, excessPrivilege, type CredsRequest, type Privilege } from './privilege.js';

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
  assert.equal(excessPrivilege(req({ uid: [0, 0, 0, 0] }), USER), 'uid 0');
  assert.equal(excessPrivilege(req({ gid: [1000, 0, 1000, 1000] }), USER), 'gid 0');
  assert.equal(excessPrivilege(req({ groups: [1000, 4] }), USER), 'group 4');
});

test('a capability the restorer lacks, in any set, is named', () => {
  const sysResource = 1n << 24n;
  for (const set of ['prm', 'eff', 'inh', 'amb'] as const) {
    const r = req({ uid: [0, 0, 0, 0], caps: { ...noCaps, bnd: 0n, [set]: sysResource } });
    assert.equal(excessPrivilege(r, ROOT_HERE), 'CAP_SYS_RESOURCE', set);
  }
  // A bounding set wider than the restorer's cannot be had either.
  assert.equal(excessPrivilege(req({ uid: [0, 0, 0, 0], caps: { ...noCaps, bnd: 0x1ffffffffffn } }), ROOT_HERE), 'CAP_SYS_RESOURCE');
  assert.equal(excessPrivilege(req({ caps: { ...noCaps, eff: 1n << 7n } }), USER), 'CAP_SETUID');
});

test('checkPrivilege throws PERMISSION with the process and what is missing', () => {
  assert.throws(() => checkPrivilege(req({ uid: [0, 0, 0, 0] }), { pid: 42, have: USER }), {
    code: 'PERMISSION',
    message: 'Cannot restore process 42: its image asks for more privilege than the restorer has (uid 0)',
  });
  assert.doesNotThrow(() => checkPrivilege(req({}), { pid: 42, have: USER }));
});
