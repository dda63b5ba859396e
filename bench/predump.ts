/**
 * `node --import tsx bench/predump.ts [MiB...]` (default 256): incremental dumps of
 * test/victims/bench-mem (M MiB written once, then idle: a small working set). For each
 * size, in one run: a plain `dump -R` (frozen time, pages), then pre-dump, a second
 * pre-dump against it, and the final dump against that (frozen time, pages saved,
 * pages left in the parent), then a restore whose victim checks its whole memory.
 * Images in /dev/shm. Prints a table; asserts nothing.
 */
import { join } from 'node:path';
import { dump } from '../src/dump/dump.js';
import { preDump } from '../src/dump/predump.js';
import { restore } from '../src/restore/restore.js';
import { kill as sysKill } from '../src/sys/index.js';
import { startVictim, waitGone, wrapPid } from '../test/helpers/victim.js';
import { cleanupSync, f1, SIGUSR1, shmDir, table, track } from './util.js';

const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
const rows: string[][] = [];
try {
  for (const mib of sizes.length > 0 ? sizes : [256]) {
    const v = track(startVictim('bench-mem', { args: [String(mib)] }));
    await v.waitFor(/READY/);
    const base = shmDir(`predump-${mib}`);
    const plain = dump(v.pid, { imagesDir: join(base, 'plain'), leaveRunning: true });
    rows.push([`${mib}`, 'dump -R', f1(plain.frozenMs), f1(plain.totalMs), String(plain.pages), '-']);
    const p1 = preDump(v.pid, { imagesDir: join(base, 'p1') });
    rows.push([`${mib}`, 'pre-dump', f1(p1.frozenMs), f1(p1.totalMs), String(p1.pages), String(p1.inParent)]);
    const p2 = preDump(v.pid, { imagesDir: join(base, 'p2'), parent: '../p1' });
    rows.push([`${mib}`, 'pre-dump 2', f1(p2.frozenMs), f1(p2.totalMs), String(p2.pages), String(p2.inParent)]);
    const fin = dump(v.pid, { imagesDir: join(base, 'final'), parent: '../p2' });
    rows.push([`${mib}`, 'final dump', f1(fin.frozenMs), f1(fin.totalMs), String(fin.pages), String(fin.inParent ?? 0)]);
    await waitGone(v.pid);
    const t0 = performance.now();
    const r = restore({ imagesDir: join(base, 'final') });
    const restoreMs = performance.now() - t0;
    const rv = track(wrapPid(r.pid, v.dir, v.log));
    const before = rv.output().length;
    sysKill(r.pid, SIGUSR1);
    await rv.waitFor(/PASS|FAIL/);
    rows.push([`${mib}`, 'restore (chain)', '-', f1(restoreMs), '-', rv.output().slice(before).includes('FAIL') ? 'FAIL' : 'PASS']);
    await rv.kill();
  }
  console.log(table(['MiB', 'step', 'frozen ms', 'total ms', 'pages saved', 'in parent'], rows));
} finally {
  cleanupSync();
}
