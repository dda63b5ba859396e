/**
 * Process-state resources (src/resources/process) on live victims. The restore engine
 * is not there yet, so these are round trips in place: dump a victim, break its state
 * by injection, restore it, and let the victim check itself; and restore one victim's
 * state into a second instance that never set it (both run with ASLR off, so the two
 * have the same addresses).
 */
import { test } from 'node:test';
import { LocalObjects } from '../../src/resources/shared.js';
import assert from 'node:assert/strict';
import { readlinkSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { findSyscallSite, RemoteTask, seizeProcess, Undo, type SeizedProcess } from '../../src/infect/index.js';
import { bigintReplacer } from '../../src/images/bigint.js';
import { readStatus, RLIM_INFINITY } from '../../src/proc/index.js';
import { kill, NR, ptrace, SIG } from '../../src/sys/index.js';
import {
  creds, finalSigmask, fs, futex, itimers, limits, misc, PROCESS_RESOURCES, rseq, sigactions,
  type CredsState, type FutexState, type ItimersState, type LimitsState, type MiscState, type PendingState,
  type RseqState, type SigactionsState, type SigaltstackState, type SigmaskState,
} from '../../src/resources/process/index.js';
import { encodeStack, SS_DISABLE } from '../../src/resources/process/sigaltstack.js';
import { SIG_IGN } from '../../src/resources/process/sigactions.js';
import type { DumpContext, Resource, RestoreContext } from '../../src/resources/types.js';
import { startVictim, VICTIM_BIN, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

const SIGRT1 = 35; // glibc's SIGRTMIN + 1
const bit = (n: number): bigint => 1n << BigInt(n);
const sig = (n: number): bigint => bit(n - 1);
const CAP_NET_BIND_SERVICE = 10;
const CAP_NET_RAW = 13;
const CAP_SYS_BOOT = 22;
const CAP_SYS_RESOURCE = 24;
const CHECKS = 32; // PASS lines the victim prints when all is well

type States = Map<string, unknown>;

interface Started {
  v: Victim;
  dir: string;
  addrs: { usr1: bigint; tidvar: bigint; head: bigint };
}

async function startProcstate(opts: { dir?: string; blank?: boolean } = {}): Promise<Started> {
  const dir = opts.dir ?? realpathSync(cleanups.tempDir('ckpt-procstate-'));
  const args = ['x86_64', '-R', join(VICTIM_BIN, 'procstate'), dir, ...(opts.blank ? ['blank'] : [])];
  const v = startVictim('/usr/bin/setarch', { args });
  cleanups.push(() => v.cleanup());
  const m = await v.waitFor(/READY pid=\d+ usr1=(0x[0-9a-f]+) tidvar=(0x[0-9a-f]+) head=(0x[0-9a-f]+)/);
  return { v, dir, addrs: { usr1: BigInt(m[1]!), tidvar: BigInt(m[2]!), head: BigInt(m[3]!) } };
}

/** Seize, drive the leader with a RemoteTask, finish with `mask` if fn returns one, release. */
function session(pid: number, fn: (remote: RemoteTask, proc: SeizedProcess) => bigint | void): void {
  const proc = seizeProcess(pid);
  try {
    const remote = new RemoteTask(pid, { site: findSyscallSite(pid) });
    try {
      const mask = fn(remote, proc);
      remote.finish(mask === undefined ? {} : { mask });
    } finally {
      remote.finish(); // no-op after a successful finish; puts the registers back after a failure
    }
  } finally {
    proc.release();
  }
}

function dumpCtx(pid: number, remote: RemoteTask, opts: { proc: SeizedProcess; warnings: string[] }): DumpContext {
  return { pid, proc: opts.proc, remote, blobs: { put: () => assert.fail('no blobs here') }, warn: (m) => opts.warnings.push(m) };
}

function restoreCtx(pid: number, remote: RemoteTask, warnings: string[]): RestoreContext {
  const blobs = { get: () => assert.fail('no blobs here'), path: () => assert.fail('no blobs here') };
  return { pid, remote, blobs, undo: new Undo(), options: { shellJob: false },
    shared: new LocalObjects(), warn: (m) => warnings.push(m) };
}

/** What the orchestrator will do: JSON through the image, parsed back with the schema. */
function throughImage<S>(r: Resource<S>, state: S): S {
  return r.schema.parse(JSON.parse(JSON.stringify(state, bigintReplacer)));
}

function dumpAll(ctx: DumpContext): States {
  const states: States = new Map();
  for (const r of PROCESS_RESOURCES) states.set(r.name, throughImage(r, r.dump(ctx)));
  return states;
}

function get<S>(states: States, r: { name: string }): S {
  assert.ok(states.has(r.name), `state of ${r.name}`);
  return states.get(r.name) as S;
}

function checkDumped(states: States, s: Started): void {
  const acts = get<SigactionsState>(states, sigactions).actions;
  const usr1 = acts.find((a) => a.signo === SIG.SIGUSR1);
  assert.equal(usr1?.handler, s.addrs.usr1, 'SIGUSR1 handler');
  const want = 0x4n | 0x10000000n | 0x08000000n; // SA_SIGINFO | SA_RESTART | SA_ONSTACK
  assert.equal((usr1?.flags ?? 0n) & want, want, 'SIGUSR1 flags');
  assert.equal(usr1?.mask, sig(SIG.SIGUSR2) | sig(SIG.SIGALRM), 'SIGUSR1 mask');
  assert.equal(acts.find((a) => a.signo === SIG.SIGINT)?.handler, SIG_IGN, 'SIGINT ignored');
  assert.ok(!acts.some((a) => a.signo === SIG.SIGHUP), 'SIGHUP default, not saved');

  const mask = get<SigmaskState>(states, { name: 'sigmask' }).mask;
  assert.equal(mask, sig(SIG.SIGTERM) | sig(SIGRT1), 'blocked mask');
  const pend = get<PendingState>(states, { name: 'pending' });
  assert.deepEqual(pend.thread.map((p) => p.signo), [SIG.SIGTERM], 'SIGTERM pending for the thread');
  assert.deepEqual(pend.shared.map((p) => [p.signo, p.code]), [[SIGRT1, -1]], 'SIGRTMIN+1 queued (SI_QUEUE)');
  assert.equal(Buffer.from(pend.shared[0]!.info, 'base64').readInt32LE(24), 4242, 'si_value');

  const alt = get<SigaltstackState>(states, { name: 'sigaltstack' });
  assert.deepEqual([alt.flags, alt.size], [0, 65536n], 'sigaltstack');
  assert.equal(get<ItimersState>(states, itimers).virtual.intervalUs, 2_000_000_000n, 'ITIMER_VIRTUAL interval');
  assert.deepEqual(states.get('fs'), { cwd: s.dir, root: '/', umask: 0o27 });
  const m = get<MiscState>(states, misc);
  assert.deepEqual(m, { comm: 'procstate-x', personality: 0x40000, pdeathSig: SIG.SIGWINCH, childSubreaper: true, timerSlackNs: 12345n, thpDisable: true });
  const lim = get<LimitsState>(states, limits).limits;
  assert.equal(lim.find((l) => l.resource === 7)?.soft, 200n, 'RLIMIT_NOFILE soft');
  assert.deepEqual(lim.filter((l) => l.resource === 4).map((l) => [l.soft, l.hard]), [[0n, 0n]], 'RLIMIT_CORE');
  const fx = get<FutexState>(states, futex);
  assert.deepEqual([fx.clearChildTid, fx.robustList], [s.addrs.tidvar, { head: s.addrs.head, len: 24n }]);
  assert.notEqual(get<RseqState>(states, rseq).rseq, null, 'glibc registered rseq');
  const c = get<CredsState>(states, creds);
  assert.deepEqual(c.groups, [1234, 5678]);
  assert.equal(c.caps.bnd & bit(CAP_SYS_BOOT), 0n, 'CAP_SYS_BOOT dropped from the bounding set');
  assert.equal(c.caps.eff & bit(CAP_NET_RAW), 0n, 'CAP_NET_RAW not effective');
  assert.deepEqual([c.caps.inh, c.caps.amb], [bit(CAP_NET_BIND_SERVICE), bit(CAP_NET_BIND_SERVICE)]);
  assert.ok(c.noNewPrivs && (c.securebits & 0x10) !== 0, 'no_new_privs and keepcaps');
}

/** States that differ from the victim's in every field the victim checks. */
function brokenStates(states: States): States {
  const m = get<MiscState>(states, misc);
  const c = get<CredsState>(states, creds);
  const lim = get<LimitsState>(states, limits);
  const zero = { intervalUs: 0n, valueUs: 0n };
  return new Map<string, unknown>([
    ['sigactions', { actions: [] } satisfies SigactionsState],
    ['misc', { ...m, comm: 'broken', personality: 0, pdeathSig: 0, childSubreaper: false, timerSlackNs: 50000n, thpDisable: false }],
    ['fs', { cwd: '/', root: '/', umask: 0 }],
    ['limits', { limits: lim.limits.map((l) => (l.resource === 7 ? { ...l, soft: l.hard } : l)) }],
    ['itimers', { real: zero, virtual: zero, prof: zero } satisfies ItimersState],
    ['futex', { ...get<FutexState>(states, futex), clearChildTid: 0n, robustList: { head: 0n, len: 24n } }],
    ['rseq', { ...get<RseqState>(states, rseq), rseq: null }],
    ['mempolicy', { thread: { mode: 1 /* MPOL_PREFERRED */, nodes: [0] } }],
    ['creds', { ...c, groups: [], caps: { ...c.caps, eff: c.caps.eff | bit(CAP_NET_RAW), amb: 0n }, securebits: 0 }],
  ]);
}

function restoreAll(ctx: RestoreContext, states: States, skip: string[] = []): void {
  for (const r of PROCESS_RESOURCES) if (!skip.includes(r.name)) r.restore(ctx, get(states, r));
}

async function expectAllPass(v: Victim): Promise<void> {
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/);
  assert.doesNotMatch(v.output(), /FAIL/);
  assert.equal([...v.output().matchAll(/^PASS /gm)].length, CHECKS, v.output());
}

test('dump the process state of a live victim, break it by injection, restore it: the victim finds it intact', async () => {
  const s = await startProcstate();
  const warnings: string[] = [];
  let states: States = new Map();
  session(s.v.pid, (remote, proc) => {
    states = dumpAll(dumpCtx(s.v.pid, remote, { proc, warnings }));
  });
  checkDumped(states, s);

  session(s.v.pid, (remote, proc) => {
    const rctx = restoreCtx(s.v.pid, remote, warnings);
    for (const [name, st] of brokenStates(states)) PROCESS_RESOURCES.find((r) => r.name === name)!.restore(rctx, st);
    const addr = remote.scratch(24);
    remote.write(addr, encodeStack({ sp: 0n, flags: SS_DISABLE, size: 0n }));
    remote.call(NR.sigaltstack, [addr, 0], 'sigaltstack');

    // It is broken: every module but the untouched ones reads back differently.
    const st = readStatus(s.v.pid);
    assert.deepEqual([st.sigCgt, st.umask, st.groups, readlinkSync(`/proc/${s.v.pid}/cwd`)], [0n, 0, [], '/']);
    assert.equal(ptrace.getRseqConfiguration(s.v.pid).abiPointer, 0n, 'rseq unregistered');
    const broken = dumpAll(dumpCtx(s.v.pid, remote, { proc, warnings }));
    for (const r of PROCESS_RESOURCES) {
      // sched, posixTimers and cgroup have their own e2e tests (sched, timers, cgroup); procstate sets none.
      if (['seccomp', 'sigmask', 'pending', 'sched', 'posixTimers', 'cgroup'].includes(r.name)) continue;
      assert.notDeepEqual(broken.get(r.name), states.get(r.name), `${r.name} was broken`);
    }

    // Pending signals are still there: re-queueing them would deliver them twice.
    restoreAll(rctx, states, ['pending']);
    const again = dumpAll(dumpCtx(s.v.pid, remote, { proc, warnings }));
    for (const r of PROCESS_RESOURCES) {
      if (r.name === 'itimers') continue; // CPU time ran between the two dumps
      assert.deepEqual(again.get(r.name), states.get(r.name), `${r.name} reads back as dumped`);
    }
    const t = get<ItimersState>(again, itimers).virtual;
    assert.equal(t.intervalUs, 2_000_000_000n);
    // setitimer rounds up to the next tick, so the value may grow by one tick per restore.
    assert.ok(t.valueUs > 990_000_000n && t.valueUs <= get<ItimersState>(states, itimers).virtual.valueUs + 20_000n, `ITIMER_VIRTUAL value ${t.valueUs}`);
    assert.deepEqual(warnings, []);

    // A hard limit above the current one needs CAP_SYS_RESOURCE, which the restorer lacks: the restore fails, naming it.
    assert.throws(() => limits.restore(rctx, { limits: [{ resource: 4, name: 'Max core file size', soft: 0n, hard: RLIM_INFINITY }] }), {
      code: 'PERMISSION',
      message: /^Cannot restore the limit Max core file size \(resource 4\) of process \d+ \(soft 0, hard unlimited\): raising a hard limit above the restorer's needs CAP_SYS_RESOURCE/,
    });
    assert.deepEqual(warnings, []);
    return finalSigmask(get<SigmaskState>(states, { name: 'sigmask' }));
  });
  await expectAllPass(s.v);
});

test('restore the state of one victim into a fresh instance that never set it', async () => {
  const a = await startProcstate();
  const b = await startProcstate({ dir: a.dir, blank: true });
  assert.deepEqual(b.addrs, a.addrs, 'both instances have the same addresses (ASLR off)');
  const warnings: string[] = [];
  let states: States = new Map();
  session(a.v.pid, (remote, proc) => {
    states = dumpAll(dumpCtx(a.v.pid, remote, { proc, warnings }));
  });
  await a.v.kill();

  session(b.v.pid, (remote) => {
    const rctx = restoreCtx(b.v.pid, remote, warnings);
    // An image asking for a capability the restorer lacks is refused before anything changes.
    const c = get<CredsState>(states, creds);
    const greedy = { ...c, caps: { ...c.caps, prm: c.caps.prm | bit(CAP_SYS_RESOURCE), eff: c.caps.eff | bit(CAP_SYS_RESOURCE) } };
    const groupsBefore = readStatus(b.v.pid).groups;
    assert.throws(() => creds.restore(rctx, greedy), {
      code: 'PERMISSION',
      message: `Cannot restore process ${b.v.pid}: its image asks for more privilege than the restorer has (permitted capability CAP_SYS_RESOURCE)`,
    });
    assert.deepEqual(readStatus(b.v.pid).groups, groupsBefore, 'nothing changed');

    restoreAll(rctx, states, ['sched']); // names the threads of the first instance
    return finalSigmask(get<SigmaskState>(states, { name: 'sigmask' }));
  });
  assert.deepEqual(warnings, []);
  await expectAllPass(b.v);
});

test('a working directory that no longer exists is FILE_CHANGED', async () => {
  const s = await startProcstate({ blank: true });
  session(s.v.pid, (remote) => {
    assert.throws(() => fs.restore(restoreCtx(s.v.pid, remote, []), { cwd: '/nonexistent/ckpt-test', root: '/', umask: 0o22 }), {
      code: 'FILE_CHANGED',
      message: /Cannot restore the working directory of process \d+: \/nonexistent\/ckpt-test no longer exists/,
    });
  });
});
