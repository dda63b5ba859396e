/**
 * `ckpt migrate` between two "hosts": network namespaces A and B, joined through a
 * third, C, by veth pairs (C routes between them and holds the client). A TCP server
 * (migrate-server.c) with a client in C streaming "seq N" lines (seq-consumer.c checks
 * them) moves from A to B: pre-copy rounds, a final freeze, restore in B (in its own PID
 * namespace, as on another machine: the source's PIDs are still in use until it dies),
 * and the server's address moves with it (action scripts: removed from A at post-dump,
 * added in B and routed there by C at pre-restore). The client sees only a pause.
 * A destination that fails the restore leaves the source running.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startVictim, VICTIM_BIN, waitGone, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const root = new URL('../..', import.meta.url).pathname;
const tag = (process.pid % 10000).toString();
const NS = { a: `ckmA${tag}`, b: `ckmB${tag}`, c: `ckmC${tag}` };
const SERVICE = '10.77.9.1';
const PORT = 7000;

function sh(cmd: string[]): void {
  const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr}`);
}
const inNs = (ns: string, ...cmd: string[]) => sh(['ip', 'netns', 'exec', ns, ...cmd]);

/** A, B and C: A 10.77.1.2 and B 10.77.2.2, each routed through C (10.77.1.1, 10.77.2.1); the service address on A. */
function network(): void {
  cleanups.push(() => {
    for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns]);
  });
  for (const ns of Object.values(NS)) {
    sh(['ip', 'netns', 'add', ns]);
    inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
  }
  for (const [side, n] of [['a', 1], ['b', 2]] as const) {
    const ns = NS[side];
    sh(['ip', 'link', 'add', `${side}0m${tag}`, 'netns', ns, 'type', 'veth', 'peer', 'name', `c${side}m${tag}`, 'netns', NS.c]);
    inNs(ns, 'ip', 'addr', 'add', `10.77.${n}.2/24`, 'dev', `${side}0m${tag}`);
    inNs(ns, 'ip', 'link', 'set', `${side}0m${tag}`, 'up');
    inNs(ns, 'ip', 'route', 'add', 'default', 'via', `10.77.${n}.1`);
    inNs(NS.c, 'ip', 'addr', 'add', `10.77.${n}.1/24`, 'dev', `c${side}m${tag}`);
    inNs(NS.c, 'ip', 'link', 'set', `c${side}m${tag}`, 'up');
  }
  for (const ns of Object.values(NS)) inNs(ns, 'sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.ip_forward=1');
  inNs(NS.a, 'ip', 'addr', 'add', `${SERVICE}/32`, 'dev', `a0m${tag}`);
  inNs(NS.c, 'ip', 'route', 'add', `${SERVICE}/32`, 'via', '10.77.1.2');
}

function tokenFile(dir: string): string {
  const f = join(dir, 'token');
  writeFileSync(f, randomBytes(32), { mode: 0o600 });
  chmodSync(f, 0o600);
  return f;
}

function script(dir: string, name: string, body: string): string {
  const f = join(dir, name);
  writeFileSync(f, `#!/bin/sh\nset -e\n${body}\n`, { mode: 0o700 });
  return f;
}

const ckptArgs = (...args: string[]) => ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args];

interface Receiver {
  child: ChildProcess;
  port: Promise<number>;
  stderr: () => string;
}

/** `ckpt migrate --receive` in B, in a PID namespace of its own whose init outlives it (and dies with the test). */
function receiver(args: { dir: string; token: string; script: string }): Receiver {
  const cmd = [process.execPath, ...ckptArgs('migrate', '--receive', '-D', args.dir, '--address', '10.77.2.2', '--port', '0', '--auth-token', args.token, '--action-script', args.script, '-v3')];
  const quoted = cmd.map((c) => `'${c}'`).join(' ');
  const child = spawn('ip', ['netns', 'exec', NS.b, 'unshare', '--pid', '--fork', '--kill-child', '--mount-proc', 'sh', '-c', `${quoted}; echo "receiver exit $?" >&2; exec sleep 100000`], {
    cwd: root, stdio: ['ignore', 'ignore', 'pipe'],
  });
  cleanups.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let err = '';
  child.stderr!.setEncoding('utf8');
  const port = new Promise<number>((res, rej) => {
    child.stderr!.on('data', (d: string) => {
      err += d;
      const m = /listening on [0-9.]+:(\d+)/.exec(err);
      if (m) res(Number(m[1]));
    });
    child.on('exit', () => rej(new Error(`receiver exited: ${err}`)));
  });
  return { child, port, stderr: () => err };
}

function runSource(args: { pid: number; port: number; token: string; script: string }): Promise<{ status: number | null; stdout: string; stderr: string }> {
  // nsenter, not `ip netns exec`: that makes a mount namespace too, and ckpt dumps only processes in its own.
  const child = spawn('nsenter', [`--net=/run/netns/${NS.a}`, process.execPath, ...ckptArgs('migrate', '-t', String(args.pid), '--to', `10.77.2.2:${args.port}`, '--auth-token', args.token, '--action-script', args.script, '--json', '-v3')], { cwd: root });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((res) => child.on('exit', (status) => res({ status, stdout, stderr })));
}

/** The server in A, its client in C; resolves once the client checks lines. */
async function serverAndClient(dir: string): Promise<{ server: Victim; clientLog: string }> {
  const server = startVictim('/usr/bin/nsenter', { args: [`--net=/run/netns/${NS.a}`, join(VICTIM_BIN, 'migrate-server'), SERVICE, String(PORT), '32', '4'] });
  cleanups.push(() => server.cleanup());
  await server.waitFor(/^READY/m, 30_000);
  const clientLog = join(dir, 'client.log');
  const client = startVictim('/usr/bin/nsenter', { args: [`--net=/run/netns/${NS.c}`, 'bash', '-c', `exec ${join(VICTIM_BIN, 'seq-consumer')} ${clientLog} < /dev/tcp/${SERVICE}/${PORT}`] });
  cleanups.push(() => client.cleanup());
  await server.waitFor(/^ACCEPTED/m);
  await passes(clientLog, 2);
  return { server, clientLog };
}

const passLines = (log: string) => (existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('PASS')).length : 0);

async function passes(log: string, n: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (passLines(log) < n) {
    if (Date.now() > deadline) throw new Error(`client: fewer than ${n} PASS lines:\n${existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a TCP server moves from A to B with its address; its client in C sees only a pause; a failed restore in B leaves it running in A', async () => {
  network();
  const dir = cleanups.tempDir('ckpt-migrate-');
  const token = tokenFile(dir);
  const { server, clientLog } = await serverAndClient(dir);

  // First a destination whose restore fails (its pre-restore script does): the source resumes, the client goes on.
  const broken = receiver({ dir: join(dir, 'broken'), token, script: script(dir, 'broken.sh', '[ "$CRTOOLS_SCRIPT_ACTION" = pre-restore ] && exit 3; exit 0') });
  const failed = await runSource({ pid: server.pid, port: await broken.port, token, script: script(dir, 'none.sh', 'exit 0') });
  assert.notEqual(failed.status, 0, failed.stderr);
  assert.match(failed.stderr, /Cannot restore on page server 10\.77\.2\.2:\d+: .*says: Cannot run action script/);
  const afterFailure = passLines(clientLog);
  await passes(clientLog, afterFailure + 3);
  assert.doesNotMatch(readFileSync(clientLog, 'utf8'), /FAIL|EOF/);
  assert.match(server.output(), /ACCEPTED/);

  const recv = receiver({
    dir: join(dir, 'dst'), token,
    script: script(dir, 'dst.sh', `[ "$CRTOOLS_SCRIPT_ACTION" = pre-restore ] || exit 0\nip addr add ${SERVICE}/32 dev b0m${tag}\nip netns exec ${NS.c} ip route replace ${SERVICE}/32 via 10.77.2.2`),
  });
  const port = await recv.port;
  const before = passLines(clientLog);
  const src = await runSource({ pid: server.pid, port, token, script: script(dir, 'src.sh', `[ "$CRTOOLS_SCRIPT_ACTION" = post-dump ] || exit 0\nip addr del ${SERVICE}/32 dev a0m${tag}`) });
  assert.equal(src.status, 0, `source: ${src.stderr}\nreceiver: ${recv.stderr()}`);
  const r = JSON.parse(src.stdout) as { rounds: { pages: number }[]; final: { pages: number; frozenMs: number; dumpMs: number; restoreMs: number }; remotePid: number };
  assert.ok(r.rounds.length >= 1 && r.rounds[0]!.pages >= 32 * 256, JSON.stringify(r.rounds));
  assert.ok(r.final.pages < r.rounds[0]!.pages / 2, `final round ${r.final.pages} pages, first ${r.rounds[0]!.pages}`);
  console.log(`# migrate: rounds ${r.rounds.map((x) => x.pages).join(', ')} pages; final ${r.final.pages} pages, frozen ${Math.round(r.final.frozenMs)} ms (dump ${Math.round(r.final.dumpMs)} ms, restore in B ${Math.round(r.final.restoreMs)} ms)`);
  await waitGone(server.pid);
  assert.match(recv.stderr(), /runs here/);
  // The stream goes on from B: more lines checked, none out of order, no memory failure, no EOF.
  await passes(clientLog, before + 5);
  const log = readFileSync(clientLog, 'utf8');
  assert.doesNotMatch(log, /FAIL|EOF/, log.slice(-2000));
});
