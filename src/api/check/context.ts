/**
 * Shared state of one `check` run: a scratch child process that several probes
 * inspect (ptrace, rseq, process_vm_readv, pidfd_getfd), created on first use and
 * killed at the end.
 *
 * Node reaps its own children when the event loop runs. Everything here is
 * synchronous, and the child is reaped by our own wait4 before we return, so
 * libuv never sees its stop or exit (libuv ignores the ECHILD it then gets).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CkptError } from '../../common/errors.js';
import { kill, ptrace, wait4, WAIT, PTRACE_EVENT, SIG } from '../../sys/index.js';

export class ProbeContext {
  private child: ChildProcess | undefined;
  private seized = false;

  /** PID of a running `sleep` child (started on first call). */
  childPid(): number {
    if (!this.child) {
      const c = spawn('sleep', ['30'], { stdio: 'ignore' });
      // The exit is collected by our wait4 in dispose(), so the handle must not keep Node alive.
      c.unref();
      c.on('error', () => undefined);
      if (c.pid === undefined) throw new CkptError('INTERNAL', 'Cannot start a scratch process (sleep) for probing');
      this.child = c;
    }
    return this.child.pid as number;
  }

  /** PID of the child, seized with PTRACE_SEIZE and stopped with PTRACE_INTERRUPT. */
  stoppedChild(): number {
    const pid = this.childPid();
    if (this.seized) return pid;
    ptrace.seize(pid);
    this.seized = true;
    ptrace.interrupt(pid);
    // No await between the interrupt and this wait: Node must not collect the stop first.
    const st = wait4(pid, WAIT.ALL);
    if (st.kind !== 'stopped' || st.event !== PTRACE_EVENT.STOP) {
      throw new CkptError('INTERNAL', `Cannot stop process ${pid} with PTRACE_INTERRUPT: wait4 reported ${JSON.stringify(st)}`);
    }
    return pid;
  }

  dispose(): void {
    if (!this.child) return;
    const pid = this.child.pid as number;
    this.child = undefined;
    try {
      kill(pid, SIG.SIGKILL);
      // Reap it ourselves (as parent and tracer); loop past any pending ptrace stop.
      for (;;) {
        const st = wait4(pid, WAIT.ALL);
        if (st.kind === 'exited' || st.kind === 'signaled') break;
      }
    } catch {
      // already gone or reaped
    }
  }
}
