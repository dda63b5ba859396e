import { numericEntries, readProcDir, readProcText } from './procfs.js';
import { CkptError } from '../common/errors.js';

/** Thread IDs of PID, ascending (the thread group leader's TID is PID). */
export function listTasks(pid: number): number[] {
  return numericEntries(readProcDir(pid, 'task'));
}

/**
 * Children of every thread of PID, ascending: a child belongs to the thread that
 * forked it. The kernel's list is only reliable while the tree is frozen (seized),
 * so the dumper re-reads until it stops changing.
 */
export function readChildren(pid: number): number[] {
  const all = new Set<number>();
  for (const tid of listTasks(pid)) {
    let text: string;
    try {
      text = readProcText(pid, `task/${tid}/children`);
    } catch (e) {
      // A thread that exited after listTasks has no children left to report.
      if (e instanceof CkptError && e.code === 'NO_PROCESS' && tid !== pid) continue;
      throw e;
    }
    for (const word of text.split(' ')) if (word.trim() !== '') all.add(Number(word));
  }
  return [...all].sort((a, b) => a - b);
}
