import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { readChildren } from '../../src/proc/index.js';
import { startVictim, waitGone, VICTIM_BIN, killAll } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

test('a bash pipeline (C producer | grep | C consumer) is dumped mid-stream with data in its pipes and loses or repeats nothing after restore', async () => {
  const v = startVictim('/bin/bash', { args: ['-c', `${VICTIM_BIN}seq-producer | grep --line-buffered seq | ${VICTIM_BIN}seq-consumer consumer.log; echo "bash: pipeline ended $?"`] });
  cleanups.push(() => v.cleanup());
  cleanups.push(() => { // before the victim's cleanup
    killAll('seq-producer');
    killAll('seq-consumer');
  });
  const log = join(v.dir, 'consumer.log');
  const consumerLog = () => {
    try {
      return readFileSync(log, 'utf8');
    } catch {
      return '';
    }
  };
  const waitLog = async (re: RegExp, from = 0) => {
    for (let i = 0; i < 1000 && !re.test(consumerLog().slice(from)); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(consumerLog().slice(from), re);
  };
  await waitLog(/PASS seq=\d+ lines=\d+\n[\s\S]*PASS/);
  const children = readChildren(v.pid);
  assert.equal(children.length, 3, 'bash runs the three stages as its children');
  const links = children.flatMap((c) => [0, 1].map((fd) => readlinkSync(`/proc/${c}/fd/${fd}`)));
  assert.equal(links.filter((l) => l.startsWith('pipe:')).length, 4, 'the stages are joined by two pipes');

  const dir = join(tmpdir(), `ckpt-pipeline-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  const d = dump(v.pid, { imagesDir: dir });
  assert.equal(d.processes, 4);
  for (const p of [v.pid, ...children]) await waitGone(p);
  const before = consumerLog();
  const lastSeq = Number([...before.matchAll(/PASS seq=(\d+)/g)].at(-1)![1]);
  const r = restore({ imagesDir: dir });
  rmSync(dir, { recursive: true, force: true });
  assert.equal(r.processes, 4);
  await waitLog(/PASS seq=\d+[\s\S]*PASS seq=\d+/, before.length);
  const after = consumerLog().slice(before.length);
  assert.doesNotMatch(consumerLog(), /FAIL|EOF/);
  const seqs = [...after.matchAll(/PASS seq=(\d+)/g)].map((m) => Number(m[1]));
  assert.ok(seqs.length >= 2 && seqs[0]! > lastSeq, `the consumer carries on past ${lastSeq}: ${after}`);
  for (const p of [v.pid, ...children]) assert.ok(readFileSync(`/proc/${p}/stat`, 'utf8').length > 0, `process ${p} is back`);
  // Killing the producer ends the stages after it on their own: some may be gone already.
  for (const p of children) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // exited
    }
  }
});
