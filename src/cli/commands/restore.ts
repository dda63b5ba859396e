import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { parsePort } from '../args.js';
import type { RestoreEvent } from '../../api/index.js';
import { CkptError } from '../../common/errors.js';
import { collect, parseNetworkLock } from '../args.js';
import { actionScripts } from '../action-script.js';
import { addCriuOptions } from '../criu-options.js';
import { printJson } from '../output.js';
import { formatBytes, ms, Reporter } from '../report.js';
import { progressOf, type ProgressMode } from '../progress.js';
import { printRestoreStats } from '../stats.js';
import { inWorkDir } from '../workdir.js';
import { addRunOptions } from './run-options.js';
import type { CliCommand } from './types.js';
import { zodForOneShot } from '../zod.js';

interface RestoreFlags {
  imagesDir: string;
  workDir?: string;
  restoreDetached?: boolean;
  leaveStopped?: boolean;
  pidfile?: string;
  shellJob?: boolean;
  inheritFd?: string[];
  verifyPages?: boolean;
  check?: boolean;
  trustImages?: boolean;
  logFile?: string;
  verbosity?: number;
  networkLock?: 'nftables' | 'iptables' | 'skip';
  tcpEstablished?: boolean;
  tcpClose?: boolean;
  manageCgroups?: string | boolean;
  extUnixSk?: boolean | string;
  displayStats?: boolean;
  json?: boolean;
  progress?: ProgressMode;
  actionScript?: string[];
  lazyPages?: boolean;
  lazyPrefetch?: boolean;
  pageServer?: boolean;
  address?: string;
  port?: number;
  authToken?: string;
}

function describe(e: RestoreEvent): string {
  if (e.phase === 'read') return `read the images of ${e.pids.length} process(es) (${e.pids.join(' ')}), ${e.pages} pages (${formatBytes(e.bytes)}), in ${ms(e.ms)}`;
  if (e.phase === 'memory') return `rebuilding the memory of pid ${e.pid}; at ${ms(e.ms)}`;
  if (e.phase === 'process') return `rebuilt pid ${e.pid}; at ${ms(e.ms)}`;
  if (e.phase === 'built') return `every process built, registers loaded; at ${ms(e.ms)}`;
  if (e.phase === 'let-go') return `the tree is let go; at ${ms(e.ms)}`;
  return `running; at ${ms(e.ms)}`;
}

/** --page-server --address --port --auth-token: where the images are, or undefined; a half-given one is a usage error. */
function pageSourceOf(f: RestoreFlags): { address: string; port: number; authToken: string } | undefined {
  if (!f.pageServer) {
    if (f.address !== undefined || f.port !== undefined) throw new CkptError('USAGE', 'Cannot use --address or --port without --page-server');
    return undefined;
  }
  const missing = [f.address === undefined && '--address', f.port === undefined && '--port', f.authToken === undefined && '--auth-token'].filter(Boolean);
  if (missing.length > 0) throw new CkptError('USAGE', `Cannot restore from a page server: ${missing.join(', ')} missing`);
  return { address: f.address!, port: f.port!, authToken: f.authToken! };
}

export const restoreCommand: CliCommand = {
  name: 'restore',
  register(program: Command) {
    const cmd = program
      .command('restore')
      .description('restore the process saved in DIR; wait for it and exit with its status unless -d')
      .requiredOption('-D, --images-dir <dir>', 'directory with the images')
      .option('-W, --work-dir <dir>', 'directory a relative --log-file and --pidfile are in (default: the images directory)')
      .option('-d, --restore-detached', 'exit as soon as the process runs (it is reparented to init)')
      .option('-s, --leave-stopped', 'leave the restored processes stopped (SIGSTOP) instead of resuming them')
      .option('--pidfile <file>', 'write the PID of the restored process to FILE (relative to the work directory)')
      .option('-j, --shell-job', 'the process was a job of a shell: attach it to our terminal')
      .option('--inherit-fd <fd[N]:resource>', 'give our fd N to the fds the dump recorded as RESOURCE (pipe:[ino], socket:[ino], a path); repeatable', collect)
      .option('--verify-pages', 'check the page checksums before restoring (dump --page-checksums)')
      .option('--check', 'before the process runs, read it back and compare it with the images; fail on any difference')
      .option('-x, --ext-unix-sk [inode]', 'connect unix sockets the dump saved with --ext-unix-sk to their outside peer\'s name again')
      // TCP (CRIU's names): lifting the dump's network lock.
      .option('--network-lock <method>', 'lift the network lock the dump left once every socket is back (skip: leave it)', parseNetworkLock)
      .option('--tcp-established', 'restore established TCP connections (accepted; always done)')
      .option('--tcp-close', 'restore established TCP connections closed: they read EOF, writes fail with EPIPE')
      .option('--lazy-pages', 'run the processes before their memory is in: a lazy-pages process copies their pages in on fault and in the background (log: DIR/lazy-pages.log)')
      .option('--no-lazy-prefetch', 'with --lazy-pages: copy pages in only on fault, none in the background')
      .option('--page-server', 'take the images from `ckpt page-server --lazy-pages` at --address:--port: DIR (new or empty) gets their metadata, the pages come as they are needed (with --lazy-pages: on fault and in the background)')
      .option('--address <addr>', 'with --page-server: its IP address')
      .option('--port <port>', 'with --page-server: its port', parsePort)
      .option('--auth-token <file>', 'with --page-server: the token file it was started with (0600, both sides)')
      .option('--trust-images', 'restore images another user owns as if they were ours (docs/security.md)')
      .action(async (f: RestoreFlags) => {
        // Said plainly before a log file is opened in it.
        const pageServer = pageSourceOf(f);
        if (!pageServer && !existsSync(f.imagesDir)) throw new CkptError('USAGE', `Cannot read images in ${f.imagesDir}: the directory does not exist`);
        const out = new Reporter({ verbosity: f.verbosity, logFile: f.logFile === undefined ? undefined : inWorkDir(f, f.logFile) });
        await zodForOneShot();
        // Loaded when the command runs: --help and other commands do not pay for it.
        const { restore, waitForExit, lazyPagesCommand } = await import('../../api/restore.js');
        const scripts = actionScripts(f.actionScript ?? [], { imagesDir: f.imagesDir, say: (l) => out.say(l, 3) });
        const bar = await progressOf({ mode: f.progress, what: 'restore', verbosity: out.level });
        let pid: number;
        let handBack: (() => void) | undefined;
        try {
          scripts.run('pre-restore');
          const onSignal = (e?: unknown) => {
            bar.stop();
            if (e) out.fatal(e); // said before the signal ends ckpt
          };
          let root = 0;
          const onEvent = (e: RestoreEvent) => {
            out.say(describe(e), 3);
            if (e.phase === 'read') root = e.pids[0] ?? 0;
            if (e.phase === 'built') {
              scripts.run('post-restore', { initPid: root });
              scripts.run('pre-resume', { initPid: root });
            }
          };
          const r = restore({
            imagesDir: f.imagesDir, shellJob: f.shellJob, inheritFd: f.inheritFd, pidfile: f.pidfile === undefined ? undefined : inWorkDir(f, f.pidfile),
            verifyPages: f.verifyPages, check: f.check, trustImages: f.trustImages, leaveStopped: f.leaveStopped, onProgress: bar.onProgress, onSignal, onEvent,
            extUnixSk: f.extUnixSk !== undefined, networkLock: f.networkLock, tcpClose: f.tcpClose,
            manageCgroups: f.manageCgroups === 'ignore' ? 'ignore' : 'soft',
            lazyPages: f.lazyPages, lazyPagesCommand: f.lazyPages ? lazyPagesCommand(process.argv[1]!) : undefined, lazyPrefetch: f.lazyPrefetch, pageServer,
          });
          bar.stop();
          pid = r.pid;
          handBack = r.terminal ? () => r.terminal!.handBack() : undefined;
          for (const w of r.warnings) out.warn(w);
          // Quiet by default: without -d the restored program's own output is what matters.
          out.say(`restored pid ${r.pid}: ${r.pages} pages (${formatBytes(r.bytes)}) in ${ms(r.totalMs)}`, 3);
          if (f.displayStats) printRestoreStats(r);
          if (f.json) printJson(r);
          scripts.run('post-resume', { initPid: r.pid });
        } catch (e) {
          bar.stop();
          out.error(e);
          throw e;
        }
        if (f.restoreDetached) return;
        // The restored process is our child (CLONE_PARENT): its status is ours, like a shell's.
        const st = await waitForExit(pid);
        // As a shell does: the terminal comes back to us, with our settings.
        handBack?.();
        if (st.signal !== undefined) {
          out.say(`pid ${pid} was killed by signal ${st.signal}`, 3);
          process.exitCode = 128 + st.signal;
        } else {
          out.say(`pid ${pid} exited with status ${st.code ?? 0}`, 3);
          process.exitCode = st.code ?? 0;
        }
      });
    addRunOptions(cmd, { command: 'restore', scripts: 'pre-restore, post-restore, pre-resume and post-resume' });
    addCriuOptions(cmd, 'restore');
  },
};
