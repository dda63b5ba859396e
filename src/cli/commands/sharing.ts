import type { Command } from 'commander';
import { collectPids, parsePid } from '../args.js';
import { printJson, println } from '../output.js';
import type { CliCommand } from './types.js';
import { zodForOneShot } from '../zod.js';

export const sharingCommand: CliCommand = {
  name: 'sharing',
  register(program: Command) {
    program
      .command('sharing')
      .description('show which kernel objects the processes in the trees under PIDs share (kcmp)')
      .argument('<pid...>', 'roots of the trees', (v: string, prev: number[] | undefined) => (prev ? collectPids(v, prev) : [parsePid(v)]))
      .option('--json', 'print the groups as JSON')
      // Loaded when the command runs: --help and other commands do not pay for it.
      .action(async (pids: number[], opts: { json?: boolean }) => {
        await zodForOneShot();
        const { sharing } = await import('../../api/sharing.js');
        const r = sharing(pids);
        if (opts.json) {
          printJson(r);
          return;
        }
        for (const g of r.groups) println(`${g.kind}: ${g.pids.join(' ')}`);
        for (const f of r.files) println(`file: ${f.fds.map((x) => `${x.pid}:fd${x.fd}`).join(' ')} (${f.path})`);
        if (r.groups.length === 0 && r.files.length === 0) println('nothing shared');
        const skipped = r.vanished.length > 0 ? `; skipped ${r.vanished.length} exited: ${r.vanished.join(' ')}` : '';
        println(`${r.pids.length} processes, ${r.items.fds} fds, ${r.kcmpCalls} kcmp calls${skipped}`);
      });
  },
};
