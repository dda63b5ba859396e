import { rawSyscall, type Arg } from './native.js';
import { SysError } from './error.js';

export interface CallOptions {
  /** Name shown in errors, e.g. "ptrace(PTRACE_SEIZE)". */
  name: string;
  /** The process the call is about, shown in errors. */
  pid?: number;
}

/** Runs a syscall in this process; throws SysError on failure, returns the result otherwise. */
export function call(nr: number, args: readonly Arg[], opts: CallOptions): bigint {
  const r = rawSyscall(nr, args);
  if (r.ret === -1n) throw new SysError(opts.name, r.errno, opts.pid);
  return r.ret;
}

/** Like call, but for calls whose result fits a JS number (fds, pids, counts). */
export function callNum(nr: number, args: readonly Arg[], opts: CallOptions): number {
  return Number(call(nr, args, opts));
}
