// Wall and CPU time of CLI start-up: node -e 0, ckpt --version/--help, and ckpt dump / restore -d of the
// counter victim. As root, after npm run build and node scripts/build-victims.mjs:
//   node --import tsx scripts/cli-startup.ts [bin/ckpt.js] [runs]  (tmp/dist-before/cli/main.js for an old build)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startVictim, waitGone, wrapPid } from '../test/helpers/victim.js';
const bin = process.argv[2] ?? 'bin/ckpt.js';
const n = Number(process.argv[3] ?? 7);
const cpu: Record<string, number[]> = {};
let key = '';
const t = (args: string[]) => { const t0 = performance.now(); const r = spawnSync('/usr/bin/time', ['-f', 'CPU %U %S', ...args], { encoding: 'utf8' }); const ms = performance.now() - t0; if (r.status !== 0) throw new Error(r.stderr); const m = /CPU (\S+) (\S+)\s*$/.exec(r.stderr)!; (cpu[key] ??= []).push((Number(m[1]) + Number(m[2])) * 1000); return ms; };
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!.toFixed(1);
const res: Record<string, number[]> = { node: [], version: [], help: [], dump: [], restore: [] };
for (let i = 0; i < n; i++) {
  key = 'node'; res.node!.push(t(['node', '-e', '0']));
  key = 'version'; res.version!.push(t(['node', bin, '--version']));
  key = 'help'; res.help!.push(t(['node', bin, '--help']));
  const v = startVictim('counter');
  await v.waitFor(/READY/);
  const dir = mkdtempSync('/dev/shm/clitime-');
  key = 'dump'; res.dump!.push(t(['node', bin, 'dump', '-t', String(v.pid), '-D', join(dir, 'img')]));
  await waitGone(v.pid);
  key = 'restore'; res.restore!.push(t(['node', bin, 'restore', '-D', join(dir, 'img'), '-d']));
  const r = wrapPid(v.pid, v.dir, v.log);
  await r.cleanup(); await v.cleanup();
  rmSync(dir, { recursive: true, force: true });
}
for (const [k, a] of Object.entries(res)) console.log(k.padEnd(8), 'median', med(a), 'ms  min', Math.min(...a).toFixed(1), ' all', a.map((x) => x.toFixed(0)).join(' '), ' | cpu median', med(cpu[k]!));
