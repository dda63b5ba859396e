import { mkdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { Option, type Command } from 'commander';
import type { DumpEvent } from '../../api/index.js';
import { parseNetworkLock, parsePid, parseSeconds } from '../args.js';
import { actionScripts } from '../action-script.js';
import { addCriuOptions } from '../criu-options.js';
import { printJson } from '../output.js';
import { formatBytes, ms, Reporter } from '../report.js';
import { progressOf, type ProgressMode } from '../progress.js';
import { printDumpStats } from '../stats.js';
import { inImagesDir, inWorkDir } from '../workdir.js';
import { addRunOptions } from './run-options.js';
import type { CliCommand } from './types.js';
import { addPageServerOptions, pageServerOf, type PageServerFlags } from './page-server-options.js';
import { zodForOneShot } from '../zod.js';

interface DumpFlags extends PageServerFlags {
  tree: number;
  imagesDir: string;
  workDir?: string;
  leaveRunning?: boolean;
  leaveStopped?: boolean;
  shellJob?: boolean;
  logFile?: string;
  verbosity?: number;
  pageChecksums?: boolean;
  /** true, or CRIU's inode argument (which ckpt does not need). */
  extUnixSk?: boolean | string;
  networkLock?: 'nftables' | 'iptables' | 'skip';
  tcpEstablished?: boolean;
  tcpClose?: boolean;
  skipInFlight?: boolean;
  timeout?: number;
  displayStats?: boolean;
  json?: boolean;
  progress?: ProgressMode;
  actionScript?: string[];
  prevImagesDir?: string;
  trackMem?: boolean;
  background?: boolean;
}

function describe(e: DumpEvent): string {
  if (e.phase === 'frozen') return `froze ${e.pids.length} process(es) (${e.pids.join(' ')}) in ${ms(e.ms)}`;
  if (e.phase === 'process') return `saved pid ${e.pid}: ${e.pages} pages (${formatBytes(e.bytes)}), memory in ${ms(e.memoryMs)}; at ${ms(e.ms)}`;
  return `images committed at ${ms(e.ms)}`;
}

export const dumpCommand: CliCommand = {
  name: 'dump',
  register(program: Command) {
    const cmd = program
      .command('dump')
      .description('checkpoint the process PID into DIR (the process is killed unless -R or -s)')
      .requiredOption('-t, --tree <pid>', 'process to dump', parsePid)
      .requiredOption('-D, --images-dir <dir>', 'directory for the images (created 0700; an earlier set there is replaced)')
      .option('-W, --work-dir <dir>', 'directory a relative --log-file is in (default: the images directory)')
      .addOption(new Option('-R, --leave-running', 'let the process run on after the dump').conflicts('leaveStopped'))
      .option('-s, --leave-stopped', 'leave the process stopped (SIGSTOP) after the dump')
      // A shell job's terminal is handled at restore.
      .option('-j, --shell-job', 'the process is a job of a shell (accepted; nothing to do at dump)')
      .option('--timeout <seconds>', 'how long to wait for the tree to stop (default 10)', parseSeconds)
      .option('--pidfile <file>', 'accepted for CRIU compatibility (CRIU writes it on restore only)')
      .option('--page-checksums', 'checksum page data too (restore --verify-pages checks it)')
      .option('-x, --ext-unix-sk [inode]', 'save unix sockets connected to a named socket outside the dump (restore connects them to that name again)')
      // TCP (CRIU's names): the network lock; established connections are always saved.
      .option('--network-lock <method>', 'hold back packets of the tree\'s TCP ports from the freeze until the restore: nftables (default), iptables, skip', parseNetworkLock)
      .option('--tcp-established', 'save established TCP connections (accepted; always done)')
      .option('--tcp-close', 'save connected TCP sockets as closed (no repair, no lock): they read EOF after restore')
      // Incremental dumps (CRIU's names): against a pre-dump, only pages written since are saved.
      .option('--prev-images-dir <dir>', 'dump against the pre-dump in DIR (relative to the images directory): only pages written since are saved')
      .option('--track-mem', 'with -R: leave memory tracking armed, so that a later dump can be made against this one')
      .option('--background', 'with -R: freeze only to collect all but page contents and write-protect memory; copy the pages while the process runs on (a write to a page not yet copied waits for it)')
      .option('--skip-in-flight', 'leave out connections still waiting in a listener\'s accept queue (the dump warns) instead of failing')
      // Loaded when the command runs: --help and other commands do not pay for it.
      .action(async (f: DumpFlags) => {
        const logFile = f.logFile === undefined ? undefined : inWorkDir(f, f.logFile);
        // CRIU's default: the log is in the images directory, which must then exist first.
        if (logFile && inImagesDir(f, logFile)) mkdirSync(f.imagesDir, { recursive: true, mode: 0o700 });
        const out = new Reporter({ verbosity: f.verbosity, logFile });
        await zodForOneShot();
        const { dump, imagesTarget, replaceImages } = await import('../../api/dump.js');
        const target = imagesTarget(f.imagesDir);
        const scripts = actionScripts(f.actionScript ?? [], { imagesDir: target.writeTo, say: (l) => out.say(l, 3) });
        const bar = await progressOf({ mode: f.progress, what: 'dump', verbosity: out.level });
        let replaced = false;
        const swap = () => {
          if (replaced) return;
          replaced = true;
          const w = replaceImages(f.imagesDir, target);
          if (w) out.warn(w);
          if (target.replaces && logFile && inImagesDir(f, logFile)) out.reopen();
        };
        try {
          scripts.run('pre-dump');
          // A Ctrl-C is answered by a rollback and then ends ckpt: say why first, and give the cursor back.
          const onSignal = (e?: unknown) => {
            bar.stop();
            if (e) out.fatal(e);
            else swap(); // the dump finished: its set goes in place before the signal ends ckpt
          };
          const onEvent = (e: DumpEvent) => {
            out.say(describe(e), 3);
            if (e.phase === 'written') scripts.run('post-dump', { initPid: f.tree });
          };
          const r = dump(f.tree, {
            imagesDir: target.writeTo, leaveRunning: f.leaveRunning, leaveStopped: f.leaveStopped, pageChecksums: f.pageChecksums,
            timeoutMs: f.timeout === undefined ? undefined : f.timeout * 1000, onProgress: bar.onProgress, onSignal, onEvent,
            extUnixSk: f.extUnixSk !== undefined, networkLock: f.networkLock, tcpClose: f.tcpClose,
            // Relative to DIR, which the set may be written beside first (imagesTarget).
            parent: f.prevImagesDir === undefined ? undefined : path.resolve(f.imagesDir, f.prevImagesDir), trackMem: f.trackMem,
            skipInFlight: f.skipInFlight, background: f.background, pageServer: pageServerOf(f),
          });
          bar.stop();
          swap();
          for (const w of r.warnings) out.warn(w);
          out.say(`dumped pid ${r.pid}: ${r.pages} pages (${formatBytes(r.bytes)}) in ${ms(r.totalMs)}, frozen ${ms(r.frozenMs)}`);
          if (r.background) out.say(`copied in the background in ${ms(r.background.copyMs)}; ${r.background.faults} write(s) waited for their page`, 3);
          if (r.inParent) out.say(`${r.inParent} unchanged pages left in the parent images ${f.prevImagesDir}`, 3);
          const left = f.leaveStopped ? `; pid ${r.pid} left stopped` : f.leaveRunning ? `; pid ${r.pid} left running` : '';
          out.say(`images in ${f.imagesDir}${left}`, 3);
          if (f.displayStats) printDumpStats(r);
          if (f.json) printJson({ ...r, imagesDir: f.imagesDir });
          if (r.networkLock) out.say(`${r.networkLock.ports} TCP port(s) stay locked (${r.networkLock.method} ${r.networkLock.name}) until the restore`, 3);
        } catch (e) {
          bar.stop();
          // A set completed in the new directory (a failing post-dump script) is not left beside DIR.
          if (target.replaces && !replaced) rmSync(target.writeTo, { recursive: true, force: true });
          out.error(e);
          throw e;
        }
      });
    addPageServerOptions(cmd);
    addRunOptions(cmd, { command: 'dump', scripts: 'pre-dump and post-dump' });
    addCriuOptions(cmd, 'dump');
  },
};
