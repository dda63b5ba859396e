/**
 * Memory state a restore could get wrong without noticing (auditmem.c): guard regions,
 * memory-deny-write-execute, READ_IMPLIES_EXEC with the mm fields, madvise flags, a
 * MAP_GROWSDOWN and a MAP_DROPPABLE area come back, checked by the victim itself; secret memory and huge TLB
 * pages are refused at dump, naming the area, and the process runs on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { dump } from '../../src/dump/dump.js';
import { kill, SIG } from '../../src/sys/index.js';
import { selfCheckRoundTrip } from '../helpers/self-check.js';
import { useCleanups } from '../helpers/cleanup.js';
import { startVictim, type Victim } from '../helpers/victim.js';

const cleanups = useCleanups();

const roundTrip = (features: string[], checks: number) => selfCheckRoundTrip('auditmem', { args: features, checks, cleanups });

test('guard regions (MADV_GUARD_INSTALL), also in a 4 GiB sparse area, still fault after restore', () => roundTrip(['guard'], 3));

test('memory-deny-write-execute (PR_SET_MDWE) is set again, after the memory', () => roundTrip(['mdwe'], 2));

test('READ_IMPLIES_EXEC does not make the restored areas executable; brk, exe, cmdline and auxv come back', () => roundTrip(['mm'], 6));

test('madvise flags (dc wf dd hg nh mg), a MAP_GROWSDOWN area that still grows and a MAP_DROPPABLE area', () =>
  roundTrip(['madv', 'growsdown', 'droppable'], 10));

async function refused(t: { skip(m: string): void }, feature: string, message: RegExp): Promise<void> {
  const v: Victim = startVictim('auditmem', { args: [feature] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+|SETUP FAIL.*|SKIP.*/);
  if (/SKIP/.test(v.output())) return t.skip(v.output().trim());
  assert.doesNotMatch(v.output(), /SETUP FAIL/);
  assert.throws(() => dump(v.pid, { imagesDir: cleanups.tempDir('ckpt-auditmem-') }), { code: 'UNSUPPORTED', message });
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/);
  assert.match(v.output(), /^PASS /m);
  assert.doesNotMatch(v.output(), /FAIL/);
}

test('secret memory (memfd_secret) is refused at dump; the process runs on', (t) =>
  refused(t, 'secret', /^Cannot dump process \d+: its area 0x[0-9a-f]+-0x[0-9a-f]+ is secret memory \(memfd_secret\)/));

test('huge TLB pages (MAP_HUGETLB) are refused at dump; the process runs on', async (t) => {
  const knob = '/proc/sys/vm/nr_hugepages';
  const before = readFileSync(knob, 'utf8').trim();
  if (before === '0') {
    try {
      writeFileSync(knob, '1');
    } catch (e) {
      return t.skip(`cannot reserve a huge page: ${(e as Error).message}`);
    }
    cleanups.push(() => writeFileSync(knob, before));
  }
  await refused(t, 'hugetlb', /^Cannot dump process \d+: its area 0x[0-9a-f]+-0x[0-9a-f]+ \/anon_hugepage is of huge TLB pages/);
});
