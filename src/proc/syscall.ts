/**
 * /proc/PID/task/TID/syscall: the system call a blocked thread is in ("NR arg1 … arg6 sp
 * pc", hex arguments), "-1 sp pc" when it is blocked outside one (a page fault), or
 * "running". A background dump reads it to learn which range a thread blocked on its
 * userfaultfd event is about to discard (resources/memory/background.ts).
 */
import { readProcText } from './procfs.js';

export interface BlockedSyscall {
  nr: number;
  args: bigint[];
}

/** The call of a blocked thread; undefined when it runs, is outside a call, or the text is not understood. */
export function parseSyscallFile(text: string): BlockedSyscall | undefined {
  const f = text.trim().split(/\s+/);
  if (f.length < 7 || !/^\d+$/.test(f[0]!)) return undefined;
  const args: bigint[] = [];
  for (const a of f.slice(1, 7)) {
    if (!/^0x[0-9a-f]+$/i.test(a)) return undefined;
    args.push(BigInt(a));
  }
  return { nr: Number(f[0]), args };
}

/** The call thread `tid` of `pid` is blocked in, if any (undefined also when it is gone). */
export function readBlockedSyscall(pid: number, tid: number): BlockedSyscall | undefined {
  try {
    return parseSyscallFile(readProcText(pid, `task/${tid}/syscall`));
  } catch {
    return undefined;
  }
}
