/**
 * deferSignals/checkInterrupted in a Node process of their own: a signal that comes
 * while the guarded code runs neither kills us nor runs a listener until the code
 * returns; the old dispositions come back byte for byte; then the signal is delivered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

const here = new URL('.', import.meta.url).pathname;

/** Runs `body` as an ES module with deferSignals, checkInterrupted, kill, SIG and signalFlag in scope. */
function run(body: string) {
  const script = `
    import { deferSignals, checkInterrupted } from ${JSON.stringify(`${here}interrupt.ts`)};
    import { kill, SIG, signalFlag } from ${JSON.stringify(`${here}../sys/index.ts`)};
    const say = (s) => process.stdout.write(s + '\\n');
    const actions = () => [SIG.SIGHUP, SIG.SIGINT, SIG.SIGPIPE, SIG.SIGTERM].map((s) => signalFlag.getAction(s).toString('hex')).join(' ');
    ${body}`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  return { out: r.stdout, err: r.stderr, signal: r.signal, status: r.status };
}

test('a SIGINT during the guarded code is deferred, then kills a process without listeners', () => {
  const r = run(`
    deferSignals({ what: 'test' }, () => {
      kill(process.pid, SIG.SIGINT);
      say('alive after the signal');
      try { checkInterrupted(); } catch (e) { say(e.code + ': ' + e.message); throw e; }
    });
    say('not reached');`);
  assert.equal(r.out, 'alive after the signal\nINTERRUPTED: Cannot test: interrupted by SIGINT\n', r.err);
  assert.equal(r.signal, 'SIGINT');
});

test('with a listener: INTERRUPTED is thrown, the listener runs after, the dispositions are as before', () => {
  const r = run(`
    process.on('SIGTERM', () => say('listener'));
    const before = actions();
    try {
      deferSignals({ what: 'test' }, () => { kill(process.pid, SIG.SIGTERM); checkInterrupted(); });
    } catch (e) { say(e.code); }
    say(actions() === before ? 'same dispositions' : 'changed: ' + before + ' -> ' + actions());
    setTimeout(() => {}, 100);`);
  assert.equal(r.out, 'INTERRUPTED\nsame dispositions\nlistener\n', r.err);
  assert.equal(r.status, 0);
});

test('a signal after the point of no return lets the code finish, then is delivered', () => {
  const r = run(`
    process.on('SIGHUP', () => say('listener'));
    say(deferSignals({ what: 'test' }, () => { kill(process.pid, SIG.SIGHUP); return 'result'; }));
    setTimeout(() => {}, 100);`);
  assert.equal(r.out, 'result\nlistener\n', r.err);
});

test('an ignored signal stays ignored and does not interrupt', () => {
  // Node ignores SIGPIPE.
  const r = run(`
    deferSignals({ what: 'test' }, () => { kill(process.pid, SIG.SIGPIPE); checkInterrupted(); say('not interrupted'); });
    say(signalFlag.isIgnored(signalFlag.getAction(SIG.SIGPIPE)) ? 'still ignored' : 'not ignored');`);
  assert.equal(r.out, 'not interrupted\nstill ignored\n', r.err);
});
