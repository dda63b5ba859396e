/**
 * What page checksums cost a dump: the same live bench-mem victim (1 GiB by default)
 * dumped with --leave-running to tmpfs, alternately with and without page checksums,
 * so that load on the machine hits both alike. Prints the medians of wall time and of
 * CPU time (ckpt's plus the target's, which copies part of its own pages) and their
 * ratios: on a loaded machine the CPU time is the figure to trust.
 *
 *   node --import tsx bench/checksums.ts [MiB] [pairs]
 */
import { readFileSync } from 'node:fs';
import { dump } from '../src/dump/dump.js';
import { startVictim } from '../test/helpers/victim.js';
import { drop, f0, f2, hrMs, median, rmDir, shmDir, table, track } from './util.js';

const mib = Number(process.argv[2] ?? 1024);
const pairs = Number(process.argv[3] ?? 7);

const v = track(startVictim('bench-mem', { args: [String(mib)] }));
await v.waitFor(/READY/, 120_000);
/** utime + stime of a process in ms (clock ticks of 10 ms). */
const targetCpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};
const ownCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const times: Record<'off' | 'on', number[]> = { off: [], on: [] };
const cpu: Record<'off' | 'on', number[]> = { off: [], on: [] };
for (let i = 0; i < pairs; i++) {
  for (const mode of i % 2 ? (['on', 'off'] as const) : (['off', 'on'] as const)) {
    const dir = shmDir(`crc-${mode}`);
    const c0 = ownCpuMs() + targetCpuMs(v.pid);
    times[mode].push(hrMs(() => void dump(v.pid, { imagesDir: `${dir}/img`, leaveRunning: true, pageChecksums: mode === 'on' })));
    cpu[mode].push(ownCpuMs() + targetCpuMs(v.pid) - c0);
    rmDir(dir);
  }
}
await drop(v);
const off = median(times.off);
const on = median(times.on);
console.log(`${mib} MiB, ${pairs} pairs, load ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
const [cpuOff, cpuOn] = [median(cpu.off), median(cpu.on)];
console.log(table(['page checksums', 'wall ms (median)', 'CPU ms (median)', 'wall, all runs', 'CPU, all runs'], [
  ['off', f0(off), f0(cpuOff), times.off.map(f0).join(' '), cpu.off.map(f0).join(' ')],
  ['on', f0(on), f0(cpuOn), times.on.map(f0).join(' '), cpu.on.map(f0).join(' ')],
]));
console.log(`on/off: wall ${f2(on / off)}, CPU ${f2(cpuOn / cpuOff)}`);
