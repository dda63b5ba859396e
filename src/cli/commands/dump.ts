import type { Command } from 'commander';
import { parseNetworkLock, parsePid } from '../args.js';
import { formatBytes, ms, parseVerbosity, Reporter } from '../report.js';
import type { CliCommand } from './types.js';
import { dumpProgress } from '../progress.js';
import { zodForOneShot } from '../zod.js';

interface DumpFlags {
  tree: number;
  imagesDir: string;
  leaveRunning?: boolean;
  shellJob?: boolean;
  logFile?: string;
  verbosity?: number;
  pageChecksums?: boolean;
  extUnixSk?: boolean;
  networkLock?: 'nftables' | 'iptables' | 'skip';
  tcpEstablished?: boolean;
  tcpClose?: boolean;
}

export const dumpCommand: CliCommand = {
  name: 'dump',
  register(program: Command) {
    program
      .command('dump')
      .description('checkpoint the process PID into DIR (the process is killed unless -R)')
      .requiredOption('-t, --tree <pid>', 'process to dump', parsePid)
      .requiredOption('-D, --images-dir <dir>', 'directory for the images (created 0700; must be empty)')
      .option('-R, --leave-running', 'let the process run on after the dump')
      // Accepted for CRIU compatibility: a shell job's terminal is handled at restore.
      .option('--shell-job', 'the process is a job of a shell (accepted; nothing to do at dump)')
      .option('-o, --log-file <file>', 'also write the summary and warnings to FILE')
      .option('-v, --verbosity <n>', 'verbosity 0-4 (0: silent, 2: summary)', parseVerbosity)
      .option('--page-checksums', 'checksum page data too (restore --verify-pages checks it)')
      .option('--ext-unix-sk', 'save unix sockets connected to a named socket outside the dump (restore connects them to that name again)')
      // TCP (CRIU's names): the network lock; established connections are always saved.
      .option('--network-lock <method>', 'hold back packets of the tree\'s TCP ports from the freeze until the restore: nftables (default), iptables, skip', parseNetworkLock)
      .option('--tcp-established', 'save established TCP connections (accepted; always done)')
      .option('--tcp-close', 'save connected TCP sockets as closed (no repair, no lock): they read EOF after restore')
      // Loaded when the command runs: --help and other commands do not pay for it.
      .action(async (f: DumpFlags) => {
        const out = new Reporter({ verbosity: f.verbosity, logFile: f.logFile });
        await zodForOneShot();
        const { dump } = await import('../../api/dump.js');
        const bar = await dumpProgress({ enabled: out.level >= 2 });
        try {
          // A Ctrl-C is answered by a rollback and then ends ckpt: say why first, and give the cursor back.
          const onSignal = (e?: unknown) => {
            bar.stop();
            if (e) out.fatal(e);
          };
          const r = dump(f.tree, { imagesDir: f.imagesDir, leaveRunning: f.leaveRunning, pageChecksums: f.pageChecksums, extUnixSk: f.extUnixSk, networkLock: f.networkLock, tcpClose: f.tcpClose, onProgress: bar.onProgress, onSignal });
          bar.stop();
          for (const w of r.warnings) out.warn(w);
          out.say(`dumped pid ${r.pid}: ${r.pages} pages (${formatBytes(r.bytes)}) in ${ms(r.totalMs)}, frozen ${ms(r.frozenMs)}`);
          if (r.bytesByTarget > 0) out.say(`${formatBytes(r.bytesByTarget)} of the pages written by the dumped processes themselves, alongside ckpt`, 3);
          out.say(`images in ${r.imagesDir}${f.leaveRunning ? `; pid ${r.pid} left running` : ''}`, 3);
          if (r.networkLock) out.say(`${r.networkLock.ports} TCP port(s) stay locked (${r.networkLock.method} ${r.networkLock.name}) until the restore`, 3);
        } catch (e) {
          bar.stop();
          out.error(e);
          throw e;
        }
      });
  },
};
