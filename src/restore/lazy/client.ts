/**
 * The restore's side of a lazy restore: starts the lazy-pages server and its guard
 * (server.ts, guard.ts) as processes of their own that outlive ckpt, registers each
 * lazily restored process's userfaultfd and queues it for both (never waiting for them:
 * their start-up is off the restore's path), and lets the server prefetch once the tree
 * runs.
 */
import { closeSync, constants, openSync, readSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lazyChildProcess } from '../../common/builtin.js';
import { CkptError } from '../../common/errors.js';
import { closeFd, isErrno, kill, pollIn, SIG, SOCK, socketpair, UFFD_LAZY_FEATURES, uffdRegister } from '../../sys/index.js';
import { uffdioApi } from '../../sys/ioctl.js';
import { grabFd } from '../../resources/transfer.js';
import type { LazyPages } from '../../resources/types.js';
import type { ImageReader, PageSourceAddress, RemotePages } from '../../images/index.js';
import { withDescendants } from './children.js';
import { LazyServer } from './engine.js';
import { AddRequest, channel, sendLine } from './protocol.js';

const O_CLOEXEC = 0o2000000;
/** A server started through tsx takes a while to load (seconds under load); the tree runs meanwhile. */
const ANSWER_MS = 60_000;

export interface LazyPagesOptions {
  imagesDir: string;
  /** The restore's reader of the same images (ckpt serves faults from it until the server is up). */
  images: ImageReader;
  /** argv that runs `lazy-pages` (the role and its argument are appended). Default: this module's entry script. */
  command?: readonly string[];
  /** Log file of the server and the guard (appended to). */
  log: string;
  /** The page files are on a page server: ckpt fetches through `pages` (the restore's), the server with a connection of its own. */
  remote?: { at: PageSourceAddress; pages: RemotePages };
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
  /** ckpt's end of the peer's socket (its fd 0). */
  sock: number;
}

export class LazyPagesClient implements LazyPages {
  readonly server: Peer;
  readonly guard: Peer;
  readonly log: string;
  /** ckpt's own server: it serves the faults from the let-go until the server takes over. */
  private readonly engine: LazyServer;
  private readonly logFd: number;
  private readonly pids: number[] = [];
  private closed = false;

  private constructor(args: { server: Peer; guard: Peer; log: string; logFd: number; images: ImageReader; remote?: RemotePages }) {
    this.server = args.server;
    this.guard = args.guard;
    this.log = args.log;
    this.logFd = args.logFd;
    const log = (line: string) => {
      try {
        writeSync(this.logFd, `${new Date().toISOString()} lazy-pages restore ${process.pid}: ${line}\n`);
      } catch {
        // no log: nothing more to do
      }
    };
    this.engine = new LazyServer(args.images, { log, remote: args.remote });
  }

  /** Starts both processes; ckpt never waits for them to be up (lines and fds queue in their sockets). */
  static start(opts: LazyPagesOptions): LazyPagesClient {
    const cmd = opts.command ?? defaultCommand();
    // Never through a symlink: the images directory may be another user's.
    const logFd = openSync(opts.log, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW | O_CLOEXEC, 0o600);
    // Server to guard: "done", and the userfaultfds of processes forked after the restore.
    const [toGuard, fromServer] = socketpair(SOCK.STREAM);
    let server: Peer | undefined;
    try {
      // The page server's address and which local page files it backs (the server opens its own connection).
      const remote = opts.remote ? [JSON.stringify({ ...opts.remote.at, files: opts.remote.pages.backed })] : [];
      server = startPeer(cmd, { args: ['serve', opts.imagesDir, ...remote], logFd, fd3: toGuard });
      const guard = startPeer(cmd, { args: ['guard', String(server.pid)], logFd, fd3: fromServer });
      return new LazyPagesClient({ server, guard, log: opts.log, logFd, images: opts.images, remote: opts.remote?.pages });
    } catch (e) {
      closeSync(logFd);
      if (server) {
        closeFd(server.sock);
        kill(server.pid, SIG.SIGKILL);
      }
      throw e;
    } finally {
      for (const fd of [toGuard, fromServer]) closeSync(fd);
    }
  }

  /**
   * Takes the process's userfaultfd, registers its lazy areas (MISSING, with the events
   * the server follows), and queues it for the guard and the server. From here on a
   * touch of a lazy page waits for ckpt (after the let-go) or the server.
   */
  serve(args: { pid: number; uffd: number; areas: readonly { start: bigint; end: bigint }[] }): void {
    const mine = grabFd(args.pid, args.uffd);
    const line = { op: 'add', pid: args.pid, pages: args.pid, areas: args.areas.map((a) => [`0x${a.start.toString(16)}`, `0x${a.end.toString(16)}`]) };
    try {
      const got = uffdioApi(mine, UFFD_LAZY_FEATURES).features;
      if ((got & UFFD_LAZY_FEATURES) !== UFFD_LAZY_FEATURES) {
        throw new CkptError('UNSUPPORTED', `Cannot restore process ${args.pid} lazily: userfaultfd lacks the fork/remap/remove/unmap events`);
      }
      for (const a of args.areas) uffdRegister(mine, { start: a.start, len: a.end - a.start });
      this.engine.add(AddRequest.parse({ ...line, nfds: 1 }), mine);
    } catch (e) {
      closeFd(mine);
      throw e;
    }
    this.pids.push(args.pid);
    // The guard first: it must hold every userfaultfd the server may lose.
    send(this.guard, { who: 'guard', line, fds: [mine] });
    send(this.server, { who: 'server', line, fds: [mine] });
  }

  /**
   * The tree runs. ckpt serves its faults (and follows its events) until the server is
   * up, then hands over what is left; the server copies the rest (with `prefetch`). If
   * the server or the guard ended or refused first, the processes are killed (they
   * must not run on with pages missing).
   */
  go(opts: { prefetch: boolean }): void {
    try {
      const letGoNs = String(process.hrtime.bigint());
      send(this.guard, { who: 'guard', line: { op: 'go', prefetch: opts.prefetch, letGoNs } });
      send(this.server, { who: 'server', line: { op: 'go', prefetch: opts.prefetch, letGoNs } });
      this.engine.go(false);
      this.engine.onFork = (uffd) => send(this.guard, { who: 'guard', line: { op: 'fork' }, fds: [uffd] });
      this.engine.onPid = (pid) => send(this.guard, { who: 'guard', line: { op: 'pid', pid } });
      const deadline = Date.now() + ANSWER_MS;
      const answers = { guard: '', server: '' };
      for (;;) {
        const left = deadline - Date.now();
        const uffds = answers.server === '' ? this.engine.uffds : [];
        if (left <= 0) throw new CkptError('TIMEOUT', `Cannot restore lazily: the lazy-pages ${answers.guard ? 'server' : 'guard'} did not answer`);
        const wait = answers.server === '' ? this.engine.timeout : -1;
        const rev = pollIn([this.guard.sock, this.server.sock, ...uffds], wait < 0 ? left : Math.min(wait, left));
        for (const [i, who, peer] of [[0, 'guard', this.guard], [1, 'server', this.server]] as const) {
          if (!rev[i] || answers[who]) continue;
          answers[who] = readAnswer(peer, who);
          if (answers[who] !== 'ready') throw new CkptError('SYSCALL', `Cannot restore lazily: the lazy-pages ${who} (pid ${peer.pid}) says: ${answers[who].replace(/^error /, '')}`);
          if (who === 'server') {
            const { state, fds } = this.engine.state();
            send(this.server, { who: 'server', line: { op: 'handover', ...state }, fds });
          }
        }
        if (answers.guard && answers.server) break;
        if (answers.server !== '') continue;
        rev.slice(2).forEach((r, i) => {
          if (r) this.engine.drain(i);
        });
        this.engine.work();
      }
    } catch (e) {
      const pids = withDescendants([...new Set([...this.pids, ...this.engine.pids])]);
      for (const pid of pids) killQuietly(pid);
      this.stop();
      if (e instanceof Error) e.message += `: killed process${pids.length === 1 ? '' : 'es'} ${pids.join(', ')}`;
      throw e;
    }
    this.close();
  }

  /** The restore failed: both end (the restore kills what it built). */
  stop(): void {
    this.close();
    for (const p of [this.guard, this.server]) killQuietly(p.pid);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of [this.guard, this.server]) closeFd(p.sock);
    this.engine.close();
    closeSync(this.logFd);
  }
}

/** sendLine to a peer; one that ended (EPIPE) is said so. */
function send(peer: Peer, args: { who: string; line: object; fds?: readonly number[] }): void {
  try {
    sendLine(peer.sock, args);
  } catch (e) {
    if (!isErrno(e, 'EPIPE') && !isErrno(e, 'ECONNRESET')) throw e;
    throw new CkptError('SYSCALL', `Cannot restore lazily: the lazy-pages ${args.who} (pid ${peer.pid}) ended before it held every userfaultfd; see its log`);
  }
}

function killQuietly(pid: number): void {
  try {
    kill(pid, SIG.SIGKILL);
  } catch {
    // gone already
  }
}

function startPeer(cmd: readonly string[], opts: { args: string[]; logFd: number; fd3: number }): Peer {
  const [mine, theirs] = channel();
  try {
    // Its own session: a terminal's ^C or hangup for ckpt is not for it.
    const child = lazyChildProcess().spawn(cmd[0]!, [...cmd.slice(1), ...opts.args], { stdio: [theirs, opts.logFd, opts.logFd, opts.fd3], detached: true });
    child.unref();
    child.on('error', () => {});
    if (!child.pid) throw new CkptError('INTERNAL', `Cannot start the lazy-pages ${opts.args[0]}: spawn ${cmd[0]} failed`);
    return { pid: child.pid, sock: mine };
  } catch (e) {
    closeFd(mine);
    throw e;
  } finally {
    closeFd(theirs);
  }
}

function readAnswer(peer: Peer, who: string): string {
  let line = '';
  const buf = Buffer.alloc(4096);
  const deadline = Date.now() + ANSWER_MS;
  while (!line.includes('\n')) {
    const left = deadline - Date.now();
    if (left <= 0 || pollIn([peer.sock], left)[0] === 0) throw new CkptError('TIMEOUT', `Cannot restore lazily: the lazy-pages ${who} (pid ${peer.pid}) did not answer`);
    const n = readSync(peer.sock, buf, 0, buf.length, null);
    if (n === 0) throw new CkptError('SYSCALL', `Cannot restore lazily: the lazy-pages ${who} (pid ${peer.pid}) ended before it held every userfaultfd; see its log`);
    line += buf.subarray(0, n).toString('utf8');
  }
  return line.slice(0, line.indexOf('\n'));
}
