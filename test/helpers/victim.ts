/**
 * Starting and watching test victims. Victims run detached from Node (double fork
 * through sh), so Node's child reaping never steals a ptrace stop from us; output
 * goes to a log file the test reads. The test process becomes a child subreaper, so
 * victims are reparented to it and their PIDs are freed as soon as we reap them
 * (init on these machines reaps lazily, up to ~2 s).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setChildSubreaper, wait4, WAIT, kill as sysKill } from '../../src/sys/index.js';

export const VICTIM_BIN = new URL('../victims/bin/', import.meta.url).pathname;

let subreaper = false;
function ensureSubreaper(): void {
  if (!subreaper) setChildSubreaper(true);
  subreaper = true;
}

export interface Victim {
  pid: number;
  dir: string;
  log: string;
  output(): string;
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  alive(): boolean;
  /** SIGKILL and reap (if it is our child by reparenting). */
  kill(): Promise<void>;
  cleanup(): Promise<void>;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function reapIfChild(pid: number): void {
  try {
    wait4(pid, WAIT.NOHANG | WAIT.ALL);
  } catch {
    // not our child (ECHILD): init will reap it
  }
}

export async function waitGone(pid: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (existsSync(`/proc/${pid}`)) {
    reapIfChild(pid);
    if (!existsSync(`/proc/${pid}`)) return;
    if (Date.now() > deadline) throw new Error(`pid ${pid} still exists after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function wrapPid(pid: number, dir: string, log: string): Victim {
  const v: Victim = {
    pid,
    dir,
    log,
    output: () => (existsSync(log) ? readFileSync(log, 'utf8') : ''),
    async waitFor(pattern, timeoutMs = 10000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = v.output().match(pattern);
        if (m) return m;
        if (Date.now() > deadline) throw new Error(`victim ${pid}: no ${pattern} within ${timeoutMs} ms; output:\n${v.output()}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    alive: () => {
      reapIfChild(pid);
      if (!existsSync(`/proc/${pid}/stat`)) return false;
      const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return st.slice(st.lastIndexOf(')') + 2)[0] !== 'Z';
    },
    async kill() {
      try {
        sysKill(pid, 9);
      } catch {
        // already gone
      }
      await waitGone(pid);
    },
    async cleanup() {
      await v.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return v;
}

/** Starts test/victims/bin/NAME (or an absolute path) with args, detached; returns once it has a PID. */
export function startVictim(name: string, opts: { args?: string[]; cwd?: string; env?: Record<string, string> } = {}): Victim {
  ensureSubreaper();
  const bin = name.startsWith('/') ? name : join(VICTIM_BIN, name);
  const dir = mkdtempSync(join(tmpdir(), 'ckpt-victim-'));
  const log = join(dir, 'out.log');
  const cmd = [bin, ...(opts.args ?? [])].map(shellQuote).join(' ');
  // Test runners leak fds (e.g. tsx's IPC pipe) into children: victims start with 0-2 only.
  const closeFds = 'for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done 2>/dev/null;';
  const r = spawnSync('bash', ['-c', `${closeFds} ${cmd} >${shellQuote(log)} 2>&1 </dev/null & echo $!`], {
    cwd: opts.cwd ?? dir,
    env: { ...process.env, ...opts.env },
    encoding: 'utf8',
  });
  const pid = Number(r.stdout.trim());
  if (!pid) throw new Error(`cannot start victim ${name}: ${r.stderr}`);
  return wrapPid(pid, dir, log);
}

/**
 * Kills every process running test/victims/bin/NAME: trees restored by a test can
 * leave members the test never learned the PIDs of (workers, a stopped child).
 */
export function killAll(name: string): void {
  const exe = join(VICTIM_BIN, name);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/exe`) === exe) sysKill(Number(entry), 9);
    } catch {
      // gone, or not ours to read
    }
  }
}

/** SIGKILL to each pid that still exists (processes a test learned of, restored or forked). */
export function killQuietly(pids: Iterable<number>): void {
  for (const p of pids) {
    try {
      sysKill(p, 9);
    } catch {
      // gone
    }
  }
}
