import type { Command } from 'commander';
import { parseNetworkLock } from '../args.js';
import { ms, parseVerbosity, Reporter } from '../report.js';
import type { CliCommand } from './types.js';
import { zodForOneShot } from '../zod.js';

interface RestoreFlags {
  imagesDir: string;
  restoreDetached?: boolean;
  pidfile?: string;
  shellJob?: boolean;
  inheritFd?: string[];
  verifyPages?: boolean;
  check?: boolean;
  trustImages?: boolean;
  extUnixSk?: boolean;
  logFile?: string;
  verbosity?: number;
  networkLock?: 'nftables' | 'iptables' | 'skip';
  tcpEstablished?: boolean;
  tcpClose?: boolean;
}

export const restoreCommand: CliCommand = {
  name: 'restore',
  register(program: Command) {
    program
      .command('restore')
      .description('restore the process saved in DIR; wait for it and exit with its status unless -d')
      .requiredOption('-D, --images-dir <dir>', 'directory with the images')
      .option('-d, --restore-detached', 'exit as soon as the process runs (it is reparented to init)')
      .option('--pidfile <file>', 'write the PID of the restored process to FILE')
      .option('--shell-job', 'the process was a job of a shell: attach it to our terminal')
      .option('--inherit-fd <fd[N]:resource>', 'give our fd N to the fds the dump recorded as RESOURCE (pipe:[ino], socket:[ino], a path); repeatable', (v: string, all: string[] = []) => [...all, v])
      .option('--verify-pages', 'check the page checksums before restoring (dump --page-checksums)')
      .option('--check', 'before the process runs, read it back and compare it with the images; fail on any difference')
      .option('--ext-unix-sk', 'connect unix sockets the dump saved with --ext-unix-sk to their outside peer\'s name again')
      // TCP (CRIU's names): lifting the dump's network lock.
      .option('--network-lock <method>', 'lift the network lock the dump left once every socket is back (skip: leave it)', parseNetworkLock)
      .option('--tcp-established', 'restore established TCP connections (accepted; always done)')
      .option('--tcp-close', 'restore established TCP connections closed: they read EOF, writes fail with EPIPE')
      .option('--trust-images', 'restore images another user owns as if they were ours (docs/security.md)')
      .option('-o, --log-file <file>', 'also write messages to FILE')
      .option('-v, --verbosity <n>', 'verbosity 0-4 (3: say the restored pid)', parseVerbosity)
      .action(async (f: RestoreFlags) => {
        const out = new Reporter({ verbosity: f.verbosity, logFile: f.logFile });
        await zodForOneShot();
        // Loaded when the command runs: --help and other commands do not pay for it.
        const { restore, waitForExit } = await import('../../api/restore.js');
        let pid: number;
        let handBack: (() => void) | undefined;
        try {
          const onSignal = (e?: unknown) => {
            if (e) out.fatal(e); // said before the signal ends ckpt
          };
          const r = restore({
            imagesDir: f.imagesDir, shellJob: f.shellJob, inheritFd: f.inheritFd, pidfile: f.pidfile, verifyPages: f.verifyPages, check: f.check, trustImages: f.trustImages, extUnixSk: f.extUnixSk,
            networkLock: f.networkLock, tcpClose: f.tcpClose, onSignal,
          });
          pid = r.pid;
          handBack = r.terminal ? () => r.terminal!.handBack() : undefined;
          for (const w of r.warnings) out.warn(w);
          // Quiet by default: without -d the restored program's own output is what matters.
          out.say(`restored pid ${r.pid} in ${ms(r.totalMs)}`, 3);
        } catch (e) {
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
  },
};
