/**
 * The files resource on a live victim: dump its fds, wreck them by injection, restore
 * them into the same process, and let the victim check itself. (The full restore
 * engine builds a new process instead; the pair is the same.)
 */
import { test } from 'node:test';
import { LocalObjects } from '../../src/resources/shared.js';
import assert from 'node:assert/strict';
import { readFileSync, readlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { findSyscallSite, RemoteTask, seizeProcess, Undo, type SeizedProcess } from '../../src/infect/index.js';
import { bigintReplacer } from '../../src/images/bigint.js';
import { PageWriter, type PageRun } from '../../src/images/index.js';
import { files, type FilesState } from '../../src/resources/files/index.js';
import type { BlobSink, BlobSource, DumpContext, RestoreContext } from '../../src/resources/types.js';
import { kill, NR, SIG } from '../../src/sys/index.js';
import { startVictim, type Victim } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';

const cleanups = useCleanups();

/** Object page files (deleted files' content) in a temp directory, as an image set holds them. */
function tempPages(): { dump: DumpContext['pages']; restore: RestoreContext['pages'] } {
  const dir = cleanups.tempDir('ckpt-pages-');
  const runs = new Map<string, PageRun[]>();
  return {
    dump: (id) => {
      if (runs.has(id)) return undefined; // saved once
      runs.set(id, []);
      return new PageWriter(join(dir, id), { options: {}, done: ({ pagemap }) => void runs.set(id, pagemap.runs) });
    },
    restore: (id) => ({ path: join(dir, id), runs: runs.get(id) ?? [] }),
  };
}

/** Blobs in a temp directory, like an image directory would hold them. */
function tempBlobs(): BlobSink & BlobSource {
  const dir = cleanups.tempDir('ckpt-blobs-');
  return {
    put: (name, data) => (writeFileSync(join(dir, name), data), name),
    get: (name) => readFileSync(join(dir, name)),
    path: (name) => join(dir, name),
  };
}

async function victim(args: string[] = []): Promise<Victim> {
  const v = startVictim('files', { args });
  cleanups.push(() => v.cleanup());
  await v.waitFor(/READY pid=\d+/);
  return v;
}

interface Session {
  proc: SeizedProcess;
  remote: RemoteTask;
  warnings: string[];
  dumpCtx: DumpContext;
  restoreCtx: RestoreContext;
}

function seize(v: Victim): Session {
  const proc = seizeProcess(v.pid);
  const remote = new RemoteTask(v.pid, { site: findSyscallSite(v.pid) });
  const warnings: string[] = [];
  const blobs = tempBlobs();
  const warn = (m: string) => void warnings.push(m);
  const pages = tempPages();
  return {
    proc, remote, warnings,
    dumpCtx: { pid: v.pid, proc, remote, blobs, warn, pages: pages.dump },
    restoreCtx: { pid: v.pid, remote, blobs, undo: new Undo(), options: { shellJob: false },
    shared: new LocalObjects(), warn, pages: pages.restore },
  };
}

/** What the orchestrator does between dump and restore: through JSON and the schema. */
function throughImage(state: FilesState): FilesState {
  return files.schema.parse(JSON.parse(JSON.stringify(state, bigintReplacer)));
}

/** Replaces the victim's fds with /dev/zero (and opens a stray fd 20) by injected syscalls. */
function wreck(s: Session, fds: number[]): void {
  const path = Buffer.from('/dev/zero\0');
  const addr = s.remote.scratch(path.length);
  s.remote.write(addr, path);
  const zero = s.remote.call(NR.openat, [-100, addr, 2, 0], 'openat');
  for (const fd of [...fds, 20]) s.remote.call(NR.dup3, [zero, fd, 0], 'dup3');
  s.remote.call(NR.close, [zero], 'close');
}

function link(pid: number, fd: number): string {
  return readlinkSync(`/proc/${pid}/fd/${fd}`);
}

test('dump, wreck and restore the fds of a live victim: it finds them all as they were', async () => {
  const v = await victim();
  const s = seize(v);
  let state: FilesState;
  try {
    state = throughImage(files.dump(s.dumpCtx));
    const kinds = Object.fromEntries(state.fds.map((e) => [e.fd, e.kind]));
    assert.deepEqual(kinds, { 0: 'chr', 1: 'reg', 2: 'dup', 5: 'chr', 7: 'reg', 9: 'deleted', 10: 'chr', 12: 'reg', 13: 'dup', 14: 'dir' });
    const gone = state.fds.find((e) => e.fd === 9);
    assert.ok(gone?.kind === 'deleted' && gone.path === join(v.dir, 'gone.txt') && gone.pos === 1500n && gone.size === 3000n);

    wreck(s, [1, 5, 7, 9, 10, 12, 13, 14]);
    assert.equal(link(v.pid, 9), '/dev/zero', 'the unlinked file is gone from the victim');
    assert.equal(link(v.pid, 20), '/dev/zero');

    files.restore(s.restoreCtx, state);
    assert.equal(link(v.pid, 9), `${join(v.dir, 'gone.txt')} (deleted)`, 'recreated under its old name, then unlinked');
    assert.equal(link(v.pid, 12), join(v.dir, 'data.bin'));
    assert.throws(() => link(v.pid, 20), /ENOENT/, 'the stray fd was closed');
    assert.deepEqual(s.warnings, []);
    s.remote.finish();
  } finally {
    s.proc.release();
  }
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/);
  const out = v.output();
  assert.doesNotMatch(out, /FAIL/, out);
  assert.match(out, /^READY pid=\d+\nPASS files\nSTDERR line\nDONE fails=0\n$/, 'fds 1 and 2 still share one offset');
});

test('a pipe at fds 3 and 4 is saved as one pipe object, and the process runs on', async () => {
  const v = await victim(['pipe']);
  const s = seize(v);
  try {
    const state = throughImage(files.dump(s.dumpCtx));
    const ends = state.fds.filter((e) => e.kind === 'pipe');
    assert.deepEqual(ends.map((e) => e.fd), [3, 4]);
    assert.equal(state.pipes?.length, 1, 'one pipe object for both ends');
    s.remote.finish();
  } finally {
    s.proc.release();
  }
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/);
  assert.match(v.output(), /PASS files/, v.output());
});

test('restore refuses a regular file that no longer exists', async () => {
  const v = await victim();
  const s = seize(v);
  try {
    const state = throughImage(files.dump(s.dumpCtx));
    unlinkSync(join(v.dir, 'data.bin'));
    assert.throws(() => files.restore(s.restoreCtx, state), {
      code: 'FILE_CHANGED',
      message: `Cannot restore fd 12 of process ${v.pid}: ${join(v.dir, 'data.bin')} no longer exists`,
    });
    assert.deepEqual(s.restoreCtx.undo.runAll(), []);
    s.remote.finish();
  } finally {
    s.proc.release();
  }
});

test('an unlinked file whose old name is taken again is recreated beside it, and the new file is left alone', async () => {
  const v = await victim();
  const s = seize(v);
  const oldName = join(v.dir, 'gone.txt');
  try {
    const state = throughImage(files.dump(s.dumpCtx));
    writeFileSync(oldName, 'someone else\n');
    wreck(s, [9]);
    files.restore(s.restoreCtx, state);
    assert.match(link(v.pid, 9), /\/\.ckpt-gone\.txt-\d+-[0-9a-f]+ \(deleted\)$/);
    assert.equal(readFileSync(oldName, 'utf8'), 'someone else\n');
    s.remote.finish();
  } finally {
    s.proc.release();
  }
  kill(v.pid, SIG.SIGUSR1);
  await v.waitFor(/DONE fails=\d+/);
  assert.match(v.output(), /PASS files/, v.output());
});
