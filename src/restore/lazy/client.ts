/**
 * The restore's side of a lazy restore: starts the lazy-pages server and its guard
 * (server.ts, guard.ts) as processes of their own that outlive ckpt, hands each
 * lazily restored process's userfaultfd to both, and lets the server prefetch once
 * the tree runs.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CkptError } from '../../common/errors.js';
import { closeFd, getpid, kill, pipe2, pollIn, SIG } from '../../sys/index.js';
import { grabFd } from '../../resources/transfer.js';
import type { LazyPages } from '../../resources/types.js';

const O_CLOEXEC = 0o2000000;
/** A server started through tsx takes a while to load; a healthy one answers in milliseconds after. */
const ANSWER_MS = 60_000;

export interface LazyPagesOptions {
  imagesDir: string;
  /** argv that runs `lazy-pages` (the role and its argument are appended). Default: this module's entry script. */
  command?: readonly string[];
  /** Log file of the server and the guard (appended to). */
  log: string;
}

/** Node flags that load a TypeScript loader (tsx) must be passed on to run entry.ts. */
function loaderFlags(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (/^--(import|require|loader|experimental-loader)=/.test(a)) out.push(a);
    else if (/^(--import|--require|--loader|--experimental-loader|-r)$/.test(a) && i + 1 < argv.length) out.push(a, argv[++i]!);
  }
  return out;
}

declare const __filename: string | undefined;

/** argv that runs `SCRIPT lazy-pages` with this Node and its loader flags (ckpt's CLI passes its own script). */
export function lazyPagesCommand(script: string): string[] {
  return [process.execPath, ...loaderFlags(process.execArgv), script, 'lazy-pages'];
}

export function defaultCommand(): string[] {
  const url = import.meta.url as string | undefined;
  // In the CLI's CommonJS bundle (scripts/bundle.mjs): the bundle itself has the command.
  if (url === undefined) return [process.execPath, __filename ?? process.argv[1]!, 'lazy-pages'];
  const self = fileURLToPath(url);
  const entry = self.replace(/client\.(ts|js)$/, 'entry.$1');
  return [process.execPath, ...loaderFlags(process.execArgv), entry];
}

interface Peer {
  pid: number;
  cmd: number;
  ack: number;
}

export class LazyPagesClient implements LazyPages {
  readonly server: Peer;
  readonly guard: Peer;
  readonly log: string;
  private closed = false;

  private constructor(server: Peer, guard: Peer, log: string) {
    this.server = server;
    this.guard = guard;
    this.log = log;
  }

  /** Starts both processes; they wait for requests. */
  static start(opts: LazyPagesOptions): LazyPagesClient {
    const cmd = opts.command ?? defaultCommand();
    // Never through a symlink: the images directory may be another user's.
    const logFd = openSync(opts.log, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | O_CLOEXEC, 0o600);
    const [doneR, doneW] = pipe2(O_CLOEXEC);
    let server: Peer | undefined;
    try {
      server = startPeer(cmd, { args: ['serve', opts.imagesDir], logFd, fd3: doneW });
      const guard = startPeer(cmd, { args: ['guard', String(server.pid)], logFd, fd3: doneR });
      return new LazyPagesClient(server, guard, opts.log);
    } catch (e) {
      if (server) {
        closeFd(server.cmd);
        closeFd(server.ack);
        kill(server.pid, SIG.SIGKILL);
      }
      throw e;
    } finally {
      for (const fd of [logFd, doneR, doneW]) closeSync(fd);
    }
  }

  serve(args: { pid: number; uffd: number; areas: readonly { start: bigint; end: bigint }[] }): void {
    const mine = grabFd(args.pid, args.uffd);
    try {
      const req = JSON.stringify({
        op: 'add',
        pid: args.pid,
        from: getpid(),
        fd: mine,
        pages: args.pid,
        areas: args.areas.map((a) => [`0x${a.start.toString(16)}`, `0x${a.end.toString(16)}`]),
      });
      // The guard first: from the server's first answer on, faults are served.
      for (const [who, peer] of [['guard', this.guard], ['server', this.server]] as const) {
        writeSync(peer.cmd, `${req}\n`);
        const answer = readAnswer(peer, who);
        if (answer !== 'ok') throw new CkptError('SYSCALL', `Cannot restore process ${args.pid} lazily: the lazy-pages ${who} says: ${answer.replace(/^error /, '')}`);
      }
    } finally {
      closeFd(mine);
    }
  }

  /** The tree runs: the server copies the rest (with `prefetch`) and both go on without ckpt. */
  go(opts: { prefetch: boolean }): void {
    for (const p of [this.guard, this.server]) writeSync(p.cmd, `${JSON.stringify({ op: 'go', prefetch: opts.prefetch })}\n`);
    this.close();
  }

  /** The restore failed: both end (the restore kills what it built). */
  stop(): void {
    this.close();
    for (const p of [this.guard, this.server]) {
      try {
        kill(p.pid, SIG.SIGKILL);
      } catch {
        // gone already
      }
    }
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of [this.guard, this.server]) {
      closeFd(p.cmd);
      closeFd(p.ack);
    }
  }
}

function startPeer(cmd: readonly string[], opts: { args: string[]; logFd: number; fd3: number }): Peer {
  const [cmdR, cmdW] = pipe2(O_CLOEXEC);
  const [ackR, ackW] = pipe2(O_CLOEXEC);
  try {
    // Its own session: a terminal's ^C or hangup for ckpt is not for it.
    const child = spawn(cmd[0]!, [...cmd.slice(1), ...opts.args], { stdio: [cmdR, ackW, opts.logFd, opts.fd3], detached: true });
    child.unref();
    child.on('error', () => {});
    if (!child.pid) throw new CkptError('INTERNAL', `Cannot start the lazy-pages ${opts.args[0]}: spawn ${cmd[0]} failed`);
    return { pid: child.pid, cmd: cmdW, ack: ackR };
  } catch (e) {
    closeFd(cmdW);
    closeFd(ackR);
    throw e;
  } finally {
    closeFd(cmdR);
    closeFd(ackW);
  }
}

function readAnswer(peer: Peer, who: string): string {
  let line = '';
  const buf = Buffer.alloc(4096);
  const deadline = Date.now() + ANSWER_MS;
  while (!line.includes('\n')) {
    const left = deadline - Date.now();
    if (left <= 0 || pollIn([peer.ack], left)[0] === 0) throw new CkptError('TIMEOUT', `Cannot restore lazily: the lazy-pages ${who} (pid ${peer.pid}) did not answer`);
    const n = readSync(peer.ack, buf, 0, buf.length, null);
    if (n === 0) throw new CkptError('SYSCALL', `Cannot restore lazily: the lazy-pages ${who} (pid ${peer.pid}) ended; see its log`);
    line += buf.subarray(0, n).toString('utf8');
  }
  return line.slice(0, line.indexOf('\n'));
}
