/**
 * What restore --check costs: the same images restored alternately without and with
 * the check (read every restored process back and compare it with the images), for a
 * small process, the same with 2 and 4 threads, a tree of 3, and a 256 MiB process.
 * Beside the wall time of each restore: the check's own time (from the last process
 * rebuilt to the tree built, restore's events) and the CPU time of ckpt (user +
 * system, process.cpuUsage) for the whole restore and for the check alone.
 * Target: the check ≤ 20 % of a small process's restore.
 */
import { dump } from '../src/dump/dump.js';
import { restore } from '../src/restore/restore.js';
import { startVictim } from '../test/helpers/victim.js';
import { allGone, f1, hrMs, killAll, livePids, median, rmDir, shmDir, table, track } from './util.js';

export interface CheckRow {
  name: string;
  plain: number[];
  checked: number[];
  /** The check alone (wall), in the checked restores. */
  check: number[];
  plainCpu: number[];
  checkCpu: number[];
}

const cpuMs = (c: NodeJS.CpuUsage) => (c.user + c.system) / 1000;

async function one(spec: { name: string; victim: string; args: string[]; ready: RegExp }, reps: number): Promise<CheckRow> {
  const v = track(startVictim(spec.victim, { args: spec.args }));
  await v.waitFor(spec.ready, 60000);
  const dir = shmDir('check');
  const d = dump(v.pid, { imagesDir: dir });
  await allGone(d.pids);
  const row: CheckRow = { name: spec.name, plain: [], checked: [], check: [], plainCpu: [], checkCpu: [] };
  // Two warm-up restores first (one of each), left out.
  for (let i = 0; i < reps * 2 + 2; i++) {
    const check = i % 2 === 1;
    let built = 0;
    let lastProcess = 0;
    let cpuAtLast = process.cpuUsage();
    let checkCpu = 0;
    const cpu0 = process.cpuUsage();
    const ms = hrMs(() => {
      restore({
        imagesDir: dir,
        check,
        onEvent: (e) => {
          if (e.phase === 'process') {
            lastProcess = e.ms;
            cpuAtLast = process.cpuUsage();
          }
          if (e.phase === 'built') {
            built = e.ms - lastProcess;
            checkCpu = cpuMs(process.cpuUsage(cpuAtLast));
          }
        },
      });
    });
    const cpu = cpuMs(process.cpuUsage(cpu0));
    for (const pid of d.pids) livePids.add(pid);
    await killAll(d.pids);
    if (i < 2) continue;
    if (check) {
      row.checked.push(ms);
      row.check.push(built);
      row.checkCpu.push(checkCpu);
    } else {
      row.plain.push(ms);
      row.plainCpu.push(cpu);
    }
  }
  rmDir(dir);
  return row;
}

export async function runCheck(opts: { reps: number }): Promise<CheckRow[]> {
  return [
    await one({ name: 'small (counter)', victim: 'counter', args: [], ready: /TICK/ }, opts.reps),
    await one({ name: '2 threads', victim: 'bench-threads', args: ['1'], ready: /READY/ }, opts.reps),
    await one({ name: '4 threads', victim: 'bench-threads', args: ['3'], ready: /READY/ }, opts.reps),
    await one({ name: 'tree of 3', victim: 'bench-tree', args: ['3'], ready: /READY/ }, opts.reps),
    await one({ name: '256 MiB', victim: 'bench-mem', args: ['256'], ready: /READY/ }, opts.reps),
  ];
}

export function reportCheck(rows: CheckRow[]): void {
  console.log('\nrestore --check: the same images restored alternately without and with the check (medians, in-process API):');
  const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(0)} %`;
  console.log(
    table(
      ['case', 'restore ms', 'restore --check ms', 'check alone ms', 'check / restore', 'restore CPU ms', 'check CPU ms', 'check / restore CPU'],
      rows.map((r) => {
        const [p, c, k, pc, kc] = [median(r.plain), median(r.checked), median(r.check), median(r.plainCpu), median(r.checkCpu)];
        return [r.name, f1(p), f1(c), f1(k), pct(k, p), f1(pc), f1(kc), pct(kc, pc)];
      }),
    ),
  );
  console.log('target: the check adds <= 20 % to the restore of a small process');
}
