/**
 * Entry of the processes a lazy restore starts (`ckpt lazy-pages serve DIR`, `ckpt
 * lazy-pages guard SERVER_PID`; this file when ckpt runs as a library). Exits with the
 * role's status; the log is fd 2.
 */
import { writeSync } from 'node:fs';
import { CkptError } from '../../common/errors.js';
import { runGuard } from './guard.js';
import { runServer } from './server.js';

export function runLazyPages(args: readonly string[]): number {
  const [role, arg, remote] = args;
  const log = (line: string) => {
    try {
      writeSync(2, `${new Date().toISOString()} lazy-pages ${role} ${process.pid}: ${line}\n`);
    } catch {
      // no log: nothing more to do
    }
  };
  if (role === 'serve' && arg) return runServer(arg, { log, remote });
  if (role === 'guard' && arg && /^\d+$/.test(arg)) return runGuard(Number(arg), log);
  throw new CkptError('UNSUPPORTED', `Cannot run lazy-pages: restore --lazy-pages starts it itself (as "serve DIR" and "guard PID"), got "${args.join(' ')}"`);
}
