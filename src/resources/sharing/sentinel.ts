/**
 * A fresh process that owns no io_context and no SysV semaphore undo list.
 *
 * kcmp compares the kernel pointers, and for KCMP_IO and KCMP_SYSVSEM that pointer
 * is NULL in every process that never needed the object: all such processes
 * compare equal. Grouping the sentinel with the targets tells us which group is
 * "has none" so it is not reported as sharing. (Assumes ckpt itself has no I/O
 * priority set: a child of a process with one gets its own io_context.)
 */
import type { ChildProcess } from 'node:child_process';
import { lazyChildProcess } from '../../common/builtin.js';
import { CkptError } from '../../common/errors.js';

export class Sentinel {
  private readonly child: ChildProcess;
  readonly pid: number;

  constructor() {
    this.child = lazyChildProcess().spawn('sleep', ['60'], { stdio: 'ignore' });
    this.child.unref();
    this.child.on('error', () => undefined);
    if (this.child.pid === undefined) throw new CkptError('INTERNAL', 'Cannot start a sentinel process (sleep) for kcmp');
    this.pid = this.child.pid;
  }

  dispose(): void {
    this.child.kill('SIGKILL');
  }
}
