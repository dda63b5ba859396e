import type { Command } from 'commander';
import type { ProcessNode } from '../../api/index.js';
import { parsePid } from '../args.js';
import { printJson, println, table } from '../output.js';
import type { CliCommand } from './types.js';

// Long argv (env dumps, JSON) would wrap every row; --json has the full command.
const MAX_COMMAND = 120;
const clip = (s: string) => (s.length > MAX_COMMAND ? `${s.slice(0, MAX_COMMAND - 1)}…` : s);

function rows(n: ProcessNode, depth: number, out: string[][]): string[][] {
  const indent = depth === 0 ? '' : `${'  '.repeat(depth - 1)}\\_ `;
  out.push([String(n.pid), String(n.ppid), String(n.pgid), String(n.sid), String(n.threads), n.state, indent + clip(n.command)]);
  for (const c of n.children) rows(c, depth + 1, out);
  return out;
}

export const psCommand: CliCommand = {
  name: 'ps',
  register(program: Command) {
    program
      .command('ps')
      .description('show the process tree under PID')
      .argument('<pid>', 'root of the tree', parsePid)
      .option('--json', 'print the tree as JSON')
      // Loaded when the command runs: --help and other commands do not pay for it.
      .action(async (pid: number, opts: { json?: boolean }) => {
        const { processTree } = await import('../../api/ps.js');
        const tree = processTree(pid);
        if (opts.json) {
          printJson(tree);
          return;
        }
        const header = ['PID', 'PPID', 'PGID', 'SID', 'THR', 'S', 'COMMAND'];
        for (const line of table([header, ...rows(tree, 0, [])])) println(line);
      });
  },
};
