import { CkptError } from '../common/errors.js';
import { errnoName, errnoText } from './errno.js';

/** A failed system call: which call, which errno, on which pid (if any). */
export class SysError extends CkptError {
  readonly syscall: string;
  readonly errno: number;
  readonly errnoName: string;
  readonly pid: number | undefined;

  constructor(syscall: string, errno: number, pid?: number) {
    const who = pid === undefined ? '' : ` on pid ${pid}`;
    super('SYSCALL', `Cannot ${syscall}${who}: ${errnoName(errno)} (${errnoText(errno)})`);
    this.name = 'SysError';
    this.syscall = syscall;
    this.errno = errno;
    this.errnoName = errnoName(errno);
    this.pid = pid;
  }
}

export function isErrno(e: unknown, name: string): e is SysError {
  return e instanceof SysError && e.errnoName === name;
}
