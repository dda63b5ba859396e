import type { Command } from 'commander';
import { show, type ShowReport } from '../../api/index.js';
import { printJson, println, table } from '../output.js';
import { formatBytes } from '../report.js';
import type { CliCommand } from './types.js';

// Enough to see what a set holds at a glance; --json has everything.
function summary(r: ShowReport): string[] {
  const lines = [`${r.dir}: ckpt image format ${r.format}, ${r.inventory.length} files, dumped ${r.process.createdAt} on Linux ${r.process.kernel}`];
  for (const p of r.processes) {
    const t = p.core.threads[0];
    lines.push(`pid ${p.pid}: ${p.mm.exe ?? '?'}, ${p.core.threads.length} thread(s), rip ${t?.regs.rip ?? '?'}`);
    lines.push(`  memory: ${p.mm.vmas.length} areas, ${p.pagemap.pages} pages (${formatBytes(p.pagemap.bytes)}) in ${p.pagemap.runs} runs`);
    const rows = p.mm.vmas.map((v) => [`${v.start}-${v.end}`, v.perms, v.kind, v.file ?? v.name ?? '']);
    for (const l of table(rows)) lines.push(`    ${l}`);
    lines.push(`  resources: ${Object.keys(p.core.resources).join(', ')}`);
  }
  return lines;
}

export const showCommand: CliCommand = {
  name: 'show',
  register(program: Command) {
    program
      .command('show')
      .description('decode the images in DIR (a summary, or everything with --json)')
      .argument('<dir>', 'directory with the images')
      .option('--json', 'print every image decoded, as JSON')
      .action((dir: string, opts: { json?: boolean }) => {
        const r = show(dir);
        if (opts.json) printJson(r);
        else for (const l of summary(r)) println(l);
      });
  },
};
