/**
 * CRIU's --action-script: each script runs (through `sh -c`, as CRIU runs it) at the
 * points CRIU names, with CRTOOLS_SCRIPT_ACTION set to the point, CRTOOLS_IMAGE_DIR to
 * the images directory and CRTOOLS_INIT_PID to the root of the tree once it is known.
 * A script that fails (non-zero exit, or killed) fails the dump or restore, which is
 * rolled back as any failure (post-dump: the tree runs on, the complete set stays);
 * post-resume comes once the processes run, so its failure is reported and they run on.
 * Scripts write to ckpt's stderr, so that --json on stdout stays one document.
 */
import { lazyChildProcess } from '../common/builtin.js';
import { CkptError } from '../common/errors.js';

/**
 * CRIU's network-lock and network-unlock are for a dumped network namespace, which ckpt has not.
 * `migrate-failed` is ckpt's own (ckpt migrate): the migration failed after post-dump (source)
 * or pre-restore (destination) ran, and the tree runs on the source: undo what they did.
 */
export type ScriptAction = 'pre-dump' | 'post-dump' | 'pre-restore' | 'post-restore' | 'pre-resume' | 'post-resume' | 'migrate-failed';

export interface ActionScripts {
  run(action: ScriptAction, env?: { initPid?: number }): void;
}

export function actionScripts(scripts: readonly string[], opts: { imagesDir: string; say: (line: string) => void }): ActionScripts {
  return {
    run(action, env = {}) {
      for (const script of scripts) {
        opts.say(`running action script ${script} (${action})`);
        const r = lazyChildProcess().spawnSync('/bin/sh', ['-c', script], {
          stdio: ['ignore', 2, 2],
          env: {
            ...process.env,
            CRTOOLS_SCRIPT_ACTION: action,
            CRTOOLS_IMAGE_DIR: opts.imagesDir,
            ...(env.initPid === undefined ? {} : { CRTOOLS_INIT_PID: String(env.initPid) }),
          },
        });
        const why = r.error ? r.error.message : r.signal ? `killed by ${r.signal}` : r.status !== 0 ? `exit status ${r.status}` : undefined;
        if (why) throw new CkptError('ACTION_SCRIPT', `Cannot run action script ${script} (${action}): ${why}`);
      }
    },
  };
}
