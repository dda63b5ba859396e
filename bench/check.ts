/**
 * What restore --check costs: the same images restored alternately without and with
 * the check (read every restored process back and compare it with the images), for a
 * small process and a 256 MiB one. Target: ≤ 20 % of restore time for a small process.
 */
import { dump } from '../src/dump/dump.js';
import { restore } from '../src/restore/restore.js';
import { startVictim, waitGone } from '../test/helpers/victim.js';
import { f1, hrMs, killAll, livePids, median, rmDir, shmDir, table, track } from './util.js';

export interface CheckRow {
  name: string;
  plain: number[];
  checked: number[];
}

async function one(spec: { name: string; victim: string; args: string[]; ready: RegExp }, reps: number): Promise<CheckRow> {
  const v = track(startVictim(spec.victim, { args: spec.args }));
  await v.waitFor(spec.ready, 60000);
  const dir = shmDir('check');
  dump(v.pid, { imagesDir: dir });
  await waitGone(v.pid);
  livePids.delete(v.pid);
  const row: CheckRow = { name: spec.name, plain: [], checked: [] };
  for (let i = 0; i < reps * 2; i++) {
    const check = i % 2 === 1;
    let pid = 0;
    const ms = hrMs(() => {
      pid = restore({ imagesDir: dir, check }).pid;
    });
    (check ? row.checked : row.plain).push(ms);
    livePids.add(pid);
    await killAll([pid]);
  }
  rmDir(dir);
  return row;
}

export async function runCheck(opts: { reps: number }): Promise<CheckRow[]> {
  return [
    await one({ name: 'small (counter)', victim: 'counter', args: [], ready: /TICK/ }, opts.reps),
    await one({ name: '256 MiB', victim: 'bench-mem', args: ['256'], ready: /READY/ }, opts.reps),
  ];
}

export function reportCheck(rows: CheckRow[]): void {
  console.log('\nrestore --check: the same images restored alternately without and with the check (medians, in-process API):');
  console.log(table(['case', 'restore ms', 'restore --check ms', 'check share'], rows.map((r) => {
    const p = median(r.plain);
    const c = median(r.checked);
    return [r.name, f1(p), f1(c), `${((c - p) / p * 100).toFixed(0)} %`];
  })));
  console.log('target: the check adds <= 20 % to the restore of a small process');
}
