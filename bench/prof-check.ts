// temporary: profile restore --check of a small process
import { dump } from '../src/dump/dump.js';
import { restore } from '../src/restore/restore.js';
import { startVictim, waitGone } from '../test/helpers/victim.js';
import { killAll, livePids, shmDir, track } from './util.js';
const v = track(startVictim('counter', { args: [] }));
await v.waitFor(/TICK/, 60000);
const dir = shmDir('check');
dump(v.pid, { imagesDir: dir });
await waitGone(v.pid);
livePids.delete(v.pid);
for (let i = 0; i < 30; i++) {
  const pid = restore({ imagesDir: dir, check: true }).pid;
  livePids.add(pid);
  await killAll([pid]);
}
process.exit(0);
