import type { Command } from 'commander';
import type { ProbeResult } from '../../api/index.js';
import { printJson, println, table } from '../output.js';
import type { CliCommand } from './types.js';

function row(r: ProbeResult): string[] {
  if (r.ok) return ['ok', r.name, r.detail];
  return [r.required ? 'MISSING' : 'warning', r.name, `${r.detail}; disables ${r.disables}`];
}

export const checkCommand: CliCommand = {
  name: 'check',
  register(program: Command) {
    program
      .command('check')
      .description('check what this kernel and our privileges allow')
      .option('--feature <name>', 'run one probe only; exit 0 if it passes, 1 if not')
      .option('--json', 'print the results as JSON')
      // Loaded when the command runs: --help and other commands do not pay for it.
      .action(async (opts: { feature?: string; json?: boolean }) => {
        const { check } = await import('../../api/check/index.js');
        const report = check({ feature: opts.feature });
        if (!report.ok) process.exitCode = 1;
        if (opts.json) {
          printJson(report);
          return;
        }
        for (const line of table(report.results.map(row))) println(line);
        if (opts.feature !== undefined) {
          println(report.ok ? `${opts.feature} is available.` : `${opts.feature} is missing.`);
          return;
        }
        const missing = report.results.filter((r) => !r.ok && r.required);
        if (missing.length === 0) println('Looks good.');
        else println(`ckpt cannot work here: ${missing.map((r) => r.name).join(', ')} missing`);
      });
  },
};
