/**
 * Two "hosts" for `ckpt migrate` tests: network namespaces A and B, joined through a
 * third, C, by veth pairs (C routes between them and holds the client). A TCP server
 * (migrate-server.c) in A with a client in C streaming "seq N" lines (seq-consumer.c
 * checks them); the receiver runs in B in a PID namespace of its own (as on another
 * machine: the source's PIDs are still in use until it dies).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startVictim, VICTIM_BIN, type Victim } from './victim.js';
import type { Cleanups } from './cleanup.js';

const root = new URL('../..', import.meta.url).pathname;
export const SERVICE = '10.77.9.1';
export const PORT = 7000;

function sh(cmd: string[]): void {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr}`);
}

export interface MigrateNet {
  ns: { a: string; b: string; c: string };
  tag: string;
  inNs(ns: string, ...cmd: string[]): void;
}

/** A, B and C: A 10.N.1.2 and B 10.N.2.2, each routed through C (10.N.1.1, 10.N.2.1); the service address on A. */
export function network(cleanups: Cleanups, tag: string): MigrateNet {
  const ns = { a: `ckmA${tag}`, b: `ckmB${tag}`, c: `ckmC${tag}` };
  const inNs = (n: string, ...cmd: string[]) => sh(['ip', 'netns', 'exec', n, ...cmd]);
  cleanups.push(() => {
    for (const n of Object.values(ns)) spawnSync('ip', ['netns', 'del', n]);
  });
  for (const n of Object.values(ns)) {
    sh(['ip', 'netns', 'add', n]);
    inNs(n, 'ip', 'link', 'set', 'lo', 'up');
  }
  for (const [side, k] of [['a', 1], ['b', 2]] as const) {
    const own = ns[side];
    sh(['ip', 'link', 'add', `${side}0m${tag}`, 'netns', own, 'type', 'veth', 'peer', 'name', `c${side}m${tag}`, 'netns', ns.c]);
    inNs(own, 'ip', 'addr', 'add', `10.77.${k}.2/24`, 'dev', `${side}0m${tag}`);
    inNs(own, 'ip', 'link', 'set', `${side}0m${tag}`, 'up');
    inNs(own, 'ip', 'route', 'add', 'default', 'via', `10.77.${k}.1`);
    inNs(ns.c, 'ip', 'addr', 'add', `10.77.${k}.1/24`, 'dev', `c${side}m${tag}`);
    inNs(ns.c, 'ip', 'link', 'set', `c${side}m${tag}`, 'up');
  }
  for (const n of Object.values(ns)) inNs(n, 'sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.ip_forward=1');
  inNs(ns.a, 'ip', 'addr', 'add', `${SERVICE}/32`, 'dev', `a0m${tag}`);
  inNs(ns.c, 'ip', 'route', 'add', `${SERVICE}/32`, 'via', '10.77.1.2');
  return { ns, tag, inNs };
}

export function tokenFile(dir: string): string {
  const f = join(dir, 'token');
  writeFileSync(f, randomBytes(32), { mode: 0o600 });
  chmodSync(f, 0o600);
  return f;
}

export function script(dir: string, name: string, body: string): string {
  const f = join(dir, name);
  writeFileSync(f, `#!/bin/sh\nset -e\n${body}\n`, { mode: 0o700 });
  return f;
}

/** The source's script: the service address leaves A at post-dump, and comes back if the migration fails after. */
export function sourceScript(net: MigrateNet, dir: string): string {
  return script(dir, 'src.sh', [
    `[ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] && ip addr del ${SERVICE}/32 dev a0m${net.tag}`,
    `[ "$CRTOOLS_SCRIPT_ACTION" = migrate-failed ] && ip addr add ${SERVICE}/32 dev a0m${net.tag}`,
    'exit 0',
  ].join('\n'));
}

/** The destination's script: the service address comes to B and C routes it there at pre-restore. */
export function destinationScript(net: MigrateNet, dir: string): string {
  return script(dir, 'dst.sh', `[ "$CRTOOLS_SCRIPT_ACTION" = pre-restore ] || exit 0\nip addr add ${SERVICE}/32 dev b0m${net.tag}\nip netns exec ${net.ns.c} ip route replace ${SERVICE}/32 via 10.77.2.2`);
}

const ckptArgs = (...args: string[]) => ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args];

export interface Receiver {
  child: ChildProcess;
  port: Promise<number>;
  stderr: () => string;
  /** Resolves with the receiver's exit status once it has ended (its namespace's init lives on). */
  exited: Promise<number>;
}

/**
 * `ckpt migrate --receive` in B (or, without `net`, on 127.0.0.1 here), in a PID namespace
 * of its own whose init outlives it (and dies with the test).
 */
export function receiver(net: MigrateNet | undefined, args: { cleanups: Cleanups; dir: string; token: string; script?: string; extra?: string[]; env?: Record<string, string> }): Receiver {
  const scripts = args.script ? ['--action-script', args.script] : [];
  const cmd = [process.execPath, ...ckptArgs('migrate', '--receive', '-D', args.dir, '--address', net ? '10.77.2.2' : '127.0.0.1', '--port', '0', '--auth-token', args.token, ...scripts, '-v3', ...(args.extra ?? []))];
  const quoted = cmd.map((c) => `'${c}'`).join(' ');
  const inB = net ? ['ip', 'netns', 'exec', net.ns.b] : [];
  const child = spawn(inB[0] ?? 'unshare', [...inB.slice(1), ...(net ? ['unshare'] : []), '--pid', '--fork', '--kill-child', '--mount-proc', 'sh', '-c', `${quoted}; echo "receiver exit $?" >&2; exec sleep 100000`], {
    cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...args.env },
  });
  args.cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let err = '';
  child.stderr!.setEncoding('utf8');
  let exitedResolve: (n: number) => void = () => {};
  const exited = new Promise<number>((res) => (exitedResolve = res));
  const port = new Promise<number>((res, rej) => {
    child.stderr!.on('data', (d: string) => {
      err += d;
      const m = /listening on [0-9.]+:(\d+)/.exec(err);
      if (m) res(Number(m[1]));
      const x = /receiver exit (\d+)/.exec(err);
      if (x) exitedResolve(Number(x[1]));
    });
    child.on('exit', () => rej(new Error(`receiver exited: ${err}`)));
  });
  return { child, port, stderr: () => err, exited };
}

export interface SourceRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runSource(net: MigrateNet, args: { pid: number; port: number; token: string; script: string; extra?: string[]; env?: Record<string, string> }): Promise<SourceRun> {
  // nsenter, not `ip netns exec`: that makes a mount namespace too, and ckpt dumps only processes in its own.
  const child = spawn('nsenter', [`--net=/run/netns/${net.ns.a}`, process.execPath, ...ckptArgs('migrate', '-t', String(args.pid), '--to', `10.77.2.2:${args.port}`, '--auth-token', args.token, '--action-script', args.script, '--json', '-v3', ...(args.extra ?? []))], {
    cwd: root, env: { ...process.env, ...args.env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((res) => child.on('exit', (status) => res({ status, stdout, stderr })));
}

/** The server in A, its client in C; resolves once the client checks lines. */
export async function serverAndClient(net: MigrateNet, args: { cleanups: Cleanups; dir: string }): Promise<{ server: Victim; clientLog: string }> {
  const server = startVictim('/usr/bin/nsenter', { args: [`--net=/run/netns/${net.ns.a}`, join(VICTIM_BIN, 'migrate-server'), SERVICE, String(PORT), '32', '4'] });
  args.cleanups.push(() => server.cleanup());
  await server.waitFor(/^READY/m, 30_000);
  const clientLog = join(args.dir, 'client.log');
  const client = startVictim('/usr/bin/nsenter', { args: [`--net=/run/netns/${net.ns.c}`, 'bash', '-c', `exec ${join(VICTIM_BIN, 'seq-consumer')} ${clientLog} < /dev/tcp/${SERVICE}/${PORT}`] });
  args.cleanups.push(() => client.cleanup());
  await server.waitFor(/^ACCEPTED/m);
  await passes(clientLog, 2);
  return { server, clientLog };
}

export const passLines = (log: string) => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('PASS')).length : 0);

export async function passes(log: string, n: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (passLines(log) < n) {
    if (Date.now() > deadline) throw new Error(`client: fewer than ${n} PASS lines:\n${existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * What is left of a source's memory tracking: areas of `pid` registered with a
 * userfaultfd (smaps VmFlags `uw`), and holder processes watching it (`tail --pid=PID`).
 */
export function trackingLeft(pid: number): { registered: number; holders: number[] } {
  const smaps = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const registered = smaps.split('\n').filter((l) => l.startsWith('VmFlags:') && / uw\b/.test(l)).length;
  const holders: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv.includes(`--pid=${pid}`)) holders.push(Number(d));
    } catch {
      // gone
    }
  }
  return { registered, holders };
}
