/**
 * Standard fds that lead outside the dumped tree are never swapped silently: a FIFO
 * on stdin is reopened by its path (the reader goes on reading what its outside
 * writer sends after restore); a pipe from outside makes the restore fail naming the
 * fd and `--inherit-fd`, and with `--inherit-fd fd[N]:pipe:[ino]` the program reads
 * from the fd it was given (stdin-reader.c prints each line it reads).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readlinkSync, statSync, truncateSync, writeSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { dump } from '../../src/dump/dump.js';
import { restore } from '../../src/restore/restore.js';
import { closeFd, pipe2 } from '../../src/sys/index.js';
import { startVictim, waitGone, wrapPid, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();
const O_CLOEXEC = 0o2000000;

/** Dumps v (killing it) and truncates its log to what it had said by then. */
async function dumpAndKill(v: Victim, dir: string): Promise<void> {
  const logAtDump = statSync(v.log).size;
  const r = dump(v.pid, { imagesDir: dir });
  for (const pid of r.pids) await waitGone(pid); // a child of the victim too (a shell's sleep)
  truncateSync(v.log, logAtDump);
}

/** dumpAndKill, then a restore that must need nothing and warn of nothing. */
async function dumpAndRestore(v: Victim): Promise<Victim> {
  const dir = cleanups.tempDir('ckpt-stdio-img-');
  await dumpAndKill(v, dir);
  const res = restore({ imagesDir: dir });
  const rv = wrapPid(res.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.deepEqual(res.warnings, []);
  return rv;
}

test('a FIFO on stdin is reopened by its path: the reader gets what its outside writer sends after restore', async () => {
  const tmp = cleanups.tempDir('ckpt-stdio-');
  const fifo = join(tmp, 'in.fifo');
  execFileSync('mkfifo', [fifo]);
  // The writer is outside the tree (this test), and keeps the FIFO open throughout.
  const w = openSync(fifo, 'r+');
  cleanups.push(() => closeSync(w));
  const v = startVictim('stdin-reader', { args: [fifo] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  writeSync(w, 'one\n');
  await v.waitFor(/GOT one/);
  const rv = await dumpAndRestore(v);
  assert.equal(readlinkSync(`/proc/${rv.pid}/fd/0`), fifo);
  writeSync(w, 'two\n');
  await rv.waitFor(/GOT two/);
  assert.doesNotMatch(rv.output(), /EOF/);
});

test('a pipe from outside on stdin: the restore names the fd and --inherit-fd, and takes the fd it is given', async () => {
  const [r, wr] = pipe2(O_CLOEXEC);
  cleanups.push(() => { closeFd(r); closeFd(wr); });
  const link = readlinkSync(`/proc/self/fd/${r}`);
  const v = startVictim('stdin-reader', { args: [`/proc/${process.pid}/fd/${r}`] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  writeSync(wr, 'one\n');
  await v.waitFor(/GOT one/);
  const dir = cleanups.tempDir('ckpt-stdio-img-');
  await dumpAndKill(v, dir);

  assert.throws(() => restore({ imagesDir: dir }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'USAGE', e.message);
    assert.equal(e.message, `Cannot restore fd 0 of process ${v.pid}: fd 0 was ${link}, outside the dumped tree; pass --inherit-fd fd[N]:${link} to give it ckpt's fd N`);
    return true;
  });
  await waitGone(v.pid);
  assert.throws(() => restore({ imagesDir: dir, inheritFd: ['fd[99999]:pipe:[1]'] }), /Cannot use --inherit-fd fd\[99999\]:pipe:\[1\]: ckpt has no fd 99999 open/);

  const res = restore({ imagesDir: dir, inheritFd: [`fd[${r}]:${link}`] });
  const rv = wrapPid(res.pid, v.dir, v.log);
  cleanups.push(() => rv.kill());
  assert.equal(readlinkSync(`/proc/${rv.pid}/fd/0`), link);
  writeSync(wr, 'two\n');
  await rv.waitFor(/GOT two/);
  assert.doesNotMatch(rv.output(), /EOF/);
});

test('a pipe on stdin whose writer is gone comes back as it is, with the bytes still in it (a pager after its writer exited)', async () => {
  const [r, wr] = pipe2(O_CLOEXEC);
  const tmp = cleanups.tempDir('ckpt-stdio-');
  // bash reads a pipe byte by byte: "two" stays in the pipe until GO exists; sleep gets no stdin.
  const script = `exec 0</proc/${process.pid}/fd/${r}; IFS= read -r a; echo "GOT $a"; echo "READY pid=$$";
    while [ ! -e ${tmp}/GO ]; do sleep 0.05 </dev/null; done; while IFS= read -r a; do echo "GOT $a"; done; echo EOF`;
  writeSync(wr, 'one\ntwo\n');
  closeFd(wr);
  const v = startVictim('/bin/bash', { args: ['-c', script] });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  closeFd(r); // no writer anywhere, and the victim is the only reader
  const rv = await dumpAndRestore(v);
  writeSync(openSync(join(tmp, 'GO'), 'w'), '');
  await rv.waitFor(/EOF/);
  assert.match(rv.output(), /^GOT one\nREADY pid=\d+\nGOT two\nEOF\n$/, rv.output());
});
