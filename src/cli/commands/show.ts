import type { Command } from 'commander';
import type { ShowPagemap, ShowReport, ShowVma } from '../../api/index.js';
import { printJson, println, table } from '../output.js';
import { formatBytes } from '../report.js';
import type { CliCommand } from './types.js';
import { zodForOneShot } from '../zod.js';

/** Consecutive areas of one file (or one kind) on one line: a library is 5 areas, one line. */
function groupVmas(vmas: ShowVma[]): string[][] {
  const rows: string[][] = [];
  let first: ShowVma | undefined;
  let last: ShowVma | undefined;
  let perms: string[] = [];
  const flush = () => {
    if (!first || !last) return;
    rows.push([`${first.start}-${last.end}`, [...new Set(perms)].join(','), first.kind, first.file ?? first.name ?? '']);
  };
  for (const v of vmas) {
    const same = last && last.end === v.start && last.kind === v.kind && last.file === v.file && v.kind === 'file';
    if (!same) {
      flush();
      first = v;
      perms = [];
    }
    perms.push(v.perms);
    last = v;
  }
  flush();
  return rows;
}

// Enough to see what a set holds at a glance; --json has everything.
function summary(r: ShowReport): string[] {
  const what = r.kind === 'pre-dump' ? 'pre-dumped' : 'dumped';
  const lines = [`${r.dir}: ckpt image format ${r.format}, ${r.inventory.length} files, ${what} ${r.process.createdAt} on Linux ${r.process.kernel}`];
  if (r.parent) lines.push(`incremental: dumped against ${r.parent.dir} (${r.parent.path})`);
  const kept = (m: ShowPagemap) => (m.inParent > 0 ? `; ${m.inParent} unchanged pages in the parent images (${m.fromParents} held there, the rest zero)` : '');
  for (const p of r.preDumped ?? []) lines.push(`pid ${p.pid}: ${p.pagemap.pages} pages (${formatBytes(p.pagemap.bytes)}) in ${p.pagemap.runs} runs${kept(p.pagemap)}`);
  const zombies = r.process.tree.filter((e) => e.zombie);
  if (r.process.tree.length > 1) lines.push(`tree of ${r.process.tree.length} processes (${zombies.length} zombie(s)), root ${r.process.rootPid}`);
  for (const z of zombies) lines.push(`pid ${z.pid}: zombie of ${z.ppid}, wait status ${z.zombie!.status}`);
  for (const p of r.processes) {
    const t = p.core.threads[0];
    const e = r.process.tree.find((x) => x.pid === p.pid);
    const ids = e ? `, ppid ${e.ppid || '-'}, pgid ${e.pgid}, sid ${e.sid}${e.stopped ? ', stopped' : ''}` : '';
    lines.push(`pid ${p.pid}: ${p.mm.exe ?? '?'}, ${p.core.threads.length} thread(s), rip ${t?.regs.rip ?? '?'}${ids}`);
    for (const th of p.core.threads) {
      lines.push(`  thread ${th.tid}${th.comm ? ` (${th.comm})` : ''}: rip ${th.regs.rip}, rsp ${th.regs.rsp}, fs_base ${th.regs.fs_base}, xsave ${th.xstateBytes} bytes`);
    }
    lines.push(`  memory: ${p.mm.vmas.length} areas, ${p.pagemap.pages} pages (${formatBytes(p.pagemap.bytes)}) in ${p.pagemap.runs} runs${kept(p.pagemap)}`);
    for (const l of table(groupVmas(p.mm.vmas))) lines.push(`    ${l}`);
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
      // Loaded when the command runs: --help and other commands do not pay for it.
      .action(async (dir: string, opts: { json?: boolean }) => {
        await zodForOneShot();
        const { show } = await import('../../api/show.js');
        const r = show(dir);
        if (opts.json) printJson(r);
        else for (const l of summary(r)) println(l);
      });
  },
};
