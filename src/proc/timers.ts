import { malformed, procPath, readProcText } from './procfs.js';

/** One POSIX timer from /proc/PID/timers (fs/proc/base.c, show_timer). */
export interface ProcTimer {
  id: number;
  signo: number;
  /** sigev_value, as the pointer the kernel prints. */
  value: bigint;
  /** sigev_notify without SIGEV_THREAD_ID: 'signal', 'none' or 'thread'. */
  notify: 'signal' | 'none' | 'thread';
  /** SIGEV_THREAD_ID: the signal goes to thread `target`, else to process `target`. */
  toThread: boolean;
  target: number;
  clock: number;
}

const BLOCK = /^ID: (-?\d+)\nsignal: (\d+)\/([0-9a-f]+)\nnotify: (signal|none|thread)\/(pid|tid)\.(\d+)\nClockID: (-?\d+)$/;

export function parseTimers(text: string, file = 'timers'): ProcTimer[] {
  const out: ProcTimer[] = [];
  const lines = text.split('\n').filter((l) => l !== '');
  if (lines.length % 4 !== 0) throw malformed(file, `expected 4 lines per timer, got ${lines.length} lines`);
  for (let i = 0; i < lines.length; i += 4) {
    const m = lines.slice(i, i + 4).join('\n').match(BLOCK);
    if (!m) throw malformed(file, `cannot parse timer at line ${i + 1}: ${JSON.stringify(lines[i])}`);
    out.push({
      id: Number(m[1]), signo: Number(m[2]), value: BigInt(`0x${m[3]}`), notify: m[4] as ProcTimer['notify'],
      toThread: m[5] === 'tid', target: Number(m[6]), clock: Number(m[7]),
    });
  }
  return out;
}

export function readTimers(pid: number): ProcTimer[] {
  return parseTimers(readProcText(pid, 'timers'), procPath(pid, 'timers'));
}
