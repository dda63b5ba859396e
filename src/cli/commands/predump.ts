import * as path from 'node:path';
import type { Command } from 'commander';
import { parsePid, parseSeconds } from '../args.js';
import { printJson } from '../output.js';
import { formatBytes, ms, parseVerbosity, Reporter } from '../report.js';
import type { CliCommand } from './types.js';
import { addPageServerOptions, pageServerOf, type PageServerFlags } from './page-server-options.js';
import { zodForOneShot } from '../zod.js';

interface PreDumpFlags extends PageServerFlags {
  tree: number;
  imagesDir: string;
  prevImagesDir?: string;
  trackMem?: boolean;
  pageChecksums?: boolean;
  timeout?: number;
  verbosity?: number;
  json?: boolean;
}

export const preDumpCommand: CliCommand = {
  name: 'pre-dump',
  register(program: Command) {
    const cmd = program
      .command('pre-dump')
      .description('save the memory of the process PID into DIR while it runs on, and track what it writes next (for a later dump --prev-images-dir)')
      .requiredOption('-t, --tree <pid>', 'process to pre-dump', parsePid)
      .requiredOption('-D, --images-dir <dir>', 'new or empty directory for the images (created 0700)')
      .option('--prev-images-dir <dir>', 'the previous pre-dump (relative to the images directory): only pages written since are saved')
      .option('--track-mem', 'accepted: a pre-dump always tracks memory')
      .option('--page-checksums', 'checksum page data too')
      .option('--timeout <seconds>', 'how long to wait for the tree to stop (default 10)', parseSeconds)
      .option('-v, --verbosity [n]', 'verbosity 0-4', parseVerbosity)
      .option('--json', 'print the result as one JSON document on stdout')
      .action(async (f: PreDumpFlags) => {
        const out = new Reporter({ verbosity: f.verbosity });
        await zodForOneShot();
        const { preDump } = await import('../../api/dump.js');
        try {
          const r = preDump(f.tree, {
            imagesDir: f.imagesDir, pageChecksums: f.pageChecksums, timeoutMs: f.timeout === undefined ? undefined : f.timeout * 1000,
            parent: f.prevImagesDir === undefined ? undefined : path.resolve(f.imagesDir, f.prevImagesDir),
            onSignal: (e) => e && out.fatal(e), pageServer: pageServerOf(f),
          });
          const kept = r.inParent > 0 ? `, ${r.inParent} unchanged pages left in ${f.prevImagesDir}` : '';
          out.say(`pre-dumped pid ${r.pid}: ${r.pages} pages (${formatBytes(r.bytes)})${kept} in ${ms(r.totalMs)}, frozen ${ms(r.frozenMs)}`);
          if (f.json) printJson(r);
        } catch (e) {
          out.error(e);
          throw e;
        }
      });
    addPageServerOptions(cmd);
  },
};
