import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bigintReplacer } from '../../images/bigint.js';
import type { Resource } from '../types.js';
import { PROCESS_RESOURCES, PROCESS_RESTORE_PHASE } from './index.js';
import { decodeSigaction, encodeSigaction } from './sigactions.js';
import { decodeStack, encodeStack } from './sigaltstack.js';
import { decodeItimerval, encodeItimerval } from './itimers.js';
import { encodeCapset } from '../../sys/index.js';
import { finalSigmask } from './sigmask.js';
import { schedSchema } from './sched.js';
import { posixTimersSchema } from './posix-timers.js';

const U64_MAX = (1n << 64n) - 1n;
const siginfo = Buffer.alloc(128);
siginfo.writeInt32LE(35, 0);
siginfo.writeInt32LE(-1, 8);

/** One realistic state per module, with values at the edges of their ranges. */
const SAMPLES: Record<string, unknown> = {
  seccomp: { mode: 0 },
  cgroup: { hierarchies: [{ key: '0:', path: '/system.slice/redis.service' }, { key: '4:memory', path: '/' }, { key: '9:name=systemd', path: '/user.slice' }] },
  misc: { comm: 'procstate-x', personality: 0x40000, pdeathSig: 28, childSubreaper: true, timerSlackNs: 12345n, thpDisable: false },
  sigactions: {
    actions: [
      { signo: 2, handler: 1n, flags: 0n, restorer: 0n, mask: 0n },
      { signo: 64, handler: 0x7f0000001000n, flags: 0x1c000004n, restorer: 0x7f0000002000n, mask: U64_MAX },
    ],
  },
  sigaltstack: { tid: 10, sp: 0x555555569000n, flags: -0x80000000, size: 65536n },
  futex: { tid: 10, clearChildTid: 0x7fffffffe000n, robustList: { head: 0n, len: 24n } },
  rseq: { tid: 10, rseq: { abiPointer: 0x7ffff7d8e9e0n, abiSize: 32, signature: 0x53053053 } },
  mempolicy: { thread: { mode: 3 | (1 << 15), nodes: [0] }, areas: [{ mode: 2, nodes: [0], start: 0x7f0000000000n, end: 0x7f0000200000n }] },
  fs: { cwd: '/tmp/a dir (deleted)', root: '/', umask: 0o27 },
  limits: { limits: [{ resource: 4, name: 'Max core file size', soft: 0n, hard: U64_MAX }] },
  itimers: {
    real: { intervalUs: 0n, valueUs: 0n },
    virtual: { intervalUs: 2_000_000_000n, valueUs: 999_999_999n },
    prof: { intervalUs: 1n, valueUs: 1n },
  },
  pending: { tid: 10, shared: [{ signo: 35, code: -1, info: siginfo.toString('base64') }], thread: [] },
  sigmask: { tid: 10, mask: U64_MAX },
  posixTimers: {
    timers: [
      { id: 0, clock: 1, signo: 36, value: 0x6fn, notify: 'signal', intervalNs: 200_000_000n, valueNs: 123n },
      { id: 3, clock: -6, signo: 37, value: U64_MAX, notify: 'signal', tid: 11, intervalNs: 0n, valueNs: 0n },
    ],
  },
  sched: {
    threads: [{
      tid: 10, policy: 2, flags: 1n, nice: 7, priority: 5, runtime: 0n, deadline: 0n, period: 0n, utilMin: 0, utilMax: 0, cpus: '03',
    }],
    oomScoreAdj: 321,
    coredumpFilter: 0x27,
  },
  creds: {
    uid: [1000, 1000, 1000, 1000],
    gid: [0, 0, 0, 4294967295],
    groups: [],
    caps: { inh: 0n, prm: 0x1fffeffffffn, eff: 0x1fffeffdfffn, bnd: 0x1fffebfffffn, amb: 1024n },
    securebits: 16,
    noNewPrivs: true,
    dumpable: 2,
  },
};

function throughJson<S>(r: Resource<S>, state: unknown): S {
  return r.schema.parse(JSON.parse(JSON.stringify(state, bigintReplacer)));
}

for (const r of PROCESS_RESOURCES) {
  test(`${r.name}: a state survives the trip through a JSON image unchanged`, () => {
    const sample = SAMPLES[r.name];
    assert.ok(sample !== undefined, `a sample for ${r.name}`);
    assert.deepEqual(throughJson(r, sample), sample);
  });
}

test('every module has a restore phase, and names are unique', () => {
  const names = PROCESS_RESOURCES.map((r) => r.name);
  assert.equal(new Set(names).size, names.length);
  assert.deepEqual(Object.keys(PROCESS_RESTORE_PHASE).sort(), [...names].sort());
  assert.equal(names[0], 'seccomp', 'seccomp is checked before any injection');
  assert.equal(names.at(-1), 'creds', 'creds are restored last');
  assert.ok(names.indexOf('pending') > names.indexOf('sigactions'), 'pending after sigactions');
});

test('schemas refuse bad states', () => {
  const byName = Object.fromEntries(PROCESS_RESOURCES.map((r) => [r.name, r]));
  const bad: [string, unknown][] = [
    ['sigactions', { actions: [{ signo: 65, handler: 0n, flags: 0n, restorer: 0n, mask: 0n }] }],
    ['sigmask', { tid: 1, mask: String(1n << 64n) }],
    ['pending', { tid: 1, shared: [{ signo: 35, code: -1, info: 'AAAA' }], thread: [] }],
    ['fs', { cwd: 'relative', root: '/', umask: 0 }],
    ['misc', { ...(SAMPLES['misc'] as object), comm: 'sixteen-bytes-xx' }],
    ['creds', { ...(SAMPLES['creds'] as object), uid: [0, 0, 0] }],
    ['seccomp', { mode: 2 }],
    ['cgroup', { hierarchies: [{ key: '0:', path: '/a/../../escape' }] }],
    ['cgroup', { hierarchies: [{ key: '0:', path: 'relative' }] }],
    ['cgroup', { hierarchies: [{ key: '0:/x', path: '/' }] }],
  ];
  for (const [name, state] of bad) assert.throws(() => byName[name]!.schema.parse(state), Error, name);
});

test('kernel struct codecs round-trip', () => {
  const a = { signo: 10, handler: 0x555555555369n, flags: 0x1c000004n, restorer: 0x7ffff7c3e050n, mask: 0x2800n };
  assert.deepEqual(decodeSigaction(10, encodeSigaction(a)), a);
  const ss = { sp: 0x555555569000n, flags: 0, size: 65536n };
  assert.deepEqual(decodeStack(encodeStack(ss)), ss);
  const it = { intervalUs: 2_000_000_000n, valueUs: 1_500_123n };
  assert.deepEqual(decodeItimerval(encodeItimerval(it)), it);
  assert.equal(encodeItimerval(it).readBigInt64LE(24), 500_123n, 'tv_usec of it_value');
});

test('capset data splits capabilities into low and high 32-bit words', () => {
  const { header, data } = encodeCapset({ inh: 1n << 40n, prm: 0x1fffeffffffn, eff: 1n });
  assert.equal(header.readUInt32LE(0), 0x20080522);
  assert.deepEqual(
    [0, 4, 8, 12, 16, 20].map((o) => data.readUInt32LE(o)),
    [1, 0xfeffffff, 0, 0, 0x1ff, 1 << 8],
  );
});

test('the final mask never blocks SIGKILL or SIGSTOP', () => {
  assert.equal(finalSigmask({ tid: 1, mask: U64_MAX }), U64_MAX & ~((1n << 8n) | (1n << 18n)));
});

test('images from before sched and POSIX timers were saved parse as nothing to restore', () => {
  assert.deepEqual(schedSchema.parse(undefined), { threads: [] });
  assert.deepEqual(posixTimersSchema.parse(undefined), { timers: [] });
  assert.equal(schedSchema.safeParse({ threads: [{ tid: 1, policy: 0, flags: '0', nice: 40 }] }).success, false, 'nice out of range');
});
