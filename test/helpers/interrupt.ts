/**
 * For tests that interrupt the CLI at random moments (issue 9): running `ckpt` as a
 * user does and signalling it, and checking what it left behind.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { kill, SIG } from '../../src/sys/index.js';
import { reapIfChild, waitGone, type Victim } from './victim.js';

/** Tries per case: a few in `npm test`, many with CKPT_TEST_LONG=1. */
export function tries(short: number, long: number): number {
  return process.env.CKPT_TEST_LONG === '1' ? long : short;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface CliRun {
  pid: number;
  /** How it ended: an exit code, or the signal that killed it. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once every holder of its stdout pipe has closed it (what `$(ckpt …)` waits for). */
  stdoutClosed: Promise<void>;
  stderr(): string;
  done(): boolean;
}

/**
 * Children Node started (the CLI runs): Node reaps them itself, and one whose exit a
 * test reaped instead would keep the test's event loop waiting forever.
 */
const nodeChildren = new Set<number>();

export function markNodeChild(pid: number): void {
  nodeChildren.add(pid);
}

export function runCli(bin: string, args: string[]): CliRun {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let finished = false;
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      finished = true;
      resolve({ code, signal });
    }),
  );
  const stdoutClosed = new Promise<void>((resolve) => child.stdout.on('close', () => resolve()));
  assert.ok(child.pid, 'ckpt started');
  markNodeChild(child.pid);
  return { pid: child.pid, exited, stdoutClosed, stderr: () => err, done: () => finished };
}

/** Fails unless `p` settles within `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts that the CLI ended because of `sig`: killed by it, or exit 128+sig as a shell reports it. */
export function assertDiedOf(ex: { code: number | null; signal: NodeJS.Signals | null }, sig: NodeJS.Signals, stderr: string): void {
  const num = { SIGINT: SIG.SIGINT, SIGTERM: SIG.SIGTERM, SIGKILL: SIG.SIGKILL }[sig as 'SIGINT'];
  assert.ok(ex.signal === sig || ex.code === 128 + num, `ckpt ended by ${sig}, not ${JSON.stringify(ex)}; stderr: ${stderr}`);
}

function statusField(pid: number, name: string): string | undefined {
  try {
    return new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

export function tracerOf(pid: number): number {
  return Number(statusField(pid, 'TracerPid') ?? 0);
}

/**
 * Once ckpt is gone: 'gone' if `pid` goes away (killed with ckpt), 'alive' if it is a
 * live process nobody traces and nobody is killing (a finished restore).
 */
export async function settle(pid: number, timeoutMs = 5000): Promise<'gone' | 'alive'> {
  const deadline = Date.now() + timeoutMs;
  let steady = 0;
  for (;;) {
    reapIfChild(pid);
    const state = statusField(pid, 'State');
    if (state === undefined) return 'gone';
    const pending = BigInt(`0x${statusField(pid, 'SigPnd') ?? '0'}`) | BigInt(`0x${statusField(pid, 'ShdPnd') ?? '0'}`);
    const dying = state.startsWith('Z') || ((pending >> 8n) & 1n) === 1n;
    if (!dying && tracerOf(pid) === 0) steady++;
    else steady = 0;
    if (steady >= 5) return 'alive';
    if (Date.now() > deadline) throw new Error(`pid ${pid} neither went away nor settled (state ${state}, tracer ${tracerOf(pid)})`);
    await sleep(20);
  }
}

/** Sends SIGUSR1 to a memcheck victim and asserts that its next CHECK line says PASS. */
export async function assertChecks(v: Victim): Promise<void> {
  const count = () => (v.output().match(/^CHECK \d+ /gm) ?? []).length;
  const before = count();
  kill(v.pid, SIG.SIGUSR1);
  const deadline = Date.now() + 20_000;
  while (count() <= before) {
    if (Date.now() > deadline) throw new Error(`victim ${v.pid} did not check itself:\n${v.output()}`);
    await sleep(10);
  }
  const last = v.output().match(/^CHECK \d+ .*$/gm)!.at(-1)!;
  assert.match(last, /^CHECK \d+ PASS$/, `victim ${v.pid} after the interruption`);
}

interface ProcEntry {
  pid: number;
  ppid: number;
  state: string;
}

function ourChildren(): ProcEntry[] {
  const out: ProcEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const st = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === process.pid) out.push({ pid: Number(name), ppid: Number(f[1]), state: f[0]! });
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * Asserts that no blank process of a killed restore is left (it would be reparented to
 * us, the test's subreaper), reaping the zombies of those that died.
 */
export async function assertNoBlankLeft(): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const left: number[] = [];
    for (const c of ourChildren()) {
      if (nodeChildren.has(c.pid)) continue;
      if (c.state === 'Z') {
        reapIfChild(c.pid);
        continue;
      }
      try {
        if (readlinkSync(`/proc/${c.pid}/exe`).startsWith('/memfd:ckpt-blank')) left.push(c.pid);
      } catch {
        // exiting
      }
    }
    if (left.length === 0) return;
    if (Date.now() > deadline) assert.fail(`blank processes left behind: ${left.join(', ')}`);
    await sleep(20);
  }
}

/** SIGKILL `pid` and wait until it is gone (reaped, as we are the subreaper). */
export async function killAndWait(pid: number): Promise<void> {
  try {
    kill(pid, SIG.SIGKILL);
  } catch {
    // gone
  }
  await waitGone(pid);
}
