/**
 * `ckpt migrate` between two "hosts" (test/helpers/migrate-net.ts): a TCP server with a
 * client in C streaming "seq N" lines moves from A to B: pre-copy rounds, a final freeze,
 * restore in B, and the server's address moves with it (action scripts: removed from A at
 * post-dump, added in B and routed there by C at pre-restore). The client sees only a pause.
 * A destination that fails the restore leaves the source running, with its address back
 * (the source's migrate-failed script) and its memory tracking ended.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitGone } from '../helpers/victim.js';
import { useCleanups } from '../helpers/cleanup.js';
import { destinationScript, network, passes, passLines, receiver, runSource, script, serverAndClient, sourceScript, tokenFile, trackingLeft } from '../helpers/migrate-net.js';

const cleanups = useCleanups();

test('a TCP server moves from A to B with its address; its client in C sees only a pause; a failed restore in B leaves it running in A', async () => {
  const net = network(cleanups, (process.pid % 10000).toString());
  const dir = cleanups.tempDir('ckpt-migrate-');
  const token = tokenFile(dir);
  const { server, clientLog } = await serverAndClient(net, { cleanups, dir });
  const srcScript = sourceScript(net, dir);

  // First a destination whose restore fails (its pre-restore script does) after the source's
  // post-dump took the address away: the source resumes, gets its address back, the client goes on.
  const broken = receiver(net, { cleanups, dir: join(dir, 'broken'), token, script: script(dir, 'broken.sh', '[ "$CRTOOLS_SCRIPT_ACTION" = pre-restore ] && exit 3; exit 0') });
  const failed = await runSource(net, { pid: server.pid, port: await broken.port, token, script: srcScript });
  assert.notEqual(failed.status, 0, failed.stderr);
  assert.match(failed.stderr, /Cannot restore on page server 10\.77\.2\.2:\d+: it says: Cannot run action script/);
  assert.match(failed.stderr, /running action script .*src\.sh \(migrate-failed\)/);
  // The destination says why, and runs its own migrate-failed point (its pre-restore ran).
  assert.equal(await broken.exited, 1, broken.stderr());
  assert.match(broken.stderr(), /Cannot run action script .*broken\.sh \(pre-restore\): exit status 3/);
  assert.match(broken.stderr(), /running action script .*broken\.sh \(migrate-failed\)/);
  const afterFailure = passLines(clientLog);
  await passes(clientLog, afterFailure + 3);
  assert.doesNotMatch(readFileSync(clientLog, 'utf8'), /FAIL|EOF/);
  assert.match(server.output(), /ACCEPTED/);
  assert.deepEqual(trackingLeft(server.pid), { registered: 0, holders: [] }, 'the failed migration left memory tracking armed');

  const recv = receiver(net, { cleanups, dir: join(dir, 'dst'), token, script: destinationScript(net, dir) });
  const port = await recv.port;
  const before = passLines(clientLog);
  const src = await runSource(net, { pid: server.pid, port, token, script: srcScript });
  assert.equal(src.status, 0, `source: ${src.stderr}\nreceiver: ${recv.stderr()}`);
  const r = JSON.parse(src.stdout) as { rounds: { pages: number }[]; final: { pages: number; freezeMs: number; parts: Record<string, number> }; remotePid: number };
  assert.ok(r.rounds.length >= 1 && r.rounds[0]!.pages >= 32 * 256, JSON.stringify(r.rounds));
  assert.ok(r.final.pages < r.rounds[0]!.pages / 2, `final round ${r.final.pages} pages, first ${r.rounds[0]!.pages}`);
  const parts = Object.entries(r.final.parts).map(([k, v]) => `${k} ${Math.round(v)}`).join(', ');
  console.log(`# migrate: rounds ${r.rounds.map((x) => x.pages).join(', ')} pages; final ${r.final.pages} pages, frozen ${Math.round(r.final.freezeMs)} ms until it ran in B (${parts} ms)`);
  await waitGone(server.pid);
  assert.match(recv.stderr(), /runs here/);
  // The stream goes on from B: more lines checked, none out of order, no memory failure, no EOF.
  await passes(clientLog, before + 5);
  const log = readFileSync(clientLog, 'utf8');
  assert.doesNotMatch(log, /FAIL|EOF/, log.slice(-2000));
});
